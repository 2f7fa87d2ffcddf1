// Per-directed-link fault settings, blocks, the partition, and counters, and
// the decision taken for each datagram (docs/proxy.md, "Faults").
//
// Endpoints are small integers so the per-datagram path never builds a
// string or allocates: 0..n-1 are the nodes in config order, n is "client"
// (all clients together) and n+1 is the wildcard "*" (rules and blocks only;
// it matches every endpoint, clients included).
//
// Header-only (pure: no I/O, no clock) so tests/unit/proxy_test.cc can check
// it without linking cmd/proxy.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

inline constexpr double kMaxDelayMs = 60000.0;  // delay_ms and jitter_ms are each at most this

// One rule: a full setting object. The most specific rule for a link applies
// as a whole; without any rule a link is perfect.
struct LinkSettings {
  double drop = 0.0;       // probability in [0,1]
  double delay_ms = 0.0;   // >= 0
  double jitter_ms = 0.0;  // >= 0; delay is uniform in [delay-jitter, delay+jitter], clamped >= 0
  double duplicate = 0.0;  // probability in [0,1]; the copy gets its own delay
  bool blocked = false;    // refuse everything (counted as "blocked")
  bool operator==(const LinkSettings&) const = default;
};

// Cumulative, per concrete link (node>node, client>node, node>client).
// Every datagram that arrives is `received`; then exactly one of
// blocked / dropped / passed. A passed one leaves as 1 or 2 copies (the
// second counted in `duplicated`); each copy is either sent at once or
// `delayed` (queued), and each copy finally ends as `forwarded`, `blocked`
// (a partition or block set while it waited), `overflow` (delay queue full)
// or `send_failed`. Hence, once the queue is empty:
//   received + duplicated == forwarded + dropped + blocked + overflow + send_failed
struct LinkCounters {
  std::uint64_t received = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t dropped = 0;     // random drops only
  std::uint64_t delayed = 0;     // copies put in the delay queue
  std::uint64_t duplicated = 0;  // extra copies made
  std::uint64_t blocked = 0;     // refused by a partition, a block, or a rule with blocked=true
  std::uint64_t overflow = 0;    // copies lost because the delay queue was full
  std::uint64_t send_failed = 0; // the kernel refused the send (or no relay socket)
  std::uint64_t forwarded_bytes = 0;  // payload bytes of the forwarded copies: the harness's efficiency figures
};

enum class Verdict { kRefused, kDropped, kPass };

struct Decision {
  Verdict verdict = Verdict::kPass;
  const char* reason = nullptr;          // for kRefused: "partition", "block" or "rule"
  int copies = 0;                        // 1 or 2 when kPass
  std::int64_t delay_us[2] = {0, 0};     // per copy; 0 means send now
};

// A uniform double in [0,1) from the top 53 bits of a 64-bit generator
// (std::mt19937_64): the same on every platform, unlike the std distributions.
template <typename Rng>
double uniform01(Rng& rng) {
  static_assert(sizeof(typename Rng::result_type) >= 8, "needs a 64-bit generator");
  return static_cast<double>(static_cast<std::uint64_t>(rng()) >> 11) * 0x1.0p-53;
}

template <typename Rng>
bool chance(double probability, Rng& rng) {
  if (probability <= 0.0) return false;
  if (probability >= 1.0) return true;
  return uniform01(rng) < probability;
}

template <typename Rng>
std::int64_t draw_delay_us(const LinkSettings& s, Rng& rng) {
  double us = s.delay_ms * 1000.0;
  if (s.jitter_ms > 0.0) {
    const double jitter_us = s.jitter_ms * 1000.0;
    us = us - jitter_us + uniform01(rng) * 2.0 * jitter_us;
  }
  if (!(us > 0.0)) return 0;
  return std::llround(us);
}

class LinkTable {
 public:
  explicit LinkTable(std::vector<std::string> node_ids)
      : ids_(std::move(node_ids)),
        n_(static_cast<int>(ids_.size())),
        rules_(static_cast<std::size_t>((n_ + 2) * (n_ + 2))),
        blocks_(static_cast<std::size_t>((n_ + 2) * (n_ + 2)), 0),
        allowed_(static_cast<std::size_t>(n_ * n_), 1),
        counters_(static_cast<std::size_t>((n_ + 1) * (n_ + 1))) {}

  int node_count() const { return n_; }
  int client() const { return n_; }
  int any() const { return n_ + 1; }
  bool is_node(int e) const { return e >= 0 && e < n_; }
  const std::vector<std::string>& node_ids() const { return ids_; }

  // A node id, "client" or "*"; nullopt when unknown.
  std::optional<int> endpoint(std::string_view name) const {
    if (name == "client") return client();
    if (name == "*") return any();
    for (int i = 0; i < n_; ++i) {
      if (ids_[static_cast<std::size_t>(i)] == name) return i;
    }
    return std::nullopt;
  }
  std::string name(int e) const {
    if (is_node(e)) return ids_[static_cast<std::size_t>(e)];
    return e == client() ? "client" : "*";
  }
  std::string link_name(int from, int to) const { return name(from) + ">" + name(to); }

