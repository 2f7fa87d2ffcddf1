#include "simulation.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <sstream>
#include <vector>

#include "checker.h"
#include "clients.h"
#include "cluster.h"
#include "common.h"
#include "linearizable.h"
#include "network.h"
#include "trace.h"

namespace sim {

int cluster_size_for_seed(std::uint64_t seed) {
  static const int sizes[3] = {3, 5, 7};
  return sizes[(seed + 2) % 3];  // seeds 1, 2, 3 -> 3, 5, 7 nodes
}

std::string replay_command(const RunOptions& options) {
  std::string cmd = "sim --seed " + std::to_string(options.seed);
  if (options.long_mode) cmd += " --long";
  if (options.safety_ticks > 0) cmd += " --ticks " + std::to_string(options.safety_ticks);
  return cmd;
}

namespace {

// Everything about a run that the seed decides before it starts.
struct RunParams {
  int size = 3;
  std::int64_t safety_ticks = 0;
  NetworkFaults net;
  double partition_rate = 0;  // per tick, while no partition is active
  int partition_ticks_max = 0;
  double crash_rate = 0;      // per tick
  int down_ticks_max = 0;
  double mid_ready_crash = 0;  // share of crashes that strike inside a Ready
  double pause_rate = 0;      // per tick
  int pause_ticks_max = 0;
  double clock_skew = 0;      // a node skips up to this share of its ticks
  int clients = 3;            // each with one request at a time
  int keys = 3;
  double op_rate = 0;         // per idle client and tick
  double read_share = 0;      // of operations: linearizable gets
  double ready_now = 1;       // share of Readies handled right after their input
  std::size_t max_append_entries = 512;
  int max_inflight = 64;
  // Snapshots (thesis ch. 5): the driver's entry threshold (0: off), the
  // entries kept behind a snapshot, chunking, and admin requests per tick.
  std::uint64_t snapshot_threshold = 0;
  std::uint64_t snapshot_trailing = 0;
  std::size_t snapshot_chunk_bytes = 256;
  std::size_t snapshot_inflight_chunks = 4;
  double snapshot_rate = 0;

  bool snapshots() const { return snapshot_threshold > 0 || snapshot_rate > 0; }

