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
  if (from < d.first_index || from > d.last_index() + 1) {
    shell_violation("Ready.entries continue the stored log",
                    node_.id + " handed entries from index " + std::to_string(from) + " with entries " +
                        std::to_string(d.first_index) + ".." + std::to_string(d.last_index()) + " stored");
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
  while (differs - from < entries.size() && differs <= d.last_index() && d.at(differs) == entries[differs - from]) {
    ++differs;
  }
  d.entries.resize(from - d.first_index);
  d.entries.insert(d.entries.end(), entries.begin(), entries.end());
  const bool torn = node_.crash_at_ready == CrashPoint::TornPersist;
  if (torn && d.last_index() > differs - 1) {
    // Only a prefix of the new records reached the platter.
    const auto keep_last = rng_.between(static_cast<std::int64_t>(differs - 1), static_cast<std::int64_t>(d.last_index()) - 1);
    d.entries.resize(static_cast<std::size_t>(static_cast<raft::Index>(keep_last) + 1 - d.first_index));
  }
  const int vote = node_index(d.hard_state.voted_for, size_);
  trace_.event(EventKind::Persist, node_.index, d.hard_state.current_term, static_cast<std::uint64_t>(vote + 1),
               from, d.last_index(), torn ? "(torn)" : "");
  checker_.after_persist(node_, false, from);
  if (torn) throw SimulatedCrash{CrashPoint::TornPersist};
}

// Snapshot files are replaced atomically (temp file, fsync, rename): a crash
// leaves the old one or the new one.
void Shell::save_snapshot(const raft::Snapshot& snapshot) {
  Disk& d = node_.disk;
  if (snapshot.meta.index <= d.snapshot_index()) {
    shell_violation("a saved snapshot is newer than the stored one",
                    node_.id + " saved a snapshot at " + std::to_string(snapshot.meta.index) + " over one at " +
                        std::to_string(d.snapshot_index()));
  }
  d.snapshot = snapshot;
  trace_.event(EventKind::Persist, node_.index, snapshot.meta.term, 0, snapshot.meta.index, snapshot.data->size(),
               "(snapshot)");
  checker_.after_snapshot_persist(node_);
}

void Shell::compact_log(raft::Index through) {
  Disk& d = node_.disk;
  maybe_crash(CrashPoint::AfterSnapshot);
  if (through > d.snapshot_index()) {
    shell_violation("the log is compacted only behind a stored snapshot",
                    node_.id + " compacted through " + std::to_string(through) + " with a snapshot at " +
                        std::to_string(d.snapshot_index()));
  }
  // As a segmented log does, drop whole segments: keep a random few entries.
  raft::Index upto = std::min(through, d.last_index());
  if (upto >= d.first_index) {
    upto -= static_cast<raft::Index>(rng_.between(0, static_cast<std::int64_t>(std::min<raft::Index>(3, upto - d.first_index + 1))));
  }
  if (upto >= d.first_index) {
    d.entries.erase(d.entries.begin(), d.entries.begin() + static_cast<std::ptrdiff_t>(upto + 1 - d.first_index));
    d.first_index = upto + 1;
  }
  checker_.after_persist(node_, false, 0);
}

void Shell::reset_log(raft::Index after) {
  Disk& d = node_.disk;
  maybe_crash(CrashPoint::AfterSnapshot);
  d.entries.clear();
  d.first_index = after + 1;
  trace_.event(EventKind::Persist, node_.index, 0, 0, after, 0, "(log reset)");
  checker_.after_persist(node_, false, after + 1);
}

void Shell::on_snapshot_saved(const raft::SnapshotMeta& meta, bool installed) {
  checker_.on_snapshot(node_, meta, installed);
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
