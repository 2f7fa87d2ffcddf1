// Safety invariants of one Raft server that involve two moments in time
// (Figure 3 and §5): a node's term, vote and commit index only move forward,
// and a leader's log only grows. Raft::check_invariants() (defined in
// invariants.cc) covers the facts about a single state.
//
// Usage, in a test or simulator that drives a core:
//   InvariantMonitor monitor;
//   ... after every tick/step/propose/ready/advance:
//   raft.check_invariants();
//   monitor.observe(raft);
//   ... when the node crashes and restarts from its disk:
//   monitor.restart(disk.hard_state);
#pragma once

#include <optional>

#include "raft/raft.h"

namespace raft {

class InvariantMonitor {
 public:
  // What the monitor remembers of one observation of a node.
  struct State {
    NodeId id;
    Term current_term = 0;
    NodeId voted_for;
    Role role = Role::Follower;
    Index commit_index = 0;
    Index last_index = 0;
    Term last_term = 0;
    // The log's term at probe_index (nullopt when the log ends before it),
    // so the next check can tell whether the previous observation's last
    // entry is still there. observe(const Raft&) probes exactly that index.
    Index probe_index = 0;
    std::optional<Term> probe_term;
  };
  static State capture(const Raft& raft, Index probe_index);

  // Checks the change from the previous observation (if any) to `now`, then
  // remembers `now`. Throws InvariantViolation naming the broken invariant.
  void observe(const Raft& raft);
  // The same for a state built by hand; when the previous observation was a
  // leader, now.probe_index must be its last_index (std::invalid_argument if
  // not), as capture() does.
  void observe(const State& now);

  // The node crashed and restarts as a new incarnation that knows only what
  // it had persisted. Volatile state (role, commit_index, the unpersisted
  // log) may start over, but the next observation's term and vote must not
  // go back behind `persisted` (Figure 2: persistent state survives).
  void restart(const HardState& persisted);
  // Forgets everything: the next observation is checked against nothing.
  void reset();

  const std::optional<State>& previous() const { return previous_; }

 private:
  std::optional<State> previous_;
  bool volatile_known_ = false;  // false after restart(): only term and vote carry over
};

}  // namespace raft
