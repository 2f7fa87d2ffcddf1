#include "storage/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace storage::io {

bool is_disk_full_errno(int err) {
  return err == ENOSPC
#ifdef EDQUOT
         || err == EDQUOT
#endif
      ;
}

void throw_io(const std::string& what, const std::string& path, int err) {
  const std::string message = what + " " + path + ": " + std::strerror(err);
  if (is_disk_full_errno(err)) {
    throw DiskFull(message + " (the disk is full: free some space, then restart)");
  }
  throw StorageError(message);
}

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

std::string read_all(int fd, const std::string& path) {
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
    if (got == 0) break;  // shrank under us; look at what was there
    done += static_cast<std::size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

std::optional<std::string> read_file_if_exists(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_io("cannot open", path, errno);
  }
  FdGuard guard(fd);
  return read_all(fd, path);
}

bool file_exists(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  throw_io("cannot stat", path, errno);
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_io("cannot open directory", dir, errno);
  FdGuard guard(fd);
  if (::fsync(fd) != 0) throw_io("cannot fsync directory", dir, errno);
}

void write_file_atomically(const std::string& dir, const std::string& name, std::string_view bytes) {
  const std::string path = join(dir, name);
  const std::string tmp_path = path + ".tmp";
  {
    // O_TRUNC: a leftover temp file from a crash mid-write is simply overwritten.
    const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_io("cannot create", tmp_path, errno);
    FdGuard guard(fd);
    // write(), not pwrite(): the temp file need not be seekable (a test
    // points it at /dev/full to get a real ENOSPC).
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
  // The rename itself lives in the directory: without this a crash could
  // bring back the old file after we acted on the new one.
  fsync_directory(dir);
}

void create_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw StorageError("cannot create directory " + dir + ": " + ec.message());
}

std::string join(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

bool all_zero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == '\0'; });
}

}  // namespace storage::io
