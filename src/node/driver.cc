// The Ready loop: persist, send, apply and answer, advance (raft.h). The
// admission of client requests is in client_requests.cc.
#include "node/driver.h"

#include <utility>

namespace node {

namespace {

// Used when the caller passes no observer, so the loop never tests for null.
Observer& no_observer() {
  static Observer none;
  return none;
}

// Thesis §10.2.1: a leader may send append_entries (and install_snapshot)
// before its own entries are durable. They vouch for nothing on the
// leader's disk: only the leader of their term sends them, and it persisted
// that term and its vote before its request_votes left; its own entries
// count toward a commit only once durable (the core counts itself from
// persisted_index, raft.cc maybe_commit). If it crashes first, followers
// hold entries it lost, as a follower that missed an append would: no other
// leader can exist in that term to write a different entry at that index.
// Every other message (vote grants, append and snapshot acks, request_vote)
// vouches for this node's disk and waits for it.
bool may_leave_before_persist(const raft::Message& m) {
  return m.type == raft::MessageType::AppendEntries || m.type == raft::MessageType::InstallSnapshot;
}

}  // namespace

const char* role_name(raft::Role role) {
  switch (role) {
    case raft::Role::Leader: return "leader";
    case raft::Role::Follower: return "follower";
    // PROTOCOL.md knows three roles; a pre-candidate is campaigning.
    case raft::Role::PreCandidate:
    case raft::Role::Candidate: return "candidate";
  }
  return "follower";
}

Driver::Driver(raft::Config config, raft::Recovered recovered, Storage& storage, Transport& transport,
               const logging::Logger& log, DriverOptions options, Observer* observer, Snapshotter* snapshotter)
    : storage_(storage),
      transport_(transport),
      log_(log),
      options_(std::move(options)),
      observer_(observer != nullptr ? observer : &no_observer()),
      snapshotter_(snapshotter),
      core_(std::move(config), std::move(recovered)) {
  // The core keeps the recovered snapshot to send to followers; the state
  // machine starts from it (thesis §5.1), then applies the log after it.
  if (const raft::Snapshot& snapshot = core_.snapshot(); snapshot.data) {
    state_machine_.restore(*snapshot.data);
    last_applied_ = snapshot.meta.index;
  }
}

void Driver::process_ready() {
  while (core_.has_ready()) {
    raft::Ready rd = core_.ready();
    observer_->on_ready(rd);
    // 0. The leader's replication leaves before its own write (thesis
    // §10.2.1), so the follower's fsync runs alongside the leader's.
    for (const raft::Message& m : rd.messages)
      if (may_leave_before_persist(m)) transport_.send(m);
    transport_.flush();
    // 1. Persist: term and vote first (a snapshot's term must never be
    // newer than the disk's term, §5.1), then a snapshot from the leader
    // (the entries continue it), then the entries, one fsync for the batch.
    if (rd.hard_state) storage_.save_hard_state(*rd.hard_state);
    if (rd.snapshot) install_snapshot(*rd.snapshot, rd.snapshot_resets_log);
    if (!rd.entries.empty()) {
      storage_.append(rd.entries);
      storage_.sync();
    }
    observer_->on_persisted(rd);
    // 2. Send the rest (votes, acks, requests for votes), now that
    // everything they vouch for is durable (Figure 2, pitfalls 2 and 3).
    for (const raft::Message& m : rd.messages)
      if (!may_leave_before_persist(m)) transport_.send(m);
    transport_.flush();
    observer_->on_sent(rd);
    // 3. Apply and answer.
    for (const raft::Entry& e : rd.committed) apply(e);
    for (const raft::ReadState& rs : rd.reads) confirm_read(rs);
    for (std::uint64_t ctx : rd.failed_reads) {
      auto it = pending_reads_.find(ctx);
      if (it == pending_reads_.end()) continue;
      reply_not_leader(it->second.reply_to, it->second.client, it->second.seq);
      pending_reads_.erase(it);
    }
    core_.advance(rd);
    answer_writes_of_lost_leadership();
    transport_.flush();  // the answers of this Ready, in one batch
    observer_->on_advanced();
    maybe_take_snapshot();
  }
}

void Driver::apply(const raft::Entry& entry) {
  last_applied_ = entry.index;
  applied_bytes_since_snapshot_ += entry.data.size();
  std::optional<kv::Result> result;
  std::optional<kv::Command> command;
  if (entry.type == raft::EntryType::Command) {
    command = kv::decode(entry.data);
    if (command) {
      result = state_machine_.apply(entry.index, *command);
    } else {
      log_.error("entry " + std::to_string(entry.index) + " holds no valid command; skipped");
    }
  }
  const kv::Command* applied = command && result ? &*command : nullptr;
  const kv::Result* outcome = applied ? &*result : nullptr;
  observer_->on_applied(entry, applied, outcome);
  settle_write(entry.index, applied, outcome);
  // Reads whose read index is now applied.
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= last_applied_) {
    std::uint64_t ctx = reads_waiting_apply_.begin()->second;
    reads_waiting_apply_.erase(reads_waiting_apply_.begin());
    serve_read(ctx);
  }
}

