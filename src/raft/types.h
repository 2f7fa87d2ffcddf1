// Values exchanged between the pure Raft core and its shell.
// Nothing here does I/O: the shell persists, sends and applies these.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace raft {

using Term = std::uint64_t;
using Index = std::uint64_t;  // log indexes start at 1; 0 means "before the log"
using NodeId = std::string;

// The largest term or index the core accepts or creates: 2^53 - 1, the range
// a JSON number carries exactly (PROTOCOL.md v1.1). Keeping every number this
// far below 2^64 means term + 1 and index + n can never wrap.
inline constexpr std::uint64_t kMaxNumber = (std::uint64_t{1} << 53) - 1;

enum class EntryType : std::uint8_t {
  Noop = 0,     // appended by each new leader (§8: commits an entry of its term)
  Command = 1,  // opaque payload for the replicated state machine
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::Command;
  std::string data;  // opaque to the core; the KV layer puts a JSON object here

  bool operator==(const Entry&) const = default;
};

// State that must be on stable storage before any message that depends on it
// leaves the node (Figure 2, "Persistent state on all servers").
struct HardState {
  Term current_term = 0;
  NodeId voted_for;  // empty: voted for nobody in current_term

  bool operator==(const HardState&) const = default;
};

// The last entry a snapshot covers (thesis §5.1: "last included index and
// term"). {0, 0} is the empty log's origin.
struct SnapshotMeta {
  Index index = 0;
  Term term = 0;

  bool operator==(const SnapshotMeta&) const = default;
};

// The state machine at meta.index, serialized by the shell (the dictionary
// and the client sessions, §6.3); opaque to the core, which only stores it,
// sends it in chunks and hands a received one back. Shared, never copied:
// the leader reads chunks of it while the shell keeps it on disk.
struct Snapshot {
  SnapshotMeta meta;
  std::shared_ptr<const std::string> data;
};

enum class Role : std::uint8_t { Follower, PreCandidate, Candidate, Leader };

const char* to_string(Role role);

enum class MessageType : std::uint8_t {
  RequestVote,
  RequestVoteReply,
  AppendEntries,
  AppendEntriesReply,
  InstallSnapshot,       // thesis §5.3: one chunk of the leader's snapshot
  InstallSnapshotReply,
};

const char* to_string(MessageType type);

// One Raft RPC or reply. Fields not used by a type keep their defaults.
struct Message {
  MessageType type = MessageType::AppendEntries;
  NodeId from;
  NodeId to;
  Term term = 0;

  // request_vote / request_vote_reply
  bool pre_vote = false;      // §9.6 pre-vote: a trial election that changes no term
  Index last_log_index = 0;   // request_vote: candidate's last entry (§5.4.1)
  Term last_log_term = 0;
  bool vote_granted = false;  // request_vote_reply

  // append_entries
  Index prev_log_index = 0;
  Term prev_log_term = 0;
  std::vector<Entry> entries;
  Index leader_commit = 0;
  std::uint64_t read_round = 0;  // ReadIndex (§8): echoed by the reply

  // append_entries_reply
  bool success = false;
  Index match_index = 0;     // success: prev_log_index + entries.size()
  Index reject_index = 0;    // failure: the prev_log_index that was rejected
  Index conflict_index = 0;  // failure: first index the leader should try next
  Term conflict_term = 0;    // failure: term of the follower's entry at prev_log_index, or 0

  // install_snapshot / install_snapshot_reply (thesis §5.3). A snapshot is
  // sent as chunks of at most Config::max_snapshot_chunk_bytes, each one
  // datagram; read_round (above) is carried and echoed as by append_entries.
  Index last_included_index = 0;  // both: the snapshot's meta.index
  Term last_included_term = 0;    // install_snapshot: its meta.term
  // install_snapshot: where `data` starts in the snapshot. Reply: how many
  // bytes from the start the follower holds (the next offset it wants), so
  // the leader needs no memory of what it sent.
  std::uint64_t offset = 0;
  std::uint64_t total_bytes = 0;  // install_snapshot: size of the whole snapshot
  // install_snapshot: this chunk ends the snapshot (offset + data.size() ==
  // total_bytes). Reply: the follower holds this snapshot's state, installed
  // now or already covered by its commit_index.
  bool done = false;
  std::string data;  // install_snapshot: the chunk's bytes
};

}  // namespace raft
