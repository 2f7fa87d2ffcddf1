// The core's in-memory view of the log: the durable prefix plus any tail not
// yet persisted, after a base: the last entry compacted into a snapshot
// (thesis §5.1), or {0, 0} before any compaction. Entry i lives at
// entries_[i - base_index() - 1]; the base's term is known, the entries
// before it are gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "raft/types.h"

namespace raft {

class Log {
 public:
  Log() = default;
  // Takes the entries as they are; Raft's constructor checks them (indexes
  // contiguous from 1, terms never decreasing) with check_invariants().
  explicit Log(std::vector<Entry> entries, SnapshotMeta base = {});

  Index base_index() const { return base_.index; }
  Term base_term() const { return base_.term; }
  const SnapshotMeta& base() const { return base_; }
  Index first_index() const { return base_.index + 1; }
  Index last_index() const { return base_.index + entries_.size(); }
  Term last_term() const { return term(last_index()); }
  // True for an index below the base: its entry was compacted away.
  bool compacted(Index index) const { return index < base_.index; }
  // Term of the entry at `index`, the base's term at the base; nullopt past
  // the end and below the base.
  std::optional<Term> term_at(Index index) const;
  Term term(Index index) const;  // requires base_index() <= index <= last_index()
  bool matches(Index index, Term term) const;
  const Entry& at(Index index) const;  // requires first_index() <= index <= last_index()

  // §5.4.1: is a log ending in (last_term, last_index) at least as up to date?
  bool is_up_to_date(Index last_index, Term last_term) const;

  // Entries [from, ...] bounded by count and encoded payload bytes; always at
  // least one entry when from <= last_index().
  std::vector<Entry> slice(Index from, std::size_t max_entries, std::size_t max_bytes) const;
  std::vector<Entry> range(Index from, Index to) const;  // [from, to]
  // Sum of data sizes of the entries [from, last_index()], in O(1); 0 when
  // from > last_index(). Bounds the uncommitted tail (Config::max_uncommitted_bytes).
  std::uint64_t data_bytes_from(Index from) const;

  Index append(Entry entry);  // sets entry.index to last_index() + 1
  // Drops entries with index >= from (from > base_index()).
  void truncate_from(Index from);
  // Drops entries with index <= through, which becomes the base; requires
  // base_index() <= through <= last_index().
  void compact(Index through);
  // Drops every entry; the log restarts after `base` (an installed snapshot
  // the log did not match).
  void reset(SnapshotMeta base);

  // Fast backtracking hints (§5.3, "the follower can include the term of the
  // conflicting entry and the first index it stores for that term").
  Index first_index_of_term(Term term, Index at_or_before) const;
  // Last index whose term is `term`, or nullopt when the log has none.
  std::optional<Index> last_index_of_term(Term term) const;

 private:
  SnapshotMeta base_;
  std::vector<Entry> entries_;
  // data_bytes_through_[k] = sum of data sizes of the first k entries after
  // the base; [0] = 0.
  std::vector<std::uint64_t> data_bytes_through_{0};
};

}  // namespace raft
