// The commands of a transcript (listed in tests/raft/README.md): parsing
// their arguments and calling the Cluster.
#include <optional>
#include <sstream>
#include <stdexcept>

#include "cluster.h"
#include "raft/describe.h"
#include "transcript.h"

namespace transcript {

struct Runner::State {
  std::vector<std::string> out;
  Cluster cluster{out};
};

Runner::Runner() : state_(std::make_unique<State>()) {}
Runner::~Runner() = default;

namespace {

using Args = std::vector<std::string>;

[[noreturn]] void fail(const std::string& why) { throw std::runtime_error(why); }

std::uint64_t number(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) fail("not a number: \"" + s + "\"");
  try {
    return std::stoull(s);
  } catch (const std::exception&) {
    fail("number out of range: " + s);
  }
}

int small(const std::string& s) {
  std::uint64_t v = number(s);
  if (v > 1'000'000) fail("too large: " + s);
  return static_cast<int>(v);
}

bool boolean(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  fail("expected true or false: \"" + s + "\"");
}

// "2" and "n2" both name node 2.
int node_arg(const std::string& s) { return small(!s.empty() && s[0] == 'n' ? s.substr(1) : s); }

// Splits "key=value"; a bare word has an empty value.
std::pair<std::string, std::string> key_value(const std::string& arg) {
  auto eq = arg.find('=');
  if (eq == std::string::npos) return {arg, ""};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// "12/3" -> {12, 3}.
std::pair<std::uint64_t, std::uint64_t> slash(const std::string& s) {
  auto at = s.find('/');
  if (at == std::string::npos) fail("expected INDEX/TERM: \"" + s + "\"");
  return {number(s.substr(0, at)), number(s.substr(at + 1))};
}

raft::MessageType message_type(const std::string& s) {
  for (auto t : {raft::MessageType::RequestVote, raft::MessageType::RequestVoteReply,
                 raft::MessageType::AppendEntries, raft::MessageType::AppendEntriesReply,
                 raft::MessageType::InstallSnapshot, raft::MessageType::InstallSnapshotReply})
    if (s == raft::to_string(t)) return t;
  fail("unknown message type: " + s);
}

void expect_count(const Args& a, std::size_t min, std::size_t max, const char* usage) {
  if (a.size() < min + 1 || a.size() > max + 1) fail(std::string("usage: ") + usage);
}

// "0..8/20" -> {0, 8, 20}: a chunk's byte range and the snapshot's size.
struct ByteRange {
  std::uint64_t from = 0, to = 0, total = 0;
};
ByteRange byte_range(const std::string& s) {
  auto dots = s.find("..");
  auto at = s.find('/');
  if (dots == std::string::npos || at == std::string::npos || at < dots) fail("expected FROM..TO/TOTAL: \"" + s + "\"");
  ByteRange r{number(s.substr(0, dots)), number(s.substr(dots + 2, at - dots - 2)), number(s.substr(at + 1))};
  if (r.to < r.from || r.to - r.from > 1'000'000) fail("bad byte range: " + s);
  return r;
}

// Reads a message in the format describe() prints it, so a line of any
// trace can be pasted into `inject`:
//   n1->n2 append_entries term=3 prev=2/1 entries=3..4 commit=2 round=1
//   n1->n2 install_snapshot term=2 snapshot=10/2 bytes=8..16/20 round=1
//   n2->n1 install_snapshot_reply term=2 snapshot=10 have=16
// Three additions say what describe() leaves out: the entries of an append
// may be listed as INDEX/TERM pairs (entries=3/1,4/2) when their terms are
// not the message's, a reply's "prev=N" is its reject_index, and a chunk's
// bytes may be given as data=TEXT (else they are 'x' repeated to fill the
// range).
raft::Message parse_message(const Args& a) {
  if (a.size() < 3) fail("usage: inject nA->nB TYPE [FIELDS...]");
  raft::Message m;
  auto arrow = a[1].find("->");
  if (arrow == std::string::npos) fail("expected nA->nB: " + a[1]);
  m.from = a[1].substr(0, arrow);
  m.to = a[1].substr(arrow + 2);
  m.type = message_type(a[2]);
  std::string entries;
  std::optional<std::string> data;
  std::optional<ByteRange> bytes;
  const bool snapshot = m.type == raft::MessageType::InstallSnapshot;
  const bool snapshot_reply = m.type == raft::MessageType::InstallSnapshotReply;
  for (std::size_t i = 3; i < a.size(); ++i) {
    auto [key, value] = key_value(a[i]);
    if (key == "term") m.term = number(value);
    else if (key == "pre_vote") m.pre_vote = true;
    else if (key == "last") std::tie(m.last_log_index, m.last_log_term) = slash(value);
    else if (key == "granted") m.vote_granted = true;
    else if (key == "rejected") m.vote_granted = false;
    else if (key == "prev" && m.type == raft::MessageType::AppendEntries)
      std::tie(m.prev_log_index, m.prev_log_term) = slash(value);
    else if (key == "prev") m.reject_index = number(value);
    else if (key == "entries") entries = value;
    else if (key == "heartbeat") continue;
    else if (key == "commit") m.leader_commit = number(value);
    else if (key == "round") m.read_round = number(value);
    else if (key == "ok") m.success = true;
    else if (key == "reject") m.success = false;
    else if (key == "match") m.match_index = number(value);
    else if (key == "hint") std::tie(m.conflict_index, m.conflict_term) = slash(value);
    else if (key == "snapshot" && snapshot) std::tie(m.last_included_index, m.last_included_term) = slash(value);
    else if (key == "snapshot" && snapshot_reply) m.last_included_index = number(value);
    else if (key == "bytes" && snapshot) bytes = byte_range(value);
    else if (key == "data" && snapshot) data = value;
    else if (key == "done" && snapshot) m.done = true;
    else if (key == "installed" && snapshot_reply) m.done = true;
    else if (key == "have" && snapshot_reply) m.offset = number(value);
    else fail("unknown message field: " + a[i]);
  }
  if (data && !bytes) fail("data= needs bytes=FROM..TO/TOTAL");
  if (bytes) {
    m.offset = bytes->from;
    m.total_bytes = bytes->total;
    if (data && data->size() != bytes->to - bytes->from)
      fail("data= has " + std::to_string(data->size()) + " bytes, the range " +
           std::to_string(bytes->to - bytes->from));
    m.data = data ? *data : std::string(bytes->to - bytes->from, 'x');
  }
  if (!entries.empty()) {
    const auto entry = [](std::uint64_t index, std::uint64_t term) {
      raft::Entry e;
      e.index = index;
      e.term = term;
      e.data = "injected";
      return e;
    };
    if (auto dots = entries.find(".."); dots != std::string::npos) {
      std::uint64_t first = number(entries.substr(0, dots));
      std::uint64_t last = number(entries.substr(dots + 2));
      if (last < first || last - first > 10000) fail("bad entry range: " + entries);
      for (std::uint64_t i = first; i <= last; ++i) m.entries.push_back(entry(i, m.term));
    } else {
      std::istringstream list(entries);
      std::string pair;
      while (std::getline(list, pair, ',')) {
        auto [index, term] = slash(pair);
        m.entries.push_back(entry(index, term));
      }
    }
  }
  return m;
}

void add_nodes(Cluster& c, const Args& a) {
  if (a.size() < 2) fail("usage: add-nodes N [pre-vote=B] [check-quorum=B] [heartbeat=T] [election=T] ...");
  NodeOptions o;
  bool max_given = false;
  for (std::size_t i = 2; i < a.size(); ++i) {
    auto [key, value] = key_value(a[i]);
    if (key == "pre-vote") o.pre_vote = boolean(value);
    else if (key == "check-quorum") o.check_quorum = boolean(value);
    else if (key == "heartbeat") o.heartbeat_ticks = small(value);
    else if (key == "election") o.election_ticks_min = small(value);
    else if (key == "election-max") o.election_ticks_max = small(value), max_given = true;
    else if (key == "max-append") o.max_append_entries = static_cast<std::size_t>(small(value));
    else if (key == "max-pending-reads") o.max_pending_reads = static_cast<std::size_t>(small(value));
    else if (key == "max-snapshot-chunk") o.max_snapshot_chunk_bytes = static_cast<std::size_t>(small(value));
    else if (key == "max-inflight-chunks") o.max_inflight_snapshot_chunks = static_cast<std::size_t>(small(value));
    else fail("unknown option: " + a[i]);
  }
  if (!max_given) o.election_ticks_max = o.election_ticks_min;
  c.add_nodes(small(a[1]), o);
}

// The filter words of deliver-msgs, hold-msgs and release-msgs; the words it
// does not know are left in `rest`.
MessageFilter filter(const Args& a, int& count, std::vector<std::string>& rest) {
  MessageFilter f;
  for (std::size_t i = 1; i < a.size(); ++i) {
    auto [key, value] = key_value(a[i]);
    if (key == "from") f.from = node_arg(value);
    else if (key == "to") f.to = node_arg(value);
    else if (key == "type") f.type = message_type(value);
    else if (key == "round") f.round = number(value);
    else if (key == "offset") f.offset = number(value);
    else if (key == "count") count = small(value);
    else rest.push_back(a[i]);
  }
  return f;
}

void deliver_msgs(Cluster& c, const Args& a) {
  int count = 0;
  std::vector<std::string> rest;
  MessageFilter f = filter(a, count, rest);
  bool drop = false;
  bool keep = false;
  for (const std::string& w : rest) {
    if (w == "drop") drop = true;
    else if (w == "keep") keep = true;
    else fail("unknown filter: " + w);
  }
  if (drop && keep) fail("deliver-msgs: drop or keep, not both");
  if (c.deliver(f, drop, count, keep) == 0) fail("deliver-msgs: no queued message matches");
}

void hold_msgs(Cluster& c, const Args& a) {
  int count = 0;
  std::vector<std::string> rest;
  MessageFilter f = filter(a, count, rest);
  bool copy = false;
  for (const std::string& w : rest) {
    if (w == "copy") copy = true;
    else fail("unknown filter: " + w);
  }
  if (c.hold(f, copy, count) == 0) fail("hold-msgs: no queued message matches");
}

void release_msgs(Cluster& c, const Args& a) {
  int count = 0;
  std::vector<std::string> rest;
  MessageFilter f = filter(a, count, rest);
  if (!rest.empty()) fail("unknown filter: " + rest.front());
  if (c.release(f, count) == 0) fail("release-msgs: no held message matches");
}

void snapshot(Cluster& c, const Args& a) {
  if (a.size() < 2 || a.size() > 3) fail("usage: snapshot N [keep=K | crash-before-compact]");
  raft::Index keep = 0;
  bool crash = false;
  if (a.size() == 3) {
    auto [key, value] = key_value(a[2]);
    if (key == "keep") keep = number(value);
    else if (a[2] == "crash-before-compact") crash = true;
    else fail("usage: snapshot N [keep=K | crash-before-compact]");
  }
  c.snapshot(node_arg(a[1]), keep, crash);
}

void partition(Cluster& c, const Args& a) {
  std::vector<std::vector<int>> groups(1);
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (a[i] == "|") groups.emplace_back();
    else groups.back().push_back(node_arg(a[i]));
  }
  for (const auto& g : groups)
    if (g.empty()) fail("usage: partition 1 | 2 3");
  c.partition(groups);
}

}  // namespace

