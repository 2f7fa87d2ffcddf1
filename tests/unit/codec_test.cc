// Round trips for every message type, and strict rejection of bad datagrams,
// above all of clients' messages. (Peer messages' 2^53 bound and consistency
// rules: codec_rules_test.cc. Large-scale random inputs: codec_fuzz_test.cc.)
#include "wire/codec.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "codec_test_helpers.h"

namespace {

using nlohmann::json;
using wire::DecodeError;
using namespace codec_testing;

// ---------- messages.h helpers ----------

TEST(Messages, OpNames) {
  EXPECT_STREQ(wire::to_string(wire::Op::Get), "get");
  EXPECT_STREQ(wire::to_string(wire::Op::Set), "set");
  EXPECT_STREQ(wire::to_string(wire::Op::Cas), "cas");
  EXPECT_STREQ(wire::to_string(wire::Op::Delete), "delete");
}

TEST(Messages, ClientIds) {
  EXPECT_TRUE(wire::is_valid_client_id("c1"));
  EXPECT_TRUE(wire::is_valid_client_id("A-z_0.9:x"));
  EXPECT_TRUE(wire::is_valid_client_id(std::string(64, 'a')));
  EXPECT_FALSE(wire::is_valid_client_id(""));
  EXPECT_FALSE(wire::is_valid_client_id(std::string(65, 'a')));
  EXPECT_FALSE(wire::is_valid_client_id("c 1"));
  EXPECT_FALSE(wire::is_valid_client_id("c/1"));
  EXPECT_FALSE(wire::is_valid_client_id("c\xc3\xa9"));
  EXPECT_FALSE(wire::is_valid_client_id(std::string("c\0", 2)));
}

// ---------- round trips ----------

TEST(RoundTrip, ClientRequestEveryOp) {
  wire::ClientRequest get{"c7", "n2", 1, wire::Op::Get, "k", "", "", false};
  wire::ClientRequest local_get{"c7", "n2", 2, wire::Op::Get, "k", "", "", true};
  wire::ClientRequest set{"c7", "n2", 3, wire::Op::Set, "k", "v \"quoted\" \n", "", false};
  wire::ClientRequest cas{"c7", "n2", 4, wire::Op::Cas, "k", "new", "old", false};
  wire::ClientRequest del{"c7", "n2", wire::kMaxWireInteger, wire::Op::Delete, "k\xc3\xa9", "", "", false};
  for (const auto& r : {get, local_get, set, cas, del}) {
    const std::string text = wire::encode(r);
    const auto back = decode_as<wire::ClientRequest>(text);
    EXPECT_EQ(back.src, r.src) << text;
    EXPECT_EQ(back.dest, r.dest);
    EXPECT_EQ(back.seq, r.seq);
    EXPECT_EQ(back.op, r.op);
    EXPECT_EQ(back.key, r.key);
    EXPECT_EQ(back.value, r.value);
    EXPECT_EQ(back.expected, r.expected);
    EXPECT_EQ(back.local, r.local);
  }
}

TEST(RoundTrip, ClientRequestIsCompactJson) {
  wire::ClientRequest set{"c7", "n2", 12, wire::Op::Set, "x", "5", "", false};
  const std::string text = wire::encode(set);
  EXPECT_EQ(text.find(' '), std::string::npos) << text;
  EXPECT_EQ(json::parse(text),
            json::parse(R"({"type":"client_request","src":"c7","dest":"n2","seq":12,)"
                        R"("op":"set","key":"x","value":"5"})"));
}

TEST(RoundTrip, ProtocolExamplesDecode) {
  const auto req = decode_as<wire::ClientRequest>(
      R"({"type":"client_request","src":"c7","dest":"n2","seq":12,"op":"set","key":"x","value":"5"})");
  EXPECT_EQ(req.op, wire::Op::Set);
  EXPECT_EQ(req.value, "5");
  const auto ok = decode_as<wire::ClientReply>(
      R"({"type":"client_reply","src":"n2","dest":"c7","seq":12,"ok":true,"value":"5"})");
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.value, "5");
  const auto redirect = decode_as<wire::ClientReply>(
      R"({"type":"client_reply","src":"n2","dest":"c7","seq":12,"ok":false,"error":"not_leader","leader":"n3"})");
  EXPECT_FALSE(redirect.ok);
  EXPECT_EQ(redirect.error, "not_leader");
  EXPECT_EQ(redirect.leader, "n3");
  EXPECT_EQ(redirect.value, std::nullopt);
  const auto status = decode_as<wire::StatusRequest>(R"({"type":"status","src":"c7","dest":"n1"})");
  EXPECT_EQ(status.src, "c7");
  const auto sr = decode_as<wire::StatusReply>(
      R"({"type":"status_reply","src":"n1","dest":"c7","id":"n1","role":"leader","term":4,"leader":"n1",)"
      R"("commit_index":120,"last_applied":120,"last_log_index":121})");
  EXPECT_EQ(sr.term, 4u);
  EXPECT_EQ(sr.last_log_index, 121u);
}

