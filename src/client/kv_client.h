// The client library: speaks PROTOCOL.md ("Client requests", "Status") to
// the servers of a client config, with retries, redirects and a deadline.
// One KvClient is one client id with one socket and at most one outstanding
// seq, so it is not thread-safe: give each thread its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "net/udp_socket.h"
#include "wire/messages.h"

namespace client {

enum class Outcome : std::uint8_t {
  Ok,           // the operation took effect (get: was read)
  CasFailed,    // cas whose expected value did not match; value is the current one
  Unavailable,  // the deadline passed with no final answer
  Rejected,     // bad_request or too_large (or an error this client does not know)
};
const char* to_string(Outcome outcome);

struct Result {
  Outcome outcome = Outcome::Unavailable;
  std::optional<std::string> value;  // see PROTOCOL.md: meaning depends on op
  std::string error;                 // Rejected: the server's error code
  std::string message;               // Rejected: the server's detail, if any
  std::string node;                  // server id that gave the final answer
  int attempts = 0;                  // datagrams sent for this command
  std::vector<std::string> tried;    // distinct server ids sent to, in order
  std::uint64_t seq = 0;             // the seq this command used
  std::chrono::microseconds latency{0};

  bool ok() const { return outcome == Outcome::Ok; }
};

struct ServerStatus {
  std::string id;
  std::string address;  // as in the config, "host:port"
  bool up = false;      // answered within the request timeout
  // Valid only when up.
  std::string role;
  std::uint64_t term = 0;
  std::string leader;  // empty: unknown
  std::uint64_t commit_index = 0;
  std::uint64_t last_applied = 0;
  std::uint64_t last_log_index = 0;
  // Extensions of the reference node (empty / false from other nodes).
  bool disk_full = false;
  std::vector<std::pair<std::string, std::uint64_t>> peer_drops;
  // The latest snapshot's index (0: none yet); nullopt when the node's reply
  // has no snapshot_index (a node without snapshots).
  std::optional<std::uint64_t> snapshot_index;
};

// The answer to an operator's snapshot request (docs/PROTOCOL.md part 2).
struct SnapshotResult {
  std::string node;       // the server asked
  bool answered = false;  // a snapshot_reply came from it before the deadline
  bool ok = false;        // it holds a snapshot at snapshot_index now
  std::uint64_t snapshot_index = 0;
  std::string message;  // its detail when !ok
  std::chrono::microseconds latency{0};
};

class KvClient {
 public:
  using Clock = std::chrono::steady_clock;

  // `pinned_server`: id of the server the first command goes to (instead of a
  // random one); local gets always start there. `client_id` replaces the
  // config's id as the prefix of this client's id, which always ends in 48
  // fresh random bits (each KvClient is a new session; seqs start at 1). Throws std::invalid_argument for an unknown pinned server,
  // an invalid client id or a config without servers, and std::runtime_error
  // when an address cannot be resolved or the socket cannot be bound.
  explicit KvClient(const config::ClientConfig& config,
                    std::optional<std::string> pinned_server = std::nullopt,
                    std::optional<std::string> client_id = std::nullopt,
                    std::uint64_t seed = std::random_device{}());

  Result get(const std::string& key, bool local = false);
  Result set(const std::string& key, const std::string& value);
  Result cas(const std::string& key, const std::string& expected, const std::string& value);
  Result del(const std::string& key);

  // One round of `status` to every server in parallel; a server that does not
  // answer within the request timeout is reported down. Config order.
  std::vector<ServerStatus> status_all();

  // Asks one server to take a snapshot now and waits for its answer until
  // the deadline (deadline_ms: writing a large state takes a while). Sent
  // once, not retried: a retry would make a busy node write another one.
  // Throws std::invalid_argument for a server id not in the config.
  SnapshotResult snapshot(const std::string& server_id);

  // No command waits past `stop` (the bench uses it to end on time); commands
  // cut short by it return Unavailable.
  void set_hard_stop(std::optional<Clock::time_point> stop) { hard_stop_ = stop; }

  const std::string& id() const { return id_; }
  const config::ClientConfig& config() const { return config_; }
  // The server last known to lead, empty when unknown.
  std::string known_leader() const;
  net::Endpoint local_endpoint() const { return socket_.local_endpoint(); }

 private:
  struct Server {
    std::string id;
    net::Endpoint endpoint;
  };

  Result execute(wire::ClientRequest request);
  // Waits until `until` for a client_reply carrying `seq`; everything else
  // (stale duplicates, other types, garbage) is dropped.
  std::optional<wire::ClientReply> await_reply(std::uint64_t seq, Clock::time_point until);
  std::optional<std::size_t> index_of(const std::string& server_id) const;
  std::chrono::milliseconds election_pause();

  config::ClientConfig config_;
  std::string id_;
  std::vector<Server> servers_;
  std::unordered_map<std::string, std::size_t> index_by_id_;
  std::optional<std::size_t> pinned_;
  std::optional<std::size_t> leader_;  // last known leader
  bool first_command_ = true;
  std::uint64_t next_seq_;
  std::mt19937_64 rng_;
  std::optional<Clock::time_point> hard_stop_;
  net::UdpSocket socket_;
  std::string buffer_;  // receive buffer, reused
};

}  // namespace client
