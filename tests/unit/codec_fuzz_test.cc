// Seeded fuzzing of wire::decode. Inputs start from valid messages (random
// field values through the encoders, and real traffic of a small cluster of
// cores) and are then broken in every way a network or an attacker might:
// random bytes, truncation, bit flips, insertions and deletions, splices,
// numbers swapped for huge, negative or fractional ones, deep nesting,
// duplicate keys, invalid UTF-8.
//
// Properties, for every input: decode never throws; what it accepts encodes
// and decodes back to the same value; every integer in it is at most
// kMaxWireInteger; and Raft messages obey the stateless rules of the codec
// (restated here independently of codec.cc).
//
// Deterministic: a fixed seed, std::mt19937_64 (whose output the standard
// fixes) and a range function of our own, since std::uniform_int_distribution
// differs between standard libraries.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "raft/raft.h"
#include "wire/codec.h"

namespace {

using nlohmann::json;
using wire::kMaxWireInteger;

using Rng = std::mt19937_64;

// [0, n) for n >= 1. The modulo bias is irrelevant here; being identical on
// every platform is what matters.
std::uint64_t below(Rng& rng, std::uint64_t n) { return rng() % n; }
bool chance(Rng& rng, std::uint64_t one_in) { return below(rng, one_in) == 0; }
// [lo, hi], with the ends chosen often: boundaries are where bugs live.
std::uint64_t in_range(Rng& rng, std::uint64_t lo, std::uint64_t hi) {
  switch (below(rng, 8)) {
    case 0: return lo;
    case 1: return hi;
    case 2: return lo + below(rng, std::min<std::uint64_t>(hi - lo, 1000) + 1);  // small values
    default: return hi - lo == UINT64_MAX ? rng() : lo + below(rng, hi - lo + 1);
  }
}
template <typename T>
const T& pick(Rng& rng, const std::vector<T>& items) { return items[below(rng, items.size())]; }

// ---------------------------------------------------------- properties ----

bool same(const raft::Message& a, const raft::Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.pre_vote == b.pre_vote && a.last_log_index == b.last_log_index &&
         a.last_log_term == b.last_log_term && a.vote_granted == b.vote_granted &&
         a.prev_log_index == b.prev_log_index && a.prev_log_term == b.prev_log_term &&
         a.entries == b.entries && a.leader_commit == b.leader_commit &&
         a.read_round == b.read_round && a.success == b.success && a.match_index == b.match_index &&
         a.reject_index == b.reject_index && a.conflict_index == b.conflict_index &&
         a.conflict_term == b.conflict_term;
}

bool same(const wire::Decoded& a, const wire::Decoded& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, wire::DecodeError>) {
          return false;
        } else if constexpr (std::is_same_v<T, raft::Message>) {
          return same(x, std::get<T>(b));
        } else {
          return x == std::get<T>(b);
        }
      },
      a);
}

