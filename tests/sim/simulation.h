// One simulated run, fully determined by its seed (TigerBeetle's VOPR and
// FoundationDB's simulation are the models):
//
//   1. From the seed: the cluster size (3, 5 or 7: seed % 3, so any run of
//      consecutive seeds covers the sizes evenly), the fault rates and the
//      traffic rates of this run (some runs calm, some stormy).
//   2. Safety phase: the cluster runs under faults (network.h, cluster.h)
//      while clients write and read; the checker (checker.h) runs after every
//      step.
//   3. Liveness phase: every fault is healed (partitions gone, no loss,
//      crashed nodes restarted, paused nodes resumed). Within a bounded time
//      there must be a leader, a fresh write must be committed and applied by
//      every node, and all commit indexes must agree. Otherwise the run fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sim {

struct RunOptions {
  std::uint64_t seed = 1;
  std::int64_t safety_ticks = 0;  // 0: chosen from the seed (1500..3000, --long: 6000..12000)
  std::int64_t liveness_ticks = 600;
  bool long_mode = false;
  bool verbose = false;  // print every event as it happens
  std::size_t trace_events = 30;
};

struct RunResult {
  std::uint64_t seed = 0;
  int size = 0;
  bool ok = true;
  std::string invariant;  // when !ok
  std::string details;
  std::int64_t tick = 0;
  std::uint64_t step = 0;
  std::string report;  // multi-line failure report with the trace, when !ok
  // Statistics, to see that runs do something.
  std::uint64_t acks = 0;
  std::uint64_t reads = 0;
  std::uint64_t elections = 0;
  std::uint64_t committed = 0;
  std::uint64_t messages = 0;
};

int cluster_size_for_seed(std::uint64_t seed);
RunResult run_simulation(const RunOptions& options);
// The command that replays a run.
std::string replay_command(const RunOptions& options);

}  // namespace sim
