// The proxy's message journal (cmd/proxy/journal.h) and its one-line
// message summaries (cmd/proxy/summary.h): records, vector clocks, the
// bound on records, and the `journal` control command. Pure: no sockets, no
// clock; the binary end to end is covered by harness/test_diagram.py.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../cmd/proxy/commands.h"
#include "../../cmd/proxy/journal.h"
#include "../../cmd/proxy/link_table.h"
#include "../../cmd/proxy/summary.h"

namespace {

using proxy::Journal;
using proxy::JournalFate;
using json = nlohmann::json;

constexpr int kN1 = 0, kN2 = 1, kN3 = 2, kClient = 3;
const std::int64_t kNoDelay[2] = {0, 0};

std::vector<json> lines(const Journal& journal) {
  std::ostringstream out;
  journal.write(out);
  std::istringstream in(out.str());
  std::vector<json> parsed;
  for (std::string line; std::getline(in, line);) parsed.push_back(json::parse(line));
  return parsed;
}

std::string summary_of(const std::string& datagram) {
  char out[proxy::kSummaryBytes];
  proxy::summarize(datagram.data(), datagram.size(), out);
  return out;
}

Journal three_nodes(std::size_t capacity = 100) { return Journal({"n1", "n2", "n3", "client"}, capacity); }

TEST(ProxyJournal, RecordsSendAndDeliverWithVectorClocks) {
  Journal j = three_nodes();
  const std::string m = R"({"type":"request_vote","src":"n1","dest":"n2","term":3})";
  const auto a = j.send(1000, kN1, kN2, m.data(), m.size(), JournalFate::kPass, kNoDelay, "", 0);
  j.deliver(1005, a, 0, kN1, kN2, m.size(), false);
  const std::string r = R"({"type":"request_vote_reply","src":"n2","dest":"n1","term":3,"vote_granted":true})";
  const auto b = j.send(1100, kN2, kN1, r.data(), r.size(), JournalFate::kPass, kNoDelay, "", 0);
  j.deliver(1101, b, 0, kN2, kN1, r.size(), false);

  const auto out = lines(j);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0]["endpoints"], json({"n1", "n2", "n3", "client"}));
  EXPECT_EQ(out[0]["records"], 4);
  EXPECT_EQ(out[0]["evicted"], 0);
  EXPECT_EQ(out[1]["ev"], "send");
  EXPECT_EQ(out[1]["from"], "n1");
  EXPECT_EQ(out[1]["to"], "n2");
  EXPECT_EQ(out[1]["fate"], "pass");
  EXPECT_EQ(out[1]["sum"], "request_vote t=3");
  EXPECT_EQ(out[1]["vc"], json({{"n1", 1}}));
  EXPECT_EQ(out[2]["ev"], "deliver");
  EXPECT_EQ(out[2]["msg"], out[1]["msg"]);
  EXPECT_EQ(out[2]["vc"], json({{"n1", 1}, {"n2", 1}}));  // merged n1's send, then ticked
  EXPECT_EQ(out[3]["vc"], json({{"n1", 1}, {"n2", 2}}));
  EXPECT_EQ(out[3]["sum"], "request_vote_reply t=3 granted=true");
  EXPECT_EQ(out[4]["vc"], json({{"n1", 2}, {"n2", 2}}));
  EXPECT_EQ(out[4]["t_us"], 1101);
}

TEST(ProxyJournal, ADelayedCopyCarriesTheClockOfItsSendNotOfLater) {
  Journal j = three_nodes();
  const std::string m = "{}";
  const std::int64_t delays[2] = {0, 5000};
  const auto a = j.send(0, kN1, kN3, m.data(), m.size(), JournalFate::kDuplicate, delays, "", 1);
  j.deliver(1, a, 0, kN1, kN3, m.size(), false);
  EXPECT_EQ(j.pending_clocks(), 1u);
  // n1 sends more (to n2) before the delayed copy lands on n3.
  for (int i = 0; i < 3; ++i) {
    const auto b = j.send(10 + i, kN1, kN2, m.data(), m.size(), JournalFate::kPass, kNoDelay, "", 0);
    j.deliver(10 + i, b, 0, kN1, kN2, m.size(), false);
  }
  j.deliver(5000, a, 1, kN1, kN3, m.size(), true);
  EXPECT_EQ(j.pending_clocks(), 0u);
  const auto out = lines(j);
  const json& late = out.back();
  EXPECT_EQ(late["ev"], "deliver");
  EXPECT_EQ(late["copy"], 1);
  // n3 knows n1's first send only, not the three later ones.
  EXPECT_EQ(late["vc"], json({{"n1", 1}, {"n3", 2}}));
  EXPECT_EQ(out[1]["fate"], "dup");
  EXPECT_EQ(out[1]["delay_us"], json({0, 5000}));
  EXPECT_EQ(out[1]["sum"], "?");
}

TEST(ProxyJournal, DropsBlocksAndLossesAreRecordedWithoutTicksOnTheReceiver) {
  Journal j = three_nodes();
  const std::string m = R"({"type":"client_request","src":"c7","dest":"n2","seq":12,"op":"set","key":"x","value":"5"})";
  j.send(0, kClient, kN2, m.data(), m.size(), JournalFate::kDrop, kNoDelay, "", 0);
  j.send(1, kClient, kN2, m.data(), m.size(), JournalFate::kBlock, kNoDelay, "partition", 0);
  const std::int64_t delay[2] = {300, 0};
  const auto c = j.send(2, kClient, kN2, m.data(), m.size(), JournalFate::kPass, delay, "", 1);
  j.lost(302, c, 0, kClient, kN2, m.size(), "blocked", true);
  EXPECT_EQ(j.pending_clocks(), 0u);
  const auto out = lines(j);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[1]["fate"], "drop");
  EXPECT_EQ(out[1]["sum"], "client_request seq=12 set key=x");
  EXPECT_EQ(out[2]["fate"], "block");
  EXPECT_EQ(out[2]["why"], "partition");
  EXPECT_EQ(out[3]["vc"], json({{"client", 3}}));
  EXPECT_EQ(out[4]["ev"], "lost");
  EXPECT_EQ(out[4]["why"], "blocked");
  EXPECT_FALSE(out[4].contains("vc"));
}

