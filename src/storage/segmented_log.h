// The durable Raft log: a directory of segment files, dir/"log"/, in the
// manner of LogCabin's SegmentedLog (thesis ch. 5): the log is compacted by
// deleting whole closed segments, never by rewriting what stays.
//
//   dir/log/00000000000000000001.seg   entries 1..k      (closed: complete, synced)
//   dir/log/0000000000000000000k+1.seg entries k+1..n    (open: the last one, appended to)
//   dir/log/reset                      only while reset() runs (see below)
//
// Each segment is named by its first index (20 digits, so name order is index
// order) and has the format of segment.h: a header carrying that first index,
// then checksummed records, in a file preallocated in whole chunks. The
// segments' index ranges must follow each other without gap or overlap.
//
// Rolling: an append that would put more than segment_bytes of records into
// the open segment, when it holds at least one, is written to a new segment
// that starts at the next index. The full one is fsynced *before* the new one
// appears, so only the last segment can ever hold a torn write; damage in any
// earlier one is refused. All space a batch needs (new chunks, new segment
// files under a temporary name) is allocated before any record is written,
// so DiskFull leaves the log as it was.
//
// Crash safety of the operations that delete:
//  * suffix removal (append at an index already stored) deletes whole later
//    segments newest first, fsyncing the directory after each, then cuts
//    inside the segment holding the first replaced index (segment.h,
//    pending_cut): a crash leaves a prefix of the old log, or the new state;
//  * compact(through) deletes whole segments oldest first, fsyncing the
//    directory after each (a crash leaves a suffix of the old log, never a
//    gap);
//  * reset(after) first makes dir/log/reset durable (the marker: "a reset
//    to `after` is under way"), then deletes every segment, then creates an
//    empty one starting at after + 1, then deletes the marker. A restart that
//    finds the marker finishes the reset. So a crash leaves the old log whole
//    or the new empty log, and the log directory is never found without a
//    segment unless someone deleted them (refused).
//  * the log directory itself is created as dir/log.tmp/ with its first
//    segment and renamed into place; dir/log.tmp and "*.tmp" files in the log
//    directory are leftovers of a crash, never read, and removed at open.
//
// A single-file log of an older version (dir/log a regular file) is refused,
// unless it holds no record (then it is replaced by the directory).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/types.h"
#include "storage/errors.h"
#include "storage/segment.h"

namespace storage {

struct LogOptions {
  // Growth step of the segment files of a new log (an existing log keeps the
  // chunk size of its segments). Small values are for tests.
  std::uint32_t chunk_bytes = std::uint32_t{4} << 20;
  // Record bytes a segment may hold before the log rolls to a new one (a
  // segment holds at least one record, whatever its size). The default is
  // one default chunk. Small values are for tests.
  std::uint64_t segment_bytes = std::uint64_t{4} << 20;
};

// What dir/log holds, read without modifying anything (see inspect()).
struct LogSummary {
  bool exists = false;           // dir/log exists (a directory, or an older version's file)
  bool old_format_file = false;  // dir/log is a regular file: an older version's single-file log
  std::uint64_t segments = 0;    // segment files in the directory
  std::uint64_t file_bytes = 0;  // bytes of all of them (or of the old file)
  bool holds_data = false;       // any non-zero byte outside the headers
  std::uint64_t records = 0;     // checksum-valid records from each file's start (best effort)
  bool reset_pending = false;    // dir/log/reset: a reset was interrupted and will be finished
};

// What opening the log found and did.
struct LogRecovery {
  bool created = false;                  // there was no log: an empty one starting at 1 was made
  bool replaced_empty_old_file = false;  // an older version's log file without records was replaced
  TornTail torn;                         // a torn last record cut off the last segment
  std::uint64_t resumed_cut_bytes = 0;   // stale bytes of an interrupted suffix removal, now zeroed
  std::optional<raft::Index> resumed_reset_after;  // an interrupted reset(after), now finished
  std::vector<std::string> removed_temp_files;      // leftovers of a crash, deleted unread
};

class SegmentedLog {
 public:
  // Opens dir/log (creating it, and dir, if absent) and recovers its
  // entries. Throws StorageError (segment.h and the rules above), naming the
  // files, with nothing on disk changed when it refuses.
  explicit SegmentedLog(const std::string& dir, LogOptions options = {});
  ~SegmentedLog();
  SegmentedLog(const SegmentedLog&) = delete;
  SegmentedLog& operator=(const SegmentedLog&) = delete;

