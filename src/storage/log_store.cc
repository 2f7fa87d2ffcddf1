#include "storage/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "storage/crc32c.h"
#include "storage/file_io.h"

namespace storage {
namespace {

using namespace io;

constexpr std::string_view kMagic = "RKVLOG02";  // the last two characters are the format version
constexpr std::size_t kMagicNameBytes = 6;       // "RKVLOG": tells an older or newer version apart from junk
constexpr std::size_t kHeaderCrcOffset = 20;
constexpr std::uint64_t kDataStart = LogStore::kFileHeaderBytes;
// Larger chunks would make one growth step a noticeable pause and waste space
// on tiny clusters; the limit only guards against a damaged header.
constexpr std::uint32_t kMaxChunkBytes = std::uint32_t{1} << 30;

constexpr std::size_t kRecordHeaderBytes = 8;    // crc32c u32 + payload length u32
constexpr std::size_t kPayloadPrefixBytes = 17;  // term u64 + index u64 + type u8
// A length beyond this is taken as a damaged header rather than believed, so one
// flipped bit cannot make recovery skip (or demand) megabytes of log.
constexpr std::size_t kMaxPayloadBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxDataBytes = kMaxPayloadBytes - kPayloadPrefixBytes;
// One huge batch should not pin its encode buffer for the life of the process.
constexpr std::size_t kMaxRetainedBufferBytes = std::size_t{16} << 20;
constexpr std::size_t kZeroBlockBytes = 64 << 10;

bool valid_type(std::uint8_t type) {
  return type == static_cast<std::uint8_t>(raft::EntryType::Noop) ||
         type == static_cast<std::uint8_t>(raft::EntryType::Command);
}

std::string encode_header(std::uint32_t chunk_bytes, std::uint64_t pending_cut) {
  std::string bytes(kMagic);
  append_u32(bytes, chunk_bytes);
  append_u64(bytes, pending_cut);
  append_u32(bytes, crc32c(bytes.data(), bytes.size()));
  return bytes;
}

struct FileHeader {
  std::uint32_t chunk_bytes = 0;
  std::uint64_t pending_cut = 0;
};

FileHeader parse_header(const std::string& path, std::string_view file) {
  if (file.size() < kMagicNameBytes || file.substr(0, kMagicNameBytes) != kMagic.substr(0, kMagicNameBytes)) {
    throw StorageError(path + " does not start with the log header \"" + std::string(kMagic) +
                       "\": it was written by an older version of this program (records without a header) "
                       "or is not a log at all; refusing to start");
  }
  if (file.size() < kMagic.size() || file.substr(0, kMagic.size()) != kMagic) {
    const std::string found(file.substr(0, std::min<std::size_t>(kMagic.size(), file.size())));
    throw StorageError(path + " has log format \"" + found +
                       "\", this program reads \"" + std::string(kMagic) + "\"; refusing to start");
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
  header.pending_cut = get_u64(file.data() + 12);
  if (header.chunk_bytes < LogStore::kMinChunkBytes || header.chunk_bytes > kMaxChunkBytes) {
    throw corrupt("chunk size " + std::to_string(header.chunk_bytes) + " outside [" +
                  std::to_string(LogStore::kMinChunkBytes) + ", " + std::to_string(kMaxChunkBytes) + "]");
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
  std::vector<raft::Entry> entries;
  std::vector<std::uint64_t> offsets;
  std::vector<raft::Term> terms;
  std::uint64_t end_offset = kDataStart;  // end of the last good record
  std::uint64_t torn_end = 0;             // > end_offset: [end_offset, torn_end) is a torn tail to zero
};

// Walks the records in [kDataStart, limit) (limit < file size only while a cut
// is pending: what lies beyond is stale). Pure: throws before anything is
// changed, so a refused file is left exactly as found for inspection.
ScanResult scan_records(const std::string& path, std::string_view file, std::uint64_t limit,
                        std::uint32_t chunk_bytes) {
  ScanResult result;
  const bool size_on_grid = (file.size() - kDataStart) % chunk_bytes == 0;
  const auto corrupt = [&](std::uint64_t offset, const std::string& problem) {
    return StorageError("corrupt log record in " + path + " at offset " + std::to_string(offset) + ": " + problem +
                        "; refusing to start");
  };
  // A record that does not fit before the end: on the chunk grid nothing we
  // write can do that, so off the grid it means the file was cut short.
  const auto ends_inside = [&](std::uint64_t pos, std::uint64_t needed, std::uint64_t present) {
    const std::string where = "record " + std::to_string(result.offsets.size() + 1) + " at offset " +
                              std::to_string(pos) + " (record needs " + std::to_string(needed) + " bytes, " +
                              std::to_string(present) + " present)";
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
        const raft::Index expected_index = result.offsets.size() + 1;
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
        result.entries.push_back(std::move(entry));
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

LogStore::LogStore(const std::string& dir, LogOptions options) : path_(join(dir, "log")) {
  if (options.chunk_bytes < kMinChunkBytes || options.chunk_bytes > kMaxChunkBytes) {
    throw std::invalid_argument("log chunk size " + std::to_string(options.chunk_bytes) + " outside [" +
                                std::to_string(kMinChunkBytes) + ", " + std::to_string(kMaxChunkBytes) + "]");
  }
  open_or_create(dir, options);
  try {
    recover();
  } catch (...) {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));  // no destructor runs for a throwing constructor
    throw;
  }
}

void LogStore::recover() {
  const std::string file = read_all(fd_, path_);
  const FileHeader header = parse_header(path_, file);
  chunk_bytes_ = header.chunk_bytes;
  file_bytes_ = file.size();
  const std::uint64_t limit = header.pending_cut != 0 ? header.pending_cut : file.size();
  ScanResult scan = scan_records(path_, file, limit, chunk_bytes_);
  // Checked after the scan so that a cut inside a record gets the message
  // that names the record; this catches a cut between records.
  if ((file.size() - kDataStart) % chunk_bytes_ != 0) {
    throw StorageError(path_ + " is " + std::to_string(file.size()) + " bytes, not the " +
                       std::to_string(kDataStart) + "-byte header plus whole chunks of " +
                       std::to_string(chunk_bytes_) + " bytes: the file was truncated or extended by "
                       "something other than this program; refusing to start");
  }

  end_offset_ = scan.end_offset;
  offsets_ = std::move(scan.offsets);
  terms_ = std::move(scan.terms);
  recovered_ = std::move(scan.entries);
  std::uint64_t zero_end = scan.torn_end;
  if (header.pending_cut != 0) {
    const std::uint64_t stale_end = nonzero_end(file, header.pending_cut, file.size());
    resumed_cut_bytes_ = stale_end - header.pending_cut;
    zero_end = std::max(zero_end, stale_end);
  }
  if (scan.torn_end > end_offset_) {
    torn_ = {end_offset_, scan.torn_end - end_offset_, 1, last_index() + 1};
  }
  // The cut must be durable before new records are written over the old tail.
  if (zero_end > end_offset_ || header.pending_cut != 0) cut(end_offset_, zero_end);
}

void LogStore::open_or_create(const std::string& dir, LogOptions options) {
  create_directories(dir);
  int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT) throw_io("cannot open", path_, errno);
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw_io("cannot stat", path_, err);
    }
    if (st.st_size > 0) {
      fd_ = fd;
      return;
    }
    // Empty: holds no entries, so nothing can be lost by starting it afresh
    // (an older version created exactly this on a fresh start).
    ::close(fd);
  }
  // Created whole under a temporary name, so a crash can never leave a log
  // with a partial header (which would look like damage on the next start).
  write_file_atomically(dir, "log", encode_header(options.chunk_bytes, 0));
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) throw_io("cannot open", path_, errno);
}

