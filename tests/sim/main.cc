// sim: the deterministic simulator of the Raft core.
//
//   sim --seeds N [--first-seed S]   runs seeds S..S+N-1 (default 1000 from 1)
//   sim --seed S [--verbose]         replays exactly one run
//
// See simulation.h for what one run does, network.h and cluster.h for the
// faults, checker.h for the invariants.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "simulation.h"

namespace {

const char* kUsage = R"(usage:
  sim [--seeds N] [--first-seed S] [--ticks T] [--long]
      Runs N seeded simulations, seeds S..S+N-1 (default: 1000 seeds from 1;
      with --long: 10000). Prints one line per failing seed (and the full
      report of the first), a progress line every 100 runs and a summary.
  sim --seed S [--verbose] [--ticks T] [--long] [--trace K]
      Replays exactly one run; on failure prints the report with the last
      events; --verbose prints every event as it happens.

options:
  --ticks T    length of the safety phase (default: 1500..3000 ticks chosen
               from the seed; with --long 6000..12000). The liveness phase
               that follows lasts at most 600 ticks.
  --long       soak mode: 10x the seeds and about 4x longer runs.
  --trace K    number of events in the failure report (default 30).
  --help       this text.

Each run picks its cluster size from the seed (seed % 3 -> 3, 5 or 7 nodes),
runs a safety phase under network faults (loss, duplication, delay,
reordering, partitions), crashes (also in the middle of a Ready, torn writes),
pauses and clock skew, with clients writing and reading; then heals every
fault and requires a leader, a fresh write applied on every node and equal
commit indexes. Invariants are checked after every step. Exit code 0 only if
every run passed.
)";

bool parse_u64(const char* s, std::uint64_t& out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (*end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::uint64_t> seeds, first_seed, seed, ticks, trace;
  bool verbose = false, long_mode = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::optional<std::uint64_t>& out) {
      std::uint64_t v;
      if (i + 1 >= argc || !parse_u64(argv[i + 1], v)) {
        std::cerr << "sim: " << arg << " needs a number\n" << kUsage;
        std::exit(2);
      }
      out = v;
      ++i;
    };
    if (arg == "--seeds") {
      value(seeds);
    } else if (arg == "--first-seed") {
      value(first_seed);
    } else if (arg == "--seed") {
      value(seed);
    } else if (arg == "--ticks") {
      value(ticks);
    } else if (arg == "--trace") {
      value(trace);
    } else if (arg == "--verbose" || arg == "-v") {
      verbose = true;
    } else if (arg == "--long") {
      long_mode = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "sim: unknown argument " << arg << "\n" << kUsage;
      return 2;
    }
  }
  if (seed && (seeds || first_seed)) {
    std::cerr << "sim: --seed replays one run; use --seeds/--first-seed for many\n";
    return 2;
  }

  sim::RunOptions base;
  base.long_mode = long_mode;
  base.safety_ticks = ticks ? static_cast<std::int64_t>(*ticks) : 0;
  base.trace_events = trace ? static_cast<std::size_t>(*trace) : 30;

  if (seed) {
    sim::RunOptions options = base;
    options.seed = *seed;
    options.verbose = verbose;
    sim::RunResult r = sim::run_simulation(options);
    if (!r.ok) {
      std::cout << r.report;
      return 1;
    }
    std::cout << "seed " << r.seed << " (" << r.size << " nodes): ok after " << r.tick << " ticks, " << r.step
              << " steps; " << r.elections << " leaders elected, " << r.committed << " entries committed, " << r.acks
              << " writes acknowledged, " << r.reads << " reads served, " << r.messages << " messages sent\n";
    return 0;
  }

  const std::uint64_t count = seeds ? *seeds : (long_mode ? 10000 : 1000);
  const std::uint64_t first = first_seed ? *first_seed : 1;
  const auto start = std::chrono::steady_clock::now();  // for the report only, never for decisions
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::uint64_t passed = 0, failed = 0, by_size[3] = {0, 0, 0};
  std::uint64_t acks = 0, elections = 0, reads = 0;
  for (std::uint64_t k = 0; k < count; ++k) {
    sim::RunOptions options = base;
    options.seed = first + k;
    sim::RunResult r = sim::run_simulation(options);
    ++by_size[(r.size - 3) / 2];
    acks += r.acks;
    elections += r.elections;
    reads += r.reads;
    if (r.ok) {
      ++passed;
    } else {
      if (failed == 0) std::cout << r.report;
      ++failed;
      std::cout << "FAIL seed " << r.seed << " (" << r.size << " nodes, tick " << r.tick << "): " << r.invariant
                << " -- replay: " << sim::replay_command(options) << std::endl;
    }
    if ((k + 1) % 100 == 0 && k + 1 < count) {
      std::printf("progress: %llu/%llu runs, %llu failed, %.1f s\n", static_cast<unsigned long long>(k + 1),
                  static_cast<unsigned long long>(count), static_cast<unsigned long long>(failed), elapsed());
      std::fflush(stdout);
    }
  }
  std::printf("simulation: %llu passed, %llu failed (sizes 3/5/7: %llu/%llu/%llu), %.1f s "
              "[%llu leaders elected, %llu writes acknowledged, %llu reads served]\n",
              static_cast<unsigned long long>(passed), static_cast<unsigned long long>(failed),
              static_cast<unsigned long long>(by_size[0]), static_cast<unsigned long long>(by_size[1]),
              static_cast<unsigned long long>(by_size[2]), elapsed(), static_cast<unsigned long long>(elections),
              static_cast<unsigned long long>(acks), static_cast<unsigned long long>(reads));
  return failed == 0 ? 0 : 1;
}
