// Safety checkers, run after every step of the simulation. Each check names
// the rule of the Raft paper (Ongaro & Ousterhout 2014, "In Search of an
// Understandable Consensus Algorithm", Figure 3 and §5) or the pitfall of
// DESIGN.md §6 it guards, and throws a Violation at the first breach.
//
// What is checked, and where:
//   after_step     election safety (§5.2), leader completeness (§5.4),
//                  state machine safety of commit indexes (§5.4.3), log
//                  matching on the in-memory log (§5.3), monotonic term and
//                  commit, one vote per term, commit <= last index.
//   after_persist  the same on the disk: log matching, terms never go down,
//                  at most one vote per term across restarts (pitfall 6),
//                  committed entries never truncated (pitfall 7).
//   on_send        a vote is granted / an append is acknowledged only after
//                  the state it depends on is on disk (pitfalls 2 and 3).
//   on_apply       every node applies the same sequence, without gaps or
//                  repeats, each command at most once.
//   on_read_state  a ReadIndex answer covers every write acknowledged before
//                  the read was issued (linearizable reads, §8, pitfalls 9, 11).
//   on_kv_apply    each replica's state machine gives the result and holds
//                  the dictionary of the checker's reference (kv_model.h):
//                  a retried (client, seq) takes effect at most once (§8).
//   on_write_reply every final answer to a write (first or retried) is the
//                  result of its one application, which happened before.
// The client-visible history as a whole is checked by linearizable.h.
//
// To stay cheap, logs are compared through chained prefix hashes (common.h):
// per node one hash per index, and one global map (index, term) -> hash.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kv/command.h"
#include "kv/state_machine.h"
#include "raft/invariants.h"
#include "raft/raft.h"
#include "wire/messages.h"
#include "cluster.h"
#include "common.h"
#include "kv_model.h"
#include "trace.h"

namespace sim {

// "(index 3, term 2, 'data')" or "(index 3, term 2, noop)".
std::string show(const raft::Entry& e);

class Checker {
 public:
  Checker(int size, const Clock& clock, Trace& trace);

  // A core was (re)built from the node's disk.
  void on_boot(const Node& n);
  void on_crash(const Node& n);
  // After every input handed to a live core, and after ready()/advance().
  void after_step(const Node& n);
  // The node's disk changed: hard state (if `hard_state_written`) and/or the
  // entries from index `first_changed` on.
  void after_persist(const Node& n, bool hard_state_written, raft::Index first_changed);
  void on_send(const Node& n, const raft::Message& m);
  // Before the node's state machine applies e (n.applied is the previous index).
  void on_apply(const Node& n, const raft::Entry& e);
  void on_propose(const Node& n, const std::string& data, std::optional<raft::Index> index);
  void on_read_state(const Node& n, const raft::ReadState& read, const IssuedRead& issued);
  // The node's state machine applied e (after on_apply); command and result
  // are null when e holds no command.
  void on_kv_apply(const Node& n, const raft::Entry& e, const kv::Command* command, const kv::Result* result);
  // Node `node` sent `reply`, a final answer (ok or cas_failed) to the
  // write (client, reply.seq) that the client still waits for.
  void on_write_reply(int node, const std::string& client, const wire::ClientReply& reply);
  // The node's disk now holds a new snapshot (before any compaction).
  void after_snapshot_persist(const Node& n);
  // The node took a snapshot of its state machine at meta.index, or
  // (installed) loaded one received from the leader into it.
  void on_snapshot(const Node& n, const raft::SnapshotMeta& meta, bool installed);
  // Index at which (client, seq) first took effect; nullopt if it has not.
  std::optional<raft::Index> first_applied_index(const std::string& client, std::uint64_t seq) const;

  raft::Index max_acked_index() const { return max_acked_index_; }
  raft::Index committed_index() const { return committed_.size() - 1; }
  const raft::Entry& committed_entry(raft::Index i) const { return committed_[i].entry; }
  std::uint64_t elections() const { return leader_of_term_.size(); }

