#include "raft/describe.h"

namespace raft {

MessageSummary summarize(const Message& m) {
  MessageSummary s;
  s.type = m.type;
  s.term = m.term;
  s.pre_vote = m.pre_vote;
  s.vote_granted = m.vote_granted;
  s.success = m.success;
  s.last_log_index = m.last_log_index;
  s.last_log_term = m.last_log_term;
  s.prev_log_index = m.prev_log_index;
  s.prev_log_term = m.prev_log_term;
  s.entries = static_cast<std::uint32_t>(m.entries.size());
  s.leader_commit = m.leader_commit;
  s.read_round = m.read_round;
  s.match_index = m.match_index;
  s.reject_index = m.reject_index;
  s.conflict_index = m.conflict_index;
  s.conflict_term = m.conflict_term;
  s.last_included_index = m.last_included_index;
  s.last_included_term = m.last_included_term;
  s.offset = m.offset;
  s.total_bytes = m.total_bytes;
  s.data_bytes = static_cast<std::uint32_t>(m.data.size());
  s.done = m.done;
  return s;
}

std::string describe(const MessageSummary& s) {
  const auto num = [](std::uint64_t v) { return std::to_string(v); };
  std::string out = to_string(s.type);
  out += " term=" + num(s.term);
  switch (s.type) {
    case MessageType::RequestVote:
      if (s.pre_vote) out += " pre_vote";
      out += " last=" + num(s.last_log_index) + "/" + num(s.last_log_term);
      break;
    case MessageType::RequestVoteReply:
      if (s.pre_vote) out += " pre_vote";
      out += s.vote_granted ? " granted" : " rejected";
      break;
    case MessageType::AppendEntries:
      out += " prev=" + num(s.prev_log_index) + "/" + num(s.prev_log_term);
      if (s.entries > 0) {
        out += " entries=" + num(s.prev_log_index + 1) + ".." + num(s.prev_log_index + s.entries);
      } else {
        out += " heartbeat";
      }
      out += " commit=" + num(s.leader_commit);
      if (s.read_round != 0) out += " round=" + num(s.read_round);
      break;
    case MessageType::AppendEntriesReply:
      if (s.success) {
        out += " ok match=" + num(s.match_index);
      } else {
        out += " reject prev=" + num(s.reject_index) + " hint=" + num(s.conflict_index) + "/" + num(s.conflict_term);
      }
      if (s.read_round != 0) out += " round=" + num(s.read_round);
      break;
    case MessageType::InstallSnapshot:
      out += " snapshot=" + num(s.last_included_index) + "/" + num(s.last_included_term) + " bytes=" + num(s.offset) +
             ".." + num(s.offset + s.data_bytes) + "/" + num(s.total_bytes);
      if (s.done) out += " done";
      if (s.read_round != 0) out += " round=" + num(s.read_round);
      break;
    case MessageType::InstallSnapshotReply:
      out += " snapshot=" + num(s.last_included_index);
      out += s.done ? " installed" : " have=" + num(s.offset);
      if (s.read_round != 0) out += " round=" + num(s.read_round);
      break;
  }
  return out;
}

std::string describe(const Message& m) { return m.from + "->" + m.to + " " + describe(summarize(m)); }

}  // namespace raft
