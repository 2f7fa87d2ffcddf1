// Scenario tests of the pure core: a tiny in-memory cluster where the test
// decides exactly which messages are delivered. The randomized simulation
// (tests/sim) explores; these pin down specific rules of the paper.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "raft/raft.h"

namespace {

using raft::Entry;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::Raft;
using raft::Role;

struct Disk {
  raft::HardState hard_state;
  std::vector<Entry> entries;
};

class Cluster {
 public:
  // check_quorum also gives followers a leader lease in which they ignore
  // candidates; most scenarios switch it off to steer elections by hand.
  explicit Cluster(int n, bool pre_vote = true, bool check_quorum = false)
      : pre_vote_(pre_vote), check_quorum_(check_quorum) {
    for (int i = 1; i <= n; ++i) ids_.push_back("n" + std::to_string(i));
    for (const auto& id : ids_) start(id);
  }

  void start(const std::string& id) {
    raft::Config c;
    c.id = id;
    for (const auto& other : ids_)
      if (other != id) c.peers.push_back(other);
    c.heartbeat_ticks = 1;
    c.election_ticks_min = 10;
    c.election_ticks_max = 20;
    c.rng_seed = std::hash<std::string>{}(id) + seed_++;
    c.pre_vote = pre_vote_;
    c.check_quorum = check_quorum_;
    c.max_append_entries = 64;
    nodes_[id] = std::make_unique<Raft>(c, raft::Recovered{disks_[id].hard_state, disks_[id].entries});
  }
  void crash(const std::string& id) { nodes_.erase(id); }

  Raft& node(const std::string& id) { return *nodes_.at(id); }
  bool up(const std::string& id) const { return nodes_.contains(id); }

  // Persists, "sends" into the queue and records applied entries.
  void flush(const std::string& id) {
    Raft& r = node(id);
    while (r.has_ready()) {
      raft::Ready rd = r.ready();
      Disk& d = disks_[id];
      if (rd.hard_state) d.hard_state = *rd.hard_state;
      if (!rd.entries.empty()) {
        d.entries.resize(rd.entries.front().index - 1);
        d.entries.insert(d.entries.end(), rd.entries.begin(), rd.entries.end());
      }
      for (auto& m : rd.messages) queue_.push_back(m);
      for (auto& e : rd.committed) applied_[id].push_back(e);
      for (auto& rs : rd.reads) reads_[id].push_back(rs);
      for (auto ctx : rd.failed_reads) failed_reads_[id].push_back(ctx);
      r.advance(rd);
    }
  }
  void flush_all() {
    for (const auto& id : ids_)
      if (up(id)) flush(id);
  }

  // Delivers queued messages (those `allow` accepts; the rest are dropped)
  // until nothing is left or `max_messages` were delivered.
  int deliver(const std::function<bool(const Message&)>& allow = nullptr, int max_messages = 100000) {
    int delivered = 0;
    flush_all();
    while (!queue_.empty() && delivered < max_messages) {
      Message m = queue_.front();
      queue_.pop_front();
      ++messages_sent_;
      if (!up(m.to) || (allow && !allow(m))) continue;
      node(m.to).step(m);
      flush(m.to);
      ++delivered;
    }
    return delivered;
  }

  void tick(const std::string& id, int times = 1) {
    for (int i = 0; i < times; ++i) {
      node(id).tick();
      flush(id);
    }
  }
  // Ticks one node until it campaigns, then lets the election play out.
  void elect(const std::string& id, const std::function<bool(const Message&)>& allow = nullptr) {
    for (int i = 0; i < 40 && node(id).role() != Role::Leader; ++i) {
      tick(id);
      deliver(allow);
    }
    ASSERT_EQ(node(id).role(), Role::Leader);
  }
  Index propose(const std::string& id, const std::string& data) {
    auto index = node(id).propose(data);
    EXPECT_TRUE(index.has_value());
    flush(id);
    return index.value_or(0);
  }

