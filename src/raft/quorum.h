// Majority arithmetic, kept apart from the state machine so it can be checked
// exhaustively (tests/unit/quorum_test.cc). A cluster of n servers has a
// majority of n / 2 + 1: any two majorities share a server, which is what
// makes one leader per term (§5.2) and durable commits (§5.4) possible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "raft/types.h"

namespace raft {

// n / 2 + 1; requires 1 <= cluster_size.
std::size_t majority(std::size_t cluster_size);

// The largest N such that a majority of the values are >= N (Figure 2,
// "Rules for Servers, Leaders": a majority of matchIndex[i] >= N), with one
// value per server of the cluster, the leader's own included. The k-th
// largest value, k = majority(values.size()), found by selection: O(n), and
// no allocation, because it reorders the caller's buffer in place.
// Requires a non-empty span. Also used for ReadIndex rounds (§8): the highest
// round a majority has acknowledged.
std::uint64_t majority_value(std::span<std::uint64_t> values);

// The outcome of an election (§5.2) or pre-vote (§9.6) so far.
enum class VoteResult : std::uint8_t {
  Pending,  // neither a majority of grants nor enough rejections yet
  Won,      // granted >= majority
  Lost,     // even if every server not yet heard from grants, no majority
};
const char* to_string(VoteResult result);

// granted and rejected count distinct servers, the candidate's own vote
// among the granted; requires granted + rejected <= cluster_size.
VoteResult tally_votes(std::size_t granted, std::size_t rejected, std::size_t cluster_size);

}  // namespace raft
