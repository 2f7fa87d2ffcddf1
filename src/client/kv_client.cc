#include "client/kv_client.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "wire/codec.h"

namespace client {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Bind on loopback when every server is on loopback (nothing else can reach
// us then), otherwise on all interfaces so replies from other hosts arrive.
net::Endpoint bind_endpoint_for(const std::vector<net::Endpoint>& servers) {
  const bool all_loopback = std::all_of(servers.begin(), servers.end(), [](const net::Endpoint& e) {
    return (ntohl(e.ip) >> 24) == 127;
  });
  net::Endpoint local;
  local.ip = htonl(all_loopback ? INADDR_LOOPBACK : INADDR_ANY);
  local.port = 0;
  return local;
}

std::vector<net::Endpoint> resolve_all(const config::ClientConfig& config) {
  std::vector<net::Endpoint> endpoints;
  endpoints.reserve(config.servers.size());
  for (const auto& server : config.servers) endpoints.push_back(net::resolve(server.address));
  return endpoints;
}

// Every KvClient is a new session: the given id (or the config's) is only a
// prefix, followed by 48 random bits. Two processes sharing a config, or a
// run reusing an id an earlier run left in the servers' session table, can
// then never collide, and seqs can simply start at 1 (PROTOCOL.md: a seq far
// ahead of its session is refused, so a client may not invent huge ones).
std::string fresh_client_id(const std::string& prefix) {
  constexpr std::size_t kSuffixChars = 12;  // hex digits: the 48 random bits
  std::random_device entropy;
  const std::uint64_t bits = (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();
  char suffix[kSuffixChars + 2];
  std::snprintf(suffix, sizeof suffix, "-%012llx", static_cast<unsigned long long>(bits & 0xFFFFFFFFFFFFULL));
  const std::size_t room = wire::kMaxClientIdBytes - (kSuffixChars + 1);
  return prefix.substr(0, room) + suffix;
}

}  // namespace

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::Ok: return "ok";
    case Outcome::CasFailed: return "cas_failed";
    case Outcome::Unavailable: return "unavailable";
    case Outcome::Rejected: return "rejected";
  }
  return "unknown";
}

KvClient::KvClient(const config::ClientConfig& config, std::optional<std::string> pinned_server,
                   std::optional<std::string> client_id, std::uint64_t seed)
    : config_(config),
      id_(client_id.value_or(config.id)),
      next_seq_(1),
      rng_(seed),
      socket_(bind_endpoint_for(resolve_all(config))) {
  if (config_.servers.empty()) throw std::invalid_argument("client config lists no servers");
  if (!wire::is_valid_client_id(id_)) {
    throw std::invalid_argument("invalid client id '" + id_ +
                                "': 1-64 characters of [A-Za-z0-9_.:-]");
  }
  id_ = fresh_client_id(id_);
  const auto endpoints = resolve_all(config_);
  for (std::size_t i = 0; i < config_.servers.size(); ++i) {
    const std::string& sid = config_.servers[i].id;
    if (sid == id_) {
      throw std::invalid_argument("client id '" + id_ + "' equals a server id");
    }
    servers_.push_back(Server{sid, endpoints[i]});
    index_by_id_.emplace(sid, i);
  }
  if (pinned_server) {
    pinned_ = index_of(*pinned_server);
    if (!pinned_) throw std::invalid_argument("unknown server '" + *pinned_server + "'");
  }
  buffer_.reserve(65536);
}

std::optional<std::size_t> KvClient::index_of(const std::string& server_id) const {
  const auto it = index_by_id_.find(server_id);
  if (it == index_by_id_.end()) return std::nullopt;
  return it->second;
}

std::string KvClient::known_leader() const { return leader_ ? servers_[*leader_].id : std::string(); }

std::chrono::milliseconds KvClient::election_pause() {
  // Long enough not to spin while an election runs, short next to its
  // timeout; jittered so many clients do not retry in lockstep.
  std::uniform_int_distribution<int> ms(20, 50);
  return milliseconds(ms(rng_));
}

Result KvClient::get(const std::string& key, bool local) {
  wire::ClientRequest r;
  r.op = wire::Op::Get;
  r.key = key;
  r.local = local;
  return execute(std::move(r));
}

Result KvClient::set(const std::string& key, const std::string& value) {
  wire::ClientRequest r;
  r.op = wire::Op::Set;
  r.key = key;
  r.value = value;
  return execute(std::move(r));
}

