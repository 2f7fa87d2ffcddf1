// Small pieces shared by the log, the snapshot, the meta file, the identity
// and the space reserve: an owning file descriptor, little-endian integers,
// whole-file and atomic writes (also streamed), directory listing and
// durable deletion, and errors that name the file (and say when the disk is
// full).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/errors.h"

namespace storage::io {

// ENOSPC, and EDQUOT (a quota is a full disk for this process too).
bool is_disk_full_errno(int err);

// Throws DiskFull when err says the disk is full, StorageError otherwise:
// "<what> <path>: <strerror>", plus a plain "the disk is full" for DiskFull.
[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err);

// Closes the descriptor unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  // Closes now so the caller sees the error (some file systems report
  // write-back failures only at close).
  int close() { return ::close(release()); }

 private:
  int fd_;
};

// Returns 0 or the errno of the first failure. Retries EINTR and short writes.
int pwrite_all(int fd, const char* data, std::size_t n, std::uint64_t offset);
// Reads the whole file behind fd (its size at the time of the call).
std::string read_all(int fd, const std::string& path);
// The contents of path, or nullopt when it does not exist. Never modifies it.
std::optional<std::string> read_file_if_exists(const std::string& path);
bool file_exists(const std::string& path);
// A newly created or renamed file is only reachable after a crash once its
// directory entry is durable too.
void fsync_directory(const std::string& dir);
// Replaces dir/name with bytes so that a crash leaves either the old or the
// new file, never a mix: write dir/name.tmp, fsync, rename, fsync dir.
void write_file_atomically(const std::string& dir, const std::string& name, std::string_view bytes);

// write_file_atomically for contents too large to assemble in memory first
// (a snapshot): dir/name.tmp is created (a leftover of a crash is
// truncated), appended to piece by piece, and only commit() makes it
// dir/name. Destroyed without commit() (an error, an exception), it deletes
// the temporary file, so nothing half-written outlives the attempt.
class AtomicFileWriter {
 public:
  AtomicFileWriter(const std::string& dir, const std::string& name);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Appends with write(), not pwrite(): the temporary file need not be
  // seekable (a test points it at /dev/full to get a real ENOSPC).
  void append(std::string_view bytes);
  std::uint64_t bytes_written() const { return written_bytes_; }
  const std::string& temp_path() const { return tmp_path_; }
  // fsync, close, rename over dir/name, fsync dir: durable on return.
  void commit();

 private:
  std::string dir_;
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  std::uint64_t written_bytes_ = 0;
  bool committed_ = false;
};

// The names in dir (not "." or ".."), sorted; throws StorageError naming dir.
std::vector<std::string> list_directory(const std::string& dir);
bool is_directory(const std::string& path);
// unlink(path); false if it did not exist. Not durable until the directory
// is fsynced.
bool remove_file(const std::string& path);
// Removes path and everything under it (for leftovers this program made);
// false if it did not exist.
bool remove_tree(const std::string& path);
void rename_file(const std::string& from, const std::string& to);
// Size of the file at path, or nullopt when it does not exist.
std::optional<std::uint64_t> file_size(const std::string& path);
void create_directories(const std::string& dir);
std::string join(const std::string& dir, const std::string& name);
bool all_zero(std::string_view bytes);

inline void put_u32(char* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}
inline void put_u64(char* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}
inline void append_u32(std::string& out, std::uint32_t v) {
  char bytes[4];
  put_u32(bytes, v);
  out.append(bytes, 4);
}
inline void append_u64(std::string& out, std::uint64_t v) {
  char bytes[8];
  put_u64(bytes, v);
  out.append(bytes, 8);
}
inline std::uint32_t get_u32(const char* in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}
inline std::uint64_t get_u64(const char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

inline std::string hex32(std::uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

}  // namespace storage::io
