// Raft::check_invariants() and raft::InvariantMonitor: every invariant can
// fail (each is broken on purpose and must be named), a conflict with a
// committed entry is fatal, advance() vouches only for what is still in the
// log, and the monitor catches changes between two states.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>

#include "raft/invariants.h"
#include "raft/raft.h"

namespace raft {

// Reaches into the core to build states a correct core never reaches.
struct TestPeer {
  static Index& commit_index(Raft& r) { return r.commit_index_; }
  static Index& persisted_index(Raft& r) { return r.persisted_index_; }
  static Index& last_applied(Raft& r) { return r.last_applied_; }
  static NodeId& voted_for(Raft& r) { return r.voted_for_; }
  static Progress& progress(Raft& r, const NodeId& peer) { return r.progress_.at(peer); }
  static void add_pending_read(Raft& r, std::uint64_t ctx, Index index) { r.pending_reads_.push_back({ctx, index, 0}); }
  static void add_ready_read(Raft& r, std::uint64_t ctx, Index index) { r.ready_reads_.push_back({ctx, index}); }
};

}  // namespace raft

namespace {

using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::InvariantMonitor;
using raft::Message;
using raft::MessageType;
using raft::Raft;
using raft::Role;
using raft::TestPeer;

// Runs f and expects an InvariantViolation whose what() contains `name`.
void expect_broken(const std::function<void()>& f, const std::string& name) {
  try {
    f();
    ADD_FAILURE() << "no InvariantViolation; expected one naming \"" << name << "\"";
  } catch (const raft::InvariantViolation& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << "what(): " << e.what();
  }
}

Entry entry(raft::Term term, Index index, std::string data = "{}") {
  Entry e;
  e.term = term;
  e.index = index;
  e.data = std::move(data);
  return e;
}

raft::Config config_for(const std::string& id, const std::vector<std::string>& ids, std::uint64_t seed = 1) {
  raft::Config c;
  c.id = id;
  for (const auto& other : ids)
    if (other != id) c.peers.push_back(other);
  c.rng_seed = seed;
  return c;
}

// The whole-cluster check (every invariant after every input of a randomized
// cluster with crashes, loss and reordering) is the simulator's: tests/sim
// runs check_invariants() and an InvariantMonitor per node after every step
// of the node's own driver, so this file needs no cluster loop of its own.

// ------------------------------------------------------------------------
// Single-state invariants: each one broken on purpose.

TEST(CheckInvariants, RecoveredLogWithAGapIsRefused) {
  raft::Recovered rec{HardState{3, ""}, {entry(1, 1), entry(1, 3)}, std::nullopt};
  expect_broken([&] { Raft r(config_for("n1", {"n1", "n2", "n3"}), rec); }, "log indexes are contiguous from the base");
}

TEST(CheckInvariants, RecoveredLogWithDecreasingTermsIsRefused) {
  raft::Recovered rec{HardState{3, ""}, {entry(1, 1), entry(3, 2), entry(2, 3)}, std::nullopt};
  expect_broken([&] { Raft r(config_for("n1", {"n1", "n2", "n3"}), rec); }, "log terms never decrease");
}

TEST(CheckInvariants, RecoveredEntryAboveTheTermIsRefused) {
  raft::Recovered rec{HardState{1, ""}, {entry(1, 1), entry(2, 2)}, std::nullopt};
  expect_broken([&] { Raft r(config_for("n1", {"n1", "n2", "n3"}), rec); }, "no entry's term exceeds current_term");
}

// A follower holding entries 1..3 of term 1.
Raft follower_with_three_entries() {
  return Raft(config_for("n2", {"n1", "n2", "n3"}),
              raft::Recovered{HardState{1, "n1"}, {entry(1, 1), entry(1, 2), entry(1, 3)}, std::nullopt});
}

TEST(CheckInvariants, AConsistentStatePasses) {
  Raft r = follower_with_three_entries();
  EXPECT_NO_THROW(r.check_invariants());
}

TEST(CheckInvariants, CommitIndexBeyondTheLog) {
  Raft r = follower_with_three_entries();
  TestPeer::commit_index(r) = 4;
  expect_broken([&] { r.check_invariants(); }, "commit_index <= last log index");
}

TEST(CheckInvariants, PersistedIndexBeyondTheLog) {
  Raft r = follower_with_three_entries();
  TestPeer::persisted_index(r) = 4;
  expect_broken([&] { r.check_invariants(); }, "persisted index <= last log index");
}

TEST(CheckInvariants, LastAppliedBeyondCommit) {
  Raft r = follower_with_three_entries();
  TestPeer::commit_index(r) = 2;
  TestPeer::last_applied(r) = 3;
  expect_broken([&] { r.check_invariants(); }, "last_applied <= commit_index");
}

// A single-node-majority-free leader: n1 of three, elected by hand, its
// no-op at index 1 not yet acknowledged.
Raft leader_of_three() {
  raft::Config c = config_for("n1", {"n1", "n2", "n3"});
  c.pre_vote = false;
  Raft r(c, raft::Recovered{});
  for (int i = 0; i < 100 && r.role() != Role::Candidate; ++i) r.tick();
  Message yes;
  yes.type = MessageType::RequestVoteReply;
  yes.from = "n2";
  yes.to = "n1";
  yes.term = r.current_term();
  yes.vote_granted = true;
  r.step(yes);
  EXPECT_EQ(r.role(), Role::Leader);
  raft::Ready rd = r.ready();
  r.advance(rd);
  return r;
}

TEST(CheckInvariants, LeaderThatVotedForAnother) {
  Raft r = leader_of_three();
  EXPECT_NO_THROW(r.check_invariants());
  TestPeer::voted_for(r) = "n2";
  expect_broken([&] { r.check_invariants(); }, "a leader has voted for itself in its term");
}

TEST(CheckInvariants, ProgressMatchNotBelowNext) {
  Raft r = leader_of_three();
  raft::Progress& pr = TestPeer::progress(r, "n2");
  pr.match_index = 1;
  pr.sent_index = 1;
  pr.next_index = 1;
  expect_broken([&] { r.check_invariants(); }, "match_index < next_index");
}

TEST(CheckInvariants, ProgressNextBeyondTheLog) {
  Raft r = leader_of_three();
  TestPeer::progress(r, "n3").next_index = r.log().last_index() + 2;
  expect_broken([&] { r.check_invariants(); }, "next_index <= last log index + 1");
}

TEST(CheckInvariants, ProgressMatchAboveSent) {
  Raft r = leader_of_three();
  raft::Progress& pr = TestPeer::progress(r, "n2");
  pr.match_index = 1;
  pr.next_index = 2;
  pr.sent_index = 0;
  expect_broken([&] { r.check_invariants(); }, "match_index <= sent_index <= last log index");
}

TEST(CheckInvariants, ProgressSentBeyondTheLog) {
  Raft r = leader_of_three();
  TestPeer::progress(r, "n2").sent_index = r.log().last_index() + 1;
  expect_broken([&] { r.check_invariants(); }, "match_index <= sent_index <= last log index");
}

TEST(CheckInvariants, PendingReadAboveCommit) {
  Raft r = leader_of_three();
  TestPeer::add_pending_read(r, 7, r.commit_index() + 1);
  expect_broken([&] { r.check_invariants(); }, "pending reads' indexes <= commit_index");
}

TEST(CheckInvariants, ReleasedReadAboveCommit) {
  Raft r = leader_of_three();
  TestPeer::add_ready_read(r, 8, r.commit_index() + 1);
  expect_broken([&] { r.check_invariants(); }, "pending reads' indexes <= commit_index");
}

TEST(CheckInvariants, FollowerWithPendingReads) {
  Raft r = follower_with_three_entries();
  TestPeer::add_pending_read(r, 9, 0);
  expect_broken([&] { r.check_invariants(); }, "only a leader tracks followers and pending reads");
}

// ------------------------------------------------------------------------
// A conflict with a committed entry (§5.4.3, Figure 3) is fatal.

Message append(const std::string& from, raft::Term term, Index prev_index, raft::Term prev_term,
               std::vector<Entry> entries, Index leader_commit) {
  Message m;
  m.type = MessageType::AppendEntries;
  m.from = from;
  m.to = "n2";
  m.term = term;
  m.prev_log_index = prev_index;
  m.prev_log_term = prev_term;
  m.entries = std::move(entries);
  m.leader_commit = leader_commit;
  return m;
}

TEST(CommittedEntries, AConflictingAppendIsAFatalNamedError) {
  Raft r = follower_with_three_entries();
  r.step(append("n1", 1, 3, 1, {}, 3));  // n1 tells n2 that 1..3 are committed
  ASSERT_EQ(r.commit_index(), 3u);
  // A (broken) leader of term 2 would replace entry 2.
  try {
    r.step(append("n3", 2, 1, 1, {entry(2, 2)}, 3));
    FAIL() << "overwrote a committed entry";
  } catch (const raft::InvariantViolation& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("append_entries from n3 would overwrite committed entry 2 (term 1) with term 2"),
              std::string::npos)
        << what;
    EXPECT_EQ(what.rfind("src/raft/", 0), 0u) << "names the file and line: " << what;
  }
  EXPECT_EQ(r.log().term(2), 1u) << "the committed entry is still there";
}

