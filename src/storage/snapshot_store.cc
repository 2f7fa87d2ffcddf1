#include "storage/snapshot_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "storage/crc32c.h"
#include "storage/file_io.h"

namespace storage {
namespace {

using namespace io;

constexpr std::string_view kName = "snapshot";
constexpr std::string_view kMagic = "RKVSNAP1";
constexpr std::size_t kMagicNameBytes = 7;  // "RKVSNAP": tells another version apart from junk
constexpr std::uint64_t kHeaderBytes = SnapshotStore::kHeaderBytes;
constexpr std::size_t kDataCrcOffset = 32;
constexpr std::size_t kHeaderCrcOffset = 36;
// Reads and checksums in pieces of this size: bounded system calls, and the
// checksum runs over data still in the cache.
constexpr std::size_t kReadPieceBytes = std::size_t{4} << 20;

std::string encode_header(const raft::SnapshotMeta& meta, std::uint64_t data_bytes, std::uint32_t data_crc) {
  std::string bytes(kMagic);
  append_u64(bytes, meta.index);
  append_u64(bytes, meta.term);
  append_u64(bytes, data_bytes);
  append_u32(bytes, data_crc);
  append_u32(bytes, crc32c(bytes.data(), bytes.size()));
  return bytes;
}

}  // namespace

SnapshotStore::SnapshotStore(const std::string& dir) : dir_(dir), path_(join(dir, std::string(kName))) {
  create_directories(dir_);
  // Never read: a rename is what makes a snapshot, and these never got it.
  // snapshot.bg.tmp is a background writer's (killed with its node, or
  // stopped before it renamed).
  bool removed = false;
  for (const std::string& tmp_path : {path_ + ".tmp", background_temp_path()}) {
    if (const std::optional<std::uint64_t> bytes = file_size(tmp_path)) {
      remove_file(tmp_path);
      removed = true;
      removed_temp_files_.push_back(tmp_path);
      removed_temp_bytes_ += *bytes;
    }
  }
  if (removed) fsync_directory(dir_);
}

bool SnapshotStore::exists() const { return file_exists(path_); }

bool SnapshotStore::exists(const std::string& dir) { return file_exists(join(dir, std::string(kName))); }

std::string SnapshotStore::background_temp_path() const { return join(dir_, std::string(kBackgroundTempName)); }

std::optional<raft::Snapshot> SnapshotStore::load() const {
  std::optional<SnapshotReader> reader = SnapshotReader::open(path_);
  if (!reader) return std::nullopt;
  while (!reader->done()) reader->read_some(kReadPieceBytes);
  return reader->finish();
}

void SnapshotStore::save(const raft::Snapshot& snapshot) {
  if (snapshot.meta.index == 0 || snapshot.data == nullptr) {
    throw std::invalid_argument("snapshot for " + path_ + " needs an index above 0 and data");
  }
  const std::string& data = *snapshot.data;
  const std::string header = encode_header(snapshot.meta, data.size(), crc32c(data.data(), data.size()));
  // The writer removes snapshot.tmp if anything below throws.
  AtomicFileWriter writer(dir_, std::string(kName));
  writer.append(header);
  writer.append(data);
  writer.commit();
}

void SnapshotStore::save_background(const raft::SnapshotMeta& meta, std::string_view data) const {
  if (meta.index == 0 || data.empty()) {
    throw std::invalid_argument("snapshot for " + path_ + " needs an index above 0 and data");
  }
  // AtomicFileWriter's protocol (file_io.h) with a temporary name of our
  // own: it always names its temporary file after the target, and
  // snapshot.tmp belongs to save().
  const std::string tmp_path = background_temp_path();
  const std::string header = encode_header(meta, data.size(), crc32c(data.data(), data.size()));
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io("cannot create", tmp_path, errno);
  bool renamed = false;
  FdGuard guard(fd);
  // Removes the temporary file on every way out but success.
  struct Cleanup {
    const std::string& path;
    const bool& renamed;
    ~Cleanup() {
      if (!renamed) ::unlink(path.c_str());
    }
  } cleanup{tmp_path, renamed};
  if (const int err = pwrite_all(fd, header.data(), header.size(), 0)) throw_io("cannot write", tmp_path, err);
  if (const int err = pwrite_all(fd, data.data(), data.size(), header.size())) throw_io("cannot write", tmp_path, err);
  // Durable before the rename can expose it.
  if (::fsync(fd) != 0) throw_io("cannot fsync", tmp_path, errno);
  if (guard.close() != 0) throw_io("cannot close", tmp_path, errno);
  if (::rename(tmp_path.c_str(), path_.c_str()) != 0) throw_io("cannot rename " + tmp_path + " to", path_, errno);
  renamed = true;
  fsync_directory(dir_);
}

bool SnapshotStore::remove_background_temp() const { return ::unlink(background_temp_path().c_str()) == 0; }

// ---- SnapshotReader ----

std::optional<SnapshotReader> SnapshotReader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_io("cannot open", path, errno);
  }
  SnapshotReader reader(path, fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_io("cannot stat", path, errno);
  reader.read_header(static_cast<std::uint64_t>(st.st_size));
  return reader;
}

