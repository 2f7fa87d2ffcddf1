#include "kv/state_machine.h"

#include <algorithm>
#include <utility>

namespace kv {

// At least one session must survive, or the session a command has just
// created would be evicted by that same command and exactly-once would never
// hold for anyone.
StateMachine::StateMachine(std::size_t max_sessions)
    : max_sessions_(std::max<std::size_t>(max_sessions, 1)) {}

// Precondition: indexes passed to apply() strictly increase, as Raft's apply
// order guarantees. sessions_by_index_ relies on it: one index, one session.
Result StateMachine::apply(std::uint64_t index, const Command& command) {
  auto found = sessions_.find(command.client_id);
  if (found != sessions_.end() && command.seq <= found->second.last_seq) {
    // A retry of the last command gets its original reply. A seq *below*
    // last_seq belongs to a request the client already gave up on (it only
    // sends seq n+1 once it stopped waiting for n), so nobody is left to read
    // the reply; we return the cached last result rather than keep a
    // per-seq history. Either way nothing is applied again, and the session
    // is not touched, so a replayed duplicate cannot change eviction order.
    return found->second.last_result;
  }

  Result result;
  switch (command.op) {
    case wire::Op::Set:
      data_[command.key] = command.value;
      result = Result{true, command.value, ""};
      break;
    case wire::Op::Cas: {
      auto it = data_.find(command.key);
      if (it != data_.end() && it->second == command.expected) {
        it->second = command.value;
        result = Result{true, command.value, ""};
      } else {
        std::optional<std::string> current;
        if (it != data_.end()) current = it->second;
        result = Result{false, std::move(current), "cas_failed"};
      }
      break;
    }
    case wire::Op::Delete: {
      std::optional<std::string> removed;
      if (auto it = data_.find(command.key); it != data_.end()) {
        removed = std::move(it->second);
        data_.erase(it);
      }
      result = Result{true, std::move(removed), ""};
      break;
    }
    case wire::Op::Get:
      // Reads never enter the log and decode() refuses them; should one get
      // here anyway it must not alter the session or the data.
      return Result{true, get(command.key), ""};
  }

  if (found == sessions_.end()) {
    // Make room before inserting so the new session is never the victim.
    // The oldest session is the one whose last command sits lowest in the
    // log; every replica sees the same log, so all evict the same client.
    while (sessions_.size() >= max_sessions_ && !sessions_by_index_.empty()) {
      auto oldest = sessions_by_index_.begin();
      sessions_.erase(oldest->second);
      sessions_by_index_.erase(oldest);
    }
    found = sessions_.emplace(command.client_id, Session{}).first;
  }
  Session& session = found->second;
  session.last_seq = command.seq;
  session.last_result = result;
  touch(command.client_id, session, index);
  return result;
}

void StateMachine::touch(const std::string& client_id, Session& session, std::uint64_t index) {
  if (session.last_index != 0) {
    auto old = sessions_by_index_.find(session.last_index);
    // Checking the owner keeps a misuse (a repeated index) from unlinking
    // another client's entry.
    if (old != sessions_by_index_.end() && old->second == client_id) {
      sessions_by_index_.erase(old);
    }
  }
  session.last_index = index;
  sessions_by_index_[index] = client_id;
}

std::optional<std::string> StateMachine::get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::optional<Result> StateMachine::cached(const std::string& client_id,
                                           std::uint64_t seq) const {
  auto it = sessions_.find(client_id);
  if (it == sessions_.end() || it->second.last_seq != seq) return std::nullopt;
  return it->second.last_result;
}

std::uint64_t StateMachine::last_seq(const std::string& client_id) const {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? 0 : it->second.last_seq;
}

}  // namespace kv