  std::string describe() const {
    char buf[800];
    std::snprintf(buf, sizeof buf,
                  "%d nodes, %lld safety ticks; loss %.0f%%, dup %.0f%%, delay 0..%d (+%d..%d at %.1f%%); "
                  "partitions %.2f%%/tick (<= %d ticks); crashes %.2f%%/tick (down <= %d, %.0f%% inside a Ready); "
                  "pauses %.2f%%/tick (<= %d ticks); clock skew <= %.0f%%; %d clients on %d keys, %.2f ops/tick each, "
                  "%.0f%% reads; "
                  "Ready at once %.0f%%; append batch %zu, inflight %d; snapshot every %llu entries "
                  "(keep %llu), admin %.2f%%/tick, chunks of %zu x %zu",
                  size, static_cast<long long>(safety_ticks), net.loss * 100, net.duplicate * 100, net.delay_max,
                  net.long_delay_min, net.long_delay_max, net.long_delay * 100, partition_rate * 100,
                  partition_ticks_max, crash_rate * 100, down_ticks_max, mid_ready_crash * 100, pause_rate * 100,
                  pause_ticks_max, clock_skew * 100, clients, keys, op_rate, read_share * 100, ready_now * 100, max_append_entries,
                  max_inflight, static_cast<unsigned long long>(snapshot_threshold),
                  static_cast<unsigned long long>(snapshot_trailing), snapshot_rate * 100, snapshot_chunk_bytes,
                  snapshot_inflight_chunks);
    return buf;
  }
};

RunParams make_params(const RunOptions& o) {
  Rng r(derive_seed(o.seed, 1));
  RunParams p;
  p.size = cluster_size_for_seed(o.seed);
  if (o.safety_ticks > 0) {
    p.safety_ticks = o.safety_ticks;
    r.next();
  } else {
    p.safety_ticks = o.long_mode ? r.between(6000, 12000) : r.between(1500, 3000);
  }
  // Each fault is absent from some runs, so calm runs and stormy runs both occur.
  p.net.loss = r.chance(0.2) ? 0 : r.uniform(0, 0.3);
  p.net.duplicate = r.chance(0.3) ? 0 : r.uniform(0, 0.1);
  p.net.delay_max = static_cast<int>(r.between(0, 5));
  p.net.long_delay = r.chance(0.3) ? 0 : r.uniform(0, 0.05);
  p.partition_rate = r.chance(0.2) ? 0 : r.uniform(0.002, 0.02);
  p.partition_ticks_max = static_cast<int>(r.between(20, 300));
  p.crash_rate = r.chance(0.2) ? 0 : r.uniform(0.001, 0.01);
  p.down_ticks_max = static_cast<int>(r.between(5, 200));
  p.mid_ready_crash = r.uniform(0.2, 0.8);
  p.pause_rate = r.chance(0.4) ? 0 : r.uniform(0.001, 0.01);
  p.pause_ticks_max = static_cast<int>(r.between(5, 100));
  p.clock_skew = r.chance(0.5) ? 0 : r.uniform(0, 0.2);
  p.clients = static_cast<int>(r.between(1, 8));
  p.keys = static_cast<int>(r.between(1, 4));
  p.op_rate = r.uniform(0.05, 0.6);
  p.read_share = r.uniform(0.0, 0.5);
  p.ready_now = r.chance(0.3) ? 1.0 : r.uniform(0.3, 1.0);
  // Small batches and windows exercise flow control, but replication must
  // still outpace the clients or the liveness phase cannot catch up.
  static const std::size_t batches[4] = {1, 4, 64, 512};
  static const int inflight[3] = {1, 4, 64};
  p.max_append_entries = batches[r.below(4)];
  p.max_inflight = inflight[r.below(3)];
  if (p.max_append_entries * static_cast<std::size_t>(p.max_inflight) < 16) p.max_inflight = 16;
  // Aggressive compaction: every few entries, so lagging and restarted
  // nodes catch up by install_snapshot under every fault.
  p.snapshot_threshold = r.chance(0.2) ? 0 : static_cast<std::uint64_t>(r.between(2, 40));
  p.snapshot_trailing = r.chance(0.5) ? 0 : static_cast<std::uint64_t>(r.between(1, 10));
  static const std::size_t chunks[3] = {16, 128, 1024};
  p.snapshot_chunk_bytes = chunks[r.below(3)];
  p.snapshot_inflight_chunks = static_cast<std::size_t>(r.between(1, 4));
  p.snapshot_rate = r.chance(0.5) ? 0 : r.uniform(0.002, 0.03);
  return p;
}

class Simulation {
 public:
  explicit Simulation(const RunOptions& options)
      : options_(options),
        params_(make_params(options)),
        trace_(clock_, options.trace_events, options.verbose),
        network_(params_.size, derive_seed(options.seed, 2), clock_, trace_),
        checker_(params_.size, clock_, trace_),
        clients_(client_params(), derive_seed(options.seed, 4), clock_, trace_, checker_),
        cluster_(cluster_options(), clock_, trace_, network_, checker_, clients_),
        faults_(derive_seed(options.seed, 3)) {}

  RunResult run();

 private:
  ClusterOptions cluster_options() const {
    ClusterOptions c;
    c.seed = options_.seed;
    c.size = params_.size;
    c.heartbeat_ticks = 2;
    c.election_ticks_min = 10;
    c.election_ticks_max = 20;
    c.max_append_entries = params_.max_append_entries;
    c.max_inflight_appends = params_.max_inflight;
    c.ready_now = params_.ready_now;
    c.snapshot_threshold_entries = params_.snapshot_threshold;
    c.snapshot_trailing_entries = params_.snapshot_trailing;
    c.max_snapshot_chunk_bytes = params_.snapshot_chunk_bytes;
    c.max_inflight_snapshot_chunks = params_.snapshot_inflight_chunks;
    return c;
  }

