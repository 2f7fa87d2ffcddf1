// Shared helpers for the storage tests (storage_test.cc, storage_recovery_test.cc,
// storage_identity_test.cc, segmented_log_test.cc, snapshot_store_test.cc,
// storage_restart_test.cc, storage_crash_test.cc): entries, independent
// encoders of the on-disk formats for hand-crafting files, and the fixture
// that gives each test its own data directory. Header-only; each test program
// includes it once.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "raft/types.h"
#include "storage/crc32c.h"
#include "storage/errors.h"
#include "storage/meta_store.h"
#include "storage/segmented_log.h"

namespace storage_testing {

namespace fs = std::filesystem;
using raft::Entry;
using raft::EntryType;
using storage::DiskFull;
using storage::LogOptions;
using storage::MetaStore;
using storage::SegmentedLog;
using storage::StorageError;

inline constexpr std::uint64_t kRecordOverheadBytes = 8 + 17;  // header + term/index/type
// "RKVLOG03", chunk u32, first index u64, pending cut u64, crc u32
inline constexpr std::uint64_t kFileHeaderBytes = 32;
inline constexpr std::uint64_t kOldFileHeaderBytes = 24;       // "RKVLOG02", chunk u32, pending cut u64, crc u32
// Small chunks so that tests cross many chunk boundaries, in segments so
// large that these logs stay in one (segmented_log_test.cc rolls them).
inline constexpr std::uint32_t kChunkBytes = 4096;
inline const LogOptions kSmallChunks{kChunkBytes, std::uint64_t{1} << 30};

// "00000000000000000042.seg"
inline std::string segment_name(raft::Index first_index) {
  std::string digits = std::to_string(first_index);
  return std::string(20 - digits.size(), '0') + digits + ".seg";
}

inline std::uint64_t record_bytes(const Entry& entry) { return kRecordOverheadBytes + entry.data.size(); }

inline Entry make_entry(raft::Term term, raft::Index index, std::string data = {},
                        EntryType type = EntryType::Command) {
  Entry entry;
  entry.term = term;
  entry.index = index;
  entry.type = type;
  entry.data = std::move(data);
  return entry;
}

// Entries first..last with data that varies in size and holds every byte value
// (including NUL), so framing bugs cannot hide behind text-only payloads.
inline std::vector<Entry> make_entries(raft::Index first, raft::Index last, raft::Term term = 1) {
  std::vector<Entry> entries;
  for (raft::Index i = first; i <= last; ++i) {
    std::string data;
    for (std::uint64_t j = 0; j < (i * 37) % 300; ++j) data.push_back(static_cast<char>((i + j) & 0xFF));
    entries.push_back(make_entry(term, i, std::move(data), i % 7 == 0 ? EntryType::Noop : EntryType::Command));
  }
  return entries;
}

inline std::uint64_t total_bytes(const std::vector<Entry>& entries) {
  std::uint64_t sum = 0;
  for (const Entry& entry : entries) sum += record_bytes(entry);
  return sum;
}

// Offset of entry `index` in a segment holding `entries` (from entries[0]).
inline std::uint64_t offset_of(const std::vector<Entry>& entries, raft::Index index) {
  std::uint64_t offset = kFileHeaderBytes;
  for (raft::Index i = entries.front().index; i < index; ++i) offset += record_bytes(entries[i - entries.front().index]);
  return offset;
}

// The size a log of `data_bytes` of records must have: header + whole chunks.
inline std::uint64_t grid_bytes(std::uint64_t data_bytes, std::uint64_t chunk_bytes = kChunkBytes) {
  return kFileHeaderBytes + (data_bytes + chunk_bytes - 1) / chunk_bytes * chunk_bytes;
}

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

inline void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Independent encoders of the documented formats, for crafting files.
inline std::string encode_record(const Entry& entry) {
  std::string body;
  put_le(body, 17 + entry.data.size(), 4);
  put_le(body, entry.term, 8);
  put_le(body, entry.index, 8);
  body.push_back(static_cast<char>(entry.type));
  body += entry.data;
  std::string record;
  put_le(record, storage::crc32c(body.data(), body.size()), 4);
  return record + body;
}

inline std::string encode_file_header(std::uint32_t chunk_bytes = kChunkBytes, std::uint64_t pending_cut = 0,
                                      raft::Index first_index = 1) {
  std::string header = "RKVLOG03";
  put_le(header, chunk_bytes, 4);
  put_le(header, first_index, 8);
  put_le(header, pending_cut, 8);
  put_le(header, storage::crc32c(header.data(), header.size()), 4);
  return header;
}

// The single-file log of the previous version: its header.
inline std::string encode_old_file_header(std::uint32_t chunk_bytes = kChunkBytes) {
  std::string header = "RKVLOG02";
  put_le(header, chunk_bytes, 4);
  put_le(header, 0, 8);
  put_le(header, storage::crc32c(header.data(), header.size()), 4);
  return header;
}

// A segment file as the log would write it: header, records, zeros up to the grid.
inline std::string craft_log(const std::string& records, std::uint64_t pending_cut = 0, raft::Index first_index = 1) {
  std::string file = encode_file_header(kChunkBytes, pending_cut, first_index) + records;
  file.resize(grid_bytes(records.size()), '\0');
  return file;
}

inline std::string encode_records(const std::vector<Entry>& entries) {
  std::string bytes;
  for (const Entry& entry : entries) bytes += encode_record(entry);
  return bytes;
}

inline void write_log(const std::string& dir, const std::vector<Entry>& entries) {
  SegmentedLog store(dir, kSmallChunks);
  store.append(entries);
  store.sync();
}

inline std::vector<Entry> reopen_entries(const std::string& dir) {
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.truncated_tail_records(), 0u);
  return store.take_recovered();
}

// The message of the StorageError that fn throws ("" and a failure if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const StorageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no StorageError";
  return {};
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Gives each test a fresh data directory, <tmp>/<prefix><pid>_<n>_<test>/n1,
// removed afterwards. Each test program passes its own prefix, so programs
// run in parallel (ctest -j) never share a directory.
class StorageFixture : public ::testing::Test {
 protected:
  explicit StorageFixture(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    static std::atomic<unsigned> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / (prefix_ + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++) + "_" + info->name());
    fs::remove_all(dir_);
    dir = (dir_ / "n1").string();  // nested: the stores must create missing parents
    log_dir = (dir_ / "n1" / "log").string();
    seg_path = segment_path(1);
    meta_path = (dir_ / "n1" / "meta").string();
    identity_path = (dir_ / "n1" / "identity").string();
    snapshot_path = (dir_ / "n1" / "snapshot").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string segment_path(raft::Index first_index) const { return (fs::path(log_dir) / segment_name(first_index)).string(); }

  std::string dir;
  std::string log_dir;   // the log's directory, dir/log
  std::string seg_path;  // its first segment, dir/log/00000000000000000001.seg
  std::string meta_path;
  std::string identity_path;
  std::string snapshot_path;

 private:
  std::string prefix_;
  fs::path dir_;
};

}  // namespace storage_testing
