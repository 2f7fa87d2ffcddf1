// The UDP fault proxy (cmd/proxy, docs/proxy.md).
//
// Part 1 checks the proxy's pure, header-only pieces directly: the link
// table (rules, blocks, partitions, decisions), the control commands, the
// delay queue, the LRU map and the config parser.
//
// Part 2 runs the real ./proxy binary (from $PROXY_BINARY, or next to this
// test binary) against fake nodes and clients: UDP sockets of this test on
// 127.0.0.1. Every wait is bounded; the proxy is stopped by its PID.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../cmd/proxy/commands.h"
#include "../../cmd/proxy/delay_queue.h"
#include "../../cmd/proxy/link_table.h"
#include "../../cmd/proxy/lru_map.h"
#include "../../cmd/proxy/proxy_config.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using proxy::Decision;
using proxy::LinkSettings;
using proxy::LinkTable;
using proxy::Verdict;

// =====================================================================
// Part 1: pure pieces
// =====================================================================

LinkTable three_nodes() { return LinkTable({"n1", "n2", "n3"}); }

TEST(LinkTable, EndpointsByName) {
  LinkTable t = three_nodes();
  EXPECT_EQ(t.endpoint("n1"), 0);
  EXPECT_EQ(t.endpoint("n3"), 2);
  EXPECT_EQ(t.endpoint("client"), t.client());
  EXPECT_EQ(t.endpoint("*"), t.any());
  EXPECT_FALSE(t.endpoint("n4").has_value());
  EXPECT_EQ(t.link_name(0, t.client()), "n1>client");
  EXPECT_EQ(t.link_name(t.any(), 1), "*>n2");
}

TEST(LinkTable, MostSpecificRuleWinsAsAWhole) {
  LinkTable t = three_nodes();
  EXPECT_EQ(t.effective(0, 1), LinkSettings{});  // default: perfect
  LinkSettings all{.drop = 0.1};
  LinkSettings to_n2{.delay_ms = 20};
  LinkSettings from_n1{.duplicate = 0.5};
  LinkSettings exact{.jitter_ms = 3};
  t.set_rule(t.any(), t.any(), all);
  EXPECT_EQ(t.effective(0, 1), all);
  EXPECT_EQ(t.effective(t.client(), 0), all);  // "*" matches clients too
  t.set_rule(t.any(), 1, to_n2);
  EXPECT_EQ(t.effective(0, 1), to_n2);
  EXPECT_EQ(t.effective(0, 2), all);
  t.set_rule(0, t.any(), from_n1);
  EXPECT_EQ(t.effective(0, 1), from_n1);  // (a,*) beats (*,b)
  EXPECT_EQ(t.effective(2, 1), to_n2);
  t.set_rule(0, 1, exact);
  EXPECT_EQ(t.effective(0, 1), exact);
  EXPECT_EQ(t.effective(0, 1).drop, 0.0);  // no field-by-field merging
  EXPECT_TRUE(t.clear_rule(0, 1));
  EXPECT_FALSE(t.clear_rule(0, 1));
  EXPECT_EQ(t.effective(0, 1), from_n1);
}

TEST(LinkTable, PartitionWithBridgeAndIsolatedNodes) {
  LinkTable t({"n1", "n2", "n3", "n4"});
  t.set_partition({{0, 1}, {1, 2}});  // n2 bridges; n4 in no group
  EXPECT_EQ(t.refusal(0, 1), nullptr);
  EXPECT_EQ(t.refusal(1, 2), nullptr);
  EXPECT_EQ(t.refusal(2, 1), nullptr);
  EXPECT_STREQ(t.refusal(0, 2), "partition");
  EXPECT_STREQ(t.refusal(2, 0), "partition");
  EXPECT_STREQ(t.refusal(3, 0), "partition");
  EXPECT_STREQ(t.refusal(1, 3), "partition");
  // Clients are never cut by a partition.
  EXPECT_EQ(t.refusal(t.client(), 3), nullptr);
  EXPECT_EQ(t.refusal(3, t.client()), nullptr);
  t.set_partition({});  // no groups: every node isolated
  EXPECT_STREQ(t.refusal(0, 1), "partition");
  t.clear_partition();
  EXPECT_EQ(t.refusal(0, 2), nullptr);
}

TEST(LinkTable, BlocksAreOneWayAndWildcardsMatch) {
  LinkTable t = three_nodes();
  t.block(0, 1);
  EXPECT_STREQ(t.refusal(0, 1), "block");
  EXPECT_EQ(t.refusal(1, 0), nullptr);
  t.block(t.any(), 2);
  EXPECT_STREQ(t.refusal(t.client(), 2), "block");
  EXPECT_STREQ(t.refusal(1, 2), "block");
  EXPECT_EQ(t.refusal(2, 1), nullptr);
  t.block(t.client(), t.any());
  EXPECT_STREQ(t.refusal(t.client(), 0), "block");
  EXPECT_EQ(t.refusal(0, t.client()), nullptr);
  EXPECT_TRUE(t.unblock(0, 1));
  EXPECT_FALSE(t.unblock(0, 1));
  EXPECT_EQ(t.refusal(0, 1), nullptr);
}

