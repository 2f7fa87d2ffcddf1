#include "node/server.h"

#include <algorithm>
#include <cstdlib>
#include <random>
#include <stdexcept>

#include "kv/command.h"
#include "raft/describe.h"
#include "storage/disk_space.h"
#include "wire/codec.h"

namespace node {


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
      snapshot_store_(config_.data_dir),
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

  storage::RecoveredState state = storage::recover_data_dir(snapshot_store_, log_store_, meta_store_);
  raft::Recovered recovered = std::move(state.recovered);
  const storage::RecoveryReport& report = state.report;
  if (data_dir_state_.identity_created) {
    log_.info("new data directory " + config_.data_dir + " for node " + config_.id + " of cluster " +
              config_.cluster_id);
  }
  log_recovery(report, recovered);
  DriverOptions driver_options;
  driver_options.data_dir = config_.data_dir;
  // Decided once, by prepare_data_dir, against the same threshold that
  // released the reserve.
  driver_options.disk_full = data_dir_state_.disk_nearly_full;
  driver_options.snapshot_threshold_entries = config_.params.snapshot_threshold_entries;
  driver_options.snapshot_threshold_bytes = config_.params.snapshot_threshold_bytes;
  // At most half the entry threshold: a small threshold still bounds the log.
  driver_options.snapshot_trailing_entries =
      std::min(config_.params.snapshot_trailing_entries, config_.params.snapshot_threshold_entries / 2);
  if (driver_options.disk_full) {
    log_.warn("disk nearly full under " + config_.data_dir + " (" + std::to_string(storage::free_bytes(config_.data_dir)) +
              " bytes free" +
              (data_dir_state_.reserve_released_bytes > 0
                   ? ", after releasing the " + std::to_string(data_dir_state_.reserve_released_bytes) + "-byte reserve"
                   : std::string()) +
              "): serving as a follower and reads only; writes are answered busy. Free space and restart.");
  }
  if (const char* sync = std::getenv("RAFTKV_SYNC_SNAPSHOTS"); sync != nullptr && std::string(sync) == "1") {
    log_.info("RAFTKV_SYNC_SNAPSHOTS=1: snapshots are written on the event loop");
  } else {
    background_ = std::make_unique<BackgroundSnapshot>(snapshot_store_, log_);
  }
  // The bases are private (nobody else may call them); the conversions
  // are made here, where they are accessible.
  Storage& storage = *this;
  Transport& transport = *this;
  Observer* observer = this;
  driver_ = std::make_unique<Driver>(std::move(rc), std::move(recovered), storage, transport, log_,
                                     std::move(driver_options), observer, background_.get());
  last_term_ = driver_->core().current_term();
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
      for (int i = 0; i < due; ++i) driver_->tick();
      next_tick = now + tick;
    }
    // A background snapshot is checked every turn (the wait above is at
    // most a tick): its child's exit is seen within a tick, and its
    // read-back takes a bounded slice of each turn.
    driver_->poll_snapshot();
    driver_->process_ready();
    flush();  // answers given outside a Ready (not_leader, cached, busy)
  }
  // A half-written snapshot is not worth waiting for: the log still holds
  // everything it would cover.
  if (background_) background_->cancel("the node is stopping");
  log_.info("stopping (signal); term " + std::to_string(driver_->core().current_term()) + ", commit index " +
            std::to_string(driver_->core().commit_index()));
  return 0;
}