Result KvClient::cas(const std::string& key, const std::string& expected,
                     const std::string& value) {
  wire::ClientRequest r;
  r.op = wire::Op::Cas;
  r.key = key;
  r.expected = expected;
  r.value = value;
  return execute(std::move(r));
}

Result KvClient::del(const std::string& key) {
  wire::ClientRequest r;
  r.op = wire::Op::Delete;
  r.key = key;
  return execute(std::move(r));
}

std::optional<wire::ClientReply> KvClient::await_reply(std::uint64_t seq, Clock::time_point until) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= until) return std::nullopt;
    // Round up so we never return a millisecond early and spin.
    const auto wait = std::chrono::ceil<milliseconds>(until - now);
    net::Endpoint from;
    if (!socket_.receive(buffer_, from, wait)) continue;  // re-checks the time
    auto decoded = wire::decode(buffer_);
    auto* reply = std::get_if<wire::ClientReply>(&decoded);
    // A reply to an earlier seq is a late duplicate of something already
    // settled; answering with it would attribute the wrong result.
    if (reply == nullptr || reply->seq != seq) continue;
    return std::move(*reply);
  }
}

Result KvClient::execute(wire::ClientRequest request) {
  const auto start = Clock::now();
  auto deadline = start + milliseconds(std::max(config_.params.deadline_ms, 0));
  if (hard_stop_) deadline = std::min(deadline, *hard_stop_);
  const auto request_timeout = milliseconds(std::max(config_.params.request_timeout_ms, 1));
  const bool read_locally = request.op == wire::Op::Get && request.local;

  request.src = id_;
  request.seq = next_seq_++;  // every retry of this command reuses it

  Result result;
  result.seq = request.seq;

  // Where to start: a local read goes where the user pointed; anything else
  // to the last known leader, else the pinned server, else anywhere.
  std::size_t target;
  if (read_locally && pinned_) {
    target = *pinned_;
  } else if (leader_) {
    target = *leader_;
  } else if (pinned_ && first_command_) {
    target = *pinned_;
  } else {
    target = std::uniform_int_distribution<std::size_t>(0, servers_.size() - 1)(rng_);
  }
  first_command_ = false;

  auto finish = [&](Outcome outcome) {
    result.outcome = outcome;
    result.latency = duration_cast<std::chrono::microseconds>(Clock::now() - start);
    return result;
  };

  bool send_now = true;
  std::size_t after_wait = target;  // where to go when the current wait expires
  Clock::time_point wait_until = start;
  // Immediate redirects since the last wait: two nodes with stale hints
  // pointing at each other must not make us spin.
  std::size_t redirects = 0;

  for (;;) {
    if (send_now) {
      if (Clock::now() >= deadline) return finish(Outcome::Unavailable);
      const Server& server = servers_[target];
      request.dest = server.id;
      const std::string datagram = wire::encode(request);
      if (datagram.size() > wire::kMaxDatagramBytes) {
        // The kernel would refuse it on every retry and we would report a
        // healthy cluster as unavailable; say what is wrong instead.
        result.error = "too_large";
        result.message = "request of " + std::to_string(datagram.size()) +
                         " bytes exceeds the " + std::to_string(wire::kMaxDatagramBytes) +
                         "-byte datagram limit";
        return finish(Outcome::Rejected);
      }
      socket_.send_to(server.endpoint, datagram);
      ++result.attempts;
      if (std::find(result.tried.begin(), result.tried.end(), server.id) == result.tried.end()) {
        result.tried.push_back(server.id);
      }
      send_now = false;
      wait_until = std::min(Clock::now() + request_timeout, deadline);
      after_wait = (target + 1) % servers_.size();  // on timeout: round-robin
    }

    auto reply = await_reply(request.seq, wait_until);
    if (!reply) {
      // Timeout or end of an election pause.
      if (Clock::now() >= deadline) return finish(Outcome::Unavailable);
      if (leader_ == target && after_wait != target) leader_.reset();  // it stopped answering
      target = after_wait;
      send_now = true;
      redirects = 0;
      continue;
    }

    if (!reply->ok && reply->error == "busy") {
      // PROTOCOL.md v1.1: definite (nothing happened); retry later at the
      // same node with the same seq.
      if (reply->src != servers_[target].id) continue;
      after_wait = target;
      wait_until = std::min(Clock::now() + election_pause(), deadline);
      continue;
    }
    if (reply->ok || reply->error != "not_leader") {
      // A final answer, even if from a server we already gave up on: it is
      // for this seq, and the server applies a seq at most once.
      result.node = reply->src;
      result.value = std::move(reply->value);
      // Local reads are served by any node, so they say nothing about
      // leadership; everything else is answered only by the leader.
      if (!read_locally) {
        if (auto idx = index_of(reply->src)) leader_ = idx;
      }
      if (reply->ok) return finish(Outcome::Ok);
      if (reply->error == "cas_failed") return finish(Outcome::CasFailed);
      result.error = reply->error;
      result.message = std::move(reply->message);
      return finish(Outcome::Rejected);
    }

    // not_leader. Only the server we are waiting on may move us; a late
    // not_leader from one we already left is old news.
    if (reply->src != servers_[target].id) continue;
    const auto hinted = reply->leader.empty() ? std::nullopt : index_of(reply->leader);
    if (hinted && *hinted != target && redirects < servers_.size()) {
      leader_ = hinted;
      target = *hinted;
      send_now = true;  // PROTOCOL.md: retry at the hinted leader at once
      ++redirects;
      continue;
    }
    // No (usable) hint, or redirects going in circles: an election is
    // probably running. Pause, still accepting a late answer, then move on.
    if (leader_ == target) leader_.reset();
    after_wait = hinted ? *hinted : (target + 1) % servers_.size();
    wait_until = std::min(Clock::now() + election_pause(), deadline);
  }
}

