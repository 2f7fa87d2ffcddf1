#include "wire/codec.h"

#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "wire/fields.h"
#include "wire/log_tail_codec.h"
#include "wire/snapshot_codec.h"

namespace wire {
namespace {

using json = nlohmann::json;
using Kind = DecodeError::Kind;

// Nothing legitimate nests deeper than ~4 levels (message > entries > entry >
// cmd). Bounding depth before parsing keeps the recursive parts of nlohmann
// (dump, copy, comparison) from exhausting the stack on a hostile datagram of
// 32k nested brackets.
constexpr int kMaxNestingDepth = 32;

// The codec's bound and the core's must agree: what decode() accepts, step()
// must not drop as out of range, and what the core creates must encode.
static_assert(kMaxWireInteger == raft::kMaxNumber);

using fields::Invalid;
using fields::above_term;
using fields::as_bool;
using fields::as_string;
using fields::as_u64;
using fields::check_log_position;
using fields::describe;
using fields::dump;
using fields::fail;
using fields::find;
using fields::get_bool;
using fields::get_bool_or;
using fields::get_nullable_string;
using fields::get_string;
using fields::get_string_or_empty;
using fields::get_u64;
using fields::get_u64_or;
using fields::quote;
using fields::require;

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
    // An out-of-range seq stays 0: the bad_request that echoes it must itself
    // carry only numbers below 2^53.
    if (const json* v = find(doc, "seq"); v != nullptr && fields::is_wire_integer(*v)) {
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
  r.disk_full = get_bool_or(doc, "disk_full", false);
  // Optional (v1.1): a node without snapshots may not send it, and a tool
  // shows "-" rather than a snapshot at index 0.
  if (const json* v = find(doc, "snapshot_index"); v != nullptr) {
    r.snapshot_index = as_u64(*v, "snapshot_index");
  } else {
    r.has_snapshot_index = false;
  }
  if (const json* drops = find(doc, "peer_drops"); drops != nullptr) {
    if (!drops->is_object()) fail("peer_drops", "expected an object, got " + describe(*drops));
    for (const auto& [reason, count] : drops->items()) {
      r.peer_drops.emplace_back(reason, as_u64(count, "peer_drops." + reason));
    }
  }
  return r;
}

// The checks below are stateless: each follows from how a correct leader,
// candidate or follower builds the message (src/raft/raft.cc), so a message
// that breaks one is corrupt or forged and is dropped whole before the core
// sees it. The core re-checks the ones that guard its own safety.

std::vector<raft::Entry> decode_entries(const json& doc, const raft::Message& m) {
  const json& list = require(doc, "entries", "entries");
  if (!list.is_array()) fail("entries", "expected an array, got " + describe(list));
  std::vector<raft::Entry> entries;
  entries.reserve(list.size());
  // A leader's log never decreases in term (it only appends entries of its
  // current term), so the entries start at or above prev_log_term, never
  // fall, and never exceed the term the leader is sending in (§5.3).
  raft::Term previous = m.prev_log_index > 0 ? m.prev_log_term : 1;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string name = "entries[" + std::to_string(i) + "]";
    const json& e = list[i];
    if (!e.is_object()) fail(name, "expected an object, got " + describe(e));
    raft::Entry entry;
    entry.term = as_u64(require(e, "term", name + ".term"), name + ".term");
    entry.index = as_u64(require(e, "index", name + ".index"), name + ".index");
    // Entries are consecutive after prev_log_index; anything else would make
    // the follower's log inconsistency check meaningless. Both operands are
    // below 2^53, so the sum cannot wrap.
    const std::uint64_t offset = static_cast<std::uint64_t>(i) + 1;
    if (entry.index != m.prev_log_index + offset) {
      fail(name + ".index", "expected prev_log_index + " + std::to_string(offset) + ", got " +
                                std::to_string(entry.index));
    }
    if (entry.term > m.term) fail(name + ".term", above_term(entry.term, m.term));
    if (entry.term < previous) {
      if (i == 0 && m.prev_log_index == 0) fail(name + ".term", "must be >= 1 (terms start at 1)");
      fail(name + ".term", std::to_string(entry.term) + " is below " +
                               (i == 0 ? "prev_log_term " : "the previous entry's term ") +
                               std::to_string(previous) + " (a leader's log never decreases in term)");
    }
    previous = entry.term;
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

// A rejection names the prev_log_index it rejected and hints at or before it;
// a success names only how far the follower matches (raft.cc,
// step_append_entries and the stale-term answer in step).
void check_append_reply(const raft::Message& m) {
  if (m.success) {
    if (m.reject_index != 0) fail("reject_index", "must be 0 when success is true");
    if (m.conflict_index != 0) fail("conflict_index", "must be 0 when success is true");
    if (m.conflict_term != 0) fail("conflict_term", "must be 0 when success is true");
    return;
  }
  if (m.match_index != 0) fail("match_index", "must be 0 when success is false");
  if (m.conflict_index > m.reject_index) {
    fail("conflict_index", std::to_string(m.conflict_index) + " is above reject_index " +
                               std::to_string(m.reject_index));
  }
  // conflict_term is the term of an entry in the follower's log, and no
  // entry there is newer than the follower's term (it persists its term
  // before the entries that need it).
  if (m.conflict_term > m.term) fail("conflict_term", above_term(m.conflict_term, m.term));
}

raft::Message decode_raft(const json& doc, raft::MessageType type, std::string src,
                          std::string dest) {
  raft::Message m;
  m.type = type;
  m.from = std::move(src);
  m.to = std::move(dest);
  m.term = get_u64(doc, "term");
  // Terms start at 1 and a candidate or leader always speaks in its own
  // (incremented) term; only replies may carry a node's initial term 0.
  const bool request = type == raft::MessageType::RequestVote || type == raft::MessageType::AppendEntries ||
                       type == raft::MessageType::InstallSnapshot;
  if (request && m.term == 0) fail("term", "must be >= 1 (terms start at 1)");
  switch (type) {
    case raft::MessageType::RequestVote:
      m.last_log_index = get_u64(doc, "last_log_index");
      m.last_log_term = get_u64(doc, "last_log_term");
      // A candidate's log holds no entry newer than the term it asks for.
      if (m.last_log_term > m.term) fail("last_log_term", above_term(m.last_log_term, m.term));
      check_log_position(m.last_log_index, m.last_log_term, "last_log_index", "last_log_term");
      m.pre_vote = get_bool_or(doc, "pre_vote", false);
      break;
    case raft::MessageType::RequestVoteReply:
      m.vote_granted = get_bool(doc, "vote_granted");
      m.pre_vote = get_bool_or(doc, "pre_vote", false);
      break;
    case raft::MessageType::AppendEntries:
      m.prev_log_index = get_u64(doc, "prev_log_index");
      m.prev_log_term = get_u64(doc, "prev_log_term");
      if (m.prev_log_term > m.term) fail("prev_log_term", above_term(m.prev_log_term, m.term));
      check_log_position(m.prev_log_index, m.prev_log_term, "prev_log_index", "prev_log_term");
      m.leader_commit = get_u64(doc, "leader_commit");
      m.read_round = get_u64_or(doc, "read_round", 0);
      m.entries = decode_entries(doc, m);
      break;
    case raft::MessageType::AppendEntriesReply:
      m.success = get_bool(doc, "success");
      m.match_index = get_u64(doc, "match_index");
      m.reject_index = get_u64_or(doc, "reject_index", 0);
      m.conflict_index = get_u64_or(doc, "conflict_index", 0);
      m.conflict_term = get_u64_or(doc, "conflict_term", 0);
      m.read_round = get_u64_or(doc, "read_round", 0);
      check_append_reply(m);
      break;
    case raft::MessageType::InstallSnapshot:
      snapshot_codec::decode_install_snapshot(doc, m);
      break;
    case raft::MessageType::InstallSnapshotReply:
      snapshot_codec::decode_install_snapshot_reply(doc, m);
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
  if (type == "snapshot") return SnapshotRequest{std::move(src), std::move(dest)};
  if (type == "snapshot_reply") return snapshot_codec::decode_snapshot_reply(doc, std::move(src), std::move(dest));
  if (type == "log_tail") return log_tail_codec::decode_request(doc, std::move(src), std::move(dest));
  if (type == "log_tail_reply") return log_tail_codec::decode_reply(doc, std::move(src), std::move(dest));
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
  if (type == "install_snapshot") {
    return decode_raft(doc, raft::MessageType::InstallSnapshot, std::move(src), std::move(dest));
  }
  if (type == "install_snapshot_reply") {
    return decode_raft(doc, raft::MessageType::InstallSnapshotReply, std::move(src), std::move(dest));
  }
  fail("type", "unknown message type '" + type + "'");
}

// ---- encoding (never throws either: see fields::dump) ----

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
    case raft::MessageType::InstallSnapshot:
      return "install_snapshot";
    case raft::MessageType::InstallSnapshotReply:
      return "install_snapshot_reply";
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

bool is_peer_type(std::string_view type) {
  return type == "request_vote" || type == "request_vote_reply" || type == "append_entries" ||
         type == "append_entries_reply" || type == "install_snapshot" || type == "install_snapshot_reply";
}

std::string encode(const raft::Message& m) {
  if (m.type == raft::MessageType::AppendEntries) return encode_append_entries(m);
  if (m.type == raft::MessageType::InstallSnapshot) return snapshot_codec::encode_install_snapshot(m);
  if (m.type == raft::MessageType::InstallSnapshotReply) return snapshot_codec::encode_install_snapshot_reply(m);
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
    case raft::MessageType::InstallSnapshot:
    case raft::MessageType::InstallSnapshotReply:
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
  j["disk_full"] = r.disk_full;
  // Always written by a node (has_snapshot_index is true unless a decoder
  // found the field missing); left out only to re-encode such a reply as it was.
  if (r.has_snapshot_index) j["snapshot_index"] = r.snapshot_index;
  if (!r.peer_drops.empty()) {
    json drops = json::object();
    for (const auto& [reason, count] : r.peer_drops) drops[reason] = count;
    j["peer_drops"] = std::move(drops);
  }
  return dump(j);
}

}  // namespace wire
