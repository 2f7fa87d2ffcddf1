// node::Driver on a one-node cluster (it elects itself) and as a member of a
// scripted 3-node one (parallel leader write, §10.2.1), with a recording
// Storage and Transport: the order of the Ready contract, exactly-once
// answers, and that a throwing Storage leaves the driver unused.
#include "node/driver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Recorder : node::Storage, node::Transport {
  std::vector<std::string> events;  // "hard_state", "append", "sync", "send", "reply"
  std::vector<wire::ClientReply> replies;
  std::vector<raft::Message> sent;
  bool fail_sync = false;

  void save_hard_state(const raft::HardState&) override { events.push_back("hard_state"); }
  void append(const std::vector<raft::Entry>&) override { events.push_back("append"); }
  void sync() override {
    events.push_back("sync");
    if (fail_sync) throw std::runtime_error("fsync failed");
  }
  void save_snapshot(const raft::Snapshot&) override { events.push_back("snapshot"); }
  void compact_log(raft::Index) override { events.push_back("compact"); }
  void reset_log(raft::Index) override { events.push_back("reset"); }
  void send(const raft::Message& m) override {
    events.push_back(m.type == raft::MessageType::AppendEntries ? "send append_entries" : "send");
    sent.push_back(m);
  }
  void flush() override { events.push_back("flush"); }
  void reply(const net::Endpoint&, const wire::ClientReply& r) override {
    events.push_back("reply");
    replies.push_back(r);
  }
};

struct OneNode {
  Recorder io;
  logging::Logger log{"test", logging::LogLevel::Error};
  node::Driver driver{config(), raft::Recovered{}, io, io, log};
  net::Endpoint client{0x7f000001, 9000};

  static raft::Config config() {
    raft::Config c;
    c.id = "n1";
    return c;
  }
  void elect() {
    for (int i = 0; i < 50 && driver.core().role() != raft::Role::Leader; ++i) {
      driver.tick();
      driver.process_ready();
    }
    ASSERT_EQ(driver.core().role(), raft::Role::Leader);
  }
  wire::ClientRequest set(std::uint64_t seq, const std::string& value) {
    wire::ClientRequest r;
    r.src = "c1";
    r.seq = seq;
    r.op = wire::Op::Set;
    r.key = "x";
    r.value = value;
    return r;
  }
};

TEST(Driver, AnswersAWriteOnlyAfterItsEntryIsSynced) {
  OneNode n;
  n.elect();
  n.io.events.clear();
  n.driver.client_request(n.set(1, "a"), n.client);
  EXPECT_TRUE(n.io.replies.empty());  // waits for the commit
  n.driver.process_ready();
  ASSERT_EQ(n.io.replies.size(), 1u);
  EXPECT_TRUE(n.io.replies[0].ok);
  EXPECT_EQ(n.io.replies[0].src, "n1");
  EXPECT_EQ(n.io.replies[0].value, "a");
  auto sync = std::find(n.io.events.begin(), n.io.events.end(), "sync");
  auto reply = std::find(n.io.events.begin(), n.io.events.end(), "reply");
  EXPECT_LT(sync, reply);
  EXPECT_EQ(n.driver.state_machine().get("x"), "a");
}

TEST(Driver, ARetriedSeqGetsTheFirstAnswerAndIsNotAppliedAgain) {
  OneNode n;
  n.elect();
  n.driver.client_request(n.set(1, "a"), n.client);
  n.driver.process_ready();
  const raft::Index last = n.driver.core().log().last_index();
  n.driver.client_request(n.set(1, "a"), n.client);  // the reply was lost: same seq again
  n.driver.process_ready();
  ASSERT_EQ(n.io.replies.size(), 2u);
  EXPECT_EQ(n.io.replies[1], n.io.replies[0]);
  EXPECT_EQ(n.driver.core().log().last_index(), last);  // answered from the session
}

TEST(Driver, RefusesASeqFarAheadAndAServerIdAsClient) {
  OneNode n;
  n.elect();
  n.driver.client_request(n.set((std::uint64_t{1} << 32) + 1, "a"), n.client);
  wire::ClientRequest as_server = n.set(1, "b");
  as_server.src = "n1";
  n.driver.client_request(as_server, n.client);
  ASSERT_EQ(n.io.replies.size(), 2u);
  EXPECT_EQ(n.io.replies[0].error, "bad_request");
  EXPECT_EQ(n.io.replies[1].error, "bad_request");
  n.driver.process_ready();
  EXPECT_EQ(n.driver.state_machine().last_seq("c1"), 0u);
}

