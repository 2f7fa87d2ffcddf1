// Round trips for every message type, and strict rejection of bad datagrams.
// (Large-scale random inputs: codec_fuzz_test.cc.)
#include "wire/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;
using wire::DecodeError;

template <typename T>
T decode_as(const std::string& text) {
  wire::Decoded d = wire::decode(text);
  if (const auto* err = std::get_if<DecodeError>(&d)) {
    ADD_FAILURE() << "unexpected DecodeError: " << err->message << "\n  input: " << text;
    return T{};
  }
  const T* value = std::get_if<T>(&d);
  if (value == nullptr) {
    ADD_FAILURE() << "decoded to another alternative (index " << d.index() << "): " << text;
    return T{};
  }
  return *value;
}

DecodeError decode_error(const std::string& text) {
  wire::Decoded d = wire::decode(text);
  if (const auto* err = std::get_if<DecodeError>(&d)) return *err;
  ADD_FAILURE() << "expected a DecodeError for: " << text;
  return DecodeError{};
}

// Returns the error's message so callers can check it names the field.
std::string expect_malformed(const std::string& text) {
  DecodeError err = decode_error(text);
  EXPECT_EQ(err.kind, DecodeError::Kind::Malformed) << text << " -> " << err.message;
  EXPECT_FALSE(err.message.empty());
  return err.message;
}

// A valid set request with one field replaced, or removed when `remove`.
std::string client_request_with(const std::string& field, const json& value,
                                bool remove = false) {
  json j = {{"type", "client_request"}, {"src", "c7"},  {"dest", "n2"},
            {"seq", 12},                {"op", "set"},  {"key", "x"},
            {"value", "5"}};
  if (remove) {
    j.erase(field);
  } else {
    j[field] = value;
  }
  return j.dump();
}

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

void expect_same(const raft::Message& a, const raft::Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.term, b.term);
  EXPECT_EQ(a.pre_vote, b.pre_vote);
  EXPECT_EQ(a.last_log_index, b.last_log_index);
  EXPECT_EQ(a.last_log_term, b.last_log_term);
  EXPECT_EQ(a.vote_granted, b.vote_granted);
  EXPECT_EQ(a.prev_log_index, b.prev_log_index);
  EXPECT_EQ(a.prev_log_term, b.prev_log_term);
  EXPECT_EQ(a.entries, b.entries);
  EXPECT_EQ(a.leader_commit, b.leader_commit);
  EXPECT_EQ(a.read_round, b.read_round);
  EXPECT_EQ(a.success, b.success);
  EXPECT_EQ(a.match_index, b.match_index);
  EXPECT_EQ(a.reject_index, b.reject_index);
  EXPECT_EQ(a.conflict_index, b.conflict_index);
  EXPECT_EQ(a.conflict_term, b.conflict_term);
}

raft::Message round_trip(const raft::Message& m) {
  const std::string text = wire::encode(m);
  EXPECT_EQ(text.find(' '), std::string::npos) << text;
  return decode_as<raft::Message>(text);
}

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

raft::Message sample_append() {
  raft::Message m;
  m.type = raft::MessageType::AppendEntries;
  m.from = "n1";
  m.to = "n3";
  m.term = 5;
  m.prev_log_index = 10;
  m.prev_log_term = 4;
  m.leader_commit = 9;
  m.read_round = 17;
  // Data as the KV layer makes it: compact, sorted keys.
  m.entries.push_back(raft::Entry{5, 11, raft::EntryType::Noop, ""});
  m.entries.push_back(raft::Entry{
      5, 12, raft::EntryType::Command,
      json{{"client", "c1"}, {"seq", 3}, {"op", "set"}, {"key", "x"}, {"value", "a\"b\"\n\\\t"}}
          .dump()});
  m.entries.push_back(raft::Entry{
      5, 13, raft::EntryType::Command,
      json{{"client", "c2"}, {"seq", 1}, {"op", "delete"}, {"key", "\xc3\xa9\xe2\x82\xac"}}.dump()});
  return m;
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
       {"/term", "/commit_index", "/last_applied", "/last_log_index"}},
      {R"({"type":"request_vote","src":"n1","dest":"n2","term":3,"last_log_index":4,"last_log_term":2})",
       {"/term", "/last_log_index", "/last_log_term"}},
      {R"({"type":"request_vote_reply","src":"n2","dest":"n1","term":3,"vote_granted":true})", {"/term"}},
      {wire::encode(sample_append()),
       {"/term", "/prev_log_index", "/prev_log_term", "/leader_commit", "/read_round", "/entries/0/term",
        "/entries/0/index", "/entries/2/term", "/entries/2/index"}},
      {reply + R"("success":true,"match_index":4})", {"/term", "/match_index", "/read_round"}},
      {reply + R"("success":false,"match_index":0,"reject_index":8,"conflict_index":6,"conflict_term":2})",
       {"/term", "/reject_index", "/conflict_index", "/conflict_term", "/read_round"}},
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
