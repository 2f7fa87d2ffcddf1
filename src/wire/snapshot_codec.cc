// install_snapshot carries one chunk of the leader's snapshot (thesis §5.3)
// as standard base64 (RFC 4648 §4, '=' padding), libsodium's codec: a
// 32 KiB chunk is 43,692 characters, one datagram with room to spare. The
// rules checked here are stateless, as for append_entries: each follows from
// how a correct leader cuts its snapshot (src/raft/snapshot.cc), so a chunk
// that breaks one is corrupt or forged. The core checks them again, and also
// what it alone can (the size it is willing to buffer, which chunk is next).
#include "wire/snapshot_codec.h"

#include <sodium.h>

#include <cstdint>
#include <string>
#include <utility>

#include "wire/codec.h"
#include "wire/fields.h"

namespace wire {
namespace {

using json = nlohmann::json;
using fields::above_term;
using fields::fail;
using fields::get_bool;
using fields::get_u64;
using fields::get_u64_or;

constexpr int kBase64 = sodium_base64_VARIANT_ORIGINAL;

// Strict: only the standard alphabet, padded, nothing ignored, and (libsodium
// checks it) no stray bits in the last character, so each byte string has one
// encoding and a decoded chunk encodes back to the same text.
std::string decode_base64(const json& doc, const char* name) {
  const json& v = fields::require(doc, name, name);
  if (!v.is_string()) fail(name, "expected a base64 string, got " + fields::describe(v));
  const std::string& text = v.get_ref<const std::string&>();
  std::string bytes(text.size() / 4 * 3 + 3, '\0');
  std::size_t length = 0;
  const char* end = nullptr;
  const int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size(), text.data(),
                                   text.size(), nullptr, &length, &end, kBase64);
  // libsodium sets end, success or not, to where it stopped reading.
  const auto stopped_at = static_cast<std::size_t>(end - text.data());
  if (rc != 0 || stopped_at != text.size()) {
    fail(name, "not valid base64 (standard alphabet, '=' padding): stops at character " +
                   std::to_string(stopped_at) + " of " + std::to_string(text.size()));
  }
  bytes.resize(length);
  return bytes;
}

void append_field(std::string& out, const char* key, std::uint64_t value) {
  out += ",\"";
  out += key;
  out += "\":";
  out += std::to_string(value);
}

json envelope(const char* type, const std::string& src, const std::string& dest) {
  return json{{"type", type}, {"src", src}, {"dest", dest}};
}

}  // namespace

namespace snapshot_codec {

void decode_install_snapshot(const json& doc, raft::Message& m) {
  m.last_included_index = get_u64(doc, "last_included_index");
  m.last_included_term = get_u64(doc, "last_included_term");
  // The snapshot's last entry is in the leader's log, which holds no entry
  // newer than the leader's term.
  if (m.last_included_term > m.term) fail("last_included_term", above_term(m.last_included_term, m.term));
  fields::check_log_position(m.last_included_index, m.last_included_term, "last_included_index",
                             "last_included_term");
  m.offset = get_u64(doc, "offset");
  m.total_bytes = get_u64(doc, "total_bytes");
  if (m.total_bytes == 0) fail("total_bytes", "must be >= 1 (a snapshot is never empty)");
  m.done = get_bool(doc, "done");
  m.read_round = get_u64_or(doc, "read_round", 0);
  m.data = decode_base64(doc, "data");
  // Both operands are below 2^53 (data is under one datagram): no wrap.
  const std::uint64_t end = m.offset + m.data.size();
  if (end > m.total_bytes) {
    fail("data", "the chunk ends at offset " + std::to_string(m.offset) + " + " + std::to_string(m.data.size()) +
                     " bytes = " + std::to_string(end) + ", past total_bytes " + std::to_string(m.total_bytes));
  }
  // The last chunk, and only it, says done: the follower installs on it.
  if (m.done != (end == m.total_bytes)) {
    fail("done", std::string(m.done ? "true" : "false") + ", but the chunk ends at " + std::to_string(end) +
                     " of total_bytes " + std::to_string(m.total_bytes));
  }
}

// The reply's numbers are the follower's word about itself (how many bytes
// it holds, whether it holds the state); only the leader, which knows what
// it sent, can judge them (raft.cc, well_formed). Bounds only, here.
void decode_install_snapshot_reply(const json& doc, raft::Message& m) {
  m.last_included_index = get_u64(doc, "last_included_index");
  m.offset = get_u64(doc, "offset");
  m.done = get_bool(doc, "done");
  m.read_round = get_u64_or(doc, "read_round", 0);
}

// Built by hand, as append_entries is, so the chunk's base64 is written
// once, straight into the datagram, rather than copied and escaped by a json
// value; the data field comes last.
std::string encode_install_snapshot(const raft::Message& m) {
  // Counts the terminating NUL that sodium_bin2base64 writes.
  const std::size_t base64_bytes = sodium_base64_ENCODED_LEN(m.data.size(), kBase64);
  std::string out;
  out.reserve(256 + m.from.size() + m.to.size() + base64_bytes);
  out += "{\"type\":\"install_snapshot\",\"src\":";
  out += fields::quote(m.from);
  out += ",\"dest\":";
  out += fields::quote(m.to);
  append_field(out, "term", m.term);
  append_field(out, "last_included_index", m.last_included_index);
  append_field(out, "last_included_term", m.last_included_term);
  append_field(out, "offset", m.offset);
  append_field(out, "total_bytes", m.total_bytes);
  out += m.done ? ",\"done\":true" : ",\"done\":false";
  append_field(out, "read_round", m.read_round);
  out += ",\"data\":\"";
  const std::size_t at = out.size();
  out.resize(at + base64_bytes);
  sodium_bin2base64(out.data() + at, base64_bytes, reinterpret_cast<const unsigned char*>(m.data.data()),
                    m.data.size(), kBase64);
  out.resize(at + base64_bytes - 1);  // drop the NUL
  out += "\"}";
  return out;
}

std::string encode_install_snapshot_reply(const raft::Message& m) {
  json j = envelope("install_snapshot_reply", m.from, m.to);
  j["term"] = m.term;
  j["last_included_index"] = m.last_included_index;
  j["offset"] = m.offset;
  j["done"] = m.done;
  j["read_round"] = m.read_round;
  return fields::dump(j);
}

SnapshotReply decode_snapshot_reply(const json& doc, std::string src, std::string dest) {
  SnapshotReply r;
  r.src = std::move(src);
  r.dest = std::move(dest);
  r.ok = get_bool(doc, "ok");
  r.snapshot_index = get_u64(doc, "snapshot_index");
  r.message = fields::get_string_or_empty(doc, "message");
  return r;
}

}  // namespace snapshot_codec

std::string encode(const SnapshotRequest& r) { return fields::dump(envelope("snapshot", r.src, r.dest)); }

std::string encode(const SnapshotReply& r) {
  json j = envelope("snapshot_reply", r.src, r.dest);
  j["ok"] = r.ok;
  j["snapshot_index"] = r.snapshot_index;
  if (!r.message.empty()) j["message"] = r.message;
  return fields::dump(j);
}

}  // namespace wire
