// Snapshots and InstallSnapshot (Raft thesis ch. 5): the shell snapshots its
// state machine at an applied index and the core compacts its log behind it
// (§5.1); a leader sends its snapshot, in chunks that each fit one datagram,
// to a follower that needs an entry it has compacted (§5.3); a follower
// assembles the chunks in order and installs the snapshot, keeping any
// suffix of its log that follows and matches it.
#include <algorithm>
#include <memory>

#include "raft/raft.h"

namespace raft {

std::vector<Entry> entries_after_snapshot(const SnapshotMeta& meta, std::vector<Entry> log, bool* discarded) {
  if (discarded != nullptr) *discarded = false;
  if (log.empty()) return log;
  const Index first = log.front().index;
  RAFT_ASSERT(first >= 1 && first <= meta.index + 1,
              "the stored log starts at index " + std::to_string(first) + " but the snapshot ends at " +
                  std::to_string(meta.index) + ": entries " + std::to_string(meta.index + 1) + ".." +
                  std::to_string(first - 1) + " are lost");
  const Index last = log.back().index;
  if (last < meta.index) {
    // The log ends before the snapshot: the next entry is meta.index + 1,
    // so the stored log must restart there.
    if (discarded != nullptr) *discarded = true;
    return {};
  }
  if (first == meta.index + 1) return log;
  // Log Matching (§5.3): holding the snapshot's last entry with its term
  // means holding the same history up to it, so what follows is ours to keep.
  const Entry& at_snapshot = log[meta.index - first];
  if (at_snapshot.term == meta.term) {
    log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(meta.index - first + 1));
    return log;
  }
  if (discarded != nullptr) *discarded = true;
  return {};
}

Index Raft::snapshot_taken(Snapshot snapshot, Index compact_through) {
  const SnapshotMeta meta = snapshot.meta;
  RAFT_ASSERT(snapshot.data != nullptr && !snapshot.data->empty(), "a snapshot needs data");
  RAFT_ASSERT(meta.index <= last_applied_, "snapshot at index " + std::to_string(meta.index) +
                                               " beyond last_applied " + std::to_string(last_applied_));
  if (meta.index <= snapshot_.meta.index) return log_.base_index();
  // The base never passes the latest snapshot, so a newer one is in the log.
  RAFT_ASSERT(log_.term(meta.index) == meta.term, "snapshot at index " + std::to_string(meta.index) + " of term " +
                                                      std::to_string(meta.term) + ", but the log has term " +
                                                      std::to_string(log_.term(meta.index)) + " there");
  snapshot_ = std::move(snapshot);
  const Index through = std::min(compact_through, meta.index);
  if (through > log_.base_index()) log_.compact(through);
  return log_.base_index();
}

// ------------------------------------------------------------- leader ----

void Raft::send_snapshot_chunks(const NodeId& peer, Progress& pr) {
  RAFT_ASSERT(snapshot_.data != nullptr, "a follower needs compacted entries but there is no snapshot");
  if (pr.state != Progress::State::Snapshot || pr.snapshot_index != snapshot_.meta.index) {
    // A newer snapshot replaces one being sent: the follower starts over.
    pr.become_snapshot(snapshot_.meta.index, heartbeat_count_);
  }
  pr.sent_index = std::max(pr.sent_index, snapshot_.meta.index);
  const std::string& data = *snapshot_.data;
  const std::uint64_t total = data.size();
  const std::uint64_t chunk = config_.max_snapshot_chunk_bytes;
  const std::uint64_t window = chunk * config_.max_inflight_snapshot_chunks;
  while (pr.snapshot_next < total && pr.snapshot_next - pr.snapshot_acked < window) {
    const std::uint64_t n = std::min(chunk, total - pr.snapshot_next);
    Message m;
    m.type = MessageType::InstallSnapshot;
    m.to = peer;
    m.term = current_term_;
    m.last_included_index = snapshot_.meta.index;
    m.last_included_term = snapshot_.meta.term;
    m.offset = pr.snapshot_next;
    m.total_bytes = total;
    m.done = pr.snapshot_next + n == total;
    m.data.assign(data, pr.snapshot_next, n);
    m.read_round = read_round_;
    send(std::move(m));
    pr.snapshot_next += n;
  }
}

