#include "storage/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

#include "storage/crc32c.h"
#include "storage/file_io.h"

namespace storage {
namespace {

using namespace io;

constexpr std::size_t kHeaderBytes = 8;          // crc32c u32 + payload length u32
constexpr std::size_t kPayloadPrefixBytes = 17;  // term u64 + index u64 + type u8
// A length beyond this is taken as a damaged header rather than believed, so one
// flipped bit cannot make recovery skip (or demand) megabytes of log.
constexpr std::size_t kMaxPayloadBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxDataBytes = kMaxPayloadBytes - kPayloadPrefixBytes;
// One huge batch should not pin its encode buffer for the life of the process.
constexpr std::size_t kMaxRetainedBufferBytes = std::size_t{16} << 20;

bool valid_type(std::uint8_t type) {
  return type == static_cast<std::uint8_t>(raft::EntryType::Noop) ||
         type == static_cast<std::uint8_t>(raft::EntryType::Command);
}

// Returns 0 or the errno of the first failure. Retries EINTR and short writes.
int pwrite_all(int fd, const char* data, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t written = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (written == 0) return EIO;  // no progress and no errno: never spin on it
    data += written;
    n -= static_cast<std::size_t>(written);
    offset += static_cast<std::uint64_t>(written);
  }
  return 0;
}

std::string read_whole_file(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_io("cannot stat", path, errno);
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot read", path, errno);
    }
    if (got == 0) break;  // shrank under us; scan what was there
    done += static_cast<std::size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

// A newly created file is only reachable after a crash once its directory
// entry is durable too.
void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_io("cannot open directory", dir, errno);
  FdGuard guard(fd);
  if (::fsync(fd) != 0) throw_io("cannot fsync directory", dir, errno);
}

struct ScanResult {
  std::vector<raft::Entry> entries;
  std::vector<std::uint64_t> offsets;
  std::uint64_t valid_end_offset = 0;  // everything from here on is a torn tail
};

// Walks the records from the start. Stops at a torn tail (an incomplete last
// write: the file is cut there) and throws on damage that has real data after
// it, because cutting there would silently drop acknowledged entries.
ScanResult scan_records(const std::string& path, std::string_view file) {
  ScanResult result;
  const std::uint64_t size = file.size();
  std::uint64_t pos = 0;
  while (pos < size) {
    const std::uint64_t remaining = size - pos;
    if (remaining < kHeaderBytes) break;  // header past EOF: torn
    const char* record = file.data() + pos;
    const std::uint32_t stored_crc = get_u32(record);
    const std::uint32_t payload_bytes = get_u32(record + 4);

    std::string problem;
    std::uint64_t after_bad_offset = 0;  // where the data following the bad record starts
    if (payload_bytes < kPayloadPrefixBytes || payload_bytes > kMaxPayloadBytes) {
      problem = "payload length " + std::to_string(payload_bytes) + " outside [" +
                std::to_string(kPayloadPrefixBytes) + ", " + std::to_string(kMaxPayloadBytes) + "]";
      after_bad_offset = pos + kHeaderBytes;
    } else if (payload_bytes > remaining - kHeaderBytes) {
      break;  // payload past EOF: torn
    } else {
      const std::uint64_t record_end = pos + kHeaderBytes + payload_bytes;
      const std::uint32_t computed_crc = crc32c(record + 4, 4 + payload_bytes);
      const char* payload = record + kHeaderBytes;
      const std::uint64_t expected_index = result.offsets.size() + 1;
      const std::uint64_t index = get_u64(payload + 8);
      const auto type = static_cast<std::uint8_t>(payload[16]);
      if (computed_crc != stored_crc) {
        if (record_end == size) break;  // last record only partly reached the disk: torn
        problem = "checksum mismatch (expected " + hex32(stored_crc) + ", found " + hex32(computed_crc) + ")";
      } else if (index != expected_index) {
        problem = "index " + std::to_string(index) + " where " + std::to_string(expected_index) + " was expected";
      } else if (!valid_type(type)) {
        problem = "unknown entry type " + std::to_string(type);
      } else {
        raft::Entry entry;
        entry.term = get_u64(payload);
        entry.index = index;
        entry.type = static_cast<raft::EntryType>(type);
        entry.data.assign(payload + kPayloadPrefixBytes, payload_bytes - kPayloadPrefixBytes);
        result.entries.push_back(std::move(entry));
        result.offsets.push_back(pos);
        pos = record_end;
        continue;
      }
      after_bad_offset = record_end;
    }

    // A file extended by a write whose data never landed reads back as zeros:
    // that is still a torn tail, not lost entries.
    const std::string_view after = file.substr(after_bad_offset);
    if (std::all_of(after.begin(), after.end(), [](char c) { return c == '\0'; })) break;
    throw StorageError("corrupt log record in " + path + " at offset " + std::to_string(pos) + ": " +
                       problem + "; refusing to start");
  }
  result.valid_end_offset = pos;
  return result;
}

}  // namespace