TEST(RoundTrip, ClientReply) {
  wire::ClientReply value{"n2", "c7", 12, true, "5", "", "", ""};
  wire::ClientReply absent{"n2", "c7", 13, true, std::nullopt, "", "", ""};
  wire::ClientReply empty_value{"n2", "c7", 14, true, "", "", "", ""};
  wire::ClientReply redirect{"n2", "c7", 15, false, std::nullopt, "not_leader", "n3", ""};
  wire::ClientReply no_leader{"n2", "c7", 16, false, std::nullopt, "not_leader", "", ""};
  wire::ClientReply bad{"n2", "c7", 0, false, std::nullopt, "bad_request", "", "field 'seq': missing"};
  wire::ClientReply cas_failed{"n2", "c7", 17, false, "cur", "cas_failed", "", ""};
  for (const auto& r : {value, absent, empty_value, redirect, no_leader, bad, cas_failed}) {
    const std::string text = wire::encode(r);
    const auto back = decode_as<wire::ClientReply>(text);
    EXPECT_EQ(back.src, r.src) << text;
    EXPECT_EQ(back.dest, r.dest);
    EXPECT_EQ(back.seq, r.seq);
    EXPECT_EQ(back.ok, r.ok);
    EXPECT_EQ(back.value, r.value) << text;
    EXPECT_EQ(back.error, r.error);
    EXPECT_EQ(back.leader, r.leader);
    EXPECT_EQ(back.message, r.message);
  }
}

TEST(RoundTrip, ClientReplyFieldPresence) {
  const json absent = json::parse(wire::encode(
      wire::ClientReply{"n2", "c7", 13, true, std::nullopt, "", "", ""}));
  ASSERT_TRUE(absent.contains("value"));
  EXPECT_TRUE(absent["value"].is_null());
  EXPECT_FALSE(absent.contains("error"));
  EXPECT_FALSE(absent.contains("leader"));
  EXPECT_FALSE(absent.contains("message"));

  const json redirect = json::parse(wire::encode(
      wire::ClientReply{"n2", "c7", 15, false, std::nullopt, "not_leader", "n3", ""}));
  EXPECT_EQ(redirect["error"], "not_leader");
  EXPECT_EQ(redirect["leader"], "n3");

  // A failed reply names its error field even if the caller forgot to fill it.
  const json forgot = json::parse(wire::encode(
      wire::ClientReply{"n2", "c7", 15, false, std::nullopt, "", "", ""}));
  EXPECT_TRUE(forgot.contains("error"));
}

TEST(RoundTrip, ClientReplyNullLeaderAccepted) {
  const auto r = decode_as<wire::ClientReply>(
      R"({"type":"client_reply","src":"n2","dest":"c7","seq":1,"ok":false,"error":"not_leader","leader":null})");
  EXPECT_EQ(r.leader, "");
}

TEST(RoundTrip, StatusRequest) {
  const auto back = decode_as<wire::StatusRequest>(wire::encode(wire::StatusRequest{"c7", "n1"}));
  EXPECT_EQ(back.src, "c7");
  EXPECT_EQ(back.dest, "n1");
}