  std::vector<std::string> ids_;
  std::map<std::string, std::unique_ptr<Raft>> nodes_;
  std::map<std::string, Disk> disks_;
  std::deque<Message> queue_;
  std::map<std::string, std::vector<Entry>> applied_;
  std::map<std::string, std::vector<raft::ReadState>> reads_;
  std::map<std::string, std::vector<std::uint64_t>> failed_reads_;
  long messages_sent_ = 0;
  bool pre_vote_;
  bool check_quorum_;
  std::uint64_t seed_ = 1;
};

TEST(Election, SingleNodeBecomesLeaderAndCommitsAlone) {
  Cluster c(1);
  c.elect("n1");
  Index i = c.propose("n1", "x");
  c.flush("n1");
  EXPECT_EQ(c.node("n1").commit_index(), i);
  ASSERT_EQ(c.applied_["n1"].size(), 2u);  // no-op + x
  EXPECT_EQ(c.applied_["n1"][1].data, "x");
}

TEST(Election, LeaderElectedAndNoopCommittedEverywhere) {
  Cluster c(3);
  c.elect("n1");
  EXPECT_EQ(c.node("n1").current_term(), 1u);
  for (int i = 0; i < 3; ++i) {
    c.tick("n1");
    c.deliver();
  }
  for (const auto& id : c.ids_) {
    EXPECT_EQ(c.node(id).leader_id(), "n1");
    EXPECT_EQ(c.node(id).commit_index(), 1u) << id;
    EXPECT_EQ(c.node(id).log().at(1).type, raft::EntryType::Noop);
  }
}

TEST(Election, VoteIsPersistedInTheReadyThatCarriesTheGrant) {
  Cluster c(3, /*pre_vote=*/false);
  c.tick("n1", 25);  // campaigns
  ASSERT_EQ(c.node("n1").role(), Role::Candidate);
  // Deliver n1's request_vote to n2 by hand and inspect n2's Ready.
  Message req;
  for (auto& m : c.queue_)
    if (m.to == "n2" && m.type == MessageType::RequestVote) req = m;
  c.node("n2").step(req);
  raft::Ready rd = c.node("n2").ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->voted_for, "n1");
  EXPECT_EQ(rd.hard_state->current_term, 1u);
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_TRUE(rd.messages[0].vote_granted);
  c.node("n2").advance(rd);
}

TEST(Election, OneVotePerTermSurvivesRestart) {
  Cluster c(3, /*pre_vote=*/false);
  Message a;
  a.type = MessageType::RequestVote;
  a.from = "n1";
  a.to = "n3";
  a.term = 5;
  c.node("n3").step(a);
  c.flush("n3");
  c.queue_.clear();
  c.crash("n3");
  c.start("n3");
  Message b = a;
  b.from = "n2";
  c.node("n3").step(b);
  c.flush("n3");
  ASSERT_EQ(c.queue_.size(), 1u);
  EXPECT_FALSE(c.queue_.front().vote_granted) << "voted twice in term 5 after a restart";
  EXPECT_EQ(c.node("n3").voted_for(), "n1");
}

TEST(Election, RestrictionRefusesVoteToStaleLog) {
  Cluster c(3, /*pre_vote=*/false);
  c.elect("n1");
  c.propose("n1", "a");
  c.deliver();
  // n3 has the entries; a candidate with an empty log must not get its vote.
  Message req;
  req.type = MessageType::RequestVote;
  req.from = "n2";
  req.to = "n3";
  req.term = 10;
  req.last_log_index = 0;
  req.last_log_term = 0;
  c.queue_.clear();
  c.node("n3").step(req);
  c.flush("n3");
  ASSERT_FALSE(c.queue_.empty());
  EXPECT_FALSE(c.queue_.back().vote_granted);
}

TEST(Election, PreVoteKeepsAnIsolatedNodesTermFromRising) {
  Cluster c(3, true, true);
  c.elect("n1");
  c.deliver();
  // n3 is cut off: its pre-votes never arrive, so it never bumps its term.
  for (int i = 0; i < 200; ++i) {
    c.tick("n3");
    c.deliver([](const Message& m) { return m.from != "n3" && m.to != "n3"; });
  }
  EXPECT_EQ(c.node("n3").current_term(), 1u);
  // When it rejoins, the leader keeps its term and leadership.
  for (int i = 0; i < 5; ++i) {
    c.tick("n1");
    c.deliver();
  }
  EXPECT_EQ(c.node("n1").role(), Role::Leader);
  EXPECT_EQ(c.node("n1").current_term(), 1u);
}