TEST(ProxyJournal, KeepsTheLastRecordsAndCountsTheEvicted) {
  Journal j = three_nodes(10);
  EXPECT_EQ(j.capacity(), 10u);
  const std::string m = "{}";
  for (int i = 0; i < 25; ++i) j.send(i, kN1, kN2, m.data(), m.size(), JournalFate::kDrop, kNoDelay, "", 0);
  EXPECT_EQ(j.size(), 10u);
  EXPECT_EQ(j.evicted(), 15u);
  EXPECT_EQ(j.total(), 25u);
  const auto out = lines(j);
  ASSERT_EQ(out.size(), 11u);
  EXPECT_EQ(out[0]["evicted"], 15);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(out[1 + k]["t_us"], 15 + k);  // oldest first
    EXPECT_EQ(out[1 + k]["vc"], json({{"n1", 16 + k}}));
  }
}

TEST(ProxyJournal, TheByteBoundCapsHugeRequests) {
  // 64 nodes: each record carries a 65-entry clock; ten million records
  // would exceed the byte bound, so fewer are allocated.
  std::vector<std::string> names;
  for (int i = 1; i <= 64; ++i) names.push_back("n" + std::to_string(i));
  names.push_back("client");
  Journal j(names, 10000000);
  EXPECT_LT(j.capacity(), 10000000u);
  EXPECT_LE(j.capacity() * (sizeof(proxy::JournalRecord) + 65 * sizeof(std::uint64_t)), proxy::kMaxJournalBytes);
}

TEST(ProxySummary, PicksTheFieldsOfEachMessageType) {
  EXPECT_EQ(summary_of(R"({"type":"append_entries","src":"n1","dest":"n2","term":4,"prev_log_index":10,"prev_log_term":3,"entries":[],"leader_commit":9,"read_round":2})"),
            "append_entries t=4 prev=10 n=0 commit=9");
  EXPECT_EQ(summary_of(R"({"type":"append_entries","term":4,"prev_log_index":10,"entries":[{"term":4,"index":11,"cmd":{"op":"set","key":"{[x","value":"}]"}},{"term":4,"index":12,"type":"noop"}],"leader_commit":10})"),
            "append_entries t=4 prev=10 n=2 commit=10");
  EXPECT_EQ(summary_of(R"({"type":"append_entries_reply","term":4,"success":false,"match_index":0,"reject_index":10})"),
            "append_entries_reply t=4 ok=false match=0");
  EXPECT_EQ(summary_of(R"({"type":"request_vote","term":5,"last_log_index":7,"last_log_term":4,"pre_vote":true})"),
            "request_vote t=5 pre last=7");
  EXPECT_EQ(summary_of(R"({"type":"client_reply","src":"n2","dest":"c7","seq":12,"ok":false,"error":"not_leader","leader":"n3"})"),
            "client_reply seq=12 ok=false err=not_leader");
  EXPECT_EQ(summary_of("not json at all"), "?");
  EXPECT_EQ(summary_of(""), "?");
}

TEST(ProxySummary, StaysBoundedAndPrintable) {
  const std::string key(500, 'k');
  const std::string s = summary_of(R"({"type":"client_request","seq":1,"op":"get","key":")" + key + "\"}");
  EXPECT_LT(s.size(), proxy::kSummaryBytes);
  EXPECT_NE(s.find("key=kkkk"), std::string::npos);
  const std::string q = summary_of("{\"type\":\"a\\\"b\x01\",\"term\":1}");
  EXPECT_EQ(q.find('"'), std::string::npos);
  EXPECT_EQ(q.find('\x01'), std::string::npos);
}

TEST(ProxyJournalCommand, OffIsAClearErrorAndOnReportsTheWrite) {
  proxy::LinkTable table({"n1", "n2"});
  proxy::ProxyStatus status;
  auto off = proxy::execute_command(R"({"cmd":"journal"})", table, status);
  EXPECT_FALSE(off.ok);
  EXPECT_NE(off.reply.find("--journal PATH"), std::string::npos) << off.reply;
  status.write_journal = [] {
    return nlohmann::ordered_json{{"path", "/tmp/x"}, {"records", 3}, {"evicted", 0}, {"total", 3}};
  };
  auto on = proxy::execute_command(R"({"cmd":"journal","id":7})", table, status);
  ASSERT_TRUE(on.ok) << on.reply;
  const json reply = json::parse(on.reply);
  EXPECT_EQ(reply["records"], 3);
  EXPECT_EQ(reply["id"], 7);
  EXPECT_FALSE(proxy::execute_command(R"({"cmd":"journal","path":"/etc/x"})", table, status).ok);
  status.write_journal = []() -> nlohmann::ordered_json { throw std::runtime_error("disk full"); };
  auto failed = proxy::execute_command(R"({"cmd":"journal"})", table, status);
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.reply.find("disk full"), std::string::npos);
}

}  // namespace
