#include "wire/codec.h"

#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace wire {
namespace {

using json = nlohmann::json;
using Kind = DecodeError::Kind;

// Nothing legitimate nests deeper than ~4 levels (message > entries > entry >
// cmd). Bounding depth before parsing keeps the recursive parts of nlohmann
// (dump, copy, comparison) from exhausting the stack on a hostile datagram of
// 32k nested brackets.
constexpr int kMaxNestingDepth = 32;

// Thrown inside this file only, and always caught by decode(): it lets the
// field readers below stop at the first problem without threading error codes
// through every call.
struct Invalid {
  Kind kind;
  std::string message;
};

[[noreturn]] void fail(const std::string& field, const std::string& what,
                       Kind kind = Kind::Malformed) {
  throw Invalid{kind, "field '" + field + "': " + what};
}

// Says what a value is, precisely enough to tell -1, 1.5 and 1e30 apart from
// a valid unsigned integer.
std::string describe(const json& v) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return "a negative integer";
  if (v.is_number_float()) return "a non-integer or out-of-range number";
  if (v.is_number_unsigned()) return "an integer";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return v.type_name();
}

const json* find(const json& object, const char* key) {
  // Never object[key] on a const json: that is undefined for missing keys.
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const json& require(const json& object, const char* key, const std::string& name) {
  const json* v = find(object, key);
  if (v == nullptr) fail(name, "missing");
  return *v;
}

std::string as_string(const json& v, const std::string& name) {
  if (!v.is_string()) fail(name, "expected a string, got " + describe(v));
  return v.get<std::string>();
}

std::uint64_t as_u64(const json& v, const std::string& name) {
  // nlohmann parses non-negative integers that fit in 64 bits as
  // number_unsigned; negatives, fractions and larger integers land elsewhere.
  if (!v.is_number_unsigned()) {
    fail(name, "expected a non-negative integer that fits in 64 bits, got " + describe(v));
  }
  return v.get<std::uint64_t>();
}

bool as_bool(const json& v, const std::string& name) {
  if (!v.is_boolean()) fail(name, "expected a boolean, got " + describe(v));
  return v.get<bool>();
}

std::string get_string(const json& o, const char* key) { return as_string(require(o, key, key), key); }
std::uint64_t get_u64(const json& o, const char* key) { return as_u64(require(o, key, key), key); }
bool get_bool(const json& o, const char* key) { return as_bool(require(o, key, key), key); }

std::uint64_t get_u64_or(const json& o, const char* key, std::uint64_t fallback) {
  const json* v = find(o, key);
  return v == nullptr ? fallback : as_u64(*v, key);
}
bool get_bool_or(const json& o, const char* key, bool fallback) {
  const json* v = find(o, key);
  return v == nullptr ? fallback : as_bool(*v, key);
}
std::string get_string_or_empty(const json& o, const char* key) {
  const json* v = find(o, key);
  return v == nullptr ? std::string() : as_string(*v, key);
}
// A string field where JSON null (or absence) means "none".
std::string get_nullable_string(const json& o, const char* key) {
  const json* v = find(o, key);
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_string()) fail(key, "expected a string or null, got " + describe(*v));
  return v->get<std::string>();
}

bool nesting_too_deep(std::string_view text) {
  // A lexical scan: brackets inside strings do not count. Invalid JSON may
  // fool it, but then the parser rejects the text anyway.
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNestingDepth) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// nlohmann prefixes messages with "[json.exception.parse_error.101] ", which
// says nothing to the reader of a bad_request.
std::string strip_exception_id(const std::string& what) {
  if (!what.starts_with("[json.exception.")) return what;
  const auto end = what.find("] ");
  return end == std::string::npos ? what : what.substr(end + 2);
}

