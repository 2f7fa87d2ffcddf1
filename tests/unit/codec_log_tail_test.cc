// The codec of the dashboard's log_tail request and reply (docs/PROTOCOL.md
// part 2): exact encodings, round trips, the bounds on count and on the
// reply's terms, and that the largest reply fits one datagram. The fuzzer
// (codec_fuzz_test.cc) also generates and mutates both.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "wire/codec.h"

#include "codec_test_helpers.h"

namespace {

using namespace codec_testing;

static_assert(std::is_same_v<std::variant_alternative_t<8, wire::Decoded>, wire::LogTailRequest>);
static_assert(std::is_same_v<std::variant_alternative_t<9, wire::Decoded>, wire::LogTailReply>);

wire::LogTailReply sample_reply() { return wire::LogTailReply{"n2", "dash1", 10, 2, 14, {2, 3, 3, 5}}; }

std::string reply_with(const std::string& field, const json& value) {
  json j = json::parse(wire::encode(sample_reply()));
  j[field] = value;
  return j.dump();
}

TEST(LogTail, RequestEncodesAndRoundTrips) {
  const wire::LogTailRequest r{"dash1", "n3", 40};
  EXPECT_EQ(wire::encode(r), R"({"count":40,"dest":"n3","src":"dash1","type":"log_tail"})");
  EXPECT_EQ(decode_as<wire::LogTailRequest>(wire::encode(r)), r);
}

TEST(LogTail, RequestCountDefaultsAndIsBounded) {
  EXPECT_EQ(decode_as<wire::LogTailRequest>(R"({"type":"log_tail","src":"c1","dest":"n1"})").count,
            wire::kDefaultLogTailEntries);
  EXPECT_EQ(decode_as<wire::LogTailRequest>(R"({"type":"log_tail","src":"c1","dest":"n1","count":64})").count, 64u);
  for (const char* bad : {"0", "65", "1000000", "-1", "1.5", "\"8\"", "null"}) {
    const std::string text = std::string(R"({"type":"log_tail","src":"c1","dest":"n1","count":)") + bad + "}";
    const std::string message = expect_malformed(text);
    EXPECT_NE(message.find("count"), std::string::npos) << message;
    // The node answers bad_request to what it can read of a malformed log_tail.
    const DecodeError err = decode_error(text);
    EXPECT_EQ(err.type, "log_tail");
    EXPECT_EQ(err.src, "c1");
  }
}

TEST(LogTail, ReplyEncodesAndRoundTrips) {
  EXPECT_EQ(wire::encode(sample_reply()),
            R"({"base_index":10,"base_term":2,"dest":"dash1","last_index":14,"src":"n2","terms":[2,3,3,5],)"
            R"("type":"log_tail_reply"})");
  const auto back = decode_as<wire::LogTailReply>(wire::encode(sample_reply()));
  EXPECT_EQ(back, sample_reply());
  EXPECT_EQ(back.first_index(), 11u);
  // An empty log, and a log whose entries are all compacted.
  for (const wire::LogTailReply& r : {wire::LogTailReply{"n1", "c", 0, 0, 0, {}},
                                     wire::LogTailReply{"n1", "c", 500, 7, 500, {}}}) {
    EXPECT_EQ(decode_as<wire::LogTailReply>(wire::encode(r)), r);
  }
}

TEST(LogTail, ReplyThatDescribesNoPossibleLogIsRefused) {
  struct Case {
    std::string field;
    json value;
  };
  const std::vector<Case> cases = {
      {"terms", json::array({2, 3, 1, 5})},        // decreasing
      {"terms", json::array({1, 3, 3, 5})},        // below base_term
      {"terms", json::array({0, 3, 3, 5})},        // term 0
      {"terms", json::array({2, 3, 3, 5, 5})},     // more entries than last_index - base_index
      {"terms", "2,3"},                            // not an array
      {"terms", json::array({2, "3"})},            // not integers
      {"last_index", 9},                           // below base_index
      {"base_term", 0},                            // base_index 10 needs a term
      {"base_index", 9007199254740992ULL},         // 2^53
  };
  for (const Case& c : cases) {
    const std::string text = reply_with(c.field, c.value);
    const std::string message = expect_malformed(text);
    EXPECT_NE(message.find(c.field == "base_index" ? "base_index" : c.field), std::string::npos)
        << text << " -> " << message;
  }
  json j = json::parse(wire::encode(sample_reply()));
  j.erase("terms");
  expect_malformed(j.dump());
}

TEST(LogTail, LargestReplyFitsOneDatagramAndMoreTermsAreRefused) {
  const std::uint64_t big = wire::kMaxWireInteger;
  wire::LogTailReply r{std::string(64, 'n'), std::string(64, 'c'), big - 1000, big - 1, big, {}};
  r.terms.assign(wire::kMaxLogTailEntries, big - 1);
  const std::string text = wire::encode(r);
  EXPECT_LT(text.size(), 2000u);
  EXPECT_LT(text.size(), wire::kMaxDatagramBytes);
  EXPECT_EQ(decode_as<wire::LogTailReply>(text), r);
  json j = json::parse(text);
  j["terms"].push_back(big - 1);
  EXPECT_NE(expect_malformed(j.dump()).find("at most 64"), std::string::npos);
}

}  // namespace
