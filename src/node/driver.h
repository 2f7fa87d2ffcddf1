// The one loop that drives the Raft core, shared by the node (server.cc) and
// the simulator (tests/sim): it takes decoded inputs (ticks, peer messages,
// client requests), honours the Ready contract of raft.h (persist, then send,
// then apply and answer clients, then advance), and owns everything between
// the core and a client: exactly-once sessions, pending writes, pending
// linearizable reads, the status reply.
//
// It does no I/O of its own: bytes reach a disk through Storage and leave
// through Transport, and time is whatever tick() calls say. So the simulator
// runs the node's own client logic, with a simulated disk and network.
//
// Exception-neutral: when Storage or Transport throws (an fsync error in the
// node, a simulated crash in the simulator) the exception passes through and
// the Driver must be discarded; it is never used again.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv/command.h"
#include "kv/state_machine.h"
#include "log/logger.h"
#include "net/udp_socket.h"
#include "raft/raft.h"
#include "wire/messages.h"

namespace node {

// Stable storage for the core's persistent state (Figure 2).
class Storage {
 public:
  virtual ~Storage() = default;
  // Replaces the stored term and vote atomically; durable on return.
  virtual void save_hard_state(const raft::HardState& state) = 0;
  // Removes any stored entries with index >= entries.front().index, then
  // appends these. Not yet durable: sync() makes them so.
  virtual void append(const std::vector<raft::Entry>& entries) = 0;
  // Makes every append so far durable: one fsync for a whole batch.
  virtual void sync() = 0;
  // Replaces the stored snapshot atomically (temp file, fsync, rename, fsync
  // the directory); durable on return. Stored entries are left alone.
  virtual void save_snapshot(const raft::Snapshot& snapshot) = 0;
  // May remove stored entries with index <= through (a snapshot covers
  // them): whole segments, never rewriting what stays; may keep some.
  virtual void compact_log(raft::Index through) = 0;
  // Removes every stored entry, durably; the next append starts at
  // after + 1. For an installed snapshot the stored log does not match.
  virtual void reset_log(raft::Index after) = 0;
};

// Writes a snapshot off the event loop. The node's is a forked child
// (node/background_snapshot.h); the simulator and the unit tests have none,
// and the driver then takes every snapshot synchronously, as before.
class Snapshotter {
 public:
  // A finished snapshot: durable in the snapshot file, its data in memory
  // for the core (which sends it to lagging followers).
  struct Finished {
    raft::Snapshot snapshot;
    std::string figures;  // where the time went, for the driver's log line
  };
  virtual ~Snapshotter() = default;
  // Starts writing `state` as the snapshot at `meta` (state as of
  // meta.index). False when it cannot (the driver then writes it
  // synchronously). Requires !busy().
  virtual bool start(const raft::SnapshotMeta& meta, const kv::StateMachine& state) = 0;
  // From a start() that returned true until poll() returned the snapshot,
  // cancel(), or poll() threw.
  virtual bool busy() const = 0;
  virtual const raft::SnapshotMeta& started() const = 0;  // when busy()
  // Called once per event-loop turn while busy(); each call does bounded
  // work. Returns the snapshot once it is durable and read back. Throws
  // storage::StorageError (DiskFull for a full disk) when writing it failed.
  virtual std::optional<Finished> poll() = 0;
  // Stops a started snapshot: on return nothing of it can reach the
  // snapshot file any more (what it wrote so far is left or removed, never
  // half-renamed). Nothing when not busy().
  virtual void cancel(const std::string& reason) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Best effort, like UDP.
  virtual void send(const raft::Message& message) = 0;
  virtual void reply(const net::Endpoint& to, const wire::ClientReply& reply) = 0;
  // A transport may hold what send() and reply() gave it to send many with
  // one system call; flush() sends it now. The driver flushes before its
  // fsync (so the leader's appends are on the wire while it writes, thesis
  // §10.2.1) and after each Ready; the owner of the loop at each turn's end.
  virtual void flush() {}
};

// Points in the loop where a test may look, or crash the node by throwing.
// Every method does nothing by default; the node uses on_advanced() to log
// role changes.
class Observer {
 public:
  virtual ~Observer() = default;
  // A Ready was just taken from the core; nothing of it is handled yet.
  virtual void on_ready(const raft::Ready&) {}
  // Its hard state and entries are durable; of its messages only the
  // leader's append_entries and install_snapshot have left (they go before
  // the leader's own write, thesis §10.2.1; driver.cc).
  virtual void on_persisted(const raft::Ready&) {}
  // All its messages have left; nothing of it is applied.
  virtual void on_sent(const raft::Ready&) {}
  // The state machine applied `entry`; `command` and `result` are null for
  // a no-op or an entry that holds no valid command. Before any client
  // waiting for it is answered.
  virtual void on_applied(const raft::Entry&, const kv::Command*, const kv::Result*) {}
  // advance() returned: the Ready is done.
  virtual void on_advanced() {}
  // A snapshot is durable (taken here or received), before the log is
  // compacted or reset; `installed` when it was received and loaded into
  // the state machine, which now holds everything through meta.index.
  virtual void on_snapshot_saved(const raft::SnapshotMeta&, bool /*installed*/) {}
  // The stored log was compacted through `through` (taken snapshot) or
  // reset after it (installed snapshot the log did not match).
  virtual void on_log_compacted(raft::Index /*through*/) {}
  // The core accepted a client's write at `index` (propose()).
  virtual void on_proposed(raft::Index, const std::string& /*data*/) {}
  // The core accepted a linearizable read (read_index(ctx) returned true).
  virtual void on_read_index(std::uint64_t /*ctx*/) {}
};

struct DriverOptions {
  // Started on a (nearly) full disk: writes are answered busy.
  bool disk_full = false;
  std::string data_dir;  // named in that busy answer
  // Snapshot triggers (thesis §5.1): a snapshot is taken once this many
  // entries have been applied since the last one, or this many bytes of
  // entry data; 0 turns a trigger off.
  std::uint64_t snapshot_threshold_entries = 0;
  std::uint64_t snapshot_threshold_bytes = 0;
  // Entries kept in the log before a snapshot's index, so a follower that
  // lags a little catches up by append_entries rather than a whole snapshot.
  std::uint64_t snapshot_trailing_entries = 0;
};

// Peer datagrams the node's PeerGate dropped, for the status reply; the
// simulator has no gate and leaves them 0.
struct GateDrops {
  std::uint64_t bad_mac = 0;
  std::uint64_t foreign_cluster = 0;
  std::uint64_t malformed = 0;
  std::uint64_t no_mac = 0;
  std::uint64_t unknown_sender = 0;
  std::uint64_t wrong_address = 0;
};

// PROTOCOL.md's three role names; a pre-candidate is campaigning.
const char* role_name(raft::Role role);

class Driver {
 public:
  // `observer` and `snapshotter` may be null (no snapshotter: every
  // snapshot is synchronous). Storage, transport, log, observer and
  // snapshotter must outlive the driver.
  Driver(raft::Config config, raft::Recovered recovered, Storage& storage, Transport& transport,
         const logging::Logger& log, DriverOptions options = {}, Observer* observer = nullptr,
         Snapshotter* snapshotter = nullptr);
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Inputs. None of them handles the Ready: call process_ready() once the
  // inputs of one turn are in, so one fsync covers them all.
  void tick() { core_.tick(); }
  void step(const raft::Message& message) { core_.step(message); }
  // A decoded client_request from `from`; answered through Transport::reply,
  // at once (not_leader, busy, bad_request, a cached or local answer) or once
  // applied or confirmed.
  void client_request(wire::ClientRequest request, const net::Endpoint& from);
  // Handles every Ready the core has: persist, send, apply and answer, advance.
  void process_ready();

