#include "cluster.h"

#include <algorithm>
#include <numeric>

#include "checker.h"

namespace sim {

const char* to_string(CrashPoint point) {
  switch (point) {
    case CrashPoint::None: return "between steps";
    case CrashPoint::BeforePersist: return "in a Ready, before persisting";
    case CrashPoint::TornPersist: return "in a Ready, during the entry append (torn write)";
    case CrashPoint::AfterPersist: return "in a Ready, after persisting, before sending";
    case CrashPoint::AfterSend: return "in a Ready, after sending, before applying";
  }
  return "?";
}

namespace {

[[noreturn]] void shell_violation(const std::string& invariant, const std::string& details) {
  throw Violation{invariant, details};
}

// Bounds on work per tick: a core that floods the network or never drains
// its Ready is a bug (TIGER_STYLE: everything has a limit).
constexpr int kMaxReadyRounds = 64;
constexpr std::size_t kMaxInFlight = 200000;

}  // namespace

Cluster::Cluster(const ClusterOptions& options, Clock& clock, Trace& trace, Network& network, Checker& checker)
    : options_(options),
      clock_(clock),
      trace_(trace),
      network_(network),
      checker_(checker),
      rng_(derive_seed(options.seed, 30)) {
  for (int i = 0; i < options.size; ++i) {
    auto n = std::make_unique<Node>();
    n->index = i;
    n->id = node_name(i);
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
  // A fresh, seed-derived stream per node and incarnation.
  c.rng_seed = derive_seed(options_.seed, 1000 + static_cast<std::uint64_t>(i) * 100003 + node(i).incarnation);
  return c;
}

void Cluster::boot(int i) {
  Node& n = node(i);
  ++n.incarnation;
  n.paused = false;
  n.crash_at_ready = CrashPoint::None;
  n.applied = 0;
  n.proposals.clear();
  n.reads.clear();
  n.waiting_reads.clear();
  n.core = std::make_unique<raft::Raft>(make_config(i), raft::Recovered{n.disk.hard_state, n.disk.entries});
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
                   std::to_string(n.disk.entries.size()) + " entries");
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
  n.core.reset();
  n.paused = false;
  n.crash_at_ready = CrashPoint::None;
  n.restart_at = clock_.tick + std::max<std::int64_t>(1, down_ticks);
  n.proposals.clear();  // their outcome is unknown to the client: indefinite
  n.reads.clear();
  n.waiting_reads.clear();
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
    if (n->alive()) top = std::max(top, n->core->current_term());
  }
  for (const auto& n : nodes_) {
    if (n->alive() && n->core->role() == raft::Role::Leader && n->core->current_term() == top) return n->index;
  }
  return -1;
}

void Cluster::after_input(Node& n) {
  ++clock_.step;
  checker_.after_step(n);
  if (rng_.chance(options_.ready_now)) {
    int rounds = 0;
    while (n.alive() && n.core->has_ready()) {
      if (++rounds > kMaxReadyRounds) {
        shell_violation("a Ready drains: after advance(), has_ready() eventually turns false",
                        n.id + " still has a Ready after " + std::to_string(kMaxReadyRounds) + " rounds");
      }
      handle_ready(n);
    }
  }
}

void Cluster::flush_readies() {
  for (auto& p : nodes_) {
    Node& n = *p;
    int rounds = 0;
    while (n.runnable() && n.core->has_ready()) {
      if (++rounds > kMaxReadyRounds) {
        shell_violation("a Ready drains: after advance(), has_ready() eventually turns false",
                        n.id + " still has a Ready after " + std::to_string(kMaxReadyRounds) + " rounds");
      }
      handle_ready(n);
    }
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
    n.core->tick();
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
    n.core->step(e->message);
    after_input(n);
    if (network_.in_flight() > kMaxInFlight) {
      shell_violation("bounded traffic: the cluster does not flood the network",
                      std::to_string(network_.in_flight()) + " messages in flight");
    }
  }
}

// The shell's loop, exactly as raft.h prescribes, with the optional crash
// points of a node scheduled to crash in the middle of a Ready.
void Cluster::handle_ready(Node& n) {
  raft::Ready rd = n.core->ready();
  ++clock_.step;
  checker_.after_step(n);
  const CrashPoint point = n.crash_at_ready;
  auto crash_here = [&] { crash_now(n, n.crash_down_ticks, to_string(point)); };
  if (point == CrashPoint::BeforePersist) return crash_here();

  // 1. Persist.
  persist(n, rd, point == CrashPoint::TornPersist);
  if (point == CrashPoint::TornPersist || point == CrashPoint::AfterPersist) return crash_here();

  // 2. Send.
  for (const raft::Message& m : rd.messages) {
    checker_.on_send(n, m);
    network_.send(n.index, node_index(m.to, size()), m);
  }
  if (point == CrashPoint::AfterSend) return crash_here();

  // 3. Apply, then serve reads.
  for (const raft::Entry& e : rd.committed) apply(n, e);
  for (const raft::ReadState& r : rd.reads) {
    auto it = n.reads.find(r.ctx);
    if (it == n.reads.end()) {
      shell_violation("each read is answered at most once, by the node it was issued to",
                      n.id + " returned a ReadState for ctx " + std::to_string(r.ctx) +
                          ", which is not pending there");
    }
    checker_.on_read_state(n, r, it->second);
    n.reads.erase(it);
    n.waiting_reads.push_back(WaitingRead{r.ctx, r.index});
  }
  serve_reads(n);
  for (std::uint64_t ctx : rd.failed_reads) {
    if (n.reads.erase(ctx) == 0) {
      shell_violation("each read is answered at most once, by the node it was issued to",
                      n.id + " failed read ctx " + std::to_string(ctx) + ", which is not pending there");
    }
    trace_.event(EventKind::ReadFail, n.index, ctx);
  }

  // 4. Done.
  n.core->advance(rd);
  ++clock_.step;
  checker_.after_step(n);
}

