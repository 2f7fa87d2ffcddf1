// The node's shell around the pure core: one UDP socket, one single-threaded
// event loop, the disk. It drives the core and honours the Ready contract:
// persist (one fsync per batch), then send, then apply and answer clients.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "kv/state_machine.h"
#include "net/udp_socket.h"
#include "log/logger.h"
#include "node/peer_gate.h"
#include "raft/raft.h"
#include "storage/identity.h"
#include "storage/log_store.h"
#include "wire/messages.h"

namespace node {

using logging::Logger;
using logging::LogLevel;

struct Options {
  LogLevel log_level = LogLevel::Info;
  std::size_t max_datagrams_per_batch = 512;  // bounds one event-loop turn
};

// Ticks of the core derived from the config's milliseconds.
struct TickPlan {
  int tick_ms;
  int heartbeat_ticks;
  int election_ticks_min;
  int election_ticks_max;
};
TickPlan plan_ticks(const config::ServerParams& params);

class Server {
 public:
  // Opens the data directory (recovering the log) and binds the socket.
  // Throws storage::StorageError or std::runtime_error with a clear message.
  Server(config::ServerConfig config, Options options);

  // Runs until `stop` becomes true. Returns the process exit code.
  int run(const std::atomic<bool>& stop);

 private:
  void handle_datagram(std::string_view datagram, const net::Endpoint& from);
  void handle_peer_message(const raft::Message& m, bool authentic, const net::Endpoint& from);
  void handle_client_request(wire::ClientRequest request, const net::Endpoint& from);
  void handle_write(wire::ClientRequest request, const net::Endpoint& from);
  void handle_status(const wire::StatusRequest& request, const net::Endpoint& from);
  void process_ready();
  void apply(const raft::Entry& entry);
  void serve_read(std::uint64_t ctx);
  void after_role_change();

  void reply(const net::Endpoint& to, wire::ClientReply reply);
  void reply_not_leader(const net::Endpoint& to, const std::string& client, std::uint64_t seq);
  void reply_error(const net::Endpoint& to, const std::string& client, std::uint64_t seq,
                   const std::string& error, const std::string& message);
  void send_raft(const raft::Message& message);
  void log_message(const char* direction, const raft::Message& m) const;

  config::ServerConfig config_;
  Options options_;
  Logger log_;
  TickPlan ticks_;
  net::UdpSocket socket_;
  PeerGate gate_;
  // Before the stores open it: the identity check refuses another node's
  // or a damaged data_dir without touching it (storage/identity.h).
  storage::DataDirState data_dir_state_;
  storage::LogStore log_store_;
  storage::MetaStore meta_store_;
  std::unique_ptr<raft::Raft> core_;
  kv::StateMachine state_machine_;

  // Writes this node proposed as leader, answered when applied.
  struct PendingWrite {
    std::string client;
    std::uint64_t seq;
    net::Endpoint reply_to;
  };
  std::map<raft::Index, PendingWrite> pending_writes_;
  std::unordered_map<std::string, raft::Index> pending_by_client_;  // client -> index of its in-flight write

  // Linearizable reads waiting for the core's ReadIndex and then for apply.
  struct PendingRead {
    std::string client;
    std::uint64_t seq;
    std::string key;
    net::Endpoint reply_to;
    raft::Index read_index = 0;  // set once confirmed
  };
  std::unordered_map<std::uint64_t, PendingRead> pending_reads_;
  std::multimap<raft::Index, std::uint64_t> reads_waiting_apply_;
  std::uint64_t next_read_ctx_ = 1;

  raft::Index last_applied_ = 0;
  bool disk_full_ = false;  // started on a (nearly) full disk: no writes accepted
  raft::Role last_role_ = raft::Role::Follower;
  raft::Term last_term_ = 0;
  std::string last_leader_;
  std::string send_buffer_;
};

}  // namespace node
