#include "cluster.h"

#include <memory>
#include <stdexcept>

#include "raft/describe.h"

namespace transcript {

using raft::Message;
using raft::Raft;

bool MessageFilter::matches(const Message& m) const {
  if (from != 0 && m.from != Cluster::name(from)) return false;
  if (to != 0 && m.to != Cluster::name(to)) return false;
  if (type && m.type != *type) return false;
  if (round && m.read_round != *round) return false;
  if (offset && (m.type != raft::MessageType::InstallSnapshot || m.offset != *offset)) return false;
  return true;
}

static std::string at_string(raft::Index index, raft::Term term) {
  return std::to_string(index) + "/" + std::to_string(term);
}

void ToyStateMachine::apply(const raft::Entry& e, const std::string& who) {
  if (e.index != applied + 1) {
    throw std::runtime_error(who + "'s state machine holds entries through " + std::to_string(applied) +
                             " and was handed entry " + std::to_string(e.index) +
                             (e.index <= applied ? ": applied twice" : ": entries in between are lost"));
  }
  if (!state.empty()) state += ",";
  state += e.type == raft::EntryType::Noop ? "noop" : e.data;
  applied = e.index;
}

void ToyStateMachine::restore(const raft::Snapshot& s, const std::string& who) {
  if (s.meta.index < applied) {
    throw std::runtime_error(who + "'s state machine holds entries through " + std::to_string(applied) +
                             " and was handed a snapshot at " + std::to_string(s.meta.index) + ": a rollback");
  }
  applied = s.meta.index;
  state = *s.data;
}

std::vector<std::string> describe_entries(const std::vector<raft::Entry>& entries) {
  // A run of more than four entries of one term is one line: transcripts
  // that need hundreds of entries (backtracking) stay readable, and the
  // boundaries between terms, which are what Raft compares, stay visible.
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < entries.size();) {
    std::size_t j = i;
    while (j + 1 < entries.size() && entries[j + 1].term == entries[i].term) ++j;
    if (j - i + 1 > 4) {
      lines.push_back(std::to_string(entries[i].index) + ".." + std::to_string(entries[j].index) + "/" +
                      std::to_string(entries[i].term) + " (" + std::to_string(j - i + 1) + " entries)");
    } else {
      for (std::size_t k = i; k <= j; ++k) {
        const raft::Entry& e = entries[k];
        std::string data = e.type == raft::EntryType::Noop ? "noop" : "\"" + e.data + "\"";
        lines.push_back(std::to_string(e.index) + "/" + std::to_string(e.term) + " " + data);
      }
    }
    i = j + 1;
  }
  return lines;
}

static std::string last_of(const Disk& d) {
  if (!d.entries.empty()) return at_string(d.entries.back().index, d.entries.back().term);
  if (d.snapshot) return at_string(d.snapshot->meta.index, d.snapshot->meta.term);
  return "0/0";
}

static std::string vote_of(const raft::NodeId& v) { return v.empty() ? "none" : v; }

std::size_t Cluster::index(int n) const {
  if (n < 1 || n > size()) throw std::runtime_error("no node " + std::to_string(n));
  return static_cast<std::size_t>(n - 1);
}

Raft& Cluster::node(int n) {
  Raft* r = nodes_.at(index(n)).get();
  if (r == nullptr) throw std::runtime_error(name(n) + " is down");
  return *r;
}

int Cluster::number(const raft::NodeId& id) const {
  for (int n = 1; n <= size(); ++n)
    if (id == name(n)) return n;
  return 0;
}

void Cluster::add_nodes(int count, const NodeOptions& options) {
  if (!nodes_.empty()) throw std::runtime_error("add-nodes: the cluster already has nodes");
  if (count < 1 || count > 9) throw std::runtime_error("add-nodes: 1 to 9 nodes");
  options_ = options;
  nodes_.resize(static_cast<std::size_t>(count));
  disks_.resize(static_cast<std::size_t>(count));
  machines_.resize(static_cast<std::size_t>(count));
  restarts_.assign(static_cast<std::size_t>(count), 0);
  group_.assign(static_cast<std::size_t>(count), 0);
  for (int n = 1; n <= count; ++n) start(n);
}

