#include "storage/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "storage/crash_points.h"
#include "storage/crc32c.h"
#include "storage/file_io.h"

namespace storage {
namespace {

using namespace io;

constexpr std::string_view kMagic = "RKVLOG03";  // the last two characters are the format version
constexpr std::size_t kMagicNameBytes = 6;       // "RKVLOG": tells an older or newer version apart from junk
constexpr std::size_t kHeaderCrcOffset = 28;
constexpr std::uint64_t kDataStart = Segment::kHeaderBytes;
constexpr std::size_t kRecordHeaderBytes = Segment::kRecordHeaderBytes;
constexpr std::size_t kPayloadPrefixBytes = Segment::kPayloadPrefixBytes;
constexpr std::size_t kMaxPayloadBytes = Segment::kMaxPayloadBytes;
constexpr std::size_t kIndexDigits = 20;
constexpr std::string_view kSuffix = ".seg";
// One huge batch should not pin its encode buffer for the life of the process.
constexpr std::size_t kMaxRetainedBufferBytes = std::size_t{16} << 20;
constexpr std::size_t kZeroBlockBytes = 64 << 10;

bool valid_type(std::uint8_t type) {
  return type == static_cast<std::uint8_t>(raft::EntryType::Noop) ||
         type == static_cast<std::uint8_t>(raft::EntryType::Command);
}

std::string encode_header(std::uint32_t chunk_bytes, raft::Index first_index, std::uint64_t pending_cut) {
  std::string bytes(kMagic);
  append_u32(bytes, chunk_bytes);
  append_u64(bytes, first_index);
  append_u64(bytes, pending_cut);
  append_u32(bytes, crc32c(bytes.data(), bytes.size()));
  return bytes;
}

struct FileHeader {
  std::uint32_t chunk_bytes = 0;
  raft::Index first_index = 0;
  std::uint64_t pending_cut = 0;
};

FileHeader parse_header(const std::string& path, std::string_view file, raft::Index named_first_index) {
  if (file.size() < kMagicNameBytes || file.substr(0, kMagicNameBytes) != kMagic.substr(0, kMagicNameBytes)) {
    throw StorageError(path + " does not start with the log segment header \"" + std::string(kMagic) +
                       "\": it is not a log segment; refusing to start");
  }
  if (file.size() < kMagic.size() || file.substr(0, kMagic.size()) != kMagic) {
    const std::string found(file.substr(0, std::min<std::size_t>(kMagic.size(), file.size())));
    throw StorageError(path + " has log format \"" + found + "\", this program reads \"" + std::string(kMagic) +
                       "\"; refusing to start");
  }
  const auto corrupt = [&](const std::string& problem) {
    return StorageError("corrupt log header in " + path + ": " + problem + "; refusing to start");
  };
  if (file.size() < kDataStart) {
    throw corrupt("only " + std::to_string(file.size()) + " bytes, the header needs " + std::to_string(kDataStart));
  }
  const std::uint32_t stored_crc = get_u32(file.data() + kHeaderCrcOffset);
  const std::uint32_t computed_crc = crc32c(file.data(), kHeaderCrcOffset);
  if (stored_crc != computed_crc) {
    throw corrupt("checksum mismatch (expected " + hex32(stored_crc) + ", found " + hex32(computed_crc) + ")");
  }
  FileHeader header;
  header.chunk_bytes = get_u32(file.data() + 8);
  header.first_index = get_u64(file.data() + 12);
  header.pending_cut = get_u64(file.data() + 20);
  if (header.chunk_bytes < Segment::kMinChunkBytes || header.chunk_bytes > Segment::kMaxChunkBytes) {
    throw corrupt("chunk size " + std::to_string(header.chunk_bytes) + " outside [" +
                  std::to_string(Segment::kMinChunkBytes) + ", " + std::to_string(Segment::kMaxChunkBytes) + "]");
  }
  // The name is how the log orders and finds segments, the header is what
  // was written with the records: a mismatch means a renamed file.
  if (header.first_index != named_first_index) {
    throw corrupt("first index " + std::to_string(header.first_index) + ", but the file name says " +
                  std::to_string(named_first_index));
  }
  if (header.pending_cut != 0 && (header.pending_cut < kDataStart || header.pending_cut > file.size())) {
    throw corrupt("pending cut offset " + std::to_string(header.pending_cut) + " outside the file");
  }
  return header;
}

// One past the last non-zero byte of file[from, to), or `from` if all zero.
std::uint64_t nonzero_end(std::string_view file, std::uint64_t from, std::uint64_t to) {
  while (to > from && file[to - 1] == '\0') --to;
  return to;
}

struct ScanResult {
  std::vector<std::uint64_t> offsets;
  std::vector<raft::Term> terms;
  std::uint64_t end_offset = kDataStart;  // end of the last good record
  std::uint64_t torn_end = 0;             // > end_offset: [end_offset, torn_end) is a torn tail to zero
};

// Walks the records in [kDataStart, limit) (limit < file size only while a cut
// is pending: what lies beyond is stale), appending entries to *entries. Pure:
// throws before anything is changed, so a refused file is left exactly as
// found for inspection. Records are named by the index expected there.
ScanResult scan_records(const std::string& path, std::string_view file, std::uint64_t limit,
                        const FileHeader& header, std::vector<raft::Entry>* entries) {
  ScanResult result;
  const bool size_on_grid = (file.size() - kDataStart) % header.chunk_bytes == 0;
  const auto next_index = [&] { return header.first_index + result.offsets.size(); };
  const auto corrupt = [&](std::uint64_t offset, const std::string& problem) {
    return StorageError("corrupt log record in " + path + " at offset " + std::to_string(offset) + ": " + problem +
                        "; refusing to start");
  };
  // A record that does not fit before the end: on the chunk grid nothing we
  // write can do that, so off the grid it means the file was cut short.
  const auto ends_inside = [&](std::uint64_t pos, std::uint64_t needed, std::uint64_t present) {
    const std::string where = "record " + std::to_string(next_index()) + " at offset " + std::to_string(pos) +
                              " (record needs " + std::to_string(needed) + " bytes, " + std::to_string(present) +
                              " present)";
    if (limit == file.size() && !size_on_grid) {
      return StorageError(path + " ends inside " + where +
                          ": the file was truncated, not torn by a crash; refusing to start");
    }
    return StorageError("corrupt log in " + path + ": " + where + " runs past the end of the valid region at offset " +
                        std::to_string(limit) + "; refusing to start");
  };

  std::uint64_t pos = kDataStart;
  while (pos < limit) {
    const std::uint64_t remaining = limit - pos;
    if (remaining < kRecordHeaderBytes) {
      if (all_zero(file.substr(pos, remaining))) break;
      throw ends_inside(pos, kRecordHeaderBytes, remaining);
    }
    const char* record = file.data() + pos;
    const std::uint32_t stored_crc = get_u32(record);
    const std::uint32_t payload_bytes = get_u32(record + 4);
    if (stored_crc == 0 && payload_bytes == 0) {
      // The end of the records. Anything non-zero after it was never part
      // of a record we finished writing, or is a record whose header was
      // wiped: refuse rather than drop what may be acknowledged entries.
      const std::uint64_t data_end = nonzero_end(file, pos, limit);
      if (data_end == pos) break;
      throw corrupt(pos, "zeroed record header followed by data (non-zero bytes up to offset " +
                             std::to_string(data_end) + ")");
    }

    std::string problem;
    std::uint64_t bad_end = 0;  // end of the bad record; what follows must be zeros for it to be torn
    if (payload_bytes < kPayloadPrefixBytes || payload_bytes > kMaxPayloadBytes) {
      problem = "payload length " + std::to_string(payload_bytes) + " outside [" +
                std::to_string(kPayloadPrefixBytes) + ", " + std::to_string(kMaxPayloadBytes) + "]";
      bad_end = pos + kRecordHeaderBytes;
    } else if (payload_bytes > remaining - kRecordHeaderBytes) {
      // A length partly written over zeros can point past the end; with only
      // zeros after the header and the size on the grid that is a torn tail.
      if (limit == file.size() && size_on_grid && all_zero(file.substr(pos + kRecordHeaderBytes))) {
        result.end_offset = pos;
        result.torn_end = pos + kRecordHeaderBytes;
        return result;
      }
      throw ends_inside(pos, kRecordHeaderBytes + payload_bytes, remaining);
    } else {
      const std::uint64_t record_end = pos + kRecordHeaderBytes + payload_bytes;
      const std::uint32_t computed_crc = crc32c(record + 4, 4 + payload_bytes);
      if (computed_crc == stored_crc) {
        // A checksum-valid record is what we wrote: a wrong index, type or
        // term in it is never a torn write.
        const char* payload = record + kRecordHeaderBytes;
        const raft::Term term = get_u64(payload);
        const raft::Index index = get_u64(payload + 8);
        const auto type = static_cast<std::uint8_t>(payload[16]);
        const raft::Index expected_index = next_index();
        if (index != expected_index) {
          throw corrupt(pos, "index " + std::to_string(index) + " where " + std::to_string(expected_index) +
                                 " was expected");
        }
        if (!valid_type(type)) throw corrupt(pos, "unknown entry type " + std::to_string(type));
        if (!result.terms.empty() && term < result.terms.back()) {
          throw corrupt(pos, "term " + std::to_string(term) + " at index " + std::to_string(index) + " (offset " +
                                 std::to_string(pos) + ") is below term " + std::to_string(result.terms.back()) +
                                 " of index " + std::to_string(index - 1));
        }
        raft::Entry entry;
        entry.term = term;
        entry.index = index;
        entry.type = static_cast<raft::EntryType>(type);
        entry.data.assign(payload + kPayloadPrefixBytes, payload_bytes - kPayloadPrefixBytes);
        entries->push_back(std::move(entry));
        result.offsets.push_back(pos);
        result.terms.push_back(term);
        pos = record_end;
        continue;
      }
      problem = "checksum mismatch (expected " + hex32(stored_crc) + ", found " + hex32(computed_crc) + ")";
      bad_end = record_end;
    }
    // Only the last write can be torn, and space past it is zeros (it was
    // preallocated, or zeroed by a cut): data after a bad record is damage.
    if (!all_zero(file.substr(bad_end, limit - bad_end))) throw corrupt(pos, problem);
    result.end_offset = pos;
    result.torn_end = bad_end;
    return result;
  }
  result.end_offset = pos;
  return result;
}

}  // namespace

std::string Segment::file_name(raft::Index first_index) {
  std::string digits = std::to_string(first_index);
  return std::string(kIndexDigits - digits.size(), '0') + digits + std::string(kSuffix);
}

std::optional<raft::Index> Segment::parse_file_name(std::string_view name) {
  if (name.size() != kIndexDigits + kSuffix.size() || name.substr(kIndexDigits) != kSuffix) return std::nullopt;
  raft::Index index = 0;
  const char* begin = name.data();
  const char* end = begin + kIndexDigits;
  if (!std::all_of(begin, end, [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  const auto [ptr, ec] = std::from_chars(begin, end, index);
  if (ec != std::errc() || ptr != end || index == 0) return std::nullopt;
  return index;
}

bool Segment::has_current_header(std::string_view bytes) {
  return bytes.size() >= kDataStart && bytes.substr(0, kMagic.size()) == kMagic;
}

Segment::Segment(std::string dir, std::string path, int fd, raft::Index first_index, std::uint32_t chunk_bytes,
                 std::uint64_t file_bytes)
    : dir_(std::move(dir)),
      path_(std::move(path)), fd_(fd), first_index_(first_index), chunk_bytes_(chunk_bytes), file_bytes_(file_bytes) {}

Segment::~Segment() {
  if (fd_ >= 0) ::close(fd_);
  // Never part of the log; a leftover (as a real crash leaves) is also removed at the next start.
  if (!published_ && !crash_points::crashed()) ::unlink(path_.c_str());
}

std::unique_ptr<Segment> Segment::open(const std::string& dir, raft::Index first_index,
                                       std::vector<raft::Entry>* entries) {
  const std::string path = join(dir, file_name(first_index));
  // Read-only until repair(): a refused file must stay exactly as found.
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw_io("cannot open", path, errno);
  FdGuard guard(fd);
  const std::string file = read_all(fd, path);
  const FileHeader header = parse_header(path, file, first_index);
  const std::uint64_t limit = header.pending_cut != 0 ? header.pending_cut : file.size();
  const std::size_t entries_before = entries->size();
  ScanResult scan;
  try {
    scan = scan_records(path, file, limit, header, entries);
  } catch (...) {
    entries->resize(entries_before);  // appended to only on success
    throw;
  }
  // Checked after the scan so that a cut inside a record gets the message
  // that names the record; this catches a cut between records.
  if ((file.size() - kDataStart) % header.chunk_bytes != 0) {
    entries->resize(entries_before);
    throw StorageError(path + " is " + std::to_string(file.size()) + " bytes, not the " +
                       std::to_string(kDataStart) + "-byte header plus whole chunks of " +
                       std::to_string(header.chunk_bytes) + " bytes: the file was truncated or extended by "
                       "something other than this program; refusing to start");
  }
  std::unique_ptr<Segment> segment(
      new Segment(dir, path, guard.release(), first_index, header.chunk_bytes, file.size()));
  segment->offsets_ = std::move(scan.offsets);
  segment->terms_ = std::move(scan.terms);
  segment->end_offset_ = scan.end_offset;
  segment->torn_end_ = scan.torn_end;
  if (scan.torn_end > scan.end_offset) {
    segment->torn_ = {path, scan.end_offset, scan.torn_end - scan.end_offset, 1, segment->last_index() + 1};
  }
  segment->pending_cut_ = header.pending_cut;
  if (header.pending_cut != 0) segment->stale_end_ = nonzero_end(file, header.pending_cut, file.size());
  return segment;
}

std::unique_ptr<Segment> Segment::create_unpublished(const std::string& dir, raft::Index first_index,
                                                     std::uint32_t chunk_bytes, std::uint64_t reserve_bytes) {
  const std::string path = join(dir, file_name(first_index));
  const std::string tmp_path = path + ".tmp";
  // O_TRUNC: a leftover of a crash mid-creation is simply overwritten.
  crash_points::step();
  const int fd = ::open(tmp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io("cannot create", tmp_path, errno);
  std::unique_ptr<Segment> segment(new Segment(dir, tmp_path, fd, first_index, chunk_bytes, 0));
  segment->published_ = false;  // from here the destructor removes the temporary file
  const std::string header = encode_header(chunk_bytes, first_index, 0);
  if (const int err = pwrite_all(fd, header.data(), header.size(), 0); err != 0) {
    throw_io("cannot write header of", tmp_path, err);
  }
  segment->file_bytes_ = kDataStart;
  segment->reserve(reserve_bytes);  // fsyncs when it grows
  if (::fsync(fd) != 0) throw_io("cannot fsync", tmp_path, errno);
  return segment;
}

void Segment::publish() {
  const std::string tmp_path = path_;
  const std::string path = tmp_path.substr(0, tmp_path.size() - 4);  // without ".tmp"
  rename_file(tmp_path, path);
  path_ = path;
  published_ = true;
  // The segment is part of the log only once its name is durable; records
  // are written into it only after that.
  fsync_directory(dir_);
}

void Segment::fail(const std::string& what, int err) {
  // After a failed write or fsync the page cache state is unknown (Linux may
  // drop dirty pages after reporting the error): refuse any further use.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  failed_ = true;
  throw_io(what, path_, err);
}

void Segment::close_file() {
  if (fd_ < 0 || dirty_) return;  // unsynced records need the descriptor for sync()
  ::close(std::exchange(fd_, -1));
}

void Segment::ensure_open() {
  if (failed_) throw StorageError("log segment " + path_ + " is unusable after an earlier I/O error");
  if (fd_ >= 0) return;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open", errno);
}

void Segment::write_header(std::uint64_t pending_cut) {
  // 32 bytes at offset 0: inside one sector, so the write is all or nothing.
  const std::string header = encode_header(chunk_bytes_, first_index_, pending_cut);
  if (const int err = pwrite_all(fd_, header.data(), header.size(), 0); err != 0) fail("cannot write header of", err);
  if (::fdatasync(fd_) != 0) fail("cannot fdatasync", errno);
}

void Segment::cut(std::uint64_t offset, std::uint64_t end) {
  write_header(offset);
  if (end > offset) {
    const std::string zeros(std::min<std::uint64_t>(kZeroBlockBytes, end - offset), '\0');
    for (std::uint64_t pos = offset; pos < end;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), end - pos));
      if (const int err = pwrite_all(fd_, zeros.data(), n, pos); err != 0) fail("cannot zero a suffix of", err);
      pos += n;
    }
    if (::fdatasync(fd_) != 0) fail("cannot fdatasync", errno);
  }
  // Cleared (and synced) before any new record lands past `offset`, or the
  // next recovery would wipe those records as stale.
  write_header(0);
  dirty_ = false;  // everything before `offset` was synced by write_header's fdatasync
}

std::uint64_t Segment::repair() {
  ensure_open();
  std::uint64_t zero_end = torn_end_;
  std::uint64_t resumed_bytes = 0;
  if (pending_cut_ != 0) {
    resumed_bytes = stale_end_ > pending_cut_ ? stale_end_ - pending_cut_ : 0;
    zero_end = std::max(zero_end, stale_end_);
  }
  // The cut must be durable before new records are written over the old tail.
  if (zero_end > end_offset_ || pending_cut_ != 0) cut(end_offset_, zero_end);
  torn_end_ = 0;
  pending_cut_ = 0;
  stale_end_ = 0;
  return resumed_bytes;
}

void Segment::reserve(std::uint64_t bytes) {
  const std::uint64_t needed_bytes = end_offset_ + bytes;
  if (needed_bytes <= file_bytes_) return;
  ensure_open();
  const std::uint64_t chunks = (needed_bytes - kDataStart + chunk_bytes_ - 1) / chunk_bytes_;
  const std::uint64_t new_bytes = kDataStart + chunks * chunk_bytes_;
  const auto grow_bytes = static_cast<off_t>(new_bytes - file_bytes_);
  crash_points::step();
  int err = 0;
#ifdef __linux__
  // Allocate without changing the size, then set the size in one step: a
  // crash during a large fallocate could otherwise leave a size off the grid,
  // which recovery would take for an outsider's truncation.
  if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(file_bytes_), grow_bytes) != 0) err = errno;
  if (err == 0 && ::ftruncate(fd_, static_cast<off_t>(new_bytes)) != 0) fail("cannot extend", errno);
  if (err == EOPNOTSUPP || err == ENOSYS) err = ::posix_fallocate(fd_, static_cast<off_t>(file_bytes_), grow_bytes);
#else
  err = ::posix_fallocate(fd_, static_cast<off_t>(file_bytes_), grow_bytes);
#endif
  if (err != 0) {
    // Nothing visible changed (space reserved past EOF is harmless and reused
    // by the next attempt), so the segment stays usable and the node may retry.
    if (is_disk_full_errno(err)) {
      throw_io("cannot preallocate " + std::to_string(grow_bytes) + " bytes for", path_, err);
    }
    fail("cannot preallocate space for", err);
  }
  // The new size must be durable before records are written into the new
  // space; else a crash could keep the records but not the size.
  if (::fsync(fd_) != 0) fail("cannot fsync", errno);
  file_bytes_ = new_bytes;
}

