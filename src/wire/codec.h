// JSON encoding and strict decoding of every datagram in PROTOCOL.md.
// Decoding never throws: bad input yields a DecodeError that says why. What it
// accepts holds only integers up to kMaxWireInteger, and Raft messages that
// pass the stateless consistency rules a correct sender never breaks (entries
// contiguous and in non-decreasing terms no later than the message's term, and
// the like; see codec.cc).
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "raft/types.h"
#include "wire/messages.h"

namespace wire {

struct DecodeError {
  enum class Kind : std::uint8_t {
    Malformed,  // not JSON, not an object, missing or wrongly typed field, unknown type
    TooLarge,   // key or value over the limits (answer too_large)
  };
  Kind kind = Kind::Malformed;
  std::string message;  // human-readable, names the offending field
  // What could be read before the error, so the node can answer bad_request
  // (only for client_request and status, per PROTOCOL.md).
  std::string type;
  std::string src;
  std::string dest;
  std::uint64_t seq = 0;  // client_request's seq when readable, else 0
};

// New alternatives go at the end, so code that relies on the index of an
// existing one keeps working.
using Decoded = std::variant<DecodeError, raft::Message, ClientRequest, ClientReply,
                             StatusRequest, StatusReply, SnapshotRequest, SnapshotReply,
                             LogTailRequest, LogTailReply>;

Decoded decode(std::string_view datagram);

// True for the `type` of a message between servers (request_vote, …).
bool is_peer_type(std::string_view type);

std::string encode(const raft::Message& message);
std::string encode(const ClientRequest& request);
std::string encode(const ClientReply& reply);
std::string encode(const StatusRequest& request);
std::string encode(const StatusReply& reply);
// The operator's snapshot request and its reply (snapshot_codec.cc).
std::string encode(const SnapshotRequest& request);
std::string encode(const SnapshotReply& reply);
// The dashboard's log_tail request and its reply (log_tail_codec.cc).
std::string encode(const LogTailRequest& request);
std::string encode(const LogTailReply& reply);

}  // namespace wire
