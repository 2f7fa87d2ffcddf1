// Small pieces shared by the log and the meta file: an owning file
// descriptor, little-endian integers, and errors that name the file.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "storage/log_store.h"

namespace storage::io {

[[noreturn]] inline void throw_io(const std::string& what, const std::string& path, int err) {
  throw StorageError(what + " " + path + ": " + std::strerror(err));
}

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