  // Takes a snapshot of the state machine at last_applied() now (the admin
  // request), if anything was applied since the last one, synchronously: a
  // background snapshot still running is cancelled first (this one is newer,
  // and the older one must not be renamed over it later). Returns its index
  // (the previous one when nothing new was applied).
  raft::Index take_snapshot();
  // Advances a background snapshot a threshold started (Snapshotter::poll)
  // and, once it is durable and read back, hands it to the core and compacts
  // the stored log. The node calls it once per event-loop turn; nothing
  // without a snapshotter or while none runs.
  void poll_snapshot();

  // The status reply without src and dest (the caller addresses it).
  wire::StatusReply status(const GateDrops& gate = {}) const;
  const raft::Raft& core() const { return core_; }
  const kv::StateMachine& state_machine() const { return state_machine_; }
  raft::Index last_applied() const { return last_applied_; }
  std::size_t pending_writes() const { return pending_writes_.size(); }
  std::size_t pending_reads() const { return pending_reads_.size(); }

 private:
  void handle_read(wire::ClientRequest request, const net::Endpoint& from);
  void handle_write(wire::ClientRequest request, const net::Endpoint& from);
  bool answer_from_session(const wire::ClientRequest& request, const net::Endpoint& from);
  void apply(const raft::Entry& entry);
  void settle_write(raft::Index index, const kv::Command* command, const kv::Result* result);
  void confirm_read(const raft::ReadState& read);
  void serve_read(std::uint64_t ctx);
  void answer_writes_of_lost_leadership();
  void maybe_take_snapshot();
  bool start_background_snapshot();
  void cancel_background_snapshot(const std::string& reason);
  // A snapshot is durable: the core keeps it and the stored log is compacted.
  void snapshot_durable(raft::Snapshot snapshot, const std::string& figures);
  void install_snapshot(const raft::Snapshot& snapshot, bool resets_log);

