#include "node/server.h"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "kv/command.h"
#include "raft/describe.h"
#include "storage/disk_space.h"
#include "wire/codec.h"

namespace node {

namespace {

// A command's encoded size must leave room for the append_entries envelope,
// or the entry could never be shipped in one datagram.
constexpr std::size_t kMaxCommandBytes = wire::kMaxDatagramBytes - 1024;
// Below this much free space at start the node takes no writes (disk_full).
constexpr std::uint64_t kDiskFullBytes = std::uint64_t{16} << 20;
// How far a client_request's seq may run ahead of the session's last one.
constexpr std::uint64_t kMaxSeqLead = std::uint64_t{1} << 32;

std::string role_name(raft::Role role) {
  switch (role) {
    case raft::Role::Leader: return "leader";
    case raft::Role::Follower: return "follower";
    // PROTOCOL.md knows three roles; a pre-candidate is campaigning.
    case raft::Role::PreCandidate:
    case raft::Role::Candidate: return "candidate";
  }
  return "follower";
}

raft::Recovered recover(storage::LogStore& log_store, const storage::MetaStore& meta_store) {
  raft::Recovered recovered;
  // A missing meta next to a non-empty log is refused: it held our vote.
  recovered.hard_state = meta_store.load(log_store.last_index());
  recovered.entries = log_store.take_recovered();
  return recovered;
}

}  // namespace

TickPlan plan_ticks(const config::ServerParams& params) {
  // A tick of at most 10 ms and at most half a heartbeat keeps timers precise
  // enough without waking the loop more than 100 times a second.
  TickPlan plan{};
  plan.tick_ms = std::clamp(params.heartbeat_interval_ms / 2, 1, 10);
  plan.heartbeat_ticks = std::max(1, params.heartbeat_interval_ms / plan.tick_ms);
  plan.election_ticks_min = std::max(plan.heartbeat_ticks + 1, params.election_timeout_min_ms / plan.tick_ms);
  plan.election_ticks_max = std::max(plan.election_ticks_min, params.election_timeout_max_ms / plan.tick_ms);
  return plan;
}

Server::Server(config::ServerConfig config, Options options)
    : config_(std::move(config)),
      options_(options),
      log_(config_.id, options.log_level),
      ticks_(plan_ticks(config_.params)),
      socket_(net::resolve(config_.listen)),
      gate_(config_, log_),
      data_dir_state_(storage::prepare_data_dir(config_.data_dir, config_.cluster_id, config_.id)),
      log_store_(config_.data_dir),
      meta_store_(config_.data_dir) {
  raft::Config rc;
  rc.id = config_.id;
  for (const auto& peer : config_.peers) rc.peers.push_back(peer.id);
  rc.heartbeat_ticks = ticks_.heartbeat_ticks;
  rc.election_ticks_min = ticks_.election_ticks_min;
  rc.election_ticks_max = ticks_.election_ticks_max;
  std::random_device entropy;
  rc.rng_seed = (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();

  raft::Recovered recovered = recover(log_store_, meta_store_);
  if (data_dir_state_.identity_created) {
    log_.info("new data directory " + config_.data_dir + " for node " + config_.id + " of cluster " +
              config_.cluster_id);
  }
  if (log_store_.truncated_tail_records() > 0) {
    // Only a partial record at the very end is cut: it was never fsynced,
    // so it was never acknowledged.
    log_.warn("recovery: cut a torn last record (index " + std::to_string(log_store_.truncated_tail_index()) + ", " +
              std::to_string(log_store_.truncated_tail_bytes()) + " bytes at offset " +
              std::to_string(log_store_.truncated_tail_offset()) + ") off " + config_.data_dir + "/log");
  }
  if (log_store_.resumed_cut_bytes() > 0) {
    log_.info("recovery: finished removing a conflicting log suffix (" +
              std::to_string(log_store_.resumed_cut_bytes()) + " bytes) that a crash interrupted");
  }
  disk_full_ = data_dir_state_.reserve_released_bytes > 0 || storage::disk_nearly_full(config_.data_dir, kDiskFullBytes);
  if (disk_full_) {
    log_.warn("disk nearly full under " + config_.data_dir + " (" + std::to_string(storage::free_bytes(config_.data_dir)) +
              " bytes free" +
              (data_dir_state_.reserve_released_bytes > 0
                   ? ", after releasing the " + std::to_string(data_dir_state_.reserve_released_bytes) + "-byte reserve"
                   : std::string()) +
              "): serving as a follower and reads only; writes are answered busy. Free space and restart.");
  }
  log_.info("recovered term " + std::to_string(recovered.hard_state.current_term) + ", vote " +
            (recovered.hard_state.voted_for.empty() ? "none" : recovered.hard_state.voted_for) + ", " +
            std::to_string(recovered.entries.size()) + " log entries from " + config_.data_dir);
  core_ = std::make_unique<raft::Raft>(std::move(rc), std::move(recovered));
  last_term_ = core_->current_term();
  log_.info("listening on " + config_.listen.to_string() + " with " + std::to_string(config_.peers.size()) +
            " peers; heartbeat " + std::to_string(config_.params.heartbeat_interval_ms) + " ms, election timeout " +
            std::to_string(config_.params.election_timeout_min_ms) + "-" +
            std::to_string(config_.params.election_timeout_max_ms) + " ms");
}

int Server::run(const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  const auto tick = std::chrono::milliseconds(ticks_.tick_ms);
  auto next_tick = Clock::now() + tick;
  std::string buffer;
  buffer.reserve(wire::kMaxDatagramBytes + 1);
  net::Endpoint from;

  while (!stop.load(std::memory_order_relaxed)) {
    auto now = Clock::now();
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now);
    if (wait.count() < 0) wait = std::chrono::milliseconds(0);
    // Drain what has arrived (bounded), so one fsync covers the whole batch.
    if (socket_.receive(buffer, from, wait)) {
      handle_datagram(buffer, from);
      for (std::size_t n = 1; n < options_.max_datagrams_per_batch; ++n) {
        if (!socket_.receive(buffer, from, std::chrono::milliseconds(0))) break;
        handle_datagram(buffer, from);
      }
    }
    now = Clock::now();
    if (now >= next_tick) {
      // After a pause (SIGSTOP) time has passed for this node too, but a
      // bounded catch-up avoids a burst of heartbeats.
      int due = static_cast<int>((now - next_tick) / tick) + 1;
      due = std::min(due, ticks_.election_ticks_max + 1);
      for (int i = 0; i < due; ++i) core_->tick();
      next_tick = now + tick;
    }
    process_ready();
  }
  log_.info("stopping (signal); term " + std::to_string(core_->current_term()) + ", commit index " +
            std::to_string(core_->commit_index()));
  return 0;
}

void Server::handle_datagram(std::string_view datagram, const net::Endpoint& from) {
  // The MAC is checked before the JSON is parsed: a forged datagram costs
  // one hash, never a parse.
  const auth::PeerAuth::Verdict verdict = gate_.open(datagram);
  if (verdict == auth::PeerAuth::Verdict::BadMac) {
    gate_.drop(DropReason::BadMac, from, "MAC does not verify with the cluster key");
    return;
  }
  if (verdict == auth::PeerAuth::Verdict::ForeignCluster) {
    gate_.drop(DropReason::ForeignCluster, from, "sealed for another cluster (ours is " + config_.cluster_id + ")");
    return;
  }
  const bool authentic = verdict == auth::PeerAuth::Verdict::Ok;
  wire::Decoded decoded = wire::decode(datagram);
  if (auto* err = std::get_if<wire::DecodeError>(&decoded)) {
    if (authentic) {
      gate_.drop(DropReason::Malformed, from, err->message);
      return;
    }
    if (wire::is_peer_type(err->type)) {
      gate_.drop(DropReason::NoMac, from, err->type + " without a MAC (and malformed: " + err->message + ")");
      return;
    }
    // PROTOCOL.md: answer bad_request only for client_request and status
    // whose src is readable; drop everything else. Nothing changes state.
    bool answerable = (err->type == "client_request" || err->type == "status") && !err->src.empty();
    log_.debug("dropped bad datagram from " + from.to_string() + ": " + err->message);
    if (answerable) {
      const char* code = err->kind == wire::DecodeError::Kind::TooLarge ? "too_large" : "bad_request";
      reply_error(from, err->src, err->seq, code, err->message);
    }
    return;
  }
  if (auto* m = std::get_if<raft::Message>(&decoded)) {
    handle_peer_message(*m, authentic, from);
    return;
  }
  if (auto* request = std::get_if<wire::ClientRequest>(&decoded)) {
    handle_client_request(std::move(*request), from);
    return;
  }
  if (auto* status = std::get_if<wire::StatusRequest>(&decoded)) {
    handle_status(*status, from);
    return;
  }
  // client_reply or status_reply sent to a node: not for us.
}

void Server::handle_peer_message(const raft::Message& m, bool authentic, const net::Endpoint& from) {
  if (!authentic) {
    gate_.drop(DropReason::NoMac, from, std::string(raft::to_string(m.type)) + " claiming src '" + m.from + "'");
    return;
  }
  if (!gate_.admit(m, from)) return;
  log_message("<-", m);
  const std::uint64_t dropped_before = core_->drops().total();
  core_->step(m);
  if (core_->drops().total() != dropped_before) {
    log_.debug("core dropped " + std::string(raft::to_string(m.type)) + " from " + m.from +
               " (breaks a rule it can check; see status peer_drops)");
  }
}

void Server::handle_client_request(wire::ClientRequest request, const net::Endpoint& from) {
  if (request.src == config_.id || gate_.is_peer(request.src)) {
    reply_error(from, request.src, request.seq, "bad_request", "client id '" + request.src + "' is a server id");
    return;
  }
  if (request.op == wire::Op::Get) {
    if (request.local) {
      // Served from this node's state: may be stale, never waits for anyone.
      wire::ClientReply r;
      r.dest = request.src;
      r.seq = request.seq;
      r.ok = true;
      r.value = state_machine_.get(request.key);
      reply(from, std::move(r));
      return;
    }
    if (core_->role() != raft::Role::Leader) {
      reply_not_leader(from, request.src, request.seq);
      return;
    }
    std::uint64_t ctx = next_read_ctx_++;
    if (!core_->read_index(ctx)) {
      reply_error(from, request.src, request.seq, "busy",
                  "too many linearizable reads are waiting; retry shortly");
      return;
    }
    pending_reads_[ctx] = PendingRead{request.src, request.seq, std::move(request.key), from, 0};
    return;
  }
  handle_write(std::move(request), from);
}

void Server::handle_write(wire::ClientRequest request, const net::Endpoint& from) {
  if (core_->role() != raft::Role::Leader) {
    reply_not_leader(from, request.src, request.seq);
    return;
  }
  if (disk_full_) {
    reply_error(from, request.src, request.seq, "busy",
                "the disk under " + config_.data_dir + " is (nearly) full: no new writes until space is freed");
    return;
  }
  // Exactly once (§8): a command already applied is answered from the
  // session, not applied again.
  std::uint64_t last_seq = state_machine_.last_seq(request.src);
  if (request.seq <= last_seq) {
    if (auto cached = state_machine_.cached(request.src, request.seq)) {
      wire::ClientReply r;
      r.dest = request.src;
      r.seq = request.seq;
      r.ok = cached->ok;
      r.value = cached->value;
      r.error = cached->error;
      reply(from, std::move(r));
    } else {
      reply_error(from, request.src, request.seq, "bad_request",
                  "seq " + std::to_string(request.seq) + " is older than this client's last applied seq " +
                      std::to_string(last_seq));
    }
    return;
  }
  // Seqs grow by one per command; a seq far ahead of the session is a
  // mistake or an attack that would poison this client id for good (every
  // later, smaller seq would be refused as old). Refuse it, changing nothing.
  if (request.seq - last_seq > kMaxSeqLead) {
    reply_error(from, request.src, request.seq, "bad_request",
                "seq " + std::to_string(request.seq) + " is more than 2^32 ahead of this client's last applied seq " +
                    std::to_string(last_seq) + "; start a new client id instead");
    return;
  }
  // A retry of a command still in flight: answer it where it now waits.
  if (auto it = pending_by_client_.find(request.src); it != pending_by_client_.end()) {
    auto pw = pending_writes_.find(it->second);
    if (pw != pending_writes_.end() && pw->second.seq == request.seq) {
      pw->second.reply_to = from;
      return;
    }
  }
  kv::Command command;
  command.client_id = request.src;
  command.seq = request.seq;
  command.op = request.op;
  command.key = std::move(request.key);
  command.value = std::move(request.value);
  command.expected = std::move(request.expected);
  std::string data = kv::encode(command);
  if (data.size() > kMaxCommandBytes) {
    reply_error(from, request.src, request.seq, "too_large",
                "encoded command is " + std::to_string(data.size()) + " bytes; the limit is " +
                    std::to_string(kMaxCommandBytes));
    return;
  }
  auto index = core_->propose(std::move(data));
  if (!index) {
    reply_not_leader(from, request.src, request.seq);
    return;
  }
  pending_writes_[*index] = PendingWrite{request.src, request.seq, from};
  pending_by_client_[request.src] = *index;
}

void Server::handle_status(const wire::StatusRequest& request, const net::Endpoint& from) {
  wire::StatusReply r;
  r.src = config_.id;
  r.dest = request.src;
  r.id = config_.id;
  r.role = role_name(core_->role());
  r.term = core_->current_term();
  r.leader = core_->leader_id();
  r.commit_index = core_->commit_index();
  r.last_applied = last_applied_;
  r.last_log_index = core_->log().last_index();
  r.voted_for = core_->voted_for();
  r.disk_full = disk_full_;
  // Sorted by reason, as a JSON object's keys are: the reply decodes to itself.
  const raft::DropCounts& core = core_->drops();
  r.peer_drops = {
      {"bad_entries", core.bad_entries},
      {"bad_mac", gate_.dropped(DropReason::BadMac)},
      {"foreign_cluster", gate_.dropped(DropReason::ForeignCluster)},
      {"future_read_round", core.future_read_round},
      {"malformed", gate_.dropped(DropReason::Malformed)},
      {"no_mac", gate_.dropped(DropReason::NoMac)},
      {"out_of_range", core.out_of_range},
      {"unknown_sender", gate_.dropped(DropReason::UnknownSender) + core.not_for_us},
      {"unsent_match", core.unsent_match},
      {"wrong_address", gate_.dropped(DropReason::WrongAddress)},
  };
  socket_.send_to(from, wire::encode(r));
}

void Server::process_ready() {
  while (core_->has_ready()) {
    raft::Ready rd = core_->ready();
    // 1. Persist: term and vote, then the entries, one fsync for the batch.
    if (rd.hard_state) meta_store_.save(*rd.hard_state);
    if (!rd.entries.empty()) {
      log_store_.append(rd.entries);
      log_store_.sync();
    }
    // 2. Send, now that everything the messages vouch for is durable.
    for (const raft::Message& m : rd.messages) send_raft(m);
    // 3. Apply and answer.
    for (const raft::Entry& e : rd.committed) apply(e);
    for (const raft::ReadState& rs : rd.reads) {
      auto it = pending_reads_.find(rs.ctx);
      if (it == pending_reads_.end()) continue;
      it->second.read_index = rs.index;
      if (rs.index <= last_applied_) {
        serve_read(rs.ctx);
      } else {
        reads_waiting_apply_.emplace(rs.index, rs.ctx);
      }
    }
    for (std::uint64_t ctx : rd.failed_reads) {
      auto it = pending_reads_.find(ctx);
      if (it == pending_reads_.end()) continue;
      reply_not_leader(it->second.reply_to, it->second.client, it->second.seq);
      pending_reads_.erase(it);
    }
    core_->advance(rd);
    after_role_change();
  }
}

void Server::apply(const raft::Entry& entry) {
  last_applied_ = entry.index;
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
  if (auto it = pending_writes_.find(entry.index); it != pending_writes_.end()) {
    PendingWrite pw = std::move(it->second);
    pending_writes_.erase(it);
    if (auto c = pending_by_client_.find(pw.client); c != pending_by_client_.end() && c->second == entry.index)
      pending_by_client_.erase(c);
    if (command && result && command->client_id == pw.client && command->seq == pw.seq) {
      wire::ClientReply r;
      r.dest = pw.client;
      r.seq = pw.seq;
      r.ok = result->ok;
      r.value = result->value;
      r.error = result->error;
      reply(pw.reply_to, std::move(r));
    } else {
      // Another leader's entry took this index: ours was never committed.
      reply_not_leader(pw.reply_to, pw.client, pw.seq);
    }
  }
  // Reads whose read index is now applied.
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= last_applied_) {
    std::uint64_t ctx = reads_waiting_apply_.begin()->second;
    reads_waiting_apply_.erase(reads_waiting_apply_.begin());
    serve_read(ctx);
  }
}