TEST(LinkTable, HealKeepsFaultRulesButClearsEveryBlock) {
  LinkTable t = three_nodes();
  t.set_rule(0, 1, LinkSettings{.drop = 0.3, .delay_ms = 5, .blocked = true});
  t.block(1, 0);
  t.set_partition({{0}, {1, 2}});
  EXPECT_STREQ(t.refusal(0, 1), "partition");
  t.heal();
  EXPECT_EQ(t.refusal(0, 1), nullptr);
  EXPECT_EQ(t.refusal(1, 0), nullptr);
  EXPECT_FALSE(t.partition().has_value());
  ASSERT_NE(t.rule(0, 1), nullptr);
  EXPECT_EQ(t.rule(0, 1)->drop, 0.3);
  EXPECT_EQ(t.rule(0, 1)->delay_ms, 5);
  EXPECT_FALSE(t.rule(0, 1)->blocked);
  t.block(1, 0);
  t.set_partition({{0}});
  t.reset();
  EXPECT_EQ(t.rule(0, 1), nullptr);
  EXPECT_EQ(t.refusal(1, 0), nullptr);
  EXPECT_EQ(t.refusal(1, 2), nullptr);
}

TEST(LinkTable, DecideCountsAndDrawsDelaysInRange) {
  LinkTable t = three_nodes();
  std::mt19937_64 rng(1);
  // Perfect link: one copy, no delay.
  Decision d = t.decide(0, 1, rng);
  EXPECT_EQ(d.verdict, Verdict::kPass);
  EXPECT_EQ(d.copies, 1);
  EXPECT_EQ(d.delay_us[0], 0);
  // drop = 1 drops everything.
  t.set_rule(0, 1, LinkSettings{.drop = 1});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(t.decide(0, 1, rng).verdict, Verdict::kDropped);
  EXPECT_EQ(t.counters(0, 1).received, 101u);
  EXPECT_EQ(t.counters(0, 1).dropped, 100u);
  // duplicate = 1 always makes two copies, each with its own delay in range.
  t.set_rule(1, 2, LinkSettings{.delay_ms = 10, .jitter_ms = 4, .duplicate = 1});
  std::set<std::int64_t> delays;
  for (int i = 0; i < 200; ++i) {
    d = t.decide(1, 2, rng);
    ASSERT_EQ(d.copies, 2);
    for (int c = 0; c < 2; ++c) {
      EXPECT_GE(d.delay_us[c], 6000);
      EXPECT_LE(d.delay_us[c], 14000);
      delays.insert(d.delay_us[c]);
    }
  }
  EXPECT_GT(delays.size(), 100u);
  EXPECT_EQ(t.counters(1, 2).duplicated, 200u);
  // Jitter larger than the delay clamps at zero.
  t.set_rule(2, 0, LinkSettings{.delay_ms = 1, .jitter_ms = 10});
  int zero = 0;
  for (int i = 0; i < 200; ++i) {
    d = t.decide(2, 0, rng);
    EXPECT_GE(d.delay_us[0], 0);
    EXPECT_LE(d.delay_us[0], 11000);
    zero += d.delay_us[0] == 0;
  }
  EXPECT_GT(zero, 50);
  // A refused datagram is counted as blocked, not dropped.
  t.block(0, 2);
  EXPECT_EQ(t.decide(0, 2, rng).verdict, Verdict::kRefused);
  EXPECT_EQ(t.counters(0, 2).blocked, 1u);
  EXPECT_EQ(t.counters(0, 2).dropped, 0u);
  t.reset_counters();
  EXPECT_EQ(t.counters(0, 1).received, 0u);
}