raft::Config Cluster::config_for(int n) const {
  raft::Config c;
  c.id = name(n);
  for (int other = 1; other <= size(); ++other)
    if (other != n) c.peers.push_back(name(other));
  c.heartbeat_ticks = options_.heartbeat_ticks;
  c.election_ticks_min = options_.election_ticks_min;
  c.election_ticks_max = options_.election_ticks_max;
  // Fixed seeds, different per node and per restart.
  c.rng_seed = static_cast<std::uint64_t>(n) * 1000 + static_cast<std::uint64_t>(restarts_[index(n)]);
  c.pre_vote = options_.pre_vote;
  c.check_quorum = options_.check_quorum;
  c.max_append_entries = options_.max_append_entries;
  c.max_pending_reads = options_.max_pending_reads;
  c.max_snapshot_chunk_bytes = options_.max_snapshot_chunk_bytes;
  c.max_inflight_snapshot_chunks = options_.max_inflight_snapshot_chunks;
  return c;
}

void Cluster::start(int n) {
  Disk& d = disks_[index(n)];
  // The recovery rule of raft.h: the stored log after the stored snapshot,
  // unless it does not hold the snapshot's last entry (then it is reset).
  const raft::SnapshotMeta meta = d.snapshot ? d.snapshot->meta : raft::SnapshotMeta{};
  bool discarded = false;
  std::vector<raft::Entry> entries = raft::entries_after_snapshot(meta, d.entries, &discarded);
  if (discarded) {
    out_.push_back(indent_ + name(n) + " reset its stored log: it does not hold the snapshot's last entry " +
                   at_string(meta.index, meta.term));
    d.entries.clear();
  }
  ToyStateMachine& sm = machines_[index(n)];
  sm = ToyStateMachine{};
  if (d.snapshot) sm.restore(*d.snapshot, name(n));
  nodes_[index(n)] = std::make_unique<Raft>(config_for(n), raft::Recovered{d.hard_state, std::move(entries), d.snapshot});
  if (monitors_.size() < disks_.size()) monitors_.resize(disks_.size());
  monitors_[index(n)].restart(d.hard_state);
  check(n);
}

void Cluster::check(int n) {
  node(n).check_invariants();
  monitors_[index(n)].observe(node(n));
}

Cluster::Observed Cluster::observe(int n) {
  Observed o;
  if (!up(n)) return o;
  o.role = node(n).role();
  o.term = node(n).current_term();
  o.drops = node(n).drops();
  return o;
}

void Cluster::report_changes(int n, const Observed& before, const std::string& indent) {
  if (up(n)) check(n);
  Observed now = observe(n);
  if (now.role != before.role || now.term != before.term)
    out_.push_back(indent + name(n) + " became " + raft::to_string(now.role) + " term=" + std::to_string(now.term));
  // The core drops what breaks a rule it can check, silently but for these
  // counters; the transcript names the rule.
  const auto dropped = [&](std::uint64_t a, std::uint64_t b, const char* why) {
    if (b > a) out_.push_back(indent + name(n) + " dropped it: " + why);
  };
  dropped(before.drops.not_for_us, now.drops.not_for_us, "not_for_us");
  dropped(before.drops.out_of_range, now.drops.out_of_range, "out_of_range");
  dropped(before.drops.bad_entries, now.drops.bad_entries, "bad_entries");
  dropped(before.drops.unsent_match, now.drops.unsent_match, "unsent_match");
  dropped(before.drops.future_read_round, now.drops.future_read_round, "future_read_round");
  dropped(before.drops.bad_snapshot, now.drops.bad_snapshot, "bad_snapshot");
}