TEST(CommittedEntries, ConflictsAboveCommitStillTruncate) {
  Raft r = follower_with_three_entries();
  r.step(append("n1", 1, 3, 1, {}, 1));
  ASSERT_EQ(r.commit_index(), 1u);
  r.step(append("n3", 2, 1, 1, {entry(2, 2)}, 1));
  EXPECT_EQ(r.log().last_index(), 2u);
  EXPECT_EQ(r.log().term(2), 2u);
  EXPECT_NO_THROW(r.check_invariants());
}

// ------------------------------------------------------------------------
// advance() (as etcd's stableTo) only vouches for entries still in the log.

TEST(Advance, EntriesRewrittenSinceReadyAreNotMarkedPersisted) {
  Raft r(config_for("n2", {"n1", "n2", "n3"}), raft::Recovered{});
  r.step(append("n1", 1, 0, 0, {entry(1, 1), entry(1, 2), entry(1, 3)}, 0));
  raft::Ready rd = r.ready();
  ASSERT_EQ(rd.entries.size(), 3u);
  // Before advance(), a leader of term 2 replaces entries 2 and 3 with one.
  r.step(append("n3", 2, 1, 1, {entry(2, 2)}, 0));
  r.advance(rd);
  EXPECT_EQ(r.persisted_index(), 1u) << "entry 2 of term 2 was never in a Ready";
  raft::Ready next = r.ready();
  ASSERT_EQ(next.entries.size(), 1u);
  EXPECT_EQ(next.entries[0], entry(2, 2));
  r.advance(next);
  EXPECT_EQ(r.persisted_index(), 2u);
  EXPECT_NO_THROW(r.check_invariants());
}