TEST(LinkTable, SameSeedSameDecisions) {
  auto run = [](std::uint64_t seed) {
    LinkTable t = three_nodes();
    t.set_rule(t.any(), t.any(), LinkSettings{.drop = 0.3, .delay_ms = 5, .jitter_ms = 5, .duplicate = 0.2});
    std::mt19937_64 rng(seed);
    std::vector<std::int64_t> trace;
    for (int i = 0; i < 500; ++i) {
      const Decision d = t.decide(i % 3, (i + 1) % 3, rng);
      trace.push_back(static_cast<int>(d.verdict) * 1000000000LL + d.copies * 100000000LL + d.delay_us[0]);
    }
    return trace;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(DelayQueue, OrdersByDueTimeThenArrivalAndIsBounded) {
  proxy::DelayQueue<int> q(4);
  EXPECT_FALSE(q.next_due().has_value());
  EXPECT_TRUE(q.push(30, 1, "a", 1));
  EXPECT_TRUE(q.push(10, 2, "b", 1));
  EXPECT_TRUE(q.push(30, 3, "c", 1));
  EXPECT_TRUE(q.push(20, 4, "d", 1));
  EXPECT_FALSE(q.push(5, 5, "e", 1));  // full
  EXPECT_EQ(q.next_due(), 10);
  proxy::DelayQueue<int>::Item item;
  EXPECT_FALSE(q.pop_due(9, item));
  std::vector<int> order;
  std::string payloads;
  while (q.pop_due(100, item)) {
    order.push_back(item.meta);
    payloads += std::string(item.payload.begin(), item.payload.end());
  }
  EXPECT_EQ(order, (std::vector<int>{2, 4, 1, 3}));
  EXPECT_EQ(payloads, "bdac");
  EXPECT_TRUE(q.empty());
}

TEST(LruMap, EvictsLeastRecentlyUsed) {
  proxy::LruMap<int, std::string> m(2);
  EXPECT_FALSE(m.insert(1, "one").has_value());
  EXPECT_FALSE(m.insert(2, "two").has_value());
  ASSERT_NE(m.find(1), nullptr);  // 1 is now the most recent
  const auto evicted = m.insert(3, "three");
  ASSERT_TRUE(evicted.has_value());
  EXPECT_EQ(evicted->first, 2);
  EXPECT_EQ(evicted->second, "two");
  EXPECT_EQ(m.find(2), nullptr);
  EXPECT_EQ(*m.find(1), "one");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_TRUE(m.erase(1));
  EXPECT_EQ(m.size(), 1u);
}

json run_command(LinkTable& t, const std::string& text) {
  const proxy::CommandOutcome out = proxy::execute_command(text, t, proxy::ProxyStatus{});
  json reply = json::parse(out.reply);
  EXPECT_EQ(reply.at("ok").get<bool>(), out.ok) << text;
  return reply;
}

void expect_error(LinkTable& t, const std::string& text, const std::string& fragment) {
  const json reply = run_command(t, text);
  EXPECT_FALSE(reply.at("ok").get<bool>()) << text;
  ASSERT_TRUE(reply.contains("error")) << text;
  EXPECT_NE(reply["error"].get<std::string>().find(fragment), std::string::npos)
      << text << " -> " << reply["error"];
}

TEST(Commands, SetClearAndState) {
  LinkTable t = three_nodes();
  json r = run_command(t, R"({"cmd":"set","from":"n1","to":"*","drop":0.25,"delay_ms":10,"jitter_ms":5,"duplicate":0.1})");
  ASSERT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(r["link"], "n1>*");
  EXPECT_EQ(t.effective(0, 2), (LinkSettings{.drop = 0.25, .delay_ms = 10, .jitter_ms = 5, .duplicate = 0.1}));
  r = run_command(t, R"({"cmd":"set","from":"client","to":"n2"})");  // every field defaults to 0
  EXPECT_EQ(t.effective(t.client(), 1), LinkSettings{});
  ASSERT_NE(t.rule(t.client(), 1), nullptr);
  r = run_command(t, R"({"cmd":"block","from":"*","to":"n3"})");
  EXPECT_EQ(r["blocked"], "*>n3");
  r = run_command(t, R"({"cmd":"partition","groups":[["n1","n2"],["n2","n3"]]})");
  EXPECT_EQ(r["partition"], json::parse(R"([["n1","n2"],["n2","n3"]])"));
  r = run_command(t, R"({"cmd":"state"})");
  ASSERT_TRUE(r["ok"].get<bool>());
  EXPECT_EQ(r["rules"].size(), 2u);
  EXPECT_EQ(r["blocks"], json::parse(R"([{"from":"*","to":"n3"}])"));
  EXPECT_EQ(r["partition"].size(), 2u);
  EXPECT_EQ(r["nodes"], json::parse(R"(["n1","n2","n3"])"));
  r = run_command(t, R"({"cmd":"clear","from":"n1","to":"*"})");
  EXPECT_TRUE(r["removed"].get<bool>());
  r = run_command(t, R"({"cmd":"clear","from":"n1","to":"*"})");
  EXPECT_TRUE(r["ok"].get<bool>());
  EXPECT_FALSE(r["removed"].get<bool>());
  r = run_command(t, R"({"cmd":"heal"})");
  r = run_command(t, R"({"cmd":"state"})");
  EXPECT_TRUE(r["partition"].is_null());
  EXPECT_TRUE(r["blocks"].empty());
  EXPECT_EQ(r["rules"].size(), 1u);
  r = run_command(t, R"({"cmd":"reset"})");
  r = run_command(t, R"({"cmd":"state"})");
  EXPECT_TRUE(r["rules"].empty());
}

TEST(Commands, StatsListsEveryLinkAndResets) {
  LinkTable t({"n1", "n2"});
  std::mt19937_64 rng(3);
  t.decide(0, 1, rng);
  t.counters(0, 1).forwarded = 1;
  json r = run_command(t, R"({"cmd":"stats"})");
  ASSERT_TRUE(r["ok"].get<bool>());
  const json& links = r["links"];
  for (const char* key : {"n1>n2", "n2>n1", "client>n1", "client>n2", "n1>client", "n2>client"}) {
    ASSERT_TRUE(links.contains(key)) << key;
    for (const char* field : {"forwarded", "dropped", "delayed", "duplicated", "blocked"}) {
      EXPECT_TRUE(links[key].contains(field)) << key << " " << field;
    }
  }
  EXPECT_EQ(links.size(), 6u);
  EXPECT_EQ(links["n1>n2"]["forwarded"], 1);
  EXPECT_EQ(links["n1>n2"]["received"], 1);
  r = run_command(t, R"({"cmd":"stats","reset":true})");
  EXPECT_EQ(r["links"]["n1>n2"]["forwarded"], 1);  // the values before zeroing
  r = run_command(t, R"({"cmd":"stats"})");
  EXPECT_EQ(r["links"]["n1>n2"]["forwarded"], 0);
}

TEST(Commands, BadCommandsAreRejectedWithoutSideEffects) {
  LinkTable t = three_nodes();
  expect_error(t, "not json", "malformed JSON");
  expect_error(t, "", "malformed JSON");
  expect_error(t, "[1,2]", "expected a JSON object");
  expect_error(t, R"({"from":"n1"})", "missing field 'cmd'");
  expect_error(t, R"({"cmd":7})", "field 'cmd' must be a string");
  expect_error(t, R"({"cmd":"explode"})", "unknown cmd 'explode'");
  expect_error(t, R"({"cmd":"set","from":"n9","to":"n1"})", "unknown node 'n9'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n7"})", "unknown node 'n7'");
  expect_error(t, R"({"cmd":"set","to":"n1"})", "missing field 'from'");
  expect_error(t, R"({"cmd":"set","from":1,"to":"n1"})", "field 'from' must be a string");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","drop":1.5})", "field 'drop'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","drop":-0.1})", "field 'drop'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","duplicate":2})", "field 'duplicate'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","drop":"0.5"})", "field 'drop'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","delay_ms":-1})", "field 'delay_ms'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","jitter_ms":-5})", "field 'jitter_ms'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","delay_ms":1e9})", "field 'delay_ms'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","blocked":1})", "field 'blocked'");
  expect_error(t, R"({"cmd":"set","from":"n1","to":"n2","delay":5})", "unknown field 'delay'");
  expect_error(t, R"({"cmd":"partition"})", "missing field 'groups'");
  expect_error(t, R"({"cmd":"partition","groups":"n1"})", "field 'groups'");
  expect_error(t, R"({"cmd":"partition","groups":["n1","n2"]})", "field 'groups'");
  expect_error(t, R"({"cmd":"partition","groups":[["n1"],["n2","n5"]]})", "unknown node 'n5'");
  expect_error(t, R"({"cmd":"partition","groups":[["n1","client"]]})", "not a node");
  expect_error(t, R"({"cmd":"partition","groups":[[1]]})", "groups[0]");
  expect_error(t, R"({"cmd":"block","from":"n1"})", "missing field 'to'");
  expect_error(t, R"({"cmd":"unblock","from":"x","to":"n1"})", "unknown node 'x'");
  expect_error(t, R"({"cmd":"stats","reset":"yes"})", "field 'reset'");
  expect_error(t, R"({"cmd":"heal","now":true})", "unknown field 'now'");
  // Nothing above changed anything.
  const json state = run_command(t, R"({"cmd":"state"})");
  EXPECT_TRUE(state["rules"].empty());
  EXPECT_TRUE(state["blocks"].empty());
  EXPECT_TRUE(state["partition"].is_null());
  // An "id" is echoed, on success and on error.
  EXPECT_EQ(run_command(t, R"({"cmd":"ping","id":17})")["id"], 17);
  EXPECT_EQ(run_command(t, R"({"cmd":"nope","id":"a"})")["id"], "a");
}

