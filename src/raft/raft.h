// The pure Raft core: a deterministic state machine with no sockets, clocks,
// threads or files. Input arrives as tick(), step(), propose() and
// read_index(); output leaves as one Ready value that the shell must handle in
// order: persist hard_state and entries, then send messages, then apply
// committed entries and serve reads, then call advance().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "raft/assert.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/types.h"

namespace raft {

struct Config {
  NodeId id;
  std::vector<NodeId> peers;  // every other server; the cluster is {id} ∪ peers
  int heartbeat_ticks = 1;
  int election_ticks_min = 10;  // election timeout is drawn from [min, max]
  int election_ticks_max = 20;
  std::uint64_t rng_seed = 1;
  // Bounds on one append_entries message, so it fits in a datagram.
  std::size_t max_append_bytes = 48 * 1024;
  std::size_t max_append_entries = 512;
  int max_inflight_appends = 64;  // pipelined appends per follower
  bool pre_vote = true;           // §9.6: a partitioned node cannot inflate terms
  bool check_quorum = true;       // §6.2: a leader without a majority steps down
  // Linearizable reads waiting for a commit or a confirming round; beyond
  // this read_index() refuses, so a flood of reads cannot exhaust memory.
  std::size_t max_pending_reads = 4096;
  // Bounds on the uncommitted tail of the leader's log (entries with index >
  // commit_index): while a majority is unreachable, proposals are refused
  // (propose() returns nullopt, the node answers busy) instead of growing
  // the log without end. Bytes are the sum of the entries' data sizes.
  std::size_t max_uncommitted_entries = 4096;
  std::size_t max_uncommitted_bytes = std::size_t{8} << 20;  // 8 MiB
  // InstallSnapshot (thesis §5.3). One chunk is one datagram: 32 KiB of
  // snapshot is 43,692 bytes of base64 on the wire, under the 65,507-byte
  // UDP limit with room for the envelope and the MAC.
  std::size_t max_snapshot_chunk_bytes = 32 * 1024;
  // Chunks sent ahead of the follower's acknowledged offset (flow control);
  // on a heartbeat without progress the leader resends from that offset.
  std::size_t max_inflight_snapshot_chunks = 8;
  // A follower refuses a snapshot announced larger than this, so a peer
  // cannot make it buffer without bound.
  std::uint64_t max_snapshot_bytes = std::uint64_t{1} << 30;  // 1 GiB
};

// Messages step() dropped whole because they break a rule the receiver can
// check. Dropped messages change nothing; the counts are for the operator.
struct DropCounts {
  std::uint64_t not_for_us = 0;         // unknown sender, or addressed to another node
  std::uint64_t out_of_range = 0;       // a term or index above kMaxNumber
  std::uint64_t bad_entries = 0;        // entries not contiguous, decreasing, or above the message's term
  std::uint64_t unsent_match = 0;       // a reply about entries this leader never sent
  std::uint64_t future_read_round = 0;  // a read_round this leader has not started yet
  std::uint64_t bad_snapshot = 0;       // a chunk outside its snapshot, or a snapshot over max_snapshot_bytes
  std::uint64_t total() const {
    return not_for_us + out_of_range + bad_entries + unsent_match + future_read_round + bad_snapshot;
  }
};

// A linearizable read that may now be served once last_applied >= index.
struct ReadState {
  std::uint64_t ctx = 0;
  Index index = 0;
};

struct Ready {
  // A snapshot received from the leader (thesis §5.3), to persist and load
  // into the state machine after hard_state (its term may be the one just
  // adopted) and before entries (they continue it). It replaces
  // every entry up to snapshot->meta.index; when snapshot_resets_log the
  // stored log did not hold that entry with that term (or did not reach it
  // yet), so every stored entry is discarded and the log continues at
  // meta.index + 1 (`entries` then holds any kept suffix again).
  // `committed` starts after meta.index.
  std::optional<Snapshot> snapshot;
  bool snapshot_resets_log = false;
  std::optional<HardState> hard_state;  // persist (atomically) if set
  // Persist: remove any stored entries with index >= entries.front().index,
  // then append these. `messages` go once these are durable, except a
  // leader's append_entries and install_snapshot, which may go first (§10.2.1).
  std::vector<Entry> entries;
  std::vector<Message> messages;
  std::vector<Entry> committed;       // apply in order, after persisting
  std::vector<ReadState> reads;       // serve once applied up to .index
  std::vector<std::uint64_t> failed_reads;  // not leader (any more): redirect