void Cluster::tick(int n, int times) {
  for (int i = 0; i < times; ++i) {
    Observed before = observe(n);
    node(n).tick();
    report_changes(n, before, indent_);
  }
}

void Cluster::campaign(int n) {
  // raft.h has no "campaign now" hook, so tick until the election timer
  // fires: the role or term changes, or (a pre-candidate asking again) the
  // core has something to send where it had nothing.
  Raft& r = node(n);
  if (r.role() == raft::Role::Leader) throw std::runtime_error("campaign: " + name(n) + " is leader");
  if (r.has_ready()) throw std::runtime_error("campaign: handle " + name(n) + "'s Ready first (process-ready)");
  const raft::Role role = r.role();
  const raft::Term term = r.current_term();
  for (int i = 0; i < 1000; ++i) {
    tick(n, 1);
    if (r.role() != role || r.current_term() != term || r.has_ready()) return;
  }
  throw std::runtime_error("campaign: " + name(n) + " did not campaign within 1000 ticks");
}

void Cluster::propose(int n, const std::string& data, int count) {
  Raft& r = node(n);
  std::vector<raft::Entry> appended;
  for (int i = 1; i <= count; ++i) {
    std::string d = count == 1 ? data : data + std::to_string(i);
    auto at = r.propose(d);
    if (!at) {
      out_.push_back(indent_ + name(n) + " refused \"" + d + "\"");
      continue;
    }
    appended.push_back(r.log().at(*at));
    check(n);
  }
  for (const std::string& line : describe_entries(appended)) out_.push_back(indent_ + name(n) + " appended " + line);
}

void Cluster::read_index(int n, const std::vector<std::uint64_t>& ctxs) {
  for (std::uint64_t ctx : ctxs)
    if (!node(n).read_index(ctx)) {
      out_.push_back(indent_ + name(n) + " refused read ctx=" + std::to_string(ctx) + " (max_pending_reads)");
    } else {
      check(n);
    }
}

void Cluster::inject(const Message& m) {
  int to = number(m.to);
  if (to == 0) throw std::runtime_error("inject: no node " + m.to);
  // describe() numbers entries from prev_log_index and omits their terms;
  // a forged append may break exactly that, so its entries are spelled out.
  std::string line = raft::describe(m);
  bool as_described = true;
  for (std::size_t i = 0; i < m.entries.size(); ++i)
    as_described = as_described && m.entries[i].index == m.prev_log_index + 1 + i && m.entries[i].term == m.term;
  if (!as_described) {
    line += " (entries:";
    for (const raft::Entry& e : m.entries) line += " " + std::to_string(e.index) + "/" + std::to_string(e.term);
    line += ")";
  }
  out_.push_back(indent_ + line);
  Observed before = observe(to);
  node(to).step(m);
  report_changes(to, before, indent_ + "  ");
}

