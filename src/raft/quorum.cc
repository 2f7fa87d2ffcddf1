#include "raft/quorum.h"

#include <algorithm>
#include <functional>

#include "raft/assert.h"

namespace raft {

std::size_t majority(std::size_t cluster_size) {
  RAFT_ASSERT(cluster_size >= 1, "a cluster has at least one server");
  return cluster_size / 2 + 1;
}

std::uint64_t majority_value(std::span<std::uint64_t> values) {
  // The k-th largest value is reached by k servers (itself and the k - 1
  // above it), and no larger value is: k = majority is the answer.
  const std::size_t k = majority(values.size());
  auto kth = values.begin() + static_cast<std::ptrdiff_t>(k - 1);
  std::nth_element(values.begin(), kth, values.end(), std::greater<>());
  return *kth;
}

const char* to_string(VoteResult result) {
  switch (result) {
    case VoteResult::Pending: return "pending";
    case VoteResult::Won: return "won";
    case VoteResult::Lost: return "lost";
  }
  return "unknown";
}

VoteResult tally_votes(std::size_t granted, std::size_t rejected, std::size_t cluster_size) {
  RAFT_ASSERT(granted <= cluster_size && rejected <= cluster_size - granted,
              "tally of " + std::to_string(granted) + " granted and " + std::to_string(rejected) +
                  " rejected votes in a cluster of " + std::to_string(cluster_size));
  const std::size_t needed = majority(cluster_size);
  if (granted >= needed) return VoteResult::Won;
  const std::size_t outstanding = cluster_size - granted - rejected;
  if (granted + outstanding < needed) return VoteResult::Lost;
  return VoteResult::Pending;
}

}  // namespace raft
