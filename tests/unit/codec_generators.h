// Generators for codec_fuzz_test.cc: a deterministic random source, and
// valid messages of every type with random field values (the encoders' input).
//
// Deterministic: std::mt19937_64 (whose output the standard fixes) and a
// range function of our own, since std::uniform_int_distribution differs
// between standard libraries.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "raft/raft.h"
#include "wire/codec.h"

namespace codec_fuzz {

using nlohmann::json;
using wire::kMaxWireInteger;

using Rng = std::mt19937_64;

// [0, n) for n >= 1. The modulo bias is irrelevant here; being identical on
// every platform is what matters.
inline std::uint64_t below(Rng& rng, std::uint64_t n) { return rng() % n; }
inline bool chance(Rng& rng, std::uint64_t one_in) { return below(rng, one_in) == 0; }
// [lo, hi], with the ends chosen often: boundaries are where bugs live.
inline std::uint64_t in_range(Rng& rng, std::uint64_t lo, std::uint64_t hi) {
  switch (below(rng, 10)) {
    case 0: return lo;
    case 1: return hi;
    case 2: return lo + below(rng, std::min<std::uint64_t>(hi - lo, 1000) + 1);  // small values
    default: return hi - lo == UINT64_MAX ? rng() : lo + below(rng, hi - lo + 1);
  }
}
template <typename T>
inline const T& pick(Rng& rng, const std::vector<T>& items) { return items[below(rng, items.size())]; }

inline std::string random_text(Rng& rng, std::size_t max_pieces) {
  // Valid UTF-8 only, with everything JSON must escape.
  static const std::vector<std::string> pieces = {
      "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", std::string(1, '\0'), "\x01", "\x7f",
      "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "{", "]", ":", ","};
  std::string s;
  const std::size_t n = below(rng, max_pieces + 1);
  for (std::size_t i = 0; i < n; ++i) s += pick(rng, pieces);
  return s;
}

inline std::string client_id(Rng& rng) {
  static const std::string chars = "abcXYZ019_.:-";
  std::string id;
  const std::size_t n = 1 + (chance(rng, 8) ? 63 : below(rng, 8));
  for (std::size_t i = 0; i < n; ++i) id += chars[below(rng, chars.size())];
  return id;
}

inline std::string server_id(Rng& rng) { return "n" + std::to_string(1 + below(rng, 5)); }

// A command as the KV layer writes it: a compact object with sorted keys.
inline std::string command(Rng& rng) {
  json cmd = {{"client", client_id(rng)}, {"seq", in_range(rng, 1, kMaxWireInteger)},
              {"op", chance(rng, 2) ? "set" : "delete"}, {"key", random_text(rng, 6)}};
  if (chance(rng, 2)) cmd["value"] = random_text(rng, 20);
  if (chance(rng, 8)) cmd["nested"] = {{"list", {1, -2, 3.5, nullptr, true}}};
  return cmd.dump();
}

inline raft::Message random_raft(Rng& rng) {
  raft::Message m;
  m.from = server_id(rng);
  m.to = server_id(rng);
  const raft::Term term = in_range(rng, 1, kMaxWireInteger);
  m.term = term;
  switch (below(rng, 6)) {
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
    case 4: {
      m.type = raft::MessageType::InstallSnapshot;
      m.last_included_index = chance(rng, 8) ? 0 : in_range(rng, 1, kMaxWireInteger);
      m.last_included_term = m.last_included_index == 0 ? 0 : in_range(rng, 1, term);
      m.total_bytes = in_range(rng, 1, kMaxWireInteger);
      // Any bytes at all: the chunk is a slice of a binary snapshot.
      m.data.resize(std::min<std::uint64_t>(below(rng, 80), m.total_bytes));
      for (char& c : m.data) c = static_cast<char>(rng());
      // Often the last chunk, which must say done; otherwise anywhere inside.
      m.offset = chance(rng, 2) ? m.total_bytes - m.data.size() : in_range(rng, 0, m.total_bytes - m.data.size());
      m.done = m.offset + m.data.size() == m.total_bytes;
      m.read_round = in_range(rng, 0, kMaxWireInteger);
      break;
    }
    case 5:
      m.type = raft::MessageType::InstallSnapshotReply;
      m.term = in_range(rng, 0, kMaxWireInteger);
      m.last_included_index = in_range(rng, 0, kMaxWireInteger);
      m.offset = in_range(rng, 0, kMaxWireInteger);
      m.done = chance(rng, 2);
      m.read_round = in_range(rng, 0, kMaxWireInteger);
      break;
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

// One valid message of a random type (never a DecodeError).
inline wire::Decoded random_message(Rng& rng) {
  static const std::vector<std::string> errors = {"not_leader", "cas_failed", "bad_request", "too_large"};
  static const std::vector<std::string> roles = {"leader", "follower", "candidate"};
  wire::Decoded expected;
  switch (below(rng, 10)) {
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
    case 3: {
      wire::StatusReply r{server_id(rng), client_id(rng), server_id(rng), pick(rng, roles),
                          in_range(rng, 0, kMaxWireInteger), chance(rng, 2) ? server_id(rng) : "",
                          in_range(rng, 0, kMaxWireInteger), in_range(rng, 0, kMaxWireInteger),
                          in_range(rng, 0, kMaxWireInteger), chance(rng, 2) ? server_id(rng) : "",
                          chance(rng, 2),
                          {{"bad_mac", in_range(rng, 0, kMaxWireInteger)}, {"no_mac", 1}}};
      // A reply without the field (a node without snapshots) carries 0.
      r.has_snapshot_index = !chance(rng, 8);
      r.snapshot_index = r.has_snapshot_index ? in_range(rng, 0, kMaxWireInteger) : 0;
      expected = r;
      break;
    }
    case 4:
      expected = wire::SnapshotRequest{client_id(rng), server_id(rng)};
      break;
    case 5: {
      wire::SnapshotReply r{server_id(rng), client_id(rng), chance(rng, 2), in_range(rng, 0, kMaxWireInteger), ""};
      if (chance(rng, 2)) r.message = random_text(rng, 20);
      expected = r;
      break;
    }
    case 6:
      expected = wire::LogTailRequest{client_id(rng), server_id(rng), in_range(rng, 1, wire::kMaxLogTailEntries)};
      break;
    case 7: {
      wire::LogTailReply r{server_id(rng), client_id(rng), 0, 0, 0, {}};
      r.base_index = in_range(rng, 0, kMaxWireInteger / 2);
      r.base_term = r.base_index == 0 ? 0 : in_range(rng, 1, 1000);
      r.last_index = r.base_index + in_range(rng, 0, 1000);
      const std::uint64_t n = std::min<std::uint64_t>(in_range(rng, 0, wire::kMaxLogTailEntries),
                                                      r.last_index - r.base_index);
      std::uint64_t term = std::max<std::uint64_t>(r.base_term, 1);
      for (std::uint64_t i = 0; i < n; ++i) {
        term += below(rng, 3) == 0 ? 1 : 0;
        r.terms.push_back(term);
      }
      expected = r;
      break;
    }
    default:
      expected = random_raft(rng);
      break;
  }
  return expected;
}

}  // namespace codec_fuzz
