// Durable Raft log: one append-only file of checksummed records.
//   record = [crc32c u32 LE][payload length u32 LE][payload]
//   payload = [term u64 LE][index u64 LE][type u8][data bytes]
// The checksum covers the length and the payload. On open, a bad or partial
// record at the very end (a torn write) is cut off; a bad record followed by
// more data is corruption and stops the node with file and offset named.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "raft/types.h"

namespace storage {

struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class LogStore {
 public:
  // Opens (creating if absent) dir/"log", recovering its entries.
  explicit LogStore(const std::string& dir);
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // The entries recovered by the constructor (moved out; call once).
  std::vector<raft::Entry> take_recovered();
  raft::Index last_index() const { return offsets_.size(); }
  // Bytes cut off a torn tail during recovery (0 when the file was clean).
  std::uint64_t truncated_tail_bytes() const { return truncated_tail_bytes_; }

  // Writes entries (not yet durable). If entries.front().index <= last_index(),
  // the stored suffix from that index is removed first. Indexes must be
  // contiguous and start at most at last_index() + 1.
  void append(const std::vector<raft::Entry>& entries);
  // Makes every append so far durable (one fsync for the whole batch).
  void sync();

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<std::uint64_t> offsets_;  // offsets_[i - 1]: file offset of entry i
  std::uint64_t end_offset_ = 0;
  std::uint64_t truncated_tail_bytes_ = 0;
  bool dirty_ = false;
  std::vector<raft::Entry> recovered_;
  std::string buffer_;  // reused encode buffer, no allocation per batch
};

// Term and vote, in dir/"meta", replaced atomically: write a temporary file,
// fsync it, rename over the old one, fsync the directory.
class MetaStore {
 public:
  explicit MetaStore(const std::string& dir);
  raft::HardState load() const;  // default HardState when no file exists yet
  void save(const raft::HardState& state);

 private:
  std::string dir_;
};

}  // namespace storage
