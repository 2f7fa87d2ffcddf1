// The simulated network: every message sent by a node goes into one queue
// ordered by (delivery tick, send order). What it models, all driven by the
// run's seed:
//
//   loss         a datagram vanishes (UDP, a dropped packet, a full buffer);
//   duplication  a datagram arrives twice (retransmitting middleboxes, or a
//                client/shell that resends) - Raft must be idempotent;
//   delay        0..delay_max ticks of latency, so messages sent at different
//                times interleave;
//   long delay   occasionally 10..50 ticks (a packet stuck in a queue): the
//                message arrives long after newer ones, i.e. reordering, and
//                may come from a term that is long over (§5.1: stale terms
//                must be ignored);
//   partitions   a set of directed links that are cut: symmetric splits, a
//                lone node, one-way cuts (a node that can send but not
//                receive or the reverse) and a "bridge" node that sees both
//                sides of a split. A cut link drops messages both at send and
//                at delivery time.
//
// Whether the receiver is crashed or paused is the cluster's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raft/types.h"
#include "common.h"
#include "trace.h"

namespace sim {

struct NetworkFaults {
  double loss = 0;             // probability a message is dropped
  double duplicate = 0;        // probability a message is delivered twice
  int delay_max = 0;           // latency uniform in [0, delay_max] ticks
  double long_delay = 0;       // probability of an extra 10..50 tick delay
  int long_delay_min = 10;
  int long_delay_max = 50;
};

struct Envelope {
  std::int64_t deliver_at = 0;
  std::uint64_t seq = 0;  // send order: breaks ties so the queue order is total
  int from = -1;
  int to = -1;
  raft::Message message;
};

// cut[from][to] != 0: messages from -> to are dropped.
struct Partition {
  std::vector<std::vector<char>> cut;
  std::string description;
};

// A random partition shape over n nodes. `leader` (or -1) is the node that
// currently leads; some shapes target it, since cutting off the leader is what
// exercises elections, stale leaders and stale reads (§5.2, §6.2, §8).
Partition random_partition(Rng& rng, int n, int leader);

class Network {
 public:
  Network(int size, std::uint64_t seed, const Clock& clock, Trace& trace);

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }

  // Applies loss, partition, duplication and delay, then queues the message.
  void send(int from, int to, const raft::Message& m);
  // The next message due at or before now, in (deliver_at, seq) order.
  // Messages whose link is cut by now are dropped (and traced) on the way.
  std::optional<Envelope> pop_due();
  // Queues a message again for a later tick (a paused receiver's buffer).
  void hold(Envelope envelope, std::int64_t until);

  void set_partition(Partition partition);
  void heal();
  bool partitioned() const { return partitioned_; }
  const std::string& partition_description() const { return partition_.description; }
  bool link_up(int from, int to) const { return !partitioned_ || !partition_.cut[from][to]; }

  std::size_t in_flight() const { return queue_.size(); }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  void enqueue(int from, int to, const raft::Message& m, std::int64_t delay);
  std::int64_t random_delay();

  // The queue is a binary heap of small keys; envelopes stay put in slots.
  struct Key {
    std::int64_t deliver_at;
    std::uint64_t seq;
    std::uint32_t slot;
  };
  struct Later {
    bool operator()(const Key& a, const Key& b) const {
      return a.deliver_at != b.deliver_at ? a.deliver_at > b.deliver_at : a.seq > b.seq;
    }
  };
  void push(Envelope&& e);

  int size_;
  Rng rng_;
  const Clock& clock_;
  Trace& trace_;
  NetworkFaults faults_;
  std::vector<Key> queue_;  // heap ordered by Later: earliest (deliver_at, seq) on top
  std::vector<Envelope> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_seq_ = 0;
  bool partitioned_ = false;
  Partition partition_;
  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace sim
