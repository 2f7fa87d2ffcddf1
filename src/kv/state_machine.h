// The replicated dictionary plus the exactly-once client sessions (§8).
// Sessions live here, inside the state machine, so every replica agrees on
// them; they are bounded by evicting the least recently used session, where
// "recently" is measured in log indexes, never local clocks (deterministic).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kv/command.h"

namespace kv {

struct Result {
  bool ok = false;
  std::optional<std::string> value;  // see PROTOCOL.md's reply table
  std::string error;                 // "cas_failed" when a cas did not match
  bool operator==(const Result&) const = default;
};

class StateMachine {
 public:
  explicit StateMachine(std::size_t max_sessions = 10000);

  // Applies the command at log index `index` exactly once per (client, seq):
  // a seq at or below the client's last applied one returns the cached
  // result of that last command without changing anything.
  Result apply(std::uint64_t index, const Command& command);

  std::optional<std::string> get(const std::string& key) const;
  // The result of this client's command `seq` if it was the last one applied.
  std::optional<Result> cached(const std::string& client_id, std::uint64_t seq) const;
  // Highest seq applied for this client, 0 if none (or evicted).
  std::uint64_t last_seq(const std::string& client_id) const;

  // The whole state, dictionary and sessions with their eviction order, as
  // bytes (a snapshot's data, thesis §5.1 and §6.3: sessions must survive a
  // snapshot or a retried seq applies twice). restore() replaces this state
  // with one serialize() produced; it throws std::invalid_argument naming
  // the offset of the first bad byte, and then changes nothing.
  std::string serialize() const;
  void restore(std::string_view bytes);

  std::size_t size() const { return data_.size(); }
  std::size_t session_count() const { return sessions_.size(); }

 private:
  struct Session {
    std::uint64_t last_seq = 0;
    Result last_result;
    std::uint64_t last_index = 0;  // log index of the last command applied
  };
  void touch(const std::string& client_id, Session& session, std::uint64_t index);

  std::size_t max_sessions_;
  std::unordered_map<std::string, std::string> data_;
  std::unordered_map<std::string, Session> sessions_;
  std::map<std::uint64_t, std::string> sessions_by_index_;  // eviction order
};

}  // namespace kv
