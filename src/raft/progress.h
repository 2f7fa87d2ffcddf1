// The leader's view of one follower (Figure 2's nextIndex and matchIndex),
// plus the flow-control state that keeps a lossy network from stalling it.
#pragma once

#include <cstdint>
#include <deque>

#include "raft/types.h"

namespace raft {

struct Progress {
  enum class State : std::uint8_t {
    // Unsure where the follower's log matches: one append in flight at a
    // time, resent on each heartbeat until it answers.
    Probe,
    // Follower is known to match at match_index: appends are pipelined.
    Replicate,
  };

  Index next_index = 1;
  Index match_index = 0;
  State state = State::Probe;
  bool probe_sent = false;           // Probe: an append is in flight
  std::deque<Index> inflight;        // Replicate: last index of each unacked append
  int heartbeats_without_progress = 0;
  Index match_at_last_heartbeat = 0;
  bool recent_active = false;        // heard from since the last check-quorum round
  std::uint64_t acked_read_round = 0;

  void become_probe(Index next) {
    state = State::Probe;
    next_index = next;
    probe_sent = false;
    inflight.clear();
  }
  void become_replicate() {
    state = State::Replicate;
    next_index = match_index + 1;
    probe_sent = false;
    inflight.clear();
    heartbeats_without_progress = 0;
  }
  // Frees the pipeline slots of every append acknowledged up to `index`.
  void free_inflight_up_to(Index index) {
    while (!inflight.empty() && inflight.front() <= index) inflight.pop_front();
  }
};

}  // namespace raft
