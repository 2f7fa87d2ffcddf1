#include "storage/disk_space.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "storage/file_io.h"

namespace storage {

using namespace io;

std::uint64_t free_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) throw_io("cannot statvfs", dir, errno);
  // f_bavail, not f_bfree: blocks kept for root are not ours to use.
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

bool disk_nearly_full(const std::string& dir, std::uint64_t min_free_bytes) {
  return free_bytes(dir) < min_free_bytes;
}

bool ensure_reserve(const std::string& dir, std::uint64_t reserve_bytes, std::uint64_t min_free_bytes) {
  const std::string path = join(dir, "reserve");
  create_directories(dir);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) >= reserve_bytes) return false;
  if (free_bytes(dir) < reserve_bytes + min_free_bytes) return false;  // later, when there is room

  const std::string tmp_path = path + ".tmp";
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io("cannot create", tmp_path, errno);
  FdGuard guard(fd);
  // posix_fallocate really allocates the blocks (a sparse file would free
  // nothing when deleted) and returns the error instead of setting errno.
  int err = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes));
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (err == 0 && guard.close() != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp_path.c_str());
    if (is_disk_full_errno(err)) return false;  // someone else took the space meanwhile
    throw_io("cannot preallocate", tmp_path, err);
  }
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) throw_io("cannot rename " + tmp_path + " to", path, errno);
  fsync_directory(dir);
  return true;
}

std::uint64_t release_reserve(const std::string& dir) {
  const std::string path = join(dir, "reserve");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return 0;
    throw_io("cannot stat", path, errno);
  }
  if (::unlink(path.c_str()) != 0) throw_io("cannot delete", path, errno);
  ::unlink((path + ".tmp").c_str());  // a leftover of an interrupted ensure_reserve, if any
  fsync_directory(dir);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;  // what the file system gets back
}

}  // namespace storage
