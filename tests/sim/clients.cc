#include "clients.h"

#include <algorithm>
#include <sstream>

#include "checker.h"
#include "cluster.h"

namespace sim {

namespace {

// Fake addresses 10.0.0.1, 10.0.0.2, ...: the driver only hands them back.
constexpr std::uint32_t kFirstClientIp = 0x0a000001;
constexpr std::uint16_t kClientPort = 1;

std::string describe(const wire::ClientRequest& r) {
  std::string s = r.src + " #" + std::to_string(r.seq) + " " + wire::to_string(r.op) + " " + r.key;
  if (r.op == wire::Op::Cas) s += " '" + r.expected + "'->";
  if (r.op == wire::Op::Set || r.op == wire::Op::Cas) s += (r.op == wire::Op::Set ? " '" : "'") + r.value + "'";
  return s;
}

std::string describe(const wire::ClientReply& r) {
  std::string s = r.dest + " #" + std::to_string(r.seq) + " ";
  if (r.ok) {
    s += "ok";
  } else {
    s += r.error;
    if (!r.leader.empty()) s += " (leader " + r.leader + ")";
  }
  if (r.value) s += " '" + *r.value + "'";
  return s;
}

lincheck::OpType op_type(wire::Op op) {
  switch (op) {
    case wire::Op::Get: return lincheck::OpType::Get;
    case wire::Op::Set: return lincheck::OpType::Set;
    case wire::Op::Cas: return lincheck::OpType::Cas;
    case wire::Op::Delete: return lincheck::OpType::Delete;
  }
  return lincheck::OpType::Get;
}

}  // namespace

Clients::Clients(const ClientParams& params, std::uint64_t seed, const Clock& clock, Trace& trace, Checker& checker)
    : params_(params), rng_(seed), clock_(clock), trace_(trace), checker_(checker) {
  for (int k = 0; k <= params.clients; ++k) {
    Client c;
    c.id = k < params.clients ? "c" + std::to_string(k + 1) : std::string("probe");
    c.endpoint.ip = kFirstClientIp + static_cast<std::uint32_t>(k);
    c.endpoint.port = kClientPort;
    clients_.push_back(std::move(c));
  }
}

std::int64_t Clients::now_us() {
  if (clock_.tick != clock_tick_) {
    clock_tick_ = clock_.tick;
    events_in_tick_ = 0;
  }
  return clock_.tick * 1000000 + ++events_in_tick_ * 1000;
}

int Clients::client_of(const net::Endpoint& endpoint) const {
  if (endpoint.port != kClientPort || endpoint.ip < kFirstClientIp) return -1;
  const std::uint32_t k = endpoint.ip - kFirstClientIp;
  return k < clients_.size() ? static_cast<int>(k) : -1;
}

void Clients::tick(Cluster& cluster, bool start_new) {
  while (!link_.empty() && link_.begin()->first.first <= clock_.tick) {
    InFlight m = std::move(link_.begin()->second);
    link_.erase(link_.begin());
    deliver(m, cluster);
  }
  const int probe = static_cast<int>(clients_.size()) - 1;
  for (int k = 0; k <= probe; ++k) {
    Client& c = clients_[k];
    if (!c.waiting) continue;
    // Real clients give up at some point; the probe must get through.
    if (k != probe && clock_.tick - c.started >= params_.give_up_ticks) {
      trace_.event(EventKind::Client, c.target, 0, 0, 0, 0, "gives up (outcome unknown): " + describe(c.request));
      c.waiting = false;
      continue;
    }
    if (clock_.tick < c.resend_at) continue;
    // A timeout (no answer at all) sends elsewhere; a refusal named where.
    if (!c.refused) c.believed_leader = -1;
    c.refused = false;
    send(c, pick_node(c, c.target));
  }
  if (!start_new) return;
  for (int k = 0; k < probe; ++k) {
    if (!clients_[k].waiting && rng_.chance(params_.op_rate)) start(clients_[k]);
  }
}

int Clients::pick_node(const Client& c, int avoid) {
  return c.believed_leader >= 0 ? c.believed_leader : random_node(avoid);
}

int Clients::random_node(int avoid) {
  const int n = params_.nodes;
  if (n == 1 || avoid < 0) return static_cast<int>(rng_.below(static_cast<std::uint64_t>(n)));
  int pick = static_cast<int>(rng_.below(static_cast<std::uint64_t>(n - 1)));
  return pick >= avoid ? pick + 1 : pick;
}

void Clients::start(Client& c) {
  wire::ClientRequest& r = c.request;
  r = wire::ClientRequest{};
  r.src = c.id;
  r.seq = c.next_seq++;
  r.key = "k" + std::to_string(1 + rng_.below(static_cast<std::uint64_t>(params_.keys)));
  // Every written value is unique, so a read tells which write it saw.
  const std::string fresh = c.id + "." + std::to_string(r.seq);
  if (rng_.chance(params_.read_share)) {
    r.op = wire::Op::Get;
  } else {
    const std::uint64_t pick = rng_.below(10);
    r.op = pick < 7 ? wire::Op::Set : pick < 9 ? wire::Op::Cas : wire::Op::Delete;
    if (r.op != wire::Op::Delete) r.value = fresh;
    if (r.op == wire::Op::Cas) {
      auto seen = c.last_seen.find(r.key);
      r.expected = seen != c.last_seen.end() ? seen->second : "none";
    }
  }
  begin(c);
  // Now and then a client asks a random node, which may not lead.
  const int target = rng_.chance(0.05) ? random_node(-1) : pick_node(c, -1);
  if (rng_.chance(params_.stray_share)) send_stray(c, target);
  send(c, target);
}

// The same command with a seq far too far ahead (driver: kMaxSeqLead). Its
// answer goes unread (another seq); had it been applied, the session would
// jump ahead and refuse this client's next seqs as old, which receive()
// reports, and the history would hold a write nobody waited for.
void Clients::send_stray(const Client& c, int node) {
  InFlight m;
  m.client = static_cast<int>(&c - clients_.data());
  m.node = node;
  m.to_node = true;
  m.request = c.request;
  m.request.dest = node_name(node);
  // Far beyond the driver's 2^32 lead even after a long delay, below 2^53.
  m.request.seq += std::uint64_t{1} << 40;
  trace_.event(EventKind::Request, node, 0, 0, 0, 0, describe(m.request) + " (stray: seq far ahead)");
  enqueue(std::move(m));
}

void Clients::start_probe(int target, const std::string& value) {
  Client& c = clients_.back();
  if (c.waiting) return;
  c.request = wire::ClientRequest{};
  c.request.src = c.id;
  c.request.seq = c.next_seq++;
  c.request.op = wire::Op::Set;
  c.request.key = "live";
  c.request.value = value;
  begin(c);
  c.believed_leader = target;
  c.resend_at = clock_.tick;  // sent by the next tick()
}

void Clients::begin(Client& c) {
  const wire::ClientRequest& r = c.request;
  lincheck::Op op;
  op.id = static_cast<std::int64_t>(history_.ops.size()) + 1;
  op.client = c.id;
  op.type = op_type(r.op);
  op.key = r.key;
  if (r.op == wire::Op::Set || r.op == wire::Op::Cas) op.value = r.value;
  if (r.op == wire::Op::Cas) op.expected = r.expected;
  op.invoke_us = now_us();
  op.outcome = lincheck::Outcome::Unknown;  // until a final answer arrives
  c.op = history_.ops.size();
  history_.ops.push_back(std::move(op));
  c.waiting = true;
  c.refused = false;
  c.started = clock_.tick;
  c.sends = 0;
}

void Clients::send(Client& c, int node) {
  c.target = node;
  ++c.sends;
  c.resend_at = clock_.tick + params_.timeout_ticks;
  c.request.dest = node_name(node);
  trace_.event(EventKind::Request, node, 0, 0, 0, 0,
               describe(c.request) + (c.sends > 1 ? " (send " + std::to_string(c.sends) + ")" : ""));
  InFlight m;
  m.client = static_cast<int>(&c - clients_.data());
  m.node = node;
  m.to_node = true;
  m.request = c.request;
  enqueue(std::move(m));
}

void Clients::enqueue(InFlight m) {
  if (rng_.chance(faults_.loss)) {
    trace_.event(EventKind::Drop, m.node, 0, 0, 0, 0,
                 (m.to_node ? "request " + describe(m.request) : "reply " + describe(m.reply)) + " [loss]");
    return;
  }
  const int copies = rng_.chance(faults_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    std::int64_t delay = rng_.between(0, faults_.delay_max);
    if (rng_.chance(faults_.long_delay)) delay += rng_.between(faults_.long_delay_min, faults_.long_delay_max);
    link_.emplace(std::make_pair(clock_.tick + delay, next_order_++), m);
  }
}

void Clients::deliver(InFlight& m, Cluster& cluster) {
  if (!m.to_node) {
    receive(clients_[m.client], m.reply, m.node);
    return;
  }
  const Node& n = cluster.node(m.node);
  if (!n.alive() || (n.paused && !n.hold_while_paused)) {
    trace_.event(EventKind::Drop, m.node, 0, 0, 0, 0,
                 "request " + describe(m.request) + (n.alive() ? " [receiver paused]" : " [receiver crashed]"));
    return;
  }
  if (n.paused) {  // the kernel keeps it until the process runs again (at the earliest next tick)
    link_.emplace(std::make_pair(std::max(n.paused_until, clock_.tick + 1), next_order_++), std::move(m));
    return;
  }
  cluster.client_request(m.node, std::move(m.request), clients_[m.client].endpoint);
}

void Clients::on_reply_sent(int node, const net::Endpoint& to, const wire::ClientReply& reply) {
  const int k = client_of(to);
  if (k < 0) {
    throw Violation{"a node answers a client at the address the request came from",
                    node_name(node) + " answered " + describe(reply) + " to " + to.to_string()};
  }
  Client& c = clients_[k];
  if (reply.src != node_name(node) || reply.dest != c.id) {
    throw Violation{"a reply names the node that answers (src) and the client that asked (dest)",
                    node_name(node) + " sent " + describe(reply) + " with src '" + reply.src + "' to " + c.id};
  }
  // Exactly once (§8): every final answer to a write, first or retried, is
  // the result of its one application. Answers to seqs the client no longer
  // waits for go unread, like a real client's.
  if (c.waiting && reply.seq == c.request.seq && c.request.op != wire::Op::Get &&
      (reply.ok || reply.error == "cas_failed")) {
    checker_.on_write_reply(node, c.id, reply);
  }
  trace_.event(EventKind::Reply, node, 0, 0, 0, 0, describe(reply));
  InFlight m;
  m.client = k;
  m.node = node;
  m.to_node = false;
  m.reply = reply;
  enqueue(std::move(m));
}

void Clients::receive(Client& c, const wire::ClientReply& reply, int node) {
  if (!c.waiting || reply.seq != c.request.seq) return;  // an earlier attempt's answer: old news
  if (reply.ok || reply.error == "cas_failed") {
    complete(c, reply);
    return;
  }
  if (reply.error == "not_leader" || reply.error == "busy") {
    // Only the node we wait on may move us (kv_client.cc): a late refusal
    // from one we already left is old news.
    if (node != c.target) return;
    c.refused = true;
    if (reply.error == "not_leader") {
      c.believed_leader = node_index(reply.leader, params_.nodes);
      if (c.believed_leader == node) c.believed_leader = -1;
      // PROTOCOL.md: at once to a hinted leader; a short pause otherwise.
      c.resend_at = clock_.tick + (c.believed_leader >= 0 ? 1 : rng_.between(2, 5));
    } else {
      c.believed_leader = node;  // busy: same node, a little later
      c.resend_at = clock_.tick + rng_.between(2, 6);
    }
    return;
  }
  throw Violation{"a well-formed request of a live session is answered, never refused (" + reply.error + ")",
                  node_name(node) + " answered " + describe(c.request) + " with " + describe(reply) + ": " +
                      reply.message};
}

void Clients::complete(Client& c, const wire::ClientReply& reply) {
  lincheck::Op& op = history_.ops[c.op];
  op.outcome = reply.ok ? lincheck::Outcome::Ok : lincheck::Outcome::Fail;
  op.complete_us = now_us();
  op.has_result = true;
  op.result = reply.value;
  op.error = reply.error;
  c.waiting = false;
  c.believed_leader = c.target;
  if (reply.value) {
    c.last_seen[c.request.key] = *reply.value;
  } else {
    c.last_seen.erase(c.request.key);
  }
  if (c.request.op == wire::Op::Get) {
    ++reads_served_;
  } else if (reply.ok) {
    ++acks_;
  }
  if (&c == &clients_.back() && reply.ok) {
    probe_index_ = checker_.first_applied_index(c.id, c.request.seq);
  }
}

const lincheck::History& Clients::finish() {
  // Whatever still waits keeps its unknown outcome: it may take effect
  // after the run, or never.
  for (Client& c : clients_) c.waiting = false;
  return history_;
}

std::string Clients::status() const {
  std::ostringstream out;
  for (const Client& c : clients_) {
    if (!c.waiting) continue;
    out << "    " << c.id << ": waiting for " << describe(c.request) << " since tick " << c.started << ", "
        << c.sends << " sends, last to " << node_name(c.target) << "\n";
  }
  return out.str();
}

}  // namespace sim
