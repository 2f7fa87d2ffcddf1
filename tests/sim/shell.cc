#include "shell.h"

#include "checker.h"
#include "clients.h"

namespace sim {

namespace {

[[noreturn]] void shell_violation(const std::string& invariant, const std::string& details) {
  throw Violation{invariant, details};
}

// Bound on Readies per process_ready(): a core that never drains its Ready
// is a bug (TIGER_STYLE: everything has a limit).
constexpr int kMaxReadyRounds = 64;

}  // namespace

Shell::Shell(Node& node, int cluster_size, Clock& clock, Trace& trace, Network& network, Checker& checker,
             Clients& clients, Rng& rng)
    : node_(node),
      size_(cluster_size),
      clock_(clock),
      trace_(trace),
      network_(network),
      checker_(checker),
      clients_(clients),
      rng_(rng) {}

void Shell::maybe_crash(CrashPoint point) const {
  if (node_.crash_at_ready == point) throw SimulatedCrash{point};
}

// ---------------------------------------------------------------- disk ----

void Shell::save_hard_state(const raft::HardState& state) {
  Disk& d = node_.disk;
  d.hard_state = state;  // atomic: write, fsync, rename
  const int vote = node_index(d.hard_state.voted_for, size_);
  trace_.event(EventKind::Persist, node_.index, d.hard_state.current_term, static_cast<std::uint64_t>(vote + 1));
  checker_.after_persist(node_, true, 0);
}

void Shell::append(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  Disk& d = node_.disk;
  const raft::Index from = entries.front().index;
  if (from == 0 || from > d.entries.size() + 1) {
    shell_violation("Ready.entries continue the stored log",
                    node_.id + " handed entries from index " + std::to_string(from) + " with " +
                        std::to_string(d.entries.size()) + " entries stored");
  }
  for (std::size_t k = 0; k < entries.size(); ++k) {
    if (entries[k].index != from + k) {
      shell_violation("Ready.entries are contiguous",
                      node_.id + " handed index " + std::to_string(entries[k].index) + " at position " +
                          std::to_string(k) + " of a batch starting at " + std::to_string(from));
    }
  }
  // Entries rewritten identically are already durable and cannot tear.
  raft::Index differs = from;
  while (differs - from < entries.size() && differs <= d.entries.size() &&
         d.entries[differs - 1] == entries[differs - from]) {
    ++differs;
  }
  d.entries.resize(from - 1);
  d.entries.insert(d.entries.end(), entries.begin(), entries.end());
  const bool torn = node_.crash_at_ready == CrashPoint::TornPersist;
  if (torn && d.entries.size() > differs - 1) {
    // Only a prefix of the new records reached the platter.
    d.entries.resize(static_cast<std::size_t>(
        rng_.between(static_cast<std::int64_t>(differs - 1), static_cast<std::int64_t>(d.entries.size()) - 1)));
  }
  const int vote = node_index(d.hard_state.voted_for, size_);
  trace_.event(EventKind::Persist, node_.index, d.hard_state.current_term, static_cast<std::uint64_t>(vote + 1),
               from, d.entries.size(), torn ? "(torn)" : "");
  checker_.after_persist(node_, false, from);
  if (torn) throw SimulatedCrash{CrashPoint::TornPersist};
}

// ------------------------------------------------------------- network ----

void Shell::send(const raft::Message& m) {
  checker_.on_send(node_, m);
  network_.send(node_.index, node_index(m.to, size_), m);
}

void Shell::reply(const net::Endpoint& to, const wire::ClientReply& reply) {
  clients_.on_reply_sent(node_.index, to, reply);
}

// --------------------------------------------------------------- hooks ----

void Shell::on_ready(const raft::Ready& rd) {
  ++clock_.step;
  checker_.after_step(node_);
  if (++ready_rounds_ > kMaxReadyRounds) {
    shell_violation("a Ready drains: after advance(), has_ready() eventually turns false",
                    node_.id + " still has a Ready after " + std::to_string(kMaxReadyRounds) + " rounds");
  }
  maybe_crash(CrashPoint::BeforePersist);
  for (const raft::ReadState& r : rd.reads) {
    auto it = node_.reads.find(r.ctx);
    if (it == node_.reads.end()) {
      shell_violation("each read is answered at most once, by the node it was issued to",
                      node_.id + " returned a ReadState for ctx " + std::to_string(r.ctx) +
                          ", which is not pending there");
    }
    checker_.on_read_state(node_, r, it->second);
    node_.reads.erase(it);
    trace_.event(EventKind::ReadServe, node_.index, r.ctx, r.index);
  }
  for (std::uint64_t ctx : rd.failed_reads) {
    if (node_.reads.erase(ctx) == 0) {
      shell_violation("each read is answered at most once, by the node it was issued to",
                      node_.id + " failed read ctx " + std::to_string(ctx) + ", which is not pending there");
    }
    trace_.event(EventKind::ReadFail, node_.index, ctx);
  }
}

void Shell::on_applied(const raft::Entry& entry, const kv::Command* command, const kv::Result* result) {
  checker_.on_apply(node_, entry);
  checker_.on_kv_apply(node_, entry, command, result);
}

void Shell::on_advanced() {
  ++clock_.step;
  checker_.after_step(node_);
}

void Shell::on_proposed(raft::Index index, const std::string& data) {
  checker_.on_propose(node_, data, index);
  trace_.event(EventKind::Propose, node_.index, index, 0, 0, 0, data);
}

void Shell::on_read_index(std::uint64_t ctx) {
  const raft::Index floor = checker_.max_acked_index();
  node_.reads[ctx] = IssuedRead{floor, clock_.tick, node_.core().role() == raft::Role::Leader};
  trace_.event(EventKind::ReadIssue, node_.index, ctx, floor);
}

}  // namespace sim
