#include "raft/log.h"

#include <algorithm>

#include "raft/assert.h"

namespace raft {

Log::Log(std::vector<Entry> entries, SnapshotMeta base) : base_(base), entries_(std::move(entries)) {
  data_bytes_through_.reserve(entries_.size() + 1);
  for (const Entry& e : entries_) data_bytes_through_.push_back(data_bytes_through_.back() + e.data.size());
}

std::optional<Term> Log::term_at(Index index) const {
  if (index == base_.index) return base_.term;
  if (index < base_.index || index > last_index()) return std::nullopt;
  return entries_[index - base_.index - 1].term;
}

Term Log::term(Index index) const {
  RAFT_ASSERT(index >= base_.index && index <= last_index(),
              "term of index " + std::to_string(index) + " outside the log " + std::to_string(base_.index) + ".." +
                  std::to_string(last_index()));
  return index == base_.index ? base_.term : entries_[index - base_.index - 1].term;
}

bool Log::matches(Index index, Term t) const {
  auto found = term_at(index);
  return found && *found == t;
}

const Entry& Log::at(Index index) const {
  RAFT_ASSERT(index > base_.index && index <= last_index(),
              "entry " + std::to_string(index) + " outside the log " + std::to_string(first_index()) + ".." +
                  std::to_string(last_index()));
  return entries_[index - base_.index - 1];
}

bool Log::is_up_to_date(Index other_last_index, Term other_last_term) const {
  // §5.4.1: compare the terms of the last entries; if equal, the longer log.
  if (other_last_term != last_term()) return other_last_term > last_term();
  return other_last_index >= last_index();
}

std::vector<Entry> Log::slice(Index from, std::size_t max_entries, std::size_t max_bytes) const {
  RAFT_ASSERT(from > base_.index, "slice from compacted index " + std::to_string(from));
  std::vector<Entry> out;
  std::size_t bytes = 0;
  for (Index i = from; i <= last_index() && out.size() < max_entries; ++i) {
    const Entry& e = at(i);
    bytes += e.data.size() + 48;  // rough per-entry framing overhead on the wire
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

std::vector<Entry> Log::range(Index from, Index to) const {
  from = std::max(from, first_index());
  to = std::min(to, last_index());
  if (from > to) return {};
  const auto offset = [&](Index i) { return static_cast<std::ptrdiff_t>(i - base_.index - 1); };
  return {entries_.begin() + offset(from), entries_.begin() + offset(to) + 1};
}

std::uint64_t Log::data_bytes_from(Index from) const {
  from = std::max(from, first_index());
  if (from > last_index()) return 0;
  return data_bytes_through_.back() - data_bytes_through_[from - base_.index - 1];
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
  RAFT_ASSERT(from > base_.index, "truncating compacted entries from " + std::to_string(from) + ", base " +
                                      std::to_string(base_.index));
  if (from <= last_index()) {
    entries_.resize(from - base_.index - 1);
    data_bytes_through_.resize(from - base_.index);
  }
}

void Log::compact(Index through) {
  RAFT_ASSERT(through >= base_.index && through <= last_index(),
              "compacting through " + std::to_string(through) + " outside the log " + std::to_string(base_.index) +
                  ".." + std::to_string(last_index()));
  if (through == base_.index) return;
  const std::size_t drop = through - base_.index;
  const Term through_term = term(through);
  // Compaction runs once per snapshot, so moving the kept tail (the trailing
  // entries and the unapplied ones) is cheap next to the work in between.
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(drop));
  const std::uint64_t dropped_bytes = data_bytes_through_[drop];
  data_bytes_through_.erase(data_bytes_through_.begin(), data_bytes_through_.begin() + static_cast<std::ptrdiff_t>(drop));
  for (std::uint64_t& b : data_bytes_through_) b -= dropped_bytes;
  base_ = {through, through_term};
}

void Log::reset(SnapshotMeta base) {
  entries_.clear();
  data_bytes_through_.assign(1, 0);
  base_ = base;
}

Index Log::first_index_of_term(Term t, Index at_or_before) const {
  Index i = std::min(at_or_before, last_index());
  if (i <= base_.index) return first_index();
  while (i > first_index() && at(i - 1).term == t) --i;
  return i;
}

std::optional<Index> Log::last_index_of_term(Term t) const {
  // Terms never decrease along the log, so scan back from the end.
  for (Index i = last_index(); i > base_.index; --i) {
    Term here = at(i).term;
    if (here == t) return i;
    if (here < t) break;
  }
  if (base_.index > 0 && base_.term == t) return base_.index;
  return std::nullopt;
}

}  // namespace raft