TEST(Driver, AStorageErrorPassesThroughBeforeAnythingIsSentOrAnswered) {
  OneNode n;
  n.elect();
  n.io.events.clear();
  n.io.fail_sync = true;
  n.driver.client_request(n.set(1, "a"), n.client);
  EXPECT_THROW(n.driver.process_ready(), std::runtime_error);
  EXPECT_TRUE(n.io.replies.empty());
  EXPECT_EQ(n.io.events.back(), "sync");  // nothing after the failed fsync
}

TEST(Driver, StatusReportsTheCoreAndTheGateCounts) {
  OneNode n;
  n.elect();
  node::GateDrops gate;
  gate.bad_mac = 3;
  wire::StatusReply s = n.driver.status(gate);
  EXPECT_EQ(s.id, "n1");
  EXPECT_EQ(s.role, "leader");
  EXPECT_EQ(s.leader, "n1");
  EXPECT_TRUE(s.src.empty());
  ASSERT_EQ(s.peer_drops.size(), 11u);
  EXPECT_EQ(s.peer_drops[1], (std::pair<std::string, std::uint64_t>{"bad_mac", 3}));
}

// A member of a 3-node cluster, n1, with n2 and n3 as scripted peers.
struct ThreeNodes {
  Recorder io;
  logging::Logger log{"test", logging::LogLevel::Error};
  node::Driver driver{config(), raft::Recovered{}, io, io, log};

  static raft::Config config() {
    raft::Config c;
    c.id = "n1";
    c.peers = {"n2", "n3"};
    return c;
  }
  raft::Message from_n2(raft::MessageType type, raft::Term term) {
    raft::Message m;
    m.type = type;
    m.from = "n2";
    m.to = "n1";
    m.term = term;
    return m;
  }
  // Times out, wins n2's pre-vote and then its vote.
  void elect() {
    for (int i = 0; i < 50 && io.sent.empty(); ++i) {
      driver.tick();
      driver.process_ready();
    }
    ASSERT_FALSE(io.sent.empty());
    for (int round = 0; round < 2 && driver.core().role() != raft::Role::Leader; ++round) {
      const raft::Message ask = io.sent.back();
      ASSERT_EQ(ask.type, raft::MessageType::RequestVote);
      raft::Message grant = from_n2(raft::MessageType::RequestVoteReply, ask.term);
      grant.pre_vote = ask.pre_vote;
      grant.vote_granted = true;
      io.sent.clear();
      driver.step(grant);
      if (driver.core().role() != raft::Role::Leader) driver.process_ready();
    }
    ASSERT_EQ(driver.core().role(), raft::Role::Leader);
  }
};

std::ptrdiff_t position(const std::vector<std::string>& events, const std::string& what) {
  return std::find(events.begin(), events.end(), what) - events.begin();
}

TEST(Driver, ALeadersAppendsLeaveBeforeItsOwnFsync) {
  // Thesis §10.2.1: the follower's fsync runs alongside the leader's.
  ThreeNodes n;
  n.elect();
  n.io.events.clear();
  n.driver.process_ready();  // the new term's no-op: appended, shipped, synced
  const auto& e = n.io.events;
  const auto send = position(e, "send append_entries");
  const auto sync = position(e, "sync");
  ASSERT_LT(sync, static_cast<std::ptrdiff_t>(e.size()));
  EXPECT_LT(send, sync);
  EXPECT_LT(position(e, "flush"), sync);  // handed to the kernel, not just queued
  // Its own entry does not count toward a commit until it is durable: with
  // no follower ack the no-op stays uncommitted.
  EXPECT_EQ(n.driver.core().commit_index(), 0u);
}

TEST(Driver, AFollowerAcksOnlyAfterItsFsync) {
  ThreeNodes n;
  raft::Message append = n.from_n2(raft::MessageType::AppendEntries, 1);
  raft::Entry entry;
  entry.index = 1;
  entry.term = 1;
  entry.type = raft::EntryType::Noop;
  append.entries.push_back(entry);
  n.driver.step(append);
  n.driver.process_ready();
  const auto& e = n.io.events;
  const auto sync = position(e, "sync");
  ASSERT_LT(sync, static_cast<std::ptrdiff_t>(e.size()));
  ASSERT_EQ(n.io.sent.size(), 1u);
  EXPECT_EQ(n.io.sent[0].type, raft::MessageType::AppendEntriesReply);
  EXPECT_TRUE(n.io.sent[0].success);
  EXPECT_GT(position(e, "send"), sync);
}

}  // namespace