  bool empty() const {
    return !snapshot && !hard_state && entries.empty() && messages.empty() && committed.empty() &&
           reads.empty() && failed_reads.empty();
  }
};

// What the shell recovered from its data directory on start.
// entries follow the snapshot: indexes snapshot.meta.index + 1, +2, ...
// (from 1 without a snapshot); use entries_after_snapshot() to get them.
struct Recovered {
  HardState hard_state;
  std::vector<Entry> entries;
  std::optional<Snapshot> snapshot;
};

// The recovery rule for a stored snapshot and a stored log (thesis §5.3,
// applied on restart): entries at or below the snapshot are covered by it;
// those after it are kept only if the log holds the snapshot's last entry
// with the snapshot's term (Log Matching: then it is the same history), or
// starts right after it. Anything else is a stale suffix left by a crash
// between saving an installed snapshot and discarding the log, and goes.
// Returns the kept entries; `discarded` (if not null) says whether the stored
// log must be reset to continue at meta.index + 1: it ends before the
// snapshot, or disagrees with it at meta.index.
// Throws InvariantViolation when the log starts after meta.index + 1 (a gap:
// entries were lost).
std::vector<Entry> entries_after_snapshot(const SnapshotMeta& meta, std::vector<Entry> log, bool* discarded = nullptr);

// A value in [min_ticks, max_ticks] from one 64-bit random word, by
// multiply-shift range reduction: floor(random_bits * n / 2^64) with
// n = max_ticks - min_ticks + 1 (Lemire 2019, without the rejection step: a
// value's probability is off by less than n / 2^64). The election timeout is
// drawn with it rather than std::uniform_int_distribution, whose algorithm
// each standard library chooses; mt19937_64's output sequence is fixed by the
// standard ([rand.predef]), so a seed replays the same timeouts everywhere.
// Requires min_ticks <= max_ticks.
int election_ticks_from(std::uint64_t random_bits, int min_ticks, int max_ticks);

class Raft {
 public:
  // Throws std::invalid_argument for a bad config, and InvariantViolation
  // (check_invariants()) when the recovered state is inconsistent: indexes
  // not contiguous from 1, terms decreasing, an entry above current_term.
  Raft(Config config, Recovered recovered);

  void tick();
  void step(const Message& message);
  // Appends a command to the leader's log; nullopt when this node is not
  // leader, or when proposals_full(data.size()).
  std::optional<Index> propose(std::string data);
  // True when one more proposal of next_bytes would exceed
  // max_uncommitted_entries or max_uncommitted_bytes. Says nothing about the
  // role: a follower's answer is about its own uncommitted tail.
  bool proposals_full(std::size_t next_bytes) const;
  // Asks for a linearizable read point (§8). The answer comes back in a later
  // Ready as a ReadState with the same ctx, or in failed_reads. Returns false
  // (and remembers nothing) when max_pending_reads reads already wait.
  bool read_index(std::uint64_t ctx);

  // The shell has made `snapshot` durable: the state machine as of
  // snapshot.meta.index, which must be applied (<= last_applied()) and whose
  // term must be the log's term there. The core keeps it to send to
  // followers that need a compacted entry, and compacts its log through
  // min(compact_through, snapshot.meta.index); entries after compact_through
  // stay for followers that lag a little. A snapshot no newer than the one
  // held is ignored. Returns the index the log is now compacted through
  // (log().base_index()), for the shell to compact its stored log.
  Index snapshot_taken(Snapshot snapshot, Index compact_through);
  // The latest snapshot, taken or received; data is null when none.
  const Snapshot& snapshot() const { return snapshot_; }
  bool has_ready() const;
  Ready ready();
  // Everything in `ready` is persisted, sent and applied.
  void advance(const Ready& ready);