  // Tells what dir/log holds without opening it for writing: for the
  // identity check, which must run before any store touches the directory.
  static LogSummary inspect(const std::string& dir);
  // dir/"log".
  static std::string directory_of(const std::string& dir);

  // The entries recovered by the constructor, first_index() to last_index()
  // (moved out; call once).
  std::vector<raft::Entry> take_recovered();
  // The first stored entry's index; last_index() + 1 when the log is empty
  // (1 for a new log, after + 1 after reset(after)). Compaction may keep
  // entries at or below the index it was given.
  raft::Index first_index() const { return segments_.front()->first_index(); }
  raft::Index last_index() const { return segments_.back()->last_index(); }
  std::uint64_t entry_count() const { return last_index() + 1 - first_index(); }
  // Term of a stored entry, first_index() <= index <= last_index().
  raft::Term term_at(raft::Index index) const;

  const LogRecovery& recovery() const { return recovery_; }
  // The torn tail cut during recovery (all 0 when the last segment was clean).
  std::uint64_t truncated_tail_bytes() const { return recovery_.torn.bytes; }
  std::uint64_t truncated_tail_records() const { return recovery_.torn.records; }
  std::uint64_t truncated_tail_offset() const { return recovery_.torn.offset; }
  raft::Index truncated_tail_index() const { return recovery_.torn.index; }
  const std::string& truncated_tail_file() const { return recovery_.torn.path; }
  // Bytes of a suffix removal that a crash interrupted and recovery finished
  // (0 if none): stale, unacknowledged entries, not a loss.
  std::uint64_t resumed_cut_bytes() const { return recovery_.resumed_cut_bytes; }

  const std::string& directory() const { return log_dir_; }
  std::size_t segment_count() const { return segments_.size(); }
  std::vector<std::string> segment_paths() const;
  // Room left in the open segment's chunks: appends that fit need no new
  // space from the file system (unless they roll to a new segment).
  std::uint64_t preallocated_free_bytes() const { return segments_.back()->preallocated_free_bytes(); }
  // Bytes of all segment files.
  std::uint64_t file_bytes() const;
  std::uint32_t chunk_bytes() const { return chunk_bytes_; }

  // Writes entries (not yet durable). If entries.front().index <= last_index(),
  // the stored suffix from that index is removed first (durably, before any
  // new record is written). Indexes must be contiguous and start in
  // [first_index(), last_index() + 1]; terms must not decrease. Throws
  // std::invalid_argument for a bad batch (log unchanged), DiskFull when the
  // space cannot be allocated (log unchanged but for a suffix removal),
  // StorageError on I/O failure (log unusable: fail-stop).
  void append(const std::vector<raft::Entry>& entries);
  // Makes every append so far durable: one fdatasync per segment written
  // since the last sync (segments filled by a roll were synced already).
  void sync();
  // Deletes, oldest first, the segments whose entries are all <= through,
  // except the segment holding last_index(): first_index() <= last_index()
  // + 1 stays true, and entries <= through may remain. Durable on return.
  // Returns how many segments were deleted.
  std::size_t compact(raft::Index through);
  // Removes every entry, durably; the log is then empty and the next append
  // starts at after + 1. A crash leaves the old log or the new empty one.
  void reset(raft::Index after);

 private:
  void create_new_log();
  void open_existing();
  // Deletes every segment file (newest first) and creates an empty segment
  // at after + 1, while dir/log/reset says so; then deletes the marker.
  void finish_reset(raft::Index after, std::uint32_t chunk_bytes, const std::vector<raft::Index>& firsts);
  void remove_segment_file(const std::string& path, bool sync_directory);
  void check_usable() const;
  // Segment holding index (first_index() <= index <= last_index() + 1).
  std::size_t segment_of(raft::Index index) const;

  std::string dir_;
  std::string log_dir_;
  LogOptions options_;
  std::uint32_t chunk_bytes_ = 0;
  std::deque<std::unique_ptr<Segment>> segments_;  // oldest first; back() is the open one; never empty
  std::vector<raft::Entry> recovered_;
  LogRecovery recovery_;
  std::string buffer_;  // reused encode buffer, no allocation per batch
  bool failed_ = false;  // an operation that deletes or cuts failed midway: fail-stop
};

}  // namespace storage
