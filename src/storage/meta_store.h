// Term and vote, in dir/"meta", replaced atomically: write a temporary file,
// fsync it, rename over the old one, fsync the directory.
//
//   meta file = [term u64 LE][voted_for length u32 LE][voted_for bytes][crc32c u32 LE]
// The checksum covers every byte before it.
#pragma once

#include <cstdint>
#include <string>

#include "raft/types.h"
#include "storage/errors.h"

namespace storage {

class MetaStore {
 public:
  explicit MetaStore(const std::string& dir);
  raft::HardState load() const;  // default HardState when no file exists yet
  // Like load(), but refuses a missing file when the log holds entries (see
  // check_meta_present). Pass SegmentedLog::entry_count().
  raft::HardState load(std::uint64_t log_entries) const;
  void save(const raft::HardState& state);
  bool exists() const;
  std::string path() const;

 private:
  std::string dir_;
};

// Throws StorageError when dir/"meta" is missing although the log holds
// log_entries > 0 entries: the term and vote were lost, and starting at term
// 0 could make this node vote twice in one term. No meta with an empty log is
// a fresh node.
void check_meta_present(const std::string& dir, std::uint64_t log_entries);

}  // namespace storage
