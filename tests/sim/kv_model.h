// The checker's own reference of the replicated dictionary (PROTOCOL.md's
// reply table, §8 sessions), written independently of src/kv: applying the
// committed log to it gives the result and the dictionary every replica's
// state machine must have. A command whose (client, seq) is at or below the
// session's last seq is a duplicate: it changes nothing and gets the last
// command's result again. No eviction: a run has far fewer clients than the
// state machine keeps sessions (10,000).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "kv/command.h"
#include "kv/state_machine.h"

namespace sim {

class KvModel {
 public:
  struct Outcome {
    bool duplicate = false;
    kv::Result result;
  };

  Outcome apply(const kv::Command& c) {
    if (c.op == wire::Op::Get) return Outcome{false, kv::Result{true, get(c.key), ""}};  // never logged
    Session& session = sessions_[c.client_id];
    if (c.seq <= session.last_seq) return Outcome{true, session.last_result};
    kv::Result r;
    auto it = data_.find(c.key);
    switch (c.op) {
      case wire::Op::Set:
        data_[c.key] = c.value;
        r = kv::Result{true, c.value, ""};
        break;
      case wire::Op::Cas:
        if (it != data_.end() && it->second == c.expected) {
          it->second = c.value;
          r = kv::Result{true, c.value, ""};
        } else {
          r = kv::Result{false, get(c.key), "cas_failed"};
        }
        break;
      case wire::Op::Delete:
        r = kv::Result{true, get(c.key), ""};
        if (it != data_.end()) data_.erase(it);
        break;
      case wire::Op::Get:
        break;
    }
    session.last_seq = c.seq;
    session.last_result = r;
    return Outcome{false, r};
  }

  // What a snapshot of a replica must restore (sim checker): the
  // dictionary and each session's last seq and result.
  const std::unordered_map<std::string, std::string>& data() const { return data_; }
  std::uint64_t last_seq(const std::string& client) const {
    auto it = sessions_.find(client);
    return it == sessions_.end() ? 0 : it->second.last_seq;
  }
  std::optional<kv::Result> last_result(const std::string& client) const {
    auto it = sessions_.find(client);
    if (it == sessions_.end()) return std::nullopt;
    return it->second.last_result;
  }
  std::size_t session_count() const { return sessions_.size(); }
  bool operator==(const KvModel&) const = default;

  std::optional<std::string> get(const std::string& key) const {
    auto it = data_.find(key);
    if (it == data_.end()) return std::nullopt;
    return it->second;
  }

 private:
  struct Session {
    std::uint64_t last_seq = 0;
    kv::Result last_result;
    bool operator==(const Session&) const = default;
  };
  std::unordered_map<std::string, std::string> data_;
  std::unordered_map<std::string, Session> sessions_;
};

}  // namespace sim
