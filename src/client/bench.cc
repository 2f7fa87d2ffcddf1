#include "client/bench.h"


#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/kv_client.h"

namespace client {
namespace {

using Clock = std::chrono::steady_clock;

// Per-thread results, merged after the threads end so the hot loop shares
// nothing but a few relaxed counters for the progress line.
struct Worker {
  std::vector<double> latencies_ms;
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  std::uint64_t unavailable = 0;
  std::uint64_t rejected = 0;
  std::uint64_t cut_off = 0;
};

struct Shared {
  std::atomic<std::uint64_t> ops{0};
  std::atomic<std::uint64_t> errors{0};
};

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest-rank: the smallest sample with at least p of all samples at or below it.
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

void run_worker(KvClient& kv, const BenchOptions& options, std::uint64_t seed,
                Clock::time_point end, Worker& out, Shared& shared) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> key_dist(0, options.keys - 1);
  std::bernoulli_distribution is_write(options.write_ratio);
  std::uniform_int_distribution<int> letter('a', 'z');
  std::string value(static_cast<std::size_t>(options.value_bytes), 'x');
  kv.set_hard_stop(end);  // no request outlives the run

  while (Clock::now() < end) {
    const std::string key = "bench-key-" + std::to_string(key_dist(rng));
    const bool write = is_write(rng);
    Result r;
    if (write) {
      // A fresh first letter makes each write distinguishable when debugging.
      if (!value.empty()) value[0] = static_cast<char>(letter(rng));
      r = kv.set(key, value);
    } else {
      r = kv.get(key);
    }
    switch (r.outcome) {
      case Outcome::Ok:
      case Outcome::CasFailed:  // cannot happen: the bench sends no cas
        out.latencies_ms.push_back(static_cast<double>(r.latency.count()) / 1000.0);
        ++(write ? out.writes : out.reads);
        shared.ops.fetch_add(1, std::memory_order_relaxed);
        break;
      case Outcome::Unavailable:
        if (Clock::now() >= end) {
          ++out.cut_off;  // stopped by the end of the run, not by the cluster
        } else {
          ++out.unavailable;
          shared.errors.fetch_add(1, std::memory_order_relaxed);
        }
        break;
      case Outcome::Rejected:
        ++out.rejected;
        shared.errors.fetch_add(1, std::memory_order_relaxed);
        break;
    }
  }
}

}  // namespace