std::string config_error(const std::string& text) {
  try {
    proxy::parse_proxy_config(text, "p.json");
  } catch (const proxy::ProxyConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ProxyConfig, ParsesAndNamesTheBadField) {
  const proxy::ProxyConfig c = proxy::parse_proxy_config(
      R"({"control":"127.0.0.1:9000","nodes":[{"id":"n1","public":"127.0.0.1:9001","private":"localhost:9101"}]})",
      "p.json");
  EXPECT_EQ(c.control.to_string(), "127.0.0.1:9000");
  ASSERT_EQ(c.nodes.size(), 1u);
  EXPECT_EQ(c.nodes[0].id, "n1");
  EXPECT_EQ(c.nodes[0].public_address.to_string(), "127.0.0.1:9001");
  EXPECT_EQ(c.nodes[0].private_address.to_string(), "127.0.0.1:9101");

  EXPECT_EQ(config_error("{"), config_error("{"));
  EXPECT_NE(config_error("{").find("p.json: not valid JSON"), std::string::npos);
  EXPECT_NE(config_error(R"({"nodes":[]})").find("p.json: field 'control': missing"), std::string::npos);
  EXPECT_NE(config_error(R"({"control":"127.0.0.1:9000","nodes":[]})").find("field 'nodes'"), std::string::npos);
  EXPECT_NE(config_error(R"({"control":"127.0.0.1:9000","nodes":[{"id":"n1","public":"127.0.0.1:9001"}]})")
                .find("field 'nodes[0].private': missing"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"control":"127.0.0.1:9000","nodes":[{"id":"n1","public":"127.0.0.1:0","private":"127.0.0.1:9101"}]})")
                .find("field 'nodes[0].public'"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"control":"127.0.0.1:9000","nodes":[{"id":"client","public":"127.0.0.1:9001","private":"127.0.0.1:9101"}]})")
                .find("field 'nodes[0].id'"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"control":"127.0.0.1:9000","nodes":[
      {"id":"n1","public":"127.0.0.1:9001","private":"127.0.0.1:9101"},
      {"id":"n1","public":"127.0.0.1:9002","private":"127.0.0.1:9102"}]})")
                .find("field 'nodes[1].id': duplicate"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"control":"127.0.0.1:9000","nodes":[
      {"id":"n1","public":"127.0.0.1:9001","private":"127.0.0.1:9101"},
      {"id":"n2","public":"127.0.0.1:9101","private":"127.0.0.1:9102"}]})")
                .find("field 'nodes[1].public': address 127.0.0.1:9101 is also used by nodes[0].private"),
            std::string::npos);
}

// =====================================================================
// Part 2: the real binary
// =====================================================================

// A UDP socket of this test on 127.0.0.1, standing in for a node or a client.
class Udp {
 public:
  explicit Udp(std::uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    int size = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_in addr = loopback(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("bind failed");
    }
  }
  ~Udp() { ::close(fd_); }
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;

  std::uint16_t port() const {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
  }
  void send(std::uint16_t to, const std::string& data) const {
    const sockaddr_in addr = loopback(to);
    ASSERT_EQ(::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&addr), sizeof addr),
              static_cast<ssize_t>(data.size()));
  }
  struct Datagram {
    std::string data;
    std::uint16_t from = 0;
  };
  std::optional<Datagram> receive(std::chrono::milliseconds timeout) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    std::vector<char> buffer(65536);
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    const ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&addr), &len);
    if (n < 0) return std::nullopt;
    return Datagram{std::string(buffer.data(), static_cast<std::size_t>(n)), ntohs(addr.sin_port)};
  }
  // Everything that arrives within `quiet` of the previous datagram, up to `limit`.
  std::vector<Datagram> receive_all(std::chrono::milliseconds quiet, std::size_t limit = 100000) const {
    std::vector<Datagram> out;
    while (out.size() < limit) {
      auto d = receive(quiet);
      if (!d) break;
      out.push_back(std::move(*d));
    }
    return out;
  }

 private:
  static sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
  }
  int fd_ = -1;
};

