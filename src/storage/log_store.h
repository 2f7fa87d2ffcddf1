// Durable Raft log: one preallocated file of checksummed records, dir/"log".
//
//   file    = [file header, 24 bytes][records][zeros up to EOF]
//   header  = ["RKVLOG02"][chunk_bytes u32 LE][pending_cut u64 LE][crc32c u32 LE of the 20 bytes before]
//   record  = [crc32c u32 LE][payload length u32 LE][payload]
//   payload = [term u64 LE][index u64 LE][type u8][data bytes]
// A record's checksum covers its length and payload. Indexes run 1, 2, 3...
// and terms never decrease.
//
// Why preallocated: the file is only ever grown by whole chunks (fallocate,
// then fsync) *before* records are written into the new space, so its size is
// always 24 + k * chunk_bytes and a crash can only leave a partial record
// followed by zeros *inside* the file. That makes an outsider's truncation
// visible: a record that runs past EOF, or a size off the chunk grid, was cut
// by someone, not torn by a crash, and acknowledged entries would be lost.
//
// Recovery rules, on open:
//  * records end at the first all-zero record header;
//  * a partial or bad last record followed only by zeros is a torn tail: it
//    is cut by zeroing it in place (no new space needed), and reported;
//  * a bad record with non-zero bytes after it, an index out of sequence, a
//    decreasing term or an unknown type is corruption: StorageError naming the
//    file and offset, file left untouched;
//  * no header (a log of an older version) or a damaged header: StorageError.
//
// pending_cut (0 = none) makes removing a suffix crash-safe: zeroing many
// pages is not atomic, and a half-zeroed suffix would look like a zeroed
// record followed by data, i.e. corruption. So the cut offset is first made
// durable in the header (one small in-place write), then the suffix is zeroed
// and synced, then pending_cut is cleared and synced; recovery finishes a cut
// it finds pending.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "raft/types.h"
#include "storage/errors.h"

namespace storage {

struct LogOptions {
  // Growth step of the file for a new log (an existing log keeps the chunk
  // size in its header). Small values are for tests.
  std::uint32_t chunk_bytes = std::uint32_t{4} << 20;
};

// What a log file holds, read without modifying anything (see LogStore::inspect).
struct LogSummary {
  bool exists = false;
  std::uint64_t file_bytes = 0;
  bool has_header = false;      // starts with the current format's header
  bool holds_data = false;      // any non-zero byte outside the header
  std::uint64_t records = 0;    // checksum-valid records from the start (best effort)
};

class LogStore {
 public:
  static constexpr std::uint64_t kFileHeaderBytes = 24;
  static constexpr std::uint32_t kMinChunkBytes = 4096;

  // Opens dir/"log", creating it (atomically, with its header) if absent or
  // empty, and recovers its entries. Throws StorageError (see the rules above).
  explicit LogStore(const std::string& dir, LogOptions options = {});
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // Tells what dir/"log" holds without opening it for writing: for the
  // identity check, which must run before any store touches the directory.
  static LogSummary inspect(const std::string& dir);

  // The entries recovered by the constructor (moved out; call once).
  std::vector<raft::Entry> take_recovered();
  raft::Index last_index() const { return offsets_.size(); }

  // The torn tail cut during recovery (all 0 when the file was clean): how
  // many bytes were zeroed, how many records they held (0 or 1: only a last
  // record can be torn), the file offset and the index the record would have had.
  std::uint64_t truncated_tail_bytes() const { return torn_.bytes; }
  std::uint64_t truncated_tail_records() const { return torn_.records; }
  std::uint64_t truncated_tail_offset() const { return torn_.offset; }
  raft::Index truncated_tail_index() const { return torn_.index; }
  // Bytes of a suffix removal that a crash interrupted and recovery finished
  // (0 if none): stale, unacknowledged entries, not a loss.
  std::uint64_t resumed_cut_bytes() const { return resumed_cut_bytes_; }

  // Room left in the chunks already allocated: appends that fit need no new
  // space from the file system.
  std::uint64_t preallocated_free_bytes() const { return file_bytes_ - end_offset_; }
  std::uint64_t file_bytes() const { return file_bytes_; }
  std::uint32_t chunk_bytes() const { return chunk_bytes_; }

  // Writes entries (not yet durable). If entries.front().index <= last_index(),
  // the stored suffix from that index is removed first (durably, before any
  // new record is written). Indexes must be contiguous and start at most at
  // last_index() + 1; terms must not decrease. Throws std::invalid_argument
  // for a bad batch (log unchanged), DiskFull when no new chunk can be
  // allocated (log unchanged), StorageError on I/O failure (store unusable).
  void append(const std::vector<raft::Entry>& entries);
  // Makes every append so far durable (one fsync for the whole batch).
  void sync();

 private:
  struct TornTail {
    std::uint64_t offset = 0;
    std::uint64_t bytes = 0;
    std::uint64_t records = 0;
    raft::Index index = 0;
  };

  void open_or_create(const std::string& dir, LogOptions options);
  void recover();
  void write_header(std::uint64_t pending_cut);
  // Zeroes [offset, end) durably, with pending_cut protecting the window.
  void cut(std::uint64_t offset, std::uint64_t end);
  void grow_to(std::uint64_t needed_bytes);
  [[noreturn]] void fail(const std::string& what, int err);  // closes fd_: fail-stop

  std::string path_;
  int fd_ = -1;
  std::uint32_t chunk_bytes_ = 0;
  std::uint64_t file_bytes_ = 0;
  std::vector<std::uint64_t> offsets_;  // offsets_[i - 1]: file offset of entry i
  std::vector<raft::Term> terms_;       // terms_[i - 1]: term of entry i
  std::uint64_t end_offset_ = 0;        // end of the last record
  TornTail torn_;
  std::uint64_t resumed_cut_bytes_ = 0;
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
  // Like load(), but refuses a missing file when the log holds entries (see
  // check_meta_present). Pass LogStore::last_index().
  raft::HardState load(std::uint64_t log_entries) const;
  void save(const raft::HardState& state);

 private:
  std::string dir_;
};

// Throws StorageError when dir/"meta" is missing although the log holds
// log_entries > 0 entries: the term and vote were lost, and starting at term
// 0 could make this node vote twice in one term. No meta with an empty log is
// a fresh node.
void check_meta_present(const std::string& dir, std::uint64_t log_entries);

}  // namespace storage