bool Cluster::process_ready(const std::vector<int>& which, bool crash_after_snapshot) {
  std::vector<int> list = which;
  if (list.empty())
    for (int n = 1; n <= size(); ++n)
      if (up(n)) list.push_back(n);
  bool any = false;
  for (int n : list) {
    Raft& r = node(n);
    for (int round = 0; r.has_ready(); ++round) {
      if (round == 100) throw std::runtime_error(name(n) + " keeps having Readies");
      any = true;
      raft::Ready rd = r.ready();
      check(n);
      // One header per Ready: what is listed under it was handed over in a
      // single Ready, which some rules (a vote persisted with its grant) need.
      out_.push_back(indent_ + "> " + name(n) + " ready");
      const std::string in = indent_ + "  ";
      if (crash_after_snapshot && rd.snapshot) {
        const raft::Snapshot& s = *rd.snapshot;
        // The driver's order: the hard state is durable before the snapshot.
        if (rd.hard_state) {
          out_.push_back(in + "hard-state term=" + std::to_string(rd.hard_state->current_term) +
                         " vote=" + vote_of(rd.hard_state->voted_for));
          disks_[index(n)].hard_state = *rd.hard_state;
        }
        out_.push_back(in + "install-snapshot " + at_string(s.meta.index, s.meta.term) +
                       (rd.snapshot_resets_log ? " resets-log" : " keeps-log") + " (" +
                       std::to_string(s.data->size()) + " bytes): saved, then a crash");
        disks_[index(n)].snapshot = s;
        crash(n);
        break;
      }
      persist(n, rd, in);
      for (Message& m : rd.messages) {
        int to = number(m.to);
        if (!connected(n, to)) {
          out_.push_back(in + "drop " + raft::describe(m) + " (partition)");
        } else {
          out_.push_back(in + "send " + raft::describe(m));
          queue_.push_back(m);
        }
      }
      for (const std::string& line : describe_entries(rd.committed)) out_.push_back(in + "apply " + line);
      for (const raft::Entry& e : rd.committed) machines_[index(n)].apply(e, name(n));
      for (const raft::ReadState& rs : rd.reads)
        out_.push_back(in + "read ctx=" + std::to_string(rs.ctx) + " index=" + std::to_string(rs.index));
      for (std::uint64_t ctx : rd.failed_reads) out_.push_back(in + "read-failed ctx=" + std::to_string(ctx));
      r.advance(rd);
      check(n);
    }
  }
  return any;
}

void Cluster::persist(int n, const raft::Ready& rd, const std::string& in) {
  Disk& disk = disks_[index(n)];
  // raft.h's order: the hard state first (a snapshot's term may be the one
  // just adopted), then a received snapshot (it replaces the entries it
  // covers, or the whole log), then the entries.
  if (rd.hard_state) {
    out_.push_back(in + "hard-state term=" + std::to_string(rd.hard_state->current_term) +
                   " vote=" + vote_of(rd.hard_state->voted_for));
    disk.hard_state = *rd.hard_state;
  }
  if (rd.snapshot) {
    const raft::Snapshot& s = *rd.snapshot;
    out_.push_back(in + "install-snapshot " + at_string(s.meta.index, s.meta.term) +
                   (rd.snapshot_resets_log ? " resets-log" : " keeps-log") + " (" +
                   std::to_string(s.data->size()) + " bytes)");
    disk.snapshot = s;
    if (rd.snapshot_resets_log) {
      disk.entries.clear();
    } else {
      std::erase_if(disk.entries, [&](const raft::Entry& e) { return e.index <= s.meta.index; });
    }
    machines_[index(n)].restore(s, name(n));
  }
  if (!rd.entries.empty()) {
    for (const std::string& line : describe_entries(rd.entries)) out_.push_back(in + "persist " + line);
    const raft::Index first = rd.entries.front().index;
    while (!disk.entries.empty() && disk.entries.back().index >= first) disk.entries.pop_back();
    // The stored log stays contiguous after its snapshot: anything else is
    // a Ready that breaks raft.h's contract, and recovery would fail on it.
    const raft::Index next = !disk.entries.empty() ? disk.entries.back().index + 1
                             : disk.snapshot    ? disk.snapshot->meta.index + 1
                                                : 1;
    if (first != next) {
      throw std::runtime_error(name(n) + "'s Ready persists entries from " + std::to_string(first) +
                               " but its disk continues at " + std::to_string(next));
    }
    disk.entries.insert(disk.entries.end(), rd.entries.begin(), rd.entries.end());
  }
}

