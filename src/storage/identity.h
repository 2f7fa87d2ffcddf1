// Which cluster and node a data directory belongs to, in dir/"identity":
//   ["RKVID001"][cluster id length u8][cluster id][node id length u8][node id][crc32c u32 LE]
// The checksum covers every byte before it. Written once, atomically, at the
// first start; checked at every start, before the log or meta is opened, so
// a node pointed at another node's (or another cluster's) directory, or at a
// directory whose identity was lost, refuses to start instead of serving a
// stranger's state.
//
// A data directory, once a node has run in it:
//   identity   this file
//   meta       term and vote (meta_store.h)
//   log/       the log's segment files (segmented_log.h)
//   snapshot   the latest snapshot, if one was taken or received (snapshot_store.h)
//   reserve    free space kept for a restart on a full disk (disk_space.h)
#pragma once

#include <cstdint>
#include <string>

#include "storage/errors.h"

namespace storage {

inline constexpr std::size_t kMaxIdBytes = 64;

struct DataDirState {
  bool identity_created = false;          // first start: the identity was just written
  bool disk_nearly_full = false;             // under DataDirOptions::min_free_bytes free at this start
  std::uint64_t reserve_released_bytes = 0;  // the disk was nearly full: the reserve was deleted to make room
  bool reserve_created = false;           // the space reserve was (re-)created at this start
};

struct DataDirOptions {
  std::uint64_t reserve_bytes = std::uint64_t{8} << 20;
  // Below this much free space the disk counts as nearly full at startup.
  std::uint64_t min_free_bytes = std::uint64_t{16} << 20;
};

// Checks dir/"identity" against (cluster_id, node_id), both 1..64 bytes
// (std::invalid_argument otherwise). Creates it when the directory holds no
// identity, no meta, no snapshot and no log data (a missing log, or one
// without records). Throws StorageError naming the file when the identity is
// missing but a log with data, a meta or a snapshot file exists, is corrupt,
// or names another cluster or node; and when the identity is there but the
// log is missing next to a meta or snapshot file. Reads the log, meta and
// snapshot without modifying them. Returns true when it created the identity.
bool check_identity(const std::string& dir, const std::string& cluster_id, const std::string& node_id);

// What the node calls first at startup, before constructing SnapshotStore,
// SegmentedLog and MetaStore: check_identity, then, if the disk is nearly full, release the
// space reserve (so the meta file and a few log chunks can still be
// written), else make sure the reserve exists.
DataDirState prepare_data_dir(const std::string& dir, const std::string& cluster_id, const std::string& node_id,
                              const DataDirOptions& options = {});

}  // namespace storage