std::vector<std::string> Runner::run(const std::string& line) {
  Args a;
  {
    std::istringstream words(line);
    std::string w;
    while (words >> w) a.push_back(w);
  }
  Cluster& c = state_->cluster;
  std::vector<std::string>& out = state_->out;
  out.clear();
  const std::string& cmd = a.at(0);
  if (cmd != "add-nodes" && c.size() == 0) fail("add-nodes first");
  if (cmd == "add-nodes") {
    add_nodes(c, a);
  } else if (cmd == "tick") {
    expect_count(a, 1, 2, "tick N [TIMES]");
    c.tick(node_arg(a[1]), a.size() > 2 ? small(a[2]) : 1);
  } else if (cmd == "campaign") {
    expect_count(a, 1, 1, "campaign N");
    c.campaign(node_arg(a[1]));
  } else if (cmd == "propose") {
    expect_count(a, 2, 3, "propose N DATA [COUNT]");
    c.propose(node_arg(a[1]), a[2], a.size() > 3 ? small(a[3]) : 1);
  } else if (cmd == "read-index") {
    if (a.size() < 3) fail("usage: read-index N CTX...");
    std::vector<std::uint64_t> ctxs;
    for (std::size_t i = 2; i < a.size(); ++i) ctxs.push_back(number(a[i]));
    c.read_index(node_arg(a[1]), ctxs);
  } else if (cmd == "inject") {
    c.inject(parse_message(a));
  } else if (cmd == "process-ready") {
    std::vector<int> nodes;
    bool crash_after_snapshot = false;
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (a[i] == "crash-after-snapshot") crash_after_snapshot = true;
      else nodes.push_back(node_arg(a[i]));
    }
    if (crash_after_snapshot && nodes.size() != 1) fail("usage: process-ready N crash-after-snapshot");
    const bool up_before = c.up(nodes.empty() ? 1 : nodes.front());
    // Saying so is the point when a transcript shows that nothing happens.
    if (!c.process_ready(nodes, crash_after_snapshot)) out.push_back("no Ready");
    if (crash_after_snapshot && up_before && c.up(nodes.front()))
      fail("process-ready: no Ready of n" + std::to_string(nodes.front()) + " carried a snapshot");
  } else if (cmd == "deliver-msgs") {
    deliver_msgs(c, a);
  } else if (cmd == "hold-msgs") {
    hold_msgs(c, a);
  } else if (cmd == "release-msgs") {
    release_msgs(c, a);
  } else if (cmd == "snapshot") {
    snapshot(c, a);
  } else if (cmd == "state") {
    expect_count(a, 0, 1, "state [N]");
    c.print_state(a.size() > 1 ? node_arg(a[1]) : 0);
  } else if (cmd == "drop") {
    expect_count(a, 1, 1, "drop N");
    MessageFilter f;
    f.to = node_arg(a[1]);
    c.deliver(f, true, 0);
  } else if (cmd == "stabilize") {
    expect_count(a, 0, 0, "stabilize");
    c.stabilize();
  } else if (cmd == "partition") {
    partition(c, a);
  } else if (cmd == "heal") {
    c.heal();
  } else if (cmd == "crash") {
    expect_count(a, 1, 1, "crash N");
    c.crash(node_arg(a[1]));
  } else if (cmd == "restart") {
    expect_count(a, 1, 1, "restart N");
    c.restart(node_arg(a[1]));
  } else if (cmd == "raft-log") {
    expect_count(a, 1, 1, "raft-log N");
    c.print_log(node_arg(a[1]));
  } else if (cmd == "status") {
    expect_count(a, 0, 1, "status [N]");
    c.print_status(a.size() > 1 ? node_arg(a[1]) : 0);
  } else {
    fail("unknown command: " + cmd);
  }
  return out;
}

}  // namespace transcript
