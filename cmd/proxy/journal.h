// The message journal (docs/proxy.md, "Message journal"): when asked
// (--journal PATH), the proxy records one record per event it sees
//   send     a datagram arrived on a link (its fate: pass, dup, drop, block)
//   deliver  a copy was handed to the kernel
//   lost     a copy was lost after it was accepted (blocked while delayed,
//            delay queue full, send failed)
// with a monotonic time, the link, the size, a one-line summary and, for
// send and deliver, a vector clock. The proxy keeps one clock per endpoint
// (each node, and all clients together as "client"): a send ticks the
// sender's own entry; a delivery merges the message's clock into the
// receiver's and ticks the receiver's entry.
//
// Bounded: a ring of at most `capacity` records (each with its clock in a
// flat array), and at most kMaxJournalBytes whatever `capacity` asks; when
// full, the oldest record is overwritten and counted in `evicted`. Clocks of delayed copies wait in a map bounded
// by the delay queue. Header-only and clock-free (callers pass times in) so
// the unit test can drive it directly.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "summary.h"

namespace proxy {

inline constexpr std::size_t kDefaultJournalRecords = 100000;
inline constexpr std::size_t kMaxJournalBytes = std::size_t{256} << 20;  // records plus their clocks

enum class JournalEvent : std::uint8_t { kSend, kDeliver, kLost };
enum class JournalFate : std::uint8_t { kPass, kDuplicate, kDrop, kBlock };

struct JournalRecord {
  std::int64_t t_us = 0;
  std::uint64_t msg = 0;        // message number, shared by its send, deliveries and losses
  JournalEvent event = JournalEvent::kSend;
  JournalFate fate = JournalFate::kPass;  // send only
  std::uint8_t copy = 0;        // deliver / lost: 0, or 1 for the duplicate
  std::uint16_t from = 0;       // endpoints as LinkTable numbers them
  std::uint16_t to = 0;
  std::uint32_t size = 0;
  std::int64_t delay_us[2] = {0, 0};  // send: per copy (pass: copy 0 only)
  const char* why = "";         // block: partition/block/rule; lost: blocked/overflow/send_failed
  // send only: the datagram's first bytes and its entry count, summarized
  // when the journal is written (off the forwarding path)
  std::uint16_t head_size = 0;
  std::int16_t entries = -1;
  char head[kSummaryHeadBytes];
};

class Journal {
 public:
  // `names`: the endpoints' names by number (nodes, then "client").
  Journal(std::vector<std::string> names, std::size_t capacity)
      : names_(std::move(names)), width_(names_.size()), clocks_(width_ * width_, 0) {
    const std::size_t per_record = sizeof(JournalRecord) + width_ * sizeof(std::uint64_t);
    capacity_ = std::max<std::size_t>(1, std::min(capacity, kMaxJournalBytes / per_record));
  }

  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return count_ < capacity_ ? count_ : capacity_; }
  std::uint64_t evicted() const { return count_ > capacity_ ? count_ - capacity_ : 0; }
  std::uint64_t total() const { return count_; }
  std::size_t pending_clocks() const { return in_flight_.size(); }

  // A datagram arrived on link from>to. Ticks the sender's clock. Returns
  // the message number to pass to deliver()/lost(). `delayed_copies` is how
  // many of its copies wait in the delay queue (their clocks are kept).
  std::uint64_t send(std::int64_t t_us, int from, int to, const char* data, std::size_t size, JournalFate fate,
                     const std::int64_t delay_us[2], const char* why, int delayed_copies) {
    const std::uint64_t msg = ++last_msg_;
    ++clock_of(from)[from];
    JournalRecord& r = next_record();
    r.t_us = t_us;
    r.msg = msg;
    r.event = JournalEvent::kSend;
    r.fate = fate;
    r.copy = 0;
    r.from = static_cast<std::uint16_t>(from);
    r.to = static_cast<std::uint16_t>(to);
    r.size = static_cast<std::uint32_t>(size);
    r.delay_us[0] = delay_us[0];
    r.delay_us[1] = delay_us[1];
    r.why = why;
    r.head_size = static_cast<std::uint16_t>(std::min(size, kSummaryHeadBytes));
    std::memcpy(r.head, data, r.head_size);
    r.entries = static_cast<std::int16_t>(std::min(count_entries(data, size), 32767));
    copy_clock(clock_of(from));
    if (delayed_copies > 0) {
      auto& pending = in_flight_[msg];
      pending.first = delayed_copies;
      pending.second.assign(clock_of(from), clock_of(from) + width_);
    }
    return msg;
  }

  // A copy was handed to the kernel: the receiver merges the message's
  // clock (the sender's at the send) and ticks. `delayed`: it came from the
  // delay queue; otherwise it left at once and the sender's clock is still
  // the message's.
  void deliver(std::int64_t t_us, std::uint64_t msg, int copy, int from, int to, std::size_t size, bool delayed) {
    std::uint64_t* receiver = clock_of(to);
    const std::uint64_t* message = clock_of(from);
    auto pending = in_flight_.end();
    if (delayed) {
      pending = in_flight_.find(msg);
      message = pending == in_flight_.end() ? nullptr : pending->second.second.data();
    }
    if (message != nullptr && message != receiver) {
      for (std::size_t i = 0; i < width_; ++i) receiver[i] = std::max(receiver[i], message[i]);
    }
    ++receiver[to];
    JournalRecord& r = next_record();
    fill_copy(r, JournalEvent::kDeliver, t_us, msg, copy, from, to, size, "");
    copy_clock(receiver);
    if (delayed) release(pending);
  }