  // Observers, for the shell's status reply and for tests.
  const NodeId& id() const { return config_.id; }
  Role role() const { return role_; }
  Term current_term() const { return current_term_; }
  const NodeId& voted_for() const { return voted_for_; }
  const NodeId& leader_id() const { return leader_id_; }  // empty when unknown
  Index commit_index() const { return commit_index_; }
  Index last_applied() const { return last_applied_; }
  const Log& log() const { return log_; }
  const Config& config() const { return config_; }
  const DropCounts& drops() const { return drops_; }
  Index persisted_index() const { return persisted_index_; }
  std::uint64_t uncommitted_bytes() const { return log_.data_bytes_from(commit_index_ + 1); }

  // Throws InvariantViolation naming the first broken invariant of this one
  // state (see invariants.cc for the list and the rules they come from).
  // O(log length): for tests, the simulator and recovery, not per message.
  void check_invariants() const;
  // The whole log, entry by entry: run on recovery (the constructor), where
  // entries come from disk rather than through Log::append's checks.
  void check_log_entries() const;

 private:
  // Role transitions (§5.2).
  void become_follower(Term term, const NodeId& leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void campaign(bool pre_vote);

  void step_request_vote(const Message& m);
  void step_request_vote_reply(const Message& m);
  void step_append_entries(const Message& m);
  void step_append_entries_reply(const Message& m);
  void step_install_snapshot(const Message& m);
  void step_install_snapshot_reply(const Message& m);
  void install_received_snapshot();
  void send_snapshot_chunks(const NodeId& peer, Progress& pr);

  void tick_election();
  void tick_heartbeat();
  void reset_election_timer();
  bool in_leader_lease() const;
  bool well_formed(const Message& m);

  void send(Message m);
  bool send_append(const NodeId& peer, bool allow_empty);
  void send_heartbeat(const NodeId& peer);
  void broadcast_append();
  void broadcast_heartbeat();
  bool maybe_commit();
  void release_reads();
  bool has_unassigned_reads() const;
  void fail_pending_reads();
  std::size_t cluster_size() const { return config_.peers.size() + 1; }
  void truncate_log_from(Index from, const NodeId& because_of, Term new_term);

  friend struct TestPeer;  // tests/unit/invariants_test.cc breaks invariants on purpose

  Config config_;
  std::mt19937_64 rng_;

  // Persistent state (Figure 2).
  Term current_term_ = 0;
  NodeId voted_for_;
  Log log_;
  bool hard_state_dirty_ = false;

  // Volatile state.
  Role role_ = Role::Follower;
  NodeId leader_id_;
  Index commit_index_ = 0;
  Index last_applied_ = 0;       // handed to the shell in Ready.committed
  Index persisted_index_ = 0;    // last entry known durable on this node

  int election_elapsed_ = 0;
  int randomized_election_ticks_ = 0;
  int heartbeat_elapsed_ = 0;
  int check_quorum_elapsed_ = 0;

  std::map<NodeId, bool> votes_;  // (pre-)votes received in this election

  // Leader state (Figure 2, reinitialized after election).
  std::map<NodeId, Progress> progress_;
  bool pending_broadcast_ = false;  // new entries to ship at the next ready()
  std::uint64_t heartbeat_count_ = 0;  // heartbeat rounds sent, ages in-flight appends

  // ReadIndex (§8).
  struct PendingRead {
    std::uint64_t ctx;
    Index index;
    std::uint64_t round;  // 0 until a confirming round has been sent
  };
  std::vector<std::uint64_t> reads_awaiting_commit_;  // no entry of this term committed yet
  std::vector<PendingRead> pending_reads_;
  std::uint64_t read_round_ = 0;  // counter of confirming heartbeat rounds

  DropCounts drops_;
  std::vector<Message> outbox_;
  std::vector<std::uint64_t> quorum_scratch_;  // reused by maybe_commit() and release_reads()
  std::vector<ReadState> ready_reads_;
  std::vector<std::uint64_t> failed_reads_;

  // Snapshots (thesis §5). snapshot_ is the latest one this node holds.
  Snapshot snapshot_;
  // A snapshot being received from a leader, chunk by chunk, in order.
  struct Incoming {
    SnapshotMeta meta;
    std::uint64_t total_bytes = 0;
    NodeId from;  // the leader sending it, in
    Term term = 0;  // this term
    std::string bytes;  // [0, bytes.size()) received
  };
  std::optional<Incoming> incoming_;
  // Installed and not yet handed out in a Ready.
  bool snapshot_pending_ = false;
  bool snapshot_resets_log_ = false;
};

}  // namespace raft
