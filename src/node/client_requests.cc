// Admission of client requests (PROTOCOL.md "Client requests"): who may ask,
// the exactly-once session check, and what waits for the core. Answers leave
// through Transport::reply with this node as src.
#include <algorithm>
#include <utility>

#include "node/driver.h"
#include "wire/messages.h"

namespace node {

namespace {

// A command's encoded size must leave room for the append_entries envelope,
// or the entry could never be shipped in one datagram.
constexpr std::size_t kMaxCommandBytes = wire::kMaxDatagramBytes - 1024;
// How far a client_request's seq may run ahead of the session's last one.
constexpr std::uint64_t kMaxSeqLead = std::uint64_t{1} << 32;

}  // namespace

void Driver::client_request(wire::ClientRequest request, const net::Endpoint& from) {
  const raft::Config& config = core_.config();
  if (request.src == config.id ||
      std::find(config.peers.begin(), config.peers.end(), request.src) != config.peers.end()) {
    reply_error(from, request.src, request.seq, "bad_request", "client id '" + request.src + "' is a server id");
    return;
  }
  if (request.op == wire::Op::Get) {
    handle_read(std::move(request), from);
    return;
  }
  handle_write(std::move(request), from);
}

void Driver::handle_read(wire::ClientRequest request, const net::Endpoint& from) {
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
  if (core_.role() != raft::Role::Leader) {
    reply_not_leader(from, request.src, request.seq);
    return;
  }
  std::uint64_t ctx = next_read_ctx_++;
  if (!core_.read_index(ctx)) {
    reply_error(from, request.src, request.seq, "busy", "too many linearizable reads are waiting; retry shortly");
    return;
  }
  pending_reads_[ctx] = PendingRead{request.src, request.seq, std::move(request.key), from, 0};
  observer_->on_read_index(ctx);
}

void Driver::handle_write(wire::ClientRequest request, const net::Endpoint& from) {
  if (core_.role() != raft::Role::Leader) {
    reply_not_leader(from, request.src, request.seq);
    return;
  }
  if (options_.disk_full) {
    reply_error(from, request.src, request.seq, "busy",
                "the disk under " + options_.data_dir + " is (nearly) full: no new writes until space is freed");
    return;
  }
  if (answer_from_session(request, from)) return;
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
  // A leader with too many uncommitted entries refuses more for now: a
  // definite error (PROTOCOL.md v1.1 `busy`), retried by the client later.
  if (core_.proposals_full(data.size())) {
    reply_error(from, request.src, request.seq, "busy",
                "too many uncommitted writes (" + std::to_string(core_.uncommitted_bytes()) +
                    " bytes); retry shortly");
    return;
  }
  auto index = core_.propose(data);
  if (!index) {
    reply_not_leader(from, request.src, request.seq);
    return;
  }
  observer_->on_proposed(*index, data);
  pending_writes_[*index] = PendingWrite{request.src, request.seq, from};
  pending_by_client_[request.src] = *index;
}

// Exactly once (§8): a command already applied is answered from the session,
// not applied again; a seq far ahead of it is refused. True when answered.
bool Driver::answer_from_session(const wire::ClientRequest& request, const net::Endpoint& from) {
  std::uint64_t last_seq = state_machine_.last_seq(request.src);
  if (request.seq <= last_seq) {
    if (auto cached = state_machine_.cached(request.src, request.seq)) {
      reply_result(from, request.src, request.seq, *cached);
    } else {
      reply_error(from, request.src, request.seq, "bad_request",
                  "seq " + std::to_string(request.seq) + " is older than this client's last applied seq " +
                      std::to_string(last_seq));
    }
    return true;
  }
  // Seqs grow by one per command; a seq far ahead of the session is a
  // mistake or an attack that would poison this client id for good (every
  // later, smaller seq would be refused as old). Refuse it, changing nothing.
  if (request.seq - last_seq > kMaxSeqLead) {
    reply_error(from, request.src, request.seq, "bad_request",
                "seq " + std::to_string(request.seq) + " is more than 2^32 ahead of this client's last applied seq " +
                    std::to_string(last_seq) + "; start a new client id instead");
    return true;
  }
  return false;
}

void Driver::reply(const net::Endpoint& to, wire::ClientReply r) {
  r.src = core_.id();
  transport_.reply(to, r);
}

void Driver::reply_result(const net::Endpoint& to, const std::string& client, std::uint64_t seq,
                          const kv::Result& result) {
  wire::ClientReply r;
  r.dest = client;
  r.seq = seq;
  r.ok = result.ok;
  r.value = result.value;
  r.error = result.error;
  reply(to, std::move(r));
}

void Driver::reply_not_leader(const net::Endpoint& to, const std::string& client, std::uint64_t seq) {
  wire::ClientReply r;
  r.dest = client;
  r.seq = seq;
  r.ok = false;
  r.error = "not_leader";
  if (core_.leader_id() != core_.id()) r.leader = core_.leader_id();
  reply(to, std::move(r));
}

void Driver::reply_error(const net::Endpoint& to, const std::string& client, std::uint64_t seq,
                         const std::string& error, const std::string& message) {
  wire::ClientReply r;
  r.dest = client;
  r.seq = seq;
  r.ok = false;
  r.error = error;
  r.message = message;
  reply(to, std::move(r));
}

}  // namespace node
