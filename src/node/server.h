// The node's shell around the driver (driver.h): one UDP socket, one
// single-threaded event loop, the disk. Single-threaded is load-bearing:
// threshold snapshots are written by a forked child (background_snapshot.h),
// which is only safe in a process of one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/udp_socket.h"
#include "log/logger.h"
#include "node/background_snapshot.h"
#include "node/driver.h"
#include "node/peer_gate.h"
#include "raft/raft.h"
#include "storage/identity.h"
#include "storage/meta_store.h"
#include "storage/recovery.h"
#include "storage/segmented_log.h"
#include "storage/snapshot_store.h"
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

// The node's shell: sockets, peer authentication, decoding, the real disk
// and the tick timer. Everything between a decoded input and the core (the
// Ready loop, client sessions, pending requests) is the Driver's.
class Server : private Storage, private Transport, private Observer {
 public:
  // Opens the data directory (recovering the log) and binds the socket.
  // Throws storage::StorageError or std::runtime_error with a clear message.
  Server(config::ServerConfig config, Options options);

  // Runs until `stop` becomes true. Returns the process exit code.
  int run(const std::atomic<bool>& stop);

 private:
  void handle_datagram(std::string_view datagram, const net::Endpoint& from);
  void handle_peer_message(const raft::Message& m, bool authentic, const net::Endpoint& from);
  void handle_status(const wire::StatusRequest& request, const net::Endpoint& from);
  void handle_snapshot_request(const wire::SnapshotRequest& request, const net::Endpoint& from);
  void handle_log_tail(const wire::LogTailRequest& request, const net::Endpoint& from);
  void reply_error(const net::Endpoint& to, const std::string& client, std::uint64_t seq,
                   const std::string& error, const std::string& message);
  void log_message(const char* direction, const raft::Message& m) const;
  void log_recovery(const storage::RecoveryReport& report, const raft::Recovered& recovered) const;

  // Storage: the segmented log, the term/vote file and the snapshot file.
  void save_hard_state(const raft::HardState& state) override { meta_store_.save(state); }
  void append(const std::vector<raft::Entry>& entries) override { log_store_.append(entries); }
  void sync() override { log_store_.sync(); }
  void save_snapshot(const raft::Snapshot& snapshot) override;
  void compact_log(raft::Index through) override { log_store_.compact(through); }
  void reset_log(raft::Index after) override { log_store_.reset(after); }
  // Transport: sealed peer datagrams and client replies, from one socket.
  void send(const raft::Message& message) override;
  void reply(const net::Endpoint& to, const wire::ClientReply& reply) override;
  // Sends every queued datagram: one sendmmsg per kMaxSendBatch of them.
  void flush() override;
  // Copies a datagram whose buffer is reused (the sealed peer message);
  // takes an encoded reply as it is.
  void queue_datagram(const net::Endpoint& to, std::string_view datagram);
  void queue_datagram(const net::Endpoint& to, std::string&& datagram);
  std::string& next_out_slot(const net::Endpoint& to);
  // Observer: one log line per change of role, term or leader.
  void on_advanced() override;

  config::ServerConfig config_;
  Options options_;
  Logger log_;
  TickPlan ticks_;
  net::UdpSocket socket_;
  PeerGate gate_;
  // Before the stores open it: the identity check refuses another node's
  // or a damaged data_dir without touching it (storage/identity.h).
  storage::DataDirState data_dir_state_;
  storage::SnapshotStore snapshot_store_;
  storage::SegmentedLog log_store_;
  storage::MetaStore meta_store_;
  // Writes threshold snapshots in a forked child; null when the environment
  // says RAFTKV_SYNC_SNAPSHOTS=1 (every snapshot on the loop, as before: for
  // comparison). Declared before the driver, which uses it, and after the
  // store it writes to; destroyed, it kills and reaps a running child.
  std::unique_ptr<BackgroundSnapshot> background_;
  std::unique_ptr<Driver> driver_;

  raft::Role last_role_ = raft::Role::Follower;
  raft::Term last_term_ = 0;
  std::string last_leader_;
  std::string send_buffer_;
  // Peer messages and client replies waiting for flush(): the driver
  // flushes before its fsync and after its sends, run() at the end of each
  // turn. Slots keep their capacity, so a datagram is not reallocated each
  // turn; at most kMaxSendBatch wait (a full queue is flushed first).
  std::vector<std::string> out_datagrams_;
  std::vector<net::Endpoint> out_to_;
  std::size_t out_count_ = 0;
};

}  // namespace node
