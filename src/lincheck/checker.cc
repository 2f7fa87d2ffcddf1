#include "lincheck/checker.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "lincheck/model.h"

namespace lincheck {

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::Ok: return "ok";
    case Verdict::Violation: return "violation";
    case Verdict::Unknown: return "unknown";
  }
  return "?";
}

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t state_hash(State s) { return splitmix64(static_cast<std::uint64_t>(s) ^ 0x5bd1e995ULL); }

// The set of configurations (linearized ops, state) already explored, as
// in Porcupine, stored compactly. Ops are ranked: ops with a bounded return
// first, by invocation, then open-ended ones. Every bounded op ranked below
// the first one not linearized (F) is linearized, and no bounded op ranked
// at or above F is linearized unless it was invoked before F returned (it
// was a candidate while F was pending). So a configuration is: the words of
// the bounded bitset from F's word up to the last non-zero one, the words
// of the open-ended bitset, and the state. That is a few words per entry
// instead of n/64, whatever the length of the history.
//
// Open addressing on a 64-bit hash of the configuration: the XOR of one
// random word per linearized op (Zobrist), which the search maintains
// incrementally, and of a hash of the state. Full compares only on a hash
// match.
class Cache {
 public:
  struct Key {
    std::uint32_t lo;                // first bounded word stored
    std::uint32_t count;             // bounded words stored
    const std::uint64_t* bounded;    // count words, from word lo
    const std::uint64_t* open;       // all open-ended words
    State state;
  };

  explicit Cache(std::size_t open_words) : open_words_(open_words), slots_(1 << 10) {
    arena_.push_back(0);  // offset 0 means an empty slot
  }

  bool contains(std::uint64_t hash, const Key& key) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.offset == 0) return false;
      if (slot.hash == hash && equal(slot.offset, key)) return true;
    }
  }

  // Adds a configuration known not to be there yet.
  void insert(std::uint64_t hash, const Key& key) {
    const std::uint64_t offset = arena_.size();
    arena_.push_back(static_cast<std::uint64_t>(key.lo) << 32 | key.count);
    arena_.push_back(static_cast<std::uint32_t>(key.state));
    arena_.insert(arena_.end(), key.bounded, key.bounded + key.count);
    arena_.insert(arena_.end(), key.open, key.open + open_words_);
    ++count_;
    place(hash, offset);
    if (count_ * 2 > slots_.size()) grow();
  }

  std::size_t size() const { return count_; }
  std::size_t bytes() const {
    return arena_.capacity() * sizeof(std::uint64_t) + slots_.size() * sizeof(Slot);
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint64_t offset = 0;
  };

  bool equal(std::uint64_t offset, const Key& key) const {
    const std::uint64_t* r = &arena_[offset];
    if (r[0] != (static_cast<std::uint64_t>(key.lo) << 32 | key.count)) return false;
    if (r[1] != static_cast<std::uint32_t>(key.state)) return false;
    return std::equal(key.bounded, key.bounded + key.count, r + 2) &&
           std::equal(key.open, key.open + open_words_, r + 2 + key.count);
  }

  void place(std::uint64_t hash, std::uint64_t offset) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = hash & mask;
    while (slots_[i].offset != 0) i = (i + 1) & mask;
    slots_[i] = Slot{hash, offset};
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& slot : old) {
      if (slot.offset != 0) place(slot.hash, slot.offset);
    }
  }

  std::size_t open_words_;
  std::vector<Slot> slots_;
  std::vector<std::uint64_t> arena_;
  std::size_t count_ = 0;
};

constexpr std::int64_t kInfinity = std::numeric_limits<std::int64_t>::max();

