// The codec of the snapshot messages: install_snapshot (a chunk in base64)
// and its reply between servers, the operator's snapshot request and reply,
// and status_reply's snapshot_index. The integers of each are also in
// codec_rules_test.cc's every-field-below-2^53 table, and the fuzzer
// (codec_fuzz_test.cc) generates and mutates all of them.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "auth/peer_auth.h"
#include "raft/raft.h"
#include "wire/codec.h"

#include "codec_test_helpers.h"

namespace {

using namespace codec_testing;

// The variant's existing alternatives keep their indexes.
static_assert(std::is_same_v<std::variant_alternative_t<5, wire::Decoded>, wire::StatusReply>);
static_assert(std::is_same_v<std::variant_alternative_t<6, wire::Decoded>, wire::SnapshotRequest>);
static_assert(std::is_same_v<std::variant_alternative_t<7, wire::Decoded>, wire::SnapshotReply>);

raft::Message chunk(std::string data, std::uint64_t offset, std::uint64_t total) {
  raft::Message m;
  m.type = raft::MessageType::InstallSnapshot;
  m.from = "n1";
  m.to = "n2";
  m.term = 5;
  m.last_included_index = 100;
  m.last_included_term = 4;
  m.offset = offset;
  m.total_bytes = total;
  m.done = offset + data.size() == total;
  m.read_round = 7;
  m.data = std::move(data);
  return m;
}

// install_snapshot with `field` replaced (or removed when `remove`).
std::string install_with(const std::string& field, const json& value, bool remove = false) {
  json j = json::parse(wire::encode(chunk(std::string("\x00\xff!", 3), 3, 6)));
  if (remove) {
    j.erase(field);
  } else {
    j[field] = value;
  }
  return j.dump();
}

// ------------------------------------------------------ install_snapshot ----

TEST(InstallSnapshot, EncodesDataAsStandardBase64) {
  EXPECT_EQ(wire::encode(chunk(std::string("\x00\xff!", 3), 0, 3)),
            R"({"type":"install_snapshot","src":"n1","dest":"n2","term":5,"last_included_index":100,)"
            R"("last_included_term":4,"offset":0,"total_bytes":3,"done":true,"read_round":7,"data":"AP8h"})");
  // Padding, and the two characters URL-safe base64 would replace.
  EXPECT_EQ(json::parse(wire::encode(chunk("\xfb\xff", 0, 2)))["data"], "+/8=");
  EXPECT_EQ(json::parse(wire::encode(chunk("a", 0, 1)))["data"], "YQ==");
}

TEST(InstallSnapshot, RoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  for (std::size_t n : {0, 1, 2, 3, 4, 255, 256}) {
    const raft::Message first = chunk(all.substr(0, n), 10, 10 + n + (n % 2));  // odd sizes: not the last chunk
    expect_same(round_trip(first), first);
  }
  raft::Message last = chunk(all, 1000, 1256);
  last.read_round = 0;
  expect_same(round_trip(last), last);
}

TEST(InstallSnapshot, ReplyRoundTrips) {
  raft::Message reply;
  reply.type = raft::MessageType::InstallSnapshotReply;
  reply.from = "n2";
  reply.to = "n1";
  reply.term = 5;
  reply.last_included_index = 100;
  reply.offset = 65536;
  reply.read_round = 7;
  expect_same(round_trip(reply), reply);
  reply.done = true;
  reply.term = 0;  // a reply may carry a node's initial term
  expect_same(round_trip(reply), reply);
  EXPECT_TRUE(wire::is_peer_type("install_snapshot"));
  EXPECT_TRUE(wire::is_peer_type("install_snapshot_reply"));
  EXPECT_FALSE(wire::is_peer_type("snapshot"));  // the operator's request is client traffic
}

TEST(InstallSnapshot, BrokenChunksNameTheField) {
  const struct {
    std::string text;
    const char* message;
  } cases[] = {
      {install_with("term", 0), "field 'term': must be >= 1 (terms start at 1)"},
      {install_with("last_included_term", 6), "field 'last_included_term': 6 is above the message's term 5"},
      {install_with("last_included_index", 0), "field 'last_included_term': must be 0 when last_included_index is 0, got 4"},
      {install_with("last_included_term", 0), "field 'last_included_term': must be >= 1 when last_included_index is 100"},
      {install_with("total_bytes", 0), "field 'total_bytes': must be >= 1 (a snapshot is never empty)"},
      {install_with("total_bytes", 5), "field 'data': the chunk ends at offset 3 + 3 bytes = 6, past total_bytes 5"},
      {install_with("offset", 9007199254740990), "field 'data': the chunk ends at offset 9007199254740990 + 3 bytes = "
                                                 "9007199254740993, past total_bytes 6"},
      {install_with("total_bytes", 7), "field 'done': true, but the chunk ends at 6 of total_bytes 7"},
      {install_with("done", false), "field 'done': false, but the chunk ends at 6 of total_bytes 6"},
      {install_with("done", 1), "field 'done': expected a boolean, got an integer"},
      {install_with("data", 12), "field 'data': expected a base64 string, got an integer"},
      {install_with("data", nullptr, true), "field 'data': missing"},
      {install_with("offset", nullptr, true), "field 'offset': missing"},
      {install_with("total_bytes", nullptr, true), "field 'total_bytes': missing"},
      {install_with("last_included_index", nullptr, true), "field 'last_included_index': missing"},
  };
  for (const auto& c : cases) EXPECT_EQ(expect_malformed(c.text), c.message) << c.text;
}

TEST(InstallSnapshot, OnlyCanonicalBase64IsAccepted) {
  // One encoding per byte string: what is accepted encodes back to itself.
  const struct {
    const char* data;
    const char* stops_at;
  } bad[] = {
      {"A", "stops at character 1 of 1"},      {"AP8", "stops at character 3 of 3"},
      {"AP8h=", "stops at character 4 of 5"},  {"AP-h", "stops at character 2 of 4"},  // URL-safe alphabet
      {"AP8h\n", "stops at character 4 of 5"}, {"AP 8h", "stops at character 2 of 5"},
      {"QR==", "stops at character 2 of 4"},   // stray bits: "QQ==" is the encoding of "A"
      {"QQ=", "stops at character 3 of 3"},    {"QQ", "stops at character 2 of 2"},  // padding required
      {"====", "stops at character 0 of 4"},   {"QQ==QQ==", "stops at character 4 of 8"},
  };
  for (const auto& b : bad) {
    const std::string message = expect_malformed(install_with("data", b.data));
    EXPECT_TRUE(message.starts_with("field 'data': not valid base64")) << message;
    EXPECT_NE(message.find(b.stops_at), std::string::npos) << b.data << " -> " << message;
  }
  json j = json::parse(install_with("data", "QQ=="));
  j["offset"] = 5;
  EXPECT_EQ(decode_as<raft::Message>(j.dump()).data, "A");
}

TEST(InstallSnapshot, WhatTheCoreSendsIsAccepted) {
  // The rules' boundaries: a middle chunk, a chunk of a snapshot at the log's
  // origin (index 0, term 0: the core does not refuse it), read_round
  // optional, and last_included_term equal to the term.
  json middle = json::parse(install_with("total_bytes", 1000));
  middle["done"] = false;
  EXPECT_FALSE(decode_as<raft::Message>(middle.dump()).done);
  json origin = json::parse(install_with("last_included_index", 0));
  origin["last_included_term"] = 0;
  decode_as<raft::Message>(origin.dump());
  EXPECT_EQ(decode_as<raft::Message>(install_with("read_round", nullptr, true)).read_round, 0u);
  EXPECT_EQ(decode_as<raft::Message>(install_with("last_included_term", 5)).last_included_term, 5u);
}

TEST(InstallSnapshot, ReplyNeedsItsFields) {
  const json good = json::parse(R"({"type":"install_snapshot_reply","src":"n2","dest":"n1","term":5,)"
                                R"("last_included_index":100,"offset":3,"done":false,"read_round":7})");
  for (const char* field : {"term", "last_included_index", "offset", "done"}) {
    json j = good;
    j.erase(field);
    EXPECT_EQ(expect_malformed(j.dump()), "field '" + std::string(field) + "': missing");
  }
  json j = good;
  j["done"] = "yes";
  EXPECT_EQ(expect_malformed(j.dump()), "field 'done': expected a boolean, got a string");
  j = good;
  j.erase("read_round");
  EXPECT_EQ(decode_as<raft::Message>(j.dump()).read_round, 0u);
}

TEST(InstallSnapshot, AFullChunkFitsOneSealedDatagram) {
  // The core's chunk size, every integer at its largest, and 64-character
  // ids (the most the id alphabet allows): the encoding leaves a 128-byte
  // MAC tail to spare, and so does the real seal with the longest cluster id.
  const std::size_t chunk_bytes = raft::Config{}.max_snapshot_chunk_bytes;
  ASSERT_EQ(chunk_bytes, 32u * 1024);
  std::string data(chunk_bytes, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131);
  raft::Message m = chunk(data, 0, 0);
  const std::string id(64, 'n');
  m.from = m.to = id;
  m.term = m.last_included_index = m.last_included_term = m.read_round = wire::kMaxWireInteger;
  m.total_bytes = wire::kMaxWireInteger;
  m.offset = m.total_bytes - data.size();
  m.done = true;
  const std::string text = wire::encode(m);
  std::printf("a %zu-byte chunk encodes to %zu bytes, %zu under the datagram limit\n", data.size(), text.size(),
              wire::kMaxDatagramBytes - text.size());
  EXPECT_LE(text.size() + 128, wire::kMaxDatagramBytes);

  auth::Key key{};
  key[0] = 1;
  const auth::PeerAuth gate(std::string(64, 'k'), key);
  const std::string sealed = gate.seal(text);
  EXPECT_LE(sealed.size(), wire::kMaxDatagramBytes);
  EXPECT_EQ(gate.open(sealed).verdict, auth::PeerAuth::Verdict::Ok);
  expect_same(decode_as<raft::Message>(sealed), m);  // the seal's fields are unknown fields
}

// ---------------------------------------------- operator's snapshot request ----

TEST(SnapshotRequest, RoundTripsAndMatchesTheDocumentedText) {
  const auto request = decode_as<wire::SnapshotRequest>(R"({"type":"snapshot","src":"c1","dest":"n1"})");
  EXPECT_EQ(request, (wire::SnapshotRequest{"c1", "n1"}));
  EXPECT_EQ(wire::encode(request), R"({"dest":"n1","src":"c1","type":"snapshot"})");

  const auto reply = decode_as<wire::SnapshotReply>(
      R"({"type":"snapshot_reply","src":"n1","dest":"c1","ok":true,"snapshot_index":1200})");
  EXPECT_EQ(reply, (wire::SnapshotReply{"n1", "c1", true, 1200, ""}));
  const wire::SnapshotReply failed{"n1", "c1", false, 900, "disk full: data/n1"};
  EXPECT_EQ(decode_as<wire::SnapshotReply>(wire::encode(failed)), failed);
  EXPECT_EQ(json::parse(wire::encode(reply)).count("message"), 0u);  // only when there is one
}

TEST(SnapshotRequest, ReplyNeedsOkAndIndex) {
  const json good = json::parse(R"({"type":"snapshot_reply","src":"n1","dest":"c1","ok":false,)"
                                R"("snapshot_index":3,"message":"busy"})");
  for (const char* field : {"ok", "snapshot_index"}) {
    json j = good;
    j.erase(field);
    EXPECT_EQ(expect_malformed(j.dump()), "field '" + std::string(field) + "': missing");
  }
  json j = good;
  j["message"] = 5;
  EXPECT_EQ(expect_malformed(j.dump()), "field 'message': expected a string, got an integer");
  j = good;
  j["ok"] = nullptr;
  EXPECT_EQ(expect_malformed(j.dump()), "field 'ok': expected a boolean, got null");
  // Only the envelope: a snapshot request without src cannot be answered.
  const DecodeError err = decode_error(R"({"type":"snapshot","dest":"n1"})");
  EXPECT_EQ(err.type, "snapshot");
  EXPECT_EQ(err.message, "field 'src': missing");
}

// ------------------------------------------------ status_reply's extension ----

TEST(StatusSnapshotIndex, AlwaysWrittenOptionalWhenRead) {
  wire::StatusReply r{"n1", "c7", "n1", "leader", 4, "n1", 120, 120, 121, "n1", false, {}};
  r.snapshot_index = 100;
  const std::string text = wire::encode(r);
  EXPECT_EQ(json::parse(text)["snapshot_index"], 100);
  EXPECT_EQ(decode_as<wire::StatusReply>(text), r);
  r.snapshot_index = 0;  // no snapshot yet: still written
  EXPECT_EQ(json::parse(wire::encode(r))["snapshot_index"], 0);

  // A node without snapshots (Part 1's example): 0, and known to be unknown;
  // encoding it again leaves the field out, as it came.
  const auto foreign = decode_as<wire::StatusReply>(
      R"({"type":"status_reply","src":"n1","dest":"c7","id":"n1","role":"leader","term":4,"leader":"n1",)"
      R"("commit_index":120,"last_applied":120,"last_log_index":121})");
  EXPECT_EQ(foreign.snapshot_index, 0u);
  EXPECT_FALSE(foreign.has_snapshot_index);
  EXPECT_EQ(json::parse(wire::encode(foreign)).count("snapshot_index"), 0u);
  EXPECT_EQ(decode_as<wire::StatusReply>(wire::encode(foreign)), foreign);

  json j = json::parse(text);
  j["snapshot_index"] = nullptr;
  EXPECT_EQ(expect_malformed(j.dump()),
            "field 'snapshot_index': expected a non-negative integer below 2^53, got null");
}

}  // namespace
