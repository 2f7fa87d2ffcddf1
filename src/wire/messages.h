// Client-facing messages of PROTOCOL.md ("Client requests" and "Status").
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <string_view>

namespace wire {

// Limits from PROTOCOL.md.
inline constexpr std::size_t kMaxDatagramBytes = 65507;
inline constexpr std::size_t kMaxKeyBytes = 256;
inline constexpr std::size_t kMaxValueBytes = 16 * 1024;
inline constexpr std::size_t kMaxClientIdBytes = 64;

// Shared contract v1.1: every integer on the wire is below 2^53, the range a
// JSON number carries exactly (a double has 53 bits of mantissa). decode()
// rejects anything larger, naming the field.
inline constexpr std::uint64_t kMaxWireInteger = (std::uint64_t{1} << 53) - 1;

enum class Op : std::uint8_t { Get, Set, Cas, Delete };
const char* to_string(Op op);

struct ClientRequest {
  std::string src;  // client id
  std::string dest;
  std::uint64_t seq = 0;
  Op op = Op::Get;
  std::string key;
  std::string value;     // set, cas
  std::string expected;  // cas
  bool local = false;    // get with "consistency":"local"

  bool operator==(const ClientRequest&) const = default;
};

struct ClientReply {
  std::string src;
  std::string dest;
  std::uint64_t seq = 0;
  bool ok = false;
  std::optional<std::string> value;  // nullopt encodes as JSON null
  std::string error;                 // not_leader, cas_failed, bad_request, too_large; empty when ok
  std::string leader;                // with not_leader, when known
  std::string message;               // human-readable detail; always set with bad_request

  bool operator==(const ClientReply&) const = default;
};

struct StatusRequest {
  std::string src;
  std::string dest;

  bool operator==(const StatusRequest&) const = default;
};

struct StatusReply {
  std::string src;
  std::string dest;
  std::string id;
  std::string role;  // leader, follower, candidate
  std::uint64_t term = 0;
  std::string leader;  // empty encodes as null
  std::uint64_t commit_index = 0;
  std::uint64_t last_applied = 0;
  std::uint64_t last_log_index = 0;
  // Extension: the vote in `term` (empty encodes as null). Lets the
  // reference tests check that a vote survives a crash.
  std::string voted_for;
  // Extension (v1.1): the node started on a (nearly) full disk and takes no writes.
  bool disk_full = false;
  // Extension: peer datagrams dropped since start, by reason (docs/PROTOCOL.md).
  std::vector<std::pair<std::string, std::uint64_t>> peer_drops;
  // Extension (v1.1): index of the latest snapshot this node holds, 0 when none.
  std::uint64_t snapshot_index = 0;
  // False only when decoded from a reply without the field (a node that has
  // no snapshots), so a tool can show "unknown" rather than 0.
  bool has_snapshot_index = true;

  bool operator==(const StatusReply&) const = default;
};

// Reference-node extension (docs/PROTOCOL.md part 2): the operator asks one
// node to take a snapshot now (`./client snapshot --server nK`).
struct SnapshotRequest {
  std::string src;
  std::string dest;

  bool operator==(const SnapshotRequest&) const = default;
};

struct SnapshotReply {
  std::string src;
  std::string dest;
  bool ok = false;
  std::uint64_t snapshot_index = 0;  // the node's latest snapshot after the request
  std::string message;               // detail when !ok

  bool operator==(const SnapshotReply&) const = default;
};

// Reference-node extension (docs/PROTOCOL.md part 2), for the dashboard: the
// terms of the last `count` entries of one node's log, so a viewer can draw
// the logs side by side as the paper's figures do. Terms only, no commands,
// so the reply always fits one datagram.
inline constexpr std::uint64_t kMaxLogTailEntries = 64;
inline constexpr std::uint64_t kDefaultLogTailEntries = 32;

struct LogTailRequest {
  std::string src;
  std::string dest;
  std::uint64_t count = kDefaultLogTailEntries;  // 1 .. kMaxLogTailEntries

  bool operator==(const LogTailRequest&) const = default;
};

struct LogTailReply {
  std::string src;
  std::string dest;
  std::uint64_t base_index = 0;  // the entry before the log's first (compacted into a snapshot), 0 when none
  std::uint64_t base_term = 0;
  std::uint64_t last_index = 0;
  // Terms of entries last_index - terms.size() + 1 .. last_index, at most
  // kMaxLogTailEntries, never below base_index + 1.
  std::vector<std::uint64_t> terms;

  std::uint64_t first_index() const { return last_index + 1 - terms.size(); }
  bool operator==(const LogTailReply&) const = default;
};

// PROTOCOL.md: 1–64 characters of [A-Za-z0-9_.:-].
bool is_valid_client_id(std::string_view id);

}  // namespace wire