// How the search treats each op: its return time, or "placed last".
//
// An unknown op returns at +infinity, and every pending one can double the
// configurations the search visits, so two sound reductions first.
//
// 1. Placed last. P is the largest set of unknown writes (set, cas, delete)
//    such that, for each U in P writing w (absent for a delete), every op
//    that observes w (reads it, compares with it or reports it) and
//    completes at or after U's invocation is an unknown cas in P, and no
//    cas_failed without a reported value completes at or after U's
//    invocation. Any linearization can then be changed into one with the
//    ops of P last: after an op of P takes effect, until the next set or
//    unknown delete, only ops of P and unknown cas that do nothing can come,
//    and all of them can move to the end without changing what any other
//    op sees. So the ops of P are not searched at all.
// 2. Bounded. If an unknown U outside P is the only op that writes w (w not
//    absent, which the initial state also holds) and some completed op R
//    observes w, then U precedes R in every linearization, hence every op
//    invoked after R completed: U may return at R's completion.
struct Plan {
  std::vector<bool> last;
  std::vector<std::int64_t> returns;
};

Plan plan(const History& history, const std::vector<std::size_t>& ops, bool reduce) {
  const std::size_t n = ops.size();
  Plan result{std::vector<bool>(n, false), std::vector<std::int64_t>(n, kInfinity)};
  for (std::size_t k = 0; k < n; ++k) {
    const Op& op = history.ops[ops[k]];
    if (op.outcome != Outcome::Unknown) result.returns[k] = *op.complete_us;
  }
  if (!reduce) return result;

  // Per value (absent = the empty optional).
  struct Use {
    std::int64_t last_definite_observer_done = std::numeric_limits<std::int64_t>::min();
    std::int64_t first_definite_observer_done = kInfinity;
    int writers = 0;                      // ops that may write it (+ the initial state for absent)
    std::vector<std::size_t> unknown_writers;
  };
  std::unordered_map<std::string, Use> uses;
  Use absent;
  absent.writers = 1;
  auto use = [&](const std::optional<std::string>& value) -> Use& {
    return value ? uses[*value] : absent;
  };
  std::int64_t last_blind_cas_failed = std::numeric_limits<std::int64_t>::min();
  for (std::size_t k = 0; k < n; ++k) {
    const Op& op = history.ops[ops[k]];
    if (op.outcome != Outcome::Unknown) {
      const std::int64_t done = *op.complete_us;
      if (op.is_cas_failed() && !op.has_result) last_blind_cas_failed = std::max(last_blind_cas_failed, done);
      for (const auto& value : observed_values(op)) {
        Use& u = use(value);
        u.last_definite_observer_done = std::max(u.last_definite_observer_done, done);
        u.first_definite_observer_done = std::min(u.first_definite_observer_done, done);
      }
    }
    if (auto written = written_value(op)) {
      Use& u = use(*written);
      u.writers++;
      if (op.outcome == Outcome::Unknown) u.unknown_writers.push_back(k);
    }
  }

  // Start from every unknown write and drop the ones that break the rule;
  // dropping an unknown cas drops the writers of the value it expects (it
  // is an observer that may come at any time).
  std::vector<bool>& in = result.last;
  std::vector<std::size_t> dropped;
  for (std::size_t k = 0; k < n; ++k) {
    const Op& op = history.ops[ops[k]];
    if (op.outcome != Outcome::Unknown || op.type == OpType::Get) continue;
    const Use& u = use(*written_value(op));
    in[k] = true;
    if (u.last_definite_observer_done >= op.invoke_us || last_blind_cas_failed >= op.invoke_us) {
      in[k] = false;
      dropped.push_back(k);
    }
  }
  while (!dropped.empty()) {
    const Op& op = history.ops[ops[dropped.back()]];
    dropped.pop_back();
    if (op.type != OpType::Cas) continue;
    for (std::size_t writer : use(op.expected).unknown_writers) {
      if (in[writer]) {
        in[writer] = false;
        dropped.push_back(writer);
      }
    }
  }

  for (std::size_t k = 0; k < n; ++k) {
    const Op& op = history.ops[ops[k]];
    if (op.outcome != Outcome::Unknown || op.type == OpType::Get || in[k]) continue;
    const Use& u = use(*written_value(op));
    if (u.writers == 1 && u.first_definite_observer_done != kInfinity) {
      result.returns[k] = std::max(op.invoke_us, u.first_definite_observer_done);
    }
  }
  return result;
}

}  // namespace