// What is wrong with an accepted message, or "" when nothing is.
std::string violation(const wire::Decoded& d) {
  const auto big = [](std::uint64_t v) { return v > kMaxWireInteger; };
  if (const auto* r = std::get_if<wire::ClientRequest>(&d)) {
    return big(r->seq) || r->seq == 0 ? "client_request seq out of range" : "";
  }
  if (const auto* r = std::get_if<wire::ClientReply>(&d)) return big(r->seq) ? "client_reply seq" : "";
  if (const auto* s = std::get_if<wire::StatusReply>(&d)) {
    return big(s->term) || big(s->commit_index) || big(s->last_applied) || big(s->last_log_index)
               ? "status_reply number"
               : "";
  }
  const auto* m = std::get_if<raft::Message>(&d);
  if (m == nullptr) return "";
  if (big(m->term) || big(m->last_log_index) || big(m->last_log_term) || big(m->prev_log_index) ||
      big(m->prev_log_term) || big(m->leader_commit) || big(m->read_round) || big(m->match_index) ||
      big(m->reject_index) || big(m->conflict_index) || big(m->conflict_term)) {
    return "raft number above 2^53";
  }
  switch (m->type) {
    case raft::MessageType::RequestVote:
      if (m->term == 0) return "request_vote term 0";
      if (m->last_log_term > m->term) return "last_log_term above term";
      if ((m->last_log_index == 0) != (m->last_log_term == 0)) return "impossible last log position";
      return "";
    case raft::MessageType::RequestVoteReply:
      return "";
    case raft::MessageType::AppendEntries: {
      if (m->term == 0) return "append_entries term 0";
      if (m->prev_log_term > m->term) return "prev_log_term above term";
      if ((m->prev_log_index == 0) != (m->prev_log_term == 0)) return "impossible prev log position";
      raft::Term floor = std::max<raft::Term>(m->prev_log_term, 1);
      for (std::size_t i = 0; i < m->entries.size(); ++i) {
        const raft::Entry& e = m->entries[i];
        if (big(e.term) || big(e.index)) return "entry number above 2^53";
        if (e.index != m->prev_log_index + 1 + i) return "entries not contiguous";
        if (e.term < floor || e.term > m->term) return "entry term out of order";
        floor = e.term;
      }
      return "";
    }
    case raft::MessageType::AppendEntriesReply:
      if (m->success && (m->reject_index != 0 || m->conflict_index != 0 || m->conflict_term != 0)) {
        return "successful reply with rejection fields";
      }
      if (!m->success && (m->match_index != 0 || m->conflict_index > m->reject_index)) {
        return "rejection with match_index or conflict_index beyond reject_index";
      }
      if (m->conflict_term > m->term) return "conflict_term above term";
      return "";
  }
  return "unknown raft type";
}

