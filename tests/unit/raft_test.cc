// The core's rules that read badly as transcripts: bounds at scale. They
// drive cores through the transcripts' own cluster (tests/raft/cluster.h),
// so there is one test loop for the core, and count what it prints.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "raft/cluster.h"

namespace {

using transcript::Cluster;
using transcript::MessageFilter;

long count_lines(const std::vector<std::string>& out, std::size_t from, const std::string& prefix) {
  return std::count_if(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(), [&](const std::string& line) {
    return line.find(prefix) != std::string::npos;
  });
}

// §5.3 with the fast backtracking hint: a follower 2,000 entries behind is
// repaired in a few dozen appends, not one round trip per entry.
TEST(Replication, FollowerFarBehindIsRepairedInFewRoundTrips) {
  std::vector<std::string> out;
  Cluster c(out);
  c.add_nodes(3, {});
  c.campaign(1);
  c.stabilize();
  c.partition({{1, 2}, {3}});
  c.propose(1, "e", 2000);
  c.stabilize(5000);
  const raft::Index last = c.node(1).log().last_index();
  ASSERT_EQ(c.node(1).commit_index(), last);
  ASSERT_LT(c.node(3).log().last_index(), 10u);
  c.heal();
  const std::size_t before = out.size();
  for (int i = 0; i < 10 && c.node(3).log().last_index() < last; ++i) {
    c.tick(1, 1);
    c.stabilize(5000);
  }
  EXPECT_EQ(c.node(3).log().last_index(), last);
  // 2,000 entries at 64 per append: about 32 appends plus a handful of probes.
  EXPECT_LT(count_lines(out, before, "send n1->n3 append_entries"), 60);
}

// The transcript read_bounds.txt shows the rule with a bound of 3; this is
// the default bound, 4,096 reads, end to end.
TEST(Untrusted, PendingReadsAreBounded) {
  std::vector<std::string> out;
  Cluster c(out);
  c.add_nodes(3, {});
  c.campaign(1);
  c.stabilize();
  const std::size_t limit = c.node(1).config().max_pending_reads;
  std::vector<std::uint64_t> ctxs;
  for (std::uint64_t ctx = 1; ctx <= limit + 10; ++ctx) ctxs.push_back(ctx);
  const std::size_t before = out.size();
  c.read_index(1, ctxs);
  EXPECT_EQ(count_lines(out, before, "refused read"), 10);
  c.stabilize();
  EXPECT_EQ(count_lines(out, before, "  read ctx="), static_cast<long>(limit));
  const std::size_t after = out.size();
  c.read_index(1, {99999});
  EXPECT_EQ(count_lines(out, after, "refused read"), 0) << "room again once the reads were served";
}

// DESIGN §1: the leader counts its own log toward a majority only once it is
// on disk. With a driver that steps the core between ready() and advance()
// (raft.h allows it), one follower's ack must not commit an entry that only
// that follower has durably: the leader's copy is still in flight to disk.
TEST(Replication, LeaderCountsItselfOnlyForWhatItHasPersisted) {
  std::vector<std::string> out;
  Cluster c(out);
  c.add_nodes(3, {});
  c.campaign(1);
  c.stabilize();
  raft::Raft& leader = c.node(1);
  const raft::Index commit = leader.commit_index();
  const raft::Index index = leader.propose("x").value();
  raft::Ready rd = leader.ready();  // the entry is handed out, not yet persisted
  ASSERT_FALSE(rd.entries.empty());
  raft::Message ack;
  ack.type = raft::MessageType::AppendEntriesReply;
  ack.from = "n2";
  ack.to = "n1";
  ack.term = leader.current_term();
  ack.success = true;
  ack.match_index = index;
  leader.step(ack);
  EXPECT_EQ(leader.commit_index(), commit) << "committed with one durable copy out of three";
  leader.advance(rd);  // now the leader's own copy is on disk: two of three
  EXPECT_EQ(leader.commit_index(), index);
}

}  // namespace
