// The driver's half of snapshots (thesis §5.1, §5.3): when to take one, how
// a taken one reaches the disk before the log behind it is compacted, and how
// one received from the leader replaces the state machine.
#include <chrono>
#include <memory>

#include "node/driver.h"

namespace node {

void Driver::maybe_take_snapshot() {
  const raft::Index since = last_applied_ - core_.snapshot().meta.index;
  const bool by_entries = options_.snapshot_threshold_entries > 0 && since >= options_.snapshot_threshold_entries;
  const bool by_bytes = options_.snapshot_threshold_bytes > 0 &&
                        applied_bytes_since_snapshot_ >= options_.snapshot_threshold_bytes;
  if (by_entries || by_bytes) take_snapshot();
}

raft::Index Driver::take_snapshot() {
  const raft::Snapshot& held = core_.snapshot();
  if (last_applied_ <= held.meta.index) return held.meta.index;
  const auto started = std::chrono::steady_clock::now();
  raft::Snapshot snapshot;
  snapshot.meta = {last_applied_, core_.log().term(last_applied_)};
  snapshot.data = std::make_shared<const std::string>(state_machine_.serialize());
  const auto serialized = std::chrono::steady_clock::now();
  // Durable before the log behind it goes: a crash in between leaves the
  // snapshot and the whole log, and recovery skips what the snapshot covers.
  storage_.save_snapshot(snapshot);
  observer_->on_snapshot_saved(snapshot.meta, false);
  const auto saved = std::chrono::steady_clock::now();
  const raft::SnapshotMeta meta = snapshot.meta;
  const std::size_t bytes = snapshot.data->size();
  const raft::Index keep_from = options_.snapshot_trailing_entries < meta.index
                                    ? meta.index - options_.snapshot_trailing_entries
                                    : 0;
  const raft::Index through = core_.snapshot_taken(std::move(snapshot), keep_from);
  storage_.compact_log(through);
  observer_->on_log_compacted(through);
  applied_bytes_since_snapshot_ = 0;
  const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  char timing[96];
  std::snprintf(timing, sizeof timing, "serialize %.1f ms, write %.1f ms", ms(serialized - started),
                ms(saved - serialized));
  log_.info("snapshot at index " + std::to_string(meta.index) + " (term " + std::to_string(meta.term) + "): " +
            std::to_string(state_machine_.size()) + " keys, " + std::to_string(state_machine_.session_count()) +
            " sessions, " + std::to_string(bytes) + " bytes; " + timing + "; log compacted through " +
            std::to_string(through));
  return meta.index;
}

void Driver::install_snapshot(const raft::Snapshot& snapshot, bool resets_log) {
  const raft::SnapshotMeta& meta = snapshot.meta;
  // Loaded first, so bytes that do not restore stop the node before its
  // disk holds them (restore() changes nothing when it throws).
  state_machine_.restore(*snapshot.data);
  storage_.save_snapshot(snapshot);
  if (resets_log) {
    storage_.reset_log(meta.index);
  } else {
    storage_.compact_log(meta.index);
  }
  last_applied_ = meta.index;
  applied_bytes_since_snapshot_ = 0;
  observer_->on_snapshot_saved(meta, true);
  observer_->on_log_compacted(meta.index);
  log_.info("installed snapshot at index " + std::to_string(meta.index) + " (term " + std::to_string(meta.term) +
            ") from the leader: " + std::to_string(state_machine_.size()) + " keys, " +
            std::to_string(snapshot.data->size()) + " bytes" + (resets_log ? "; log discarded" : "; log suffix kept"));
  // Writes this node proposed at or below the snapshot were decided by
  // others; the client retries and its session answers (exactly once).
  while (!pending_writes_.empty() && pending_writes_.begin()->first <= meta.index) {
    settle_write(pending_writes_.begin()->first, nullptr, nullptr);
  }
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= last_applied_) {
    const std::uint64_t ctx = reads_waiting_apply_.begin()->second;
    reads_waiting_apply_.erase(reads_waiting_apply_.begin());
    serve_read(ctx);
  }
}

}  // namespace node
