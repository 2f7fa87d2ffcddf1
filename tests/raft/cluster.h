// An in-memory cluster of raft::Raft cores for the transcript tests. Nothing
// happens by itself: every tick, delivery and Ready is a command of the
// transcript, and every effect is printed as one line, so a transcript reads
// as the exact sequence of events it pins down.
//
// The shell contract of raft.h is followed literally when a Ready is
// handled: persist hard state and entries (the Disk), then hand the messages
// to the network (the queue), then apply committed entries and serve reads,
// then advance(). A crash keeps only the Disk, so whatever a node did since
// its last handled Ready is lost, as on a real machine.
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

// What survives a crash: the term/vote file and the log.
struct Disk {
  raft::HardState hard_state;
  std::vector<raft::Entry> entries;  // entries[i - 1] has index i
};

// Which queued messages a command acts on; an unset field matches anything.
struct MessageFilter {
  int from = 0;  // node number, 0 = any
  int to = 0;
  std::optional<raft::MessageType> type;
  std::optional<std::uint64_t> round;  // read_round
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
  // each has none. Returns whether any Ready was handled.
  bool process_ready(const std::vector<int>& nodes);
  // Delivers (or drops) the queued messages the filter matches, in queue
  // order; at most `count` of them when count > 0. Returns how many matched.
  int deliver(const MessageFilter& filter, bool drop, int count);
  // process_ready + deliver until nothing is left; throws after `bound` rounds.
  void stabilize(int bound = 200);

  void partition(const std::vector<std::vector<int>>& groups);
  void heal();
  void crash(int n);
  void restart(int n);

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

  std::vector<std::string>& out_;
  NodeOptions options_;
  std::vector<std::unique_ptr<raft::Raft>> nodes_;  // nodes_[n - 1]; null when down
  // Checked after every input, ready() and advance(): a transcript whose
  // core breaks an invariant fails with the invariant's name, whatever the
  // expected output says.
  std::vector<raft::InvariantMonitor> monitors_;
  void check(int n);
  std::vector<Disk> disks_;
  std::vector<int> restarts_;
  std::vector<int> group_;  // partition group per node; all equal when healed
  std::deque<raft::Message> queue_;  // the network, in send order
  std::string indent_;  // stabilize nests what it prints under headers
};

// "1..3/1 (3 entries)" or "2/1 x": entries as the transcripts print them.
std::vector<std::string> describe_entries(const std::vector<raft::Entry>& entries);

}  // namespace transcript