// A port that was free a moment ago.
std::uint16_t free_port() {
  Udp probe;
  return probe.port();
}

std::string proxy_binary() {
  if (const char* env = std::getenv("PROXY_BINARY"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "./proxy";
  return (self.parent_path() / "proxy").string();
}

struct ExitStatus {
  bool exited = false;
  int code = -1;
  std::string stderr_text;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Waits for `pid` at most `timeout`; nullopt if it is still running.
std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "proxy_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Runs the proxy binary with `args`; returns its pid, with stdout on a pipe
// and stderr in `stderr_path`.
pid_t spawn(const std::vector<std::string>& args, int& stdout_fd, const std::filesystem::path& stderr_path) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  stdout_fd = pipe_fds[0];
  return pid;
}

// Runs the binary to completion (bounded) and returns its exit code and stderr.
ExitStatus run_to_exit(const std::vector<std::string>& args) {
  TempDir dir;
  int out = -1;
  ExitStatus status;
  const pid_t pid = spawn(args, out, dir.path() / "stderr");
  if (pid < 0) return status;
  const auto code = wait_for(pid, 5s);
  if (!code) {
    ::kill(pid, SIGKILL);
    wait_for(pid, 5s);
  } else {
    status.exited = true;
    status.code = *code;
  }
  ::close(out);
  status.stderr_text = read_file(dir.path() / "stderr");
  return status;
}

// One proxy process in front of fake nodes n1..nN, each a Udp socket bound
// to its private address.
class ProxyFixture : public ::testing::Test {
 protected:
  void start(int node_count, const std::vector<std::string>& extra_args = {"--seed", "12345"}) {
    ASSERT_TRUE(std::filesystem::exists(proxy_binary()))
        << "proxy binary not found at " << proxy_binary() << " (build target 'proxy' or set PROXY_BINARY)";
    for (int i = 0; i < node_count; ++i) nodes_.push_back(std::make_unique<Udp>());
    // Public and control ports are picked free and then bound by the proxy;
    // if another process takes one meanwhile, the proxy exits 1: try again.
    for (int attempt = 0; attempt < 5; ++attempt) {
      control_port_ = free_port();
      public_ports_.clear();
      json config{{"control", "127.0.0.1:" + std::to_string(control_port_)}, {"nodes", json::array()}};
      for (int i = 0; i < node_count; ++i) {
        public_ports_.push_back(free_port());
        config["nodes"].push_back({{"id", "n" + std::to_string(i + 1)},
                                   {"public", "127.0.0.1:" + std::to_string(public_ports_.back())},
                                   {"private", "127.0.0.1:" + std::to_string(nodes_[i]->port())}});
      }
      const auto config_path = dir_.path() / "proxy.json";
      std::ofstream(config_path) << config.dump();
      std::vector<std::string> args{proxy_binary(), "--config", config_path.string()};
      args.insert(args.end(), extra_args.begin(), extra_args.end());
      int out = -1;
      pid_ = spawn(args, out, dir_.path() / "stderr");
      ASSERT_GT(pid_, 0);
      const std::string line = read_line(out, 5s);
      ::close(out);
      if (line.rfind("proxy ready: ", 0) == 0) {
        EXPECT_EQ(line, "proxy ready: " + std::to_string(node_count) + " nodes, control 127.0.0.1:" +
                            std::to_string(control_port_));
        return;
      }
      const auto code = wait_for(pid_, 2s);
      if (!code) ::kill(pid_, SIGKILL), wait_for(pid_, 2s);
      pid_ = -1;
      if (code != 1) break;  // not a lost port race: give up
    }
    FAIL() << "proxy did not start; stderr:\n" << read_file(dir_.path() / "stderr");
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const auto code = wait_for(pid_, 3s);
      if (!code) {
        ::kill(pid_, SIGKILL);
        wait_for(pid_, 3s);
        ADD_FAILURE() << "proxy ignored SIGTERM";
      } else {
        EXPECT_EQ(*code, 0) << "proxy exit code after SIGTERM";
      }
      pid_ = -1;
    }
    if (HasFailure()) std::cerr << "---- proxy stderr ----\n" << read_file(dir_.path() / "stderr");
  }

  static std::string read_line(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string line;
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char c;
      const ssize_t n = ::read(fd, &c, 1);
      if (n <= 0) return line;
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }

  json control(const std::string& text) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      control_client_.send(control_port_, text);
      if (auto reply = control_client_.receive(2s)) return json::parse(reply->data);
    }
    ADD_FAILURE() << "no reply to control command " << text;
    return json{{"ok", false}, {"error", "no reply"}};
  }
  void ok(const std::string& text) {
    const json r = control(text);
    ASSERT_TRUE(r.value("ok", false)) << text << " -> " << r.dump();
  }
  json stats() { return control(R"({"cmd":"stats"})")["links"]; }

  Udp& node(int i) { return *nodes_[static_cast<std::size_t>(i - 1)]; }
  std::uint16_t pub(int i) const { return public_ports_[static_cast<std::size_t>(i - 1)]; }

  // Sends from node `from` to node `to`'s public address; returns whether
  // node `to` received it within `wait` (short waits check that it did not).
  bool node_reaches(int from, int to, const std::string& text, std::chrono::milliseconds wait = 2s) {
    node(from).send(pub(to), text);
    const auto d = node(to).receive(wait);
    return d && d->data == text;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<Udp>> nodes_;
  std::vector<std::uint16_t> public_ports_;
  std::uint16_t control_port_ = 0;
  Udp control_client_;
  pid_t pid_ = -1;
};

