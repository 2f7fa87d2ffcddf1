// What a node recovers from its data directory at start: the snapshot, the
// log entries after it, and the term and vote (raft::Recovered), with the
// disk brought into agreement with it and a report of what was repaired.
//
// The rules (thesis §5.3, applied at restart), all checked before anything
// is changed:
//  * the log must not start after snapshot.index + 1 (with no snapshot: it
//    starts at 1): entries in between would be lost. Refused, naming files.
//  * the log continues the snapshot when it starts at snapshot.index + 1 or
//    holds entry snapshot.index with the snapshot's term (Log Matching: the
//    same history). Its entries after the snapshot are recovered; those at
//    or below it are covered by the snapshot and stay on disk until compacted.
//  * otherwise the log is stale (a crash came between saving a snapshot
//    received from the leader and resetting the log): it is reset to start
//    at snapshot.index + 1, so that disk and memory agree and a later append
//    cannot land after a stale entry (on the next restart that entry's term
//    would make the new entries look stale too).
//  * meta must exist when the log holds entries or a snapshot exists (the
//    term and vote of a node that acknowledged something), and its term must
//    be at least the snapshot's.
#pragma once

#include <cstdint>
#include <string>

#include "raft/raft.h"
#include "storage/meta_store.h"
#include "storage/segmented_log.h"
#include "storage/snapshot_store.h"

namespace storage {

struct RecoveryReport {
  LogRecovery log;                           // torn tail, resumed cut or reset, temp files (segmented_log.h)
  bool removed_snapshot_temp = false;        // a leftover snapshot.tmp (an interrupted save) was deleted unread
  std::uint64_t removed_snapshot_temp_bytes = 0;
  std::uint64_t snapshot_bytes = 0;          // data bytes of the snapshot loaded (0: none)
  raft::Index log_first_index = 0;           // the stored log as found, after the log's own repairs
  raft::Index log_last_index = 0;            // (first - 1 when empty)
  std::uint64_t entries_covered = 0;         // stored entries <= snapshot index: not recovered, kept on disk
  bool log_reset = false;                    // the log did not continue the snapshot and was reset
  std::uint64_t entries_discarded = 0;       // entries after the snapshot that the reset removed
};

struct RecoveredState {
  raft::Recovered recovered;
  RecoveryReport report;
};

// Loads the snapshot and the hard state, takes the log's recovered entries
// (call once, on freshly constructed stores), applies the rules above and
// resets the log when it is stale. Throws StorageError naming the files.
RecoveredState recover_data_dir(const SnapshotStore& snapshots, SegmentedLog& log, const MetaStore& meta);

}  // namespace storage