LogStore::~LogStore() {
  if (fd_ >= 0) ::close(fd_);
}

LogSummary LogStore::inspect(const std::string& dir) {
  const std::string path = join(dir, "log");
  const std::optional<std::string> file = read_file_if_exists(path);
  LogSummary summary;
  if (!file) return summary;
  summary.exists = true;
  summary.file_bytes = file->size();
  summary.has_header = std::string_view(*file).substr(0, kMagic.size()) == kMagic && file->size() >= kDataStart;
  // An older log has the same records, only without the header.
  std::uint64_t pos = summary.has_header ? kDataStart : 0;
  summary.holds_data = !all_zero(std::string_view(*file).substr(pos));
  while (file->size() - pos >= kRecordHeaderBytes) {
    const std::uint32_t payload_bytes = get_u32(file->data() + pos + 4);
    if (payload_bytes < kPayloadPrefixBytes || payload_bytes > file->size() - pos - kRecordHeaderBytes) break;
    if (crc32c(file->data() + pos + 4, 4 + payload_bytes) != get_u32(file->data() + pos)) break;
    ++summary.records;
    pos += kRecordHeaderBytes + payload_bytes;
  }
  return summary;
}

std::vector<raft::Entry> LogStore::take_recovered() { return std::exchange(recovered_, {}); }

void LogStore::fail(const std::string& what, int err) {
  // After a failed write or fsync the page cache state is unknown (Linux may
  // drop dirty pages after reporting the error): refuse any further use.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  throw_io(what, path_, err);
}

void LogStore::write_header(std::uint64_t pending_cut) {
  // 24 bytes at offset 0: inside one sector, so the write is all or nothing.
  const std::string header = encode_header(chunk_bytes_, pending_cut);
  if (const int err = pwrite_all(fd_, header.data(), header.size(), 0); err != 0) fail("cannot write header of", err);
  if (::fdatasync(fd_) != 0) fail("cannot fdatasync", errno);
}