int Cluster::deliver(const MessageFilter& filter, bool drop, int count, bool keep) {
  // Steps only write to the cores' outboxes, never to the queue, so the
  // messages delivered here are exactly those queued when the command began.
  std::deque<Message> queued;
  queued.swap(queue_);
  int matched = 0;
  for (Message& m : queued) {
    if (!filter.matches(m) || (count > 0 && matched == count)) {
      queue_.push_back(std::move(m));
      continue;
    }
    ++matched;
    int from = number(m.from);
    int to = number(m.to);
    if (keep) queue_.push_back(m);  // the original stays queued in its place
    if (drop) {
      out_.push_back(indent_ + "drop " + raft::describe(m));
    } else if (!connected(from, to)) {
      out_.push_back(indent_ + "drop " + raft::describe(m) + " (partition)");
    } else if (!up(to)) {
      out_.push_back(indent_ + "drop " + raft::describe(m) + " (" + name(to) + " is down)");
    } else {
      out_.push_back(indent_ + raft::describe(m));
      Observed before = observe(to);
      node(to).step(m);
      report_changes(to, before, indent_ + "  ");
    }
  }
  return matched;
}

int Cluster::hold(const MessageFilter& filter, bool copy, int count) {
  std::deque<Message> queued;
  queued.swap(queue_);
  int matched = 0;
  for (Message& m : queued) {
    if (!filter.matches(m) || (count > 0 && matched == count)) {
      queue_.push_back(std::move(m));
      continue;
    }
    ++matched;
    out_.push_back(indent_ + (copy ? "hold a copy of " : "hold ") + raft::describe(m));
    if (copy) queue_.push_back(m);
    held_.push_back(std::move(m));
  }
  return matched;
}

int Cluster::release(const MessageFilter& filter, int count) {
  std::deque<Message> held;
  held.swap(held_);
  int matched = 0;
  for (Message& m : held) {
    if (!filter.matches(m) || (count > 0 && matched == count)) {
      held_.push_back(std::move(m));
      continue;
    }
    ++matched;
    out_.push_back(indent_ + "release " + raft::describe(m));
    queue_.push_back(std::move(m));
  }
  return matched;
}

void Cluster::stabilize(int bound) {
  const std::string saved = indent_;
  for (int round = 0;; ++round) {
    if (round == bound) throw std::runtime_error("stabilize: still busy after " + std::to_string(bound) + " rounds");
    bool any = process_ready({});
    if (!queue_.empty()) {
      out_.push_back(saved + "> deliver");
      indent_ = saved + "  ";
      deliver(MessageFilter{}, false, 0);
      indent_ = saved;
      any = true;
    }
    if (!any) return;
  }
}

bool Cluster::connected(int a, int b) const {
  if (a == 0 || b == 0) return true;  // not a cluster node: the core drops it itself
  return group_[index(a)] == group_[index(b)];
}

void Cluster::partition(const std::vector<std::vector<int>>& groups) {
  // Nodes named in no group form one more group together.
  group_.assign(static_cast<std::size_t>(size()), static_cast<int>(groups.size()) + 1);
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (int n : groups[g]) group_[index(n)] = static_cast<int>(g) + 1;
}

void Cluster::heal() { group_.assign(static_cast<std::size_t>(size()), 0); }

void Cluster::crash(int n) {
  node(n);  // throws if already down
  nodes_[index(n)].reset();
  machines_[index(n)] = ToyStateMachine{};  // volatile: rebuilt from the disk's snapshot on restart
  const Disk& d = disks_[index(n)];
  out_.push_back(indent_ + name(n) + " crashed; its disk holds term=" + std::to_string(d.hard_state.current_term) +
                 " vote=" + vote_of(d.hard_state.voted_for) + " last=" + last_of(d) +
                 (d.snapshot ? " snapshot=" + at_string(d.snapshot->meta.index, d.snapshot->meta.term) : ""));
}

void Cluster::restart(int n) {
  if (up(n)) throw std::runtime_error("restart: " + name(n) + " is up");
  ++restarts_[index(n)];
  start(n);
  print_status(n);
}