SearchResult search(const History& history, const std::vector<std::size_t>& ops_in,
                    Clock::time_point deadline, const CheckOptions& options) {
  SearchResult result;

  std::vector<std::size_t> relevant;
  for (std::size_t i : ops_in) {
    if (!history.ops[i].is_irrelevant()) relevant.push_back(i);
  }
  Plan p = plan(history, relevant, options.reduce_unknown_ops);
  std::vector<std::size_t> ops;      // searched, indexes into history
  std::vector<std::int64_t> returns;  // their return times
  std::vector<std::size_t> skipped;  // placed last without searching
  for (std::size_t k = 0; k < relevant.size(); ++k) {
    if (p.last[k]) {
      skipped.push_back(relevant[k]);
    } else {
      ops.push_back(relevant[k]);
      returns.push_back(p.returns[k]);
    }
  }
  result.pruned = skipped.size();
  std::sort(skipped.begin(), skipped.end(), [&](std::size_t a, std::size_t b) {
    return history.ops[a].invoke_us < history.ops[b].invoke_us;
  });

  // Rank the ops: bounded returns first, by invocation; then open-ended.
  {
    std::vector<std::size_t> rank(ops.size());
    for (std::size_t k = 0; k < rank.size(); ++k) rank[k] = k;
    std::stable_sort(rank.begin(), rank.end(), [&](std::size_t a, std::size_t b) {
      const bool open_a = returns[a] == kInfinity, open_b = returns[b] == kInfinity;
      if (open_a != open_b) return open_b;
      return history.ops[ops[a]].invoke_us < history.ops[ops[b]].invoke_us;
    });
    std::vector<std::size_t> ranked_ops;
    std::vector<std::int64_t> ranked_returns;
    for (std::size_t k : rank) {
      ranked_ops.push_back(ops[k]);
      ranked_returns.push_back(returns[k]);
    }
    ops.swap(ranked_ops);
    returns.swap(ranked_returns);
  }

  const std::size_t n = ops.size();
  Interner interner;
  std::vector<Step> steps(n);
  std::vector<bool> open_ended(n);  // returns at +infinity
  std::size_t bounded = 0;          // ranks [0, bounded) have a finite return
  for (std::size_t k = 0; k < n; ++k) {
    steps[k] = interner.compile(history.ops[ops[k]]);
    open_ended[k] = returns[k] == kInfinity;
    bounded += !open_ended[k];
  }
  std::size_t bounded_left = bounded;  // bounded ops not linearized yet
  result.open_ended = n - bounded;

  // Events sorted by time; at equal times calls come before returns (ops
  // that touch are concurrent), then by rank. Within a run of calls (all
  // equally eligible), open-ended ops go last so they are tried last: see
  // the dominance rule below.
  struct Event {
    std::int64_t time;
    int is_return;
    std::int32_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * n);
  for (std::size_t k = 0; k < n; ++k) {
    events.push_back({history.ops[ops[k]].invoke_us, 0, static_cast<std::int32_t>(k)});
    events.push_back({returns[k], 1, static_cast<std::int32_t>(k)});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.is_return != b.is_return) return a.is_return < b.is_return;
    return a.op < b.op;
  });
  for (auto run = events.begin(); run != events.end();) {
    auto end = std::find_if(run, events.end(), [](const Event& e) { return e.is_return; });
    std::stable_partition(run, end, [&](const Event& e) { return !open_ended[e.op]; });
    run = end == events.end() ? end : end + 1;
  }
  // For a bounded op: how many bounded ops are invoked before it returns
  // (ranks below that bound the bounded ops linearized while it is pending).
  std::vector<std::uint32_t> calls_before_return(bounded);
  {
    std::uint32_t calls = 0;
    for (const Event& e : events) {
      if (open_ended[e.op]) continue;
      if (!e.is_return) ++calls;
      else calls_before_return[e.op] = calls;
    }
  }

  // Doubly linked list over the events, with sentinels head and tail.
  const std::int32_t head = static_cast<std::int32_t>(2 * n);
  const std::int32_t tail = head + 1;
  std::vector<std::int32_t> next(2 * n + 2), prev(2 * n + 2), match(2 * n, -1), op_of(2 * n);
  std::vector<std::int32_t> call_node(n);
  for (std::int32_t e = 0; e < head; ++e) {
    op_of[e] = events[e].op;
    next[e] = e + 1 == head ? tail : e + 1;
    prev[e] = e == 0 ? head : e - 1;
    if (!events[e].is_return) call_node[events[e].op] = e;
  }
  for (std::int32_t e = 0; e < head; ++e) {
    if (events[e].is_return) match[call_node[events[e].op]] = e;
  }
  next[head] = n == 0 ? tail : 0;
  prev[tail] = n == 0 ? head : head - 1;

  auto lift = [&](std::int32_t call) {
    std::int32_t ret = match[call];
    next[prev[call]] = next[call];
    prev[next[call]] = prev[call];
    next[prev[ret]] = next[ret];
    prev[next[ret]] = prev[ret];
  };
  auto unlift = [&](std::int32_t call) {
    std::int32_t ret = match[call];
    next[prev[ret]] = ret;
    prev[next[ret]] = ret;
    next[prev[call]] = call;
    prev[next[call]] = call;
  };

  std::vector<std::uint64_t> zobrist(n);
  for (std::size_t k = 0; k < n; ++k) zobrist[k] = splitmix64(0x6a09e667f3bcc909ULL + k);
  std::vector<std::uint64_t> bounded_bits((bounded + 63) / 64 + 1, 0);
  std::vector<std::uint64_t> open_bits((n - bounded + 63) / 64 + 1, 0);
  std::size_t first_pending = 0;  // F: the lowest bounded rank not linearized
  auto is_set = [&](std::int32_t k) {
    const std::size_t r = static_cast<std::size_t>(k);
    return r < bounded ? (bounded_bits[r >> 6] >> (r & 63) & 1) != 0
                       : (open_bits[(r - bounded) >> 6] >> ((r - bounded) & 63) & 1) != 0;
  };
  auto set_bit = [&](std::int32_t k) {
    const std::size_t r = static_cast<std::size_t>(k);
    if (r >= bounded) {
      open_bits[(r - bounded) >> 6] |= std::uint64_t{1} << ((r - bounded) & 63);
      return;
    }
    bounded_bits[r >> 6] |= std::uint64_t{1} << (r & 63);
    while (first_pending < bounded && is_set(static_cast<std::int32_t>(first_pending))) ++first_pending;
  };
  auto clear_bit = [&](std::int32_t k) {
    const std::size_t r = static_cast<std::size_t>(k);
    if (r >= bounded) {
      open_bits[(r - bounded) >> 6] &= ~(std::uint64_t{1} << ((r - bounded) & 63));
      return;
    }
    bounded_bits[r >> 6] &= ~(std::uint64_t{1} << (r & 63));
    first_pending = std::min(first_pending, r);
  };
  auto key = [&](State s) {
    Cache::Key k;
    k.lo = static_cast<std::uint32_t>(first_pending >> 6);
    std::size_t hi = first_pending < bounded ? (calls_before_return[first_pending] + 63) / 64 : k.lo;
    while (hi > k.lo && bounded_bits[hi - 1] == 0) --hi;
    k.count = static_cast<std::uint32_t>(hi - k.lo);
    k.bounded = bounded_bits.data() + k.lo;
    k.open = open_bits.data();
    k.state = s;
    return k;
  };
  std::uint64_t linearized_hash = 0;
  Cache cache(open_bits.size());
  cache.insert(state_hash(kAbsent), key(kAbsent));

  // Dominance: for an open-ended op u, if (S, s) has a linearization of the
  // rest, so has (S minus u, s): do the same, then u last. So (S, s) need
  // not be explored when (S minus u, s) already was (it failed, or it is
  // the configuration we are extending by a u that changed nothing).
  // Open-ended ops are tried after the other candidates, which makes such
  // configurations likely to be known already.
  std::vector<std::int32_t> open_linearized;  // open-ended ops in the stack

  // Symmetry: open-ended ops with the same step (typically unknown deletes)
  // are interchangeable once invoked, so they are linearized in the order of
  // their calls: any linearization can swap which of them goes where. This
  // turns the 2^m subsets of m pending ones into m+1 prefixes.
  std::vector<std::int32_t> previous_twin(n, -1), next_twin(n, -1);
  {
    std::unordered_map<std::uint64_t, std::int32_t> last_of_class;
    for (std::int32_t e = 0; e < head; ++e) {
      const std::int32_t k = events[e].op;
      if (events[e].is_return || !open_ended[k]) continue;
      const std::uint64_t cls = static_cast<std::uint64_t>(steps[k].kind) << 56 ^
                                static_cast<std::uint64_t>(static_cast<std::uint32_t>(steps[k].a)) << 28 ^
                                static_cast<std::uint32_t>(steps[k].b);
      auto [it, inserted] = last_of_class.emplace(cls, k);
      if (!inserted) {
        previous_twin[k] = it->second;
        next_twin[it->second] = k;
        it->second = k;
      }
    }
  }

  auto seen = [&](std::uint64_t hash, State s) {
    if (cache.contains(hash, key(s))) return true;
    for (std::int32_t u : open_linearized) {
      if (next_twin[u] >= 0 && is_set(next_twin[u])) continue;  // not canonical without u
      clear_bit(u);
      bool found = cache.contains(hash ^ zobrist[u], key(s));
      set_bit(u);
      if (found) return true;
    }
    return false;
  };

  struct Frame {
    std::int32_t call;
    State before;
    bool forced;  // a read taken because it was possible: no alternative to try
  };
  std::vector<Frame> stack;
  stack.reserve(n);
  std::vector<std::size_t> best;
  auto record_best = [&] {
    if (stack.size() > best.size()) {
      best.clear();
      for (const Frame& f : stack) best.push_back(ops[op_of[f.call]]);
    }
  };
  auto finish = [&](Verdict verdict) {
    result.verdict = verdict;
    result.cache_entries = cache.size();
    if (verdict != Verdict::Ok) {
      record_best();
      result.order = std::move(best);
      return result;
    }
    // The open-ended ops not linearized yet go last, then the pruned ones.
    std::vector<std::size_t> rest;
    for (std::size_t k = 0; k < n; ++k) {
      if (!is_set(static_cast<std::int32_t>(k))) rest.push_back(ops[k]);
    }
    std::sort(rest.begin(), rest.end(), [&](std::size_t a, std::size_t b) {
      return history.ops[a].invoke_us < history.ops[b].invoke_us;
    });
    for (const Frame& f : stack) result.order.push_back(ops[op_of[f.call]]);
    result.order.insert(result.order.end(), rest.begin(), rest.end());
    result.order.insert(result.order.end(), skipped.begin(), skipped.end());
    return result;
  };

  // Reads first: if an op that never changes the register (a get, a
  // cas_failed) can be linearized now, some linearization of the rest (if
  // any) starts with it. Move it to the front of one: every other pending op
  // returns after its call, so real time allows it, and no state changes. So
  // such an op is taken without trying alternatives ("forced"), which
  // removes the branching over concurrent reads.
  std::vector<bool> read_only(n);
  for (std::size_t k = 0; k < n; ++k) {
    read_only[k] = steps[k].kind == Step::kRead || steps[k].kind == Step::kCasFailed;
  }

  State state = kAbsent;
  std::int32_t entry = next[head];
  std::uint64_t iterations = 0;
  bool fresh = true;  // at a configuration not scanned yet
  while (bounded_left > 0) {
    if ((++iterations & 1023) == 0) {
      if (Clock::now() > deadline) {
        result.why_unknown = "time budget";
      } else if (cache.bytes() > options.max_cache_bytes) {
        result.why_unknown = "memory budget";
      }
      if (!result.why_unknown.empty()) return finish(Verdict::Unknown);
    }
    bool backtrack = false;
    if (fresh) {
      fresh = false;
      entry = next[head];
      std::int32_t read = -1;
      for (std::int32_t e = next[head]; match[e] >= 0; e = next[e]) {
        const std::int32_t k = op_of[e];
        if (!read_only[k]) continue;
        State after = state;
        ++result.steps;
        if (steps[k].apply(after)) {
          read = e;
          break;
        }
      }
      if (read >= 0) {
        const std::int32_t k = op_of[read];
        set_bit(k);
        const std::uint64_t hash = linearized_hash ^ zobrist[k] ^ state_hash(state);
        if (seen(hash, state)) {
          clear_bit(k);  // the only child failed already: so does this configuration
          backtrack = true;
        } else {
          cache.insert(hash, key(state));
          stack.push_back({read, state, true});
          linearized_hash ^= zobrist[k];
          bounded_left -= 1;
          lift(read);
          fresh = true;
          continue;
        }
      }
    }
    if (!backtrack && match[entry] >= 0) {  // a call: try to linearize its op now
      const std::int32_t k = op_of[entry];
      State after = state;
      ++result.steps;
      if ((previous_twin[k] < 0 || is_set(previous_twin[k])) && steps[k].apply(after)) {
        set_bit(k);
        if (open_ended[k]) open_linearized.push_back(k);
        const std::uint64_t hash = linearized_hash ^ zobrist[k] ^ state_hash(after);
        if (!seen(hash, after)) {
          cache.insert(hash, key(after));
          stack.push_back({entry, state, false});
          state = after;
          linearized_hash ^= zobrist[k];
          bounded_left -= !open_ended[k];
          lift(entry);
          fresh = true;
          continue;
        }
        if (open_ended[k]) open_linearized.pop_back();
        clear_bit(k);
      }
      entry = next[entry];
      continue;
    }
    // A return (its op should have been linearized by now) or a dead end:
    // undo the last choice, and the forced steps before it.
    Frame top;
    do {
      if (stack.empty()) return finish(Verdict::Violation);
      record_best();
      top = stack.back();
      stack.pop_back();
      const std::int32_t k = op_of[top.call];
      clear_bit(k);
      if (open_ended[k]) open_linearized.pop_back();
      bounded_left += !open_ended[k];
      linearized_hash ^= zobrist[k];
      state = top.before;
      unlift(top.call);
    } while (top.forced);
    entry = next[top.call];
  }
  return finish(Verdict::Ok);
}

