// log_tail asks one node for the terms of the last entries of its log; the
// dashboard draws them as the paper's figures draw logs. The request is
// client traffic like status: unsealed, answered in any role, and it changes
// nothing. Both sides are bounded: at most kMaxLogTailEntries terms (64 terms
// below 2^53 are under 1.1 KB of JSON, far inside one datagram).
#include "wire/log_tail_codec.h"

#include <cstdint>
#include <string>
#include <utility>

#include "wire/codec.h"
#include "wire/fields.h"

namespace wire {
namespace {

using json = nlohmann::json;
using fields::fail;
using fields::get_u64;

json envelope(const char* type, const std::string& src, const std::string& dest) {
  return json{{"type", type}, {"src", src}, {"dest", dest}};
}

}  // namespace

namespace log_tail_codec {

LogTailRequest decode_request(const json& doc, std::string src, std::string dest) {
  LogTailRequest r;
  r.src = std::move(src);
  r.dest = std::move(dest);
  r.count = fields::get_u64_or(doc, "count", kDefaultLogTailEntries);
  if (r.count == 0 || r.count > kMaxLogTailEntries) {
    fail("count", "must be in [1, " + std::to_string(kMaxLogTailEntries) + "], got " + std::to_string(r.count));
  }
  return r;
}

// A reply is checked as a receiver can: the terms describe a possible log
// (each >= 1, never decreasing, none before the base's), and the numbers
// add up (first_index = last_index - count + 1 is past the base).
LogTailReply decode_reply(const json& doc, std::string src, std::string dest) {
  LogTailReply r;
  r.src = std::move(src);
  r.dest = std::move(dest);
  r.base_index = get_u64(doc, "base_index");
  r.base_term = get_u64(doc, "base_term");
  fields::check_log_position(r.base_index, r.base_term, "base_index", "base_term");
  r.last_index = get_u64(doc, "last_index");
  if (r.last_index < r.base_index) {
    fail("last_index", std::to_string(r.last_index) + " is below base_index " + std::to_string(r.base_index));
  }
  const json& terms = fields::require(doc, "terms", "terms");
  if (!terms.is_array()) fail("terms", "expected an array of terms, got " + fields::describe(terms));
  if (terms.size() > kMaxLogTailEntries) {
    fail("terms", "holds " + std::to_string(terms.size()) + " terms, at most " +
                      std::to_string(kMaxLogTailEntries) + " allowed");
  }
  if (terms.size() > r.last_index - r.base_index) {
    fail("terms", "holds " + std::to_string(terms.size()) + " terms, but the log has only " +
                      std::to_string(r.last_index - r.base_index) + " entries after base_index");
  }
  std::uint64_t floor = r.base_term;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    const std::string name = "terms[" + std::to_string(i) + "]";
    const std::uint64_t t = fields::as_u64(terms[i], name);
    if (t == 0) fail(name, "must be >= 1 (every entry has a term)");
    if (t < floor) fail(name, std::to_string(t) + " is below the term before it, " + std::to_string(floor));
    floor = t;
    r.terms.push_back(t);
  }
  return r;
}

}  // namespace log_tail_codec

std::string encode(const LogTailRequest& r) {
  json j = envelope("log_tail", r.src, r.dest);
  j["count"] = r.count;
  return fields::dump(j);
}

std::string encode(const LogTailReply& r) {
  json j = envelope("log_tail_reply", r.src, r.dest);
  j["base_index"] = r.base_index;
  j["base_term"] = r.base_term;
  j["last_index"] = r.last_index;
  j["terms"] = r.terms;
  return fields::dump(j);
}

}  // namespace wire
