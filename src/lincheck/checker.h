// The linearizability search: per key (keys are independent registers),
// Wing & Gong's backtracking search with Lowe's just-in-time linearization
// and a cache of (set of linearized ops, register state) pairs already
// explored, as in Porcupine.
//
// Time: an op's interval is [invoke_us, complete_us]; an unknown op's
// completion is +infinity. Two ops are ordered in real time only when one
// completes strictly before the other is invoked: at equal times a call
// sorts before a return, so ops that merely touch count as concurrent.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lincheck/history.h"

namespace lincheck {

enum class Verdict { Ok, Violation, Unknown };
const char* to_string(Verdict verdict);

using Clock = std::chrono::steady_clock;

struct CheckOptions {
  double timeout_s = 10.0;  // budget for the whole history
  // Place unknown-outcome ops that nobody can observe last without
  // searching them, and end the interval of an unknown write at the first
  // completed read of its (unique) value (both sound; see checker.cc and
  // docs/lincheck.md). Off only to cross-check these reductions.
  bool reduce_unknown_ops = true;
  // The cache of explored configurations may not grow beyond this; a search
  // that needs more ends with an unknown verdict.
  std::size_t max_cache_bytes = std::size_t{1} << 30;
};

// The result of searching one set of ops of one key. Ops are identified by
// their index in History::ops.
struct SearchResult {
  Verdict verdict = Verdict::Unknown;
  // Ok: a full linearization. Otherwise: the longest prefix of a
  // linearization that the search reached (a partial linearization).
  std::vector<std::size_t> order;
  std::uint64_t steps = 0;           // model steps tried
  std::size_t cache_entries = 0;
  std::size_t pruned = 0;            // unknown ops placed last without searching
  std::size_t open_ended = 0;        // unknown ops searched with no bound on their return
  std::string why_unknown;           // "time budget" or "memory budget"
};

// Searches the given ops (all on one key; ops that never matter are
// skipped) until `deadline`.
SearchResult search(const History& history, const std::vector<std::size_t>& ops,
                    Clock::time_point deadline, const CheckOptions& options = {});

struct KeyResult {
  std::string key;
  std::vector<std::size_t> ops;  // the key's ops that matter, in file order
  SearchResult search;
  double seconds = 0;
};

struct CheckResult {
  Verdict verdict = Verdict::Unknown;
  std::size_t ops = 0;           // ops in the history
  std::size_t checked_ops = 0;   // ops that matter (not dropped failures or unknown gets)
  std::vector<KeyResult> keys;   // in order of first appearance in the history
  double seconds = 0;
  // The first key (in that order) found not linearizable, if any.
  std::optional<std::size_t> bad_key;
};

// The ops of each key in order of first appearance; ops that never matter
// (Op::is_irrelevant) are left out.
std::vector<std::pair<std::string, std::vector<std::size_t>>> partition_by_key(const History& history);

CheckResult check(const History& history, const CheckOptions& options = {});

}  // namespace lincheck