SnapshotReader::SnapshotReader(SnapshotReader&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      meta_(other.meta_),
      data_bytes_(other.data_bytes_),
      stored_data_crc_(other.stored_data_crc_),
      data_crc_(other.data_crc_),
      data_(std::move(other.data_)) {}

SnapshotReader::~SnapshotReader() {
  if (fd_ >= 0) ::close(fd_);
}

StorageError SnapshotReader::corrupt(std::uint64_t offset, const std::string& problem) const {
  return StorageError("corrupt snapshot " + path_ + " at offset " + std::to_string(offset) + ": " + problem +
                      "; refusing to start");
}

void SnapshotReader::read_at(char* out, std::size_t n, std::uint64_t offset) const {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot read", path_, errno);
    }
    if (got == 0) throw corrupt(offset + done, "the file ended early (it shrank while being read)");
    done += static_cast<std::size_t>(got);
  }
}

void SnapshotReader::read_header(std::uint64_t file_bytes) {
  char header[kHeaderBytes] = {};
  const std::size_t header_present = static_cast<std::size_t>(std::min<std::uint64_t>(file_bytes, kHeaderBytes));
  read_at(header, header_present, 0);
  const std::string_view head(header, header_present);
  if (head.substr(0, kMagicNameBytes) != kMagic.substr(0, kMagicNameBytes)) {
    throw corrupt(0, "it does not start with \"" + std::string(kMagic) + "\" (not a snapshot of this program)");
  }
  if (head.substr(0, kMagic.size()) != kMagic) {
    throw corrupt(0, "snapshot format \"" + std::string(head.substr(0, kMagic.size())) + "\", this program reads \"" +
                         std::string(kMagic) + "\"");
  }
  if (file_bytes < kHeaderBytes) {
    throw corrupt(file_bytes, "the file ends inside the " + std::to_string(kHeaderBytes) + "-byte header (" +
                                  std::to_string(file_bytes) + " bytes): it was truncated");
  }
  const std::uint32_t stored_header_crc = get_u32(header + kHeaderCrcOffset);
  const std::uint32_t computed_header_crc = crc32c(header, kHeaderCrcOffset);
  if (stored_header_crc != computed_header_crc) {
    throw corrupt(0, "header checksum mismatch (expected " + hex32(stored_header_crc) + ", found " +
                         hex32(computed_header_crc) + ")");
  }
  meta_.index = get_u64(header + 8);
  meta_.term = get_u64(header + 16);
  data_bytes_ = get_u64(header + 24);
  stored_data_crc_ = get_u32(header + kDataCrcOffset);
  if (meta_.index == 0 || meta_.index > raft::kMaxNumber || meta_.term > raft::kMaxNumber) {
    throw corrupt(8, "index " + std::to_string(meta_.index) + " or term " + std::to_string(meta_.term) +
                         " outside [1, 2^53 - 1]");
  }
  // Checked before allocating: the size comes from the checksummed header,
  // so a mismatch is a file cut or extended by someone else.
  const std::uint64_t present_bytes = file_bytes - kHeaderBytes;
  if (data_bytes_ != present_bytes) {
    const bool truncated = data_bytes_ > present_bytes;
    throw corrupt(truncated ? file_bytes : kHeaderBytes + data_bytes_,
                  "the file is " + std::to_string(file_bytes) + " bytes, its header says " +
                      std::to_string(kHeaderBytes) + " + " + std::to_string(data_bytes_) + ": it was " +
                      (truncated ? "truncated" : "extended"));
  }
  // Reserved, not filled: the pages are touched piece by piece as the data
  // arrives (zero-filling 100 MB at once is tens of milliseconds of page
  // faults), and the string the snapshot will own is the only copy.
  data_ = std::make_shared<std::string>();
  data_->reserve(static_cast<std::size_t>(data_bytes_));
}

void SnapshotReader::read_some(std::size_t max_bytes) {
  if (!data_) throw std::logic_error("snapshot reader of " + path_ + " used after finish()");
  const std::uint64_t pos = data_->size();
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(std::max<std::size_t>(max_bytes, 1),
                                                                          data_bytes_ - pos));
  if (n == 0) return;
  data_->append(n, '\0');
  read_at(data_->data() + pos, n, kHeaderBytes + pos);
  // Checksummed while the piece is still in the cache.
  data_crc_ = crc32c(data_->data() + pos, n, data_crc_);
}

raft::Snapshot SnapshotReader::finish() {
  if (!data_ || !done()) throw std::logic_error("snapshot reader of " + path_ + " finished before the end");
  if (data_crc_ != stored_data_crc_) {
    throw corrupt(kHeaderBytes, "checksum mismatch in the " + std::to_string(data_bytes_) +
                                    " data bytes from offset " + std::to_string(kHeaderBytes) + " (expected " +
                                    hex32(stored_data_crc_) + ", found " + hex32(data_crc_) + ")");
  }
  raft::Snapshot snapshot;
  snapshot.meta = meta_;
  snapshot.data = std::move(data_);
  return snapshot;
}

}  // namespace storage
