#include "raft/types.h"

namespace raft {

const char* to_string(Role role) {
  switch (role) {
    case Role::Follower: return "follower";
    case Role::PreCandidate: return "pre-candidate";
    case Role::Candidate: return "candidate";
    case Role::Leader: return "leader";
  }
  return "unknown";
}

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::RequestVote: return "request_vote";
    case MessageType::RequestVoteReply: return "request_vote_reply";
    case MessageType::AppendEntries: return "append_entries";
    case MessageType::AppendEntriesReply: return "append_entries_reply";
    case MessageType::InstallSnapshot: return "install_snapshot";
    case MessageType::InstallSnapshotReply: return "install_snapshot_reply";
  }
  return "unknown";
}

}  // namespace raft