// Salvages the envelope (and a client_request's seq) before validation, so an
// error can still be answered with bad_request when the sender is known.
void salvage(const json& doc, DecodeError& err) {
  if (const json* v = find(doc, "type"); v != nullptr && v->is_string()) err.type = v->get<std::string>();
  if (const json* v = find(doc, "src"); v != nullptr && v->is_string()) err.src = v->get<std::string>();
  if (const json* v = find(doc, "dest"); v != nullptr && v->is_string()) err.dest = v->get<std::string>();
  if (err.type == "client_request") {
    if (const json* v = find(doc, "seq"); v != nullptr && v->is_number_unsigned()) {
      err.seq = v->get<std::uint64_t>();
    }
  }
}

ClientRequest decode_client_request(const json& doc, std::string src, std::string dest) {
  ClientRequest r;
  if (!is_valid_client_id(src)) {
    fail("src", "not a valid client id (1-64 characters of [A-Za-z0-9_.:-])");
  }
  r.src = std::move(src);
  r.dest = std::move(dest);
  r.seq = get_u64(doc, "seq");
  if (r.seq == 0) fail("seq", "must be >= 1");

  const std::string op = get_string(doc, "op");
  if (op == "get") {
    r.op = Op::Get;
  } else if (op == "set") {
    r.op = Op::Set;
  } else if (op == "cas") {
    r.op = Op::Cas;
  } else if (op == "delete") {
    r.op = Op::Delete;
  } else {
    fail("op", "expected one of get, set, cas, delete");
  }

  r.key = get_string(doc, "key");
  if (r.key.empty()) fail("key", "must not be empty");
  if (r.key.size() > kMaxKeyBytes) {
    fail("key", std::to_string(r.key.size()) + " bytes, at most " + std::to_string(kMaxKeyBytes) +
                    " allowed",
         Kind::TooLarge);
  }

  // value and expected matter only for the ops that use them; elsewhere they
  // count as unknown fields and are ignored.
  if (r.op == Op::Set || r.op == Op::Cas) {
    r.value = get_string(doc, "value");
    if (r.value.size() > kMaxValueBytes) {
      fail("value", std::to_string(r.value.size()) + " bytes, at most " +
                        std::to_string(kMaxValueBytes) + " allowed",
           Kind::TooLarge);
    }
  }
  if (r.op == Op::Cas) {
    r.expected = get_string(doc, "expected");
    // No stored value can exceed the value limit, so a longer `expected` can
    // never match; rejecting it also keeps log entries bounded.
    if (r.expected.size() > kMaxValueBytes) {
      fail("expected", std::to_string(r.expected.size()) + " bytes, at most " +
                           std::to_string(kMaxValueBytes) + " allowed",
           Kind::TooLarge);
    }
  }

  if (const json* c = find(doc, "consistency"); c != nullptr) {
    const std::string consistency = as_string(*c, "consistency");
    if (consistency != "linearizable" && consistency != "local") {
      fail("consistency", "expected linearizable or local");
    }
    // Only reads have a consistency level; writes always go through the log.
    r.local = (consistency == "local" && r.op == Op::Get);
  }
  return r;
}

ClientReply decode_client_reply(const json& doc, std::string src, std::string dest) {
  ClientReply r;
  r.src = std::move(src);
  r.dest = std::move(dest);
  // seq 0 is allowed: a bad_request answer to an unreadable seq carries 0.
  r.seq = get_u64(doc, "seq");
  r.ok = get_bool(doc, "ok");
  if (const json* v = find(doc, "value"); v != nullptr && !v->is_null()) {
    r.value = as_string(*v, "value");
  }
  if (!r.ok && find(doc, "error") == nullptr) fail("error", "missing (required when ok is false)");
  r.error = get_string_or_empty(doc, "error");
  r.leader = get_nullable_string(doc, "leader");
  r.message = get_string_or_empty(doc, "message");
  return r;
}

