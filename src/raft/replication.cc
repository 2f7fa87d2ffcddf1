// Log replication (§5.3), the commit rule (§5.4.2) and linearizable reads
// by ReadIndex (§8): the leader's and the follower's halves of
// append_entries. The rest of Raft is in raft.cc.
#include <algorithm>
#include <limits>

#include "raft/quorum.h"
#include "raft/raft.h"

namespace raft {

// --------------------------------------------------------- replication ----

void Raft::step_append_entries(const Message& m) {
  if (role_ == Role::Leader) return;  // same term, two leaders: impossible (§5.2); ignore
  if (role_ != Role::Follower) become_follower(current_term_, m.from);
  leader_id_ = m.from;
  election_elapsed_ = 0;

  Message reply;
  reply.type = MessageType::AppendEntriesReply;
  reply.to = m.from;
  reply.term = current_term_;
  reply.read_round = m.read_round;

  // Entries at or below our base are compacted into our snapshot, so they
  // are committed and the same as the leader's (§5.4.3): skip them, and
  // check the rest against the base instead of a prev we no longer hold.
  Index prev_index = m.prev_log_index;
  Term prev_term = m.prev_log_term;
  std::size_t skip = 0;
  if (log_.compacted(prev_index)) {
    const Index last_sent = m.prev_log_index + m.entries.size();
    if (last_sent <= log_.base_index()) {
      reply.success = true;
      reply.match_index = last_sent;
      send(std::move(reply));
      return;
    }
    skip = log_.base_index() - m.prev_log_index;
    prev_index = log_.base_index();
    prev_term = m.entries[skip - 1].term;
  }

  // §5.3 consistency check, with the hints that let the leader skip a whole
  // conflicting term per round trip instead of one entry.
  if (!log_.matches(prev_index, prev_term)) {
    reply.success = false;
    reply.reject_index = m.prev_log_index;
    if (prev_index > log_.last_index()) {
      reply.conflict_index = log_.last_index() + 1;
      reply.conflict_term = 0;
    } else {
      reply.conflict_term = log_.term(prev_index);
      reply.conflict_index = log_.first_index_of_term(reply.conflict_term, prev_index);
    }
    send(std::move(reply));
    return;
  }

  // Skip entries we already hold; truncate only at a real conflict, so a
  // duplicated or reordered old append never cuts off newer entries.
  Index index = m.prev_log_index;
  std::size_t i = skip;
  for (; i < m.entries.size(); ++i) {
    index = m.prev_log_index + 1 + i;
    auto have = log_.term_at(index);
    if (!have) break;
    if (*have != m.entries[i].term) {
      truncate_log_from(index, m.from, m.entries[i].term);
      break;
    }
  }
  for (; i < m.entries.size(); ++i) {
    Entry e = m.entries[i];
    log_.append(std::move(e));
  }
  Index last_new = m.prev_log_index + m.entries.size();
  // Figure 2: commitIndex = min(leaderCommit, index of last new entry): only
  // what this message proved we match may be committed.
  if (m.leader_commit > commit_index_) {
    commit_index_ = std::max(commit_index_, std::min(m.leader_commit, last_new));
  }
  reply.success = true;
  reply.match_index = last_new;
  send(std::move(reply));
}

// §5.3: a follower deletes a conflicting entry and all that follow it. A
// committed entry is never among them (Leader Completeness, §5.4.3): if one
// were, a leader or this log is broken, and going on would apply a different
// command at that index than other servers did. That is fatal, not ignored.
void Raft::truncate_log_from(Index from, const NodeId& because_of, Term new_term) {
  RAFT_ASSERT(from > commit_index_, "append_entries from " + because_of + " would overwrite committed entry " +
                                        std::to_string(from) + " (term " + std::to_string(log_.term(from)) +
                                        ") with term " + std::to_string(new_term) + "; commit_index is " +
                                        std::to_string(commit_index_));
  log_.truncate_from(from);
  persisted_index_ = std::min(persisted_index_, from - 1);
}

void Raft::step_append_entries_reply(const Message& m) {
  if (role_ != Role::Leader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  // Any reply of this term, success or not, shows the follower still
  // accepts us as leader: it confirms the ReadIndex round it echoes (§8).
  if (m.read_round > pr.acked_read_round) {
    pr.acked_read_round = m.read_round;
    release_reads();
  }

  if (pr.state == Progress::State::Snapshot) {
    // Only news that the follower already matches past our base ends the
    // transfer; a rejection is the expected answer to our base heartbeat.
    if (!m.success || m.match_index < log_.base_index()) return;
    pr.match_index = std::max(pr.match_index, m.match_index);
    pr.become_replicate();
    maybe_commit();
    while (pr.next_index <= log_.last_index() && send_append(m.from, false)) {
    }
    return;
  }

  if (m.success) {
    if (m.match_index > pr.match_index) {
      pr.match_index = m.match_index;
      pr.free_inflight_up_to(m.match_index);
      if (pr.state == Progress::State::Probe) {
        pr.become_replicate();
      } else {
        pr.next_index = std::max(pr.next_index, pr.match_index + 1);
      }
      maybe_commit();
    } else if (pr.state == Progress::State::Probe && m.match_index + 1 >= pr.next_index) {
      // The probe itself succeeded without adding anything: start pipelining.
      pr.become_replicate();
    }
    if (pr.state == Progress::State::Replicate) {
      while (pr.next_index <= log_.last_index() && send_append(m.from, false)) {
      }
    }
    return;
  }

  // Rejected. Ignore stale rejections: one for a prev we no longer probe,
  // or at or below what the follower is already known to match.
  if (m.reject_index <= pr.match_index) return;
  if (pr.state == Progress::State::Probe && m.reject_index + 1 != pr.next_index) return;
  Index next = m.conflict_index;
  if (m.conflict_term > 0) {
    if (auto last = log_.last_index_of_term(m.conflict_term)) next = *last + 1;
  }
  next = std::clamp(next, pr.match_index + 1, std::max(m.reject_index, pr.match_index + 1));
  pr.become_probe(next);
  send_append(m.from, true);
}

bool Raft::send_append(const NodeId& peer, bool allow_empty) {
  Progress& pr = progress_.at(peer);
  // Thesis §5.3: the entry before next_index is compacted, so the follower
  // can only catch up from our snapshot. No append goes out meanwhile.
  if (pr.state == Progress::State::Snapshot || log_.compacted(pr.next_index - 1)) {
    send_snapshot_chunks(peer, pr);
    return false;
  }
  if (pr.state == Progress::State::Probe && pr.probe_sent) return false;
  if (pr.state == Progress::State::Replicate &&
      pr.inflight.size() >= static_cast<std::size_t>(config_.max_inflight_appends))
    return false;
  Message m;
  m.type = MessageType::AppendEntries;
  m.to = peer;
  m.term = current_term_;
  m.prev_log_index = pr.next_index - 1;
  m.prev_log_term = log_.term(m.prev_log_index);
  m.entries = log_.slice(pr.next_index, config_.max_append_entries, config_.max_append_bytes);
  if (m.entries.empty() && !allow_empty) return false;
  m.leader_commit = commit_index_;
  m.read_round = read_round_;
  pr.sent_index = std::max(pr.sent_index, m.prev_log_index + m.entries.size());
  if (pr.state == Progress::State::Probe) {
    pr.probe_sent = true;
  } else if (!m.entries.empty()) {
    pr.next_index = m.entries.back().index + 1;  // optimistic: pipelined
    pr.inflight.push_back({m.entries.back().index, heartbeat_count_});
  }
  send(std::move(m));
  return true;
}

void Raft::send_heartbeat(const NodeId& peer) {
  Progress& pr = progress_.at(peer);
  // Anchored at match_index, which the follower is known to hold, so the
  // heartbeat lets it commit at most what it matches (pitfall: a heartbeat
  // must never commit entries the follower may not share with us). Below
  // our base the term is gone: anchor at the base, which the follower
  // matches only if it holds the same history.
  const Index anchor = std::max(pr.match_index, log_.base_index());
  pr.sent_index = std::max(pr.sent_index, anchor);
  Message m;
  m.type = MessageType::AppendEntries;
  m.to = peer;
  m.term = current_term_;
  m.prev_log_index = anchor;
  m.prev_log_term = log_.term(anchor);
  m.leader_commit = commit_index_;
  m.read_round = read_round_;
  send(std::move(m));
}

void Raft::broadcast_heartbeat() {
  ++heartbeat_count_;
  for (auto& [peer, pr] : progress_) {
    if (pr.state == Progress::State::Snapshot) {
      // No progress for a whole heartbeat: chunks or their replies were
      // lost. Resend from what the follower last said it holds.
      if (pr.snapshot_progress_heartbeat + 1 < heartbeat_count_) {
        pr.snapshot_next = pr.snapshot_acked;
        pr.snapshot_progress_heartbeat = heartbeat_count_;
      }
      send_heartbeat(peer);
      send_snapshot_chunks(peer, pr);
      continue;
    }
    if (pr.state == Progress::State::Probe) {
      pr.probe_sent = false;  // the last probe or its answer may be lost: retry
      send_append(peer, true);
      continue;
    }
    // Replicate: an append sent before the previous heartbeat and still
    // unacknowledged was probably lost; fall back to probing from match.
    if (!pr.inflight.empty() && pr.inflight.front().heartbeat + 1 < heartbeat_count_) {
      pr.become_probe(pr.match_index + 1);
      send_append(peer, true);
      continue;
    }
    send_heartbeat(peer);
  }
}

// ------------------------------------------------------------ ReadIndex ----

bool Raft::read_index(std::uint64_t ctx) {
  if (role_ != Role::Leader) {
    failed_reads_.push_back(ctx);
    return true;
  }
  if (reads_awaiting_commit_.size() + pending_reads_.size() + ready_reads_.size() >= config_.max_pending_reads)
    return false;
  // §8: until an entry of its own term commits, a new leader does not know
  // the commit index of the cluster.
  if (log_.term(commit_index_) != current_term_) {
    reads_awaiting_commit_.push_back(ctx);
    return true;
  }
  if (majority(cluster_size()) == 1) {
    ready_reads_.push_back({ctx, commit_index_});
    return true;
  }
  // Round 0: joins the next confirming round, sent at the next ready(), so
  // every read that arrived in the meantime shares one heartbeat round.
  pending_reads_.push_back({ctx, commit_index_, 0});
  return true;
}

void Raft::release_reads() {
  if (pending_reads_.empty()) return;
  std::vector<std::uint64_t>& rounds = quorum_scratch_;
  rounds.clear();
  rounds.push_back(std::numeric_limits<std::uint64_t>::max());  // ourselves
  for (const auto& [peer, pr] : progress_) rounds.push_back(pr.acked_read_round);
  std::uint64_t confirmed = majority_value(rounds);  // §8: the round a majority has answered
  auto released = std::stable_partition(pending_reads_.begin(), pending_reads_.end(), [&](const PendingRead& r) {
    return r.round == 0 || r.round > confirmed;
  });
  for (auto it = released; it != pending_reads_.end(); ++it) ready_reads_.push_back({it->ctx, it->index});
  pending_reads_.erase(released, pending_reads_.end());
}

void Raft::fail_pending_reads() {
  for (const PendingRead& r : pending_reads_) failed_reads_.push_back(r.ctx);
  for (std::uint64_t ctx : reads_awaiting_commit_) failed_reads_.push_back(ctx);
  pending_reads_.clear();
  reads_awaiting_commit_.clear();
}

bool Raft::has_unassigned_reads() const {
  return std::any_of(pending_reads_.begin(), pending_reads_.end(),
                     [](const PendingRead& r) { return r.round == 0; });
}

}  // namespace raft
