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
// Deterministic: a fixed seed, and the random source of codec_generators.h.
// (Generators of valid messages: codec_generators.h; mutators:
// codec_mutators.h.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "raft/raft.h"
#include "wire/codec.h"

#include "codec_generators.h"
#include "codec_mutators.h"

namespace {

using wire::kMaxWireInteger;
using namespace codec_fuzz;

// ---------------------------------------------------------- properties ----

bool same(const raft::Message& a, const raft::Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.pre_vote == b.pre_vote && a.last_log_index == b.last_log_index &&
         a.last_log_term == b.last_log_term && a.vote_granted == b.vote_granted &&
         a.prev_log_index == b.prev_log_index && a.prev_log_term == b.prev_log_term &&
         a.entries == b.entries && a.leader_commit == b.leader_commit &&
         a.read_round == b.read_round && a.success == b.success && a.match_index == b.match_index &&
         a.reject_index == b.reject_index && a.conflict_index == b.conflict_index &&
         a.conflict_term == b.conflict_term && a.last_included_index == b.last_included_index &&
         a.last_included_term == b.last_included_term && a.offset == b.offset && a.total_bytes == b.total_bytes &&
         a.done == b.done && a.data == b.data;
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
    return big(s->term) || big(s->commit_index) || big(s->last_applied) || big(s->last_log_index) ||
                   big(s->snapshot_index) || (!s->has_snapshot_index && s->snapshot_index != 0)
               ? "status_reply number"
               : "";
  }
  if (const auto* r = std::get_if<wire::SnapshotReply>(&d)) return big(r->snapshot_index) ? "snapshot_reply index" : "";
  const auto* m = std::get_if<raft::Message>(&d);
  if (m == nullptr) return "";
  if (big(m->term) || big(m->last_log_index) || big(m->last_log_term) || big(m->prev_log_index) ||
      big(m->prev_log_term) || big(m->leader_commit) || big(m->read_round) || big(m->match_index) ||
      big(m->reject_index) || big(m->conflict_index) || big(m->conflict_term) || big(m->last_included_index) ||
      big(m->last_included_term) || big(m->offset) || big(m->total_bytes)) {
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
    case raft::MessageType::InstallSnapshot:
      if (m->term == 0) return "install_snapshot term 0";
      if (m->last_included_term > m->term) return "last_included_term above term";
      if ((m->last_included_index == 0) != (m->last_included_term == 0)) return "impossible snapshot position";
      if (m->total_bytes == 0) return "empty snapshot";
      if (m->offset > m->total_bytes || m->data.size() > m->total_bytes - m->offset) return "chunk past the end";
      if (m->done != (m->offset + m->data.size() == m->total_bytes)) return "done not on the last chunk";
      return "";
    case raft::MessageType::InstallSnapshotReply:
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

// ------------------------------------- valid messages and real traffic ----

// One valid message of a random type, encoded; also checks that the encoder's
// output of valid values decodes to exactly those values.
std::string random_valid(Rng& rng, Checker& checker) {
  const wire::Decoded expected = random_message(rng);
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
// duplication, crashes and snapshots (of random bytes, up to three chunks,
// sent to whoever was cut off too long), every message passing through the
// codec. The codec's rules must hold for whatever the reference core sends.
std::vector<std::string> cluster_traffic(Rng& rng, Checker& checker, std::map<std::string, int>& seen) {
  const std::vector<raft::NodeId> ids = {"n1", "n2", "n3"};
  struct Disk {
    raft::HardState hard_state;
    std::optional<raft::Snapshot> snapshot;
    std::vector<raft::Entry> entries;  // contiguous, from index 1 or after an installed snapshot
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
    const Disk& d = disks[id];
    raft::Recovered recovered;
    recovered.hard_state = d.hard_state;
    recovered.snapshot = d.snapshot;
    recovered.entries = d.snapshot ? raft::entries_after_snapshot(d.snapshot->meta, d.entries) : d.entries;
    nodes[id] = std::make_unique<raft::Raft>(c, std::move(recovered));
  };
  // The shell's part of a snapshot: the state at last_applied (any bytes do:
  // the core never reads them), durable, then handed to the core.
  const auto take_snapshot = [&](const raft::NodeId& id) {
    raft::Raft& r = *nodes[id];
    const raft::Index applied = r.last_applied();
    if (applied <= r.snapshot().meta.index) return;
    std::string bytes(1 + below(rng, 3 * r.config().max_snapshot_chunk_bytes), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    raft::Snapshot snapshot{{applied, r.log().term(applied)}, std::make_shared<const std::string>(std::move(bytes))};
    disks[id].snapshot = snapshot;
    r.snapshot_taken(std::move(snapshot), applied - std::min<raft::Index>(applied, below(rng, 4)));
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
      if (rd.snapshot) {
        d.snapshot = *rd.snapshot;
        if (rd.snapshot_resets_log) d.entries.clear();
      }
      if (rd.hard_state) d.hard_state = *rd.hard_state;
      if (!rd.entries.empty()) {
        while (!d.entries.empty() && d.entries.back().index >= rd.entries.front().index) d.entries.pop_back();
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
        if (m.type == raft::MessageType::InstallSnapshot && m.done) ++seen[type + " last chunk"];
        if (m.type == raft::MessageType::InstallSnapshotReply && m.done) ++seen[type + " done"];
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
        if (chance(rng, 40)) {
          start(id);  // crash and restart from disk
        } else if (chance(rng, 20)) {
          take_snapshot(id);
        }
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
  for (const char* type : {"request_vote", "request_vote_reply", "append_entries", "append_entries_reply",
                           "install_snapshot", "install_snapshot_reply", "install_snapshot last chunk",
                           "install_snapshot_reply done"}) {
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
