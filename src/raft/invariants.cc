#include "raft/invariants.h"

#include <stdexcept>
#include <string>

namespace raft {

namespace {

std::string str(std::uint64_t v) { return std::to_string(v); }
std::string vote_name(const NodeId& v) { return v.empty() ? std::string("nobody") : v; }

}  // namespace

// The facts Figure 2 and §5 establish for every state of a server. Each
// check names the rule; the first broken one throws.
void Raft::check_log_entries() const {
  const auto& self = config_.id;
  const auto require = [](bool ok, const char* invariant, auto&& details) {
    if (!ok) [[unlikely]] detail::invariant_broken(invariant, details());
  };
  Term previous = log_.base_term();
  for (Index i = log_.first_index(); i <= log_.last_index(); ++i) {
    const Entry& e = log_.at(i);
    require(e.index == i, "log indexes are contiguous from the base",
            [&] { return self + " holds an entry labelled " + str(e.index) + " at position " + str(i); });
    require(e.term >= previous, "log terms never decrease", [&] {
      return self + " has term " + str(e.term) + " at index " + str(i) + " after term " + str(previous);
    });
    require(e.term <= current_term_, "no entry's term exceeds current_term", [&] {
      return self + " has an entry of term " + str(e.term) + " at index " + str(i) + " but current_term " +
             str(current_term_);
    });
    previous = e.term;
  }
}

void Raft::check_invariants() const {
  const auto& self = config_.id;
  const auto require = [](bool ok, const char* invariant, auto&& details) {
    if (!ok) [[unlikely]] detail::invariant_broken(invariant, details());
  };
  const Index last = log_.last_index();

  // The log (§5.3): entry i sits at index i; terms never decrease along it;
  // no entry comes from a term this server has not reached. Log::append
  // keeps the first two by construction (RAFT_ASSERT), so after every step
  // only the last entry needs a look: the full walk runs once, on recovery
  // (check_log_entries()), where the entries came from disk.
  if (last > log_.base_index()) {
    require(log_.at(last).index == last, "log indexes are contiguous from the base",
            [&] { return self + " holds an entry labelled " + str(log_.at(last).index) + " at position " + str(last); });
    require(log_.last_term() <= current_term_, "no entry's term exceeds current_term", [&] {
      return self + " has an entry of term " + str(log_.last_term()) + " at index " + str(last) + " but current_term " +
             str(current_term_);
    });
  }

  // Thesis §5.1: only applied, hence committed, state is snapshotted, and
  // the log is compacted no further than the latest snapshot; the base's
  // term is that of the snapshot's history, so never above current_term.
  const Index base = log_.base_index();
  require(base <= snapshot_.meta.index && snapshot_.meta.index <= commit_index_,
          "base index <= snapshot index <= commit_index", [&] {
            return self + " has base " + str(base) + ", snapshot " + str(snapshot_.meta.index) + ", commit_index " +
                   str(commit_index_);
          });
  require((snapshot_.meta.index == 0) == (snapshot_.data == nullptr), "a snapshot index has snapshot data",
          [&] { return self + " has snapshot index " + str(snapshot_.meta.index) + " and " +
                       (snapshot_.data ? "data" : "no data"); });
  require(log_.base_term() <= current_term_ && snapshot_.meta.term <= current_term_,
          "no snapshot's term exceeds current_term", [&] {
            return self + " has base term " + str(log_.base_term()) + ", snapshot term " + str(snapshot_.meta.term) +
                   ", current_term " + str(current_term_);
          });
  require(persisted_index_ >= base, "entries at or below the base are durable",
          [&] { return self + " has persisted index " + str(persisted_index_) + " below base " + str(base); });
  require(last_applied_ >= base || snapshot_pending_, "the state machine holds everything compacted", [&] {
    return self + " has last_applied " + str(last_applied_) + " below base " + str(base) +
           " with no snapshot to hand out";
  });
  if (incoming_) {
    require(incoming_->bytes.size() < incoming_->total_bytes && incoming_->total_bytes <= config_.max_snapshot_bytes,
            "a snapshot being received is incomplete and within max_snapshot_bytes", [&] {
              return self + " holds " + str(incoming_->bytes.size()) + " of " + str(incoming_->total_bytes) +
                     " bytes of snapshot " + str(incoming_->meta.index);
            });
  }

  require(commit_index_ <= last, "commit_index <= last log index",
          [&] { return self + " has commit_index " + str(commit_index_) + " and last index " + str(last); });
  require(persisted_index_ <= last, "persisted index <= last log index",
          [&] { return self + " has persisted index " + str(persisted_index_) + " and last index " + str(last); });
  require(last_applied_ <= commit_index_, "last_applied <= commit_index", [&] {
    return self + " has last_applied " + str(last_applied_) + " and commit_index " + str(commit_index_);
  });

  if (role_ != Role::Leader) {
    require(progress_.empty() && pending_reads_.empty() && reads_awaiting_commit_.empty(),
            "only a leader tracks followers and pending reads", [&] {
              return self + " is " + to_string(role_) + " with " + str(progress_.size()) + " progress entries and " +
                     str(pending_reads_.size() + reads_awaiting_commit_.size()) + " pending reads";
            });
  } else {
    // §5.2: a candidate votes for itself, and only a candidate becomes leader.
    require(voted_for_ == self, "a leader has voted for itself in its term", [&] {
      return self + " leads term " + str(current_term_) + " having voted for " + vote_name(voted_for_);
    });
    for (const auto& [peer, pr] : progress_) {
      if (pr.state == Progress::State::Snapshot) {
        require(pr.snapshot_acked <= pr.snapshot_next && pr.snapshot_index <= snapshot_.meta.index &&
                    pr.snapshot_index <= pr.sent_index,
                "a snapshot transfer stays inside the snapshot it sends", [&] {
                  return self + "'s progress of " + peer + ": snapshot " + str(pr.snapshot_index) + " acked " +
                         str(pr.snapshot_acked) + " next " + str(pr.snapshot_next) + ", sent_index " +
                         str(pr.sent_index) + ", latest snapshot " + str(snapshot_.meta.index);
                });
      }
      require(pr.match_index < pr.next_index, "match_index < next_index", [&] {
        return self + "'s progress of " + peer + ": match_index " + str(pr.match_index) + ", next_index " +
               str(pr.next_index);
      });
      require(pr.next_index <= last + 1, "next_index <= last log index + 1", [&] {
        return self + "'s progress of " + peer + ": next_index " + str(pr.next_index) + ", last index " + str(last);
      });
      require(pr.match_index <= pr.sent_index && pr.sent_index <= last, "match_index <= sent_index <= last log index",
              [&] {
                return self + "'s progress of " + peer + ": match_index " + str(pr.match_index) + ", sent_index " +
                       str(pr.sent_index) + ", last index " + str(last);
              });
    }
  }
  // §8: a read point is a commit index the leader had; it never runs ahead.
  for (const PendingRead& r : pending_reads_) {
    require(r.index <= commit_index_, "pending reads' indexes <= commit_index", [&] {
      return self + " has read ctx " + str(r.ctx) + " at index " + str(r.index) + " above commit_index " +
             str(commit_index_);
    });
  }
  for (const ReadState& r : ready_reads_) {
    require(r.index <= commit_index_, "pending reads' indexes <= commit_index", [&] {
      return self + " has released read ctx " + str(r.ctx) + " at index " + str(r.index) + " above commit_index " +
             str(commit_index_);
    });
  }
}

InvariantMonitor::State InvariantMonitor::capture(const Raft& raft, Index probe_index) {
  State s;
  s.id = raft.id();
  s.current_term = raft.current_term();
  s.voted_for = raft.voted_for();
  s.role = raft.role();
  s.commit_index = raft.commit_index();
  s.last_index = raft.log().last_index();
  s.last_term = raft.log().last_term();
  s.probe_index = probe_index;
  s.probe_term = raft.log().term_at(probe_index);
  return s;
}

void InvariantMonitor::observe(const Raft& raft) {
  observe(capture(raft, previous_ ? previous_->last_index : 0));
}

void InvariantMonitor::observe(const State& now) {
  if (previous_) {
    const State& was = *previous_;
    const std::string& who = now.id;
    // §5.1: terms increase monotonically; a server never goes back to an
    // earlier term, not even across a restart (current_term is persistent).
    if (now.current_term < was.current_term) {
      detail::invariant_broken("current_term never decreases",
                               who + " went from term " + str(was.current_term) + " to " + str(now.current_term));
    }
    // §5.2: each server votes for at most one candidate in a given term, so
    // within a term the vote may only go from nobody to someone.
    if (now.current_term == was.current_term && !was.voted_for.empty() && now.voted_for != was.voted_for) {
      detail::invariant_broken("the vote is set at most once per term",
                               who + " changed its vote in term " + str(now.current_term) + " from " +
                                   was.voted_for + " to " + vote_name(now.voted_for));
    }
    if (volatile_known_) {
      // What is committed stays committed (§5.4; Figure 2: commitIndex
      // "increases monotonically"), until a restart resets it to 0.
      if (now.commit_index < was.commit_index) {
        detail::invariant_broken("commit_index never decreases", who + " went from commit_index " +
                                                                     str(was.commit_index) + " to " +
                                                                     str(now.commit_index));
      }
      // Figure 3, Leader Append-Only: a leader never overwrites or deletes
      // entries in its log; it only appends new ones.
      if (was.role == Role::Leader && now.role == Role::Leader && now.current_term == was.current_term) {
        if (now.probe_index != was.last_index) {
          throw std::invalid_argument("InvariantMonitor: the state probes index " + str(now.probe_index) +
                                      ", not the previous last index " + str(was.last_index));
        }
        if (now.last_index < was.last_index || now.probe_term != was.last_term) {
          detail::invariant_broken(
              "a leader's log only grows in its term",
              who + ", leader of term " + str(now.current_term) + ", had last entry " + str(was.last_index) +
                  " (term " + str(was.last_term) + ") and now " +
                  (now.probe_term ? "term " + str(*now.probe_term) + " there, last index " + str(now.last_index)
                                  : "ends at " + str(now.last_index)));
        }
      }
    }
  }
  previous_ = now;
  volatile_known_ = true;
}

void InvariantMonitor::restart(const HardState& persisted) {
  State floor;
  if (previous_) floor.id = previous_->id;
  floor.current_term = persisted.current_term;
  floor.voted_for = persisted.voted_for;
  previous_ = floor;
  volatile_known_ = false;
}

void InvariantMonitor::reset() {
  previous_.reset();
  volatile_known_ = false;
}

}  // namespace raft