  ClientParams client_params() const {
    ClientParams c;
    c.nodes = params_.size;
    c.clients = params_.clients;
    c.keys = params_.keys;
    c.op_rate = params_.op_rate;
    c.read_share = params_.read_share;
    return c;
  }

  void inject_faults();
  void heal_everything();
  bool liveness_reached();
  std::string status() const;

  RunOptions options_;
  RunParams params_;
  Clock clock_;
  Trace trace_;
  Network network_;
  Checker checker_;
  Clients clients_;
  Cluster cluster_;
  Rng faults_;
  std::int64_t partition_end_ = 0;
  bool in_liveness_ = false;
};

void Simulation::inject_faults() {
  const int n = cluster_.size();
  const std::int64_t now = clock_.tick;

  // Partitions come and go; one shape at a time.
  if (network_.partitioned()) {
    if (now >= partition_end_) network_.heal();
  } else if (params_.partition_rate > 0 && faults_.chance(params_.partition_rate)) {
    network_.set_partition(random_partition(faults_, n, cluster_.current_leader()));
    partition_end_ = now + faults_.between(10, params_.partition_ticks_max);
  }

  // Crashes: the leader is a favourite victim; some crashes strike in the
  // middle of handling a Ready (see CrashPoint).
  if (params_.crash_rate > 0 && faults_.chance(params_.crash_rate)) {
    std::vector<int> candidates;
    for (int i = 0; i < n; ++i) {
      if (cluster_.node(i).alive() && cluster_.node(i).crash_at_ready == CrashPoint::None) candidates.push_back(i);
    }
    if (!candidates.empty()) {
      int leader = cluster_.current_leader();
      int victim = candidates[faults_.below(candidates.size())];
      if (leader >= 0 && cluster_.node(leader).crash_at_ready == CrashPoint::None && faults_.chance(0.3)) {
        victim = leader;
      }
      std::int64_t down = faults_.between(1, params_.down_ticks_max);
      CrashPoint where = CrashPoint::None;
      if (faults_.chance(params_.mid_ready_crash)) {
        // AfterSnapshot waits for the victim's next snapshot: only where there are any.
        where = static_cast<CrashPoint>(1 + faults_.below(params_.snapshots() ? 5 : 4));
      }
      cluster_.crash(victim, down, where);
    }
  }

  // The admin's `./client snapshot`: a node snapshots now, whatever its thresholds.
  if (params_.snapshot_rate > 0 && faults_.chance(params_.snapshot_rate)) {
    const int i = static_cast<int>(faults_.below(static_cast<std::uint64_t>(n)));
    cluster_.take_snapshot(i);
  }

  // Pauses: a frozen process that comes back with stale state.
  if (params_.pause_rate > 0 && faults_.chance(params_.pause_rate)) {
    std::vector<int> candidates;
    for (int i = 0; i < n; ++i) {
      if (cluster_.node(i).runnable()) candidates.push_back(i);
    }
    if (!candidates.empty()) {
      int victim = candidates[faults_.below(candidates.size())];
      cluster_.pause(victim, now + faults_.between(1, params_.pause_ticks_max), faults_.chance(0.5));
    }
  }
}

void Simulation::heal_everything() {
  in_liveness_ = true;
  trace_.info("liveness phase: healing every fault");
  network_.heal();
  NetworkFaults calm;
  calm.delay_max = std::min(params_.net.delay_max, 2);
  network_.set_faults(calm);
  clients_.set_faults(calm);
  for (int i = 0; i < cluster_.size(); ++i) {
    Node& node = cluster_.node(i);
    node.crash_at_ready = CrashPoint::None;
    if (!node.alive()) cluster_.restart(i);
    if (node.paused) cluster_.resume(i);
  }
}

// Done when the probe write (a client's, through the leader's driver) is
// acknowledged and applied by every node, every commit index is the same,
// and there is a leader.
bool Simulation::liveness_reached() {
  const int leader = cluster_.current_leader();
  const std::optional<raft::Index> probe = clients_.probe_index();
  if (leader < 0 || !probe) return false;
  const raft::Index commit = cluster_.node(leader).core().commit_index();
  for (int i = 0; i < cluster_.size(); ++i) {
    const Node& node = cluster_.node(i);
    if (!node.runnable() || node.applied() < *probe || node.core().commit_index() != commit) return false;
  }
  return true;
}

std::string Simulation::status() const {
  std::ostringstream out;
  for (int i = 0; i < cluster_.size(); ++i) {
    const Node& n = cluster_.node(i);
    out << "    " << n.id << ": ";
    if (!n.alive()) {
      out << "crashed (restart at tick " << n.restart_at << ")";
    } else {
      const raft::Raft& c = n.core();
      out << raft::to_string(c.role()) << " term " << c.current_term() << " vote "
          << (c.voted_for().empty() ? "-" : c.voted_for()) << " leader "
          << (c.leader_id().empty() ? "-" : c.leader_id()) << ", commit " << c.commit_index() << ", applied "
          << n.applied() << ", last (i" << c.log().last_index() << ",t" << c.log().last_term() << ")";
      if (n.paused) out << ", paused until tick " << n.paused_until;
    }
    out << "; disk term " << n.disk.hard_state.current_term << ", entries " << n.disk.first_index << ".." << n.disk.last_index() << ", snapshot " << n.disk.snapshot_index() << "\n";
  }
  out << "    network: " << network_.in_flight() << " in flight"
      << (network_.partitioned() ? ", partition " + network_.partition_description() : std::string()) << "\n";
  out << clients_.status();
  return out.str();
}

RunResult Simulation::run() {
  RunResult result;
  result.seed = options_.seed;
  result.size = params_.size;
  if (options_.verbose) std::cout << "seed " << options_.seed << ": " << params_.describe() << "\n";
  try {
    network_.set_faults(params_.net);
    clients_.set_faults(params_.net);
    Rng skew(derive_seed(options_.seed, 5));
    for (int i = 0; i < cluster_.size(); ++i) cluster_.node(i).tick_skip = skew.uniform(0, params_.clock_skew);
    cluster_.start();

    for (std::int64_t t = 1; t <= params_.safety_ticks; ++t) {
      clock_.tick = t;
      inject_faults();
      clients_.tick(cluster_, true);
      cluster_.advance_time(true);
    }

    heal_everything();
    clients_.start_probe(cluster_.current_leader(), "live-" + std::to_string(options_.seed));
    const std::int64_t deadline = clock_.tick + options_.liveness_ticks;
    for (;;) {
      if (clock_.tick >= deadline) {
        throw Violation{"liveness: after healing, a leader commits a fresh write on every node within " +
                            std::to_string(options_.liveness_ticks) + " ticks",
                        "state at the deadline:\n" + status()};
      }
      ++clock_.tick;
      clients_.tick(cluster_, false);
      cluster_.advance_time(false);
      if (liveness_reached()) break;
    }
    check_linearizable(clients_.finish());
  } catch (const Violation& v) {
    result.ok = false;
    result.invariant = v.invariant;
    result.details = v.details;
  } catch (const std::exception& e) {
    result.ok = false;
    result.invariant = "the core never throws on valid input";
    result.details = e.what();
  }
  result.tick = clock_.tick;
  result.step = clock_.step;
  result.acks = clients_.acks();
  result.reads = clients_.reads_served();
  result.elections = checker_.elections();
  result.committed = checker_.committed_index();
  result.messages = network_.sent();
  if (!result.ok) {
    std::ostringstream out;
    out << "FAIL seed " << options_.seed << ": " << params_.size << " nodes, tick " << clock_.tick << " ("
        << (in_liveness_ ? "liveness" : "safety") << " phase), step " << clock_.step << "\n";
    out << "  invariant: " << result.invariant << "\n";
    out << "  details:   " << result.details << "\n";
    out << "  run:       " << params_.describe() << "\n";
    out << "  nodes:\n" << status();
    out << "  last events (oldest first):\n";
    trace_.dump(out);
    out << "  replay:    " << replay_command(options_) << "   (add --verbose to print every event)\n";
    result.report = out.str();
  }
  return result;
}

}  // namespace

RunResult run_simulation(const RunOptions& options) {
  Simulation simulation(options);
  return simulation.run();
}

}  // namespace sim
