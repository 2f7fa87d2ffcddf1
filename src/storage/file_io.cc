#include "storage/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "storage/crash_points.h"

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
  crash_points::step();
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
  AtomicFileWriter writer(dir, name);
  writer.append(bytes);
  writer.commit();
}

AtomicFileWriter::AtomicFileWriter(const std::string& dir, const std::string& name)
    : dir_(dir), path_(join(dir, name)), tmp_path_(path_ + ".tmp") {
  crash_points::step();
  // O_TRUNC: a leftover temp file from a crash mid-write is simply overwritten.
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_io("cannot create", tmp_path_, errno);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  if (crash_points::crashed()) return;  // a real crash leaves it behind
  // Best effort: a leftover is also removed, unread, at the next start.
  ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::append(std::string_view bytes) {
  crash_points::step();
  if (fd_ < 0) throw StorageError("cannot write " + tmp_path_ + ": an earlier write failed");
  const char* data = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    // Bounded pieces: Linux moves at most ~2 GiB per call anyway.
    const ssize_t written = ::write(fd_, data, std::min<std::size_t>(left, std::size_t{1} << 30));
    if (written < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(std::exchange(fd_, -1));
      throw_io("cannot write", tmp_path_, err);
    }
    if (written == 0) {
      ::close(std::exchange(fd_, -1));
      throw_io("cannot write", tmp_path_, EIO);
    }
    data += written;
    left -= static_cast<std::size_t>(written);
    written_bytes_ += static_cast<std::uint64_t>(written);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw StorageError("cannot commit " + tmp_path_ + ": an earlier write failed");
  // The contents must be durable before the rename can expose them.
  if (::fsync(fd_) != 0) {
    const int err = errno;
    ::close(std::exchange(fd_, -1));
    throw_io("cannot fsync", tmp_path_, err);
  }
  // Closed here so the caller sees the error (some file systems report
  // write-back failures only at close).
  if (::close(std::exchange(fd_, -1)) != 0) throw_io("cannot close", tmp_path_, errno);
  crash_points::step();
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) throw_io("cannot rename " + tmp_path_ + " to", path_, errno);
  committed_ = true;
  // The rename itself lives in the directory: without this a crash could
  // bring back the old file after we acted on the new one.
  fsync_directory(dir_);
}

std::vector<std::string> list_directory(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) throw StorageError("cannot list directory " + dir + ": " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return S_ISDIR(st.st_mode);
  if (errno == ENOENT) return false;
  throw_io("cannot stat", path, errno);
}

bool remove_file(const std::string& path) {
  crash_points::step();
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_io("cannot delete", path, errno);
}

bool remove_tree(const std::string& path) {
  crash_points::step();
  std::error_code ec;
  const std::uintmax_t removed = std::filesystem::remove_all(path, ec);
  if (ec) throw StorageError("cannot delete " + path + ": " + ec.message());
  return removed > 0;
}

void rename_file(const std::string& from, const std::string& to) {
  crash_points::step();
  if (::rename(from.c_str(), to.c_str()) != 0) throw_io("cannot rename " + from + " to", to, errno);
}

std::optional<std::uint64_t> file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return static_cast<std::uint64_t>(st.st_size);
  if (errno == ENOENT) return std::nullopt;
  throw_io("cannot stat", path, errno);
}

void create_directories(const std::string& dir) {
  crash_points::step();
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
