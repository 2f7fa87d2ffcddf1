// The snapshot file, dir/"snapshot": its format, atomic replacement, what
// loading refuses (every damage names the file and the offset, and leaves
// the file as found), the leftover of an interrupted save, a full disk, and
// a 100 MB snapshot: how long it takes, and that loading holds one copy.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include "storage/snapshot_store.h"
#include "storage_testing.h"

namespace {

using namespace storage_testing;
using storage::SnapshotStore;

class SnapshotStoreTest : public StorageFixture {
 protected:
  SnapshotStoreTest() : StorageFixture("snapshot_store_test_") {}
};

raft::Snapshot make_snapshot(raft::Index index, raft::Term term, std::string data) {
  return {{index, term}, std::make_shared<const std::string>(std::move(data))};
}

// An independent encoder of the documented format.
std::string encode_snapshot(raft::Index index, raft::Term term, const std::string& data) {
  std::string bytes = "RKVSNAP1";
  put_le(bytes, index, 8);
  put_le(bytes, term, 8);
  put_le(bytes, data.size(), 8);
  put_le(bytes, storage::crc32c(data.data(), data.size()), 4);
  put_le(bytes, storage::crc32c(bytes.data(), bytes.size()), 4);
  return bytes + data;
}

// Loading must fail naming the file and the offset, and change nothing.
void expect_refused(const std::string& dir, const std::string& path, std::uint64_t offset, const std::string& problem) {
  const std::string before = read_bytes(path);
  const std::string message = error_of([&] { (void)SnapshotStore(dir).load(); });
  EXPECT_TRUE(contains(message, "corrupt snapshot " + path + " at offset " + std::to_string(offset) + ": "))
      << message;
  EXPECT_TRUE(contains(message, problem)) << message;
  EXPECT_TRUE(contains(message, "refusing to start")) << message;
  EXPECT_EQ(read_bytes(path), before);
}

TEST_F(SnapshotStoreTest, AbsentUntilSaved) {
  SnapshotStore store(dir);
  EXPECT_FALSE(store.load());
  EXPECT_FALSE(store.exists());
  EXPECT_FALSE(SnapshotStore::exists(dir));
  EXPECT_FALSE(store.removed_temp());
  EXPECT_EQ(store.path(), snapshot_path);
}

TEST_F(SnapshotStoreTest, SavesTheDocumentedFormatAndLoadsItBack) {
  const std::string data("state\0with every byte \xFF", 24);
  {
    SnapshotStore store(dir);
    store.save(make_snapshot(0x0102030405, 7, data));
  }
  EXPECT_EQ(read_bytes(snapshot_path), encode_snapshot(0x0102030405, 7, data));
  EXPECT_FALSE(fs::exists(snapshot_path + ".tmp"));
  const std::optional<raft::Snapshot> loaded = SnapshotStore(dir).load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->meta, (raft::SnapshotMeta{0x0102030405, 7}));
  ASSERT_TRUE(loaded->data);
  EXPECT_EQ(*loaded->data, data);
  EXPECT_TRUE(SnapshotStore::exists(dir));
}

TEST_F(SnapshotStoreTest, ANewerSnapshotReplacesTheOldOneWhole) {
  SnapshotStore store(dir);
  store.save(make_snapshot(10, 1, std::string(5000, 'a')));
  store.save(make_snapshot(20, 2, "short"));
  EXPECT_EQ(read_bytes(snapshot_path), encode_snapshot(20, 2, "short"));
  // Empty data is a valid snapshot too (an empty state machine).
  store.save(make_snapshot(21, 2, ""));
  EXPECT_EQ(*store.load()->data, "");
}

TEST_F(SnapshotStoreTest, RefusesToSaveIndexZeroOrNoData) {
  SnapshotStore store(dir);
  EXPECT_THROW(store.save(make_snapshot(0, 1, "x")), std::invalid_argument);
  EXPECT_THROW(store.save(raft::Snapshot{{5, 1}, nullptr}), std::invalid_argument);
  EXPECT_FALSE(store.exists());
}

TEST_F(SnapshotStoreTest, EveryFlippedHeaderByteIsRefused) {
  SnapshotStore(dir).save(make_snapshot(42, 3, "some state"));
  const std::string good = read_bytes(snapshot_path);
  for (std::size_t i = 0; i < SnapshotStore::kHeaderBytes; ++i) {
    SCOPED_TRACE(i);
    std::string bad = good;
    bad[i] ^= 0x08;
    write_bytes(snapshot_path, bad);
    // The magic is named as such; any other byte fails the header checksum.
    expect_refused(dir, snapshot_path, 0, i < 8 ? "RKVSNAP1" : "header checksum mismatch");
  }
}

TEST_F(SnapshotStoreTest, AFlippedDataByteIsRefused) {
  SnapshotStore(dir).save(make_snapshot(42, 3, std::string(10000, 'd')));
  std::string bytes = read_bytes(snapshot_path);
  bytes[SnapshotStore::kHeaderBytes + 9000] ^= 0x01;
  write_bytes(snapshot_path, bytes);
  expect_refused(dir, snapshot_path, SnapshotStore::kHeaderBytes,
                 "checksum mismatch in the 10000 data bytes from offset 40");
}