std::vector<ServerStatus> KvClient::status_all() {
  std::vector<ServerStatus> statuses;
  statuses.reserve(servers_.size());
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    ServerStatus s;
    s.id = servers_[i].id;
    s.address = config_.servers[i].address.to_string();
    statuses.push_back(std::move(s));
  }

  wire::StatusRequest request;
  request.src = id_;
  for (const Server& server : servers_) {
    request.dest = server.id;
    socket_.send_to(server.endpoint, wire::encode(request));
  }

  const auto until =
      Clock::now() + milliseconds(std::max(config_.params.request_timeout_ms, 1));
  std::size_t answered = 0;
  while (answered < servers_.size()) {
    const auto now = Clock::now();
    if (now >= until) break;
    net::Endpoint from;
    if (!socket_.receive(buffer_, from, std::chrono::ceil<milliseconds>(until - now))) continue;
    auto decoded = wire::decode(buffer_);
    const auto* reply = std::get_if<wire::StatusReply>(&decoded);
    if (reply == nullptr) continue;  // e.g. a late client_reply
    const auto idx = index_of(reply->src);
    if (!idx || statuses[*idx].up) continue;
    ServerStatus& s = statuses[*idx];
    s.up = true;
    s.role = reply->role;
    s.term = reply->term;
    s.leader = reply->leader;
    s.commit_index = reply->commit_index;
    s.last_applied = reply->last_applied;
    s.last_log_index = reply->last_log_index;
    s.disk_full = reply->disk_full;
    s.peer_drops = reply->peer_drops;
    if (reply->has_snapshot_index) s.snapshot_index = reply->snapshot_index;
    ++answered;
  }

  // The self-declared leader of the highest term (an old leader may not know
  // it was deposed yet) is the best guess for the next command.
  const ServerStatus* best = nullptr;
  for (const ServerStatus& s : statuses) {
    if (s.up && s.role == "leader" && (best == nullptr || s.term > best->term)) best = &s;
  }
  if (best != nullptr) leader_ = index_of(best->id);
  return statuses;
}

SnapshotResult KvClient::snapshot(const std::string& server_id) {
  const auto idx = index_of(server_id);
  if (!idx) throw std::invalid_argument("unknown server '" + server_id + "'");
  SnapshotResult result;
  result.node = server_id;
  const auto start = Clock::now();
  const auto until = start + milliseconds(std::max(config_.params.deadline_ms, 1));
  socket_.send_to(servers_[*idx].endpoint, wire::encode(wire::SnapshotRequest{id_, server_id}));
  for (;;) {
    const auto now = Clock::now();
    if (now >= until) break;
    net::Endpoint from;
    if (!socket_.receive(buffer_, from, std::chrono::ceil<milliseconds>(until - now))) continue;
    auto decoded = wire::decode(buffer_);
    auto* reply = std::get_if<wire::SnapshotReply>(&decoded);
    // Anything else is late traffic of an earlier command (or from another
    // server), not this answer.
    if (reply == nullptr || reply->src != server_id) continue;
    result.answered = true;
    result.ok = reply->ok;
    result.snapshot_index = reply->snapshot_index;
    result.message = std::move(reply->message);
    break;
  }
  result.latency = duration_cast<std::chrono::microseconds>(Clock::now() - start);
  return result;
}

}  // namespace client
