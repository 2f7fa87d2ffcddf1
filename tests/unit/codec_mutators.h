// Mutators for codec_fuzz_test.cc: ways a network or an attacker breaks a
// valid datagram (truncation, bit flips, insertions and deletions, splices,
// numbers swapped for huge, negative or fractional ones, deep nesting,
// duplicate keys, invalid UTF-8).
#pragma once

#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec_generators.h"
#include "wire/codec.h"

namespace codec_fuzz {

inline const std::vector<std::string> kNumberTokens = {
    "9007199254740992", "9007199254740991", "9007199254740993", "18446744073709551615",
    "18446744073709551616", "99999999999999999999999", "-9223372036854775808", "-1", "-0", "0", "1",
    "1.5", "1.0", "1e3", "1E2", "1e400", "-1e400", "2e-1", "0.0", "00", "01", "4503599627370496.5",
    "\"7\"", "true", "null", "[]", "{}", "NaN", "Infinity", "0x10"};

// Replaces one run of digits (with its sign) by another number, or by its
// neighbour, so relations such as index = prev + 1 break by one.
inline std::string replace_number(Rng& rng, const std::string& text) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] >= '0' && text[i] <= '9') {
      std::size_t start = i > 0 && text[i - 1] == '-' ? i - 1 : i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
      runs.emplace_back(start, i - start);
    } else {
      ++i;
    }
  }
  if (runs.empty()) return text;
  const auto [pos, len] = pick(rng, runs);
  std::string token;
  const std::string old = text.substr(pos, len);
  if (chance(rng, 2) && old[0] != '-' && len < 19) {
    const std::uint64_t v = std::stoull(old);
    token = std::to_string(chance(rng, 2) ? v + 1 : (v == 0 ? 0 : v - 1));
  } else {
    token = pick(rng, kNumberTokens);
  }
  return text.substr(0, pos) + token + text.substr(pos + len);
}

// Parses, changes one numeric field to a related value (another field's, a
// neighbour, 0, 2^53 - 1 or 2^53) and dumps again: stays valid JSON, so it
// probes the codec's structural rules rather than the parser.
inline std::string mutate_field(Rng& rng, const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return text;
  const json flat = doc.flatten();
  std::vector<std::string> numbers;
  std::vector<std::uint64_t> values;
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    if (it->is_number_unsigned()) {
      numbers.push_back(it.key());
      values.push_back(it->get<std::uint64_t>());
    }
  }
  if (numbers.empty()) return text;
  const std::size_t i = below(rng, numbers.size());
  const std::uint64_t v = values[i];
  const std::uint64_t choices[] = {0, 1, v + 1, v == 0 ? 0 : v - 1, pick(rng, values), kMaxWireInteger,
                                   kMaxWireInteger + 1};
  json& target = doc[json::json_pointer(numbers[i])];
  if (chance(rng, 10)) {
    target = -1;
  } else {
    target = choices[below(rng, std::size(choices))];
  }
  if (doc.is_object() && !doc.empty() && chance(rng, 8)) {  // also drop a top-level field
    std::vector<std::string> keys;
    for (const auto& item : doc.items()) keys.push_back(item.key());
    doc.erase(pick(rng, keys));
  }
  return doc.dump();
}

inline std::string nest(Rng& rng) {
  const std::size_t depth = 1 + below(rng, 40);
  const bool arrays = chance(rng, 2);
  std::string open, close;
  for (std::size_t i = 0; i < depth; ++i) {
    open += arrays ? "[" : "{\"a\":";
    close += arrays ? "]" : "}";
  }
  const std::string inner = arrays ? "1" : "null";
  switch (below(rng, 4)) {
    case 0:  // as an unknown field
      return R"({"type":"status","src":"c1","dest":"n1","x":)" + open + inner + close + "}";
    case 1:  // inside a command, which the codec keeps
      return R"({"type":"append_entries","src":"n1","dest":"n2","term":2,"prev_log_index":0,)"
             R"("prev_log_term":0,"leader_commit":0,"entries":[{"term":2,"index":1,"cmd":{"k":)" +
             open + inner + close + "}}]}";
    case 2:  // unbalanced
      return R"({"type":"status","src":"c1","dest":"n1","x":)" + open + inner + "}";
    default:  // the whole datagram
      return open + inner + close;
  }
}

inline const std::vector<std::string> kBadUtf8 = {
    "\xff", "\xfe", "\xc3", "\xc3\x28", "\xa0\xa1", "\xe2\x28\xa1", "\xe2\x82", "\xf0\x28\x8c\xbc",
    "\xf8\xa1\xa1\xa1\xa1", "\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xf4\x90\x80\x80",
    "\\ud800", "\\udc00", "\\ud800\\u0041", "\\u00", "\\x41"};

inline std::string mutate(Rng& rng, const std::string& text, const std::vector<std::string>& corpus, int kind) {
  std::string s = text;
  switch (kind) {
    case 0:  // truncation at a random length
      return s.substr(0, below(rng, s.size() + 1));
    case 1: {  // bit flips
      const int flips = 1 + static_cast<int>(below(rng, 3));
      for (int i = 0; i < flips && !s.empty(); ++i) s[below(rng, s.size())] ^= static_cast<char>(1 << below(rng, 8));
      return s;
    }
    case 2: {  // byte insertions and deletions
      static const std::string alphabet = "{}[]\",:0123456789-.eE \\truefalsnul";
      const int edits = 1 + static_cast<int>(below(rng, 4));
      for (int i = 0; i < edits; ++i) {
        const std::size_t pos = below(rng, s.size() + 1);
        if (chance(rng, 2) && pos < s.size()) {
          s.erase(pos, 1 + below(rng, 6));
        } else {
          const char c = chance(rng, 2) ? alphabet[below(rng, alphabet.size())] : static_cast<char>(rng());
          s.insert(pos, 1, c);
        }
      }
      return s;
    }
    case 3: {  // splice: the head of one message and the tail of another
      const std::string& other = pick(rng, corpus);
      return s.substr(0, below(rng, s.size() + 1)) + other.substr(below(rng, other.size() + 1));
    }
    case 4:
      return replace_number(rng, s);
    case 5:
      return mutate_field(rng, s);
    case 6: {  // duplicate keys, first or last (which one wins must not matter)
      static const std::vector<std::string> keys = {
          "type", "src", "dest", "term", "seq", "op", "key", "success", "match_index", "entries",
          "prev_log_index", "prev_log_term", "last_log_term", "leader_commit", "ok", "role",
          "last_included_index", "last_included_term", "offset", "total_bytes", "done", "data", "snapshot_index"};
      const std::string pair = "\"" + pick(rng, keys) + "\":" +
                               (chance(rng, 2) ? pick(rng, kNumberTokens) : "\"" + client_id(rng) + "\"");
      if (s.size() < 2) return s;
      return chance(rng, 2) ? "{" + pair + "," + s.substr(1) : s.substr(0, s.size() - 1) + "," + pair + "}";
    }
    default: {  // invalid UTF-8 (or broken escapes) right inside a string
      std::vector<std::size_t> quotes;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '"') quotes.push_back(i + 1);
      }
      if (quotes.empty()) return s;
      s.insert(pick(rng, quotes), pick(rng, kBadUtf8));
      return s;
    }
  }
}

}  // namespace codec_fuzz