TEST(Election, LeaderLeaseIgnoresDisruptiveCandidate) {
  Cluster c(3, /*pre_vote=*/false, /*check_quorum=*/true);
  c.elect("n1");
  c.deliver();
  Message req;
  req.type = MessageType::RequestVote;
  req.from = "n3";
  req.to = "n2";
  req.term = 9;
  req.last_log_index = 100;
  req.last_log_term = 9;
  c.node("n2").step(req);
  c.flush("n2");
  EXPECT_EQ(c.node("n2").current_term(), 1u) << "a follower that hears a leader must ignore it";
}

TEST(CheckQuorum, IsolatedLeaderStepsDownAndFailsReads) {
  Cluster c(3, true, true);
  c.elect("n1");
  c.deliver();
  c.node("n1").read_index(7);
  for (int i = 0; i < 40; ++i) {
    c.tick("n1");
    c.deliver([](const Message& m) { return m.from != "n1" && m.to != "n1"; });
  }
  EXPECT_NE(c.node("n1").role(), Role::Leader);
  EXPECT_TRUE(c.reads_["n1"].empty()) << "a cut-off leader served a linearizable read";
  ASSERT_EQ(c.failed_reads_["n1"].size(), 1u);
  EXPECT_EQ(c.failed_reads_["n1"][0], 7u);
}

TEST(Replication, CommitNeedsAMajorityOnDisk) {
  Cluster c(5);
  c.elect("n1");
  c.deliver();
  Index i = c.propose("n1", "v");
  // Only n2 receives the append: leader + n2 = 2 of 5, not a majority.
  c.deliver([](const Message& m) { return m.from == "n2" || m.to == "n2"; });
  EXPECT_LT(c.node("n1").commit_index(), i);
  // The appends to n3 and n4 were lost; the leader notices within a couple
  // of heartbeats and resends.
  for (int t = 0; t < 4; ++t) {
    c.tick("n1");
    c.deliver([](const Message& m) { return m.to != "n5" && m.from != "n5"; });
  }
  EXPECT_GE(c.node("n1").commit_index(), i);
}

// Figure 8: an entry from an earlier term, now stored on a majority, must not
// be committed by counting replicas; only with an entry of the current term.
TEST(Replication, Figure8EarlierTermEntryIsNotCommittedByCounting) {
  Cluster c(3, /*pre_vote=*/false);
  c.elect("n1");
  c.deliver();
  // Term 1 leader n1 appends "old" but it reaches nobody.
  c.propose("n1", "old");
  c.queue_.clear();
  // n1 crashes; n2 becomes leader of term 2 with n3's vote, then crashes
  // too before replicating anything of its own.
  c.crash("n1");
  c.elect("n2", [](const Message& m) { return m.type != MessageType::AppendEntries; });
  EXPECT_GE(c.node("n2").current_term(), 2u);
  c.queue_.clear();
  c.crash("n2");
  // n1 restarts and wins term 3 with n3's vote (its log is as up to date).
  c.start("n1");
  for (int i = 0; i < 60 && c.node("n1").role() != Role::Leader; ++i) {
    c.tick("n1");
    c.deliver([](const Message& m) { return m.type != MessageType::AppendEntries; });
  }
  c.queue_.clear();
  ASSERT_EQ(c.node("n1").role(), Role::Leader);
  Index old_index = 2;
  ASSERT_EQ(c.node("n1").log().at(old_index).data, "old");
  // Deliver only n1 -> n3 appends of the old entry while withholding n3's
  // replies: with n3's ack of index 2 alone (the no-op of term 3 at index 3
  // not yet stored), commit must not reach 2.
  Message ack;
  ack.type = MessageType::AppendEntriesReply;
  ack.from = "n3";
  ack.to = "n1";
  ack.term = c.node("n1").current_term();
  ack.success = true;
  ack.match_index = old_index;
  c.node("n1").step(ack);
  c.flush("n1");
  EXPECT_LT(c.node("n1").commit_index(), old_index)
      << "committed an earlier term's entry by counting replicas (§5.4.2)";
  ack.match_index = old_index + 1;  // now n3 also holds the term-3 no-op
  c.node("n1").step(ack);
  c.flush("n1");
  EXPECT_EQ(c.node("n1").commit_index(), old_index + 1);
}

