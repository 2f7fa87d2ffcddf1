#include "lincheck/explain.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "lincheck/model.h"

namespace lincheck {

namespace {

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kBefore = std::numeric_limits<std::int64_t>::min();

// Decides which subsets of a key's ops the shrinking may keep. A subset T
// must be a certificate: if T is not linearizable, neither is the key.
//
// Take a linearization L of the key and keep only T's ops. An op of T
// still sees what it saw in L, unless the last write before it in L is
// outside T. So T is a certificate if, for every op X of T that observes a
// value v (reads it, compares with it, reports it), T holds every writer W
// of v that could be the last write before X: W invoked before X completed,
// and no definite write O of T that started after W completed completed
// before X started (then O, not W, came last). An unknown cas of T observes
// its expected value; a cas_failed without a reported value observes every
// value. (Unknown cas that did nothing in L move to the end.) The initial
// absent value is always there.
//
// For a readable story, T must also keep, for each such X, a writer of v
// invoked before X completed if the key has one: a stale read keeps the
// write it read, not just the one that overwrote it.
//
// Closure::apply drops the observers whose conditions fail, repeatedly.
class Closure {
 public:
  Closure(const History& history, const std::vector<std::size_t>& key_ops)
      : history_(history), in_(history.ops.size(), 0) {
    std::unordered_map<std::string, int> ids;
    auto id = [&](const std::optional<std::string>& value) {
      if (!value) return 0;
      return ids.emplace(*value, static_cast<int>(ids.size()) + 1).first->second;
    };
    for (std::size_t i : key_ops) {
      const Op& op = history.ops[i];
      if (auto written = written_value(op)) {
        Writer w{op.invoke_us, op.outcome == Outcome::Unknown ? kNever : *op.complete_us, i, id(*written)};
        writers_[w.value].push_back(w);
        writers_[kAnyValue].push_back(w);
      }
      if (op.is_cas_failed() && !op.has_result) {
        observations_.push_back({i, kAnyValue, false});
        continue;
      }
      std::vector<std::optional<std::string>> seen = observed_values(op);
      if (op.type == OpType::Cas && op.outcome == Outcome::Unknown) seen = {op.expected};
      for (const auto& value : seen) observations_.push_back({i, id(value), false});
    }
    for (auto& [v, list] : writers_) {
      std::sort(list.begin(), list.end(), [](const Writer& a, const Writer& b) { return a.invoke < b.invoke; });
    }
    // The story rule applies where the whole key has a writer for it.
    for (Observation& o : observations_) {
      if (o.value == 0 || o.value == kAnyValue) continue;  // absent: the initial value explains it
      const Op& x = history.ops[o.op];
      for (const Writer& w : writers_[o.value]) {
        if (w.invoke > done(x)) break;
        if (w.op != o.op) o.needs_source = true;
      }
    }
  }

  std::vector<std::size_t> apply(std::vector<std::size_t> subset) const {
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t i : subset) in_[i] = 1;
      std::unordered_set<std::size_t> dropped = failing(subset);
      for (std::size_t i : subset) in_[i] = 0;
      if (!dropped.empty()) {
        changed = true;
        subset.erase(std::remove_if(subset.begin(), subset.end(), [&](std::size_t i) { return dropped.count(i); }),
                     subset.end());
      }
    }
    return subset;
  }

 private:
  static constexpr int kAnyValue = -1;
  struct Writer {
    std::int64_t invoke, done;
    std::size_t op;
    int value;
  };
  struct Observation {
    std::size_t op;
    int value;
    bool needs_source;
  };

  static std::int64_t done(const Op& op) {
    return op.outcome == Outcome::Unknown ? kNever : *op.complete_us;
  }