 private:
  // raft::InvariantMonitor per node: changes between two states of its core.
  std::vector<raft::InvariantMonitor> monitors_;
  struct Shadow {
    // Disk (survives crashes).
    // [i]: prefix hash of disk entries 1..i; below the stored log's first
    // index (compacted, so committed) the committed prefix's hash.
    std::vector<std::uint64_t> disk_hash;
    raft::Index disk_first = 1;  // the stored log's first index as of disk_hash
    raft::Index disk_committed_match = 0;  // disk holds committed entries 1..this
    raft::HardState disk_hard_state;
    // Volatile: one incarnation of the core.
    bool alive = false;
    std::vector<std::uint64_t> mem_hash;   // [i]: prefix hash of core.log() 1..i (committed hashes up to its base)
    raft::Index mem_base = 0;
    raft::Index mem_committed_match = 0;
    raft::Term term = 0;
    raft::NodeId vote;
    raft::Role role = raft::Role::Follower;
    raft::Index commit = 0;
    raft::Index verify_cursor = 0;  // rolling re-verification of the in-memory log
    raft::Index applied = 0;
    std::uint64_t applied_hash = kEmptyLogHash;
    KvModel model;  // what this incarnation's state machine must hold
  };
  struct Committed {
    raft::Entry entry;
    std::uint64_t hash = kEmptyLogHash;
    // The term in which this entry was (at the latest) committed: the term of
    // the node that first reported a commit index covering it, lowered to
    // that of any later entry (committing an entry commits its prefix).
    // Non-decreasing along the vector.
    raft::Term commit_term = 0;
  };
  struct Origin {
    std::uint64_t hash;
    int node;
    bool on_disk;
    std::int64_t tick;
  };
  struct KeyHash {
    std::size_t operator()(const std::pair<raft::Index, raft::Term>& k) const {
      return static_cast<std::size_t>(mix64(k.first * 0x9e3779b97f4a7c15ULL ^ k.second));
    }
  };
  struct Acked {
    raft::Index index;
    raft::Term term;
    std::string data;
  };
  struct Proposed {
    std::uint32_t proposed = 0;   // times a leader accepted this command
    std::uint32_t committed = 0;  // times it was committed
  };
  // Where a (client, seq) took effect: the same on every replica.
  struct FirstApply {
    raft::Index index = 0;
    raft::Term term = 0;
    std::string data;
    kv::Result result;
    bool acked = false;  // counted in acked_ once
  };

  [[noreturn]] void fail(const std::string& invariant, const std::string& details) const;
  std::string who(const Node& n) const;

  void sync_memory_log(const Node& n, Shadow& s, bool full);
  void check_log_matching(const Node& n, raft::Index index, raft::Term term, std::uint64_t hash, bool on_disk);
  void check_commit(const Node& n, Shadow& s);
  void check_new_leader(const Node& n, const Shadow& s);
  void check_leader_has_committed(const Node& n, const Shadow& s);
  // Entries 1..result were committed in terms below `term`.
  raft::Index committed_before_term(raft::Term term) const;
  void advance_committed_match(const std::vector<std::uint64_t>& hashes, raft::Index& match) const;

  int size_;
  const Clock& clock_;
  Trace& trace_;
  std::vector<Shadow> shadows_;

  std::vector<Committed> committed_;  // [i]: the entry known committed at i; [0] unused
  std::unordered_map<std::pair<raft::Index, raft::Term>, Origin, KeyHash> first_seen_;
  std::map<raft::Term, int> leader_of_term_;
  std::map<std::pair<int, raft::Term>, raft::NodeId> granted_votes_;  // (voter, term) -> candidate
  std::unordered_map<std::string, Proposed> proposals_;  // by command data
  struct ClientSeqHash {
    std::size_t operator()(const std::pair<std::string, std::uint64_t>& k) const {
      return static_cast<std::size_t>(mix64(hash_bytes(k.first) ^ k.second));
    }
  };
  std::unordered_map<std::pair<std::string, std::uint64_t>, FirstApply, ClientSeqHash> first_applies_;  // by (client, seq)
  std::vector<Acked> acked_;
  raft::Index max_acked_index_ = 0;
  // The reference state at every index some node snapshotted: what a node
  // that installs or restarts from that snapshot must hold (thesis §5.1,
  // §6.3: the dictionary and the sessions).
  std::map<raft::Index, KvModel> models_at_;
  void check_state_machine(const Node& n, const KvModel& model, const char* when) const;
};

}  // namespace sim