void Server::handle_datagram(std::string_view datagram, const net::Endpoint& from) {
  // The MAC is checked before the JSON is parsed: a forged datagram costs
  // one hash, never a parse.
  const auth::PeerAuth::Opened opened = gate_.open(datagram);
  const auth::PeerAuth::Verdict verdict = opened.verdict;
  if (verdict == auth::PeerAuth::Verdict::BadMac) {
    gate_.drop(DropReason::BadMac, from, "MAC does not verify with the cluster key");
    return;
  }
  if (verdict == auth::PeerAuth::Verdict::ForeignCluster) {
    // The claimed id is unverified (we lack that cluster's key), but it names
    // the stray cluster for whoever reads the log.
    gate_.drop(DropReason::ForeignCluster, from,
               "sealed for cluster " + std::string(opened.cluster) + ", ours is " + config_.cluster_id);
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
    // log_tail (the dashboard's, part 2) is answered the same way.
    bool answerable =
        (err->type == "client_request" || err->type == "status" || err->type == "log_tail") && !err->src.empty();
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
    driver_->client_request(std::move(*request), from);
    return;
  }
  if (auto* status = std::get_if<wire::StatusRequest>(&decoded)) {
    handle_status(*status, from);
    return;
  }
  if (auto* snapshot = std::get_if<wire::SnapshotRequest>(&decoded)) {
    handle_snapshot_request(*snapshot, from);
    return;
  }
  if (auto* tail = std::get_if<wire::LogTailRequest>(&decoded)) {
    handle_log_tail(*tail, from);
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
  if (!log_.debug_enabled()) {
    driver_->step(m);
    return;
  }
  const std::uint64_t dropped_before = driver_->core().drops().total();
  driver_->step(m);
  if (driver_->core().drops().total() != dropped_before) {
    log_.debug("core dropped " + std::string(raft::to_string(m.type)) + " from " + m.from +
               " (breaks a rule it can check; see status peer_drops)");
  }
}

void Server::log_recovery(const storage::RecoveryReport& report, const raft::Recovered& recovered) const {
  const auto n = [](std::uint64_t v) { return std::to_string(v); };
  const storage::LogRecovery& lr = report.log;
  if (lr.torn.records > 0) {
    // Only a partial record at the very end is cut: it was never fsynced,
    // so it was never acknowledged.
    log_.warn("recovery: cut a torn last record (index " + n(lr.torn.index) + ", " + n(lr.torn.bytes) +
              " bytes at offset " + n(lr.torn.offset) + ") off " + lr.torn.path);
  }
  if (lr.resumed_cut_bytes > 0) {
    log_.info("recovery: finished removing a conflicting log suffix (" + n(lr.resumed_cut_bytes) +
              " bytes) that a crash interrupted");
  }
  if (lr.resumed_reset_after) {
    log_.info("recovery: finished a log reset (after index " + n(*lr.resumed_reset_after) + ") that a crash interrupted");
  }
  for (const std::string& path : lr.removed_temp_files) log_.info("recovery: removed " + path + ", left by a crash");
  if (report.removed_snapshot_temp) {
    std::string names;
    for (const std::string& path : snapshot_store_.removed_temp_files()) {
      names += (names.empty() ? "" : ", ") + path.substr(path.rfind('/') + 1);
    }
    log_.info("recovery: removed an unfinished " + names + " (" + n(report.removed_snapshot_temp_bytes) +
              " bytes) left by a crash");
  }
  if (lr.replaced_empty_old_file) log_.info("recovery: replaced an empty log file of an older version");
  if (report.log_reset) {
    log_.warn("recovery: the log did not continue the snapshot at index " +
              n(recovered.snapshot ? recovered.snapshot->meta.index : 0) + "; reset, " + n(report.entries_discarded) +
              " stale entries discarded");
  }
  std::string snapshot = "no snapshot";
  if (recovered.snapshot) {
    snapshot = "after the snapshot at index " + n(recovered.snapshot->meta.index) + " (term " +
               n(recovered.snapshot->meta.term) + ", " + n(report.snapshot_bytes) + " bytes)";
  }
  // The first words are a stable format: the harness reads them.
  log_.info("recovered term " + n(recovered.hard_state.current_term) + ", vote " +
            (recovered.hard_state.voted_for.empty() ? "none" : recovered.hard_state.voted_for) + ", " +
            n(recovered.entries.size()) + " log entries, " + snapshot + " (stored log " + n(report.log_first_index) +
            ".." + n(report.log_last_index) + ") from " + config_.data_dir);
}

void Server::handle_status(const wire::StatusRequest& request, const net::Endpoint& from) {
  GateDrops gate;
  gate.bad_mac = gate_.dropped(DropReason::BadMac);
  gate.foreign_cluster = gate_.dropped(DropReason::ForeignCluster);
  gate.malformed = gate_.dropped(DropReason::Malformed);
  gate.no_mac = gate_.dropped(DropReason::NoMac);
  gate.unknown_sender = gate_.dropped(DropReason::UnknownSender);
  gate.wrong_address = gate_.dropped(DropReason::WrongAddress);
  wire::StatusReply r = driver_->status(gate);
  r.src = config_.id;
  r.dest = request.src;
  socket_.send_to(from, wire::encode(r));
}

void Server::save_snapshot(const raft::Snapshot& snapshot) {
  // The driver cancels a background writer before every save; checked here
  // as well, because an older snapshot renamed over this one later would
  // roll the node back.
  if (background_ && background_->busy()) {
    log_.error("saving a snapshot at index " + std::to_string(snapshot.meta.index) +
               " while a background one runs: cancelling it");
    background_->cancel("a snapshot is being saved");
  }
  snapshot_store_.save(snapshot);
}

void Server::handle_snapshot_request(const wire::SnapshotRequest& request, const net::Endpoint& from) {
  // The operator's request (docs/PROTOCOL.md part 2): like status, it is
  // answered in any role; a failure to write the snapshot stops the node
  // (fail-stop, as every storage error does), so a reply is always ok.
  // Synchronous on purpose: the reply names the index the operator asked
  // for (last_applied now), and it blocks the loop for the whole write, as
  // an operator's explicit request may. A background snapshot still
  // running is cancelled (Driver::take_snapshot): this one is newer.
  wire::SnapshotReply r;
  r.src = config_.id;
  r.dest = request.src;
  const raft::Index before = driver_->core().snapshot().meta.index;
  r.snapshot_index = driver_->take_snapshot();
  r.ok = true;
  if (r.snapshot_index == before) r.message = "nothing applied since the snapshot at index " + std::to_string(before);
  log_.info("snapshot requested by " + request.src + " at " + from.to_string() + ": index " +
            std::to_string(r.snapshot_index));
  socket_.send_to(from, wire::encode(r));
}

void Server::handle_log_tail(const wire::LogTailRequest& request, const net::Endpoint& from) {
  // The dashboard's view of the log (docs/PROTOCOL.md part 2): terms only,
  // read from the core's in-memory log, so it costs no disk access and
  // changes nothing. The codec bounds count, so the reply fits a datagram.
  const raft::Log& log = driver_->core().log();
  wire::LogTailReply r;
  r.src = config_.id;
  r.dest = request.src;
  r.base_index = log.base_index();
  r.base_term = log.base_term();
  r.last_index = log.last_index();
  const std::uint64_t n = std::min<std::uint64_t>(r.last_index - r.base_index, request.count);
  r.terms.reserve(n);
  for (raft::Index i = r.last_index - n + 1; i <= r.last_index; ++i) r.terms.push_back(log.term(i));
  socket_.send_to(from, wire::encode(r));
}

void Server::on_advanced() {
  const raft::Raft& core = driver_->core();
  raft::Role role = core.role();
  raft::Term term = core.current_term();
  const std::string& leader = core.leader_id();
  if (role != last_role_ || term != last_term_ || leader != last_leader_) {
    std::string line = "term " + std::to_string(term) + ": " + role_name(role);
    if (role == raft::Role::PreCandidate) line += " (pre-vote)";
    if (role != raft::Role::Leader) line += ", leader " + (leader.empty() ? std::string("unknown") : leader);
    line += ", log " + std::to_string(core.log().last_index()) + ", commit " + std::to_string(core.commit_index());
    log_.info(line);
  }
  last_role_ = role;
  last_term_ = term;
  last_leader_ = leader;
}

void Server::reply(const net::Endpoint& to, const wire::ClientReply& r) {
  queue_datagram(to, wire::encode(r));
}

std::string& Server::next_out_slot(const net::Endpoint& to) {
  if (out_count_ == net::UdpSocket::kMaxSendBatch) flush();
  if (out_datagrams_.size() == out_count_) {
    out_datagrams_.emplace_back();
    out_to_.emplace_back();
  }
  out_to_[out_count_] = to;
  return out_datagrams_[out_count_++];
}

void Server::queue_datagram(const net::Endpoint& to, std::string_view datagram) {
  next_out_slot(to).assign(datagram);
}

void Server::queue_datagram(const net::Endpoint& to, std::string&& datagram) {
  next_out_slot(to) = std::move(datagram);
}

void Server::flush() {
  if (out_count_ == 0) return;
  socket_.send_many(out_to_.data(), out_datagrams_.data(), out_count_);
  out_count_ = 0;
}

void Server::reply_error(const net::Endpoint& to, const std::string& client, std::uint64_t seq,
                         const std::string& error, const std::string& message) {
  wire::ClientReply r;
  r.src = config_.id;
  r.dest = client;
  r.seq = seq;
  r.ok = false;
  r.error = error;
  r.message = message;
  reply(to, r);
}

void Server::send(const raft::Message& m) {
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
  queue_datagram(*to, datagram);
}

void Server::log_message(const char* direction, const raft::Message& m) const {
  if (!log_.enabled(LogLevel::Debug)) return;
  const std::string& peer = direction[0] == '-' ? m.to : m.from;
  log_.debug(std::string(direction) + " " + peer + " " + raft::describe(raft::summarize(m)));
}

}  // namespace node