void Cluster::snapshot(int n, raft::Index keep, bool crash_before_compact) {
  Raft& r = node(n);
  ToyStateMachine& sm = machines_[index(n)];
  const raft::Index applied = r.last_applied();
  if (sm.applied != applied || applied < r.log().base_index())
    throw std::runtime_error("snapshot: handle " + name(n) + "'s Ready first (process-ready)");
  const raft::SnapshotMeta held = r.snapshot().meta;
  if (applied <= held.index) {
    out_.push_back(indent_ + name(n) + " has applied nothing since its snapshot " + at_string(held.index, held.term));
    return;
  }
  raft::Snapshot s{{applied, r.log().term(applied)}, std::make_shared<const std::string>(sm.state)};
  Disk& disk = disks_[index(n)];
  disk.snapshot = s;  // durable before the core hears of it, and before any compaction
  out_.push_back(indent_ + name(n) + " saved snapshot " + at_string(s.meta.index, s.meta.term) + " (" +
                 std::to_string(s.data->size()) + " bytes)");
  if (crash_before_compact) {
    crash(n);
    return;
  }
  const raft::Index base = r.log().base_index();
  const raft::Index through = r.snapshot_taken(s, keep < applied ? applied - keep : 0);
  check(n);
  std::erase_if(disk.entries, [&](const raft::Entry& e) { return e.index <= through; });
  if (through > base) {
    out_.push_back(indent_ + name(n) + " compacted its log through " + at_string(through, r.log().base_term()));
  } else {
    out_.push_back(indent_ + name(n) + " compacted nothing: its log starts after " +
                   at_string(base, r.log().base_term()));
  }
}

void Cluster::print_state(int n) {
  if (n == 0) {
    for (int k = 1; k <= size(); ++k) print_state(k);
    return;
  }
  if (!up(n)) {
    out_.push_back(indent_ + name(n) + " down");
    return;
  }
  const ToyStateMachine& sm = machines_.at(index(n));
  out_.push_back(indent_ + name(n) + " applied=" + std::to_string(sm.applied) + " [" + sm.state + "]");
}

void Cluster::print_log(int n) {
  std::vector<raft::Entry> entries;
  if (up(n)) {
    const raft::Log& log = node(n).log();
    if (log.base_index() > 0) out_.push_back(indent_ + "base " + at_string(log.base_index(), log.base_term()));
    if (log.last_index() > log.base_index()) entries = log.range(log.first_index(), log.last_index());
    if (entries.empty() && log.base_index() == 0) out_.push_back(indent_ + "(empty)");
  } else {
    out_.push_back(indent_ + name(n) + " is down; on its disk:");
    const Disk& d = disks_[index(n)];
    if (d.snapshot) {
      out_.push_back(indent_ + "snapshot " + at_string(d.snapshot->meta.index, d.snapshot->meta.term) + " (" +
                     std::to_string(d.snapshot->data->size()) + " bytes)");
    }
    entries = d.entries;
    if (entries.empty() && !d.snapshot) out_.push_back(indent_ + "(empty)");
  }
  for (const std::string& line : describe_entries(entries)) out_.push_back(indent_ + line);
}

void Cluster::print_status(int n) {
  if (n == 0) {
    for (int k = 1; k <= size(); ++k) print_status(k);
    return;
  }
  if (!up(n)) {
    out_.push_back(indent_ + name(n) + " down");
    return;
  }
  Raft& r = node(n);
  const raft::Log& log = r.log();
  out_.push_back(indent_ + name(n) + " " + raft::to_string(r.role()) + " term=" + std::to_string(r.current_term()) +
                 " vote=" + vote_of(r.voted_for()) + " leader=" + vote_of(r.leader_id()) +
                 " last=" + std::to_string(log.last_index()) + "/" + std::to_string(log.last_term()) +
                 " commit=" + std::to_string(r.commit_index()) + " applied=" + std::to_string(r.last_applied()) +
                 (r.snapshot().meta.index > 0 ? " snapshot=" + std::to_string(r.snapshot().meta.index) : ""));
}

}  // namespace transcript