  // The observers of `subset` (marked in in_) whose conditions fail.
  std::unordered_set<std::size_t> failing(const std::vector<std::size_t>& subset) const {
    // Definite writes of the subset by invocation, with the earliest
    // completion among those invoked after a given time.
    std::vector<std::pair<std::int64_t, std::int64_t>> definite;  // (invoke, complete)
    for (std::size_t i : subset) {
      const Op& op = history_.ops[i];
      if (op.outcome == Outcome::Ok && written_value(op)) definite.push_back({op.invoke_us, *op.complete_us});
    }
    std::sort(definite.begin(), definite.end());
    std::vector<std::int64_t> suffix_min(definite.size() + 1, kNever);
    for (std::size_t k = definite.size(); k-- > 0;) suffix_min[k] = std::min(suffix_min[k + 1], definite[k].second);
    auto overwritten_by = [&](std::int64_t after) {  // earliest completion of a definite write invoked after `after`
      auto it = std::upper_bound(definite.begin(), definite.end(), std::make_pair(after, kNever));
      return suffix_min[it - definite.begin()];
    };

    // Per value: the writers outside the subset by invocation, with the
    // latest completion so far (the later a writer completed, the more
    // likely it was the last write someone saw); and the two earliest
    // invocations of writers inside it.
    struct Index {
      std::vector<std::int64_t> missing_invoke, missing_latest_done;
      std::int64_t first_in = kNever, second_in = kNever;
      std::size_t first_in_op = static_cast<std::size_t>(-1);
    };
    std::unordered_map<int, Index> index;
    for (const auto& [v, list] : writers_) {
      Index& ix = index[v];
      std::int64_t latest = kBefore;
      for (const Writer& w : list) {
        if (in_[w.op]) {
          if (w.invoke < ix.first_in) {
            ix.second_in = ix.first_in;
            ix.first_in = w.invoke;
            ix.first_in_op = w.op;
          } else if (w.invoke < ix.second_in) {
            ix.second_in = w.invoke;
          }
        } else {
          latest = std::max(latest, w.done);
          ix.missing_invoke.push_back(w.invoke);
          ix.missing_latest_done.push_back(latest);
        }
      }
    }

    std::unordered_set<std::size_t> dropped;
    for (const Observation& o : observations_) {
      if (!in_[o.op] || dropped.count(o.op)) continue;
      const Op& x = history_.ops[o.op];
      auto it = index.find(o.value);
      if (it == index.end()) continue;
      const Index& ix = it->second;
      const std::int64_t first_in = ix.first_in_op == o.op ? ix.second_in : ix.first_in;
      if (o.needs_source && first_in > done(x)) {
        dropped.insert(o.op);
        continue;
      }
      // A missing writer that could have been the last write X saw.
      auto end = std::upper_bound(ix.missing_invoke.begin(), ix.missing_invoke.end(), done(x));
      if (end == ix.missing_invoke.begin()) continue;
      const std::int64_t latest = ix.missing_latest_done[end - ix.missing_invoke.begin() - 1];
      if (latest == kNever || overwritten_by(latest) >= x.invoke_us) dropped.insert(o.op);
    }
    return dropped;
  }

  const History& history_;
  mutable std::vector<char> in_;  // membership of the subset being checked
  std::unordered_map<int, std::vector<Writer>> writers_;  // per value id, by invocation; kAnyValue: all
  std::vector<Observation> observations_;
};

std::string pad(const std::string& text, std::size_t width) {
  // Width in code points, so arrows and quotes line up.
  std::size_t length = 0;
  for (unsigned char c : text) length += (c & 0xC0) != 0x80;
  return length >= width ? text : text + std::string(width - length, ' ');
}

}  // namespace

std::int64_t origin_us(const History& history) {
  std::int64_t origin = std::numeric_limits<std::int64_t>::max();
  for (const Op& op : history.ops) origin = std::min(origin, op.invoke_us);
  return history.ops.empty() ? 0 : origin;
}

std::string format_ms(std::optional<std::int64_t> us, std::int64_t origin) {
  if (!us) return "∞";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f", static_cast<double>(*us - origin) / 1000.0);
  return buffer;
}