TEST(Replication, FollowerFarBehindIsRepairedInFewRoundTrips) {
  Cluster c(3);
  c.elect("n1");
  c.deliver();
  // n3 misses 2,000 entries.
  for (int i = 0; i < 2000; ++i) c.propose("n1", "e" + std::to_string(i));
  c.deliver([](const Message& m) { return m.to != "n3" && m.from != "n3"; });
  Index last = c.node("n1").log().last_index();
  ASSERT_EQ(c.node("n1").commit_index(), last);
  long before = c.messages_sent_;
  for (int i = 0; i < 10 && c.node("n3").log().last_index() < last; ++i) {
    c.tick("n1");
    c.deliver();
  }
  EXPECT_EQ(c.node("n3").log().last_index(), last);
  // 2,000 entries at 64 per append: about 32 appends plus a handful of probes.
  EXPECT_LT(c.messages_sent_ - before, 120);
}

TEST(Replication, DivergentTailIsSkippedATermAtATime) {
  Cluster c(3, /*pre_vote=*/false);
  c.elect("n1");
  c.deliver();
  // n1 writes 500 entries of term 1 that only n1 stores.
  for (int i = 0; i < 500; ++i) c.propose("n1", "lost" + std::to_string(i));
  c.queue_.clear();
  c.crash("n1");
  c.elect("n2");
  for (int i = 0; i < 300; ++i) c.propose("n2", "kept" + std::to_string(i));
  c.deliver();
  c.start("n1");
  long before = c.messages_sent_;
  for (int i = 0; i < 10; ++i) {
    c.tick("n2");
    c.deliver();
  }
  EXPECT_EQ(c.node("n1").log().last_index(), c.node("n2").log().last_index());
  EXPECT_EQ(c.node("n1").log().last_term(), c.node("n2").current_term());
  EXPECT_LT(c.messages_sent_ - before, 80) << "backtracking went entry by entry";
}

TEST(Replication, StaleDuplicateAppendDoesNotTruncateNewerEntries) {
  Cluster c(3);
  c.elect("n1");
  c.deliver();
  c.propose("n1", "a");
  // Capture the append for "a" to n2, let everything else proceed.
  Message old;
  for (auto& m : c.queue_)
    if (m.to == "n2" && m.type == MessageType::AppendEntries && !m.entries.empty()) old = m;
  c.deliver();
  c.propose("n1", "b");
  c.deliver();
  Index before = c.node("n2").log().last_index();
  c.node("n2").step(old);  // a late duplicate
  c.flush("n2");
  EXPECT_EQ(c.node("n2").log().last_index(), before);
}

TEST(ReadIndex, ManyReadsShareOneHeartbeatRound) {
  Cluster c(5);
  c.elect("n1");
  for (int i = 0; i < 3; ++i) {
    c.tick("n1");
    c.deliver();
  }
  c.queue_.clear();
  for (std::uint64_t ctx = 1; ctx <= 50; ++ctx) c.node("n1").read_index(ctx);
  c.flush("n1");
  EXPECT_EQ(c.queue_.size(), 4u) << "one heartbeat per follower for all 50 reads";
  EXPECT_TRUE(c.node("n1").log().last_index() == 1) << "reads must not append to the log";
  c.deliver();
  EXPECT_EQ(c.reads_["n1"].size(), 50u);
}

TEST(ReadIndex, NewLeaderWaitsForAnEntryOfItsTerm) {
  Cluster c(3);
  for (int i = 0; i < 25; ++i) c.tick("n1");  // campaigns (pre-vote, then vote)
  // Deliver votes but no appends, so the no-op of the new term is not committed.
  c.deliver([](const Message& m) { return m.type != MessageType::AppendEntries; });
  for (int i = 0; i < 10 && c.node("n1").role() != Role::Leader; ++i) {
    c.tick("n1");
    c.deliver([](const Message& m) { return m.type != MessageType::AppendEntries; });
  }
  ASSERT_EQ(c.node("n1").role(), Role::Leader);
  c.node("n1").read_index(1);
  c.deliver([](const Message& m) { return m.type != MessageType::AppendEntries; });
  EXPECT_TRUE(c.reads_["n1"].empty());
  c.tick("n1");
  c.deliver();
  ASSERT_EQ(c.reads_["n1"].size(), 1u);
  EXPECT_GE(c.reads_["n1"][0].index, 1u);
}