TEST_F(ProxyFixture, ForwardsNodeToNodeAndClientTrafficBothWays) {
  start(2);
  ok(R"({"cmd":"ping"})");
  // n1 -> n2 through n2's public address; n2 sees a relay address, not n1's.
  node(1).send(pub(2), "append_entries 1");
  auto at_n2 = node(2).receive(2s);
  ASSERT_TRUE(at_n2);
  EXPECT_EQ(at_n2->data, "append_entries 1");
  EXPECT_NE(at_n2->from, node(1).port());
  // n2's reply goes to the relay address and reaches n1 from n2's public address.
  node(2).send(at_n2->from, "append_entries_reply 1");
  auto at_n1 = node(1).receive(2s);
  ASSERT_TRUE(at_n1);
  EXPECT_EQ(at_n1->data, "append_entries_reply 1");
  EXPECT_EQ(at_n1->from, pub(2));
  // The other direction works the same way.
  node(2).send(pub(1), "request_vote");
  auto rv = node(1).receive(2s);
  ASSERT_TRUE(rv);
  EXPECT_EQ(rv->data, "request_vote");
  // A client talks to n1's public address and hears back from it.
  Udp client;
  client.send(pub(1), "client_request");
  auto req = node(1).receive(2s);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->data, "client_request");
  node(1).send(req->from, "client_reply");
  auto reply = client.receive(2s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->data, "client_reply");
  EXPECT_EQ(reply->from, pub(1));
  // A reply to the same relay again uses the same relay (it is kept).
  client.send(pub(1), "client_request 2");
  auto req2 = node(1).receive(2s);
  ASSERT_TRUE(req2);
  EXPECT_EQ(req2->from, req->from);
  // Someone else writing to a relay socket is ignored.
  Udp stranger;
  stranger.send(req->from, "forged reply");
  EXPECT_FALSE(client.receive(200ms));
  // A big datagram passes whole.
  const std::string big(65507, 'x');  // the largest UDP payload
  client.send(pub(2), big);
  auto big_at_n2 = node(2).receive(2s);
  ASSERT_TRUE(big_at_n2);
  EXPECT_EQ(big_at_n2->data.size(), big.size());

  const json links = stats();
  EXPECT_EQ(links["n1>n2"]["forwarded"], 1);
  EXPECT_EQ(links["n2>n1"]["forwarded"], 2);  // the reply and the request_vote
  EXPECT_EQ(links["client>n1"]["forwarded"], 2);
  EXPECT_EQ(links["n1>client"]["forwarded"], 1);
  EXPECT_EQ(links["client>n2"]["forwarded"], 1);
}

TEST_F(ProxyFixture, DropOneDropsEverythingOnThatLinkOnly) {
  start(2);
  ok(R"({"cmd":"set","from":"n1","to":"n2","drop":1})");
  for (int i = 0; i < 20; ++i) node(1).send(pub(2), "m" + std::to_string(i));
  EXPECT_TRUE(node(2).receive_all(200ms).empty());
  EXPECT_TRUE(node_reaches(2, 1, "other way"));
  const json links = stats();
  EXPECT_EQ(links["n1>n2"]["dropped"], 20);
  EXPECT_EQ(links["n1>n2"]["forwarded"], 0);
  EXPECT_EQ(links["n1>n2"]["received"], 20);
  EXPECT_EQ(links["n2>n1"]["forwarded"], 1);
  ok(R"({"cmd":"clear","from":"n1","to":"n2"})");
  EXPECT_TRUE(node_reaches(1, 2, "after clear"));
}

TEST_F(ProxyFixture, BlockIsOneWay) {
  start(2);
  ok(R"({"cmd":"block","from":"n1","to":"n2"})");
  EXPECT_FALSE(node_reaches(1, 2, "blocked", 200ms));
  EXPECT_TRUE(node_reaches(2, 1, "open"));
  // Block replies only: the request reaches n1, the reply never reaches the client.
  ok(R"({"cmd":"block","from":"n1","to":"client"})");
  Udp client;
  client.send(pub(1), "req");
  auto req = node(1).receive(2s);
  ASSERT_TRUE(req);
  node(1).send(req->from, "reply");
  EXPECT_FALSE(client.receive(200ms));
  json links = stats();
  EXPECT_EQ(links["n1>n2"]["blocked"], 1);
  EXPECT_EQ(links["n1>client"]["blocked"], 1);
  EXPECT_EQ(links["n1>n2"]["dropped"], 0);
  ok(R"({"cmd":"unblock","from":"n1","to":"n2"})");
  EXPECT_TRUE(node_reaches(1, 2, "unblocked"));
  ok(R"({"cmd":"heal"})");
  node(1).send(req->from, "reply after heal");
  auto reply = client.receive(2s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->data, "reply after heal");
}

TEST_F(ProxyFixture, PartitionGroupsWithABridge) {
  start(4);
  // n2 is in both groups (a bridge); n4 is in none (isolated).
  ok(R"({"cmd":"partition","groups":[["n1","n2"],["n2","n3"]]})");
  EXPECT_TRUE(node_reaches(1, 2, "1>2"));
  EXPECT_TRUE(node_reaches(2, 1, "2>1"));
  EXPECT_TRUE(node_reaches(2, 3, "2>3"));
  EXPECT_TRUE(node_reaches(3, 2, "3>2"));
  EXPECT_FALSE(node_reaches(1, 3, "1>3", 150ms));
  EXPECT_FALSE(node_reaches(3, 1, "3>1", 150ms));
  EXPECT_FALSE(node_reaches(4, 1, "4>1", 150ms));
  EXPECT_FALSE(node_reaches(2, 4, "2>4", 150ms));
  // Clients are not affected by partitions.
  Udp client;
  client.send(pub(4), "client to isolated n4");
  auto d = node(4).receive(2s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->data, "client to isolated n4");
  const json state = control(R"({"cmd":"state"})");
  EXPECT_EQ(state["partition"], json::parse(R"([["n1","n2"],["n2","n3"]])"));
  const json links = stats();
  EXPECT_EQ(links["n1>n3"]["blocked"], 1);
  EXPECT_EQ(links["n3>n1"]["blocked"], 1);
  EXPECT_EQ(links["n4>n1"]["blocked"], 1);
  ok(R"({"cmd":"heal"})");
  EXPECT_TRUE(node_reaches(1, 3, "healed"));
  EXPECT_TRUE(node_reaches(4, 1, "healed too"));
}

