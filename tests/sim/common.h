// Small shared pieces of the deterministic simulator: the seeded random
// generator, hashing, the simulated clock and the violation type.
//
// Determinism rules (every run must replay exactly from its seed):
//   * every random decision comes from an Rng seeded from the run seed;
//   * no wall-clock time, std::random_device or addresses influence decisions;
//   * no iteration over unordered containers where the order matters.
// std::uniform_int_distribution is implementation-defined, so Rng does its own
// range reduction: a seed replays the same run with any standard library.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raft/types.h"

namespace sim {

// SplitMix64's finalizer: a strong 64-bit mixing function.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// An independent seed for one purpose ("stream") of one run.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  return mix64(mix64(seed) ^ mix64(stream * 0xd1b54a32d192ed03ULL + 1));
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  std::uint64_t next() { return engine_(); }
  // Uniform in [0, n); 0 when n == 0.
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(engine_()) * n) >> 64);
  }
  // Uniform in [lo, hi], inclusive.
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  double unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
  bool chance(double p) { return unit() < p; }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 engine_;
};

// Eight bytes per round, one multiply each, then one full mix: entries carry
// the node's JSON commands (~80 bytes) and are hashed a few times per step,
// so a byte-at-a-time hash would cost a quarter of the simulator's time. Not
// for adversaries, only to tell logs apart.
inline std::uint64_t hash_bytes(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ s.size();
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    h = (std::rotl(h, 23) ^ word) * 0x9e3779b97f4a7c15ULL;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix64(h ^ tail);
}

// Hash of the empty log; chain_hash(prefix hash of 1..i-1, entry i) gives the
// prefix hash of 1..i. Two logs with the same prefix hash at i hold the same
// entries 1..i (up to a 2^-64 collision), so comparing one number compares a
// whole prefix: that is what makes the log-matching checks incremental.
constexpr std::uint64_t kEmptyLogHash = 0x6a09e667f3bcc908ULL;

inline std::uint64_t chain_hash(std::uint64_t prev, const raft::Entry& e) {
  std::uint64_t h = mix64(prev ^ (e.index * 0x9e3779b97f4a7c15ULL));
  h = mix64(h ^ e.term ^ (static_cast<std::uint64_t>(e.type) << 62));
  return mix64(h ^ hash_bytes(e.data));
}

// Simulated time. `tick` is the unit every node's tick() advances by; `step`
// counts every input handed to a core (tick, message, proposal, read, Ready).
struct Clock {
  std::int64_t tick = 0;
  std::uint64_t step = 0;
};

// Thrown by the checker (and the cluster) at the first broken invariant; the
// run stops and reports it with the trace.
struct Violation {
  std::string invariant;
  std::string details;
};

inline std::string node_name(int index) { return "n" + std::to_string(index + 1); }

// "n3" -> 2; -1 for anything that is not the name of a node of the cluster.
inline int node_index(const raft::NodeId& id, int cluster_size) {
  if (id.size() < 2 || id[0] != 'n') return -1;
  int value = 0;
  for (std::size_t i = 1; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return -1;
    value = value * 10 + (id[i] - '0');
    if (value > 1000) return -1;
  }
  if (value < 1 || value > cluster_size) return -1;
  return value - 1;
}

}  // namespace sim