TEST(RoundTrip, StatusReply) {
  wire::StatusReply leader{"n1", "c7", "n1", "leader", 4, "n1", 120, 120, 121, "n1", false, {}};
  wire::StatusReply unknown{"n2", "c7", "n2", "candidate", 9, "", 0, 0, 0, "", false, {}};
  for (const auto& r : {leader, unknown}) {
    const std::string text = wire::encode(r);
    const auto back = decode_as<wire::StatusReply>(text);
    EXPECT_EQ(back.src, r.src);
    EXPECT_EQ(back.dest, r.dest);
    EXPECT_EQ(back.id, r.id);
    EXPECT_EQ(back.role, r.role);
    EXPECT_EQ(back.term, r.term);
    EXPECT_EQ(back.leader, r.leader);
    EXPECT_EQ(back.commit_index, r.commit_index);
    EXPECT_EQ(back.last_applied, r.last_applied);
    EXPECT_EQ(back.last_log_index, r.last_log_index);
    EXPECT_EQ(back.voted_for, r.voted_for);
  }
  EXPECT_TRUE(json::parse(wire::encode(unknown))["leader"].is_null());
  EXPECT_TRUE(json::parse(wire::encode(unknown))["voted_for"].is_null());
}

// Peer (Raft) messages. expect_same, round_trip and sample_append are in
// codec_test_helpers.h, shared with codec_rules_test.cc.

TEST(RoundTrip, RequestVote) {
  raft::Message m;
  m.type = raft::MessageType::RequestVote;
  m.from = "n1";
  m.to = "n2";
  m.term = 7;
  m.last_log_index = 41;
  m.last_log_term = 6;
  expect_same(round_trip(m), m);
  m.pre_vote = true;
  m.term = wire::kMaxWireInteger;
  expect_same(round_trip(m), m);
}

TEST(RoundTrip, RequestVoteReply) {
  raft::Message m;
  m.type = raft::MessageType::RequestVoteReply;
  m.from = "n2";
  m.to = "n1";
  m.term = 7;
  m.vote_granted = true;
  expect_same(round_trip(m), m);
  m.pre_vote = true;
  m.vote_granted = false;
  expect_same(round_trip(m), m);
}

TEST(RoundTrip, AppendEntriesReply) {
  raft::Message m;
  m.type = raft::MessageType::AppendEntriesReply;
  m.from = "n2";
  m.to = "n1";
  m.term = 3;
  m.success = true;
  m.match_index = 99;
  m.read_round = 5;
  expect_same(round_trip(m), m);
  m.success = false;
  m.match_index = 0;
  m.reject_index = 80;
  m.conflict_index = 70;
  m.conflict_term = 2;
  expect_same(round_trip(m), m);
}

TEST(RoundTrip, AppendEntriesOptionalFieldsDefault) {
  const auto m = decode_as<raft::Message>(
      R"({"type":"append_entries_reply","src":"n2","dest":"n1","term":3,"success":true,"match_index":4})");
  EXPECT_EQ(m.reject_index, 0u);
  EXPECT_EQ(m.conflict_index, 0u);
  EXPECT_EQ(m.conflict_term, 0u);
  EXPECT_EQ(m.read_round, 0u);
  const auto v = decode_as<raft::Message>(
      R"({"type":"request_vote","src":"n2","dest":"n1","term":3,"last_log_index":4,"last_log_term":2})");
  EXPECT_FALSE(v.pre_vote);
}

TEST(RoundTrip, AppendEntriesWithEntries) {
  const raft::Message m = sample_append();
  const std::string text = wire::encode(m);
  // The whole datagram is valid JSON and the command data sits in "cmd" as
  // an object (spliced, not a string).
  const json j = json::parse(text);
  ASSERT_TRUE(j["entries"].is_array());
  ASSERT_EQ(j["entries"].size(), 3u);
  EXPECT_EQ(j["entries"][0]["type"], "noop");
  EXPECT_TRUE(j["entries"][1]["cmd"].is_object());
  EXPECT_NE(text.find(m.entries[1].data), std::string::npos) << "data must be spliced verbatim";
  expect_same(round_trip(m), m);
}

