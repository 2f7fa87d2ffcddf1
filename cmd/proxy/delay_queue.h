// The timer queue for delayed datagrams: a std::priority_queue ordered by due
// time, ties broken by arrival sequence number (so equal delays keep order),
// bounded in length. Header-only and clock-free: callers pass times in.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

namespace proxy {

inline constexpr std::size_t kDefaultQueueLimit = 100000;

template <typename Meta>
class DelayQueue {
 public:
  struct Item {
    std::int64_t due_us = 0;
    std::uint64_t seq = 0;
    Meta meta{};
    std::vector<char> payload;  // the one allocation per delayed copy
  };

  explicit DelayQueue(std::size_t limit = kDefaultQueueLimit) : limit_(limit) {}

  // Copies the datagram in. False (nothing queued) when the queue is full.
  bool push(std::int64_t due_us, const Meta& meta, const char* data, std::size_t size) {
    if (heap_.size() >= limit_) return false;
    Item item;
    item.due_us = due_us;
    item.seq = next_seq_++;
    item.meta = meta;
    item.payload.assign(data, data + size);
    heap_.push(std::move(item));
    return true;
  }

  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  std::size_t limit() const { return limit_; }
  std::optional<std::int64_t> next_due() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.top().due_us;
  }

  // Moves the earliest item due at or before `now_us` into `out`.
  bool pop_due(std::int64_t now_us, Item& out) {
    if (heap_.empty() || heap_.top().due_us > now_us) return false;
    out = heap_.take_top();
    return true;
  }

 private:
  struct Later {
    bool operator()(const Item& a, const Item& b) const {
      return a.due_us != b.due_us ? a.due_us > b.due_us : a.seq > b.seq;
    }
  };
  // std::priority_queue::top() is const; this moves the payload out instead
  // of copying it, through the protected container.
  struct Heap : std::priority_queue<Item, std::vector<Item>, Later> {
    Item take_top() {
      std::pop_heap(this->c.begin(), this->c.end(), this->comp);
      Item item = std::move(this->c.back());
      this->c.pop_back();
      return item;
    }
  };

  std::size_t limit_;
  std::uint64_t next_seq_ = 0;
  Heap heap_;
};

}  // namespace proxy