std::string printable(const std::string& s) {
  std::string out;
  for (const unsigned char c : s.substr(0, 400)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return s.size() > 400 ? out + "..." : out;
}

struct Stats {
  std::uint64_t inputs = 0;
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t failures = 0;
};
Stats g_total;

// Runs one input through decode and checks every property. Reports at most a
// few failures in detail, so a regression does not print 200,000 of them.
class Checker {
 public:
  explicit Checker(const char* name) : name_(name) {}
  ~Checker() {
    std::cout << "codec fuzz " << name_ << ": " << stats_.inputs << " inputs, " << stats_.accepted
              << " accepted, " << stats_.rejected << " rejected\n";
    g_total.inputs += stats_.inputs;
    g_total.accepted += stats_.accepted;
    g_total.rejected += stats_.rejected;
    g_total.failures += stats_.failures;
  }

  // Returns whether decode accepted the input.
  bool check(const std::string& input) {
    ++stats_.inputs;
    wire::Decoded first;
    try {
      first = wire::decode(input);
    } catch (...) {
      return report("decode threw", input);
    }
    if (const auto* err = std::get_if<wire::DecodeError>(&first)) {
      ++stats_.rejected;
      if (err->message.empty()) report("DecodeError without a message", input);
      if (err->seq > kMaxWireInteger) report("DecodeError salvaged an out-of-range seq", input);
      return false;
    }
    ++stats_.accepted;
    if (const std::string v = violation(first); !v.empty()) report("accepted a broken message: " + v, input);
    std::string again;
    try {
      again = std::visit(
          [](const auto& value) -> std::string {
            if constexpr (std::is_same_v<std::decay_t<decltype(value)>, wire::DecodeError>) {
              return {};
            } else {
              return wire::encode(value);
            }
          },
          first);
    } catch (...) {
      report("encode threw", input);
      return true;
    }
    if (!same(first, wire::decode(again))) report("round trip changed the value: " + printable(again), input);
    return true;
  }

  bool report(const std::string& what, const std::string& input) {
    ++stats_.failures;
    if (stats_.failures <= 10) ADD_FAILURE() << name_ << ": " << what << "\n  input: " << printable(input);
    return false;
  }

 private:
  const char* name_;
  Stats stats_;
};

class Summary : public ::testing::Environment {
 public:
  void TearDown() override {
    std::cout << "codec fuzz total: " << g_total.inputs << " inputs, " << g_total.accepted
              << " accepted, " << g_total.rejected << " rejected, " << g_total.failures
              << " property failures\n";
  }
};
[[maybe_unused]] ::testing::Environment* const g_summary =
    ::testing::AddGlobalTestEnvironment(new Summary);

// ------------------------------------------------------ valid messages ----

std::string random_text(Rng& rng, std::size_t max_pieces) {
  // Valid UTF-8 only, with everything JSON must escape.
  static const std::vector<std::string> pieces = {
      "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", std::string(1, '\0'), "\x01", "\x7f",
      "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "{", "]", ":", ","};
  std::string s;
  const std::size_t n = below(rng, max_pieces + 1);
  for (std::size_t i = 0; i < n; ++i) s += pick(rng, pieces);
  return s;
}

std::string client_id(Rng& rng) {
  static const std::string chars = "abcXYZ019_.:-";
  std::string id;
  const std::size_t n = 1 + (chance(rng, 8) ? 63 : below(rng, 8));
  for (std::size_t i = 0; i < n; ++i) id += chars[below(rng, chars.size())];
  return id;
}

std::string server_id(Rng& rng) { return "n" + std::to_string(1 + below(rng, 5)); }

// A command as the KV layer writes it: a compact object with sorted keys.
std::string command(Rng& rng) {
  json cmd = {{"client", client_id(rng)}, {"seq", in_range(rng, 1, kMaxWireInteger)},
              {"op", chance(rng, 2) ? "set" : "delete"}, {"key", random_text(rng, 6)}};
  if (chance(rng, 2)) cmd["value"] = random_text(rng, 20);
  if (chance(rng, 8)) cmd["nested"] = {{"list", {1, -2, 3.5, nullptr, true}}};
  return cmd.dump();
}

raft::Message random_raft(Rng& rng) {
  raft::Message m;
  m.from = server_id(rng);
  m.to = server_id(rng);
  const raft::Term term = in_range(rng, 1, kMaxWireInteger);
  m.term = term;
  switch (below(rng, 4)) {
    case 0:
      m.type = raft::MessageType::RequestVote;
      m.pre_vote = chance(rng, 2);
      m.last_log_index = chance(rng, 4) ? 0 : in_range(rng, 1, kMaxWireInteger);
      m.last_log_term = m.last_log_index == 0 ? 0 : in_range(rng, 1, term);
      break;
    case 1:
      m.type = raft::MessageType::RequestVoteReply;
      m.term = in_range(rng, 0, kMaxWireInteger);
      m.pre_vote = chance(rng, 2);
      m.vote_granted = chance(rng, 2);
      break;
    case 2: {
      m.type = raft::MessageType::AppendEntries;
      const std::size_t n = below(rng, 5);
      m.prev_log_index = chance(rng, 4) ? 0 : in_range(rng, 1, kMaxWireInteger - n);
      m.prev_log_term = m.prev_log_index == 0 ? 0 : in_range(rng, 1, term);
      m.leader_commit = in_range(rng, 0, kMaxWireInteger);
      m.read_round = in_range(rng, 0, kMaxWireInteger);
      raft::Term t = std::max<raft::Term>(m.prev_log_term, 1);
      for (std::size_t i = 0; i < n; ++i) {
        t = in_range(rng, t, term);
        const bool noop = chance(rng, 3);
        m.entries.push_back(raft::Entry{t, m.prev_log_index + 1 + i,
                                        noop ? raft::EntryType::Noop : raft::EntryType::Command,
                                        noop ? std::string() : command(rng)});
      }
      break;
    }
    default:
      m.type = raft::MessageType::AppendEntriesReply;
      m.term = in_range(rng, 0, kMaxWireInteger);
      m.success = chance(rng, 2);
      m.read_round = in_range(rng, 0, kMaxWireInteger);
      if (m.success) {
        m.match_index = in_range(rng, 0, kMaxWireInteger);
      } else {
        m.reject_index = in_range(rng, 0, kMaxWireInteger);
        m.conflict_index = in_range(rng, 0, m.reject_index);
        m.conflict_term = in_range(rng, 0, m.term);
      }
      break;
  }
  return m;
}

// One valid message of a random type, encoded; also checks that the encoder's
// output of valid values decodes to exactly those values.
std::string random_valid(Rng& rng, Checker& checker) {
  static const std::vector<std::string> errors = {"not_leader", "cas_failed", "bad_request", "too_large"};
  static const std::vector<std::string> roles = {"leader", "follower", "candidate"};
  wire::Decoded expected;
  switch (below(rng, 6)) {
    case 0: {
      wire::ClientRequest r{client_id(rng), server_id(rng), in_range(rng, 1, kMaxWireInteger),
                            static_cast<wire::Op>(below(rng, 4)), "k" + random_text(rng, 8), "", "", false};
      if (r.op == wire::Op::Set || r.op == wire::Op::Cas) r.value = random_text(rng, 30);
      if (r.op == wire::Op::Cas) r.expected = random_text(rng, 30);
      r.local = r.op == wire::Op::Get && chance(rng, 2);
      expected = r;
      break;
    }
    case 1: {
      wire::ClientReply r{server_id(rng), client_id(rng), in_range(rng, 0, kMaxWireInteger), chance(rng, 2),
                          std::nullopt, "", "", ""};
      if (chance(rng, 2)) r.value = random_text(rng, 20);
      if (!r.ok) r.error = pick(rng, errors);
      if (!r.ok && chance(rng, 2)) r.leader = server_id(rng);
      if (chance(rng, 3)) r.message = random_text(rng, 20);
      expected = r;
      break;
    }
    case 2:
      expected = wire::StatusRequest{client_id(rng), server_id(rng)};
      break;
    case 3:
      expected = wire::StatusReply{server_id(rng), client_id(rng), server_id(rng), pick(rng, roles),
                                   in_range(rng, 0, kMaxWireInteger), chance(rng, 2) ? server_id(rng) : "",
                                   in_range(rng, 0, kMaxWireInteger), in_range(rng, 0, kMaxWireInteger),
                                   in_range(rng, 0, kMaxWireInteger), chance(rng, 2) ? server_id(rng) : "",
                                   chance(rng, 2),
                                   {{"bad_mac", in_range(rng, 0, kMaxWireInteger)}, {"no_mac", 1}}};
      break;
    default:
      expected = random_raft(rng);
      break;
  }
  const std::string text = std::visit(
      [](const auto& v) -> std::string {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, wire::DecodeError>) {
          return {};
        } else {
          return wire::encode(v);
        }
      },
      expected);
  if (!checker.check(text)) {
    checker.report("the encoding of a valid message was rejected", text);
  } else if (!same(wire::decode(text), expected)) {
    checker.report("a valid message did not decode to itself", text);
  }
  return text;
}

// Real traffic: a three-node cluster of cores with loss, reordering,
// duplication and crashes, every message passing through the codec. The
// codec's rules must hold for whatever the reference core sends.
std::vector<std::string> cluster_traffic(Rng& rng, Checker& checker, std::map<std::string, int>& seen) {
  const std::vector<raft::NodeId> ids = {"n1", "n2", "n3"};
  struct Disk {
    raft::HardState hard_state;
    std::vector<raft::Entry> entries;
  };
  std::map<raft::NodeId, Disk> disks;
  std::map<raft::NodeId, std::unique_ptr<raft::Raft>> nodes;
  const auto start = [&](const raft::NodeId& id) {
    raft::Config c;
    c.id = id;
    for (const auto& other : ids) {
      if (other != id) c.peers.push_back(other);
    }
    c.rng_seed = rng();
    c.max_append_entries = 8;
    nodes[id] = std::make_unique<raft::Raft>(c, raft::Recovered{disks[id].hard_state, disks[id].entries});
  };
  for (const auto& id : ids) start(id);

  std::vector<raft::Message> in_flight;
  std::vector<std::string> corpus;
  raft::NodeId isolated;  // messages to or from it are lost
  const auto flush = [&](const raft::NodeId& id) {
    raft::Raft& r = *nodes[id];
    while (r.has_ready()) {
      raft::Ready rd = r.ready();
      Disk& d = disks[id];
      if (rd.hard_state) d.hard_state = *rd.hard_state;
      if (!rd.entries.empty()) {
        d.entries.resize(rd.entries.front().index - 1);
        d.entries.insert(d.entries.end(), rd.entries.begin(), rd.entries.end());
      }
      for (const raft::Message& m : rd.messages) {
        const std::string text = wire::encode(m);
        checker.check(text);
        const wire::Decoded back = wire::decode(text);
        const auto* decoded = std::get_if<raft::Message>(&back);
        if (decoded == nullptr || !same(*decoded, m)) {
          checker.report("the codec rejects or alters what the core sends", text);
          continue;
        }
        const std::string type = raft::to_string(m.type);
        ++seen[type];
        if (m.type == raft::MessageType::AppendEntries && !m.entries.empty()) ++seen[type + " with entries"];
        if (m.type == raft::MessageType::AppendEntriesReply && !m.success) ++seen[type + " rejecting"];
        if (m.conflict_term > 0) ++seen[type + " with conflict_term"];
        if (corpus.size() < 3000 && chance(rng, 4)) corpus.push_back(text);
        in_flight.push_back(*decoded);
      }
      r.advance(rd);
    }
  };
  for (int step = 0; step < 6000; ++step) {
    if (step % 300 == 0) {
      // Cut one node off, or heal: a leader cut off keeps appending entries
      // no one else has, which the next leader's appends then conflict with.
      isolated = chance(rng, 3) ? raft::NodeId() : pick(rng, ids);
    }
    const raft::NodeId& id = pick(rng, ids);
    switch (below(rng, 10)) {
      case 0:
        for (const auto& n : ids) nodes[n]->tick();
        break;
      case 1:
        nodes[id]->tick();
        break;
      case 2:
        nodes[id]->propose(command(rng));
        break;
      case 3:
        nodes[id]->read_index(rng());
        break;
      case 4:
        if (chance(rng, 40)) start(id);  // crash and restart from disk
        break;
      default:
        if (in_flight.empty()) break;
        const std::size_t i = below(rng, in_flight.size());  // any order
        const raft::Message m = in_flight[i];
        if (!chance(rng, 8)) {  // sometimes duplicated
          in_flight[i] = in_flight.back();
          in_flight.pop_back();
        }
        const bool lost = chance(rng, 10) || m.to == isolated || m.from == isolated;
        if (!lost) nodes[m.to]->step(m);
        break;
    }
    for (const auto& n : ids) flush(n);
  }
  return corpus;
}

// ------------------------------------------------------------ mutators ----

const std::vector<std::string> kNumberTokens = {
    "9007199254740992", "9007199254740991", "9007199254740993", "18446744073709551615",
    "18446744073709551616", "99999999999999999999999", "-9223372036854775808", "-1", "-0", "0", "1",
    "1.5", "1.0", "1e3", "1E2", "1e400", "-1e400", "2e-1", "0.0", "00", "01", "4503599627370496.5",
    "\"7\"", "true", "null", "[]", "{}", "NaN", "Infinity", "0x10"};

// Replaces one run of digits (with its sign) by another number, or by its
// neighbour, so relations such as index = prev + 1 break by one.
std::string replace_number(Rng& rng, const std::string& text) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] >= '0' && text[i] <= '9') {
      std::size_t start = i > 0 && text[i - 1] == '-' ? i - 1 : i;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
      runs.emplace_back(start, i - start);
    } else {
      ++i;
    }
  }
  if (runs.empty()) return text;
  const auto [pos, len] = pick(rng, runs);
  std::string token;
  const std::string old = text.substr(pos, len);
  if (chance(rng, 2) && old[0] != '-' && len < 19) {
    const std::uint64_t v = std::stoull(old);
    token = std::to_string(chance(rng, 2) ? v + 1 : (v == 0 ? 0 : v - 1));
  } else {
    token = pick(rng, kNumberTokens);
  }
  return text.substr(0, pos) + token + text.substr(pos + len);
}

