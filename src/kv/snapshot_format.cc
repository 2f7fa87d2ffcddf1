#include "kv/snapshot_format.h"

#include <limits>
#include <stdexcept>

namespace kv::snapshot_format {

// Byte by byte rather than memcpy of the native value, so the format is
// little-endian on every host; compilers turn these loops into single moves.
void Writer::u32(std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out_.append(b, sizeof b);
}

void Writer::u64(std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out_.append(b, sizeof b);
}

void Writer::str(std::string_view s) {
  if (s.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("state snapshot: a string of " + std::to_string(s.size()) +
                            " bytes does not fit a u32 length");
  }
  u32(static_cast<std::uint32_t>(s.size()));
  out_.append(s);
}

void Reader::fail(std::size_t at, const std::string& what) const {
  throw std::invalid_argument("state snapshot, byte offset " + std::to_string(at) + ": " + what);
}

void Reader::need(std::size_t n, const std::string& what) const {
  if (n > remaining()) {
    fail(pos_, what + ": needs " + std::to_string(n) + " bytes, " + std::to_string(remaining()) +
                   " left (truncated)");
  }
}

std::uint8_t Reader::u8(const char* what) {
  need(1, what);
  return static_cast<std::uint8_t>(bytes_[pos_++]);
}

std::uint32_t Reader::u32(const char* what) {
  need(4, what);
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(bytes_[pos_ + i])} << (8 * i);
  pos_ += 4;
  return v;
}

std::uint64_t Reader::u64(const char* what) {
  need(8, what);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(bytes_[pos_ + i])} << (8 * i);
  pos_ += 8;
  return v;
}

std::string_view Reader::raw(std::size_t n, const char* what) {
  need(n, what);
  const std::string_view out = bytes_.substr(pos_, n);
  pos_ += n;
  return out;
}

std::string_view Reader::str(const std::string& what) {
  const std::size_t at = pos_;
  need(4, what + " length");
  const std::uint32_t n = u32("length");
  if (n > remaining()) {
    fail(at, what + ": length " + std::to_string(n) + " runs past the end (" + std::to_string(remaining()) +
                 " bytes left)");
  }
  const std::string_view out = bytes_.substr(pos_, n);
  pos_ += n;
  return out;
}

std::uint64_t Reader::count(const char* what, std::size_t min_record_bytes) {
  const std::size_t at = pos_;
  const std::uint64_t n = u64(what);
  if (n > remaining() / min_record_bytes) {
    fail(at, std::string(what) + " " + std::to_string(n) + " is implausible: " + std::to_string(remaining()) +
                 " bytes left hold at most " + std::to_string(remaining() / min_record_bytes) + " records of " +
                 std::to_string(min_record_bytes) + "+ bytes");
  }
  return n;
}

}  // namespace kv::snapshot_format
