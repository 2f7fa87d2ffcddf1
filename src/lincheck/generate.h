// Synthetic histories for tests and benchmarks: clients issue one op at a
// time against a simulated linearizable store, whose ops take effect at a
// random instant inside their interval, so intervals overlap freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "lincheck/history.h"

namespace lincheck {

struct GenerateOptions {
  std::size_t ops = 1000;
  std::size_t keys = 10;
  std::size_t clients = 16;
  std::uint64_t seed = 1;
  // Share of ops that time out (outcome unknown); half of them take effect,
  // possibly after the client gave up and moved on.
  double unknown_ratio = 0.05;
  // Share of ops that fail definitely without effect (not_leader).
  double fail_ratio = 0.01;
  // Turn one get in the middle into a stale read (it returns a value that a
  // completed write had overwritten before the get started), so the history
  // is not linearizable.
  bool corrupt = false;
  std::int64_t min_duration_us = 100;
  std::int64_t max_duration_us = 5000;
  std::int64_t max_think_us = 1000;  // pause between a client's ops
};

struct Generated {
  History history;
  // With `corrupt`: the id of the stale read (none if no get qualified).
  std::optional<std::int64_t> corrupted_id;
};

// Deterministic for given options. Ops are in id order, ids 1..N by
// invocation time. Values are unique ("v<id>").
Generated generate(const GenerateOptions& options);

}  // namespace lincheck
