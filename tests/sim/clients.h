// Simulated clients. They talk to the nodes' drivers exactly like real
// clients talk to a node (PROTOCOL.md, src/client/kv_client.cc): one request
// at a time per client, seqs 1, 2, 3, ...; the same seq again after a
// timeout, a not_leader (at the hinted leader at once) or a busy answer;
// after a while they give up (the outcome is then unknown) and go on with
// the next seq. Requests and replies cross a lossy link of their own (loss,
// duplication, delay from the run's network faults), so replies get lost and
// retried seqs reach a leader that already applied them: what the sessions
// of the state machine are for.
//
// Every operation is recorded as a lincheck::Op (src/lincheck) with its
// outcome (ok / fail / unknown) so the whole run's client-visible history can
// be checked for linearizability at the end (linearizable.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lincheck/history.h"
#include "net/udp_socket.h"
#include "wire/messages.h"
#include "common.h"
#include "network.h"
#include "trace.h"

namespace sim {

class Checker;
class Cluster;

struct ClientParams {
  int nodes = 3;  // cluster size
  int clients = 3;
  int keys = 3;
  double op_rate = 0.2;     // per idle client and tick: chance of starting an operation
  double read_share = 0.3;  // of operations: linearizable gets
  // Of operations: also sent once with a seq 2^40 ahead (a buggy or
  // hostile client); the node must refuse it, changing nothing.
  double stray_share = 0.01;
  std::int64_t timeout_ticks = 30;    // resend the same seq elsewhere
  std::int64_t give_up_ticks = 300;   // outcome unknown, next seq
};

class Clients {
 public:
  Clients(const ClientParams& params, std::uint64_t seed, const Clock& clock, Trace& trace, Checker& checker);

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }

  // One tick: deliver due requests (to cluster's drivers) and replies, resend
  // what timed out or was refused, and (if `start_new`) start new operations.
  void tick(Cluster& cluster, bool start_new);
  // A node answered (Transport::reply): checks the answer, queues it.
  void on_reply_sent(int node, const net::Endpoint& to, const wire::ClientReply& reply);

  // The liveness probe: a write of a fresh value by a client of its own,
  // retried like any other until acknowledged. Index of the first
  // application of the acknowledged probe write, or nullopt.
  void start_probe(int target, const std::string& value);
  std::optional<raft::Index> probe_index() const { return probe_index_; }

  // Ends the run: operations still waiting become unknown.
  const lincheck::History& finish();

  std::uint64_t acks() const { return acks_; }
  std::uint64_t reads_served() const { return reads_served_; }
  std::string status() const;

 private:
  struct Client {
    std::string id;
    net::Endpoint endpoint;  // fake, unique per client: how replies find it
    std::uint64_t next_seq = 1;
    int believed_leader = -1;
    std::map<std::string, std::string> last_seen;  // key -> last value this client saw there
    // The operation in flight, if any.
    bool waiting = false;
    wire::ClientRequest request;
    std::size_t op = 0;            // index in history_.ops
    std::int64_t started = 0;      // tick of the first send
    std::int64_t resend_at = 0;    // tick of the next resend
    int target = -1;               // node of the last send
    int sends = 0;
    bool refused = false;          // the last answer was not_leader or busy
  };
  struct InFlight {
    int client;
    int node;
    bool to_node;  // request (client -> node) or reply (node -> client)
    wire::ClientRequest request;
    wire::ClientReply reply;
  };

  void start(Client& c);
  void send_stray(const Client& c, int node);
  void begin(Client& c);
  void send(Client& c, int node);
  void deliver(InFlight& m, Cluster& cluster);
  void receive(Client& c, const wire::ClientReply& reply, int node);
  void complete(Client& c, const wire::ClientReply& reply);
  void enqueue(InFlight m);
  // The believed leader, else a random node other than `avoid` (if >= 0).
  int pick_node(const Client& c, int avoid);
  int random_node(int avoid);
  int client_of(const net::Endpoint& endpoint) const;
  // The history's clock: tick * 10^6 + 1000 * (client events so far in this
  // tick), so lincheck's tables (in ms) read "tick.event", and the order of
  // client events is exact.
  std::int64_t now_us();

  ClientParams params_;
  Rng rng_;
  const Clock& clock_;
  Trace& trace_;
  Checker& checker_;
  NetworkFaults faults_;
  std::vector<Client> clients_;  // the last one is the liveness probe
  std::multimap<std::pair<std::int64_t, std::uint64_t>, InFlight> link_;
  std::uint64_t next_order_ = 0;
  std::int64_t clock_tick_ = -1;
  std::int64_t events_in_tick_ = 0;
  lincheck::History history_;
  std::optional<raft::Index> probe_index_;
  std::uint64_t probe_seq_ = 0;
  std::uint64_t acks_ = 0;
  std::uint64_t reads_served_ = 0;
};

}  // namespace sim
