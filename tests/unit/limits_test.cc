// Limits of the core: the cap on uncommitted proposals, the portable
// election-timeout draw, and the largest append_entries the core can produce
// still fitting one UDP datagram once encoded and sealed.
#include <gtest/gtest.h>

#include <functional>
#include <iostream>
#include <random>

#include "auth/peer_auth.h"
#include "kv/command.h"
#include "raft/raft.h"
#include "wire/codec.h"
#include "wire/messages.h"

namespace {

using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::Raft;
using raft::Role;

// n1 of {n1, n2, n3}, elected by hand, its no-op committed with n2's
// acknowledgement and n2 in the pipelined (Replicate) state.
struct Leader {
  explicit Leader(const std::function<void(raft::Config&)>& tweak = nullptr,
                  std::vector<std::string> ids = {"n1", "n2", "n3"})
      : ids(std::move(ids)) {
    raft::Config c;
    c.id = this->ids[0];
    c.peers = {this->ids[1], this->ids[2]};
    c.pre_vote = false;
    if (tweak) tweak(c);
    r = std::make_unique<Raft>(c, raft::Recovered{});
    for (int i = 0; i < 100 && r->role() != Role::Candidate; ++i) r->tick();
    Message yes;
    yes.type = MessageType::RequestVoteReply;
    yes.from = this->ids[1];
    yes.to = this->ids[0];
    yes.term = r->current_term();
    yes.vote_granted = true;
    r->step(yes);
    EXPECT_EQ(r->role(), Role::Leader);
    flush();
    ack(this->ids[1]);
    EXPECT_EQ(r->commit_index(), 1u) << "the no-op";
  }
  // Sends, persists and applies everything; returns the messages sent.
  std::vector<Message> flush() {
    std::vector<Message> sent;
    while (r->has_ready()) {
      raft::Ready rd = r->ready();
      sent.insert(sent.end(), rd.messages.begin(), rd.messages.end());
      r->advance(rd);
    }
    return sent;
  }
  // `peer` acknowledges everything the leader has.
  void ack(const std::string& peer) {
    Message m;
    m.type = MessageType::AppendEntriesReply;
    m.from = peer;
    m.to = ids[0];
    m.term = r->current_term();
    m.success = true;
    m.match_index = r->log().last_index();
    r->step(m);
    flush();
  }
  std::vector<std::string> ids;
  std::unique_ptr<Raft> r;
};

// ------------------------------------------------------ uncommitted cap ----

TEST(UncommittedCap, DefaultsAre4096EntriesAnd8MiB) {
  raft::Config c;
  EXPECT_EQ(c.max_uncommitted_entries, 4096u);
  EXPECT_EQ(c.max_uncommitted_bytes, std::size_t{8} << 20);
}

TEST(UncommittedCap, ProposalsBeyondTheEntryCapAreRefusedUntilCommit) {
  Leader l([](raft::Config& c) { c.max_uncommitted_entries = 8; });
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(l.r->propose("{}").has_value()) << i;
  EXPECT_TRUE(l.r->proposals_full(0));
  EXPECT_FALSE(l.r->propose("{}").has_value()) << "a ninth uncommitted entry";
  EXPECT_EQ(l.r->log().last_index(), 9u) << "the refused proposal left no trace";
  l.flush();
  EXPECT_FALSE(l.r->propose("{}").has_value()) << "sent but not acknowledged: still uncommitted";
  l.ack("n2");
  EXPECT_EQ(l.r->commit_index(), 9u);
  EXPECT_FALSE(l.r->proposals_full(0));
  EXPECT_TRUE(l.r->propose("{}").has_value()) << "room again after the commit";
}

TEST(UncommittedCap, ProposalsBeyondTheByteCapAreRefusedUntilCommit) {
  Leader l([](raft::Config& c) { c.max_uncommitted_bytes = 1000; });
  const std::string hundred(100, 'x');
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(l.r->propose(hundred).has_value()) << i;
  EXPECT_EQ(l.r->uncommitted_bytes(), 1000u);
  EXPECT_FALSE(l.r->proposals_full(0)) << "exactly at the cap is not beyond it";
  EXPECT_TRUE(l.r->proposals_full(1));
  EXPECT_FALSE(l.r->propose("y").has_value());
  EXPECT_TRUE(l.r->propose("").has_value()) << "a proposal of 0 bytes stays within the byte cap";
  l.flush();
  l.ack("n2");
  EXPECT_EQ(l.r->uncommitted_bytes(), 0u);
  EXPECT_TRUE(l.r->propose(hundred).has_value());
  // The cap is strict: a single proposal larger than it is never accepted.
  EXPECT_TRUE(l.r->proposals_full(1001));
}

TEST(UncommittedCap, FollowerRefusesAnywayAndCountsItsOwnTail) {
  raft::Config c;
  c.id = "n2";
  c.peers = {"n1", "n3"};
  c.max_uncommitted_entries = 2;
  Raft r(c, raft::Recovered{});
  EXPECT_FALSE(r.proposals_full(0));
  EXPECT_FALSE(r.propose("{}").has_value()) << "not leader";
  Message m;
  m.type = MessageType::AppendEntries;
  m.from = "n1";
  m.to = "n2";
  m.term = 1;
  for (Index i = 1; i <= 2; ++i) m.entries.push_back(raft::Entry{1, i, raft::EntryType::Command, "abc"});
  r.step(m);
  EXPECT_TRUE(r.proposals_full(0)) << "two uncommitted entries of a cap of two";
  EXPECT_EQ(r.uncommitted_bytes(), 6u);
}

TEST(UncommittedCap, ZeroCapsAreRefused) {
  raft::Config c;
  c.id = "n1";
  c.max_uncommitted_entries = 0;
  EXPECT_THROW(Raft(c, raft::Recovered{}), std::invalid_argument);
  c.max_uncommitted_entries = 1;
  c.max_uncommitted_bytes = 0;
  EXPECT_THROW(Raft(c, raft::Recovered{}), std::invalid_argument);
}

// ------------------------------------------------ election timeout draw ----

TEST(ElectionTimeout, DrawIsAFixedFunctionOfTheGeneratorOutput) {
  // mt19937_64's sequence is fixed by the standard ([rand.predef]/6: the
  // 10000th output from the default seed is 9981545732273789042) ...
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ULL);
  // ... and the reduction is plain arithmetic: floor(bits * 11 / 2^64) + 10.
  EXPECT_EQ(raft::election_ticks_from(0, 10, 20), 10);
  EXPECT_EQ(raft::election_ticks_from(~std::uint64_t{0}, 10, 20), 20);
  EXPECT_EQ(raft::election_ticks_from(std::uint64_t{1} << 63, 10, 20), 15);
  EXPECT_EQ(raft::election_ticks_from(12345, 7, 7), 7);
  // Golden values: the first draws for seed 1, which any standard library
  // must reproduce (computed independently, with a Python mt19937_64).
  std::mt19937_64 seeded(1);
  std::vector<int> draws;
  for (int i = 0; i < 8; ++i) draws.push_back(raft::election_ticks_from(seeded(), 10, 20));
  EXPECT_EQ(draws, (std::vector<int>{11, 11, 14, 10, 13, 20, 15, 10}));
}

