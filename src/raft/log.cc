#include "raft/log.h"

#include <algorithm>

#include "raft/assert.h"

namespace raft {

Log::Log(std::vector<Entry> entries) : entries_(std::move(entries)) {
  data_bytes_through_.reserve(entries_.size() + 1);
  for (const Entry& e : entries_) data_bytes_through_.push_back(data_bytes_through_.back() + e.data.size());
}

std::optional<Term> Log::term_at(Index index) const {
  if (index == 0) return Term{0};
  if (index > last_index()) return std::nullopt;
  return entries_[index - 1].term;
}

Term Log::term(Index index) const {
  RAFT_ASSERT(index <= last_index(),
              "term of index " + std::to_string(index) + " past the last index " + std::to_string(last_index()));
  return index == 0 ? 0 : entries_[index - 1].term;
}

bool Log::matches(Index index, Term t) const {
  auto found = term_at(index);
  return found && *found == t;
}

const Entry& Log::at(Index index) const {
  RAFT_ASSERT(index >= 1 && index <= last_index(),
              "entry " + std::to_string(index) + " outside the log 1.." + std::to_string(last_index()));
  return entries_[index - 1];
}

bool Log::is_up_to_date(Index other_last_index, Term other_last_term) const {
  // §5.4.1: compare the terms of the last entries; if equal, the longer log.
  if (other_last_term != last_term()) return other_last_term > last_term();
  return other_last_index >= last_index();
}

std::vector<Entry> Log::slice(Index from, std::size_t max_entries, std::size_t max_bytes) const {
  RAFT_ASSERT(from >= 1, "slice from index 0");
  std::vector<Entry> out;
  std::size_t bytes = 0;
  for (Index i = from; i <= last_index() && out.size() < max_entries; ++i) {
    const Entry& e = entries_[i - 1];
    bytes += e.data.size() + 48;  // rough per-entry framing overhead on the wire
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

std::vector<Entry> Log::range(Index from, Index to) const {
  if (from == 0) from = 1;
  if (to > last_index()) to = last_index();
  if (from > to) return {};
  return {entries_.begin() + static_cast<std::ptrdiff_t>(from - 1),
          entries_.begin() + static_cast<std::ptrdiff_t>(to)};
}

std::uint64_t Log::data_bytes_from(Index from) const {
  if (from == 0) from = 1;
  if (from > last_index()) return 0;
  return data_bytes_through_.back() - data_bytes_through_[from - 1];
}

Index Log::append(Entry entry) {
  // Terms along a log never decrease: a leader appends only entries of its
  // own term, which is at least that of every entry it holds (§5.3).
  RAFT_ASSERT(entry.term >= last_term(), "appending an entry of term " + std::to_string(entry.term) +
                                             " after index " + std::to_string(last_index()) + " of term " +
                                             std::to_string(last_term()));
  entry.index = last_index() + 1;
  data_bytes_through_.push_back(data_bytes_through_.back() + entry.data.size());
  entries_.push_back(std::move(entry));
  return last_index();
}

void Log::truncate_from(Index from) {
  if (from == 0) from = 1;
  if (from <= last_index()) {
    entries_.resize(from - 1);
    data_bytes_through_.resize(from);
  }
}

Index Log::first_index_of_term(Term t, Index at_or_before) const {
  Index i = std::min(at_or_before, last_index());
  while (i > 1 && entries_[i - 2].term == t) --i;
  return i;
}

std::optional<Index> Log::last_index_of_term(Term t) const {
  // Terms never decrease along the log, so scan back from the end.
  for (Index i = last_index(); i >= 1; --i) {
    Term here = entries_[i - 1].term;
    if (here == t) return i;
    if (here < t) break;
  }
  return std::nullopt;
}

}  // namespace raft