TEST_F(ProxyFixture, DuplicateOneDoublesEveryDatagram) {
  start(2);
  ok(R"({"cmd":"set","from":"n1","to":"n2","duplicate":1})");
  for (int i = 0; i < 10; ++i) node(1).send(pub(2), "d" + std::to_string(i));
  const auto got = node(2).receive_all(2s, 20);
  ASSERT_EQ(got.size(), 20u);
  EXPECT_FALSE(node(2).receive(100ms));
  std::map<std::string, int> seen;
  for (const auto& d : got) ++seen[d.data];
  EXPECT_EQ(seen.size(), 10u);
  for (const auto& [text, count] : seen) EXPECT_EQ(count, 2) << text;
  const json links = stats();
  EXPECT_EQ(links["n1>n2"]["duplicated"], 10);
  EXPECT_EQ(links["n1>n2"]["forwarded"], 20);
  EXPECT_EQ(links["n1>n2"]["received"], 10);
}

TEST_F(ProxyFixture, DelaysWithJitterReorderButDeliverEverything) {
  start(2);
  ok(R"({"cmd":"set","from":"client","to":"n1","delay_ms":50,"jitter_ms":50})");
  Udp client;
  const auto begin = Clock::now();
  for (int i = 0; i < 50; ++i) client.send(pub(1), std::to_string(i));
  std::vector<int> order;
  const auto deadline = Clock::now() + 3s;
  while (order.size() < 50 && Clock::now() < deadline) {
    if (auto d = node(1).receive(500ms)) order.push_back(std::stoi(d->data));
  }
  const auto elapsed = Clock::now() - begin;
  ASSERT_EQ(order.size(), 50u);
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i);
  EXPECT_NE(order, sorted) << "50 datagrams with delays in [0,100] ms arrived in order";
  EXPECT_GE(elapsed, 50ms);
  EXPECT_LT(elapsed, 2s);
  const json links = stats();
  EXPECT_EQ(links["client>n1"]["delayed"], 50);
  EXPECT_EQ(links["client>n1"]["forwarded"], 50);
  // A fixed delay without jitter keeps order and holds each datagram back.
  ok(R"({"cmd":"set","from":"client","to":"n1","delay_ms":80})");
  const auto sent = Clock::now();
  client.send(pub(1), "late");
  auto late = node(1).receive(2s);
  ASSERT_TRUE(late);
  EXPECT_GE(Clock::now() - sent, 75ms);
}

TEST_F(ProxyFixture, PartitionAlsoStopsDatagramsAlreadyDelayed) {
  start(2);
  ok(R"({"cmd":"set","from":"n1","to":"n2","delay_ms":300})");
  node(1).send(pub(2), "in flight");
  std::this_thread::sleep_for(50ms);
  ok(R"({"cmd":"partition","groups":[["n1"],["n2"]]})");
  EXPECT_FALSE(node(2).receive(500ms));
  const json links = stats();
  EXPECT_EQ(links["n1>n2"]["delayed"], 1);
  EXPECT_EQ(links["n1>n2"]["blocked"], 1);
  EXPECT_EQ(links["n1>n2"]["forwarded"], 0);
}

TEST_F(ProxyFixture, StatsCountersMatchWhatArrived) {
  start(3);
  ok(R"({"cmd":"set","from":"*","to":"n2","drop":0.5})");
  constexpr int kSent = 200;
  for (int i = 0; i < kSent; ++i) node(1).send(pub(2), "s" + std::to_string(i));
  // Wait until the proxy has seen all of them, then collect what it forwarded.
  json links;
  for (const auto deadline = Clock::now() + 3s; Clock::now() < deadline;) {
    links = stats();
    if (links["n1>n2"]["received"] == kSent) break;
    std::this_thread::sleep_for(20ms);
  }
  const auto forwarded = links["n1>n2"]["forwarded"].get<std::size_t>();
  auto arrived = node(2).receive_all(2s, forwarded);
  EXPECT_FALSE(node(2).receive(100ms));
  EXPECT_GT(arrived.size(), 40u);
  EXPECT_LT(arrived.size(), 160u);
  EXPECT_EQ(links["n1>n2"]["received"], kSent);
  EXPECT_EQ(links["n1>n2"]["forwarded"], arrived.size());
  EXPECT_EQ(links["n1>n2"]["dropped"], kSent - static_cast<int>(arrived.size()));
  EXPECT_EQ(links["n1>n3"]["received"], 0);
  // stats with reset returns the counts, then zeroes them.
  const json reset = control(R"({"cmd":"stats","reset":true})");
  EXPECT_EQ(reset["links"]["n1>n2"]["received"], kSent);
  links = stats();
  EXPECT_EQ(links["n1>n2"]["received"], 0);
  EXPECT_EQ(links["n1>n2"]["dropped"], 0);
  // reset clears the rule: everything passes again.
  ok(R"({"cmd":"reset"})");
  for (int i = 0; i < 20; ++i) node(3).send(pub(2), "r" + std::to_string(i));
  EXPECT_EQ(node(2).receive_all(2s, 20).size(), 20u);
  EXPECT_EQ(stats()["n3>n2"]["forwarded"], 20);
}