TEST(RoundTrip, AppendEntriesHeartbeat) {
  raft::Message m;
  m.type = raft::MessageType::AppendEntries;
  m.from = "n1";
  m.to = "n2";
  m.term = 1;
  expect_same(round_trip(m), m);
  EXPECT_TRUE(json::parse(wire::encode(m))["entries"].empty());
}

TEST(RoundTrip, AppendEntriesEscapesIds) {
  raft::Message m = sample_append();
  m.from = "n\"1\\";
  m.to = "n\n3";
  expect_same(round_trip(m), m);
}

TEST(RoundTrip, AppendEntriesCommandTypeExplicitAndDataIsCompact) {
  const auto m = decode_as<raft::Message>(
      R"({"type":"append_entries","src":"n1","dest":"n2","term":2,"prev_log_index":0,"prev_log_term":0,)"
      R"("leader_commit":0,"entries":[{"term":2,"index":1,"type":"command","cmd":{ "op" : "set", "key":"k" }}]})");
  ASSERT_EQ(m.entries.size(), 1u);
  EXPECT_EQ(m.entries[0].type, raft::EntryType::Command);
  EXPECT_EQ(m.entries[0].data, R"({"key":"k","op":"set"})");
  EXPECT_EQ(m.read_round, 0u);
}

TEST(Decode, UnknownFieldsIgnored) {
  const auto r = decode_as<wire::ClientRequest>(
      R"({"type":"client_request","src":"c7","dest":"n2","seq":1,"op":"get","key":"x","extra":[1,{"a":null}],"value":7})");
  EXPECT_EQ(r.op, wire::Op::Get);
  EXPECT_EQ(r.value, "");
}

TEST(Decode, ConsistencyOnlyForGet) {
  json j = json::parse(client_request_with("consistency", "local"));
  EXPECT_FALSE(decode_as<wire::ClientRequest>(j.dump()).local) << "a set is never local";
  j["op"] = "get";
  EXPECT_TRUE(decode_as<wire::ClientRequest>(j.dump()).local);
  j["consistency"] = "linearizable";
  EXPECT_FALSE(decode_as<wire::ClientRequest>(j.dump()).local);
}

TEST(Decode, MaxSizesAccepted) {
  json j = json::parse(client_request_with("key", std::string(wire::kMaxKeyBytes, 'k')));
  j["value"] = std::string(wire::kMaxValueBytes, 'v');
  const auto r = decode_as<wire::ClientRequest>(j.dump());
  EXPECT_EQ(r.key.size(), wire::kMaxKeyBytes);
  EXPECT_EQ(r.value.size(), wire::kMaxValueBytes);
}

// ---------- malformed input ----------

TEST(Malformed, NotJsonOrNotObject) {
  for (const std::string text :
       {"", " ", "x", "{", "}", "{\"type\":", "[]", "[1,2]", "1", "\"str\"", "null", "true",
        "{\"type\":\"status\",\"src\":\"c1\",\"dest\":\"n1\"} trailing",
        "{\"type\":\"status\",\"src\":\"c1\",\"dest\":\"n1\"}{}",
        "{'type':'status'}", "\xff\xfe"}) {
    expect_malformed(text);
  }
}

TEST(Malformed, InvalidUtf8InString) {
  expect_malformed("{\"type\":\"status\",\"src\":\"c\xff\",\"dest\":\"n1\"}");
}

