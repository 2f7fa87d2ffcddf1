// The run's trace: a ring buffer of the last events (deliveries, drops,
// crashes, partitions, role changes, ...), printed when an invariant breaks so
// the failure can be understood without replaying. With --verbose every event
// is also printed as it happens.
//
// Events are stored as small structs and formatted only when printed: a run
// records tens of thousands of them and almost never prints one.
#pragma once

#include "raft/describe.h"

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "raft/types.h"
#include "common.h"

namespace sim {

enum class EventKind : std::uint8_t {
  Deliver,     // message handed to the receiver's core
  Drop,        // message lost (why: loss, partition, crashed, paused)
  Duplicate,   // the network made a second copy of a message
  Hold,        // message kept back for a paused receiver
  Crash,       // node lost its core (text: where in the Ready cycle)
  Restart,     // node rebuilt from its simulated disk
  Pause,       // node frozen: no ticks, no deliveries
  Resume,
  Partition,   // text: shape of the partition
  Heal,
  Role,        // node changed role or term (a: role, b: term)
  Persist,     // node wrote its disk (a: term, b: vote, c: first index, d: last index)
  Propose,     // client proposal accepted (a: index, text: data)
  Ack,         // write acknowledged (a: index, b: term, text: data)
  ReadIssue,   // read_index(ctx) (a: ctx, b: highest acknowledged index at issue)
  ReadServe,   // ReadState confirmed; served once applied (a: ctx, b: read index)
  ReadFail,    // failed_reads (a: ctx)
  Request,     // a client sends a request to the node (text: client, seq, op)
  Reply,       // the node answers a client (text)
  Client,      // anything else a client does (text)
  Info,        // anything else (text)
};

// The fields of a message worth printing: raft::MessageSummary (raft/describe.h).
using MessageSummary = raft::MessageSummary;

struct Event {
  std::uint64_t step = 0;
  std::int64_t tick = 0;
  EventKind kind = EventKind::Info;
  int node = -1;  // the node the event happened at (sender for messages)
  int peer = -1;  // receiver for messages
  bool has_message = false;
  MessageSummary message;
  const char* why = nullptr;  // static string
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::string text;
};

class Trace {
 public:
  Trace(const Clock& clock, std::size_t capacity, bool verbose);

  void message(EventKind kind, int from, int to, const raft::Message& m, const char* why = nullptr);
  void event(EventKind kind, int node, std::uint64_t a = 0, std::uint64_t b = 0, std::uint64_t c = 0,
             std::uint64_t d = 0, std::string text = {});
  void info(std::string text) { event(EventKind::Info, -1, 0, 0, 0, 0, std::move(text)); }

  // The last events, oldest first.
  void dump(std::ostream& out) const;
  static std::string format(const Event& e);
  bool verbose() const { return verbose_; }

 private:
  void add(Event&& e);

  const Clock& clock_;
  std::vector<Event> ring_;
  std::size_t next_ = 0;
  std::size_t count_ = 0;
  bool verbose_;
};


}  // namespace sim
