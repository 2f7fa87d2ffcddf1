#include "storage/snapshot_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string_view>

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
  // Never read: a rename is what makes a snapshot, and this one never got it.
  const std::string tmp_path = path_ + ".tmp";
  if (const std::optional<std::uint64_t> bytes = file_size(tmp_path)) {
    remove_file(tmp_path);
    fsync_directory(dir_);
    removed_temp_ = true;
    removed_temp_bytes_ = *bytes;
  }
}

bool SnapshotStore::exists() const { return file_exists(path_); }

bool SnapshotStore::exists(const std::string& dir) { return file_exists(join(dir, std::string(kName))); }

std::optional<raft::Snapshot> SnapshotStore::load() const {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_io("cannot open", path_, errno);
  }
  FdGuard guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_io("cannot stat", path_, errno);
  const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
  const auto corrupt = [&](std::uint64_t offset, const std::string& problem) {
    return StorageError("corrupt snapshot " + path_ + " at offset " + std::to_string(offset) + ": " + problem +
                        "; refusing to start");
  };
  const auto read_at = [&](char* out, std::size_t n, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        throw_io("cannot read", path_, errno);
      }
      if (got == 0) throw corrupt(offset + done, "the file ended early (it shrank while being read)");
      done += static_cast<std::size_t>(got);
    }
  };

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
  raft::Snapshot snapshot;
  snapshot.meta.index = get_u64(header + 8);
  snapshot.meta.term = get_u64(header + 16);
  const std::uint64_t data_bytes = get_u64(header + 24);
  const std::uint32_t stored_data_crc = get_u32(header + kDataCrcOffset);
  if (snapshot.meta.index == 0 || snapshot.meta.index > raft::kMaxNumber || snapshot.meta.term > raft::kMaxNumber) {
    throw corrupt(8, "index " + std::to_string(snapshot.meta.index) + " or term " +
                         std::to_string(snapshot.meta.term) + " outside [1, 2^53 - 1]");
  }
  // Checked before allocating: the size comes from the checksummed header,
  // so a mismatch is a file cut or extended by someone else.
  const std::uint64_t present_bytes = file_bytes - kHeaderBytes;
  if (data_bytes != present_bytes) {
    const bool truncated = data_bytes > present_bytes;
    throw corrupt(truncated ? file_bytes : kHeaderBytes + data_bytes,
                  "the file is " + std::to_string(file_bytes) + " bytes, its header says " +
                      std::to_string(kHeaderBytes) + " + " + std::to_string(data_bytes) + ": it was " +
                      (truncated ? "truncated" : "extended"));
  }

  // Read straight into the string the snapshot will own: one copy in memory.
  auto data = std::make_shared<std::string>();
  data->resize(static_cast<std::size_t>(data_bytes));
  std::uint32_t data_crc = 0;
  for (std::uint64_t pos = 0; pos < data_bytes;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kReadPieceBytes, data_bytes - pos));
    read_at(data->data() + pos, n, kHeaderBytes + pos);
    data_crc = crc32c(data->data() + pos, n, data_crc);
    pos += n;
  }
  if (data_crc != stored_data_crc) {
    throw corrupt(kHeaderBytes, "checksum mismatch in the " + std::to_string(data_bytes) +
                                    " data bytes from offset " + std::to_string(kHeaderBytes) + " (expected " +
                                    hex32(stored_data_crc) + ", found " + hex32(data_crc) + ")");
  }
  snapshot.data = std::move(data);
  return snapshot;
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

}  // namespace storage
