#include "network.h"

#include <algorithm>
#include <numeric>

namespace sim {

namespace {

std::string group_name(const std::vector<int>& nodes) {
  std::vector<int> sorted = nodes;
  std::sort(sorted.begin(), sorted.end());
  std::string s = "{";
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i) s += " ";
    s += node_name(sorted[i]);
  }
  return s + "}";
}

}  // namespace

Partition random_partition(Rng& rng, int n, int leader) {
  Partition p;
  p.cut.assign(n, std::vector<char>(n, 0));
  auto cut_both = [&](int a, int b) { p.cut[a][b] = p.cut[b][a] = 1; };
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  rng.shuffle(order);
  // The node some shapes single out: the leader half of the time, if known.
  int target = (leader >= 0 && rng.chance(0.5)) ? leader : order[0];

  switch (rng.below(6)) {
    case 0: {  // Two halves of random sizes: one side may have a majority, or neither.
      int k = static_cast<int>(rng.between(1, n - 1));
      std::vector<int> a(order.begin(), order.begin() + k), b(order.begin() + k, order.end());
      for (int x : a) {
        for (int y : b) cut_both(x, y);
      }
      p.description = "split " + group_name(a) + " | " + group_name(b);
      break;
    }
    case 1: {  // A lone node: isolated both ways (a leader cut off must step down, §6.2).
      for (int y = 0; y < n; ++y) {
        if (y != target) cut_both(target, y);
      }
      p.description = "isolate " + node_name(target);
      break;
    }
    case 2: {  // One-way: the node's messages get out but nothing reaches it, or the reverse.
      bool deaf = rng.chance(0.5);
      for (int y = 0; y < n; ++y) {
        if (y == target) continue;
        if (deaf) {
          p.cut[y][target] = 1;
        } else {
          p.cut[target][y] = 1;
        }
      }
      p.description = deaf ? node_name(target) + " cannot receive" : node_name(target) + " cannot send";
      break;
    }
    case 3: {  // Bridge: two sides that cannot talk, and one node that talks to both.
      int bridge = target;
      std::vector<int> rest;
      for (int x : order) {
        if (x != bridge) rest.push_back(x);
      }
      int k = static_cast<int>(rng.between(1, static_cast<std::int64_t>(rest.size()) - 1));
      std::vector<int> a(rest.begin(), rest.begin() + k), b(rest.begin() + k, rest.end());
      for (int x : a) {
        for (int y : b) cut_both(x, y);
      }
      p.description = "bridge " + node_name(bridge) + " between " + group_name(a) + " and " + group_name(b);
      break;
    }
    case 4: {  // Random directed links cut: asymmetric, messy connectivity.
      double rate = rng.uniform(0.2, 0.6);
      int cuts = 0;
      for (int x = 0; x < n; ++x) {
        for (int y = 0; y < n; ++y) {
          if (x != y && rng.chance(rate)) {
            p.cut[x][y] = 1;
            ++cuts;
          }
        }
      }
      p.description = "random one-way cuts (" + std::to_string(cuts) + " links)";
      break;
    }
    default: {  // The target with a minority on one side, the majority on the other.
      int minority = (n - 1) / 2;  // including the target
      std::vector<int> a{target}, b;
      for (int x : order) {
        if (x == target) continue;
        if (static_cast<int>(a.size()) < minority) {
          a.push_back(x);
        } else {
          b.push_back(x);
        }
      }
      for (int x : a) {
        for (int y : b) cut_both(x, y);
      }
      p.description = "minority " + group_name(a) + " | majority " + group_name(b);
      break;
    }
  }
  return p;
}

Network::Network(int size, std::uint64_t seed, const Clock& clock, Trace& trace)
    : size_(size), rng_(seed), clock_(clock), trace_(trace) {}

std::int64_t Network::random_delay() {
  std::int64_t delay = rng_.between(0, faults_.delay_max);
  if (faults_.long_delay > 0 && rng_.chance(faults_.long_delay)) {
    delay += rng_.between(faults_.long_delay_min, faults_.long_delay_max);
  }
  return delay;
}

void Network::enqueue(int from, int to, const raft::Message& m, std::int64_t delay) {
  Envelope e;
  e.deliver_at = clock_.tick + delay;
  e.seq = next_seq_++;
  e.from = from;
  e.to = to;
  e.message = m;
  push(std::move(e));
}

void Network::push(Envelope&& e) {
  std::uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.push_back(std::move(e));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = std::move(e);
  }
  queue_.push_back(Key{slots_[slot].deliver_at, slots_[slot].seq, slot});
  std::push_heap(queue_.begin(), queue_.end(), Later{});
}

void Network::send(int from, int to, const raft::Message& m) {
  ++sent_;
  if (!link_up(from, to)) {
    ++dropped_;
    trace_.message(EventKind::Drop, from, to, m, "partition");
    return;
  }
  if (faults_.loss > 0 && rng_.chance(faults_.loss)) {
    ++dropped_;
    trace_.message(EventKind::Drop, from, to, m, "loss");
    return;
  }
  enqueue(from, to, m, random_delay());
  if (faults_.duplicate > 0 && rng_.chance(faults_.duplicate)) {
    trace_.message(EventKind::Duplicate, from, to, m);
    enqueue(from, to, m, random_delay());
  }
}

std::optional<Envelope> Network::pop_due() {
  while (!queue_.empty() && queue_.front().deliver_at <= clock_.tick) {
    std::pop_heap(queue_.begin(), queue_.end(), Later{});
    const std::uint32_t slot = queue_.back().slot;
    queue_.pop_back();
    Envelope e = std::move(slots_[slot]);
    free_slots_.push_back(slot);
    if (!link_up(e.from, e.to)) {
      ++dropped_;
      trace_.message(EventKind::Drop, e.from, e.to, e.message, "partition");
      continue;
    }
    return e;
  }
  return std::nullopt;
}

void Network::hold(Envelope envelope, std::int64_t until) {
  envelope.deliver_at = std::max(until, clock_.tick + 1);
  envelope.seq = next_seq_++;
  push(std::move(envelope));
}

void Network::set_partition(Partition partition) {
  partition_ = std::move(partition);
  partitioned_ = true;
  trace_.event(EventKind::Partition, -1, 0, 0, 0, 0, partition_.description);
}

void Network::heal() {
  if (!partitioned_) return;
  partitioned_ = false;
  trace_.event(EventKind::Heal, -1, 0, 0, 0, 0, partition_.description);
}

}  // namespace sim
