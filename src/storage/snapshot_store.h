// The latest snapshot of the state machine (thesis §5.1), in dir/"snapshot":
//
//   file   = [header, 40 bytes][data bytes]
//   header = ["RKVSNAP1"][index u64 LE][term u64 LE][data length u64 LE]
//            [crc32c u32 LE of the data][crc32c u32 LE of the 36 header bytes before]
// The file is exactly 40 + data length bytes. index and term are the last
// entry the snapshot covers (raft::SnapshotMeta); the data is opaque here.
//
// save() writes dir/"snapshot.tmp" (streamed from the caller's buffer, never
// copied), fsyncs it, renames it over dir/"snapshot" and fsyncs the
// directory, so a crash leaves the old snapshot or the new one, whole. The
// file is only ever replaced by rename: any damage in it is corruption, never
// a torn write, and load() refuses it (naming the file and offset) and leaves
// it untouched. A leftover snapshot.tmp is an unfinished save: the store
// deletes it, unread, when it is constructed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "raft/types.h"
#include "storage/errors.h"

namespace storage {

class SnapshotStore {
 public:
  static constexpr std::uint64_t kHeaderBytes = 40;

  // Deletes a leftover dir/"snapshot.tmp" (see removed_temp_bytes()).
  explicit SnapshotStore(const std::string& dir);

  // nullopt when no snapshot was ever saved. Holds one copy of the data: it
  // is read straight into the buffer it is returned in. Throws StorageError
  // for a damaged, truncated or extended file (left untouched).
  std::optional<raft::Snapshot> load() const;
  // Replaces the stored snapshot; durable on return. Throws
  // std::invalid_argument for index 0 or no data, DiskFull or StorageError
  // (the old snapshot kept, the temporary file removed).
  void save(const raft::Snapshot& snapshot);

  bool exists() const;
  static bool exists(const std::string& dir);
  const std::string& path() const { return path_; }
  // Size of the leftover snapshot.tmp the constructor deleted (a save that a
  // crash interrupted), and whether there was one.
  bool removed_temp() const { return removed_temp_; }
  std::uint64_t removed_temp_bytes() const { return removed_temp_bytes_; }

 private:
  std::string dir_;
  std::string path_;
  bool removed_temp_ = false;
  std::uint64_t removed_temp_bytes_ = 0;
};

}  // namespace storage