TEST(Malformed, EnvelopeFields) {
  EXPECT_NE(expect_malformed(R"({"src":"c1","dest":"n1"})").find("type"), std::string::npos);
  EXPECT_NE(expect_malformed(R"({"type":"status","dest":"n1"})").find("src"), std::string::npos);
  EXPECT_NE(expect_malformed(R"({"type":"status","src":"c1"})").find("dest"), std::string::npos);
  EXPECT_NE(expect_malformed(R"({"type":7,"src":"c1","dest":"n1"})").find("type"),
            std::string::npos);
  EXPECT_NE(expect_malformed(R"({"type":"status","src":1,"dest":"n1"})").find("src"),
            std::string::npos);
  EXPECT_NE(expect_malformed(R"({"type":"status","src":"c1","dest":null})").find("dest"),
            std::string::npos);
  EXPECT_NE(expect_malformed(R"({"type":"nonsense","src":"c1","dest":"n1"})").find("type"),
            std::string::npos);
}

TEST(Malformed, ClientRequestFields) {
  const struct {
    const char* field;
    json value;
  } cases[] = {
      {"seq", -1},     {"seq", 0},        {"seq", 1.5},     {"seq", 1.0},      {"seq", "1"},
      {"seq", true},   {"seq", nullptr},  {"op", "put"},    {"op", 1},         {"op", "GET"},
      {"key", ""},     {"key", 5},        {"key", nullptr}, {"value", 5},      {"value", nullptr},
      {"src", "c 7"},  {"src", ""},       {"consistency", "strong"},          {"consistency", true},
  };
  for (const auto& c : cases) {
    const std::string message = expect_malformed(client_request_with(c.field, c.value));
    EXPECT_NE(message.find(c.field), std::string::npos) << message;
  }
  for (const char* field : {"seq", "op", "key", "value", "src", "dest", "type"}) {
    const std::string message = expect_malformed(client_request_with(field, nullptr, true));
    EXPECT_NE(message.find(field), std::string::npos) << message;
  }
}

TEST(Malformed, HugeNumbers) {
  // Beyond 64 bits the parser itself gives up on the integer.
  EXPECT_EQ(expect_malformed(R"({"type":"client_request","src":"c7","dest":"n2","seq":18446744073709551616,"op":"get","key":"x"})"),
            "field 'seq': expected a non-negative integer below 2^53, got a non-integer or out-of-range number");
  expect_malformed(
      R"({"type":"client_request","src":"c7","dest":"n2","seq":1e400,"op":"get","key":"x"})");
  expect_malformed(R"({"type":"request_vote","src":"n1","dest":"n2","term":99999999999999999999999,)"
                   R"("last_log_index":1,"last_log_term":1})");
}

TEST(Malformed, CasNeedsExpectedAndValue) {
  json j = json::parse(client_request_with("op", "cas"));
  EXPECT_NE(expect_malformed(j.dump()).find("expected"), std::string::npos);
  j["expected"] = "old";
  j.erase("value");
  EXPECT_NE(expect_malformed(j.dump()).find("value"), std::string::npos);
  j["value"] = "new";
  EXPECT_EQ(decode_as<wire::ClientRequest>(j.dump()).expected, "old");
  j["expected"] = 3;
  expect_malformed(j.dump());
}

TEST(Malformed, BadClientIdSaysSo) {
  const DecodeError err = decode_error(client_request_with("src", "bad id!"));
  EXPECT_EQ(err.kind, DecodeError::Kind::Malformed);
  EXPECT_NE(err.message.find("client id"), std::string::npos) << err.message;
  EXPECT_EQ(err.src, "bad id!");
  expect_malformed(client_request_with("src", std::string(65, 'c')));
}

TEST(TooLarge, KeyAndValue) {
  DecodeError key = decode_error(client_request_with("key", std::string(wire::kMaxKeyBytes + 1, 'k')));
  EXPECT_EQ(key.kind, DecodeError::Kind::TooLarge);
  EXPECT_NE(key.message.find("key"), std::string::npos);
  EXPECT_EQ(key.src, "c7");
  EXPECT_EQ(key.seq, 12u);

  DecodeError value =
      decode_error(client_request_with("value", std::string(wire::kMaxValueBytes + 1, 'v')));
  EXPECT_EQ(value.kind, DecodeError::Kind::TooLarge);
  EXPECT_NE(value.message.find("value"), std::string::npos);
  EXPECT_EQ(value.seq, 12u);

  json cas = json::parse(client_request_with("op", "cas"));
  cas["expected"] = std::string(wire::kMaxValueBytes + 1, 'e');
  EXPECT_EQ(decode_error(cas.dump()).kind, DecodeError::Kind::TooLarge);
}