// Parses, changes one numeric field to a related value (another field's, a
// neighbour, 0, 2^53 - 1 or 2^53) and dumps again: stays valid JSON, so it
// probes the codec's structural rules rather than the parser.
std::string mutate_field(Rng& rng, const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return text;
  const json flat = doc.flatten();
  std::vector<std::string> numbers;
  std::vector<std::uint64_t> values;
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    if (it->is_number_unsigned()) {
      numbers.push_back(it.key());
      values.push_back(it->get<std::uint64_t>());
    }
  }
  if (numbers.empty()) return text;
  const std::size_t i = below(rng, numbers.size());
  const std::uint64_t v = values[i];
  const std::uint64_t choices[] = {0, 1, v + 1, v == 0 ? 0 : v - 1, pick(rng, values), kMaxWireInteger,
                                   kMaxWireInteger + 1};
  json& target = doc[json::json_pointer(numbers[i])];
  if (chance(rng, 10)) {
    target = -1;
  } else {
    target = choices[below(rng, std::size(choices))];
  }
  if (doc.is_object() && !doc.empty() && chance(rng, 8)) {  // also drop a top-level field
    std::vector<std::string> keys;
    for (const auto& item : doc.items()) keys.push_back(item.key());
    doc.erase(pick(rng, keys));
  }
  return doc.dump();
}

