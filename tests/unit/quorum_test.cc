// The majority arithmetic of src/raft/quorum.h against brute-force
// references, for every cluster of 1..7 servers: every tuple of small match
// indexes (against "the best minimum over every majority subset") and every
// assignment of votes (against "does any completion of the missing votes
// win").
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "raft/quorum.h"
#include "raft/raft.h"

namespace {

using raft::VoteResult;

constexpr std::size_t kMaxCluster = 7;
constexpr std::uint64_t kIndexValues = 4;  // match indexes 0..3

// The commit rule read literally (Figure 2): the largest N such that some
// set of at least a majority of servers all have match_index >= N, i.e. the
// best minimum over every subset of majority size or more.
std::uint64_t reference_majority_value(const std::vector<std::uint64_t>& values) {
  const std::size_t n = values.size();
  const std::size_t needed = n / 2 + 1;
  std::uint64_t best = 0;
  for (std::uint32_t subset = 1; subset < (1u << n); ++subset) {
    if (static_cast<std::size_t>(__builtin_popcount(subset)) < needed) continue;
    std::uint64_t lowest = UINT64_MAX;
    for (std::size_t i = 0; i < n; ++i)
      if (subset & (1u << i)) lowest = std::min(lowest, values[i]);
    best = std::max(best, lowest);
  }
  return best;
}

TEST(Quorum, MajorityIsMoreThanHalf) {
  for (std::size_t n = 1; n <= kMaxCluster; ++n) {
    EXPECT_GT(2 * raft::majority(n), n) << n;
    EXPECT_LE(2 * (raft::majority(n) - 1), n) << "majority(" << n << ") is the smallest such size";
  }
  EXPECT_THROW(raft::majority(0), raft::InvariantViolation);
}

TEST(Quorum, MajorityValueMatchesEveryMajoritySubsetForEveryTuple) {
  std::size_t tuples = 0;
  for (std::size_t n = 1; n <= kMaxCluster; ++n) {
    std::vector<std::uint64_t> values(n, 0);
    std::size_t combinations = 1;
    for (std::size_t i = 0; i < n; ++i) combinations *= kIndexValues;
    for (std::size_t code = 0; code < combinations; ++code) {
      std::size_t rest = code;
      for (std::size_t i = 0; i < n; ++i, rest /= kIndexValues) values[i] = rest % kIndexValues;
      std::vector<std::uint64_t> buffer = values;
      const std::uint64_t got = raft::majority_value(buffer);
      ASSERT_EQ(got, reference_majority_value(values)) << "cluster of " << n << ", tuple " << code;
      // It only reorders the caller's buffer.
      std::vector<std::uint64_t> a = buffer, b = values;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      ASSERT_EQ(a, b);
      ++tuples;
    }
  }
  EXPECT_EQ(tuples, 4u + 16 + 64 + 256 + 1024 + 4096 + 16384);
}

TEST(Quorum, MajorityValueOfNoServersIsAnError) {
  std::vector<std::uint64_t> none;
  EXPECT_THROW(raft::majority_value(none), raft::InvariantViolation);
}

// The election outcome read literally: won if every way the missing votes
// could go wins, lost if none does, pending otherwise.
VoteResult reference_tally(std::size_t granted, std::size_t rejected, std::size_t n) {
  const std::size_t missing = n - granted - rejected;
  std::size_t wins = 0;
  for (std::uint32_t completion = 0; completion < (1u << missing); ++completion) {
    const std::size_t yes = granted + static_cast<std::size_t>(__builtin_popcount(completion));
    if (2 * yes > n) ++wins;
  }
  if (wins == (1u << missing)) return VoteResult::Won;
  if (wins == 0) return VoteResult::Lost;
  return VoteResult::Pending;
}

TEST(Quorum, TallyMatchesEveryCompletionForEveryVoteAssignment) {
  for (std::size_t n = 1; n <= kMaxCluster; ++n) {
    // Each server has granted (0), rejected (1) or not answered yet (2).
    std::size_t assignments = 1;
    for (std::size_t i = 0; i < n; ++i) assignments *= 3;
    for (std::size_t code = 0; code < assignments; ++code) {
      std::size_t granted = 0, rejected = 0, rest = code;
      for (std::size_t i = 0; i < n; ++i, rest /= 3) {
        if (rest % 3 == 0) ++granted;
        if (rest % 3 == 1) ++rejected;
      }
      ASSERT_EQ(raft::tally_votes(granted, rejected, n), reference_tally(granted, rejected, n))
          << "cluster of " << n << ": " << granted << " granted, " << rejected << " rejected";
    }
  }
}

TEST(Quorum, TallyOfMoreVotesThanServersIsAnError) {
  EXPECT_THROW(raft::tally_votes(2, 2, 3), raft::InvariantViolation);
  EXPECT_THROW(raft::tally_votes(4, 0, 3), raft::InvariantViolation);
}

// The core uses the tally: in a cluster of 4 (majority 3), two rejections
// already make a win impossible, so the candidate stops waiting for more.
TEST(Quorum, CandidateOfFourStepsDownAfterTwoRejections) {
  raft::Config c;
  c.id = "n1";
  c.peers = {"n2", "n3", "n4"};
  c.pre_vote = false;
  c.check_quorum = false;
  raft::Raft r(c, raft::Recovered{});
  for (int i = 0; i < 100 && r.role() != raft::Role::Candidate; ++i) r.tick();
  ASSERT_EQ(r.role(), raft::Role::Candidate);
  (void)r.ready();
  raft::Message no;
  no.type = raft::MessageType::RequestVoteReply;
  no.to = "n1";
  no.term = r.current_term();
  no.vote_granted = false;
  no.from = "n2";
  r.step(no);
  EXPECT_EQ(r.role(), raft::Role::Candidate) << "1 granted + 1 rejected of 4: still pending";
  no.from = "n3";
  r.step(no);
  EXPECT_EQ(r.role(), raft::Role::Follower) << "1 granted + 2 rejected of 4: lost";
}

}  // namespace
