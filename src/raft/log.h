// The core's in-memory view of the log: the durable prefix plus any tail not
// yet persisted. Entry i lives at entries_[i - 1]; index 0 has term 0.
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
  explicit Log(std::vector<Entry> entries);

  Index last_index() const { return entries_.size(); }
  Term last_term() const { return term(last_index()); }
  // Term of the entry at `index`, 0 for index 0; nullopt past the end.
  std::optional<Term> term_at(Index index) const;
  Term term(Index index) const;  // requires index <= last_index()
  bool matches(Index index, Term term) const;
  const Entry& at(Index index) const;  // requires 1 <= index <= last_index()

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
  // Drops entries with index >= from.
  void truncate_from(Index from);

  // Fast backtracking hints (§5.3, "the follower can include the term of the
  // conflicting entry and the first index it stores for that term").
  Index first_index_of_term(Term term, Index at_or_before) const;
  // Last index whose term is `term`, or nullopt when the log has none.
  std::optional<Index> last_index_of_term(Term term) const;

 private:
  std::vector<Entry> entries_;
  // data_bytes_through_[i] = sum of data sizes of entries 1..i; [0] = 0.
  std::vector<std::uint64_t> data_bytes_through_{0};
};

}  // namespace raft
