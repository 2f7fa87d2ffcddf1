// The simulated cluster: n nodes, each the node's own node::Driver (the
// Ready loop, client sessions, pending writes and reads of src/node) around a
// raft::Raft core, with a simulated disk and network (shell.h). The driver
// runs the contract of raft.h:
//
//   input (tick / step / client_request)
//   process_ready(): while has_ready(): rd = ready();
//     1. persist rd.hard_state (atomically) and rd.entries (drop stored
//        entries with index >= rd.entries.front().index, then append);
//     2. send rd.messages;
//     3. apply rd.committed in order, answer clients; serve reads;
//     4. advance(rd).
//
// Faults modelled here (the network's are in network.h):
//
//   crash        the driver and all volatile state vanish (core, state
//                machine, pending client requests). Only the Disk survives.
//                A crash may happen between steps, or in the middle of
//                handling a Ready, which is where "lose what was not
//                persisted" bites (injected by the shell, shell.h):
//                  BeforePersist  nothing of that Ready survives, no message leaves;
//                  TornPersist    term/vote written, but the entry append tore:
//                                 only a prefix of the new entries survives
//                                 (DESIGN §4: a torn last record is cut off);
//                  AfterPersist   all persisted, but no message was sent;
//                  AfterSend      messages left, nothing was applied.
//   restart      a new core is built from the disk: Recovered{hard state, entries}.
//   pause        the process is frozen (GC pause, SIGSTOP, slow VM): it neither
//                ticks nor receives; messages for it are either held until it
//                resumes (kernel buffer) or dropped (buffer overflow).
//   slow clock   a node skips some ticks, so nodes' timers drift apart.
//   late Ready   a node may take several inputs before its Ready is handled
//                (a shell that batches fsyncs), so the core sees inputs
//                interleave with unpersisted state.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "log/logger.h"
#include "net/udp_socket.h"
#include "node/driver.h"
#include "raft/raft.h"
#include "wire/messages.h"
#include "common.h"
#include "network.h"
#include "trace.h"

namespace sim {

class Checker;
class Clients;
class Shell;

// What survives a crash: the atomically replaced term/vote file, the
// atomically replaced snapshot, and the log, which may start after index 1
// once compacted: entries[k] has index first_index + k.
struct Disk {
  raft::HardState hard_state;
  std::optional<raft::Snapshot> snapshot;
  raft::Index first_index = 1;
  std::vector<raft::Entry> entries;

  raft::Index last_index() const { return first_index + entries.size() - 1; }
  const raft::Entry& at(raft::Index i) const { return entries[i - first_index]; }
  raft::Index snapshot_index() const { return snapshot ? snapshot->meta.index : 0; }
};

// AfterSnapshot: the node crashes right after a snapshot is durable, before
// the log behind it is compacted or reset (thesis §5.1: recovery must cope).
enum class CrashPoint : std::uint8_t { None, BeforePersist, TornPersist, AfterPersist, AfterSend, AfterSnapshot };
const char* to_string(CrashPoint point);

struct IssuedRead {
  raft::Index acked_floor = 0;  // highest acknowledged write index when issued
  std::int64_t tick = 0;
  bool issued_as_leader = false;
};

struct Node {
  int index = 0;
  raft::NodeId id;
  std::unique_ptr<node::Driver> driver;  // null while crashed
  Disk disk;
  std::uint64_t incarnation = 0;  // 1 for the first boot, +1 per restart

  // Faults.
  bool paused = false;
  bool hold_while_paused = false;
  std::int64_t paused_until = 0;
  std::int64_t restart_at = 0;             // while crashed
  CrashPoint crash_at_ready = CrashPoint::None;
  std::int64_t crash_down_ticks = 0;       // for a crash scheduled at the next Ready
  double tick_skip = 0;                    // slow clock: probability a tick is skipped

  // Volatile (one incarnation): reads the core accepted, by ctx, until it
  // answers them in a Ready.
  std::map<std::uint64_t, IssuedRead> reads;

  bool alive() const { return driver != nullptr; }
  bool runnable() const { return driver != nullptr && !paused; }
  // Only while alive.
  const raft::Raft& core() const { return driver->core(); }
  raft::Index applied() const { return driver->last_applied(); }
};

struct ClusterOptions {
  std::uint64_t seed = 1;
  int size = 3;
  int heartbeat_ticks = 2;
  int election_ticks_min = 10;
  int election_ticks_max = 20;
  std::size_t max_append_entries = 512;
  int max_inflight_appends = 64;
  double ready_now = 1.0;  // probability a Ready is handled right after its input
  // Snapshots (thesis ch. 5): the driver's triggers, and small chunks so a
  // snapshot takes several datagrams.
  std::uint64_t snapshot_threshold_entries = 0;
  std::uint64_t snapshot_trailing_entries = 0;
  std::size_t max_snapshot_chunk_bytes = 256;
  std::size_t max_inflight_snapshot_chunks = 4;
};

class Cluster {
 public:
  Cluster(const ClusterOptions& options, Clock& clock, Trace& trace, Network& network, Checker& checker,
          Clients& clients);
  ~Cluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  Node& node(int i) { return *nodes_[i]; }
  const Node& node(int i) const { return *nodes_[i]; }

  void start();  // boots every node (incarnation 1, empty disk)

  // One unit of simulated time: restart/resume due nodes, tick every runnable
  // node, deliver every message due, then handle every outstanding Ready.
  void advance_time(bool allow_clock_skew);

  void crash(int i, std::int64_t down_ticks, CrashPoint where);
  void restart(int i);
  void pause(int i, std::int64_t until, bool hold_messages);
  void resume(int i);
  void set_ready_now(double p) { options_.ready_now = p; }
  // The admin request: node i (runnable) snapshots its state machine now.
  void take_snapshot(int i);

  // A client's request reaches node i (runnable), as a decoded datagram
  // reaches the node's driver.
  void client_request(int i, wire::ClientRequest request, const net::Endpoint& from);

  // The node that leads the highest term any live node knows of, or -1.
  int current_leader() const;

  void flush_readies();

 private:
  raft::Config make_config(int i) const;
  void boot(int i);
  void crash_now(Node& n, std::int64_t down_ticks, const char* how);
  void after_input(Node& n);
  void process_ready(Node& n);
  void deliver_due();

  ClusterOptions options_;
  Clock& clock_;
  Trace& trace_;
  Network& network_;
  Checker& checker_;
  Rng rng_;
  logging::Logger quiet_;  // the drivers' log: errors only (there should be none)
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Shell>> shells_;  // [i]: node i's disk, network and hooks
};

}  // namespace sim
