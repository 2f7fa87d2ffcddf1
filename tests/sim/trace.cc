#include "trace.h"

#include <iostream>
#include <sstream>

namespace sim {

namespace {

std::string format_message(const MessageSummary& s) { return raft::describe(s); }

const char* kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::Deliver: return "deliver";
    case EventKind::Drop: return "DROP";
    case EventKind::Duplicate: return "duplicate";
    case EventKind::Hold: return "hold";
    case EventKind::Crash: return "CRASH";
    case EventKind::Restart: return "RESTART";
    case EventKind::Pause: return "PAUSE";
    case EventKind::Resume: return "RESUME";
    case EventKind::Partition: return "PARTITION";
    case EventKind::Heal: return "HEAL";
    case EventKind::Role: return "role";
    case EventKind::Persist: return "persist";
    case EventKind::Propose: return "propose";
    case EventKind::Ack: return "ack";
    case EventKind::ReadIssue: return "read";
    case EventKind::ReadServe: return "read-confirmed";
    case EventKind::ReadFail: return "read-failed";
    case EventKind::Request: return "request";
    case EventKind::Reply: return "reply";
    case EventKind::Client: return "client";
    case EventKind::Info: return "info";
  }
  return "?";
}

}  // namespace


Trace::Trace(const Clock& clock, std::size_t capacity, bool verbose)
    : clock_(clock), ring_(capacity == 0 ? 1 : capacity), verbose_(verbose) {}

void Trace::add(Event&& e) {
  e.step = clock_.step;
  e.tick = clock_.tick;
  if (verbose_) std::cout << format(e) << "\n";
  ring_[next_] = std::move(e);
  next_ = (next_ + 1) % ring_.size();
  if (count_ < ring_.size()) ++count_;
}

void Trace::message(EventKind kind, int from, int to, const raft::Message& m, const char* why) {
  Event e;
  e.kind = kind;
  e.node = from;
  e.peer = to;
  e.has_message = true;
  e.message = raft::summarize(m);
  e.why = why;
  add(std::move(e));
}

void Trace::event(EventKind kind, int node, std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d,
                  std::string text) {
  Event e;
  e.kind = kind;
  e.node = node;
  e.a = a;
  e.b = b;
  e.c = c;
  e.d = d;
  e.text = std::move(text);
  add(std::move(e));
}

std::string Trace::format(const Event& e) {
  std::ostringstream out;
  out << "  tick " << e.tick << " step " << e.step << ": " << kind_name(e.kind);
  if (e.has_message) {
    out << " " << node_name(e.node) << "->" << node_name(e.peer) << " " << format_message(e.message);
    if (e.why) out << " [" << e.why << "]";
    return out.str();
  }
  if (e.node >= 0) out << " " << node_name(e.node);
  switch (e.kind) {
    case EventKind::Role:
      out << " is " << raft::to_string(static_cast<raft::Role>(e.a)) << " in term " << e.b << " (commit " << e.c
          << ", last index " << e.d << ")";
      break;
    case EventKind::Persist:
      out << " term=" << e.a << " vote=" << (e.b ? node_name(static_cast<int>(e.b) - 1) : std::string("-"));
      if (e.c) out << " entries [" << e.c << ".." << e.d << "]";
      break;
    case EventKind::Propose: out << " index " << e.a << " '" << e.text << "'"; break;
    case EventKind::Ack: out << " index " << e.a << " term " << e.b << " '" << e.text << "'"; break;
    case EventKind::ReadIssue: out << " ctx " << e.a << " (highest acknowledged write: " << e.b << ")"; break;
    case EventKind::ReadServe: out << " ctx " << e.a << " at index " << e.b; break;
    case EventKind::ReadFail: out << " ctx " << e.a; break;
    default:
      break;
  }
  if (e.why) out << " [" << e.why << "]";
  if (!e.text.empty() && e.kind != EventKind::Propose && e.kind != EventKind::Ack) out << " " << e.text;
  return out.str();
}

void Trace::dump(std::ostream& out) const {
  std::size_t start = (next_ + ring_.size() - count_) % ring_.size();
  for (std::size_t i = 0; i < count_; ++i) out << format(ring_[(start + i) % ring_.size()]) << "\n";
}

}  // namespace sim
