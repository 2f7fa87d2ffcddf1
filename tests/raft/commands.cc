// The commands of a transcript (listed in tests/raft/README.md): parsing
// their arguments and calling the Cluster.
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
                 raft::MessageType::AppendEntries, raft::MessageType::AppendEntriesReply})
    if (s == raft::to_string(t)) return t;
  fail("unknown message type: " + s);
}

void expect_count(const Args& a, std::size_t min, std::size_t max, const char* usage) {
  if (a.size() < min + 1 || a.size() > max + 1) fail(std::string("usage: ") + usage);
}

// Reads a message in the format describe() prints it, so a line of any
// trace can be pasted into `inject`:
//   n1->n2 append_entries term=3 prev=2/1 entries=3..4 commit=2 round=1
// Two additions say what describe() leaves out: the entries of an append
// may be listed as INDEX/TERM pairs (entries=3/1,4/2) when their terms are
// not the message's, and a reply's "prev=N" is its reject_index.
raft::Message parse_message(const Args& a) {
  if (a.size() < 3) fail("usage: inject nA->nB TYPE [FIELDS...]");
  raft::Message m;
  auto arrow = a[1].find("->");
  if (arrow == std::string::npos) fail("expected nA->nB: " + a[1]);
  m.from = a[1].substr(0, arrow);
  m.to = a[1].substr(arrow + 2);
  m.type = message_type(a[2]);
  std::string entries;
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
    else fail("unknown message field: " + a[i]);
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
    else fail("unknown option: " + a[i]);
  }
  if (!max_given) o.election_ticks_max = o.election_ticks_min;
  c.add_nodes(small(a[1]), o);
}

void deliver_msgs(Cluster& c, const Args& a) {
  MessageFilter f;
  bool drop = false;
  int count = 0;
  for (std::size_t i = 1; i < a.size(); ++i) {
    auto [key, value] = key_value(a[i]);
    if (key == "from") f.from = node_arg(value);
    else if (key == "to") f.to = node_arg(value);
    else if (key == "type") f.type = message_type(value);
    else if (key == "round") f.round = number(value);
    else if (key == "count") count = small(value);
    else if (key == "drop") drop = true;
    else fail("unknown filter: " + a[i]);
  }
  if (c.deliver(f, drop, count) == 0) fail("deliver-msgs: no queued message matches");
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
    for (std::size_t i = 1; i < a.size(); ++i) nodes.push_back(node_arg(a[i]));
    // Saying so is the point when a transcript shows that nothing happens.
    if (!c.process_ready(nodes)) out.push_back("no Ready");
  } else if (cmd == "deliver-msgs") {
    deliver_msgs(c, a);
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
