#include "storage/recovery.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace storage {

RecoveredState recover_data_dir(const SnapshotStore& snapshots, SegmentedLog& log, const MetaStore& meta) {
  RecoveredState state;
  RecoveryReport& report = state.report;
  report.log = log.recovery();
  report.removed_snapshot_temp = snapshots.removed_temp();
  report.removed_snapshot_temp_bytes = snapshots.removed_temp_bytes();

  std::optional<raft::Snapshot> snapshot = snapshots.load();
  const raft::SnapshotMeta base = snapshot ? snapshot->meta : raft::SnapshotMeta{};
  report.snapshot_bytes = snapshot ? snapshot->data->size() : 0;
  const raft::Index first = log.first_index();
  const raft::Index last = log.last_index();
  report.log_first_index = first;
  report.log_last_index = last;

  // Everything is checked before anything changes.
  if (first > base.index + 1) {
    const std::string start = log.segment_paths().front() + " starts the log at index " + std::to_string(first);
    const std::string lost = "entries " + std::to_string(base.index + 1) + ".." + std::to_string(first - 1) +
                             " are lost; refusing to start";
    if (snapshot) {
      throw StorageError(start + " but the snapshot " + snapshots.path() + " ends at index " +
                         std::to_string(base.index) + ": " + lost);
    }
    throw StorageError(start + " but there is no snapshot (" + snapshots.path() + " is missing): " + lost);
  }
  const bool continues =
      first == base.index + 1 || (base.index >= first && base.index <= last && log.term_at(base.index) == base.term);

  // A missing meta next to stored entries is refused by load(entry_count()).
  raft::HardState hard_state = meta.load(log.entry_count());
  if (snapshot && !meta.exists()) {
    throw StorageError(meta.path() + " is missing but " + snapshots.path() + " holds the state through index " +
                       std::to_string(base.index) + ": the term and vote are lost, so this node could vote twice "
                       "in a term; refusing to start");
  }
  if (snapshot && hard_state.current_term < base.term) {
    throw StorageError(meta.path() + " holds term " + std::to_string(hard_state.current_term) + ", below term " +
                       std::to_string(base.term) + " of the snapshot " + snapshots.path() +
                       ": the meta file is older than the snapshot (one of them was replaced); refusing to start");
  }

  const raft::Index covered_end = std::min(last, base.index);
  report.entries_covered = covered_end >= first ? covered_end - first + 1 : 0;
  std::vector<raft::Entry> stored = log.take_recovered();
  if (stored.size() != log.entry_count()) {
    throw std::logic_error("recover_data_dir: the entries of " + log.directory() + " were taken already");
  }
  bool discarded = false;
  std::vector<raft::Entry> entries = raft::entries_after_snapshot(base, std::move(stored), &discarded);
  // `continues` is checked as well as `discarded`: entries_after_snapshot
  // says nothing about an empty log, and an empty log that starts at or
  // below the snapshot (a new node that crashed after saving its first
  // installed snapshot) must be reset too, or its first append would not fit.
  if (!continues || discarded) {
    report.log_reset = true;
    report.entries_discarded = last > base.index ? last - std::max(first, base.index + 1) + 1 : 0;
    entries.clear();
    log.reset(base.index);
  }

  state.recovered.hard_state = std::move(hard_state);
  state.recovered.snapshot = std::move(snapshot);
  state.recovered.entries = std::move(entries);
  return state;
}

}  // namespace storage
