// The byte format of a state machine snapshot (StateMachine::serialize() and
// restore()), and the little-endian writer and bounds-checked reader that
// produce and parse it. Internal to src/kv; the format is documented here and
// nowhere else depends on its layout.
//
//   snapshot = header dictionary sessions             (nothing after it)
//   header   = "RKVSTATE" (8 bytes) | version u32 = 1
//   dictionary = key_count u64 | key_count x (key str | value str),
//                keys in strictly ascending byte order
//   sessions = session_count u64 | session_count x session,
//              in strictly ascending last_index (the eviction order)
//   session  = client_id str | last_seq u64 | last_index u64 | result
//   result   = flags u8 (bit 0: ok, bit 1: has a value; others 0)
//              | [value str, only with bit 1] | error str
//   str      = length u32 | that many bytes
//
// Every integer is little-endian. Both orders make the encoding canonical:
// equal states serialize to equal bytes on every replica, and restore()
// accepts exactly what serialize() can produce, so restoring and serializing
// again gives back the input byte for byte. There is no checksum: the bytes
// are protected where they travel (the peer MAC on every chunk) and where
// they rest (the storage layer's own checksums).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kv::snapshot_format {

inline constexpr std::string_view kMagic = "RKVSTATE";
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 8 + 4;

// The fewest bytes one record can take, so a count can be checked against
// the bytes that remain before anything is allocated for it: a forged count
// of 2^60 keys is refused, not reserved.
inline constexpr std::size_t kMinKeyBytes = 4 + 4;                   // two empty strings
inline constexpr std::size_t kMinSessionBytes = 4 + 8 + 8 + 1 + 4;  // empty id and error, no value

inline constexpr std::uint8_t kResultOk = 1;
inline constexpr std::uint8_t kResultHasValue = 2;

// Appends to a string the caller has reserved (serialize() computes the
// exact size first, so a large state is written without reallocation).
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  // Throws std::length_error for more than 2^32 - 1 bytes (no key, value or
  // id comes near: the wire limits them to 16 KiB).
  void str(std::string_view s);
  void raw(std::string_view s) { out_.append(s); }

 private:
  std::string& out_;
};

// Reads from a byte buffer; every read checks the bounds first. A problem
// throws std::invalid_argument("state snapshot, byte offset N: WHAT"), N
// being where the offending field starts.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }

  std::uint8_t u8(const char* what);
  std::uint32_t u32(const char* what);
  std::uint64_t u64(const char* what);
  // A length-prefixed string, as a view into the buffer.
  std::string_view str(const std::string& what);
  std::string_view raw(std::size_t n, const char* what);
  // Reads a count of records of at least min_record_bytes each and refuses
  // one that the remaining bytes cannot hold.
  std::uint64_t count(const char* what, std::size_t min_record_bytes);

  [[noreturn]] void fail(std::size_t at, const std::string& what) const;

 private:
  void need(std::size_t n, const std::string& what) const;

  std::string_view bytes_;
  std::size_t pos_ = 0;
};

}  // namespace kv::snapshot_format
