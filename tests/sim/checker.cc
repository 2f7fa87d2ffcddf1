#include "checker.h"

#include <algorithm>
#include <sstream>

namespace sim {

std::string show(const raft::Entry& e) {
  std::ostringstream out;
  out << "(index " << e.index << ", term " << e.term << ", "
      << (e.type == raft::EntryType::Noop ? std::string("noop") : "'" + e.data + "'") << ")";
  return out.str();
}

namespace {

std::string vote_name(const raft::NodeId& id) { return id.empty() ? std::string("nobody") : id; }

}  // namespace

Checker::Checker(int size, const Clock& clock, Trace& trace)
    : size_(size), clock_(clock), trace_(trace), shadows_(size) {
  committed_.resize(1);  // [0]: the empty prefix
  for (Shadow& s : shadows_) s.disk_hash.assign(1, kEmptyLogHash);
}

void Checker::fail(const std::string& invariant, const std::string& details) const {
  throw Violation{invariant, details};
}

std::string Checker::who(const Node& n) const {
  return n.id + " (incarnation " + std::to_string(n.incarnation) + ")";
}

// ---------------------------------------------------------------- boot ----

void Checker::on_boot(const Node& n) {
  Shadow& s = shadows_[n.index];
  const raft::Raft& core = n.core();
  if (monitors_.size() <= static_cast<std::size_t>(n.index)) monitors_.resize(static_cast<std::size_t>(n.index) + 1);
  monitors_[static_cast<std::size_t>(n.index)].restart(n.disk.hard_state);
  // §5 / Figure 2: a restarted server resumes from its persistent state.
  if (core.current_term() != n.disk.hard_state.current_term || core.voted_for() != n.disk.hard_state.voted_for) {
    fail("restart: the core resumes from its persisted term and vote (Figure 2)",
         who(n) + " booted with term " + std::to_string(core.current_term()) + " vote " +
             vote_name(core.voted_for()) + ", disk has term " + std::to_string(n.disk.hard_state.current_term) +
             " vote " + vote_name(n.disk.hard_state.voted_for));
  }
  const raft::Index disk_last = std::max(n.disk.last_index(), n.disk.snapshot_index());
  if (core.log().last_index() != disk_last) {
    fail("restart: the core resumes from its persisted log",
         who(n) + " booted with last index " + std::to_string(core.log().last_index()) + ", disk holds " +
             std::to_string(n.disk.first_index) + ".." + std::to_string(n.disk.last_index()) + " and snapshot " +
             std::to_string(n.disk.snapshot_index()));
  }
  if (core.role() == raft::Role::Leader) fail("restart: a node boots as a follower (§5.2)", who(n) + " booted as leader");
  s.alive = true;
  s.mem_hash.assign(1, kEmptyLogHash);  // recomputed (and compared with the disk) by the full sync below
  s.mem_committed_match = 0;
  s.term = core.current_term();
  s.vote = core.voted_for();
  s.role = core.role();
  s.commit = core.commit_index();
  s.verify_cursor = 0;
  // The state machine is volatile: it is rebuilt from the snapshot on disk,
  // if any, then by re-applying the log after it.
  s.applied = 0;
  s.applied_hash = kEmptyLogHash;
  s.model = KvModel{};
  s.mem_base = 0;
  if (const raft::Index snap = n.disk.snapshot_index(); snap > 0) {
    auto model = models_at_.find(snap);
    if (model == models_at_.end() || snap >= committed_.size()) {
      fail("a snapshot holds a state some node applied (thesis §5.1)",
           who(n) + " restarted from a snapshot at " + std::to_string(snap) + " that no node took");
    }
    s.applied = snap;
    s.applied_hash = committed_[snap].hash;
    s.model = model->second;
    check_state_machine(n, s.model, "restarted from its snapshot");
  }
  sync_memory_log(n, s, true);
  // The disk may still hold entries below the core's base, which the core
  // does not load; compare what both hold.
  const std::size_t both = std::min(s.mem_hash.size(), s.disk_hash.size());
  if (s.mem_hash.size() != disk_last + 1 || !std::equal(s.mem_hash.begin(), s.mem_hash.begin() + static_cast<std::ptrdiff_t>(both), s.disk_hash.begin())) {
    fail("restart: the core resumes from its persisted log", who(n) + " booted with a log that differs from its disk");
  }
}

void Checker::on_crash(const Node& n) {
  Shadow& s = shadows_[n.index];
  s.alive = false;
  s.mem_hash.clear();
  s.role = raft::Role::Follower;
}

// ------------------------------------------------------------ log views ----

void Checker::check_log_matching(const Node& n, raft::Index index, raft::Term term, std::uint64_t hash,
                                 bool on_disk) {
  auto [it, inserted] = first_seen_.try_emplace({index, term}, Origin{hash, n.index, on_disk, clock_.tick});
  if (!inserted && it->second.hash != hash) {
    const Origin& o = it->second;
    fail("log matching: two logs with an entry of the same index and term are identical up to it (§5.3)",
         who(n) + "'s " + (on_disk ? "disk" : "in-memory") + " log has an entry at index " + std::to_string(index) +
             " term " + std::to_string(term) + ", and so did " + node_name(o.node) + "'s " +
             (o.on_disk ? "disk" : "in-memory") + " log at tick " + std::to_string(o.tick) +
             ", but the two logs differ at or before that index");
  }
}

void Checker::advance_committed_match(const std::vector<std::uint64_t>& hashes, raft::Index& match) const {
  raft::Index top = std::min<raft::Index>(hashes.size() - 1, committed_.size() - 1);
  while (match < top && hashes[match + 1] == committed_[match + 1].hash) ++match;
}

// Brings the shadow of core.log() up to date. Logs change only at the tail
// (truncate_from + append), so the unchanged prefix is found by walking back
// from the end, and a rolling cursor re-verifies the rest; at boot the whole
// log is compared.
void Checker::sync_memory_log(const Node& n, Shadow& s, bool full) {
  const raft::Log& log = n.core().log();
  const raft::Index last = log.last_index();
  const raft::Index base = log.base_index();
  std::vector<std::uint64_t>& h = s.mem_hash;
  if (base != s.mem_base || full) {
    // Thesis §5.1: only committed entries are compacted, so the prefix up
    // to the base is the committed one; its hashes are the committed ones.
    if (base >= committed_.size() || log.base_term() != committed_[base].entry.term) {
      fail("only committed entries are compacted into a snapshot (thesis §5.1)",
           who(n) + " has compacted its log through index " + std::to_string(base) + " term " +
               std::to_string(log.base_term()) + ", but " +
               (base >= committed_.size() ? "only " + std::to_string(committed_.size() - 1) + " entries are committed"
                                          : "the committed entry there is " + show(committed_[base].entry)));
    }
    if (h.size() <= base) h.resize(base + 1);
    for (raft::Index i = std::min(s.mem_base, base) + 1; i <= base; ++i) h[i] = committed_[i].hash;
    s.mem_base = base;
  }
  const raft::Index old_last = h.size() - 1;
  const raft::Index top = std::min(last, old_last);
  raft::Index keep;
  if (full) {
    keep = base;
    while (keep < top && chain_hash(h[keep], log.at(keep + 1)) == h[keep + 1]) ++keep;
  } else {
    keep = std::max(top, base);
    while (keep > base && chain_hash(h[keep - 1], log.at(keep)) != h[keep]) --keep;
    // Rolling verification of the unchanged prefix, a few entries per step:
    // an entry rewritten in the middle of the log, behind an unchanged tail,
    // is caught within about last/2 steps at a constant cost per step.
    for (int k = 0; k < 2 && keep > base; ++k) {
      raft::Index i = s.verify_cursor = s.verify_cursor % (keep - base) + base + 1;
      if (chain_hash(h[i - 1], log.at(i)) != h[i]) {
        fail("log matching: a log changes only at its tail (§5.3: truncate at a conflict, then append)",
             who(n) + "'s in-memory log now holds " + show(log.at(i)) +
                 " at an index it had already, while the entries after it stayed the same");
      }
    }
  }
  h.resize(keep + 1);
  for (raft::Index i = keep + 1; i <= last; ++i) {
    const raft::Entry& e = log.at(i);
    if (e.index != i) {
      fail("log entries carry their own index", who(n) + " holds " + show(e) + " at position " + std::to_string(i));
    }
    raft::Term prev_term = log.term(i - 1);
    if (e.term < prev_term) {
      fail("terms never decrease along a log (§5.3: entries are appended in term order)",
           who(n) + " holds " + show(e) + " after an entry of term " + std::to_string(prev_term));
    }
    if (e.term > n.core().current_term()) {
      fail("no log holds an entry of a term its node has not reached (§5.1)",
           who(n) + " is in term " + std::to_string(n.core().current_term()) + " but holds " + show(e));
    }
    h.push_back(chain_hash(h[i - 1], e));
    check_log_matching(n, i, e.term, h[i], false);
  }
  // Pitfall 7 / §5.3: a duplicated or late append_entries must never remove
  // an entry that is committed (the Leader Completeness argument needs it).
  raft::Index m = s.mem_committed_match;
  if (m > last || h[m] != committed_[m].hash) {
    fail("committed entries are never removed from a log (pitfall 7: truncate only at a real conflict, never below commit)",
         who(n) + "'s in-memory log held the committed entries 1.." + std::to_string(m) +
             " and now does not (last index " + std::to_string(last) + ")");
  }
  advance_committed_match(h, s.mem_committed_match);
}

// ---------------------------------------------------------------- steps ----

void Checker::after_step(const Node& n) {
  Shadow& s = shadows_[n.index];
  const raft::Raft& core = n.core();
  // The core's own invariants, of one state and of the change since the
  // last step (raft/invariants.h); a violation names itself.
  try {
    core.check_invariants();
    monitors_.at(static_cast<std::size_t>(n.index)).observe(core);
  } catch (const raft::InvariantViolation& e) {
    fail("the core's invariants (raft::Raft::check_invariants, raft::InvariantMonitor)", who(n) + ": " + e.what());
  }
  sync_memory_log(n, s, false);

  const raft::Term term = core.current_term();
  if (term < s.term) {
    fail("a node's term never decreases (Figure 2: currentTerm increases monotonically)",
         who(n) + " went from term " + std::to_string(s.term) + " to " + std::to_string(term));
  }
  if (term == s.term && !s.vote.empty() && core.voted_for() != s.vote) {
    fail("at most one vote per term (§5.2)", who(n) + " changed its vote in term " + std::to_string(term) + " from " +
                                                  s.vote + " to " + vote_name(core.voted_for()));
  }
  const raft::HardState& disk = n.disk.hard_state;
  if (disk.current_term == term && !disk.voted_for.empty() && core.voted_for() != disk.voted_for) {
    fail("at most one vote per term, across restarts (§5.2, pitfall 6)",
         who(n) + " votes for " + vote_name(core.voted_for()) + " in term " + std::to_string(term) +
             " but its disk records a vote for " + disk.voted_for);
  }

  const raft::Index commit = core.commit_index();
  const raft::Index last = core.log().last_index();
  if (commit < s.commit) {
    fail("the commit index never decreases",
         who(n) + " went from commit " + std::to_string(s.commit) + " to " + std::to_string(commit));
  }
  if (commit > last) {
    fail("commit index <= last log index",
         who(n) + " has commit " + std::to_string(commit) + " but last index " + std::to_string(last));
  }
  // Figure 8 / §5.4.2 (pitfall 1): a leader advances its commit index by
  // counting replicas only for an entry of its own term.
  if (core.role() == raft::Role::Leader && s.role == raft::Role::Leader && s.term == term && commit > s.commit &&
      core.log().term(commit) != term) {
    fail("a leader commits by counting replicas only entries of its own term (§5.4.2, Figure 8)",
         who(n) + ", leader of term " + std::to_string(term) + ", advanced its commit index from " +
             std::to_string(s.commit) + " to " + std::to_string(commit) + " whose entry is " +
             show(core.log().at(commit)));
  }

  const bool became_leader = core.role() == raft::Role::Leader && (s.role != raft::Role::Leader || s.term != term);
  if (core.role() != s.role || term != s.term) {
    trace_.event(EventKind::Role, n.index, static_cast<std::uint64_t>(core.role()), term, commit, last);
  }
  s.term = term;
  s.vote = core.voted_for();
  s.role = core.role();

  if (core.role() == raft::Role::Leader) {
    // §5.2 Election Safety: at most one leader can be elected in a given term.
    auto [it, inserted] = leader_of_term_.try_emplace(term, n.index);
    if (!inserted && it->second != n.index) {
      fail("election safety: at most one leader per term (§5.2)",
           who(n) + " became leader of term " + std::to_string(term) + ", which " + node_name(it->second) +
               " already led");
    }
    if (core.voted_for() != n.id) {
      fail("a leader voted for itself in its term (§5.2)",
           who(n) + " leads term " + std::to_string(term) + " but voted for " + vote_name(core.voted_for()));
    }
    if (became_leader) check_new_leader(n, s);
  }
  check_commit(n, s);
}

raft::Index Checker::committed_before_term(raft::Term term) const {
  auto it = std::partition_point(committed_.begin() + 1, committed_.end(),
                                 [&](const Committed& c) { return c.commit_term < term; });
  return static_cast<raft::Index>(it - committed_.begin()) - 1;
}

// Leader Completeness (§5.4) is about terms, not wall-clock order: a leader
// of term T holds every entry committed in a term < T. A leader of an old
// term may legitimately lack entries committed later in newer terms (say a
// candidate paused for a while, then receiving its delayed vote replies);
// its appends will be refused by the newer-term majority.
void Checker::check_new_leader(const Node& n, const Shadow& s) {
  check_leader_has_committed(n, s);
  // An acknowledged write is in every later leader's log, at the same index
  // and with the same term (what a client relies on).
  const raft::Log& log = n.core().log();
  const raft::Index required = committed_before_term(n.core().current_term());
  for (const Acked& a : acked_) {
    if (a.index > required) continue;  // committed in this term or later: not yet required
    // Compacted into the leader's snapshot: its prefix hash is the committed
    // one (sync_memory_log), which holds the acknowledged entry.
    if (a.index <= log.base_index()) continue;
    std::optional<raft::Term> t = log.term_at(a.index);
    if (!t || *t != a.term || log.at(a.index).data != a.data) {
      fail("an acknowledged write is in every later leader's log (§5.4 Leader Completeness)",
           who(n) + " became leader of term " + std::to_string(n.core().current_term()) +
               " without the write acknowledged at index " + std::to_string(a.index) + " term " +
               std::to_string(a.term) + " '" + a.data + "'" +
               (t ? "; it holds " + show(log.at(a.index)) : std::string("; its log ends at ") +
                                                                std::to_string(log.last_index())));
    }
  }
}

// §5.4.1 Leader Completeness: a leader's log holds every entry committed in
// an earlier term.
void Checker::check_leader_has_committed(const Node& n, const Shadow& s) {
  const raft::Index known = committed_before_term(n.core().current_term());
  if (known == 0) return;
  if (s.mem_hash.size() > known && s.mem_hash[known] == committed_[known].hash) return;
  // Find the first committed entry it lacks, for the report.
  const raft::Log& log = n.core().log();
  raft::Index i = 1;
  while (i <= known && i < s.mem_hash.size() && s.mem_hash[i] == committed_[i].hash) ++i;
  std::string has = i <= log.last_index() ? "it holds " + show(log.at(i)) : "its log ends at " + std::to_string(log.last_index());
  fail("leader completeness: a leader holds every entry committed in an earlier term (§5.4.1)",
       who(n) + " became leader of term " + std::to_string(n.core().current_term()) + " but lacks the entry " +
           show(committed_[i].entry) + ", committed in term " + std::to_string(committed_[i].commit_term) + "; " +
           has + " (entries committed before its term: 1.." + std::to_string(known) + ")");
}

// §5.4.3 State Machine Safety, seen through commit indexes: the entries up to
// any node's commit index are the same everywhere.
void Checker::check_commit(const Node& n, Shadow& s) {
  const raft::Raft& core = n.core();
  const raft::Index commit = core.commit_index();
  const raft::Index known = committed_.size() - 1;
  const raft::Index overlap = std::min(commit, known);
  if (overlap > 0 && s.mem_hash[overlap] != committed_[overlap].hash) {
    raft::Index i = 1;
    while (i <= overlap && s.mem_hash[i] == committed_[i].hash) ++i;
    fail("state machine safety: all nodes agree on every committed entry (§5.4.3)",
         who(n) + " has commit index " + std::to_string(commit) + " but holds " + show(core.log().at(i)) +
             " where " + show(committed_[i].entry) + " is committed");
  }
  if (commit > known) {
    // An entry is committed once a majority stored it (§5.3); "stored" must
    // mean on disk (pitfall 3), or a crash of that majority loses it.
    int holders = 0;
    for (const Shadow& other : shadows_) {
      if (other.disk_hash.size() > commit && other.disk_hash[commit] == s.mem_hash[commit]) ++holders;
    }
    const int quorum = size_ / 2 + 1;
    if (holders < quorum) {
      fail("an entry is committed only once a majority has it on disk (§5.3, pitfall 3)",
           who(n) + " considers index " + std::to_string(commit) + " " + show(core.log().at(commit)) +
               " committed, but only " + std::to_string(holders) + " of " + std::to_string(size_) +
               " disks hold it (quorum " + std::to_string(quorum) + ")");
    }
    for (raft::Index i = known + 1; i <= commit; ++i) {
      const raft::Entry& e = core.log().at(i);
      committed_.push_back(Committed{e, s.mem_hash[i], s.term});
      if (e.type == raft::EntryType::Command) {
        auto proposed = proposals_.find(e.data);
        if (proposed == proposals_.end()) {
          fail("only commands that a client proposed are committed",
               who(n) + " committed " + show(e) + ", which no leader accepted from a client");
        }
        // A client retries a seq that may already sit in a deposed leader's
        // log, so the same command can be proposed (and committed) again;
        // the session applies it once (checked in on_kv_apply). What the
        // core must never do is commit one proposal twice.
        if (++proposed->second.committed > proposed->second.proposed) {
          fail("each proposal is committed at most once (a command is committed at most as often as leaders accepted it)",
               who(n) + " committed " + show(e) + " for the " + std::to_string(proposed->second.committed) +
                   "th time; leaders accepted it " + std::to_string(proposed->second.proposed) + " times");
        }
      }
    }
    for (raft::Index j = known; j >= 1 && committed_[j].commit_term > s.term; --j) committed_[j].commit_term = s.term;
    // Leaders of terms above this node's must hold the new entries already
    // (they were committed in a term <= this node's term, §5.4).
    for (int j = 0; j < size_; ++j) {
      const Shadow& other = shadows_[j];
      if (j == n.index || !other.alive || other.role != raft::Role::Leader || other.term <= s.term) continue;
      if (other.mem_hash.size() <= commit || other.mem_hash[commit] != committed_[commit].hash) {
        fail("leader completeness: a leader holds every entry committed in an earlier term (§5.4)",
             node_name(j) + ", leader of term " + std::to_string(other.term) + ", lacks " +
                 show(committed_[commit].entry) + ", which " + who(n) + " (term " + std::to_string(s.term) +
                 ") now knows committed");
      }
    }
  }
  s.commit = commit;
}

// ---------------------------------------------------------------- disk ----

void Checker::after_persist(const Node& n, bool hard_state_written, raft::Index first_changed) {
  Shadow& s = shadows_[n.index];
  const Disk& d = n.disk;
  if (hard_state_written) {
    const raft::HardState& before = s.disk_hard_state;
    const raft::HardState& now = d.hard_state;
    if (now.current_term < before.current_term) {
      fail("the persisted term never decreases (Figure 2)",
           who(n) + " persisted term " + std::to_string(now.current_term) + " over term " +
               std::to_string(before.current_term));
    }
    if (now.current_term == before.current_term && !before.voted_for.empty() && now.voted_for != before.voted_for) {
      fail("at most one vote per term, across restarts (§5.2, pitfall 6)",
           who(n) + " persisted a vote for " + vote_name(now.voted_for) + " in term " +
               std::to_string(now.current_term) + " after persisting a vote for " + before.voted_for);
    }
    s.disk_hard_state = now;
  }
  if (d.first_index != s.disk_first) {
    // Compacted or reset: what lies below the new first index is now the
    // snapshot's, i.e. the committed prefix.
    first_changed = first_changed == 0 ? s.disk_first : std::min(first_changed, s.disk_first);
    first_changed = std::max<raft::Index>(first_changed, 1);
    s.disk_first = d.first_index;
  }
  if (first_changed > 0) {
    // Below the stored log's first index the disk holds the snapshot, so
    // the committed prefix (after a reset, the log starts after it).
    if (d.first_index > 1 && d.first_index - 1 >= committed_.size()) {
      fail("a disk's log starts right after committed state (thesis §5.1)",
           who(n) + "'s disk log starts at " + std::to_string(d.first_index) + " with only " +
               std::to_string(committed_.size() - 1) + " entries committed");
    }
    const raft::Index from = std::min<raft::Index>(first_changed, s.disk_hash.size());
    s.disk_hash.resize(from);
    for (raft::Index i = from; i < d.first_index; ++i) s.disk_hash.push_back(committed_[i].hash);
    for (raft::Index i = std::max(from, d.first_index); i <= d.last_index(); ++i) {
      const raft::Entry& e = d.at(i);
      raft::Term prev_term = i > d.first_index ? d.at(i - 1).term : 0;
      if (e.term < prev_term) {
        fail("terms never decrease along a log (§5.3)",
             who(n) + "'s disk holds " + show(e) + " after an entry of term " + std::to_string(prev_term));
      }
      s.disk_hash.push_back(chain_hash(s.disk_hash[i - 1], e));
      check_log_matching(n, i, e.term, s.disk_hash[i], true);
    }
  }
  // An entry of term T on disk with a smaller term beside it would let the
  // node, after a restart, vote in T for a second leader (§5.1, §5.2).
  if (!d.entries.empty() && d.entries.back().term > d.hard_state.current_term) {
    fail("a disk never holds an entry of a term newer than its persisted term (§5.1)",
         who(n) + "'s disk holds " + show(d.entries.back()) + " with persisted term " +
             std::to_string(d.hard_state.current_term));
  }
  raft::Index m = s.disk_committed_match;
  if (m >= s.disk_hash.size() || s.disk_hash[m] != committed_[m].hash) {
    fail("committed entries are never removed from a disk (pitfall 7: truncate only at a real conflict)",
         who(n) + "'s disk held the committed entries 1.." + std::to_string(m) + " and now does not (entries " +
             std::to_string(d.first_index) + ".." + std::to_string(d.last_index()) + ", snapshot " +
             std::to_string(d.snapshot_index()) + ")");
  }
  advance_committed_match(s.disk_hash, s.disk_committed_match);
}

// ------------------------------------------------------------- messages ----

void Checker::on_send(const Node& n, const raft::Message& m) {
  const int to = node_index(m.to, size_);
  if (m.from != n.id || to < 0 || to == n.index) {
    fail("messages go from their sender to another member", who(n) + " sent " + raft::describe(raft::summarize(m)) + " from '" + m.from +
                                                                   "' to '" + m.to + "'");
  }
  const raft::HardState& hs = n.disk.hard_state;
  // Figure 2: persistent state is updated on stable storage before
  // responding to RPCs. A pre-vote (§9.6) carries a term nobody adopted.
  if (!m.pre_vote && m.term > hs.current_term) {
    fail("a message leaves only once its term is on disk (Figure 2, pitfall 2)",
         who(n) + " sent " + raft::describe(raft::summarize(m)) + " to " + m.to + " while its disk holds term " +
             std::to_string(hs.current_term));
  }
  switch (m.type) {
    case raft::MessageType::RequestVote:
      break;
    case raft::MessageType::RequestVoteReply:
      if (m.vote_granted && !m.pre_vote) {
        // With a late Ready the node may have moved to a newer term since it
        // granted the vote; then it can never vote in m.term again, so the
        // grant is safe without its record. In the same term it must be there.
        if (hs.current_term == m.term && hs.voted_for != m.to) {
          fail("a vote is granted only once it is on disk (Figure 2, pitfall 2)",
               who(n) + " granted its vote in term " + std::to_string(m.term) + " to " + m.to +
                   " while its disk holds term " + std::to_string(hs.current_term) + " vote " +
                   vote_name(hs.voted_for));
        }
        auto [it, inserted] = granted_votes_.try_emplace({n.index, m.term}, m.to);
        if (!inserted && it->second != m.to) {
          fail("at most one vote per term, across restarts (§5.2, pitfall 6)",
               who(n) + " granted its vote in term " + std::to_string(m.term) + " to " + m.to + " after granting it to " +
                   it->second);
        }
      }
      break;
    case raft::MessageType::AppendEntries: {
      auto it = leader_of_term_.find(m.term);
      if (it == leader_of_term_.end() || it->second != n.index) {
        fail("only the leader of a term sends append_entries in it (§5.2, §5.3)",
             who(n) + " sent " + raft::describe(raft::summarize(m)) + " but " +
                 (it == leader_of_term_.end() ? std::string("nobody") : node_name(it->second)) + " led term " +
                 std::to_string(m.term));
      }
      if (m.entries.size() > n.core().config().max_append_entries) {
        fail("an append_entries carries at most max_append_entries entries (TIGER_STYLE: everything has a limit)",
             who(n) + " sent " + std::to_string(m.entries.size()) + " entries, limit " +
                 std::to_string(n.core().config().max_append_entries));
      }
      raft::Term prev = m.prev_log_term;
      for (std::size_t k = 0; k < m.entries.size(); ++k) {
        const raft::Entry& e = m.entries[k];
        if (e.index != m.prev_log_index + 1 + k || e.term < prev || e.term > m.term) {
          fail("append_entries carries consecutive entries following prev_log_index, in term order (§5.3)",
               who(n) + " sent " + raft::describe(raft::summarize(m)) + " with entry " + show(e) + " at position " + std::to_string(k));
        }
        prev = e.term;
      }
      if (m.leader_commit > n.core().commit_index()) {
        fail("a leader announces at most its own commit index",
             who(n) + " sent leader_commit " + std::to_string(m.leader_commit) + " with commit index " +
                 std::to_string(n.core().commit_index()));
      }
      break;
    }
    case raft::MessageType::InstallSnapshot: {
      auto it = leader_of_term_.find(m.term);
      if (it == leader_of_term_.end() || it->second != n.index) {
        fail("only the leader of a term sends install_snapshot in it (thesis §5.3)",
             who(n) + " sent " + raft::describe(raft::summarize(m)));
      }
      if (m.last_included_index >= committed_.size() || m.last_included_index == 0 ||
          committed_[m.last_included_index].entry.term != m.last_included_term) {
        fail("a leader sends only a snapshot of committed state (thesis §5.1)",
             who(n) + " sent " + raft::describe(raft::summarize(m)) + " with " +
                 std::to_string(committed_.size() - 1) + " entries committed");
      }
      if (m.data.size() > n.core().config().max_snapshot_chunk_bytes) {
        fail("a snapshot chunk fits max_snapshot_chunk_bytes (one datagram)",
             who(n) + " sent a chunk of " + std::to_string(m.data.size()) + " bytes");
      }
      break;
    }
    case raft::MessageType::InstallSnapshotReply:
      // Installed means the state through last_included_index is durable
      // here (the snapshot is saved before the reply leaves) or committed.
      if (m.done && m.term == hs.current_term && n.disk.snapshot_index() < m.last_included_index &&
          n.core().commit_index() < m.last_included_index) {
        fail("a snapshot is acknowledged only once it is on disk (Figure 2, thesis §5.3)",
             who(n) + " sent " + raft::describe(raft::summarize(m)) + " with a snapshot at " +
                 std::to_string(n.disk.snapshot_index()) + " on disk");
      }
      break;
    case raft::MessageType::AppendEntriesReply:
      if (m.success) {
        // Pitfall 3: "entries on disk before they are acknowledged". A reply
        // from an older term may have been generated before a newer leader
        // legitimately replaced those entries (a late Ready): the claim was
        // true when made, and the old leader cannot use it to commit anything
        // the new leader lacks (§5.4.3). In the current term it must hold now.
        const Shadow& s = shadows_[n.index];
        if (m.term == hs.current_term &&
            (m.match_index >= s.disk_hash.size() || m.match_index >= s.mem_hash.size() ||
            s.disk_hash[m.match_index] != s.mem_hash[m.match_index])) {
          fail("entries are acknowledged only once they are on disk (§5.3, pitfall 3)",
               who(n) + " acknowledged match index " + std::to_string(m.match_index) + " with " +
                   std::to_string(n.disk.last_index()) + " last on disk, " +
                   std::to_string(n.core().log().last_index()) + " in memory");
        }
      }
      break;
  }
}

// ---------------------------------------------------------------- apply ----

void Checker::on_apply(const Node& n, const raft::Entry& e) {
  Shadow& s = shadows_[n.index];
  if (e.index != s.applied + 1) {
    fail("entries are applied in index order, each exactly once (Figure 2: lastApplied)",
         who(n) + " applied " + show(e) + " after index " + std::to_string(s.applied));
  }
  s.applied_hash = chain_hash(s.applied_hash, e);
  const raft::Index known = committed_.size() - 1;
  if (e.index > known || e.index > n.core().commit_index()) {
    fail("only committed entries are applied (§5.3)",
         who(n) + " applied " + show(e) + " with commit index " + std::to_string(n.core().commit_index()));
  }
  if (s.applied_hash != committed_[e.index].hash) {
    fail("state machine safety: every node applies the same entry at each index (§5.4.3)",
         who(n) + " applied " + show(e) + " where " + show(committed_[e.index].entry) + " is committed");
  }
  if (e.index >= s.disk_hash.size() || s.disk_hash[e.index] != s.applied_hash) {
    fail("entries are applied only once they are on the local disk (raft.h: apply after persisting)",
         who(n) + " applied " + show(e) + " with " + std::to_string(n.disk.last_index()) + " last on disk");
  }
  s.applied = e.index;
}

// ------------------------------------------------------------ snapshots ----

void Checker::check_state_machine(const Node& n, const KvModel& model, const char* when) const {
  const kv::StateMachine& sm = n.driver->state_machine();
  if (sm.size() != model.data().size()) {
    fail("a snapshot restores the whole dictionary (thesis §5.1)",
         who(n) + " " + when + " holds " + std::to_string(sm.size()) + " keys; the reference holds " +
             std::to_string(model.data().size()));
  }
  for (const auto& [key, value] : model.data()) {
    if (sm.get(key) != value) {
      fail("a snapshot restores the whole dictionary (thesis §5.1)",
           who(n) + " " + when + " holds " + (sm.get(key) ? "'" + *sm.get(key) + "'" : std::string("nothing")) +
               " at '" + key + "'; the reference holds '" + value + "'");
    }
  }
  for (const auto& [client, applied] : first_applies_) {
    const std::string& id = client.first;
    if (sm.last_seq(id) != model.last_seq(id)) {
      fail("exactly once survives a snapshot: the sessions are part of it (thesis §6.3)",
           who(n) + " " + when + " has applied seq " + std::to_string(sm.last_seq(id)) + " of " + id +
               "; the reference session is at seq " + std::to_string(model.last_seq(id)));
    }
  }
}

void Checker::after_snapshot_persist(const Node& n) {
  const raft::Snapshot& snap = *n.disk.snapshot;
  if (snap.meta.index >= committed_.size() || committed_[snap.meta.index].entry.term != snap.meta.term) {
    fail("only committed state is snapshotted (thesis §5.1)",
         who(n) + " saved a snapshot at " + std::to_string(snap.meta.index) + " term " +
             std::to_string(snap.meta.term) + " with " + std::to_string(committed_.size() - 1) + " entries committed");
  }
}

void Checker::on_snapshot(const Node& n, const raft::SnapshotMeta& meta, bool installed) {
  Shadow& s = shadows_[n.index];
  if (!installed) {
    if (meta.index != s.applied) {
      fail("a snapshot is taken at the applied index (thesis §5.1)",
           who(n) + " snapshotted at " + std::to_string(meta.index) + " having applied " + std::to_string(s.applied));
    }
    auto [it, inserted] = models_at_.try_emplace(meta.index, s.model);
    if (!inserted && !(it->second == s.model)) {
      fail("state machine safety: every replica's state at an index is the same (§5.4.3)",
           who(n) + "'s snapshot at " + std::to_string(meta.index) + " differs from another replica's");
    }
    return;
  }
  auto model = models_at_.find(meta.index);
  if (model == models_at_.end() || meta.index >= committed_.size()) {
    fail("a follower installs only a snapshot a leader took of committed state (thesis §5.3)",
         who(n) + " installed a snapshot at " + std::to_string(meta.index) + " that no node took");
  }
  if (meta.index <= s.applied) {
    fail("an installed snapshot never rolls the state machine back (thesis §5.3)",
         who(n) + " installed a snapshot at " + std::to_string(meta.index) + " having applied " +
             std::to_string(s.applied));
  }
  s.applied = meta.index;
  s.applied_hash = committed_[meta.index].hash;
  s.model = model->second;
  check_state_machine(n, s.model, "after installing a snapshot");
}

}  // namespace sim
