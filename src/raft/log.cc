#include "raft/log.h"

#include <cassert>
#include <stdexcept>

namespace raft {

Log::Log(std::vector<Entry> entries) : entries_(std::move(entries)) {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].index != i + 1) throw std::invalid_argument("log entries are not contiguous from 1");
    if (i > 0 && entries_[i].term < entries_[i - 1].term)
      throw std::invalid_argument("log terms decrease");  // terms in a log never go down
  }
}

std::optional<Term> Log::term_at(Index index) const {
  if (index == 0) return Term{0};
  if (index > last_index()) return std::nullopt;
  return entries_[index - 1].term;
}

Term Log::term(Index index) const {
  assert(index <= last_index());
  return index == 0 ? 0 : entries_[index - 1].term;
}

bool Log::matches(Index index, Term t) const {
  auto found = term_at(index);
  return found && *found == t;
}

const Entry& Log::at(Index index) const {
  assert(index >= 1 && index <= last_index());
  return entries_[index - 1];
}

bool Log::is_up_to_date(Index other_last_index, Term other_last_term) const {
  // §5.4.1: compare the terms of the last entries; if equal, the longer log.
  if (other_last_term != last_term()) return other_last_term > last_term();
  return other_last_index >= last_index();
}

std::vector<Entry> Log::slice(Index from, std::size_t max_entries, std::size_t max_bytes) const {
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

Index Log::append(Entry entry) {
  assert(entry.term >= last_term());
  entry.index = last_index() + 1;
  entries_.push_back(std::move(entry));
  return last_index();
}

void Log::truncate_from(Index from) {
  if (from == 0) from = 1;
  if (from <= last_index()) entries_.resize(from - 1);
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
