// The simulated cluster: n nodes, each a pure raft::Raft core plus the shell
// around it (simulated disk, volatile state machine, client bookkeeping),
// driven exactly by the contract of raft.h:
//
//   input (tick / step / propose / read_index)
//   while has_ready(): rd = ready();
//     1. persist rd.hard_state (atomically) and rd.entries (drop stored
//        entries with index >= rd.entries.front().index, then append);
//     2. send rd.messages;
//     3. apply rd.committed in order; serve rd.reads once applied >= index;
//     4. advance(rd).
//
// Faults modelled here (the network's are in network.h):
//
//   crash        the core and all volatile state vanish (state machine,
//                pending client requests). Only the Disk survives. A crash
//                may happen between steps, or in the middle of handling a
//                Ready, which is where "lose what was not persisted" bites:
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

#include "raft/raft.h"
#include "common.h"
#include "network.h"
#include "trace.h"

namespace sim {

class Checker;

// What survives a crash: the atomically replaced term/vote file and the log.
struct Disk {
  raft::HardState hard_state;
  std::vector<raft::Entry> entries;  // entries[i - 1] has index i
};

enum class CrashPoint : std::uint8_t { None, BeforePersist, TornPersist, AfterPersist, AfterSend };
const char* to_string(CrashPoint point);

struct Proposal {
  std::string data;
  std::int64_t tick = 0;
};

struct IssuedRead {
  raft::Index acked_floor = 0;  // highest acknowledged write index when issued
  std::int64_t tick = 0;
  bool issued_as_leader = false;
};

struct WaitingRead {
  std::uint64_t ctx = 0;
  raft::Index index = 0;
};

struct Node {
  int index = 0;
  raft::NodeId id;
  std::unique_ptr<raft::Raft> core;  // null while crashed
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

  // Volatile shell state (one incarnation).
  bool ready_deferred = false;
  raft::Index applied = 0;
  std::map<raft::Index, Proposal> proposals;   // index -> pending client write
  std::map<std::uint64_t, IssuedRead> reads;   // ctx -> pending client read
  std::vector<WaitingRead> waiting_reads;      // ReadStates waiting for apply

  bool alive() const { return core != nullptr; }
  bool runnable() const { return core != nullptr && !paused; }
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
};

class Cluster {
 public:
  Cluster(const ClusterOptions& options, Clock& clock, Trace& trace, Network& network, Checker& checker);
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

  // Client operations; they return what the core said.
  std::optional<raft::Index> propose(int i, const std::string& data);
  void read(int i, std::uint64_t ctx, raft::Index acked_floor);

  // The node that leads the highest term any live node knows of, or -1.
  int current_leader() const;

  void flush_readies();

  std::uint64_t acks() const { return acks_; }
  std::uint64_t reads_served() const { return reads_served_; }

 private:
  raft::Config make_config(int i) const;
  void boot(int i);
  void crash_now(Node& n, std::int64_t down_ticks, const char* how);
  void after_input(Node& n);
  void handle_ready(Node& n);
  void persist(Node& n, const raft::Ready& rd, bool torn);
  void apply(Node& n, const raft::Entry& e);
  void serve_reads(Node& n);
  void deliver_due();

  ClusterOptions options_;
  Clock& clock_;
  Trace& trace_;
  Network& network_;
  Checker& checker_;
  Rng rng_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::uint64_t acks_ = 0;
  std::uint64_t reads_served_ = 0;
};

}  // namespace sim