  // A copy was lost after it was accepted (no clock changes).
  void lost(std::int64_t t_us, std::uint64_t msg, int copy, int from, int to, std::size_t size, const char* why,
            bool delayed) {
    JournalRecord& r = next_record();
    fill_copy(r, JournalEvent::kLost, t_us, msg, copy, from, to, size, why);
    std::fill_n(&record_clocks_[slot_of_last() * width_], width_, 0);
    if (delayed) release(in_flight_.find(msg));
  }

  // Writes a header line and the records, oldest first, as JSON lines.
  void write(std::ostream& out) const {
    out << "{\"journal\":1,\"endpoints\":[";
    for (std::size_t i = 0; i < width_; ++i) out << (i ? ",\"" : "\"") << names_[i] << '"';
    out << "],\"clock\":\"CLOCK_MONOTONIC us\",\"records\":" << size() << ",\"evicted\":" << evicted()
        << ",\"capacity\":" << capacity_ << "}\n";
    const std::size_t n = size();
    const std::size_t first = count_ > capacity_ ? static_cast<std::size_t>(count_ % capacity_) : 0;
    for (std::size_t k = 0; k < n; ++k) write_record(out, (first + k) % capacity_);
  }

 private:
  static const char* event_name(JournalEvent e) {
    switch (e) {
      case JournalEvent::kSend: return "send";
      case JournalEvent::kDeliver: return "deliver";
      case JournalEvent::kLost: return "lost";
    }
    return "?";
  }
  static const char* fate_name(JournalFate f) {
    switch (f) {
      case JournalFate::kPass: return "pass";
      case JournalFate::kDuplicate: return "dup";
      case JournalFate::kDrop: return "drop";
      case JournalFate::kBlock: return "block";
    }
    return "?";
  }

  std::uint64_t* clock_of(int endpoint) { return &clocks_[static_cast<std::size_t>(endpoint) * width_]; }

  // The ring grows as records come (amortized, so an idle proxy holds
  // little) until it reaches capacity_; then the oldest slot is reused.
  JournalRecord& next_record() {
    if (records_.size() < capacity_) {
      records_.emplace_back();
      record_clocks_.resize(records_.size() * width_);
    }
    JournalRecord& r = records_[static_cast<std::size_t>(count_ % capacity_)];
    ++count_;
    return r;
  }
  std::size_t slot_of_last() const { return static_cast<std::size_t>((count_ - 1) % capacity_); }
  void copy_clock(const std::uint64_t* clock) {
    std::copy_n(clock, width_, &record_clocks_[slot_of_last() * width_]);
  }
  void fill_copy(JournalRecord& r, JournalEvent event, std::int64_t t_us, std::uint64_t msg, int copy, int from,
                 int to, std::size_t size, const char* why) {
    r.t_us = t_us;
    r.msg = msg;
    r.event = event;
    r.fate = JournalFate::kPass;
    r.copy = static_cast<std::uint8_t>(copy);
    r.from = static_cast<std::uint16_t>(from);
    r.to = static_cast<std::uint16_t>(to);
    r.size = static_cast<std::uint32_t>(size);
    r.delay_us[0] = r.delay_us[1] = 0;
    r.why = why;
    r.head_size = 0;
    r.entries = -1;
  }
  void release(std::unordered_map<std::uint64_t, std::pair<int, std::vector<std::uint64_t>>>::iterator it) {
    if (it != in_flight_.end() && --it->second.first <= 0) in_flight_.erase(it);
  }

  void write_record(std::ostream& out, std::size_t slot) const {
    const JournalRecord& r = records_[slot];
    out << "{\"t_us\":" << r.t_us << ",\"ev\":\"" << event_name(r.event) << "\",\"msg\":" << r.msg << ",\"from\":\""
        << names_[r.from] << "\",\"to\":\"" << names_[r.to] << "\",\"size\":" << r.size;
    if (r.event == JournalEvent::kSend) {
      out << ",\"fate\":\"" << fate_name(r.fate) << '"';
      if (r.fate == JournalFate::kPass) out << ",\"delay_us\":[" << r.delay_us[0] << "]";
      if (r.fate == JournalFate::kDuplicate) out << ",\"delay_us\":[" << r.delay_us[0] << "," << r.delay_us[1] << "]";
      char summary[kSummaryBytes];
      summarize(r.head, r.head_size, summary, r.entries);
      out << ",\"sum\":\"" << summary << '"';
    } else {
      out << ",\"copy\":" << static_cast<int>(r.copy);
    }
    if (r.why[0] != '\0') out << ",\"why\":\"" << r.why << '"';
    if (r.event != JournalEvent::kLost) {
      out << ",\"vc\":{";
      bool first = true;
      const std::uint64_t* clock = &record_clocks_[slot * width_];
      for (std::size_t i = 0; i < width_; ++i) {
        if (clock[i] == 0) continue;
        out << (first ? "\"" : ",\"") << names_[i] << "\":" << clock[i];
        first = false;
      }
      out << '}';
    }
    out << "}\n";
  }

  std::vector<std::string> names_;
  std::size_t width_;
  std::size_t capacity_ = 1;
  std::vector<std::uint64_t> clocks_;  // width_ x width_: each endpoint's current clock
  std::vector<JournalRecord> records_;
  std::vector<std::uint64_t> record_clocks_;
  std::uint64_t count_ = 0;
  std::uint64_t last_msg_ = 0;
  // Delayed copies still waiting: copies left, and the message's clock.
  std::unordered_map<std::uint64_t, std::pair<int, std::vector<std::uint64_t>>> in_flight_;
};

}  // namespace proxy
