// Snapshots written off the event loop by a forked child (the Redis BGSAVE
// way): fork() gives the child a copy-on-write image of the whole process,
// so it serializes the state machine exactly as of the fork while the parent
// goes on applying entries; the kernel copies only the pages the parent
// changes meanwhile. The loop pays for the fork (page tables, a few ms per
// GB of memory) and for reading the file back into memory afterwards, in
// bounded pieces, one batch per turn: the core needs the bytes to send to
// lagging followers.
//
//   start()   fork; the child serializes, writes dir/"snapshot.bg.tmp",
//             fsyncs, renames it over dir/"snapshot", fsyncs the directory
//             (SnapshotStore::save_background) and _exit()s: 0 when durable.
//   poll()    waitpid(WNOHANG) each turn; after a 0 exit, reads the file
//             back (SnapshotReader, with its checks) within a time budget
//             per turn, then hands the snapshot to the driver.
//   cancel()  SIGKILL and waitpid, then removes the temp file: on return the
//             child can no longer rename anything, so the caller may save a
//             newer snapshot without an older one landing over it later.
//
// fork() is safe here only because the node is single-threaded: the child
// gets just the forking thread, and any lock another thread held (malloc's,
// the logger's) would stay locked in it forever. start() checks the thread
// count and falls back to a synchronous snapshot (returns false) if it is
// not 1. The child runs no destructors of the parent's objects, no atexit
// handlers and no stdio flushes (_exit), never touches the socket it
// inherited, and dies with the parent (PR_SET_PDEATHSIG), so even a kill -9
// of the node leaves no writer behind to rename a stale snapshot over the
// one a restarted node saves.
//
// Memory: in the worst case (every page written while the child runs) the
// node needs twice its resident size; the child also holds its own
// serialization (about the snapshot's size) until it exits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "kv/state_machine.h"
#include "log/logger.h"
#include "node/driver.h"
#include "raft/types.h"
#include "storage/snapshot_store.h"

namespace node {

// Owns a child process: destroyed (or told to) it kills the child with
// SIGKILL and reaps it, so no child outlives its owner unreaped or still
// writing.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { kill_and_reap(); }

  // Takes ownership of pid; requires !running().
  void adopt(pid_t pid);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // waitpid(WNOHANG): the wait status once the child has exited (it is
  // then reaped and no longer running()), nullopt while it runs. Throws
  // storage::StorageError if waitpid fails.
  std::optional<int> try_reap();
  // SIGKILL, then waitpid until it is gone (a child inside fsync dies when
  // the call returns). Returns the wait status (it may have exited on its
  // own first); nullopt when none was running.
  std::optional<int> kill_and_reap();

 private:
  pid_t pid_ = -1;
};

struct BackgroundSnapshotOptions {
  // Read-back work per poll(): pieces of read_piece_bytes until the budget
  // is spent. A 1 MiB piece costs ~1.5 ms (page faults, copy, checksum) on
  // a 2-CPU VM, so a turn stays near 5 ms; one 113 MiB read took ~160 ms.
  std::chrono::microseconds read_budget{4000};
  std::size_t read_piece_bytes = std::size_t{1} << 20;
  // The child's nice value: it competes with the event loops of the node
  // (and of its neighbours on a shared machine) for CPU, and should lose.
  int child_nice = 10;
  // For tests: the child sleeps this long before it serializes, so a test
  // can stop it while it certainly has not renamed anything yet.
  std::chrono::milliseconds child_start_delay{0};
};

class BackgroundSnapshot final : public Snapshotter {
 public:
  // `store` is where the snapshot goes; store and log must outlive this.
  BackgroundSnapshot(const storage::SnapshotStore& store, const logging::Logger& log,
                     BackgroundSnapshotOptions options = {});
  BackgroundSnapshot(const BackgroundSnapshot&) = delete;
  BackgroundSnapshot& operator=(const BackgroundSnapshot&) = delete;
  // Kills and reaps a running child and removes its temp file, quietly.
  ~BackgroundSnapshot() override;

  bool start(const raft::SnapshotMeta& meta, const kv::StateMachine& state) override;
  bool busy() const override { return phase_ != Phase::Idle; }
  const raft::SnapshotMeta& started() const override { return meta_; }
  std::optional<Finished> poll() override;
  void cancel(const std::string& reason) override;

  // For tests and the log: the child while it writes (0 otherwise), and
  // whether the file is being read back.
  pid_t child_pid() const { return child_.running() ? child_.pid() : 0; }
  bool reading_back() const { return phase_ == Phase::ReadingBack; }

 private:
  enum class Phase { Idle, Writing, ReadingBack };
  using Clock = std::chrono::steady_clock;

  void child_exited(int status);
  std::optional<Finished> read_back();
  std::string figures() const;
  void reset();

  const storage::SnapshotStore& store_;
  const logging::Logger& log_;
  BackgroundSnapshotOptions options_;

  Phase phase_ = Phase::Idle;
  raft::SnapshotMeta meta_;
  ChildProcess child_;
  int report_fd_ = -1;  // read end of the child's report pipe while Writing
  std::optional<storage::SnapshotReader> reader_;

  // Figures of the snapshot in progress, for the log line.
  Clock::time_point forked_at_;
  double fork_ms_ = 0;
  std::size_t keys_at_fork_ = 0;
  double child_ms_ = 0;  // fork to the exit seen by poll()
  double serialize_ms_ = -1;  // as the child reported them; -1: unknown
  double write_ms_ = -1;
  double read_ms_ = 0;  // read-back time summed over turns
  double longest_read_ms_ = 0;
  int read_turns_ = 0;
};

}  // namespace node
