#include "cluster.h"

#include <algorithm>
#include <numeric>

#include "checker.h"
#include "shell.h"

namespace sim {

const char* to_string(CrashPoint point) {
  switch (point) {
    case CrashPoint::None: return "between steps";
    case CrashPoint::BeforePersist: return "in a Ready, before persisting";
    case CrashPoint::TornPersist: return "in a Ready, during the entry append (torn write)";
    case CrashPoint::AfterPersist: return "in a Ready, after persisting, before sending acks and votes";
    case CrashPoint::AfterSend: return "in a Ready, after sending, before applying";
    case CrashPoint::AfterSnapshot: return "after saving a snapshot, before compacting the log";
  }
  return "?";
}

namespace {

// Bound on traffic: a core that floods the network is a bug (TIGER_STYLE:
// everything has a limit). The bound on Readies per turn is the shell's.
constexpr std::size_t kMaxInFlight = 200000;

}  // namespace

Cluster::Cluster(const ClusterOptions& options, Clock& clock, Trace& trace, Network& network, Checker& checker,
                 Clients& clients)
    : options_(options),
      clock_(clock),
      trace_(trace),
      network_(network),
      checker_(checker),
      rng_(derive_seed(options.seed, 30)),
      quiet_("sim", logging::LogLevel::Error) {
  for (int i = 0; i < options.size; ++i) {
    auto n = std::make_unique<Node>();
    n->index = i;
    n->id = node_name(i);
    shells_.push_back(std::make_unique<Shell>(*n, options.size, clock, trace, network, checker, clients, rng_));
    nodes_.push_back(std::move(n));
  }
}

Cluster::~Cluster() = default;

raft::Config Cluster::make_config(int i) const {
  raft::Config c;
  c.id = node_name(i);
  for (int j = 0; j < size(); ++j) {
    if (j != i) c.peers.push_back(node_name(j));
  }
  c.heartbeat_ticks = options_.heartbeat_ticks;
  c.election_ticks_min = options_.election_ticks_min;
  c.election_ticks_max = options_.election_ticks_max;
  c.max_append_entries = options_.max_append_entries;
  c.max_inflight_appends = options_.max_inflight_appends;
  c.max_snapshot_chunk_bytes = options_.max_snapshot_chunk_bytes;
  c.max_inflight_snapshot_chunks = options_.max_inflight_snapshot_chunks;
  // A fresh, seed-derived stream per node and incarnation.
  c.rng_seed = derive_seed(options_.seed, 1000 + static_cast<std::uint64_t>(i) * 100003 + node(i).incarnation);
  return c;
}

void Cluster::boot(int i) {
  Node& n = node(i);
  ++n.incarnation;
  n.paused = false;
  n.crash_at_ready = CrashPoint::None;
  n.reads.clear();
  Shell& shell = *shells_[i];
  // The node's own recovery rule (raft.h): the log after the snapshot, and
  // a stale suffix a crash left behind an installed snapshot is reset.
  raft::Recovered recovered;
  recovered.hard_state = n.disk.hard_state;
  recovered.snapshot = n.disk.snapshot;
  if (n.disk.snapshot) {
    bool discarded = false;
    const raft::Index after = n.disk.snapshot->meta.index;
    recovered.entries = raft::entries_after_snapshot(n.disk.snapshot->meta, n.disk.entries, &discarded);
    // As storage/recovery.cc: entries_after_snapshot says nothing about an
    // empty log, and an empty log that does not start right after the
    // snapshot (a crash after saving an installed snapshot, before the
    // reset) must be reset too, or the next append would not continue it.
    const bool continues = !n.disk.entries.empty() || n.disk.first_index == after + 1;
    if (discarded || !continues) shell.reset_log(after);
  } else {
    recovered.entries = n.disk.entries;
  }
  node::DriverOptions options;
  options.snapshot_threshold_entries = options_.snapshot_threshold_entries;
  options.snapshot_trailing_entries = options_.snapshot_trailing_entries;
  n.driver = std::make_unique<node::Driver>(make_config(i), std::move(recovered), shell, shell, quiet_, options, &shell);
  ++clock_.step;
  checker_.on_boot(n);
  checker_.after_step(n);
}

void Cluster::start() {
  for (int i = 0; i < size(); ++i) boot(i);
}

void Cluster::restart(int i) {
  Node& n = node(i);
  if (n.alive()) return;
  boot(i);
  trace_.event(EventKind::Restart, i, 0, 0, 0, 0,
               "from disk: term " + std::to_string(n.disk.hard_state.current_term) + ", " +
                   std::to_string(n.disk.entries.size()) + " entries from " + std::to_string(n.disk.first_index) +
                   ", snapshot " + std::to_string(n.disk.snapshot_index()));
}

void Cluster::crash(int i, std::int64_t down_ticks, CrashPoint where) {
  Node& n = node(i);
  if (!n.alive()) return;
  if (where != CrashPoint::None) {
    // Happens when the node next handles a Ready (see handle_ready).
    n.crash_at_ready = where;
    n.crash_down_ticks = down_ticks;
    return;
  }
  crash_now(n, down_ticks, to_string(where));
}

void Cluster::crash_now(Node& n, std::int64_t down_ticks, const char* how) {
  trace_.event(EventKind::Crash, n.index, 0, 0, 0, 0, std::string(how) + ", down for " + std::to_string(down_ticks) + " ticks");
  n.driver.reset();  // with it the pending client requests: the clients time out
  n.paused = false;
  n.crash_at_ready = CrashPoint::None;
  n.restart_at = clock_.tick + std::max<std::int64_t>(1, down_ticks);
  n.reads.clear();
  checker_.on_crash(n);
}

void Cluster::pause(int i, std::int64_t until, bool hold_messages) {
  Node& n = node(i);
  if (!n.runnable()) return;
  n.paused = true;
  n.paused_until = until;
  n.hold_while_paused = hold_messages;
  trace_.event(EventKind::Pause, i, 0, 0, 0, 0,
               std::string("until tick ") + std::to_string(until) + (hold_messages ? ", holding" : ", dropping") +
                   " its messages");
}

void Cluster::resume(int i) {
  Node& n = node(i);
  if (!n.paused) return;
  n.paused = false;
  trace_.event(EventKind::Resume, i);
}

int Cluster::current_leader() const {
  raft::Term top = 0;
  for (const auto& n : nodes_) {
    if (n->alive()) top = std::max(top, n->core().current_term());
  }
  for (const auto& n : nodes_) {
    if (n->alive() && n->core().role() == raft::Role::Leader && n->core().current_term() == top) return n->index;
  }
  return -1;
}

void Cluster::after_input(Node& n) {
  ++clock_.step;
  checker_.after_step(n);
  if (rng_.chance(options_.ready_now)) process_ready(n);
}

void Cluster::flush_readies() {
  for (auto& p : nodes_) {
    if (p->runnable()) process_ready(*p);
  }
}

// The node's own loop (node::Driver::process_ready); a crash the shell
// injects inside a Ready unwinds out of it, and the driver is thrown away.
void Cluster::take_snapshot(int i) {
  Node& n = node(i);
  if (!n.runnable()) return;
  shells_[n.index]->begin_turn();
  try {
    n.driver->take_snapshot();
    ++clock_.step;
    checker_.after_step(n);
  } catch (const SimulatedCrash& crash) {
    crash_now(n, n.crash_down_ticks, to_string(crash.point));
  }
}

void Cluster::process_ready(Node& n) {
  shells_[n.index]->begin_turn();
  try {
    n.driver->process_ready();
  } catch (const SimulatedCrash& crash) {
    crash_now(n, n.crash_down_ticks, to_string(crash.point));
  }
}

void Cluster::advance_time(bool allow_clock_skew) {
  for (int i = 0; i < size(); ++i) {
    Node& n = node(i);
    if (!n.alive() && n.restart_at <= clock_.tick) restart(i);
    if (n.paused && n.paused_until <= clock_.tick) resume(i);
  }
  std::vector<int> order(size());
  std::iota(order.begin(), order.end(), 0);
  rng_.shuffle(order);
  for (int i : order) {
    Node& n = node(i);
    if (!n.runnable()) continue;
    if (allow_clock_skew && n.tick_skip > 0 && rng_.chance(n.tick_skip)) continue;  // slow clock
    n.driver->tick();
    after_input(n);
  }
  deliver_due();
  flush_readies();
}

void Cluster::deliver_due() {
  while (std::optional<Envelope> e = network_.pop_due()) {
    Node& n = node(e->to);
    if (!n.alive()) {
      trace_.message(EventKind::Drop, e->from, e->to, e->message, "receiver crashed");
      continue;
    }
    if (n.paused) {
      if (n.hold_while_paused) {
        trace_.message(EventKind::Hold, e->from, e->to, e->message, "receiver paused");
        network_.hold(std::move(*e), n.paused_until);
      } else {
        trace_.message(EventKind::Drop, e->from, e->to, e->message, "receiver paused");
      }
      continue;
    }
    trace_.message(EventKind::Deliver, e->from, e->to, e->message);
    n.driver->step(e->message);
    after_input(n);
    if (network_.in_flight() > kMaxInFlight) {
      throw Violation{"bounded traffic: the cluster does not flood the network",
                      std::to_string(network_.in_flight()) + " messages in flight"};
    }
  }
}

void Cluster::client_request(int i, wire::ClientRequest request, const net::Endpoint& from) {
  Node& n = node(i);
  if (!n.runnable()) return;
  n.driver->client_request(std::move(request), from);
  after_input(n);
}

}  // namespace sim
