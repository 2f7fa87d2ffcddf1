#include "raft/raft.h"

#include <algorithm>
#include <stdexcept>

#include "raft/quorum.h"

namespace raft {

Raft::Raft(Config config, Recovered recovered)
    : config_(std::move(config)),
      rng_(config_.rng_seed),
      current_term_(recovered.hard_state.current_term),
      voted_for_(std::move(recovered.hard_state.voted_for)),
      log_(std::move(recovered.entries), recovered.snapshot ? recovered.snapshot->meta : SnapshotMeta{}) {
  if (config_.id.empty()) throw std::invalid_argument("raft: empty node id");
  if (config_.election_ticks_min < 1 || config_.election_ticks_max < config_.election_ticks_min)
    throw std::invalid_argument("raft: bad election timeout range");
  if (config_.heartbeat_ticks < 1 || config_.heartbeat_ticks >= config_.election_ticks_min)
    throw std::invalid_argument("raft: heartbeat must be shorter than the election timeout");
  if (config_.max_uncommitted_entries < 1 || config_.max_uncommitted_bytes < 1)
    throw std::invalid_argument("raft: the uncommitted caps must be at least 1");
  // Everything recovered came from disk, so it is durable already.
  persisted_index_ = log_.last_index();
  if (recovered.snapshot) {
    // The shell loads the snapshot into its state machine: what it holds is
    // committed and applied (only applied state is ever snapshotted).
    RAFT_ASSERT(recovered.snapshot->data != nullptr, "recovered a snapshot without data");
    snapshot_ = std::move(*recovered.snapshot);
    commit_index_ = snapshot_.meta.index;
    last_applied_ = snapshot_.meta.index;
  }
  reset_election_timer();
  check_log_entries();  // a corrupt data directory stops here, with a name
  check_invariants();
}

int election_ticks_from(std::uint64_t random_bits, int min_ticks, int max_ticks) {
  RAFT_ASSERT(min_ticks <= max_ticks, "empty election timeout range");
  const auto n = static_cast<std::uint64_t>(static_cast<std::int64_t>(max_ticks) - min_ticks) + 1;
  const auto offset = static_cast<std::uint64_t>((static_cast<unsigned __int128>(random_bits) * n) >> 64);
  return static_cast<int>(min_ticks + static_cast<std::int64_t>(offset));
}

// ---------------------------------------------------------------- time ----

void Raft::tick() {
  if (role_ == Role::Leader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (election_elapsed_ >= randomized_election_ticks_) {
    reset_election_timer();  // §5.2: a split vote is retried with a fresh random timeout
    campaign(config_.pre_vote);
  }
}

void Raft::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++check_quorum_elapsed_;
  if (config_.check_quorum && check_quorum_elapsed_ >= config_.election_ticks_min) {
    check_quorum_elapsed_ = 0;
    // §6.2 (thesis): a leader that has not heard from a majority within an
    // election timeout may be cut off; stepping down stops it from serving
    // reads and lets a node with a pre-vote majority take over.
    std::size_t active = 1;
    for (auto& [peer, pr] : progress_) {
      if (pr.recent_active) ++active;
      pr.recent_active = false;
    }
    if (active < majority(cluster_size())) {
      become_follower(current_term_, NodeId{});
      return;
    }
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat();
  }
}

void Raft::reset_election_timer() {
  election_elapsed_ = 0;
  // §5.2: randomized in [min, max]; portable, so a seed replays anywhere.
  randomized_election_ticks_ = election_ticks_from(rng_(), config_.election_ticks_min, config_.election_ticks_max);
}

bool Raft::in_leader_lease() const {
  if (!config_.check_quorum) return false;
  if (role_ == Role::Leader) return true;
  return !leader_id_.empty() && election_elapsed_ < config_.election_ticks_min;
}

// ----------------------------------------------------------- elections ----

void Raft::become_follower(Term term, const NodeId& leader) {
  if (role_ == Role::Leader) {
    fail_pending_reads();
    progress_.clear();
    pending_broadcast_ = false;
  }
  role_ = Role::Follower;
  if (term > current_term_) {
    current_term_ = term;
    voted_for_.clear();
    hard_state_dirty_ = true;
  }
  leader_id_ = leader;
  votes_.clear();
  reset_election_timer();
}

void Raft::campaign(bool pre_vote) {
  // Term arithmetic never wraps: a node at the last representable term stays
  // a follower rather than ask for term 0. (Numbers from peers are bounded by
  // kMaxNumber, so only 2^53 elections could bring a cluster here.)
  if (current_term_ >= kMaxNumber) return;
  if (pre_vote) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
  // A cluster of one wins at once.
  if (majority(cluster_size()) == 1) {
    if (pre_vote) {
      campaign(false);
    } else {
      become_leader();
    }
    return;
  }
  for (const NodeId& peer : config_.peers) {
    Message m;
    m.type = MessageType::RequestVote;
    m.to = peer;
    m.pre_vote = pre_vote;
    // §9.6: a pre-vote asks "would you vote for me in the next term?"
    // without anyone, the asker included, changing term.
    m.term = pre_vote ? current_term_ + 1 : current_term_;
    m.last_log_index = log_.last_index();
    m.last_log_term = log_.last_term();
    send(std::move(m));
  }
}

void Raft::become_pre_candidate() {
  role_ = Role::PreCandidate;
  leader_id_.clear();
  votes_.clear();
  votes_[config_.id] = true;
}

void Raft::become_candidate() {
  role_ = Role::Candidate;
  ++current_term_;
  voted_for_ = config_.id;  // persisted (Ready.hard_state) before request_vote leaves
  hard_state_dirty_ = true;
  leader_id_.clear();
  votes_.clear();
  votes_[config_.id] = true;
  reset_election_timer();
}

void Raft::become_leader() {
  role_ = Role::Leader;
  leader_id_ = config_.id;
  votes_.clear();
  heartbeat_elapsed_ = 0;
  check_quorum_elapsed_ = 0;
  progress_.clear();
  for (const NodeId& peer : config_.peers) {
    Progress pr;
    pr.next_index = log_.last_index() + 1;  // Figure 2: initialized to leader's last log index + 1
    pr.match_index = 0;
    pr.recent_active = true;  // give every follower one full round before check-quorum
    progress_.emplace(peer, std::move(pr));
  }
  // §8: a no-op entry of the new term lets the leader learn what is committed
  // (§5.4.2 forbids committing earlier terms' entries by counting replicas).
  Entry noop;
  noop.term = current_term_;
  noop.type = EntryType::Noop;
  log_.append(std::move(noop));
  pending_broadcast_ = true;
}

void Raft::step_request_vote(const Message& m) {
  // The etcd rule: vote again for the same candidate (a retry), vote for a
  // new one only if this term has neither a vote nor a known leader, and
  // always consider a pre-vote for a later term (it binds nobody).
  bool can_vote = voted_for_ == m.from || (voted_for_.empty() && leader_id_.empty()) ||
                  (m.pre_vote && m.term > current_term_);
  Message reply;
  reply.type = MessageType::RequestVoteReply;
  reply.to = m.from;
  reply.pre_vote = m.pre_vote;
  // §5.4.1 election restriction: only a log at least as up to date as ours.
  if (can_vote && log_.is_up_to_date(m.last_log_index, m.last_log_term)) {
    reply.vote_granted = true;
    reply.term = m.term;
    if (!m.pre_vote) {
      voted_for_ = m.from;  // persisted before the reply leaves (same Ready)
      hard_state_dirty_ = true;
      election_elapsed_ = 0;
    }
  } else {
    reply.vote_granted = false;
    reply.term = current_term_;
  }
  send(std::move(reply));
}

void Raft::step_request_vote_reply(const Message& m) {
  bool relevant = (role_ == Role::PreCandidate && m.pre_vote) || (role_ == Role::Candidate && !m.pre_vote);
  if (!relevant) return;
  votes_[m.from] = m.vote_granted;  // one vote per server: a duplicate reply replaces it
  std::size_t granted = 0;
  std::size_t rejected = 0;
  for (const auto& [voter, yes] : votes_) (yes ? granted : rejected) += 1;
  switch (tally_votes(granted, rejected, cluster_size())) {
    case VoteResult::Won:  // §5.2: votes from a majority of the servers
      if (role_ == Role::PreCandidate) {
        campaign(false);
      } else {
        become_leader();
      }
      break;
    case VoteResult::Lost:  // no majority is possible: wait for a leader or the next timeout
      become_follower(current_term_, NodeId{});
      break;
    case VoteResult::Pending: break;
  }
}

// ------------------------------------------------------------ commit ----

bool Raft::maybe_commit() {
  // The leader counts itself only for what it has persisted, so "a majority
  // has it" means "a majority has it on disk".
  // Runs on every append reply: reuse one buffer, and select rather than sort.
  std::vector<Index>& matches = quorum_scratch_;
  matches.clear();
  matches.push_back(persisted_index_);
  for (const auto& [peer, pr] : progress_) matches.push_back(pr.match_index);
  Index n = majority_value(matches);
  // §5.4.2: only an entry of the current term is committed by counting
  // replicas; earlier entries commit with it (Figure 8).
  if (n <= commit_index_ || log_.term(n) != current_term_) return false;
  commit_index_ = n;
  if (!reads_awaiting_commit_.empty()) {
    for (std::uint64_t ctx : reads_awaiting_commit_) pending_reads_.push_back({ctx, commit_index_, 0});
    reads_awaiting_commit_.clear();
  }
  return true;
}

// ------------------------------------------------------ input and output ----

// Rules a receiver can check without trusting the sender. A message that
// breaks one is dropped whole, before it can change any state.
bool Raft::well_formed(const Message& m) {
  const auto too_big = [](std::uint64_t v) { return v > kMaxNumber; };
  if (too_big(m.term) || too_big(m.last_log_index) || too_big(m.last_log_term) || too_big(m.prev_log_index) ||
      too_big(m.prev_log_term) || too_big(m.leader_commit) || too_big(m.read_round) || too_big(m.match_index) ||
      too_big(m.reject_index) || too_big(m.conflict_index) || too_big(m.conflict_term) ||
      too_big(m.prev_log_index + m.entries.size()) || too_big(m.last_included_index) ||
      too_big(m.last_included_term) || too_big(m.offset) || too_big(m.total_bytes)) {
    ++drops_.out_of_range;
    return false;
  }
  if (m.type == MessageType::AppendEntries) {
    // §5.3: entries follow prev_log_index without gaps, and a leader's log
    // never decreases in term nor holds entries of a term above its own.
    Term previous = m.prev_log_index > 0 ? m.prev_log_term : 0;
    if (previous > m.term) {
      ++drops_.bad_entries;
      return false;
    }
    for (std::size_t i = 0; i < m.entries.size(); ++i) {
      const Entry& e = m.entries[i];
      if (e.index != m.prev_log_index + 1 + i || e.term < previous || e.term > m.term) {
        ++drops_.bad_entries;
        return false;
      }
      previous = e.term;
    }
  }
  if (m.type == MessageType::InstallSnapshot) {
    // Thesis §5.3: a chunk lies inside its snapshot, the last one ends it, a
    // snapshot's last entry is of a term the leader has reached, and no
    // snapshot is larger than we are willing to buffer.
    if (m.total_bytes == 0 || m.total_bytes > config_.max_snapshot_bytes || m.offset > m.total_bytes ||
        m.data.size() > m.total_bytes - m.offset || m.done != (m.offset + m.data.size() == m.total_bytes) ||
        m.last_included_term > m.term || (m.last_included_index == 0) != (m.last_included_term == 0)) {
      ++drops_.bad_snapshot;
      return false;
    }
  }
  if (m.type == MessageType::InstallSnapshotReply && role_ == Role::Leader && m.term == current_term_) {
    auto it = progress_.find(m.from);
    if (it == progress_.end()) return false;
    // As for append replies: only about a snapshot this leader sent.
    if (m.last_included_index > it->second.sent_index) {
      ++drops_.unsent_match;
      return false;
    }
    if (m.read_round > read_round_) {
      ++drops_.future_read_round;
      return false;
    }
  }
  if (m.type == MessageType::AppendEntriesReply && role_ == Role::Leader && m.term == current_term_) {
    auto it = progress_.find(m.from);
    if (it == progress_.end()) return false;
    // A reply can only be about what this leader sent to that follower in
    // this term; anything else would move match_index past the follower's
    // real log (a commit without a majority) or past our own (a crash).
    Index claimed = m.success ? m.match_index : m.reject_index;
    if (claimed > it->second.sent_index) {
      ++drops_.unsent_match;
      return false;
    }
    // §8: a round only confirms leadership if we started it; a round from
    // the future would release reads no majority confirmed.
    if (m.read_round > read_round_) {
      ++drops_.future_read_round;
      return false;
    }
  }
  return true;
}

void Raft::step(const Message& m) {
  if (m.from == config_.id || m.to != config_.id ||
      std::find(config_.peers.begin(), config_.peers.end(), m.from) == config_.peers.end()) {
    ++drops_.not_for_us;
    return;
  }
  if (!well_formed(m)) return;

  if (m.term > current_term_) {
    if (m.type == MessageType::RequestVote) {
      // A node that hears from a live leader ignores disruptive candidates
      // (thesis §4.2.3), so a rejoining node cannot depose it.
      if (in_leader_lease()) return;
      if (!m.pre_vote) become_follower(m.term, NodeId{});
    } else if (m.type == MessageType::RequestVoteReply && m.pre_vote && m.vote_granted) {
      // A granted pre-vote carries the term we asked about; nothing changes.
    } else {
      // §5.1: a higher term in any message, replies included, demotes us.
      const bool from_leader = m.type == MessageType::AppendEntries || m.type == MessageType::InstallSnapshot;
      become_follower(m.term, from_leader ? m.from : NodeId{});
    }
  } else if (m.term < current_term_) {
    // §5.1: stale messages are rejected; answering tells a stale leader or
    // candidate about the newer term so it steps down.
    if (m.type == MessageType::AppendEntries) {
      Message reply;
      reply.type = MessageType::AppendEntriesReply;
      reply.to = m.from;
      reply.term = current_term_;
      reply.success = false;
      send(std::move(reply));
    } else if (m.type == MessageType::InstallSnapshot) {
      Message reply;
      reply.type = MessageType::InstallSnapshotReply;
      reply.to = m.from;
      reply.term = current_term_;
      reply.last_included_index = m.last_included_index;
      send(std::move(reply));
    } else if (m.type == MessageType::RequestVote) {
      Message reply;
      reply.type = MessageType::RequestVoteReply;
      reply.to = m.from;
      reply.term = current_term_;
      reply.pre_vote = m.pre_vote;
      reply.vote_granted = false;
      send(std::move(reply));
    }
    return;
  }

  if (role_ == Role::Leader && m.term == current_term_) {
    if (auto it = progress_.find(m.from); it != progress_.end()) it->second.recent_active = true;
  }

  switch (m.type) {
    case MessageType::RequestVote: step_request_vote(m); break;
    case MessageType::RequestVoteReply: step_request_vote_reply(m); break;
    case MessageType::AppendEntries: step_append_entries(m); break;
    case MessageType::AppendEntriesReply: step_append_entries_reply(m); break;
    case MessageType::InstallSnapshot: step_install_snapshot(m); break;
    case MessageType::InstallSnapshotReply: step_install_snapshot_reply(m); break;
  }
}

bool Raft::proposals_full(std::size_t next_bytes) const {
  const Index uncommitted_entries = log_.last_index() - commit_index_;
  return uncommitted_entries >= config_.max_uncommitted_entries ||
         uncommitted_bytes() + next_bytes > config_.max_uncommitted_bytes;
}

std::optional<Index> Raft::propose(std::string data) {
  if (role_ != Role::Leader || proposals_full(data.size())) return std::nullopt;
  Entry e;
  e.term = current_term_;
  e.type = EntryType::Command;
  e.data = std::move(data);
  Index index = log_.append(std::move(e));
  pending_broadcast_ = true;  // shipped at the next ready(), batched with the others
  return index;
}

void Raft::send(Message m) {
  m.from = config_.id;
  outbox_.push_back(std::move(m));
}

bool Raft::has_ready() const {
  return snapshot_pending_ || hard_state_dirty_ || log_.last_index() > persisted_index_ || !outbox_.empty() ||
         commit_index_ > last_applied_ || !ready_reads_.empty() || !failed_reads_.empty() ||
         (role_ == Role::Leader && (pending_broadcast_ || has_unassigned_reads()));
}

Ready Raft::ready() {
  if (role_ == Role::Leader) {
    bool new_round = has_unassigned_reads();
    if (new_round) {
      // The round number is taken before sending, so only replies to
      // messages sent after these reads arrived can confirm them.
      ++read_round_;
      for (PendingRead& r : pending_reads_)
        if (r.round == 0) r.round = read_round_;
    }
    for (const NodeId& peer : config_.peers) {
      bool sent = false;
      if (pending_broadcast_) {
        while (send_append(peer, false)) {
          sent = true;
          if (progress_.at(peer).state != Progress::State::Replicate ||
              progress_.at(peer).next_index > log_.last_index())
            break;
        }
      }
      if (new_round && !sent) send_heartbeat(peer);
    }
    pending_broadcast_ = false;
  }

  Ready rd;
  if (snapshot_pending_) {
    rd.snapshot = snapshot_;
    rd.snapshot_resets_log = snapshot_resets_log_;
    last_applied_ = std::max(last_applied_, snapshot_.meta.index);
    snapshot_pending_ = false;
    snapshot_resets_log_ = false;
  }
  if (hard_state_dirty_) {
    rd.hard_state = HardState{current_term_, voted_for_};
    hard_state_dirty_ = false;
  }
  if (log_.last_index() > persisted_index_) rd.entries = log_.range(persisted_index_ + 1, log_.last_index());
  rd.messages = std::move(outbox_);
  outbox_.clear();
  if (commit_index_ > last_applied_) {
    rd.committed = log_.range(last_applied_ + 1, commit_index_);
    last_applied_ = commit_index_;
  }
  rd.reads = std::move(ready_reads_);
  ready_reads_.clear();
  rd.failed_reads = std::move(failed_reads_);
  failed_reads_.clear();
  return rd;
}

void Raft::advance(const Ready& rd) {
  // As etcd's stableTo: what was persisted vouches only for entries the log
  // still holds with the same term. A step() between ready() and advance()
  // may have truncated and rewritten the tail (§5.3); those entries go out
  // again in the next Ready. The same (index, term) is the same entry (Log
  // Matching, §5.3), so the highest still-matching entry is the bound.
  for (auto it = rd.entries.rbegin(); it != rd.entries.rend(); ++it) {
    if (log_.matches(it->index, it->term)) {
      persisted_index_ = std::max(persisted_index_, it->index);
      break;
    }
  }
  // The leader's own vote toward a commit counts only once on disk.
  if (role_ == Role::Leader) maybe_commit();
}

}  // namespace raft
