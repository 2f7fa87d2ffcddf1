// One line per message, the same everywhere: the node's debug log, the
// simulator's trace and the transcript tests all print messages through
// describe(), so a line read in one can be searched for in the others.
#pragma once

#include <cstdint>
#include <string>

#include "raft/types.h"

namespace raft {

// The fields of a Message worth printing (no entry payloads): small enough
// to keep in a trace ring buffer and format only when printed.
struct MessageSummary {
  MessageType type = MessageType::AppendEntries;
  Term term = 0;
  bool pre_vote = false;
  bool vote_granted = false;
  bool success = false;
  Index last_log_index = 0;
  Term last_log_term = 0;
  Index prev_log_index = 0;
  Term prev_log_term = 0;
  std::uint32_t entries = 0;
  Index leader_commit = 0;
  std::uint64_t read_round = 0;
  Index match_index = 0;
  Index reject_index = 0;
  Index conflict_index = 0;
  Term conflict_term = 0;
  Index last_included_index = 0;  // install_snapshot(_reply)
  Term last_included_term = 0;
  std::uint64_t offset = 0;
  std::uint64_t total_bytes = 0;
  std::uint32_t data_bytes = 0;
  bool done = false;
};

MessageSummary summarize(const Message& m);

// "append_entries term=3 prev=120/3 entries=121..125 commit=118 round=4",
// "append_entries_reply term=3 reject prev=120 hint=100/2", …: the body,
// without sender and receiver.
std::string describe(const MessageSummary& s);
// "n1->n2 " followed by the body.
std::string describe(const Message& m);

}  // namespace raft
