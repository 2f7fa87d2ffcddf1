// The driver's half of snapshots (thesis §5.1, §5.3): when to take one, how
// a taken one reaches the disk before the log behind it is compacted, and how
// one received from the leader replaces the state machine.
//
// A threshold snapshot goes to the Snapshotter when there is one (the node:
// a forked child writes it, node/background_snapshot.h), so the event loop
// never stalls for the whole serialization and write; its meta is fixed at
// start, and poll_snapshot() completes it turns later. Everything else (the
// admin request, the simulator, the unit tests) is synchronous. Invariant:
// the driver never writes the snapshot file while a background writer could
// still rename an older snapshot over it, so every save cancels one first.
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "node/driver.h"

namespace node {

void Driver::maybe_take_snapshot() {
  // One at a time: entries applied meanwhile count toward the next one,
  // which the thresholds start once this one is done.
  if (snapshotter_ != nullptr && snapshotter_->busy()) return;
  if (last_applied_ <= core_.snapshot().meta.index) return;
  const raft::Index since = last_applied_ - core_.snapshot().meta.index;
  const bool by_entries = options_.snapshot_threshold_entries > 0 && since >= options_.snapshot_threshold_entries;
  const bool by_bytes = options_.snapshot_threshold_bytes > 0 &&
                        applied_bytes_since_snapshot_ >= options_.snapshot_threshold_bytes;
  if (!by_entries && !by_bytes) return;
  if (snapshotter_ != nullptr && start_background_snapshot()) return;
  take_snapshot();
}

bool Driver::start_background_snapshot() {
  // Fixed now: the child sees the state machine exactly as of last_applied_.
  const raft::SnapshotMeta meta{last_applied_, core_.log().term(last_applied_)};
  if (!snapshotter_->start(meta, state_machine_)) return false;
  applied_bytes_at_background_start_ = applied_bytes_since_snapshot_;
  return true;
}

void Driver::cancel_background_snapshot(const std::string& reason) {
  if (snapshotter_ != nullptr && snapshotter_->busy()) snapshotter_->cancel(reason);
}

void Driver::poll_snapshot() {
  if (snapshotter_ == nullptr || !snapshotter_->busy()) return;
  std::optional<Snapshotter::Finished> finished = snapshotter_->poll();
  if (!finished) return;
  const raft::SnapshotMeta meta = finished->snapshot.meta;
  const raft::Snapshot& held = core_.snapshot();
  if (meta.index <= held.meta.index) {
    // A newer one arrived meanwhile. Every path that saves one cancels
    // this first, so this is defence; the file holds the newer one then.
    log_.info("background snapshot at index " + std::to_string(meta.index) + " discarded: the node holds one at " +
              std::to_string(held.meta.index));
    return;
  }
  // snapshot_taken()'s preconditions, checked here so a broken one names
  // itself: the core's last_applied only grows (an installed snapshot, the
  // one way it jumps, cancels this), and only snapshot_taken compacts, so an
  // index above the held snapshot is still in the log, with its term.
  if (meta.index > last_applied_ || meta.index <= core_.log().base_index() ||
      meta.index > core_.log().last_index() || core_.log().term(meta.index) != meta.term) {
    throw std::logic_error("background snapshot at index " + std::to_string(meta.index) + " (term " +
                           std::to_string(meta.term) + ") no longer matches the node: last applied " +
                           std::to_string(last_applied_) + ", log " + std::to_string(core_.log().base_index()) +
                           ".." + std::to_string(core_.log().last_index()));
  }
  applied_bytes_since_snapshot_ -= std::min(applied_bytes_at_background_start_, applied_bytes_since_snapshot_);
  snapshot_durable(std::move(finished->snapshot), "in the background: " + finished->figures);
}

raft::Index Driver::take_snapshot() {
  const raft::Snapshot& held = core_.snapshot();
  if (last_applied_ <= held.meta.index) return held.meta.index;
  cancel_background_snapshot("a synchronous snapshot at index " + std::to_string(last_applied_) + " replaces it");
  const auto started = std::chrono::steady_clock::now();
  raft::Snapshot snapshot;
  snapshot.meta = {last_applied_, core_.log().term(last_applied_)};
  snapshot.data = std::make_shared<const std::string>(state_machine_.serialize());
  const auto serialized = std::chrono::steady_clock::now();
  // Durable before the log behind it goes: a crash in between leaves the
  // snapshot and the whole log, and recovery skips what the snapshot covers.
  storage_.save_snapshot(snapshot);
  const auto saved = std::chrono::steady_clock::now();
  const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  char timing[96];
  std::snprintf(timing, sizeof timing, "serialize %.1f ms, write %.1f ms", ms(serialized - started),
                ms(saved - serialized));
  const raft::Index index = snapshot.meta.index;
  applied_bytes_since_snapshot_ = 0;
  snapshot_durable(std::move(snapshot), timing);
  return index;
}

void Driver::snapshot_durable(raft::Snapshot snapshot, const std::string& figures) {
  observer_->on_snapshot_saved(snapshot.meta, false);
  const raft::SnapshotMeta meta = snapshot.meta;
  const std::size_t bytes = snapshot.data->size();
  const raft::Index keep_from = options_.snapshot_trailing_entries < meta.index
                                    ? meta.index - options_.snapshot_trailing_entries
                                    : 0;
  const raft::Index through = core_.snapshot_taken(std::move(snapshot), keep_from);
  storage_.compact_log(through);
  observer_->on_log_compacted(through);
  log_.info("snapshot at index " + std::to_string(meta.index) + " (term " + std::to_string(meta.term) + "): " +
            std::to_string(state_machine_.size()) + " keys, " + std::to_string(state_machine_.session_count()) +
            " sessions, " + std::to_string(bytes) + " bytes; " + figures + "; log compacted through " +
            std::to_string(through));
}

void Driver::install_snapshot(const raft::Snapshot& snapshot, bool resets_log) {
  const raft::SnapshotMeta& meta = snapshot.meta;
  // Before anything is saved: an older background snapshot must never be
  // renamed over this one.
  cancel_background_snapshot("a snapshot at index " + std::to_string(meta.index) + " from the leader replaces it");
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
