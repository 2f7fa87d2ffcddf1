// Shared by the codec's unit tests (codec_test.cc, codec_rules_test.cc,
// codec_snapshot_test.cc):
// decoding with a failure that names the input, and sample messages.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "raft/raft.h"
#include "wire/codec.h"

namespace codec_testing {

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

inline DecodeError decode_error(const std::string& text) {
  wire::Decoded d = wire::decode(text);
  if (const auto* err = std::get_if<DecodeError>(&d)) return *err;
  ADD_FAILURE() << "expected a DecodeError for: " << text;
  return DecodeError{};
}

// Returns the error's message so callers can check it names the field.
inline std::string expect_malformed(const std::string& text) {
  DecodeError err = decode_error(text);
  EXPECT_EQ(err.kind, DecodeError::Kind::Malformed) << text << " -> " << err.message;
  EXPECT_FALSE(err.message.empty());
  return err.message;
}

// A valid set request with one field replaced, or removed when `remove`.
inline std::string client_request_with(const std::string& field, const json& value,
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

inline void expect_same(const raft::Message& a, const raft::Message& b) {
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
  EXPECT_EQ(a.last_included_index, b.last_included_index);
  EXPECT_EQ(a.last_included_term, b.last_included_term);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.total_bytes, b.total_bytes);
  EXPECT_EQ(a.done, b.done);
  EXPECT_EQ(a.data, b.data);
}

inline raft::Message round_trip(const raft::Message& m) {
  const std::string text = wire::encode(m);
  EXPECT_EQ(text.find(' '), std::string::npos) << text;
  return decode_as<raft::Message>(text);
}

inline raft::Message sample_append() {
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

}  // namespace codec_testing