TEST_F(SnapshotStoreTest, ATruncatedOrExtendedFileIsRefused) {
  SnapshotStore(dir).save(make_snapshot(42, 3, std::string(10000, 'd')));
  const std::string good = read_bytes(snapshot_path);
  // Inside the data, right after the header; then inside the header, and empty.
  for (const std::size_t size : {std::size_t{5040}, std::size_t{40}}) {
    write_bytes(snapshot_path, good.substr(0, size));
    expect_refused(dir, snapshot_path, size,
                   "the file is " + std::to_string(size) + " bytes, its header says 40 + 10000: it was truncated");
  }
  write_bytes(snapshot_path, good.substr(0, 20));
  expect_refused(dir, snapshot_path, 20, "the file ends inside the 40-byte header (20 bytes): it was truncated");
  write_bytes(snapshot_path, "");
  expect_refused(dir, snapshot_path, 0, "does not start with \"RKVSNAP1\"");
  write_bytes(snapshot_path, good + "x");
  expect_refused(dir, snapshot_path, 10040, "its header says 40 + 10000: it was extended");
}

TEST_F(SnapshotStoreTest, AnotherFormatVersionIsNamed) {
  std::string bytes = encode_snapshot(1, 1, "x");
  bytes[7] = '2';
  fs::create_directories(dir);
  write_bytes(snapshot_path, bytes);
  expect_refused(dir, snapshot_path, 0, "snapshot format \"RKVSNAP2\", this program reads \"RKVSNAP1\"");
}

TEST_F(SnapshotStoreTest, AValidChecksumDoesNotMakeIndexZeroAcceptable) {
  fs::create_directories(dir);
  write_bytes(snapshot_path, encode_snapshot(0, 1, "x"));
  expect_refused(dir, snapshot_path, 8, "outside [1, 2^53 - 1]");
}

TEST_F(SnapshotStoreTest, ALeftoverTemporaryFileIsRemovedUnread) {
  SnapshotStore(dir).save(make_snapshot(10, 1, "the saved one"));
  // A save interrupted by a crash: a partial file that never got its rename.
  write_bytes(snapshot_path + ".tmp", encode_snapshot(20, 2, "newer").substr(0, 30));
  SnapshotStore store(dir);
  EXPECT_TRUE(store.removed_temp());
  EXPECT_EQ(store.removed_temp_bytes(), 30u);
  EXPECT_FALSE(fs::exists(snapshot_path + ".tmp"));
  EXPECT_EQ(store.load()->meta, (raft::SnapshotMeta{10, 1}));
  EXPECT_FALSE(SnapshotStore(dir).removed_temp());
}

TEST_F(SnapshotStoreTest, AFullDiskKeepsTheOldSnapshot) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  SnapshotStore store(dir);
  store.save(make_snapshot(10, 1, "old"));
  fs::create_symlink("/dev/full", snapshot_path + ".tmp");
  try {
    store.save(make_snapshot(20, 2, std::string(100000, 'n')));
    ADD_FAILURE() << "saved to a full disk";
  } catch (const DiskFull& e) {
    EXPECT_TRUE(contains(e.what(), snapshot_path + ".tmp")) << e.what();
  }
  EXPECT_FALSE(fs::exists(snapshot_path + ".tmp"));  // the failed save cleans up
  EXPECT_EQ(store.load()->meta, (raft::SnapshotMeta{10, 1}));
  EXPECT_EQ(*store.load()->data, "old");
}

// Peak and current resident set of this process, from /proc (0 if unknown).
std::uint64_t status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

TEST_F(SnapshotStoreTest, HundredMegabytesSaveAndLoadWithOneCopyInMemory) {
  constexpr std::size_t kBytes = std::size_t{100} << 20;
  double save_ms = 0;
  {
    std::string data(kBytes, '\0');
    std::mt19937_64 rng(7);
    for (std::size_t i = 0; i + 8 <= kBytes; i += 8) {
      const std::uint64_t word = rng();
      std::memcpy(data.data() + i, &word, 8);
    }
    const raft::Snapshot snapshot{{123456, 9}, std::make_shared<const std::string>(std::move(data))};
    SnapshotStore store(dir);
    const auto start = std::chrono::steady_clock::now();
    store.save(snapshot);
    save_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(fs::file_size(snapshot_path), kBytes + SnapshotStore::kHeaderBytes);
  }  // the saved data is freed here: the load below starts without it

  // Reset the peak to the current size (Linux >= 4.0), so that the peak
  // measured after the load is what the load itself needed.
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5" << std::flush;
  const bool can_measure = clear_refs.good();
  const std::uint64_t rss_before_kib = status_kib("VmRSS");
  const auto start = std::chrono::steady_clock::now();
  const std::optional<raft::Snapshot> loaded = SnapshotStore(dir).load();
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const std::uint64_t peak_kib = status_kib("VmHWM");
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->data->size(), kBytes);
  EXPECT_EQ(loaded->meta, (raft::SnapshotMeta{123456, 9}));
  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i + 8 <= kBytes; i += 8 * 4096) {  // spot-check: the checksum covered the rest
    std::uint64_t word = 0;
    std::memcpy(&word, loaded->data->data() + i, 8);
    EXPECT_EQ(word, rng());
    for (int skip = 1; skip < 4096; ++skip) rng();
  }
  std::printf("[ timing ] 100 MiB snapshot: save (write, fsync, rename, fsync dir) %.0f ms, load (read, checksum) "
              "%.0f ms\n", save_ms, load_ms);
  RecordProperty("save_ms", std::to_string(save_ms));
  RecordProperty("load_ms", std::to_string(load_ms));
  if (can_measure && peak_kib > 0 && rss_before_kib > 0) {
    const std::uint64_t grew_kib = peak_kib - rss_before_kib;
    std::printf("[ memory ] the load raised the peak resident set by %llu KiB (the data is %zu KiB)\n",
                static_cast<unsigned long long>(grew_kib), kBytes >> 10);
    EXPECT_LT(grew_kib, (kBytes >> 10) * 3 / 2) << "loading held more than one copy of the data";
  }
}

}  // namespace