  void reply(const net::Endpoint& to, wire::ClientReply reply);
  void reply_not_leader(const net::Endpoint& to, const std::string& client, std::uint64_t seq);
  // The answer of an applied command: from its application, or from the
  // session for a retry (exactly once: the same reply both times).
  void reply_result(const net::Endpoint& to, const std::string& client, std::uint64_t seq, const kv::Result& result);
  void reply_error(const net::Endpoint& to, const std::string& client, std::uint64_t seq,
                   const std::string& error, const std::string& message);

  Storage& storage_;
  Transport& transport_;
  const logging::Logger& log_;
  DriverOptions options_;
  Observer* observer_;
  Snapshotter* snapshotter_;
  raft::Raft core_;
  kv::StateMachine state_machine_;

  // Writes this node proposed as leader, answered when applied.
  struct PendingWrite {
    std::string client;
    std::uint64_t seq;
    net::Endpoint reply_to;
  };
  std::map<raft::Index, PendingWrite> pending_writes_;
  std::unordered_map<std::string, raft::Index> pending_by_client_;  // client -> index of its in-flight write

  // Linearizable reads waiting for the core's ReadIndex and then for apply.
  struct PendingRead {
    std::string client;
    std::uint64_t seq;
    std::string key;
    net::Endpoint reply_to;
    raft::Index read_index = 0;  // set once confirmed
  };
  std::unordered_map<std::uint64_t, PendingRead> pending_reads_;
  std::multimap<raft::Index, std::uint64_t> reads_waiting_apply_;
  std::uint64_t next_read_ctx_ = 1;

  raft::Index last_applied_ = 0;
  std::uint64_t applied_bytes_since_snapshot_ = 0;  // entry data applied since the last snapshot
  // applied_bytes_since_snapshot_ when the running background snapshot
  // started: what its completion takes off (bytes applied since count on).
  std::uint64_t applied_bytes_at_background_start_ = 0;
  bool was_leader_ = false;  // as of the last advance(): pending writes belong to that leadership
};

}  // namespace node