TEST(ReadIndex, ReplyToRoundSentBeforeTheReadDoesNotConfirmIt) {
  Cluster c(3);
  c.elect("n1");
  for (int i = 0; i < 3; ++i) {
    c.tick("n1");
    c.deliver();
  }
  c.tick("n1");  // heartbeats of the current round are now in flight
  std::deque<Message> early = c.queue_;
  c.queue_.clear();
  c.node("n1").read_index(42);
  c.flush("n1");
  std::deque<Message> confirming = c.queue_;
  // Replies to the earlier heartbeats must not release the read.
  c.queue_ = early;
  c.deliver();
  EXPECT_TRUE(c.reads_["n1"].empty());
  c.queue_ = confirming;
  c.deliver();
  EXPECT_EQ(c.reads_["n1"].size(), 1u);
}


// ---- Nothing from the wire is trusted beyond what the receiver can check ----
// Each test replays one datagram an attacker on the same host could send (the
// peer MAC stops forgeries at the node; these rules hold even without it).

// A steady 3-node cluster with n1 leading and a few entries committed.
Cluster steady_cluster() {
  Cluster c(3);
  c.elect("n1");
  c.propose("n1", "a");
  c.propose("n1", "b");
  for (int i = 0; i < 3; ++i) {
    c.tick("n1");
    c.deliver();
  }
  return c;
}

