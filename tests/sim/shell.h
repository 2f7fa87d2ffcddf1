// The simulated world of one node, as its node::Driver sees it: Storage is
// the node's simulated Disk, Transport the simulated Network (peers) and the
// Clients (replies), and the Observer hooks let the checker look after every
// step and inject the crash points inside a Ready:
//
//   BeforePersist  Observer::on_ready throws: nothing of that Ready survives;
//   TornPersist    Storage::append writes a prefix of the new entries, then
//                  throws (only a Ready with entries can tear; the crash
//                  waits for one);
//   AfterPersist   Observer::on_persisted throws: only the leader's
//                  append_entries and install_snapshot have left (they go
//                  before its own write, thesis §10.2.1);
//   AfterSend      Observer::on_sent throws: messages left, nothing applied.
//
// A crash is a SimulatedCrash exception; the cluster catches it and throws
// the driver away, as a real crash loses the process.
#pragma once

#include <cstdint>
#include <vector>

#include "node/driver.h"
#include "cluster.h"

namespace sim {

class Checker;
class Clients;

struct SimulatedCrash {
  CrashPoint point;
};

class Shell final : public node::Storage, public node::Transport, public node::Observer {
 public:
  Shell(Node& node, int cluster_size, Clock& clock, Trace& trace, Network& network, Checker& checker,
        Clients& clients, Rng& rng);

  // Before each process_ready(): the bound on Readies per call starts over.
  void begin_turn() { ready_rounds_ = 0; }

  // node::Storage: the simulated disk, durable at once (a crash between
  // append and sync is the torn write).
  void save_hard_state(const raft::HardState& state) override;
  void append(const std::vector<raft::Entry>& entries) override;
  void sync() override {}
  void save_snapshot(const raft::Snapshot& snapshot) override;
  void compact_log(raft::Index through) override;
  void reset_log(raft::Index after) override;
  // node::Transport.
  void send(const raft::Message& message) override;
  void reply(const net::Endpoint& to, const wire::ClientReply& reply) override;
  // node::Observer.
  void on_ready(const raft::Ready& rd) override;
  void on_persisted(const raft::Ready&) override { maybe_crash(CrashPoint::AfterPersist); }
  void on_sent(const raft::Ready&) override { maybe_crash(CrashPoint::AfterSend); }
  void on_applied(const raft::Entry& entry, const kv::Command* command, const kv::Result* result) override;
  void on_advanced() override;
  void on_proposed(raft::Index index, const std::string& data) override;
  void on_read_index(std::uint64_t ctx) override;
  void on_snapshot_saved(const raft::SnapshotMeta& meta, bool installed) override;

 private:
  void maybe_crash(CrashPoint point) const;

  Node& node_;
  int size_;
  Clock& clock_;
  Trace& trace_;
  Network& network_;
  Checker& checker_;
  Clients& clients_;
  Rng& rng_;
  int ready_rounds_ = 0;
};

}  // namespace sim