void Raft::step_install_snapshot_reply(const Message& m) {
  if (role_ != Role::Leader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.read_round > pr.acked_read_round) {
    pr.acked_read_round = m.read_round;
    release_reads();
  }
  if (m.done) {
    // The follower holds the state through last_included_index, so its log
    // matches ours there (committed entries are the same everywhere, §5.4.3).
    if (m.last_included_index > pr.match_index) {
      pr.match_index = m.last_included_index;
      maybe_commit();
    }
    if (pr.state == Progress::State::Snapshot) {
      // As for append replies: only a match at or past our base ends the
      // transfer. A late `installed` about an older snapshot, below the
      // base, is old news: the follower still needs the one being sent.
      if (pr.match_index < log_.base_index()) {
        pr.next_index = std::max(pr.next_index, pr.match_index + 1);  // unused while sending; kept above match
        return;
      }
      pr.become_probe(pr.match_index + 1);
      send_append(m.from, true);
    } else {
      pr.next_index = std::max(pr.next_index, pr.match_index + 1);
    }
    return;
  }
  // A reply about a snapshot no longer being sent to this follower is old news.
  if (pr.state != Progress::State::Snapshot || m.last_included_index != pr.snapshot_index) return;
  if (pr.snapshot_index != snapshot_.meta.index || m.offset > snapshot_.data->size()) {
    send_snapshot_chunks(m.from, pr);
    return;
  }
  if (m.offset > pr.snapshot_acked) {
    pr.snapshot_acked = m.offset;
    pr.snapshot_next = std::max(pr.snapshot_next, pr.snapshot_acked);
    pr.snapshot_progress_heartbeat = heartbeat_count_;
  } else if (m.offset == 0 && pr.snapshot_acked > 0) {
    // The follower lost what it had (it restarted, or began another
    // snapshot): start over. Other lower offsets are reordered old replies.
    pr.snapshot_acked = 0;
    pr.snapshot_next = 0;
    pr.snapshot_progress_heartbeat = heartbeat_count_;
  }
  send_snapshot_chunks(m.from, pr);
}

// ----------------------------------------------------------- follower ----

void Raft::step_install_snapshot(const Message& m) {
  if (role_ == Role::Leader) return;  // same term, two leaders: impossible (§5.2); ignore
  if (role_ != Role::Follower) become_follower(current_term_, m.from);
  leader_id_ = m.from;
  election_elapsed_ = 0;

  Message reply;
  reply.type = MessageType::InstallSnapshotReply;
  reply.to = m.from;
  reply.term = current_term_;
  reply.read_round = m.read_round;
  reply.last_included_index = m.last_included_index;

  const SnapshotMeta meta{m.last_included_index, m.last_included_term};
  // Everything this snapshot holds is committed here already: installing it
  // would roll the state machine back (a stale or duplicated snapshot).
  if (meta.index <= commit_index_) {
    reply.done = true;
    reply.offset = m.total_bytes;
    send(std::move(reply));
    return;
  }
  // Chunks of one snapshot are assembled in order. A leader's bytes are only
  // spliced with its own: two leaders may serialize the same state
  // differently, so a chunk of another term starts a new assembly.
  const bool same = incoming_ && incoming_->meta == meta && incoming_->total_bytes == m.total_bytes &&
                    incoming_->from == m.from && incoming_->term == m.term;
  if (!same) {
    if (m.offset != 0) {
      reply.offset = 0;  // not the start of anything we hold: ask for the start
      send(std::move(reply));
      return;
    }
    incoming_ = Incoming{meta, m.total_bytes, m.from, m.term, {}};
  }
  // A duplicate (offset below) or a chunk after a lost one (offset above)
  // adds nothing; the reply's offset tells the leader what is missing.
  if (m.offset == incoming_->bytes.size()) incoming_->bytes.append(m.data);
  if (incoming_->bytes.size() < incoming_->total_bytes) {
    reply.offset = incoming_->bytes.size();
    send(std::move(reply));
    return;
  }
  install_received_snapshot();
  reply.done = true;
  reply.offset = m.total_bytes;
  send(std::move(reply));
}

void Raft::install_received_snapshot() {
  Incoming in = std::move(*incoming_);
  incoming_.reset();
  const SnapshotMeta meta = in.meta;
  bool resets = false;
  if (log_.matches(meta.index, meta.term)) {
    // Thesis §5.3: the log holds the snapshot's last entry, so the entries
    // after it are the leader's too (Log Matching); keep them.
    log_.compact(meta.index);
    if (persisted_index_ < meta.index) {
      // The disk's log ends before the snapshot: it cannot be continued at
      // meta.index + 1, so it restarts there and the kept entries go to
      // disk again in the next Ready.
      persisted_index_ = meta.index;
      resets = true;
    }
  } else {
    // The log is behind the snapshot or disagrees with it: all of it goes.
    log_.reset(meta);
    persisted_index_ = meta.index;
    resets = true;
  }
  snapshot_ = Snapshot{meta, std::make_shared<const std::string>(std::move(in.bytes))};
  commit_index_ = std::max(commit_index_, meta.index);
  snapshot_pending_ = true;
  snapshot_resets_log_ = snapshot_resets_log_ || resets;
}

}  // namespace raft
