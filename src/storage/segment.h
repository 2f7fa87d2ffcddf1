// One segment of the durable Raft log (see segmented_log.h for the whole):
// a preallocated file of checksummed records holding a contiguous run of
// entries, named by the index of its first entry, dir/"00000000000000000001.seg".
//
//   file    = [header, 32 bytes][records][zeros up to EOF]
//   header  = ["RKVLOG03"][chunk_bytes u32 LE][first_index u64 LE][pending_cut u64 LE]
//             [crc32c u32 LE of the 28 bytes before]
//   record  = [crc32c u32 LE][payload length u32 LE][payload]
//   payload = [term u64 LE][index u64 LE][type u8][data bytes]
// A record's checksum covers its length and payload. Indexes run first_index,
// first_index + 1, ... and terms never decrease. The header carries the first
// index (and must agree with the name) so that an empty segment still says
// where the log continues: after a reset, the log is one empty segment whose
// first index is the snapshot's index + 1.
//
// Why preallocated: the file is only ever grown by whole chunks (fallocate,
// then fsync) *before* records are written into the new space, so its size is
// always 32 + k * chunk_bytes and a crash can only leave a partial record
// followed by zeros *inside* the file. That makes an outsider's truncation
// visible: a record that runs past EOF, or a size off the chunk grid, was cut
// by someone, not torn by a crash, and acknowledged entries would be lost.
//
// Recovery rules, on open (scan() is pure; repair() applies what it found):
//  * records end at the first all-zero record header;
//  * a partial or bad last record followed only by zeros is a torn tail: it
//    is cut by zeroing it in place (no new space needed), and reported;
//  * a bad record with non-zero bytes after it, an index out of sequence, a
//    decreasing term or an unknown type is corruption: StorageError naming the
//    file and offset, file left untouched;
//  * a missing or damaged header, another format version, or a first index
//    that disagrees with the file name: StorageError.
//
// pending_cut (0 = none) makes removing a suffix crash-safe: zeroing many
// pages is not atomic, and a half-zeroed suffix would look like a zeroed
// record followed by data, i.e. corruption. So the cut offset is first made
// durable in the header (one small in-place write), then the suffix is zeroed
// and synced, then pending_cut is cleared and synced; recovery finishes a cut
// it finds pending.
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

// A partial or damaged last record that recovery cut (all 0 when none).
struct TornTail {
  std::string path;           // the segment file it was in
  std::uint64_t offset = 0;   // file offset of the record
  std::uint64_t bytes = 0;    // bytes zeroed
  std::uint64_t records = 0;  // 0 or 1: only a last record can be torn
  raft::Index index = 0;      // the index the record would have had
};

class Segment {
 public:
  static constexpr std::uint64_t kHeaderBytes = 32;
  static constexpr std::uint32_t kMinChunkBytes = 4096;
  // Larger chunks would make one growth step a noticeable pause and waste
  // space on tiny clusters; the limit only guards against a damaged header.
  static constexpr std::uint32_t kMaxChunkBytes = std::uint32_t{1} << 30;
  static constexpr std::size_t kRecordHeaderBytes = 8;    // crc32c u32 + payload length u32
  static constexpr std::size_t kPayloadPrefixBytes = 17;  // term u64 + index u64 + type u8
  // A length beyond this is taken as a damaged header rather than believed,
  // so one flipped bit cannot make recovery skip (or demand) megabytes of log.
  static constexpr std::size_t kMaxPayloadBytes = std::size_t{1} << 20;
  static constexpr std::size_t kMaxDataBytes = kMaxPayloadBytes - kPayloadPrefixBytes;

  // "00000000000000000042.seg" for first index 42: 20 digits hold any u64,
  // and zero padding makes name order index order.
  static std::string file_name(raft::Index first_index);
  // The first index a segment file name stands for; nullopt if it is not one.
  static std::optional<raft::Index> parse_file_name(std::string_view name);
  static std::uint64_t record_bytes(const raft::Entry& entry) {
    return kRecordHeaderBytes + kPayloadPrefixBytes + entry.data.size();
  }
  // Whether bytes start with a header of this format (for inspection).
  static bool has_current_header(std::string_view bytes);