TEST(ElectionTimeout, DrawCoversTheRangeEvenly) {
  std::mt19937_64 engine(42);
  std::vector<int> counts(11, 0);
  for (int i = 0; i < 110000; ++i) {
    int t = raft::election_ticks_from(engine(), 10, 20);
    ASSERT_GE(t, 10);
    ASSERT_LE(t, 20);
    ++counts[static_cast<std::size_t>(t - 10)];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
}

// ----------------------------------------- one append fits one datagram ----

// The node refuses a command whose encoded size exceeds this
// (src/node/server.cc, kMaxCommandBytes; repeated here, it is file-local).
constexpr std::size_t kMaxCommandBytes = wire::kMaxDatagramBytes - 1024;

// A kv command of exactly `bytes` encoded bytes (its value padded).
std::string command_of(std::size_t bytes, const std::string& client) {
  kv::Command cmd;
  cmd.client_id = client;
  cmd.seq = raft::kMaxNumber;
  cmd.op = wire::Op::Set;
  cmd.key = std::string(wire::kMaxKeyBytes, 'k');
  const std::size_t base = kv::encode(cmd).size();
  cmd.value = std::string(bytes - base, 'v');
  std::string data = kv::encode(cmd);
  EXPECT_EQ(data.size(), bytes);
  return data;
}

TEST(Datagram, WorstCaseAppendEntriesFitsOneSealedDatagram) {
  // The longest ids the config accepts (64 characters), the node's append
  // bounds (it keeps Config's defaults), commands as large as it admits.
  const std::vector<std::string> ids = {std::string(64, 'a'), std::string(64, 'b'), std::string(64, 'c')};
  const std::string cluster_id(64, 'z');
  Leader l(nullptr, ids);
  const raft::Config& config = l.r->config();
  const std::string client(wire::kMaxClientIdBytes, 'q');
  // Runs of sizes that fill an append by count (48 bytes: 512 of them meet
  // max_append_bytes exactly with the 48-byte estimate), by bytes, and the
  // single largest command, which goes alone whatever max_append_bytes says.
  const std::vector<std::pair<std::size_t, int>> runs = {
      {48, 1100}, {200, 300}, {1000, 60}, {16000, 6}, {24000, 4}, {49104, 3}, {kMaxCommandBytes, 3}};
  for (const auto& [bytes, count] : runs) {
    const std::string data = bytes < 1000 ? std::string(bytes, 'd') : command_of(bytes, client);
    for (int i = 0; i < count; ++i) ASSERT_TRUE(l.r->propose(data).has_value());
  }
  std::vector<Message> sent = l.flush();

  // Every number at its widest (2^53 - 1 has 16 digits): the same bytes a
  // leader of a huge term and log would send.
  const auto widen = [](Message m) {
    m.term = m.prev_log_index = m.prev_log_term = m.leader_commit = m.read_round = raft::kMaxNumber;
    for (raft::Entry& e : m.entries) e.term = e.index = raft::kMaxNumber;
    return m;
  };
  auth::PeerAuth peer_auth(cluster_id, auth::Key{});
  std::size_t appends = 0, largest = 0, largest_entries = 0, most_entries = 0;
  bool carried_largest_command = false;
  for (const Message& m : sent) {
    if (m.type != MessageType::AppendEntries || m.entries.empty()) continue;
    ++appends;
    ASSERT_LE(m.entries.size(), config.max_append_entries);
    most_entries = std::max(most_entries, m.entries.size());
    for (const raft::Entry& e : m.entries) {
      if (e.data.size() == kMaxCommandBytes) {
        carried_largest_command = true;
        EXPECT_EQ(m.entries.size(), 1u) << "a command of the largest size travels alone";
      }
    }
    const std::string datagram = peer_auth.seal(wire::encode(widen(m)));
    if (datagram.size() > largest) {
      largest = datagram.size();
      largest_entries = m.entries.size();
    }
  }
  ASSERT_TRUE(carried_largest_command);
  ASSERT_EQ(most_entries, config.max_append_entries) << "some append was filled by count";
  ASSERT_GT(appends, 10u);
  std::cout << "largest sealed append_entries: " << largest << " bytes (" << largest_entries
            << " entries), limit " << wire::kMaxDatagramBytes << ", margin "
            << static_cast<long>(wire::kMaxDatagramBytes) - static_cast<long>(largest) << "\n";
  EXPECT_LE(largest, wire::kMaxDatagramBytes);
}

}  // namespace