std::string format_table(const History& history, const std::vector<std::size_t>& ops,
                         std::int64_t origin) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"id", "client", "op", "args", "result", "invoke ms", "complete ms"});
  for (std::size_t i : ops) {
    const Op& op = history.ops[i];
    rows.push_back({std::to_string(op.id), op.client, std::string(to_string(op.type)) + " " + op.key,
                    describe_args(op), describe_result(op), format_ms(op.invoke_us, origin),
                    op.outcome == Outcome::Unknown ? "? (timed out)" : format_ms(op.complete_us, origin)});
  }
  std::vector<std::size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      std::size_t length = 0;
      for (unsigned char ch : row[c]) length += (ch & 0xC0) != 0x80;
      widths[c] = std::max(widths[c], length);
    }
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    out << "  ";
    for (std::size_t c = 0; c < row.size(); ++c) out << pad(row[c], widths[c] + 2);
    out << '\n';
  }
  return out.str();
}

Explanation explain(const History& history, const std::string& key,
                    const std::vector<std::size_t>& key_ops, double budget_s,
                    const CheckOptions& options) {
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(budget_s));
  Explanation explanation;
  explanation.key = key;

  Closure closure(history, key_ops);
  bool out_of_time = false;
  auto still_violates = [&](const std::vector<std::size_t>& subset) {
    if (Clock::now() > deadline) {
      out_of_time = true;
      return false;
    }
    ++explanation.checks;
    SearchResult r = search(history, subset, deadline, options);
    if (r.verdict == Verdict::Unknown) out_of_time = true;
    return r.verdict == Verdict::Violation;
  };

  std::vector<std::size_t> current = key_ops;
  // Chunks of halving size, then single ops until a whole pass removes none.
  for (std::size_t size = current.size() / 2; size >= 1 && !out_of_time; size /= 2) {
    for (std::size_t begin = 0; begin < current.size() && !out_of_time;) {
      std::vector<std::size_t> candidate(current.begin(), current.begin() + begin);
      candidate.insert(candidate.end(), current.begin() + std::min(current.size(), begin + size),
                       current.end());
      candidate = closure.apply(std::move(candidate));
      if (candidate.size() < current.size() && still_violates(candidate)) {
        current = std::move(candidate);
      } else {
        begin += size;
      }
    }
  }
  for (bool removed = true; removed && !out_of_time;) {
    removed = false;
    for (std::size_t k = 0; k < current.size() && !out_of_time;) {
      std::vector<std::size_t> candidate = current;
      candidate.erase(candidate.begin() + k);
      candidate = closure.apply(std::move(candidate));
      if (still_violates(candidate)) {
        current = std::move(candidate);
        removed = true;
      } else {
        ++k;
      }
    }
  }
  explanation.one_minimal = !out_of_time;
  std::sort(current.begin(), current.end(), [&](std::size_t a, std::size_t b) {
    const Op& x = history.ops[a];
    const Op& y = history.ops[b];
    return x.invoke_us != y.invoke_us ? x.invoke_us < y.invoke_us : x.id < y.id;
  });
  explanation.minimal = current;

  // Where the search of the minimal set gets stuck. The set is small, so a
  // short extra budget is plenty.
  SearchResult r = search(history, current, Clock::now() + std::chrono::seconds(2), options);
  explanation.partial = r.order;
  if (r.verdict == Verdict::Violation) {
    std::optional<std::string> state;
    for (std::size_t i : r.order) apply(history.ops[i], state);
    explanation.state_after_partial = state;
    std::vector<std::size_t> rest;
    for (std::size_t i : current) {
      if (std::find(r.order.begin(), r.order.end(), i) == r.order.end()) rest.push_back(i);
    }
    for (std::size_t i : rest) {
      const Op& op = history.ops[i];
      std::string reason;
      for (std::size_t j : rest) {
        const Op& other = history.ops[j];
        if (j != i && other.outcome != Outcome::Unknown && *other.complete_us < op.invoke_us) {
          reason = "it started after op " + std::to_string(other.id) +
                   " had finished, so op " + std::to_string(other.id) + " must come first";
          break;
        }
      }
      if (reason.empty()) reason = why_illegal(op, state);
      if (reason.empty()) reason = "it could come next, but then the remaining ops cannot be ordered";
      explanation.stuck.push_back({i, reason});
    }
  }
  explanation.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return explanation;
}

}  // namespace lincheck
