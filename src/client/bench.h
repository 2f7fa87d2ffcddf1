// Closed-loop load generator: N concurrent clients, each with its own client
// id, socket and thread, issuing gets and sets for a fixed duration.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "config/config.h"

namespace client {

struct BenchOptions {
  int clients = 32;
  double duration_s = 10.0;
  double write_ratio = 0.5;  // fraction of operations that are sets; the rest are gets
  int keys = 1000;           // keys are drawn uniformly from bench-key-0 .. keys-1
  int value_bytes = 100;
  std::uint64_t seed = 1;
  bool progress = true;  // one progress line per second on stderr
};

struct BenchReport {
  int clients = 0;
  double elapsed_s = 0;
  std::uint64_t ok_ops = 0;  // successful operations
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  double throughput = 0;  // ok_ops per second
  // Latency of successful operations, milliseconds.
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
  // Errors by kind. The bench issues no cas, so there is no cas_failed count.
  std::uint64_t unavailable = 0;
  std::uint64_t rejected = 0;
  std::uint64_t cut_off = 0;  // unfinished when the duration ended: not errors
  std::uint64_t errors() const { return unavailable + rejected; }
};

// Throws std::invalid_argument for nonsensical options, and whatever
// KvClient's constructor throws (e.g. std::runtime_error for a bad address).
BenchReport run_bench(const config::ClientConfig& config, const BenchOptions& options);

std::string format_report(const BenchReport& report);  // human-readable, multi-line
std::string report_json(const BenchReport& report);    // one JSON object, no newline

}  // namespace client