TEST_F(ProxyFixture, BadCommandsGetErrorsAndTheProxyKeepsForwarding) {
  start(2);
  const std::vector<std::string> bad = {
      "",
      "garbage",
      "{\"cmd\":",
      std::string("\xff\xfe\x00\x01", 4),
      "[]",
      "{}",
      R"({"cmd":42})",
      R"({"cmd":"frobnicate"})",
      R"({"cmd":"set","from":"n1","to":"n9"})",
      R"({"cmd":"set","from":"n1","to":"n2","drop":7})",
      R"({"cmd":"set","from":"n1","to":"n2","delay_ms":-3})",
      R"({"cmd":"set","from":"n1","to":"n2","duplicate":"half"})",
      R"({"cmd":"partition","groups":[["n1"],["nX"]]})",
      R"({"cmd":"partition","groups":{"a":1}})",
      R"({"cmd":"block","from":"n1"})",
      R"({"cmd":"stats","reset":1})",
      std::string(60000, '{'),
  };
  for (const auto& text : bad) {
    const json r = control(text);
    EXPECT_FALSE(r.value("ok", true)) << text.substr(0, 60);
    EXPECT_TRUE(r.contains("error") && r["error"].is_string() && !r["error"].get<std::string>().empty())
        << text.substr(0, 60);
  }
  const json unknown = control(R"({"cmd":"block","from":"n1","to":"n7"})");
  EXPECT_NE(unknown["error"].get<std::string>().find("n7"), std::string::npos);
  ok(R"({"cmd":"ping"})");
  EXPECT_TRUE(node_reaches(1, 2, "still alive"));
  const json state = control(R"({"cmd":"state"})");
  EXPECT_TRUE(state["rules"].empty());
  EXPECT_TRUE(state["blocks"].empty());
  EXPECT_EQ(state["seed"], 12345);
}

TEST_F(ProxyFixture, RelaySocketsAreBoundedLeastRecentlyUsedEvicted) {
  start(1, {"--seed", "1", "--max-relays", "2"});
  Udp a, b, c;
  auto round_trip = [&](Udp& client, const std::string& text) {
    client.send(pub(1), text);
    auto req = node(1).receive(2s);
    if (!req || req->data != text) return std::optional<std::uint16_t>();
    node(1).send(req->from, "re:" + text);
    auto reply = client.receive(2s);
    if (!reply || reply->data != "re:" + text || reply->from != pub(1)) return std::optional<std::uint16_t>();
    return std::optional<std::uint16_t>(req->from);
  };
  const auto relay_a = round_trip(a, "a1");
  ASSERT_TRUE(relay_a);
  ASSERT_TRUE(round_trip(b, "b1"));
  ASSERT_TRUE(round_trip(c, "c1"));  // evicts a's relay, the least recently used
  EXPECT_EQ(control(R"({"cmd":"state"})")["relays"], 2);
  // A reply to the evicted relay is lost; a's next request gets a new relay.
  node(1).send(*relay_a, "late reply to a");
  EXPECT_FALSE(a.receive(200ms));
  const auto relay_a2 = round_trip(a, "a2");
  ASSERT_TRUE(relay_a2);
  EXPECT_EQ(control(R"({"cmd":"state"})")["relays"], 2);
}

TEST_F(ProxyFixture, DelayQueueOverflowIsCounted) {
  start(2, {"--seed", "1", "--max-delayed", "5"});
  ok(R"({"cmd":"set","from":"n1","to":"n2","delay_ms":100})");
  for (int i = 0; i < 10; ++i) node(1).send(pub(2), "q" + std::to_string(i));
  EXPECT_EQ(node(2).receive_all(2s, 5).size(), 5u);
  EXPECT_FALSE(node(2).receive(200ms));
  const json links = stats();
  EXPECT_EQ(links["n1>n2"]["delayed"], 5);
  EXPECT_EQ(links["n1>n2"]["overflow"], 5);
  EXPECT_EQ(links["n1>n2"]["forwarded"], 5);
}

TEST_F(ProxyFixture, SigintAlsoStopsCleanly) {
  start(1);
  ASSERT_GT(pid_, 0);
  ::kill(pid_, SIGINT);
  EXPECT_EQ(wait_for(pid_, 3s), 0);
  pid_ = -1;
}

TEST(ProxyBinary, ConfigErrorsExitTwoNamingFileAndField) {
  const std::string binary = proxy_binary();
  ASSERT_TRUE(std::filesystem::exists(binary)) << binary;
  TempDir dir;
  const auto path = (dir.path() / "bad.json").string();
  std::ofstream(path) << R"({"control":"127.0.0.1:1","nodes":[{"id":"n1","public":"127.0.0.1:2"}]})";
  ExitStatus s = run_to_exit({binary, "--config", path});
  ASSERT_TRUE(s.exited);
  EXPECT_EQ(s.code, 2);
  EXPECT_NE(s.stderr_text.find(path), std::string::npos) << s.stderr_text;
  EXPECT_NE(s.stderr_text.find("nodes[0].private"), std::string::npos) << s.stderr_text;

  s = run_to_exit({binary, "--config", (dir.path() / "missing.json").string()});
  EXPECT_EQ(s.code, 2);
  EXPECT_NE(s.stderr_text.find("missing.json"), std::string::npos) << s.stderr_text;

  s = run_to_exit({binary});
  EXPECT_EQ(s.code, 2);
  s = run_to_exit({binary, "--config", path, "--seed", "abc"});
  EXPECT_EQ(s.code, 2);
}

}  // namespace