  // Opens dir/file_name(first_index) and scans it, appending its entries to
  // *entries. Changes nothing on disk (see repair()); throws StorageError
  // (the rules above) with the file untouched.
  static std::unique_ptr<Segment> open(const std::string& dir, raft::Index first_index,
                                       std::vector<raft::Entry>* entries);
  // Writes dir/file_name(first_index).tmp: a header and room for
  // reserve_bytes of records, fsynced, but not yet part of the log. Every
  // step that can run out of space happens here, before publish(). Throws
  // DiskFull (the temporary file removed) or StorageError.
  static std::unique_ptr<Segment> create_unpublished(const std::string& dir, raft::Index first_index,
                                                     std::uint32_t chunk_bytes, std::uint64_t reserve_bytes);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // Renames the file of create_unpublished() to its name and fsyncs the
  // directory: from now on it is part of the log.
  void publish();

  // What scan() found that repair() must act on.
  const TornTail& torn_tail() const { return torn_; }
  bool cut_pending() const { return pending_cut_ != 0; }
  // Cuts the torn tail and finishes a pending cut, durably. Returns the
  // bytes of stale records a crash left behind an interrupted cut (0 if none).
  std::uint64_t repair();

  const std::string& path() const { return path_; }
  raft::Index first_index() const { return first_index_; }
  // first_index() - 1 when empty.
  raft::Index last_index() const { return first_index_ + offsets_.size() - 1; }
  std::uint64_t entry_count() const { return offsets_.size(); }
  bool empty() const { return offsets_.empty(); }
  raft::Term term_at(raft::Index index) const { return terms_[index - first_index_]; }
  std::uint64_t records_bytes() const { return end_offset_ - kHeaderBytes; }
  std::uint64_t file_bytes() const { return file_bytes_; }
  std::uint64_t preallocated_free_bytes() const { return file_bytes_ - end_offset_; }
  std::uint32_t chunk_bytes() const { return chunk_bytes_; }
  bool dirty() const { return dirty_; }
  bool usable() const { return !failed_; }
  // Closes the descriptor of a complete (synced) segment: a long log must
  // not hold one per segment. Reopened on demand (a cut into it).
  void close_file();

  // Makes room for `bytes` more record bytes (whole chunks, fsynced). Throws
  // DiskFull with the segment unchanged and usable.
  void reserve(std::uint64_t bytes);
  // Writes entries [begin, end), already validated by the caller, into space
  // reserve() made; not durable until sync().
  void write(const raft::Entry* begin, const raft::Entry* end, std::string& buffer);
  // Removes the entries from `index` on, durably (pending_cut protected).
  void cut_from(raft::Index index);
  void sync();

 private:
  Segment(std::string dir, std::string path, int fd, raft::Index first_index, std::uint32_t chunk_bytes,
          std::uint64_t file_bytes);
  void write_header(std::uint64_t pending_cut);
  // Zeroes [offset, end) durably, with pending_cut protecting the window.
  void cut(std::uint64_t offset, std::uint64_t end);
  [[noreturn]] void fail(const std::string& what, int err);  // closes fd_: fail-stop
  // Reopens a file close_file() closed; throws if an earlier error ended its use.
  void ensure_open();

  std::string dir_;
  std::string path_;  // ends in ".tmp" until publish()
  int fd_ = -1;
  raft::Index first_index_ = 1;
  std::uint32_t chunk_bytes_ = 0;
  std::uint64_t file_bytes_ = 0;
  std::vector<std::uint64_t> offsets_;  // offsets_[i]: file offset of entry first_index_ + i
  std::vector<raft::Term> terms_;       // terms_[i]: its term
  std::uint64_t end_offset_ = kHeaderBytes;  // end of the last record
  bool dirty_ = false;
  bool failed_ = false;
  bool published_ = true;
  // Found by open(), acted on by repair().
  TornTail torn_;
  std::uint64_t torn_end_ = 0;     // > end_offset_: [end_offset_, torn_end_) is torn
  std::uint64_t pending_cut_ = 0;  // the header's pending cut offset
  std::uint64_t stale_end_ = 0;    // end of the non-zero bytes past pending_cut_
};

}  // namespace storage