std::string nest(Rng& rng) {
  const std::size_t depth = 1 + below(rng, 40);
  const bool arrays = chance(rng, 2);
  std::string open, close;
  for (std::size_t i = 0; i < depth; ++i) {
    open += arrays ? "[" : "{\"a\":";
    close += arrays ? "]" : "}";
  }
  const std::string inner = arrays ? "1" : "null";
  switch (below(rng, 4)) {
    case 0:  // as an unknown field
      return R"({"type":"status","src":"c1","dest":"n1","x":)" + open + inner + close + "}";
    case 1:  // inside a command, which the codec keeps
      return R"({"type":"append_entries","src":"n1","dest":"n2","term":2,"prev_log_index":0,)"
             R"("prev_log_term":0,"leader_commit":0,"entries":[{"term":2,"index":1,"cmd":{"k":)" +
             open + inner + close + "}}]}";
    case 2:  // unbalanced
      return R"({"type":"status","src":"c1","dest":"n1","x":)" + open + inner + "}";
    default:  // the whole datagram
      return open + inner + close;
  }
}

const std::vector<std::string> kBadUtf8 = {
    "\xff", "\xfe", "\xc3", "\xc3\x28", "\xa0\xa1", "\xe2\x28\xa1", "\xe2\x82", "\xf0\x28\x8c\xbc",
    "\xf8\xa1\xa1\xa1\xa1", "\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xf4\x90\x80\x80",
    "\\ud800", "\\udc00", "\\ud800\\u0041", "\\u00", "\\x41"};