Message forged_append(const Cluster& c, const std::string& from, const std::string& to, raft::Term term) {
  (void)c;
  Message m;
  m.type = MessageType::AppendEntries;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

TEST(Untrusted, TermBeyondTwoToThe53IsDroppedAndChangesNothing) {
  Cluster c = steady_cluster();
  raft::Term term = c.node("n2").current_term();
  Message m = forged_append(c, "n1", "n2", std::numeric_limits<std::uint64_t>::max());
  c.node("n2").step(m);
  c.flush("n2");
  EXPECT_EQ(c.node("n2").current_term(), term);
  EXPECT_EQ(c.node("n2").drops().out_of_range, 1u);
  m.term = raft::kMaxNumber + 1;
  c.node("n2").step(m);
  EXPECT_EQ(c.node("n2").current_term(), term);
  EXPECT_EQ(c.node("n2").drops().out_of_range, 2u);
}

TEST(Untrusted, NodeAtTheLastTermNeverWrapsToZero) {
  Cluster c(3, /*pre_vote=*/true);
  // Reach the last term legitimately (a message exactly at the bound is valid).
  Message m = forged_append(c, "n1", "n2", raft::kMaxNumber);
  c.node("n2").step(m);
  c.flush("n2");
  ASSERT_EQ(c.node("n2").current_term(), raft::kMaxNumber);
  c.queue_.clear();
  c.tick("n2", 100);  // many election timeouts
  EXPECT_EQ(c.node("n2").current_term(), raft::kMaxNumber);
  EXPECT_NE(c.node("n2").role(), Role::Leader);
  for (const Message& sent : c.queue_) EXPECT_NE(sent.type, MessageType::RequestVote) << "term + 1 would wrap";
}

TEST(Untrusted, HugeMatchIndexIsDroppedNotRead) {
  Cluster c = steady_cluster();
  Index commit = c.node("n1").commit_index();
  Message m;
  m.type = MessageType::AppendEntriesReply;
  m.from = "n2";
  m.to = "n1";
  m.term = c.node("n1").current_term();
  m.success = true;
  m.match_index = 1'000'000'000'000'000'000ULL;
  c.node("n1").step(m);  // used to index past the log: SIGSEGV
  c.flush("n1");
  EXPECT_EQ(c.node("n1").commit_index(), commit);
  EXPECT_EQ(c.node("n1").drops().out_of_range, 1u);
}

TEST(Untrusted, MatchIndexBeyondWhatWasSentIsIgnoredAndReplicationGoesOn) {
  Cluster c = steady_cluster();
  Index last = c.node("n1").log().last_index();
  c.queue_.clear();
  // n2 "claims" entries the leader has not sent it yet (they exist in the
  // leader's log, so no bound on the log alone catches this).
  for (int i = 0; i < 3; ++i) c.node("n1").propose("x" + std::to_string(i));
  Message m;
  m.type = MessageType::AppendEntriesReply;
  m.from = "n2";
  m.to = "n1";
  m.term = c.node("n1").current_term();
  m.success = true;
  m.match_index = last + 3;
  c.node("n1").step(m);
  EXPECT_EQ(c.node("n1").drops().unsent_match, 1u);
  // The entries still reach n2 and commit with a real majority.
  for (int i = 0; i < 3; ++i) {
    c.tick("n1");
    c.deliver();
  }
  EXPECT_EQ(c.node("n2").log().last_index(), last + 3);
  EXPECT_EQ(c.node("n1").commit_index(), last + 3);
}

TEST(Untrusted, ReadRoundFromTheFutureIsIgnoredAndReadsKeepWorking) {
  Cluster c = steady_cluster();
  Message m;
  m.type = MessageType::AppendEntriesReply;
  m.from = "n2";
  m.to = "n1";
  m.term = c.node("n1").current_term();
  m.success = true;
  m.match_index = c.node("n1").log().last_index();
  m.read_round = std::uint64_t{1} << 52;  // in range, but a round n1 never started
  c.node("n1").step(m);
  EXPECT_EQ(c.node("n1").drops().future_read_round, 1u);
  // A read must still wait for a real majority round ...
  c.queue_.clear();
  c.node("n1").read_index(5);
  c.flush("n1");
  c.node("n1").step(m);  // the forged round again: must not release it
  c.flush("n1");
  EXPECT_TRUE(c.reads_["n1"].empty());
  // ... and is released by it.
  c.deliver();
  ASSERT_EQ(c.reads_["n1"].size(), 1u);
  EXPECT_EQ(c.reads_["n1"][0].ctx, 5u);
}

TEST(Untrusted, EntriesWithDecreasingOrFutureTermsAreDroppedWhole) {
  Cluster c = steady_cluster();
  const raft::Term term = c.node("n2").current_term();
  const Index last = c.node("n2").log().last_index();
  const auto entry = [](raft::Term t, Index i) {
    Entry e;
    e.term = t;
    e.index = i;
    e.data = "forged";
    return e;
  };
  struct Case {
    const char* why;
    std::vector<Entry> entries;
  };
  std::vector<Case> cases = {
      {"term below prev_log_term", {entry(term - 1 == 0 ? 0 : term - 1, last + 1)}},
      {"decreasing terms", {entry(term, last + 1), entry(term - 1, last + 2)}},
      {"term above the message's term", {entry(term + 1, last + 1)}},
      {"index gap", {entry(term, last + 2)}},
  };
  for (const Case& k : cases) {
    Message m = forged_append(c, "n1", "n2", term);
    m.prev_log_index = last;
    m.prev_log_term = c.node("n2").log().term(last);
    m.entries = k.entries;
    m.leader_commit = last + 2;
    std::uint64_t before = c.node("n2").drops().bad_entries;
    c.node("n2").step(m);
    c.flush("n2");
    EXPECT_EQ(c.node("n2").drops().bad_entries, before + 1) << k.why;
    EXPECT_EQ(c.node("n2").log().last_index(), last) << k.why;
    EXPECT_EQ(c.disks_["n2"].entries.size(), last) << k.why;
  }
}

TEST(Untrusted, PendingReadsAreBounded) {
  Cluster c = steady_cluster();
  const std::size_t limit = c.node("n1").config().max_pending_reads;
  std::size_t accepted = 0;
  for (std::uint64_t ctx = 1; ctx <= limit + 10; ++ctx) accepted += c.node("n1").read_index(ctx) ? 1 : 0;
  EXPECT_EQ(accepted, limit);
  c.deliver();
  EXPECT_EQ(c.reads_["n1"].size(), limit);
  EXPECT_TRUE(c.node("n1").read_index(99999)) << "room again once the reads were served";
}

}  // namespace
