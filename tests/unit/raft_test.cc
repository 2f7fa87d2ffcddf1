// Scenario tests of the pure core that do not read well as transcripts.
// The rules of the paper are pinned down by the transcript tests
// (tests/raft/testdata/*.txt: elections, Figure 8, ReadIndex, pre-vote,
// check-quorum, the lease, backtracking, untrusted input); what is left here
// are properties of scale, stated as bounds over thousands of messages or
// reads, which a transcript could only list line by line.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>

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

// The transcript read_bounds.txt shows the rule with a bound of 3; this is
// the default bound, 4096 reads, end to end.
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