std::string mutate(Rng& rng, const std::string& text, const std::vector<std::string>& corpus, int kind) {
  std::string s = text;
  switch (kind) {
    case 0:  // truncation at a random length
      return s.substr(0, below(rng, s.size() + 1));
    case 1: {  // bit flips
      const int flips = 1 + static_cast<int>(below(rng, 3));
      for (int i = 0; i < flips && !s.empty(); ++i) s[below(rng, s.size())] ^= static_cast<char>(1 << below(rng, 8));
      return s;
    }
    case 2: {  // byte insertions and deletions
      static const std::string alphabet = "{}[]\",:0123456789-.eE \\truefalsnul";
      const int edits = 1 + static_cast<int>(below(rng, 4));
      for (int i = 0; i < edits; ++i) {
        const std::size_t pos = below(rng, s.size() + 1);
        if (chance(rng, 2) && pos < s.size()) {
          s.erase(pos, 1 + below(rng, 6));
        } else {
          const char c = chance(rng, 2) ? alphabet[below(rng, alphabet.size())] : static_cast<char>(rng());
          s.insert(pos, 1, c);
        }
      }
      return s;
    }
    case 3: {  // splice: the head of one message and the tail of another
      const std::string& other = pick(rng, corpus);
      return s.substr(0, below(rng, s.size() + 1)) + other.substr(below(rng, other.size() + 1));
    }
    case 4:
      return replace_number(rng, s);
    case 5:
      return mutate_field(rng, s);
    case 6: {  // duplicate keys, first or last (which one wins must not matter)
      static const std::vector<std::string> keys = {
          "type", "src", "dest", "term", "seq", "op", "key", "success", "match_index", "entries",
          "prev_log_index", "prev_log_term", "last_log_term", "leader_commit", "ok", "role"};
      const std::string pair = "\"" + pick(rng, keys) + "\":" +
                               (chance(rng, 2) ? pick(rng, kNumberTokens) : "\"" + client_id(rng) + "\"");
      if (s.size() < 2) return s;
      return chance(rng, 2) ? "{" + pair + "," + s.substr(1) : s.substr(0, s.size() - 1) + "," + pair + "}";
    }
    default: {  // invalid UTF-8 (or broken escapes) right inside a string
      std::vector<std::size_t> quotes;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '"') quotes.push_back(i + 1);
      }
      if (quotes.empty()) return s;
      s.insert(pick(rng, quotes), pick(rng, kBadUtf8));
      return s;
    }
  }
}