  // ---- Rules (from/to may be nodes, client or *) ----
  void set_rule(int from, int to, const LinkSettings& s) { rules_[rule_index(from, to)] = s; }
  bool clear_rule(int from, int to) {
    auto& slot = rules_[rule_index(from, to)];
    const bool had = slot.has_value();
    slot.reset();
    return had;
  }
  const LinkSettings* rule(int from, int to) const {
    const auto& slot = rules_[rule_index(from, to)];
    return slot ? &*slot : nullptr;
  }
  // For a concrete link: (a,b), then (a,*), then (*,b), then (*,*), else perfect.
  const LinkSettings& effective(int from, int to) const {
    static const LinkSettings kPerfect{};
    if (const auto* r = rule(from, to)) return *r;
    if (const auto* r = rule(from, any())) return *r;
    if (const auto* r = rule(any(), to)) return *r;
    if (const auto* r = rule(any(), any())) return *r;
    return kPerfect;
  }

  // ---- Blocks (one direction each; from/to may be nodes, client or *) ----
  void block(int from, int to) { blocks_[rule_index(from, to)] = 1; }
  bool unblock(int from, int to) {
    auto& slot = blocks_[rule_index(from, to)];
    const bool had = slot != 0;
    slot = 0;
    return had;
  }
  bool has_block(int from, int to) const { return blocks_[rule_index(from, to)] != 0; }

  // ---- Partition (nodes only; a node may be in several groups) ----
  void set_partition(std::vector<std::vector<int>> groups) {
    for (const auto& group : groups) {
      for (const int e : group) {
        if (!is_node(e)) throw std::invalid_argument("partition groups hold nodes only");
      }
    }
    std::fill(allowed_.begin(), allowed_.end(), 0);
    for (const auto& group : groups) {
      for (const int a : group) {
        for (const int b : group) allowed_[static_cast<std::size_t>(a * n_ + b)] = 1;
      }
    }
    partition_ = std::move(groups);
  }
  void clear_partition() {
    partition_.reset();
    std::fill(allowed_.begin(), allowed_.end(), 1);
  }
  const std::optional<std::vector<std::vector<int>>>& partition() const { return partition_; }
  // True when no partition is set, or some group holds both nodes.
  bool partition_allows(int a, int b) const {
    if (!is_node(a) || !is_node(b)) return true;  // client links are never cut by partitions
    return allowed_[static_cast<std::size_t>(a * n_ + b)] != 0;
  }

  // Why a datagram on the concrete link from>to is refused now, or nullptr.
  const char* refusal(int from, int to) const {
    if (!partition_allows(from, to)) return "partition";
    if (has_block(from, to) || has_block(from, any()) || has_block(any(), to) || has_block(any(), any())) {
      return "block";
    }
    if (effective(from, to).blocked) return "rule";
    return nullptr;
  }

  // Clears the partition and every block (block commands and rules' blocked
  // flags); keeps drop/delay/jitter/duplicate.
  void heal() {
    clear_partition();
    std::fill(blocks_.begin(), blocks_.end(), 0);
    for (auto& slot : rules_) {
      if (slot) slot->blocked = false;
    }
  }
  // Clears rules, partition and blocks. Counters are kept (stats reset zeroes them).
  void reset() {
    clear_partition();
    std::fill(blocks_.begin(), blocks_.end(), 0);
    for (auto& slot : rules_) slot.reset();
  }

  // ---- Counters (concrete links only) ----
  LinkCounters& counters(int from, int to) { return counters_[counter_index(from, to)]; }
  const LinkCounters& counters(int from, int to) const { return counters_[counter_index(from, to)]; }
  void reset_counters() { std::fill(counters_.begin(), counters_.end(), LinkCounters{}); }

  // The fate of one datagram on the concrete link from>to; updates
  // received/blocked/dropped/duplicated. The caller counts the rest.
  template <typename Rng>
  Decision decide(int from, int to, Rng& rng) {
    LinkCounters& c = counters(from, to);
    ++c.received;
    Decision d;
    if (const char* why = refusal(from, to)) {
      ++c.blocked;
      d.verdict = Verdict::kRefused;
      d.reason = why;
      return d;
    }
    const LinkSettings& s = effective(from, to);
    if (chance(s.drop, rng)) {
      ++c.dropped;
      d.verdict = Verdict::kDropped;
      return d;
    }
    d.verdict = Verdict::kPass;
    d.copies = 1;
    if (chance(s.duplicate, rng)) {
      d.copies = 2;
      ++c.duplicated;
    }
    for (int i = 0; i < d.copies; ++i) {
      d.delay_us[i] = (s.delay_ms > 0.0 || s.jitter_ms > 0.0) ? draw_delay_us(s, rng) : 0;
    }
    return d;
  }

 private:
  std::size_t rule_index(int from, int to) const {
    check(from, n_ + 2);
    check(to, n_ + 2);
    return static_cast<std::size_t>(from * (n_ + 2) + to);
  }
  std::size_t counter_index(int from, int to) const {
    check(from, n_ + 1);
    check(to, n_ + 1);
    return static_cast<std::size_t>(from * (n_ + 1) + to);
  }
  static void check(int e, int bound) {
    if (e < 0 || e >= bound) throw std::out_of_range("link endpoint out of range");
  }

  std::vector<std::string> ids_;
  int n_;
  std::vector<std::optional<LinkSettings>> rules_;     // (n+2)^2, wildcard included
  std::vector<unsigned char> blocks_;                  // (n+2)^2
  std::optional<std::vector<std::vector<int>>> partition_;
  std::vector<unsigned char> allowed_;                 // n^2, node>node under the partition
  std::vector<LinkCounters> counters_;                 // (n+1)^2, client included
};

}  // namespace proxy