TEST(TooLarge, Datagram) {
  json j = json::parse(client_request_with("value", "v"));
  j["padding"] = std::string(wire::kMaxDatagramBytes, 'p');
  const DecodeError err = decode_error(j.dump());
  EXPECT_EQ(err.kind, DecodeError::Kind::TooLarge);
  EXPECT_FALSE(err.message.empty());
}

TEST(Malformed, ErrorCarriesEnvelopeAndSeq) {
  const DecodeError err = decode_error(client_request_with("op", "frobnicate"));
  EXPECT_EQ(err.type, "client_request");
  EXPECT_EQ(err.src, "c7");
  EXPECT_EQ(err.dest, "n2");
  EXPECT_EQ(err.seq, 12u);
  EXPECT_NE(err.message.find("op"), std::string::npos);

  const DecodeError no_seq = decode_error(client_request_with("seq", "twelve"));
  EXPECT_EQ(no_seq.src, "c7");
  EXPECT_EQ(no_seq.seq, 0u);

  const DecodeError status = decode_error(R"({"type":"status","src":"c9"})");
  EXPECT_EQ(status.type, "status");
  EXPECT_EQ(status.src, "c9");
}

TEST(Malformed, ClientReplyAndStatusReply) {
  expect_malformed(R"({"type":"client_reply","src":"n1","dest":"c1","ok":true})");
  expect_malformed(R"({"type":"client_reply","src":"n1","dest":"c1","seq":1,"ok":"yes"})");
  expect_malformed(R"({"type":"client_reply","src":"n1","dest":"c1","seq":1,"ok":true,"value":5})");
  expect_malformed(R"({"type":"client_reply","src":"n1","dest":"c1","seq":1,"ok":false})");
  expect_malformed(
      R"({"type":"client_reply","src":"n1","dest":"c1","seq":1,"ok":false,"error":"x","leader":3})");
  const json good = json::parse(wire::encode(wire::StatusReply{"n1", "c1", "n1", "follower", 2, "n2", 1, 1, 1, "", false, {}}));
  for (const char* field : {"id", "role", "term", "leader", "commit_index", "last_applied", "last_log_index"}) {
    json j = good;
    j.erase(field);
    EXPECT_NE(expect_malformed(j.dump()).find(field), std::string::npos);
  }
  json j = good;
  j["role"] = "king";
  expect_malformed(j.dump());
  j = good;
  j["term"] = -4;
  expect_malformed(j.dump());
}

TEST(Malformed, TruncatedDatagrams) {
  const std::string texts[] = {
      wire::encode(sample_append()),
      wire::encode(wire::ClientRequest{"c7", "n2", 12, wire::Op::Cas, "k", "v", "e", false}),
      wire::encode(wire::StatusReply{"n1", "c7", "n1", "leader", 4, "n1", 120, 120, 121, "n1", false, {}}),
  };
  for (const std::string& text : texts) {
    for (std::size_t len = 0; len < text.size(); ++len) {
      const wire::Decoded d = wire::decode(std::string_view(text).substr(0, len));
      EXPECT_TRUE(std::holds_alternative<DecodeError>(d)) << text.substr(0, len);
    }
  }
}

TEST(Malformed, DeepNestingRejectedWithoutCrash) {
  std::string deep = R"({"type":"status","src":"c1","dest":"n1","x":)";
  deep += std::string(30000, '[');
  deep += std::string(30000, ']');
  deep += '}';
  expect_malformed(deep);
  // Brackets inside strings do not count as nesting.
  json j = {{"type", "status"}, {"src", "c1"}, {"dest", "n1"}, {"note", std::string(100, '[')}};
  decode_as<wire::StatusRequest>(j.dump());
}

}  // namespace
