// An in-memory cluster of raft::Raft cores for the transcript tests. Nothing
// happens by itself: every tick, delivery and Ready is a command of the
// transcript, and every effect is printed as one line, so a transcript reads
// as the exact sequence of events it pins down.
//
// The shell contract of raft.h is followed literally when a Ready is
// handled: persist a received snapshot, hard state and entries (the Disk),
// then hand the messages to the network (the queue), then apply committed
// entries to the node's toy state machine and serve reads, then advance(). A
// crash keeps only the Disk, so whatever a node did since its last handled
// Ready is lost, as on a real machine.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/invariants.h"
#include "raft/raft.h"

namespace transcript {

// What survives a crash: the term/vote file, the latest snapshot and the log.
struct Disk {
  raft::HardState hard_state;
  std::optional<raft::Snapshot> snapshot;
  // Contiguous, but not necessarily from 1: a compacted log starts after a
  // base (at or before the snapshot's index), a reset one after the snapshot.
  std::vector<raft::Entry> entries;
};

// A node's state machine, as small as can show what Raft promises it: the
// data of every applied entry ("noop" for a no-op), in order, so the k-th
// item is entry k. Its serialization, the items joined with commas, is the
// snapshot's data; an installed or recovered snapshot replaces it. Applying
// anything but entry applied + 1 is an error (an entry lost or applied
// twice), and so is installing a snapshot older than what it holds.
struct ToyStateMachine {
  raft::Index applied = 0;
  std::string state;

  void apply(const raft::Entry& e, const std::string& who);
  void restore(const raft::Snapshot& s, const std::string& who);
};

// Which queued messages a command acts on; an unset field matches anything.
struct MessageFilter {
  int from = 0;  // node number, 0 = any
  int to = 0;
  std::optional<raft::MessageType> type;
  std::optional<std::uint64_t> round;  // read_round
  std::optional<std::uint64_t> offset;  // install_snapshot: where its data starts
  bool matches(const raft::Message& m) const;
};

struct NodeOptions {
  bool pre_vote = true;
  // Off by default: with check-quorum a follower that hears a leader also
  // ignores candidates (the lease), which most scenarios steer around.
  bool check_quorum = false;
  int heartbeat_ticks = 1;
  // min == max by default, so the timeout is the same whatever algorithm the
  // standard library uses to draw from a range, and `campaign` and `tick`
  // produce the same transcript with any compiler.
  int election_ticks_min = 10;
  int election_ticks_max = 10;
  std::size_t max_append_entries = 64;
  std::size_t max_pending_reads = 4096;
  std::size_t max_snapshot_chunk_bytes = 32 * 1024;
  std::size_t max_inflight_snapshot_chunks = 8;
};

class Cluster {
 public:
  // Every method appends the lines it produces to `out`.
  explicit Cluster(std::vector<std::string>& out) : out_(out) {}

  void add_nodes(int count, const NodeOptions& options);
  int size() const { return static_cast<int>(nodes_.size()); }
  bool up(int n) const { return nodes_.at(index(n)) != nullptr; }
  raft::Raft& node(int n);  // throws when n is down or unknown

  // Inputs. None of them handles a Ready: that is process_ready's job, so a
  // transcript can crash a node between an input and the persisting of its
  // effects.
  void tick(int n, int times);
  void campaign(int n);
  void propose(int n, const std::string& data, int count);
  void read_index(int n, const std::vector<std::uint64_t>& ctxs);
  void inject(const raft::Message& m);  // steps a hand-written message into m.to

  // Handles the Readies of the given nodes (all nodes up when empty) until
  // each has none. Returns whether any Ready was handled. With
  // crash_after_snapshot, a node whose Ready carries a received snapshot
  // saves that snapshot and crashes before anything else of the Ready is
  // persisted (the log is neither compacted nor reset, the hard state not
  // written): the first step of the shell's install, alone on the disk.
  bool process_ready(const std::vector<int>& nodes, bool crash_after_snapshot = false);
  // Delivers (or drops) the queued messages the filter matches, in queue
  // order; at most `count` of them when count > 0. With `keep` a copy is
  // delivered and the original stays queued where it was (a duplicate).
  // Returns how many matched.
  int deliver(const MessageFilter& filter, bool drop, int count, bool keep = false);
  // Takes the matching queued messages off the network (or, with `copy`,
  // copies of them, the originals staying queued) until release() puts them
  // back at the end of the queue: a slow path, so they arrive late. Both
  // return how many matched.
  int hold(const MessageFilter& filter, bool copy, int count);
  int release(const MessageFilter& filter, int count);
  // process_ready + deliver until nothing is left; throws after `bound` rounds.
  void stabilize(int bound = 200);

  void partition(const std::vector<std::vector<int>>& groups);
  void heal();
  void crash(int n);
  void restart(int n);

  // The node snapshots its state machine at its last applied index, as the
  // node's driver does: saves it on its Disk, hands it to the core with
  // snapshot_taken(s, last_applied - keep) and compacts the Disk's log
  // through the index the core returns. With crash_before_compact the node
  // crashes once the snapshot is on its Disk, before anything is compacted.
  void snapshot(int n, raft::Index keep, bool crash_before_compact);
  const ToyStateMachine& state_machine(int n) const { return machines_.at(index(n)); }
  void print_state(int n);  // 0: every node

  void print_log(int n);
  void print_status(int n);  // 0: every node

  static std::string name(int n) { return "n" + std::to_string(n); }
  int number(const raft::NodeId& id) const;  // 0 when not a node of the cluster

 private:
  struct Observed {
    raft::Role role = raft::Role::Follower;
    raft::Term term = 0;
    raft::DropCounts drops;
  };
  std::size_t index(int n) const;
  raft::Config config_for(int n) const;
  Observed observe(int n);
  // Prints "nX became ROLE term=T" and drop reasons since `before`.
  void report_changes(int n, const Observed& before, const std::string& indent);
  bool connected(int a, int b) const;
  void start(int n);
  void persist(int n, const raft::Ready& rd, const std::string& indent);

  std::vector<std::string>& out_;
  NodeOptions options_;
  std::vector<std::unique_ptr<raft::Raft>> nodes_;  // nodes_[n - 1]; null when down
  // Checked after every input, ready() and advance(): a transcript whose
  // core breaks an invariant fails with the invariant's name, whatever the
  // expected output says.
  std::vector<raft::InvariantMonitor> monitors_;
  void check(int n);
  std::vector<Disk> disks_;
  std::vector<ToyStateMachine> machines_;  // lost in a crash, rebuilt from the Disk's snapshot
  std::vector<int> restarts_;
  std::vector<int> group_;  // partition group per node; all equal when healed
  std::deque<raft::Message> queue_;  // the network, in send order
  std::deque<raft::Message> held_;   // taken off it by hold(), until release()
  std::string indent_;  // stabilize nests what it prints under headers
};

// "1..3/1 (3 entries)" or "2/1 x": entries as the transcripts print them.
std::vector<std::string> describe_entries(const std::vector<raft::Entry>& entries);

}  // namespace transcript
