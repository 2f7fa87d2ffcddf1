// The rules of peer (Raft) messages: the fields each must have, its entries,
// every wire integer below 2^53, and the stateless consistency between fields
// that the codec enforces. (Round trips and client messages: codec_test.cc.)
#include "wire/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec_test_helpers.h"

namespace {

using nlohmann::json;
using wire::DecodeError;
using namespace codec_testing;

// ---------- fields and entries of Raft messages ----------

TEST(Malformed, RaftFields) {
  const raft::Message base = sample_append();
  const json ae = json::parse(wire::encode(base));
  for (const char* field : {"term", "prev_log_index", "prev_log_term", "leader_commit", "entries"}) {
    json j = ae;
    j.erase(field);
    EXPECT_NE(expect_malformed(j.dump()).find(field), std::string::npos) << field;
  }
  for (const json& bad : {json(-1), json(1.5), json(true), json("3"), json(nullptr)}) {
    json j = ae;
    j["term"] = bad;
    EXPECT_NE(expect_malformed(j.dump()).find("term"), std::string::npos);
    j = ae;
    j["read_round"] = bad;
    EXPECT_NE(expect_malformed(j.dump()).find("read_round"), std::string::npos);
  }

  const std::string vote =
      R"({"type":"request_vote","src":"n1","dest":"n2","term":3,"last_log_index":4,"last_log_term":2})";
  for (const char* field : {"term", "last_log_index", "last_log_term"}) {
    json j = json::parse(vote);
    j.erase(field);
    expect_malformed(j.dump());
  }
  json pv = json::parse(vote);
  pv["pre_vote"] = 1;
  EXPECT_NE(expect_malformed(pv.dump()).find("pre_vote"), std::string::npos);

  expect_malformed(R"({"type":"request_vote_reply","src":"n1","dest":"n2","term":3})");
  expect_malformed(R"({"type":"request_vote_reply","src":"n1","dest":"n2","term":3,"vote_granted":"true"})");
  expect_malformed(R"({"type":"append_entries_reply","src":"n1","dest":"n2","term":3,"success":true})");
  expect_malformed(R"({"type":"append_entries_reply","src":"n1","dest":"n2","term":3,"match_index":1})");
  expect_malformed(
      R"({"type":"append_entries_reply","src":"n1","dest":"n2","term":3,"success":false,"match_index":1,"conflict_term":-2})");
}

TEST(Malformed, BadEntries) {
  const json ae = json::parse(wire::encode(sample_append()));
  const auto with_entries = [&](const json& entries) {
    json j = ae;
    j["entries"] = entries;
    return j.dump();
  };
  const json cmd = {{"op", "set"}};
  const struct {
    json entries;
    const char* needle;
  } cases[] = {
      {json::object(), "entries"},
      {"[]", "entries"},
      {json::array({1}), "entries[0]"},
      {json::array({{{"term", 5}, {"index", 11}}}), "entries[0].cmd"},  // command without cmd
      {json::array({{{"term", 5}, {"index", 11}, {"cmd", "{}"}}}), "entries[0].cmd"},
      {json::array({{{"term", 5}, {"index", 11}, {"cmd", json::array()}}}), "entries[0].cmd"},
      {json::array({{{"term", 5}, {"index", 12}, {"type", "noop"}}}), "entries[0].index"},
      {json::array({{{"term", 5}, {"index", 10}, {"type", "noop"}}}), "entries[0].index"},
      {json::array({{{"term", 5}, {"index", 11}, {"type", "noop"}},
                    {{"term", 5}, {"index", 11}, {"type", "noop"}}}),
       "entries[1].index"},
      {json::array({{{"term", -5}, {"index", 11}, {"type", "noop"}}}), "entries[0].term"},
      {json::array({{{"term", 5.5}, {"index", 11}, {"type", "noop"}}}), "entries[0].term"},
      {json::array({{{"index", 11}, {"type", "noop"}}}), "entries[0].term"},
      {json::array({{{"term", 5}, {"type", "noop"}}}), "entries[0].index"},
      {json::array({{{"term", 5}, {"index", 11}, {"type", "config"}}}), "entries[0].type"},
      {json::array({{{"term", 5}, {"index", 11}, {"type", 1}, {"cmd", cmd}}}), "entries[0].type"},
  };
  for (const auto& c : cases) {
    const std::string message = expect_malformed(with_entries(c.entries));
    EXPECT_NE(message.find(c.needle), std::string::npos) << message;
  }
}

TEST(Malformed, EntryIndexOverflow) {
  // prev_log_index at the limit leaves no room for an entry: its index would
  // be 2^53, and anything else is not contiguous.
  const std::string prefix =
      R"({"type":"append_entries","src":"n1","dest":"n2","term":2,"prev_log_index":9007199254740991,)"
      R"("prev_log_term":1,"leader_commit":0,"entries":[)";
  EXPECT_EQ(expect_malformed(prefix + R"({"term":2,"index":9007199254740992,"type":"noop"}]})"),
            "field 'entries[0].index': 9007199254740992 is not below 2^53");
  EXPECT_EQ(expect_malformed(prefix + R"({"term":2,"index":0,"type":"noop"}]})"),
            "field 'entries[0].index': expected prev_log_index + 1, got 0");
  EXPECT_EQ(decode_as<raft::Message>(prefix + "]}").prev_log_index, wire::kMaxWireInteger);
}

// ---------- every integer below 2^53 ----------

// The field a DecodeError names: "field 'NAME': ..." gives NAME.
std::string error_field(const std::string& text) {
  const std::string message = expect_malformed(text);
  if (!message.starts_with("field '")) return "(no field) " + message;
  return message.substr(7, message.find("':") - 7);
}

// One valid message of every type, each with every integer field it has.
struct IntegerFields {
  std::string text;
  std::vector<std::string> pointers;  // JSON pointers to the integers
};

std::vector<IntegerFields> integer_fields() {
  const std::string reply = R"({"type":"append_entries_reply","src":"n2","dest":"n1","term":3,"read_round":1,)";
  return {
      {client_request_with("seq", 12), {"/seq"}},
      {R"({"type":"client_reply","src":"n2","dest":"c7","seq":12,"ok":true,"value":"5"})", {"/seq"}},
      {wire::encode(wire::StatusReply{"n1", "c7", "n1", "leader", 4, "n1", 120, 120, 121, "n1", false, {}}),
       {"/term", "/commit_index", "/last_applied", "/last_log_index", "/snapshot_index"}},
      {R"({"type":"request_vote","src":"n1","dest":"n2","term":3,"last_log_index":4,"last_log_term":2})",
       {"/term", "/last_log_index", "/last_log_term"}},
      {R"({"type":"request_vote_reply","src":"n2","dest":"n1","term":3,"vote_granted":true})", {"/term"}},
      {wire::encode(sample_append()),
       {"/term", "/prev_log_index", "/prev_log_term", "/leader_commit", "/read_round", "/entries/0/term",
        "/entries/0/index", "/entries/2/term", "/entries/2/index"}},
      {reply + R"("success":true,"match_index":4})", {"/term", "/match_index", "/read_round"}},
      {reply + R"("success":false,"match_index":0,"reject_index":8,"conflict_index":6,"conflict_term":2})",
       {"/term", "/reject_index", "/conflict_index", "/conflict_term", "/read_round"}},
      {R"({"type":"install_snapshot","src":"n1","dest":"n2","term":5,"last_included_index":100,)"
       R"("last_included_term":4,"offset":3,"total_bytes":6,"done":true,"read_round":7,"data":"AP8h"})",
       {"/term", "/last_included_index", "/last_included_term", "/offset", "/total_bytes", "/read_round"}},
      {R"({"type":"install_snapshot_reply","src":"n2","dest":"n1","term":5,"last_included_index":100,)"
       R"("offset":3,"done":false,"read_round":7})",
       {"/term", "/last_included_index", "/offset", "/read_round"}},
      {R"({"type":"snapshot_reply","src":"n1","dest":"c1","ok":true,"snapshot_index":42})", {"/snapshot_index"}},
  };
}

// "/entries/0/term" is reported as "entries[0].term".
std::string field_name(const std::string& pointer) {
  std::string name = pointer.substr(1);
  if (name.starts_with("entries/")) {
    const auto slash = name.find('/', 8);
    name = "entries[" + name.substr(8, slash - 8) + "]." + name.substr(slash + 1);
  }
  return name;
}

TEST(WireIntegers, EveryFieldRejectsTwoToThe53AndAbove) {
  for (const IntegerFields& message : integer_fields()) {
    EXPECT_FALSE(std::holds_alternative<DecodeError>(wire::decode(message.text))) << message.text;
    for (const std::string& pointer : message.pointers) {
      for (const std::uint64_t bad : {wire::kMaxWireInteger + 1, std::uint64_t{UINT64_MAX}}) {
        json j = json::parse(message.text);
        j[json::json_pointer(pointer)] = bad;
        EXPECT_EQ(expect_malformed(j.dump()),
                  "field '" + field_name(pointer) + "': " + std::to_string(bad) + " is not below 2^53");
      }
    }
  }
}

TEST(WireIntegers, TheLargestOneIsAccepted) {
  constexpr std::uint64_t max = wire::kMaxWireInteger;
  EXPECT_EQ(decode_as<wire::ClientRequest>(client_request_with("seq", max)).seq, max);
  const wire::ClientReply reply{"n2", "c7", max, true, "5", "", "", ""};
  EXPECT_EQ(decode_as<wire::ClientReply>(wire::encode(reply)), reply);
  const wire::StatusReply status{"n1", "c7", "n1", "leader", max, "n1", max, max, max, "n1", false, {}};
  EXPECT_EQ(decode_as<wire::StatusReply>(wire::encode(status)), status);

  raft::Message vote;
  vote.type = raft::MessageType::RequestVote;
  vote.term = vote.last_log_index = vote.last_log_term = max;
  expect_same(round_trip(vote), vote);
  raft::Message append;
  append.term = append.prev_log_term = append.leader_commit = append.read_round = max;
  append.prev_log_index = max - 1;
  append.entries.push_back(raft::Entry{max, max, raft::EntryType::Noop, ""});
  expect_same(round_trip(append), append);
  raft::Message ok;
  ok.type = raft::MessageType::AppendEntriesReply;
  ok.success = true;
  ok.term = ok.match_index = ok.read_round = max;
  expect_same(round_trip(ok), ok);
  raft::Message rejected = ok;
  rejected.success = false;
  rejected.match_index = 0;
  rejected.reject_index = rejected.conflict_index = rejected.conflict_term = max;
  expect_same(round_trip(rejected), rejected);
}

TEST(WireIntegers, BadRequestNeverEchoesAnOutOfRangeSeq) {
  // The node answers bad_request with the salvaged seq; one of 2^53 or more
  // would put an out-of-range number on the wire, so it becomes 0.
  const DecodeError huge = decode_error(client_request_with("seq", wire::kMaxWireInteger + 1));
  EXPECT_EQ(huge.type, "client_request");
  EXPECT_EQ(huge.src, "c7");
  EXPECT_EQ(huge.seq, 0u);
  EXPECT_EQ(huge.message, "field 'seq': 9007199254740992 is not below 2^53");
  json j = json::parse(client_request_with("seq", wire::kMaxWireInteger));
  j["op"] = "frobnicate";
  EXPECT_EQ(decode_error(j.dump()).seq, wire::kMaxWireInteger);
}

// ---------- stateless consistency of Raft messages ----------

std::string vote(std::uint64_t term, std::uint64_t last_index, std::uint64_t last_term) {
  return json{{"type", "request_vote"}, {"src", "n1"}, {"dest", "n2"}, {"term", term},
              {"last_log_index", last_index}, {"last_log_term", last_term}}.dump();
}

// entries: (term, index) pairs, all no-ops.
std::string append(std::uint64_t term, std::uint64_t prev_index, std::uint64_t prev_term,
                   std::vector<std::pair<std::uint64_t, std::uint64_t>> entries = {},
                   std::uint64_t leader_commit = 0) {
  json list = json::array();
  for (const auto& [t, i] : entries) list.push_back({{"term", t}, {"index", i}, {"type", "noop"}});
  return json{{"type", "append_entries"}, {"src", "n1"}, {"dest", "n2"}, {"term", term},
              {"prev_log_index", prev_index}, {"prev_log_term", prev_term},
              {"leader_commit", leader_commit}, {"entries", list}}.dump();
}

std::string append_reply(std::uint64_t term, bool success, std::uint64_t match, std::uint64_t reject,
                         std::uint64_t conflict_index, std::uint64_t conflict_term) {
  return json{{"type", "append_entries_reply"}, {"src", "n2"}, {"dest", "n1"}, {"term", term},
              {"success", success}, {"match_index", match}, {"reject_index", reject},
              {"conflict_index", conflict_index}, {"conflict_term", conflict_term}}.dump();
}

TEST(Consistency, BrokenRaftMessagesNameTheField) {
  const struct {
    std::string text;
    const char* field;
  } cases[] = {
      // Terms start at 1: no candidate or leader speaks in term 0.
      {vote(0, 0, 0), "term"},
      {append(0, 0, 0), "term"},
      // A log holds nothing newer than its owner's term.
      {vote(3, 4, 4), "last_log_term"},
      {append(5, 10, 6), "prev_log_term"},
      // Index 0 is before the log (term 0); a real entry has a term >= 1.
      {vote(3, 0, 2), "last_log_term"},
      {vote(3, 4, 0), "last_log_term"},
      {append(5, 0, 1), "prev_log_term"},
      {append(5, 10, 0), "prev_log_term"},
      // Entries: no term above the message's, never decreasing, never below
      // prev_log_term, never 0.
      {append(5, 10, 4, {{5, 11}, {6, 12}}), "entries[1].term"},
      {append(5, 10, 4, {{4, 11}, {5, 12}, {4, 13}}), "entries[2].term"},
      {append(5, 10, 4, {{3, 11}}), "entries[0].term"},
      {append(5, 0, 0, {{0, 1}}), "entries[0].term"},
      {append(5, 10, 4, {{4, 11}, {4, 13}}), "entries[1].index"},
      // A success carries no rejection; a rejection claims no match, and
      // hints at or before the index it rejected, in a term it has seen.
      {append_reply(3, true, 4, 3, 0, 0), "reject_index"},
      {append_reply(3, true, 4, 0, 2, 0), "conflict_index"},
      {append_reply(3, true, 4, 0, 0, 1), "conflict_term"},
      {append_reply(3, false, 4, 8, 6, 2), "match_index"},
      {append_reply(3, false, 0, 8, 9, 2), "conflict_index"},
      {append_reply(3, false, 0, 8, 6, 4), "conflict_term"},
  };
  for (const auto& c : cases) EXPECT_EQ(error_field(c.text), c.field) << c.text;
  EXPECT_EQ(expect_malformed(append(5, 10, 4, {{5, 11}, {6, 12}})),
            "field 'entries[1].term': 6 is above the message's term 5");
  EXPECT_EQ(expect_malformed(append(5, 10, 4, {{3, 11}})),
            "field 'entries[0].term': 3 is below prev_log_term 4 (a leader's log never decreases in term)");
}

TEST(Consistency, WhatTheCoreSendsIsAccepted) {
  // The boundary of each rule, and the messages raft.cc builds: a stale-term
  // rejection (all zeros), a "log too short" hint (conflict_term 0), a
  // heartbeat whose leader_commit is past prev_log_index (anchored at the
  // follower's match), and replies in term 0 from a node that never voted.
  for (const std::string& text : {
           vote(3, 4, 3), vote(1, 0, 0), append(5, 10, 5, {{5, 11}}),
           append(5, 0, 0, {{1, 1}, {3, 2}, {5, 3}}), append(5, 10, 4, {}, 1000),
           append_reply(7, false, 0, 0, 0, 0), append_reply(3, false, 0, 8, 5, 0),
           append_reply(3, false, 0, 8, 8, 3), append_reply(0, true, 0, 0, 0, 0),
           std::string(R"({"type":"request_vote_reply","src":"n2","dest":"n1","term":0,"vote_granted":false})"),
       }) {
    decode_as<raft::Message>(text);
  }
}

TEST(Malformed, EmptyCommandDataEncodesToSomethingRejected) {
  raft::Message m = sample_append();
  m.entries[1].data.clear();
  const std::string text = wire::encode(m);
  EXPECT_NO_THROW(json::parse(text));
  expect_malformed(text);
}

}  // namespace