void LogStore::cut(std::uint64_t offset, std::uint64_t end) {
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
}

void LogStore::grow_to(std::uint64_t needed_bytes) {
  if (needed_bytes <= file_bytes_) return;
  const std::uint64_t chunks = (needed_bytes - kDataStart + chunk_bytes_ - 1) / chunk_bytes_;
  const std::uint64_t new_bytes = kDataStart + chunks * chunk_bytes_;
  const auto grow_bytes = static_cast<off_t>(new_bytes - file_bytes_);
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
    // by the next attempt), so the store stays usable and the node may retry.
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

void LogStore::append(const std::vector<raft::Entry>& entries) {
  if (fd_ < 0) throw StorageError("log " + path_ + " is unusable after an earlier I/O error");
  if (entries.empty()) return;

  // Validate everything before touching the file, so a rejected batch leaves
  // the log exactly as it was.
  const raft::Index first = entries.front().index;
  if (first == 0 || first > last_index() + 1) {
    throw std::invalid_argument("append to " + path_ + ": first index " + std::to_string(first) +
                                " does not follow last index " + std::to_string(last_index()));
  }
  raft::Term previous_term = first >= 2 ? terms_[first - 2] : 0;
  std::size_t batch_bytes = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const raft::Entry& entry = entries[i];
    const std::string what = "append to " + path_ + ": entry " + std::to_string(entry.index);
    if (entry.index != first + i) {
      throw std::invalid_argument("append to " + path_ + ": index " + std::to_string(entry.index) + " where " +
                                  std::to_string(first + i) + " was expected");
    }
    if (entry.data.size() > kMaxDataBytes) {
      throw std::invalid_argument(what + " has " + std::to_string(entry.data.size()) + " data bytes, limit " +
                                  std::to_string(kMaxDataBytes));
    }
    if (!valid_type(static_cast<std::uint8_t>(entry.type))) throw std::invalid_argument(what + " has an unknown type");
    // Recovery refuses a log whose terms decrease, so never write one.
    if (entry.term < previous_term) {
      throw std::invalid_argument(what + " has term " + std::to_string(entry.term) + ", below term " +
                                  std::to_string(previous_term) + " of the entry before it");
    }
    previous_term = entry.term;
    batch_bytes += kRecordHeaderBytes + kPayloadPrefixBytes + entry.data.size();
  }

  if (first <= last_index()) {
    // Made durable now rather than in sync(): if the new records reached the
    // disk but the cut did not, recovery would find the new records followed
    // by the old suffix, all with valid checksums and contiguous indexes, and
    // splice two leaders' logs together.
    const std::uint64_t cut_offset = offsets_[first - 1];
    cut(cut_offset, end_offset_);
    offsets_.resize(first - 1);
    terms_.resize(first - 1);
    end_offset_ = cut_offset;
  }
  grow_to(end_offset_ + batch_bytes);

  buffer_.resize(batch_bytes);
  char* out = buffer_.data();
  for (const raft::Entry& entry : entries) {
    const auto payload_bytes = static_cast<std::uint32_t>(kPayloadPrefixBytes + entry.data.size());
    put_u32(out + 4, payload_bytes);
    char* payload = out + kRecordHeaderBytes;
    put_u64(payload, entry.term);
    put_u64(payload + 8, entry.index);
    payload[16] = static_cast<char>(entry.type);
    if (!entry.data.empty()) std::memcpy(payload + kPayloadPrefixBytes, entry.data.data(), entry.data.size());
    put_u32(out, crc32c(out + 4, 4 + payload_bytes));
    out += kRecordHeaderBytes + payload_bytes;
  }
  // A partial batch would leave stale bytes behind a later, shorter append,
  // so a failed write ends the store's use (fail-stop) instead of a retry.
  if (const int err = pwrite_all(fd_, buffer_.data(), buffer_.size(), end_offset_); err != 0) fail("cannot write", err);

  offsets_.reserve(offsets_.size() + entries.size());
  terms_.reserve(terms_.size() + entries.size());
  std::uint64_t offset = end_offset_;
  for (const raft::Entry& entry : entries) {
    offsets_.push_back(offset);
    terms_.push_back(entry.term);
    offset += kRecordHeaderBytes + kPayloadPrefixBytes + entry.data.size();
  }
  end_offset_ = offset;
  dirty_ = true;
  if (buffer_.capacity() > kMaxRetainedBufferBytes) std::string().swap(buffer_);
}

void LogStore::sync() {
  if (fd_ < 0) throw StorageError("log " + path_ + " is unusable after an earlier I/O error");
  if (!dirty_) return;
  // fdatasync suffices: appends only write inside space whose size was
  // already made durable by grow_to().
  if (::fdatasync(fd_) != 0) fail("cannot fdatasync", errno);
  dirty_ = false;
}

}  // namespace storage