// ------------------------------------------------------------------------
// InvariantMonitor, fed two states by hand.

InvariantMonitor::State state(raft::Term term, std::string vote, Role role = Role::Follower, Index commit = 0,
                              Index last = 0, raft::Term last_term = 0) {
  InvariantMonitor::State s;
  s.id = "n1";
  s.current_term = term;
  s.voted_for = std::move(vote);
  s.role = role;
  s.commit_index = commit;
  s.last_index = last;
  s.last_term = last_term;
  s.probe_index = last;
  s.probe_term = last_term;
  return s;
}

TEST(Monitor, TermNeverDecreases) {
  InvariantMonitor m;
  m.observe(state(5, ""));
  EXPECT_NO_THROW(m.observe(state(6, "")));
  expect_broken([&] { m.observe(state(4, "")); }, "current_term never decreases");
}

TEST(Monitor, VoteIsSetAtMostOncePerTerm) {
  InvariantMonitor m;
  m.observe(state(5, ""));
  EXPECT_NO_THROW(m.observe(state(5, "n2"))) << "from nobody to someone";
  EXPECT_NO_THROW(m.observe(state(5, "n2")));
  EXPECT_NO_THROW(m.observe(state(6, "n3"))) << "a new term, a new vote";
  expect_broken([&] { m.observe(state(6, "n2")); }, "the vote is set at most once per term");
  m.reset();
  m.observe(state(6, "n3"));
  expect_broken([&] { m.observe(state(6, "")); }, "the vote is set at most once per term");
}

