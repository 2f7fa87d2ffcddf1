#include "node/background_snapshot.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <utility>

#include "storage/errors.h"

namespace node {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// What the child tells the parent through a pipe before it exits. Smaller
// than PIPE_BUF, so it arrives whole or not at all; it is plain bytes because
// both ends are the same binary.
struct ChildReport {
  double serialize_ms = -1;
  double write_ms = -1;
  std::uint64_t bytes = 0;
  int disk_full = 0;  // the error was DiskFull (so is the parent's)
  char error[1024] = {};
};
static_assert(sizeof(ChildReport) < 4096, "a pipe write of at most PIPE_BUF bytes is atomic");

// Exit statuses of the child, beyond 0 (durable).
constexpr int kExitFailed = 1;      // serializing or writing threw; the report says why
constexpr int kExitParentGone = 2;  // the parent died before the child could arm PDEATHSIG

// Threads of this process per /proc (0 when it cannot be read).
int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return 0;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  return "wait status " + std::to_string(status);
}

// The child: never returns. Runs on a copy-on-write image of the parent, in
// which the only thread is this one; everything it needs is on this stack
// or in that image.
[[noreturn]] void run_child(int report_fd, pid_t parent, const storage::SnapshotStore& store,
                            const raft::SnapshotMeta& meta, const kv::StateMachine& state,
                            const BackgroundSnapshotOptions& options) {
  // Dies with the node, even a kill -9 of it: an orphan could otherwise
  // rename a stale snapshot over one a restarted node has saved.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kExitParentGone);  // died before prctl took effect
  // Only the parent stops it (cancel(): SIGKILL). A Ctrl-C to the process
  // group must not turn into a failed write the parent would fail-stop on;
  // the node's own handlers would only set a flag nobody here reads.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  // Best effort: lose CPU contests against event loops.
  (void)::setpriority(PRIO_PROCESS, 0, options.child_nice);
  if (options.child_start_delay.count() > 0) {
    const auto ms = options.child_start_delay.count();
    struct timespec delay {static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
    while (::nanosleep(&delay, &delay) != 0 && errno == EINTR) {
    }
  }

  ChildReport report;
  int exit_status = 0;
  try {
    const Clock::time_point started = Clock::now();
    const std::string data = state.serialize();
    const Clock::time_point serialized = Clock::now();
    store.save_background(meta, data);
    report.serialize_ms = ms_between(started, serialized);
    report.write_ms = ms_between(serialized, Clock::now());
    report.bytes = data.size();
  } catch (const std::exception& e) {
    exit_status = kExitFailed;
    report.disk_full = dynamic_cast<const storage::DiskFull*>(&e) != nullptr;
    std::snprintf(report.error, sizeof report.error, "%s", e.what());
  } catch (...) {
    exit_status = kExitFailed;
    std::snprintf(report.error, sizeof report.error, "unknown exception");
  }
  // A lost report costs only figures (or the error's wording): the exit
  // status is what decides.
  (void)!::write(report_fd, &report, sizeof report);
  ::_exit(exit_status);
}

}  // namespace

// ---- ChildProcess ----

void ChildProcess::adopt(pid_t pid) {
  if (running()) throw std::logic_error("a child process is already owned (pid " + std::to_string(pid_) + ")");
  pid_ = pid;
}

std::optional<int> ChildProcess::try_reap() {
  if (!running()) return std::nullopt;
  int status = 0;
  for (;;) {
    const pid_t got = ::waitpid(pid_, &status, WNOHANG);
    if (got == 0) return std::nullopt;
    if (got == pid_) break;
    if (errno == EINTR) continue;
    const int err = errno;
    pid_ = -1;
    throw storage::StorageError(std::string("cannot wait for the background snapshot writer: ") + std::strerror(err));
  }
  pid_ = -1;
  return status;
}

std::optional<int> ChildProcess::kill_and_reap() {
  if (!running()) return std::nullopt;
  ::kill(pid_, SIGKILL);
  int status = 0;
  for (;;) {
    if (::waitpid(pid_, &status, 0) == pid_) break;
    if (errno == EINTR) continue;
    // ECHILD: reaped by someone else (SIGCHLD ignored); either way it is gone.
    status = 0;
    break;
  }
  pid_ = -1;
  return status;
}

// ---- BackgroundSnapshot ----

BackgroundSnapshot::BackgroundSnapshot(const storage::SnapshotStore& store, const logging::Logger& log,
                                       BackgroundSnapshotOptions options)
    : store_(store), log_(log), options_(options) {}

BackgroundSnapshot::~BackgroundSnapshot() {
  // Also on the way out of an exception (a storage error stopping the
  // node): no writer may outlive the node that started it.
  if (child_.kill_and_reap()) store_.remove_background_temp();
  reset();
}

void BackgroundSnapshot::reset() {
  if (report_fd_ >= 0) ::close(std::exchange(report_fd_, -1));
  reader_.reset();
  phase_ = Phase::Idle;
}

