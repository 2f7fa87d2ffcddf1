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
    // The follower needs entries this leader has compacted: it is sent the
    // snapshot, chunk by chunk (thesis §5.3), then probed from after it.
    Snapshot,
  };

  Index next_index = 1;
  Index match_index = 0;
  // The highest index any append of this term told the follower about
  // (prev_log_index + entries). A reply claiming to match beyond it is not
  // an answer to anything we sent, and is dropped.
  Index sent_index = 0;
  State state = State::Probe;
  bool probe_sent = false;           // Probe: an append is in flight
  struct Inflight {
    Index last_index;             // last entry the append carried
    std::uint64_t heartbeat;      // the leader's heartbeat count when it was sent
  };
  std::deque<Inflight> inflight;  // Replicate: appends sent and not yet acked
  bool recent_active = false;        // heard from since the last check-quorum round
  std::uint64_t acked_read_round = 0;

  // Snapshot state: which snapshot, the next byte to send, the bytes the
  // follower said it holds, and the heartbeat count when that last grew
  // (no growth for a heartbeat: resend from snapshot_acked).
  Index snapshot_index = 0;
  std::uint64_t snapshot_next = 0;
  std::uint64_t snapshot_acked = 0;
  std::uint64_t snapshot_progress_heartbeat = 0;

  void become_snapshot(Index index, std::uint64_t heartbeat) {
    state = State::Snapshot;
    probe_sent = false;
    inflight.clear();
    snapshot_index = index;
    snapshot_next = 0;
    snapshot_acked = 0;
    snapshot_progress_heartbeat = heartbeat;
  }

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
  }
  // Frees the pipeline slots of every append acknowledged up to `index`.
  void free_inflight_up_to(Index index) {
    while (!inflight.empty() && inflight.front().last_index <= index) inflight.pop_front();
  }
};

}  // namespace raft