TEST(Monitor, CommitIndexNeverDecreases) {
  InvariantMonitor m;
  m.observe(state(2, "", Role::Follower, 7, 9, 2));
  EXPECT_NO_THROW(m.observe(state(2, "", Role::Follower, 8, 9, 2)));
  expect_broken([&] { m.observe(state(3, "", Role::Follower, 6, 9, 2)); }, "commit_index never decreases");
}

TEST(Monitor, LeaderLogOnlyGrowsInItsTerm) {
  InvariantMonitor m;
  m.observe(state(3, "n1", Role::Leader, 0, 5, 3));
  InvariantMonitor::State grown = state(3, "n1", Role::Leader, 0, 7, 3);
  grown.probe_index = 5;  // what capture() does: look where the log ended before
  grown.probe_term = 3;
  EXPECT_NO_THROW(m.observe(grown));
  // Shorter: an entry removed.
  InvariantMonitor::State shorter = state(3, "n1", Role::Leader, 0, 6, 3);
  shorter.probe_index = 7;
  shorter.probe_term.reset();
  expect_broken([&] { m.observe(shorter); }, "a leader's log only grows in its term");
  // As long, but a different entry at the old last index: changed.
  m.reset();
  m.observe(state(3, "n1", Role::Leader, 0, 5, 3));
  InvariantMonitor::State changed = state(3, "n1", Role::Leader, 0, 6, 3);
  changed.probe_index = 5;
  changed.probe_term = 2;
  expect_broken([&] { m.observe(changed); }, "a leader's log only grows in its term");
  // A follower's log may be cut (§5.3), and so may a leader's once it has
  // stepped down or moved to another term.
  m.reset();
  m.observe(state(3, "n1", Role::Leader, 0, 5, 3));
  EXPECT_NO_THROW(m.observe(state(4, "", Role::Follower, 0, 2, 2)));
}

TEST(Monitor, AHandBuiltStateMustProbeThePreviousLastIndex) {
  InvariantMonitor m;
  m.observe(state(3, "n1", Role::Leader, 0, 5, 3));
  InvariantMonitor::State s = state(3, "n1", Role::Leader, 0, 6, 3);  // probes 6, not 5
  EXPECT_THROW(m.observe(s), std::invalid_argument);
}

TEST(Monitor, RestartForgetsVolatileStateButNotThePersistedTermAndVote) {
  InvariantMonitor m;
  m.observe(state(5, "n2", Role::Leader, 9, 12, 5));
  m.restart(HardState{5, "n2"});
  EXPECT_NO_THROW(m.observe(state(5, "n2", Role::Follower, 0, 10, 5))) << "commit_index restarts at 0";
  m.restart(HardState{5, "n2"});
  expect_broken([&] { m.observe(state(4, "")); }, "current_term never decreases");
  m.restart(HardState{5, "n2"});
  expect_broken([&] { m.observe(state(5, "n3")); }, "the vote is set at most once per term");
  m.restart(HardState{5, ""});
  EXPECT_NO_THROW(m.observe(state(5, "n3"))) << "no vote was persisted in term 5";
}

TEST(Monitor, ObservesARealCoreThroughAnElection) {
  Raft r = leader_of_three();
  InvariantMonitor m;
  m.observe(r);
  r.propose("{\"a\":1}");
  m.observe(r);
  EXPECT_EQ(m.previous()->last_index, 2u);
  EXPECT_EQ(m.previous()->role, Role::Leader);
}

}  // namespace