// ---------------------------------------------------------------- tests ----

constexpr std::uint64_t kSeed = 0x5eed'c0de'2025ULL;

// Valid messages of every type, shared by the tests that mutate them. Built
// (and checked) on first use, so each test also runs alone (--gtest_filter).
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    Rng rng(kSeed);
    Checker checker("valid messages");
    for (int i = 0; i < 8000; ++i) out.push_back(random_valid(rng, checker));
    return out;
  }();
  return texts;
}

TEST(CodecFuzz, ValidMessagesRoundTrip) { EXPECT_EQ(corpus().size(), 8000u); }

TEST(CodecFuzz, ReferenceCoreTrafficPassesTheCodec) {
  Rng rng(kSeed + 1);
  std::map<std::string, int> seen;
  std::vector<std::string> traffic;
  {
    Checker checker("core traffic");
    traffic = cluster_traffic(rng, checker, seen);
  }
  for (const auto& [kind, count] : seen) std::cout << "  " << kind << ": " << count << "\n";
  // Every message type the core sends went through the checks.
  for (const char* type : {"request_vote", "request_vote_reply", "append_entries", "append_entries_reply"}) {
    EXPECT_GT(seen[type], 0) << type;
  }
  // Mutations of real traffic, which has realistic relations between fields.
  Checker checker("core traffic mutated");
  for (int i = 0; i < 20000 && !traffic.empty(); ++i) {
    checker.check(mutate(rng, pick(rng, traffic), traffic, static_cast<int>(below(rng, 8))));
  }
}

TEST(CodecFuzz, RandomBytes) {
  Rng rng(kSeed + 2);
  Checker checker("random bytes");
  static const std::string json_chars = "{}[]\":,0123456789-+.eE \ttruefalsnul\\";
  for (int i = 0; i < 20000; ++i) {
    std::string s(below(rng, 300), '\0');
    const bool jsonish = chance(rng, 2);
    for (char& c : s) c = jsonish ? json_chars[below(rng, json_chars.size())] : static_cast<char>(rng());
    checker.check(s);
  }
  // Over the datagram limit, and just at it.
  for (const std::size_t size : {wire::kMaxDatagramBytes, wire::kMaxDatagramBytes + 1}) {
    std::string s = R"({"type":"status","src":"c1","dest":"n1","pad":")";
    s += std::string(size - s.size() - 2, 'p') + "\"}";
    const bool accepted = checker.check(s);
    EXPECT_EQ(accepted, size <= wire::kMaxDatagramBytes);
  }
}

TEST(CodecFuzz, TruncationsAtEveryLength) {
  Checker checker("truncations");
  const std::vector<std::string>& texts = corpus();
  for (std::size_t t = 0; t < 240; ++t) {
    const std::string& text = texts[t];
    for (std::size_t len = 0; len < text.size(); ++len) {
      // A strict prefix of one JSON object is never a complete one.
      if (checker.check(text.substr(0, len))) checker.report("accepted a strict prefix", text.substr(0, len));
    }
  }
}

TEST(CodecFuzz, MutatedMessages) {
  Rng rng(kSeed + 3);
  const std::vector<std::string>& texts = corpus();
  static const char* names[] = {"truncation", "bit flips", "insert/delete", "splices",
                                "numbers",    "fields",    "duplicate keys", "invalid utf-8"};
  static const int counts[] = {5000, 20000, 20000, 10000, 20000, 25000, 10000, 10000};
  for (int kind = 0; kind < 8; ++kind) {
    Checker checker(names[kind]);
    for (int i = 0; i < counts[kind]; ++i) checker.check(mutate(rng, pick(rng, texts), texts, kind));
  }
}

TEST(CodecFuzz, DeepNesting) {
  Rng rng(kSeed + 4);
  Checker checker("nesting");
  for (int i = 0; i < 4000; ++i) checker.check(nest(rng));
}

}  // namespace