bool BackgroundSnapshot::start(const raft::SnapshotMeta& meta, const kv::StateMachine& state) {
  if (busy()) throw std::logic_error("a background snapshot is already running");
  // fork() copies only the calling thread; with another one, a lock it held
  // (malloc's) could be held forever in the child. The node has one thread.
  if (const int threads = thread_count(); threads > 1) {
    log_.error("background snapshot: the process has " + std::to_string(threads) +
               " threads, fork is unsafe; writing the snapshot synchronously");
    return false;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    log_.warn(std::string("background snapshot: cannot create a pipe (") + std::strerror(errno) +
              "); writing the snapshot synchronously");
    return false;
  }
  const pid_t parent = ::getpid();
  const Clock::time_point before = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    run_child(fds[1], parent, store_, meta, state, options_);
  }
  const Clock::time_point after = Clock::now();
  ::close(fds[1]);
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    // ENOMEM, EAGAIN: the snapshot still has to be taken; the slow way.
    log_.warn(std::string("background snapshot: cannot fork (") + std::strerror(err) +
              "); writing the snapshot synchronously");
    return false;
  }
  // Non-blocking: the report is read once the child is reaped, when it is
  // either all there or (the child was killed first) not at all.
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  report_fd_ = fds[0];
  child_.adopt(pid);
  phase_ = Phase::Writing;
  meta_ = meta;
  forked_at_ = after;
  fork_ms_ = ms_between(before, after);
  keys_at_fork_ = state.size();
  child_ms_ = 0;
  serialize_ms_ = write_ms_ = -1;
  read_ms_ = longest_read_ms_ = 0;
  read_turns_ = 0;
  log_.debug("background snapshot at index " + std::to_string(meta.index) + " started: child pid " +
             std::to_string(pid) + ", fork " + std::to_string(fork_ms_) + " ms");
  return true;
}

std::optional<Snapshotter::Finished> BackgroundSnapshot::poll() {
  if (phase_ == Phase::Writing) {
    const std::optional<int> status = child_.try_reap();
    if (!status) return std::nullopt;
    child_exited(*status);
  }
  if (phase_ == Phase::ReadingBack) return read_back();
  return std::nullopt;
}

void BackgroundSnapshot::child_exited(int status) {
  child_ms_ = ms_between(forked_at_, Clock::now());
  ChildReport report;
  const ssize_t got = ::read(report_fd_, &report, sizeof report);
  const bool reported = got == static_cast<ssize_t>(sizeof report);
  ::close(std::exchange(report_fd_, -1));
  if (reported) {
    serialize_ms_ = report.serialize_ms;
    write_ms_ = report.write_ms;
    report.error[sizeof report.error - 1] = '\0';
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // The child removes its temp file when a write fails; a crash of it
    // (a signal) leaves it. Never renamed: the old snapshot stands.
    store_.remove_background_temp();
    const std::string message = "background snapshot at index " + std::to_string(meta_.index) + " failed: writer " +
                                describe_wait_status(status) +
                                (reported && report.error[0] != '\0' ? std::string(": ") + report.error : "");
    const bool disk_full = reported && report.disk_full != 0;
    reset();
    log_.error(message);
    // Fail-stop, as for every storage error of the loop.
    if (disk_full) throw storage::DiskFull(message);
    throw storage::StorageError(message);
  }
  std::optional<storage::SnapshotReader> reader = storage::SnapshotReader::open(store_.path());
  if (!reader || reader->meta() != meta_) {
    const std::string found = reader ? "index " + std::to_string(reader->meta().index) : std::string("no file");
    reset();
    throw storage::StorageError("background snapshot at index " + std::to_string(meta_.index) +
                                ": the writer reported success but " + store_.path() + " holds " + found);
  }
  reader_.emplace(std::move(*reader));
  phase_ = Phase::ReadingBack;
}

std::optional<Snapshotter::Finished> BackgroundSnapshot::read_back() {
  // The file was just written: it is in the page cache, so a piece is a
  // copy and a checksum, bounded; the budget bounds the turn.
  const Clock::time_point started = Clock::now();
  const Clock::time_point until = started + options_.read_budget;
  do {
    reader_->read_some(options_.read_piece_bytes);
  } while (!reader_->done() && Clock::now() < until);
  const double spent = ms_between(started, Clock::now());
  read_ms_ += spent;
  longest_read_ms_ = std::max(longest_read_ms_, spent);
  ++read_turns_;
  if (!reader_->done()) return std::nullopt;
  Finished finished{reader_->finish(), figures()};
  reset();
  return finished;
}

std::string BackgroundSnapshot::figures() const {
  char text[320];
  std::snprintf(text, sizeof text,
                "loop paused for fork %.1f ms (%zu keys) and read-back %.1f ms in %d turns (longest %.1f ms); "
                "child %.1f ms (serialize %.1f ms, write %.1f ms)",
                fork_ms_, keys_at_fork_, read_ms_, read_turns_, longest_read_ms_, child_ms_, serialize_ms_,
                write_ms_);
  return text;
}

void BackgroundSnapshot::cancel(const std::string& reason) {
  if (!busy()) return;
  const Clock::time_point started = Clock::now();
  std::string what;
  if (phase_ == Phase::Writing) {
    const std::optional<int> status = child_.kill_and_reap();
    const bool removed = store_.remove_background_temp();
    what = "writer stopped (" + (status ? describe_wait_status(*status) : std::string("gone")) + ")" +
           (removed ? ", " + std::string(storage::SnapshotStore::kBackgroundTempName) + " removed" : "");
  } else {
    // Renamed already: the file holds this snapshot, which the caller is
    // about to replace; only the read-back is dropped.
    what = "read-back dropped";
  }
  reset();
  char took[32];
  std::snprintf(took, sizeof took, " in %.1f ms", ms_between(started, Clock::now()));
  log_.info("background snapshot at index " + std::to_string(meta_.index) + " cancelled (" + reason + "): " + what +
            took);
}

}  // namespace node
