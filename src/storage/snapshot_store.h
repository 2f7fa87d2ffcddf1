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
//
// save_background() is the same protocol for a writer outside the event loop
// (node/background_snapshot.h: a forked child), through a temporary file of
// its own, dir/"snapshot.bg.tmp", so it never shares one with save(); its
// leftover is deleted at construction just the same. SnapshotReader reads the
// file back in pieces, with load()'s checks, for a caller that must not block
// for the whole file at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/types.h"
#include "storage/errors.h"

namespace storage {

class SnapshotStore {
 public:
  static constexpr std::uint64_t kHeaderBytes = 40;
  static constexpr std::string_view kBackgroundTempName = "snapshot.bg.tmp";

  // Deletes a leftover dir/"snapshot.tmp" and dir/"snapshot.bg.tmp" (see
  // removed_temp_bytes()).
  explicit SnapshotStore(const std::string& dir);

  // nullopt when no snapshot was ever saved. Holds one copy of the data: it
  // is read straight into the buffer it is returned in. Throws StorageError
  // for a damaged, truncated or extended file (left untouched).
  std::optional<raft::Snapshot> load() const;
  // Replaces the stored snapshot; durable on return. Throws
  // std::invalid_argument for index 0 or no data, DiskFull or StorageError
  // (the old snapshot kept, the temporary file removed).
  void save(const raft::Snapshot& snapshot);
  // save() through dir/"snapshot.bg.tmp", from a buffer the caller owns (a
  // forked child's own serialization). const: it touches the files only, so
  // a child may call it on its copy of the parent's store. Same errors.
  void save_background(const raft::SnapshotMeta& meta, std::string_view data) const;
  // Deletes dir/"snapshot.bg.tmp" if there is one (a background writer that
  // was stopped); not durable, which is enough: a leftover is deleted at the
  // next start. Returns whether there was one.
  bool remove_background_temp() const;
  std::string background_temp_path() const;

  bool exists() const;
  static bool exists(const std::string& dir);
  const std::string& path() const { return path_; }
  // Whether the constructor deleted a leftover temporary file (a save that a
  // crash interrupted), their total size, and their paths.
  bool removed_temp() const { return !removed_temp_files_.empty(); }
  std::uint64_t removed_temp_bytes() const { return removed_temp_bytes_; }
  const std::vector<std::string>& removed_temp_files() const { return removed_temp_files_; }

 private:
  std::string dir_;
  std::string path_;
  std::vector<std::string> removed_temp_files_;
  std::uint64_t removed_temp_bytes_ = 0;
};

// The snapshot file read in pieces: the header is read and checked on open,
// the data by read_some() calls of bounded size (each one bounded work: a
// read from the page cache and its checksum), and finish() checks the data
// checksum. The checks and messages are load()'s, which is built on it.
class SnapshotReader {
 public:
  // nullopt when the file does not exist. Throws StorageError for a header
  // that does not check out or a file of the wrong size.
  static std::optional<SnapshotReader> open(const std::string& path);
  SnapshotReader(SnapshotReader&& other) noexcept;
  SnapshotReader& operator=(SnapshotReader&&) = delete;
  SnapshotReader(const SnapshotReader&) = delete;
  ~SnapshotReader();

  const raft::SnapshotMeta& meta() const { return meta_; }
  std::uint64_t data_bytes() const { return data_bytes_; }
  std::uint64_t bytes_read() const { return data_ ? data_->size() : 0; }
  bool done() const { return bytes_read() == data_bytes_; }
  // Reads up to max_bytes (at least 1) more of the data.
  void read_some(std::size_t max_bytes);
  // Once done(): checks the data checksum and hands the snapshot over; the
  // reader is spent.
  raft::Snapshot finish();

 private:
  SnapshotReader(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void read_header(std::uint64_t file_bytes);
  StorageError corrupt(std::uint64_t offset, const std::string& problem) const;
  void read_at(char* out, std::size_t n, std::uint64_t offset) const;

  std::string path_;
  int fd_ = -1;
  raft::SnapshotMeta meta_;
  std::uint64_t data_bytes_ = 0;
  std::uint32_t stored_data_crc_ = 0;
  std::uint32_t data_crc_ = 0;  // of the bytes read so far
  std::shared_ptr<std::string> data_;
};

}  // namespace storage