BenchReport run_bench(const config::ClientConfig& config, const BenchOptions& options) {
  if (options.clients < 1) throw std::invalid_argument("--clients must be at least 1");
  if (!(options.duration_s > 0)) throw std::invalid_argument("--duration must be positive");
  if (!(options.write_ratio >= 0 && options.write_ratio <= 1)) {
    throw std::invalid_argument("--write-ratio must be between 0 and 1");
  }
  if (options.keys < 1) throw std::invalid_argument("--keys must be at least 1");
  if (options.value_bytes < 0 || static_cast<std::size_t>(options.value_bytes) > wire::kMaxValueBytes) {
    throw std::invalid_argument("--value-bytes must be between 0 and " +
                                std::to_string(wire::kMaxValueBytes));
  }

  // Each KvClient adds a random suffix to its id, so workers, concurrent
  // benches and earlier runs never share a session.
  std::vector<std::unique_ptr<KvClient>> kvs;
  std::mt19937_64 seeder(options.seed);
  for (int k = 0; k < options.clients; ++k) {
    const std::string id = config.id + "-b" + std::to_string(k);
    kvs.push_back(std::make_unique<KvClient>(config, std::nullopt, id, seeder()));
  }

  std::vector<Worker> workers(static_cast<std::size_t>(options.clients));
  Shared shared;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(options.duration_s));
  {
    std::vector<std::jthread> threads;
    threads.reserve(kvs.size());
    for (std::size_t k = 0; k < kvs.size(); ++k) {
      threads.emplace_back(run_worker, std::ref(*kvs[k]), std::cref(options), seeder(), end,
                           std::ref(workers[k]), std::ref(shared));
    }

    // Progress: wake at each whole second of the run, never past its end.
    std::uint64_t last_ops = 0;
    for (int second = 1;; ++second) {
      const auto tick = start + std::chrono::seconds(second);
      if (tick > end) break;
      std::this_thread::sleep_until(tick);
      const std::uint64_t ops = shared.ops.load(std::memory_order_relaxed);
      if (options.progress) {
        std::fprintf(stderr, "[%3ds] ops %llu  %llu ops/s  errors %llu\n", second,
                     static_cast<unsigned long long>(ops),
                     static_cast<unsigned long long>(ops - last_ops),
                     static_cast<unsigned long long>(shared.errors.load(std::memory_order_relaxed)));
      }
      last_ops = ops;
    }
  }  // jthreads join here; each stops at `end` (plus at most one receive wait)
  const auto elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  BenchReport report;
  report.clients = options.clients;
  report.elapsed_s = elapsed;
  std::vector<double> all;
  for (const Worker& w : workers) {
    all.insert(all.end(), w.latencies_ms.begin(), w.latencies_ms.end());
    report.reads += w.reads;
    report.writes += w.writes;
    report.unavailable += w.unavailable;
    report.rejected += w.rejected;
    report.cut_off += w.cut_off;
  }
  std::sort(all.begin(), all.end());
  report.ok_ops = all.size();
  // Throughput over the nominal duration: the last requests were cut off at
  // `end`, so the few ms of joining afterwards did no work.
  report.throughput = static_cast<double>(report.ok_ops) / options.duration_s;
  if (!all.empty()) {
    report.p50_ms = percentile(all, 0.50);
    report.p90_ms = percentile(all, 0.90);
    report.p99_ms = percentile(all, 0.99);
    report.p999_ms = percentile(all, 0.999);
    report.max_ms = all.back();
    report.mean_ms = std::accumulate(all.begin(), all.end(), 0.0) / static_cast<double>(all.size());
  }
  return report;
}

std::string format_report(const BenchReport& r) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "clients:     %d\nduration:    %.2f s\n", r.clients, r.elapsed_s);
  out << line;
  std::snprintf(line, sizeof line, "total ops:   %llu (%llu gets, %llu sets)\n",
                static_cast<unsigned long long>(r.ok_ops), static_cast<unsigned long long>(r.reads),
                static_cast<unsigned long long>(r.writes));
  out << line;
  std::snprintf(line, sizeof line, "throughput:  %.1f ops/s\n", r.throughput);
  out << line;
  std::snprintf(line, sizeof line,
                "latency ms:  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
                r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms, r.mean_ms);
  out << line;
  std::snprintf(line, sizeof line,
                "errors:      unavailable %llu  rejected %llu  cas_failed n/a\n",
                static_cast<unsigned long long>(r.unavailable),
                static_cast<unsigned long long>(r.rejected));
  out << line;
  if (r.cut_off > 0) {
    std::snprintf(line, sizeof line, "unfinished:  %llu (cut off by the end of the run)\n",
                  static_cast<unsigned long long>(r.cut_off));
    out << line;
  }
  return out.str();
}

std::string report_json(const BenchReport& r) {
  nlohmann::json j;
  j["clients"] = r.clients;
  j["elapsed_s"] = r.elapsed_s;
  j["ops"] = r.ok_ops;
  j["gets"] = r.reads;
  j["sets"] = r.writes;
  j["throughput"] = r.throughput;
  j["latency_ms"] = {{"p50", r.p50_ms}, {"p90", r.p90_ms}, {"p99", r.p99_ms},
                     {"p99.9", r.p999_ms}, {"max", r.max_ms}, {"mean", r.mean_ms}};
  j["errors"] = {{"unavailable", r.unavailable}, {"rejected", r.rejected}};
  j["cut_off"] = r.cut_off;
  return j.dump();
}

}  // namespace client