void Segment::write(const raft::Entry* begin, const raft::Entry* end, std::string& buffer) {
  std::uint64_t batch_bytes = 0;
  for (const raft::Entry* entry = begin; entry != end; ++entry) batch_bytes += record_bytes(*entry);
  reserve(batch_bytes);  // a no-op when the caller reserved the space already
  ensure_open();
  buffer.resize(batch_bytes);
  char* out = buffer.data();
  for (const raft::Entry* entry = begin; entry != end; ++entry) {
    const auto payload_bytes = static_cast<std::uint32_t>(kPayloadPrefixBytes + entry->data.size());
    put_u32(out + 4, payload_bytes);
    char* payload = out + kRecordHeaderBytes;
    put_u64(payload, entry->term);
    put_u64(payload + 8, entry->index);
    payload[16] = static_cast<char>(entry->type);
    if (!entry->data.empty()) std::memcpy(payload + kPayloadPrefixBytes, entry->data.data(), entry->data.size());
    put_u32(out, crc32c(out + 4, 4 + payload_bytes));
    out += kRecordHeaderBytes + payload_bytes;
  }
  // A partial batch would leave stale bytes behind a later, shorter append,
  // so a failed write ends the segment's use (fail-stop) instead of a retry.
  if (const int err = pwrite_all(fd_, buffer.data(), buffer.size(), end_offset_); err != 0) fail("cannot write", err);

  std::uint64_t offset = end_offset_;
  for (const raft::Entry* entry = begin; entry != end; ++entry) {
    offsets_.push_back(offset);
    terms_.push_back(entry->term);
    offset += record_bytes(*entry);
  }
  end_offset_ = offset;
  dirty_ = true;
  if (buffer.capacity() > kMaxRetainedBufferBytes) std::string().swap(buffer);
}

void Segment::cut_from(raft::Index index) {
  if (index > last_index()) return;
  ensure_open();
  const std::uint64_t cut_offset = offsets_[index - first_index_];
  cut(cut_offset, end_offset_);
  offsets_.resize(index - first_index_);
  terms_.resize(index - first_index_);
  end_offset_ = cut_offset;
}

void Segment::sync() {
  if (failed_) throw StorageError("log segment " + path_ + " is unusable after an earlier I/O error");
  if (!dirty_) return;
  // fdatasync suffices: records are only written inside space whose size
  // was already made durable by reserve().
  if (::fdatasync(fd_) != 0) fail("cannot fdatasync", errno);
  dirty_ = false;
}

}  // namespace storage