void Server::serve_read(std::uint64_t ctx) {
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

void Server::after_role_change() {
  raft::Role role = core_->role();
  raft::Term term = core_->current_term();
  const std::string& leader = core_->leader_id();
  if (role != last_role_ || term != last_term_ || leader != last_leader_) {
    std::string line = "term " + std::to_string(term) + ": " + role_name(role);
    if (role == raft::Role::PreCandidate) line += " (pre-vote)";
    if (role != raft::Role::Leader) line += ", leader " + (leader.empty() ? std::string("unknown") : leader);
    line += ", log " + std::to_string(core_->log().last_index()) + ", commit " + std::to_string(core_->commit_index());
    log_.info(line);
  }
  if (last_role_ == raft::Role::Leader && role != raft::Role::Leader) {
    // Our proposals may or may not commit under the next leader; the client
    // retries with the same seq and the session answers it exactly once.
    for (auto& [index, pw] : pending_writes_) reply_not_leader(pw.reply_to, pw.client, pw.seq);
    pending_writes_.clear();
    pending_by_client_.clear();
  }
  last_role_ = role;
  last_term_ = term;
  last_leader_ = leader;
}

void Server::reply(const net::Endpoint& to, wire::ClientReply r) {
  r.src = config_.id;
  send_buffer_ = wire::encode(r);
  socket_.send_to(to, send_buffer_);
}

void Server::reply_not_leader(const net::Endpoint& to, const std::string& client, std::uint64_t seq) {
  wire::ClientReply r;
  r.dest = client;
  r.seq = seq;
  r.ok = false;
  r.error = "not_leader";
  if (core_->leader_id() != config_.id) r.leader = core_->leader_id();
  reply(to, std::move(r));
}

void Server::reply_error(const net::Endpoint& to, const std::string& client, std::uint64_t seq,
                         const std::string& error, const std::string& message) {
  wire::ClientReply r;
  r.dest = client;
  r.seq = seq;
  r.ok = false;
  r.error = error;
  r.message = message;
  reply(to, std::move(r));
}

void Server::send_raft(const raft::Message& m) {
  const net::Endpoint* to = gate_.endpoint_of(m.to);
  if (to == nullptr) return;
  send_buffer_ = wire::encode(m);
  const std::string& datagram = gate_.seal(send_buffer_);
  if (datagram.size() > wire::kMaxDatagramBytes) {
    log_.error(std::string("refusing to send an oversized ") + raft::to_string(m.type) + " (" +
               std::to_string(datagram.size()) + " bytes) to " + m.to);
    return;
  }
  log_message("->", m);
  socket_.send_to(*to, datagram);
}

void Server::log_message(const char* direction, const raft::Message& m) const {
  if (!log_.enabled(LogLevel::Debug)) return;
  const std::string& peer = direction[0] == '-' ? m.to : m.from;
  log_.debug(std::string(direction) + " " + peer + " " + raft::describe(raft::summarize(m)));
}

}  // namespace node