std::vector<std::pair<std::string, std::vector<std::size_t>>> partition_by_key(const History& history) {
  std::vector<std::pair<std::string, std::vector<std::size_t>>> keys;
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < history.ops.size(); ++i) {
    const Op& op = history.ops[i];
    auto [it, inserted] = index.emplace(op.key, keys.size());
    if (inserted) keys.push_back({op.key, {}});
    if (!op.is_irrelevant()) keys[it->second].second.push_back(i);
  }
  return keys;
}

CheckResult check(const History& history, const CheckOptions& options) {
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.timeout_s));
  CheckResult result;
  result.ops = history.ops.size();
  bool any_unknown = false;
  for (auto& [key, ops] : partition_by_key(history)) {
    KeyResult key_result;
    key_result.key = key;
    key_result.ops = std::move(ops);
    result.checked_ops += key_result.ops.size();
    const auto key_start = Clock::now();
    if (key_start > deadline && !key_result.ops.empty()) {
      key_result.search.verdict = Verdict::Unknown;
      key_result.search.why_unknown = "time budget";
    } else {
      key_result.search = search(history, key_result.ops, deadline, options);
    }
    key_result.seconds = std::chrono::duration<double>(Clock::now() - key_start).count();
    if (key_result.search.verdict == Verdict::Violation && !result.bad_key) {
      result.bad_key = result.keys.size();
    }
    if (key_result.search.verdict == Verdict::Unknown) any_unknown = true;
    result.keys.push_back(std::move(key_result));
  }
  result.verdict = result.bad_key ? Verdict::Violation : any_unknown ? Verdict::Unknown : Verdict::Ok;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace lincheck
