// meta file = [term u64 LE][voted_for length u32 LE][voted_for bytes][crc32c u32 LE]
// The checksum covers every byte before it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "storage/crc32c.h"
#include "storage/file_io.h"
#include "storage/log_store.h"

namespace storage {
namespace {

using namespace io;

constexpr std::size_t kTermBytes = 8;
constexpr std::size_t kLengthBytes = 4;
constexpr std::size_t kCrcBytes = 4;
constexpr std::size_t kMinFileBytes = kTermBytes + kLengthBytes + kCrcBytes;

std::string meta_path(const std::string& dir) { return (std::filesystem::path(dir) / "meta").string(); }

}  // namespace

MetaStore::MetaStore(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw StorageError("cannot create directory " + dir_ + ": " + ec.message());
}

raft::HardState MetaStore::load() const {
  const std::string path = meta_path(dir_);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};  // never saved: term 0, no vote
    throw_io("cannot open", path, errno);
  }
  FdGuard guard(fd);

  std::string bytes;
  char chunk[4096];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot read", path, errno);
    }
    if (got == 0) break;
    bytes.append(chunk, static_cast<std::size_t>(got));
  }

  // The file is only ever replaced by rename, so any damage here is real
  // corruption, never a torn write: refuse rather than forget a vote.
  const auto corrupt = [&](const std::string& problem) {
    return StorageError("corrupt meta file " + path + ": " + problem + "; refusing to start");
  };
  if (bytes.size() < kMinFileBytes) {
    throw corrupt("only " + std::to_string(bytes.size()) + " bytes, need at least " + std::to_string(kMinFileBytes));
  }
  const std::uint32_t vote_bytes = get_u32(bytes.data() + kTermBytes);
  const std::size_t expected_size = kMinFileBytes + static_cast<std::size_t>(vote_bytes);
  if (bytes.size() != expected_size) {
    throw corrupt("size " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(expected_size));
  }
  const std::size_t covered_bytes = bytes.size() - kCrcBytes;
  const std::uint32_t stored_crc = get_u32(bytes.data() + covered_bytes);
  const std::uint32_t computed_crc = crc32c(bytes.data(), covered_bytes);
  if (stored_crc != computed_crc) {
    throw corrupt("checksum mismatch (expected " + hex32(stored_crc) + ", found " + hex32(computed_crc) + ")");
  }

  raft::HardState state;
  state.current_term = get_u64(bytes.data());
  state.voted_for.assign(bytes.data() + kTermBytes + kLengthBytes, vote_bytes);
  return state;
}

void MetaStore::save(const raft::HardState& state) {
  const std::string path = meta_path(dir_);
  const std::string tmp_path = path + ".tmp";

  std::string bytes;
  bytes.reserve(kMinFileBytes + state.voted_for.size());
  append_u64(bytes, state.current_term);
  append_u32(bytes, static_cast<std::uint32_t>(state.voted_for.size()));
  bytes += state.voted_for;
  append_u32(bytes, crc32c(bytes.data(), bytes.size()));

  {
    // O_TRUNC: a leftover temp file from a crash mid-save is simply overwritten.
    const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_io("cannot create", tmp_path, errno);
    FdGuard guard(fd);
    const char* data = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      const ssize_t written = ::write(fd, data, left);
      if (written < 0) {
        if (errno == EINTR) continue;
        throw_io("cannot write", tmp_path, errno);
      }
      if (written == 0) throw_io("cannot write", tmp_path, EIO);
      data += written;
      left -= static_cast<std::size_t>(written);
    }
    // The contents must be durable before the rename can expose them.
    if (::fsync(fd) != 0) throw_io("cannot fsync", tmp_path, errno);
    if (guard.close() != 0) throw_io("cannot close", tmp_path, errno);
  }

  if (::rename(tmp_path.c_str(), path.c_str()) != 0) throw_io("cannot rename " + tmp_path + " to", path, errno);

  // The rename itself lives in the directory: without this a crash could bring
  // back the old term and vote after we acted on the new ones.
  const int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) throw_io("cannot open directory", dir_, errno);
  FdGuard dir_guard(dir_fd);
  if (::fsync(dir_fd) != 0) throw_io("cannot fsync directory", dir_, errno);
}

}  // namespace storage
