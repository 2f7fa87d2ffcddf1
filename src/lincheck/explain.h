// Explaining a violation: shrink the offending key's ops to a small subset
// that is still not linearizable, and say where the search got stuck.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lincheck/checker.h"
#include "lincheck/history.h"

namespace lincheck {

struct StuckOp {
  std::size_t op;      // index in History::ops
  std::string reason;  // why it cannot be the next op after the partial order
};

struct Explanation {
  std::string key;
  // A subset of the key's ops that is not linearizable, sorted by invocation.
  // It is 1-minimal when `one_minimal`: removing any single op makes it
  // linearizable. Subsets stay complete: an op that reads a value stays only
  // while some op that could have written it first stays (if the key has
  // one), so the set tells the whole story, e.g. a stale read keeps the
  // write it read. A value no op could have written may be read on its own.
  std::vector<std::size_t> minimal;
  bool one_minimal = false;  // false if the time budget ran out first
  // The longest partial linearization of `minimal` the search reached, the
  // register's value after it, and why each remaining op cannot come next.
  std::vector<std::size_t> partial;
  std::optional<std::string> state_after_partial;
  std::vector<StuckOp> stuck;
  std::size_t checks = 0;  // subsets searched
  double seconds = 0;
};

// `key_ops`: the key's ops (indexes into history.ops) known to be not
// linearizable. Greedy delta debugging: drop chunks of halving size, then
// single ops until no single op can go, within `budget_s` seconds.
Explanation explain(const History& history, const std::string& key,
                    const std::vector<std::size_t>& key_ops, double budget_s,
                    const CheckOptions& options = {});

// The earliest invocation of the history: times are shown relative to it.
std::int64_t origin_us(const History& history);
// Milliseconds since `origin`, e.g. "12.345"; "∞" for no time.
std::string format_ms(std::optional<std::int64_t> us, std::int64_t origin);
// A readable table of ops: id, client, op, arguments, result, times in ms.
std::string format_table(const History& history, const std::vector<std::size_t>& ops,
                         std::int64_t origin);

}  // namespace lincheck