void Cluster::persist(Node& n, const raft::Ready& rd, bool torn) {
  Disk& d = n.disk;
  if (rd.hard_state) d.hard_state = *rd.hard_state;  // atomic: write, fsync, rename
  raft::Index first_changed = 0;
  if (!rd.entries.empty()) {
    const raft::Index from = rd.entries.front().index;
    if (from == 0 || from > d.entries.size() + 1) {
      shell_violation("Ready.entries continue the stored log",
                      n.id + " handed entries from index " + std::to_string(from) + " with " +
                          std::to_string(d.entries.size()) + " entries stored");
    }
    for (std::size_t k = 0; k < rd.entries.size(); ++k) {
      if (rd.entries[k].index != from + k) {
        shell_violation("Ready.entries are contiguous",
                        n.id + " handed index " + std::to_string(rd.entries[k].index) + " at position " +
                            std::to_string(k) + " of a batch starting at " + std::to_string(from));
      }
    }
    // Entries rewritten identically are already durable and cannot tear.
    raft::Index differs = from;
    while (differs - from < rd.entries.size() && differs <= d.entries.size() &&
           d.entries[differs - 1] == rd.entries[differs - from]) {
      ++differs;
    }
    d.entries.resize(from - 1);
    d.entries.insert(d.entries.end(), rd.entries.begin(), rd.entries.end());
    if (torn && d.entries.size() > differs - 1) {
      // Only a prefix of the new records reached the platter.
      d.entries.resize(static_cast<std::size_t>(
          rng_.between(static_cast<std::int64_t>(differs - 1), static_cast<std::int64_t>(d.entries.size()) - 1)));
    }
    first_changed = from;
  }
  if (rd.hard_state || first_changed) {
    int vote = node_index(d.hard_state.voted_for, size());
    trace_.event(EventKind::Persist, n.index, d.hard_state.current_term, static_cast<std::uint64_t>(vote + 1),
                 first_changed, first_changed ? d.entries.size() : 0, torn ? "(torn)" : "");
    checker_.after_persist(n, rd.hard_state.has_value(), first_changed);
  }
}

void Cluster::apply(Node& n, const raft::Entry& e) {
  checker_.on_apply(n, e);
  n.applied = e.index;
  // Settle the client writes this node accepted at indexes up to e.index:
  // the one at e.index succeeded iff the entry is the one it proposed.
  while (!n.proposals.empty() && n.proposals.begin()->first <= e.index) {
    auto it = n.proposals.begin();
    if (it->first == e.index && e.type == raft::EntryType::Command && e.data == it->second.data) {
      checker_.on_ack(n, e);
      ++acks_;
      trace_.event(EventKind::Ack, n.index, e.index, e.term, 0, 0, e.data);
    }
    n.proposals.erase(it);
  }
}

void Cluster::serve_reads(Node& n) {
  auto served = std::stable_partition(n.waiting_reads.begin(), n.waiting_reads.end(),
                                      [&](const WaitingRead& r) { return r.index > n.applied; });
  for (auto it = served; it != n.waiting_reads.end(); ++it) {
    ++reads_served_;
    trace_.event(EventKind::ReadServe, n.index, it->ctx, it->index);
  }
  n.waiting_reads.erase(served, n.waiting_reads.end());
}

std::optional<raft::Index> Cluster::propose(int i, const std::string& data) {
  Node& n = node(i);
  if (!n.runnable()) return std::nullopt;
  std::optional<raft::Index> index = n.core->propose(data);
  checker_.on_propose(n, data, index);
  if (index) {
    n.proposals[*index] = Proposal{data, clock_.tick};
    trace_.event(EventKind::Propose, i, *index, 0, 0, 0, data);
  }
  after_input(n);
  return index;
}

void Cluster::read(int i, std::uint64_t ctx, raft::Index acked_floor) {
  Node& n = node(i);
  if (!n.runnable()) return;
  n.reads[ctx] = IssuedRead{acked_floor, clock_.tick, n.core->role() == raft::Role::Leader};
  trace_.event(EventKind::ReadIssue, i, ctx, acked_floor);
  n.core->read_index(ctx);
  after_input(n);
}

}  // namespace sim