LogStore::LogStore(const std::string& dir) : path_((std::filesystem::path(dir) / "log").string()) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw StorageError("cannot create directory " + dir + ": " + ec.message());

  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  const bool created = fd >= 0;
  if (!created && errno == EEXIST) fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw_io("cannot open", path_, errno);
  FdGuard guard(fd);
  if (created) fsync_directory(dir);

  const std::string file = read_whole_file(fd, path_);
  ScanResult scan = scan_records(path_, file);
  if (scan.valid_end_offset < file.size()) {
    if (::ftruncate(fd, static_cast<off_t>(scan.valid_end_offset)) != 0) {
      throw_io("cannot truncate torn tail of", path_, errno);
    }
    // The cut must be durable before new records are written over the old tail.
    if (::fsync(fd) != 0) throw_io("cannot fsync", path_, errno);
    truncated_tail_bytes_ = file.size() - scan.valid_end_offset;
  }
  end_offset_ = scan.valid_end_offset;
  offsets_ = std::move(scan.offsets);
  recovered_ = std::move(scan.entries);
  fd_ = guard.release();
}

LogStore::~LogStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<raft::Entry> LogStore::take_recovered() { return std::exchange(recovered_, {}); }

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
  std::size_t batch_bytes = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const raft::Entry& entry = entries[i];
    if (entry.index != first + i) {
      throw std::invalid_argument("append to " + path_ + ": index " + std::to_string(entry.index) +
                                  " where " + std::to_string(first + i) + " was expected");
    }
    if (entry.data.size() > kMaxDataBytes) {
      throw std::invalid_argument("append to " + path_ + ": entry " + std::to_string(entry.index) + " has " +
                                  std::to_string(entry.data.size()) + " data bytes, limit " +
                                  std::to_string(kMaxDataBytes));
    }
    if (!valid_type(static_cast<std::uint8_t>(entry.type))) {
      throw std::invalid_argument("append to " + path_ + ": entry " + std::to_string(entry.index) +
                                  " has an unknown type");
    }
    batch_bytes += kHeaderBytes + kPayloadPrefixBytes + entry.data.size();
  }

  if (first <= last_index()) {
    const std::uint64_t cut_offset = offsets_[first - 1];
    if (::ftruncate(fd_, static_cast<off_t>(cut_offset)) != 0) throw_io("cannot truncate", path_, errno);
    // Sync the cut now rather than in sync(): if the new records reached the
    // disk but the cut did not, recovery would find the new records followed by
    // the old suffix, all with valid checksums and contiguous indexes, and
    // splice two leaders' logs together.
    offsets_.resize(first - 1);
    end_offset_ = cut_offset;
    if (::fsync(fd_) != 0) {
      const int err = errno;
      ::close(std::exchange(fd_, -1));  // after a failed fsync the page cache state is unknown
      throw_io("cannot fsync", path_, err);
    }
  }

  buffer_.resize(batch_bytes);
  char* out = buffer_.data();
  for (const raft::Entry& entry : entries) {
    const auto payload_bytes = static_cast<std::uint32_t>(kPayloadPrefixBytes + entry.data.size());
    put_u32(out + 4, payload_bytes);
    char* payload = out + kHeaderBytes;
    put_u64(payload, entry.term);
    put_u64(payload + 8, entry.index);
    payload[16] = static_cast<char>(entry.type);
    if (!entry.data.empty()) std::memcpy(payload + kPayloadPrefixBytes, entry.data.data(), entry.data.size());
    put_u32(out, crc32c(out + 4, 4 + payload_bytes));
    out += kHeaderBytes + payload_bytes;
  }

  if (const int err = pwrite_all(fd_, buffer_.data(), buffer_.size(), end_offset_); err != 0) {
    // Drop any partial batch: a later, shorter append would otherwise leave
    // its stale bytes behind the new end of the log.
    if (::ftruncate(fd_, static_cast<off_t>(end_offset_)) != 0) ::close(std::exchange(fd_, -1));
    dirty_ = true;
    throw_io("cannot write", path_, err);
  }

  offsets_.reserve(offsets_.size() + entries.size());
  std::uint64_t offset = end_offset_;
  for (const raft::Entry& entry : entries) {
    offsets_.push_back(offset);
    offset += kHeaderBytes + kPayloadPrefixBytes + entry.data.size();
  }
  end_offset_ = offset;
  dirty_ = true;
  if (buffer_.capacity() > kMaxRetainedBufferBytes) std::string().swap(buffer_);
}

void LogStore::sync() {
  if (fd_ < 0) throw StorageError("log " + path_ + " is unusable after an earlier I/O error");
  if (!dirty_) return;
  // fdatasync also persists the file size, which is all appends change; the
  // rarer truncations were already made durable with fsync in append().
  if (::fdatasync(fd_) != 0) {
    const int err = errno;
    // Linux may drop the dirty pages after reporting the error, so a retry
    // could "succeed" without the data: refuse further use instead.
    ::close(std::exchange(fd_, -1));
    throw_io("cannot fdatasync", path_, err);
  }
  dirty_ = false;
}

}  // namespace storage