// Answers the client whose write this node proposed at `index`, if any.
void Driver::settle_write(raft::Index index, const kv::Command* command, const kv::Result* result) {
  auto it = pending_writes_.find(index);
  if (it == pending_writes_.end()) return;
  PendingWrite pw = std::move(it->second);
  pending_writes_.erase(it);
  if (auto c = pending_by_client_.find(pw.client); c != pending_by_client_.end() && c->second == index)
    pending_by_client_.erase(c);
  if (command && result && command->client_id == pw.client && command->seq == pw.seq) {
    reply_result(pw.reply_to, pw.client, pw.seq, *result);
  } else {
    // Another leader's entry took this index: ours was never committed.
    reply_not_leader(pw.reply_to, pw.client, pw.seq);
  }
}

void Driver::confirm_read(const raft::ReadState& rs) {
  auto it = pending_reads_.find(rs.ctx);
  if (it == pending_reads_.end()) return;
  it->second.read_index = rs.index;
  if (rs.index <= last_applied_) {
    serve_read(rs.ctx);
  } else {
    reads_waiting_apply_.emplace(rs.index, rs.ctx);
  }
}

void Driver::serve_read(std::uint64_t ctx) {
  auto it = pending_reads_.find(ctx);
  if (it == pending_reads_.end()) return;
  wire::ClientReply r;
  r.dest = it->second.client;
  r.seq = it->second.seq;
  r.ok = true;
  r.value = state_machine_.get(it->second.key);
  reply(it->second.reply_to, std::move(r));
  pending_reads_.erase(it);
}

void Driver::answer_writes_of_lost_leadership() {
  const bool leader = core_.role() == raft::Role::Leader;
  if (was_leader_ && !leader) {
    // Our proposals may or may not commit under the next leader; the client
    // retries with the same seq and the session answers it exactly once.
    for (auto& [index, pw] : pending_writes_) reply_not_leader(pw.reply_to, pw.client, pw.seq);
    pending_writes_.clear();
    pending_by_client_.clear();
  }
  was_leader_ = leader;
}

wire::StatusReply Driver::status(const GateDrops& gate) const {
  wire::StatusReply r;
  r.id = core_.id();
  r.role = role_name(core_.role());
  r.term = core_.current_term();
  r.leader = core_.leader_id();
  r.commit_index = core_.commit_index();
  r.last_applied = last_applied_;
  r.last_log_index = core_.log().last_index();
  r.voted_for = core_.voted_for();
  r.disk_full = options_.disk_full;
  r.snapshot_index = core_.snapshot().meta.index;
  // Sorted by reason, as a JSON object's keys are: the reply decodes to itself.
  const raft::DropCounts& core = core_.drops();
  r.peer_drops = {
      {"bad_entries", core.bad_entries},
      {"bad_mac", gate.bad_mac},
      {"bad_snapshot", core.bad_snapshot},
      {"foreign_cluster", gate.foreign_cluster},
      {"future_read_round", core.future_read_round},
      {"malformed", gate.malformed},
      {"no_mac", gate.no_mac},
      {"out_of_range", core.out_of_range},
      {"unknown_sender", gate.unknown_sender + core.not_for_us},
      {"unsent_match", core.unsent_match},
      {"wrong_address", gate.wrong_address},
  };
  return r;
}

}  // namespace node