StatusReply decode_status_reply(const json& doc, std::string src, std::string dest) {
  StatusReply r;
  r.src = std::move(src);
  r.dest = std::move(dest);
  r.id = get_string(doc, "id");
  r.role = get_string(doc, "role");
  if (r.role != "leader" && r.role != "follower" && r.role != "candidate") {
    fail("role", "expected leader, follower or candidate");
  }
  r.term = get_u64(doc, "term");
  require(doc, "leader", "leader");  // present, even when null (unknown)
  r.leader = get_nullable_string(doc, "leader");
  r.commit_index = get_u64(doc, "commit_index");
  r.last_applied = get_u64(doc, "last_applied");
  r.last_log_index = get_u64(doc, "last_log_index");
  if (find(doc, "voted_for") != nullptr) r.voted_for = get_nullable_string(doc, "voted_for");
  return r;
}

std::vector<raft::Entry> decode_entries(const json& doc, raft::Index prev_log_index) {
  const json& list = require(doc, "entries", "entries");
  if (!list.is_array()) fail("entries", "expected an array, got " + describe(list));
  std::vector<raft::Entry> entries;
  entries.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string name = "entries[" + std::to_string(i) + "]";
    const json& e = list[i];
    if (!e.is_object()) fail(name, "expected an object, got " + describe(e));
    raft::Entry entry;
    entry.term = as_u64(require(e, "term", name + ".term"), name + ".term");
    entry.index = as_u64(require(e, "index", name + ".index"), name + ".index");
    // Entries are consecutive after prev_log_index; anything else would make
    // the follower's log inconsistency check meaningless.
    const std::uint64_t offset = static_cast<std::uint64_t>(i) + 1;
    if (prev_log_index > std::numeric_limits<std::uint64_t>::max() - offset ||
        entry.index != prev_log_index + offset) {
      fail(name + ".index", "expected prev_log_index + " + std::to_string(offset) + ", got " +
                                std::to_string(entry.index));
    }
    std::string type = "command";
    if (const json* t = find(e, "type"); t != nullptr) type = as_string(*t, name + ".type");
    if (type == "noop") {
      entry.type = raft::EntryType::Noop;
    } else if (type == "command") {
      entry.type = raft::EntryType::Command;
      const json& cmd = require(e, "cmd", name + ".cmd");
      if (!cmd.is_object()) fail(name + ".cmd", "expected an object, got " + describe(cmd));
      // Compact with sorted keys: the same text the KV layer produced.
      entry.data = cmd.dump();
    } else {
      fail(name + ".type", "expected noop or command");
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

raft::Message decode_raft(const json& doc, raft::MessageType type, std::string src,
                          std::string dest) {
  raft::Message m;
  m.type = type;
  m.from = std::move(src);
  m.to = std::move(dest);
  m.term = get_u64(doc, "term");
  switch (type) {
    case raft::MessageType::RequestVote:
      m.last_log_index = get_u64(doc, "last_log_index");
      m.last_log_term = get_u64(doc, "last_log_term");
      m.pre_vote = get_bool_or(doc, "pre_vote", false);
      break;
    case raft::MessageType::RequestVoteReply:
      m.vote_granted = get_bool(doc, "vote_granted");
      m.pre_vote = get_bool_or(doc, "pre_vote", false);
      break;
    case raft::MessageType::AppendEntries:
      m.prev_log_index = get_u64(doc, "prev_log_index");
      m.prev_log_term = get_u64(doc, "prev_log_term");
      m.leader_commit = get_u64(doc, "leader_commit");
      m.read_round = get_u64_or(doc, "read_round", 0);
      m.entries = decode_entries(doc, m.prev_log_index);
      break;
    case raft::MessageType::AppendEntriesReply:
      m.success = get_bool(doc, "success");
      m.match_index = get_u64(doc, "match_index");
      m.reject_index = get_u64_or(doc, "reject_index", 0);
      m.conflict_index = get_u64_or(doc, "conflict_index", 0);
      m.conflict_term = get_u64_or(doc, "conflict_term", 0);
      m.read_round = get_u64_or(doc, "read_round", 0);
      break;
  }
  return m;
}

Decoded decode_document(const json& doc) {
  const std::string type = get_string(doc, "type");
  std::string src = get_string(doc, "src");
  std::string dest = get_string(doc, "dest");
  if (type == "client_request") return decode_client_request(doc, std::move(src), std::move(dest));
  if (type == "client_reply") return decode_client_reply(doc, std::move(src), std::move(dest));
  if (type == "status") return StatusRequest{std::move(src), std::move(dest)};
  if (type == "status_reply") return decode_status_reply(doc, std::move(src), std::move(dest));
  if (type == "request_vote") {
    return decode_raft(doc, raft::MessageType::RequestVote, std::move(src), std::move(dest));
  }
  if (type == "request_vote_reply") {
    return decode_raft(doc, raft::MessageType::RequestVoteReply, std::move(src), std::move(dest));
  }
  if (type == "append_entries") {
    return decode_raft(doc, raft::MessageType::AppendEntries, std::move(src), std::move(dest));
  }
  if (type == "append_entries_reply") {
    return decode_raft(doc, raft::MessageType::AppendEntriesReply, std::move(src),
                       std::move(dest));
  }
  fail("type", "unknown message type '" + type + "'");
}

// ---- encoding ----

// Encoding must not throw either: a string that is not valid UTF-8 (which
// decode can never produce, but a caller might) is written with U+FFFD
// instead of making dump() throw.
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string quote(const std::string& text) { return dump(json(text)); }

const char* type_name(raft::MessageType type) {
  switch (type) {
    case raft::MessageType::RequestVote:
      return "request_vote";
    case raft::MessageType::RequestVoteReply:
      return "request_vote_reply";
    case raft::MessageType::AppendEntries:
      return "append_entries";
    case raft::MessageType::AppendEntriesReply:
      return "append_entries_reply";
  }
  return "unknown";
}

// Built by hand so each command's JSON text is spliced in verbatim: parsing it
// back into a json value only to dump it again would cost time on the hot
// replication path.
std::string encode_append_entries(const raft::Message& m) {
  std::string out;
  std::size_t data_bytes = 0;
  for (const raft::Entry& e : m.entries) data_bytes += e.data.size() + 64;
  out.reserve(256 + m.from.size() + m.to.size() + data_bytes);

  const auto field = [&out](const char* key, std::uint64_t value) {
    out += ",\"";
    out += key;
    out += "\":";
    out += std::to_string(value);
  };
  out += "{\"type\":\"append_entries\",\"src\":";
  out += quote(m.from);
  out += ",\"dest\":";
  out += quote(m.to);
  field("term", m.term);
  field("prev_log_index", m.prev_log_index);
  field("prev_log_term", m.prev_log_term);
  field("leader_commit", m.leader_commit);
  field("read_round", m.read_round);
  out += ",\"entries\":[";
  bool first = true;
  for (const raft::Entry& e : m.entries) {
    if (!first) out += ',';
    first = false;
    out += "{\"term\":";
    out += std::to_string(e.term);
    out += ",\"index\":";
    out += std::to_string(e.index);
    if (e.type == raft::EntryType::Noop) {
      out += ",\"type\":\"noop\"}";
    } else {
      out += ",\"cmd\":";
      // A command's data is always a JSON object's text. Empty data would
      // otherwise produce invalid JSON; null makes the receiver report it.
      out += e.data.empty() ? std::string("null") : e.data;
      out += '}';
    }
  }
  out += "]}";
  return out;
}

json envelope(const char* type, const std::string& src, const std::string& dest) {
  return json{{"type", type}, {"src", src}, {"dest", dest}};
}

}  // namespace

Decoded decode(std::string_view datagram) {
  DecodeError err;
  try {
    if (datagram.size() > kMaxDatagramBytes) {
      err.kind = Kind::TooLarge;
      err.message = "datagram of " + std::to_string(datagram.size()) + " bytes exceeds " +
                    std::to_string(kMaxDatagramBytes);
      return err;
    }
    if (nesting_too_deep(datagram)) {
      err.message = "JSON nested deeper than " + std::to_string(kMaxNestingDepth) + " levels";
      return err;
    }
    // Strict parsing (the default) also rejects trailing data after the
    // object. The parser's exception is caught for its position and reason,
    // which make a bad_request or a log line useful.
    json doc;
    try {
      doc = json::parse(datagram.begin(), datagram.end());
    } catch (const json::parse_error& e) {
      err.message = "not valid JSON: " + strip_exception_id(e.what());
      return err;
    }
    if (!doc.is_object()) {
      err.message = "expected a JSON object, got " + describe(doc);
      return err;
    }
    salvage(doc, err);
    return decode_document(doc);
  } catch (const Invalid& invalid) {
    err.kind = invalid.kind;
    err.message = invalid.message;
    return err;
  } catch (const std::exception& e) {
    // Only allocation failure is expected here; never let it escape.
    err.kind = Kind::Malformed;
    err.message = std::string("cannot decode: ") + e.what();
    return err;
  }
}

std::string encode(const raft::Message& m) {
  if (m.type == raft::MessageType::AppendEntries) return encode_append_entries(m);
  json j = envelope(type_name(m.type), m.from, m.to);
  j["term"] = m.term;
  switch (m.type) {
    case raft::MessageType::RequestVote:
      j["last_log_index"] = m.last_log_index;
      j["last_log_term"] = m.last_log_term;
      j["pre_vote"] = m.pre_vote;
      break;
    case raft::MessageType::RequestVoteReply:
      j["vote_granted"] = m.vote_granted;
      j["pre_vote"] = m.pre_vote;
      break;
    case raft::MessageType::AppendEntriesReply:
      j["success"] = m.success;
      j["match_index"] = m.match_index;
      j["reject_index"] = m.reject_index;
      j["conflict_index"] = m.conflict_index;
      j["conflict_term"] = m.conflict_term;
      j["read_round"] = m.read_round;
      break;
    case raft::MessageType::AppendEntries:
      break;  // handled above
  }
  return dump(j);
}

std::string encode(const ClientRequest& r) {
  json j = envelope("client_request", r.src, r.dest);
  j["seq"] = r.seq;
  j["op"] = to_string(r.op);
  j["key"] = r.key;
  if (r.op == Op::Set || r.op == Op::Cas) j["value"] = r.value;
  if (r.op == Op::Cas) j["expected"] = r.expected;
  if (r.op == Op::Get && r.local) j["consistency"] = "local";
  return dump(j);
}

std::string encode(const ClientReply& r) {
  json j = envelope("client_reply", r.src, r.dest);
  j["seq"] = r.seq;
  j["ok"] = r.ok;
  j["value"] = r.value ? json(*r.value) : json(nullptr);
  // A failed reply always names its error, even if the caller left it empty,
  // so the receiver can tell the reply apart from a malformed one.
  if (!r.ok || !r.error.empty()) j["error"] = r.error;
  if (!r.leader.empty()) j["leader"] = r.leader;
  if (!r.message.empty()) j["message"] = r.message;
  return dump(j);
}

std::string encode(const StatusRequest& r) { return dump(envelope("status", r.src, r.dest)); }

std::string encode(const StatusReply& r) {
  json j = envelope("status_reply", r.src, r.dest);
  j["id"] = r.id;
  j["role"] = r.role;
  j["term"] = r.term;
  j["leader"] = r.leader.empty() ? json(nullptr) : json(r.leader);
  j["commit_index"] = r.commit_index;
  j["last_applied"] = r.last_applied;
  j["last_log_index"] = r.last_log_index;
  j["voted_for"] = r.voted_for.empty() ? json(nullptr) : json(r.voted_for);
  return dump(j);
}

}  // namespace wire
