// A map with a size bound that evicts the least recently used entry. The
// router keeps its relay sockets in one. Header-only so it can be unit tested.
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace proxy {

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class LruMap {
 public:
  explicit LruMap(std::size_t capacity) : capacity_(capacity) {
    if (capacity_ == 0) throw std::invalid_argument("LruMap capacity must be positive");
  }

  std::size_t size() const { return index_.size(); }
  std::size_t capacity() const { return capacity_; }

  // Finds and marks as most recently used; nullptr when absent.
  Value* find(const Key& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // Inserts (the key must be absent) as most recently used. When full, first
  // removes the least recently used entry and returns it so the caller can
  // release what it holds.
  std::optional<std::pair<Key, Value>> insert(const Key& key, Value value) {
    if (index_.count(key) != 0) throw std::logic_error("LruMap::insert: key present");
    std::optional<std::pair<Key, Value>> evicted;
    if (index_.size() >= capacity_) {
      evicted.emplace(std::move(order_.back()));
      index_.erase(evicted->first);
      order_.pop_back();
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    return evicted;
  }

  bool erase(const Key& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  // Most recently used first.
  template <typename F>
  void for_each(F f) const {
    for (const auto& [k, v] : order_) f(k, v);
  }

 private:
  using Order = std::list<std::pair<Key, Value>>;
  std::size_t capacity_;
  Order order_;
  std::unordered_map<Key, typename Order::iterator, Hash> index_;
};

}  // namespace proxy
