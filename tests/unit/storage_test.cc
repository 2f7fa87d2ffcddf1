// Storage, part 1: the format of a log segment and normal operation inside
// one segment: checksums, the segment header and record layout, growth in
// whole chunks, appends, suffix truncation, rejected appends, and read-only
// inspection. Recovery from crashes and damage: storage_recovery_test.cc.
// Identity, meta, disk space and the reserve: storage_identity_test.cc. Many
// segments (rolling, compaction, reset): segmented_log_test.cc.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/crc32c.h"
#include "storage/segmented_log.h"
#include "storage_testing.h"

namespace {

using namespace storage_testing;

class StorageTest : public StorageFixture {
 protected:
  StorageTest() : StorageFixture("storage_test_") {}
};

// ---- crc32c ---------------------------------------------------------------

TEST(Crc32c, MatchesKnownVectors) {
  EXPECT_EQ(storage::crc32c("", 0), 0u);
  EXPECT_EQ(storage::crc32c("123456789", 9), 0xE3069283u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  const std::string zeros(32, '\0');
  EXPECT_EQ(storage::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::string ones(32, '\xFF');
  EXPECT_EQ(storage::crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(storage::crc32c(ascending.data(), ascending.size()), 0x46DD794Eu);
}

TEST(Crc32c, ChainsAcrossEverySplitPoint) {
  std::string data;
  std::mt19937 rng(42);
  for (int i = 0; i < 100; ++i) data.push_back(static_cast<char>(rng()));
  const std::uint32_t whole = storage::crc32c(data.data(), data.size());
  for (std::size_t split = 0; split <= data.size(); ++split) {
    const std::uint32_t first = storage::crc32c(data.data(), split);
    EXPECT_EQ(storage::crc32c(data.data() + split, data.size() - split, first), whole) << "split " << split;
  }
}

// ---- SegmentedLog: normal operation ---------------------------------------------

TEST_F(StorageTest, NewStoreCreatesDirectoryAndLogWithHeaderOnly) {
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_TRUE(fs::is_directory(log_dir));
  EXPECT_EQ(read_bytes(seg_path), encode_file_header());  // no chunk until the first append
  EXPECT_EQ(std::distance(fs::directory_iterator(log_dir), fs::directory_iterator()), 1);
  EXPECT_FALSE(fs::exists(log_dir + ".tmp"));
  EXPECT_TRUE(store.recovery().created);
  EXPECT_EQ(store.segment_paths(), std::vector<std::string>{seg_path});
  EXPECT_EQ(store.first_index(), 1u);
  EXPECT_EQ(store.last_index(), 0u);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.preallocated_free_bytes(), 0u);
  EXPECT_TRUE(store.take_recovered().empty());
}

TEST_F(StorageTest, DefaultChunkIsFourMiB) {
  SegmentedLog store(dir);
  store.append({make_entry(1, 1, "x")});
  store.sync();
  EXPECT_EQ(store.chunk_bytes(), 4u << 20);
  EXPECT_EQ(fs::file_size(seg_path), kFileHeaderBytes + (4u << 20));
  // An existing log keeps the chunk size in its header, whatever is asked.
  SegmentedLog reopened(dir, kSmallChunks);
  EXPECT_EQ(reopened.chunk_bytes(), 4u << 20);
  EXPECT_THROW(SegmentedLog(dir, LogOptions{100}), std::invalid_argument);
  EXPECT_THROW(SegmentedLog(dir, LogOptions{kChunkBytes, 0}), std::invalid_argument);
}

TEST_F(StorageTest, RecordLayoutMatchesHeader) {
  const Entry entry = make_entry(0x0102030405060708ull, 1, std::string("a\0b", 3), EntryType::Command);
  write_log(dir, {entry});
  const std::string bytes = read_bytes(seg_path);
  ASSERT_EQ(bytes, craft_log(encode_record(entry)));
  EXPECT_EQ(bytes.substr(0, 8), "RKVLOG03");
  EXPECT_EQ(bytes.size(), kFileHeaderBytes + kChunkBytes);
  // Spot-check little-endian fields rather than trusting the helper alone.
  const std::size_t r = kFileHeaderBytes;
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 0x00);       // chunk 4096 = 0x1000, low byte first
  EXPECT_EQ(static_cast<unsigned char>(bytes[9]), 0x10);
  EXPECT_EQ(static_cast<unsigned char>(bytes[12]), 1);         // first index
  EXPECT_EQ(bytes.substr(13, 7), std::string(7, '\0'));
  EXPECT_EQ(bytes.substr(20, 8), std::string(8, '\0'));        // no cut pending
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 4]), 20);     // payload length = 17 + 3
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 8]), 0x08);   // term, low byte first
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 16]), 1);     // index
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 24]), 1);     // type Command
}

TEST_F(StorageTest, RoundTripsManyEntriesAcrossReopen) {
  const std::vector<Entry> all = make_entries(1, 2000, 3);
  {
    SegmentedLog store(dir, kSmallChunks);
    std::uint64_t written = 0;
    for (std::size_t start = 0; start < all.size(); start += 137) {
      const std::size_t end = std::min(all.size(), start + 137);
      const std::vector<Entry> batch(all.begin() + static_cast<std::ptrdiff_t>(start),
                                     all.begin() + static_cast<std::ptrdiff_t>(end));
      store.append(batch);
      store.sync();
      written += total_bytes(batch);
      // Grown in whole chunks, only as far as needed.
      EXPECT_EQ(store.file_bytes(), grid_bytes(written));
      EXPECT_EQ(fs::file_size(seg_path), grid_bytes(written));
      EXPECT_EQ(store.preallocated_free_bytes(), grid_bytes(written) - kFileHeaderBytes - written);
    }
    EXPECT_EQ(store.last_index(), 2000u);
  }
  const std::string bytes = read_bytes(seg_path);
  EXPECT_EQ(bytes, craft_log(encode_records(all)));
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_EQ(store.last_index(), 2000u);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.take_recovered(), all);
  EXPECT_TRUE(store.take_recovered().empty());  // moved out once
}

TEST_F(StorageTest, EntryLargerThanAChunkGrowsSeveralChunks) {
  const Entry big = make_entry(1, 1, std::string(3 * kChunkBytes + 5, 'b'));
  {
    SegmentedLog store(dir, kSmallChunks);
    store.append({big});
    store.sync();
    EXPECT_EQ(store.file_bytes(), kFileHeaderBytes + 4 * kChunkBytes);
  }
  EXPECT_EQ(reopen_entries(dir), std::vector<Entry>{big});
}

TEST_F(StorageTest, HandCraftedFileIsRecovered) {
  const std::vector<Entry> entries = make_entries(1, 5, 9);
  fs::create_directories(log_dir);
  write_bytes(seg_path, craft_log(encode_records(entries)));
  EXPECT_EQ(reopen_entries(dir), entries);
}

TEST_F(StorageTest, OlderFileLogWithoutRecordsIsStartedAfresh) {
  // An older version created an empty log file on a fresh start, the last
  // one a header-only file: no entries to lose, so the directory replaces it.
  for (const std::string& old : {std::string(), encode_old_file_header(),
                                 encode_old_file_header() + std::string(kChunkBytes, '\0'), std::string(5000, '\0')}) {
    SCOPED_TRACE(old.size());
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_bytes(log_dir, old);
    {
      SegmentedLog store(dir, kSmallChunks);
      EXPECT_EQ(store.last_index(), 0u);
      EXPECT_TRUE(store.recovery().replaced_empty_old_file);
    }
    EXPECT_TRUE(fs::is_directory(log_dir));
    EXPECT_EQ(read_bytes(seg_path), encode_file_header());
  }
}

TEST_F(StorageTest, TruncatesSuffixThenAppends) {
  std::vector<Entry> expected = make_entries(1, 40, 1);
  {
    SegmentedLog store(dir, kSmallChunks);
    store.append(expected);
    // A new leader overwrites 6..40 with a shorter suffix of its own term.
    std::vector<Entry> replacement = {make_entry(2, 6, "six"), make_entry(2, 7, "seven")};
    store.append(replacement);
    EXPECT_EQ(store.last_index(), 7u);
    store.append({make_entry(2, 8, "eight")});
    store.sync();
    expected.resize(5);
    expected.push_back(replacement[0]);
    expected.push_back(replacement[1]);
    expected.push_back(make_entry(2, 8, "eight"));
  }
  // The old suffix is zeroed in place (the file keeps its chunks), and the
  // header has no cut pending.
  const std::string bytes = read_bytes(seg_path);
  EXPECT_EQ(bytes.size(), grid_bytes(total_bytes(make_entries(1, 40, 1))));
  std::string want = craft_log(encode_records(expected));
  want.resize(bytes.size(), '\0');
  EXPECT_EQ(bytes, want);
  EXPECT_EQ(reopen_entries(dir), expected);
}

TEST_F(StorageTest, TruncatesWholeLogFromIndexOne) {
  write_log(dir, make_entries(1, 10, 1));
  {
    SegmentedLog store(dir, kSmallChunks);
    store.append({make_entry(4, 1, "only")});
    store.sync();
  }
  EXPECT_EQ(reopen_entries(dir), std::vector<Entry>{make_entry(4, 1, "only")});
}

TEST_F(StorageTest, RejectsGapsAndDecreasingTermsWithoutTouchingTheLog) {
  write_log(dir, make_entries(1, 5, 3));
  const std::string before = read_bytes(seg_path);
  {
    SegmentedLog store(dir, kSmallChunks);
    EXPECT_THROW(store.append({make_entry(3, 7)}), std::invalid_argument);
    EXPECT_THROW(store.append({make_entry(3, 0)}), std::invalid_argument);
    // Starts inside the log (would truncate) but has a hole: nothing may be cut.
    EXPECT_THROW(store.append({make_entry(3, 3), make_entry(3, 5)}), std::invalid_argument);
    // Terms may not decrease, against the stored prefix or inside the batch.
    EXPECT_THROW(store.append({make_entry(2, 6)}), std::invalid_argument);
    EXPECT_THROW(store.append({make_entry(2, 3)}), std::invalid_argument);  // would truncate first
    EXPECT_THROW(store.append({make_entry(4, 6), make_entry(3, 7)}), std::invalid_argument);
    EXPECT_EQ(store.last_index(), 5u);
    store.append({});  // empty batch is a no-op
    store.sync();
  }
  EXPECT_EQ(read_bytes(seg_path), before);
}

TEST_F(StorageTest, RejectsOversizedEntry) {
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_THROW(store.append({make_entry(1, 1, std::string(1 << 20, 'x'))}), std::invalid_argument);
  EXPECT_EQ(store.last_index(), 0u);
  EXPECT_EQ(fs::file_size(seg_path), kFileHeaderBytes);
}

// ---- SegmentedLog: inspection ---------------------------------------------------

TEST_F(StorageTest, InspectReadsWithoutChangingAnything) {
  EXPECT_FALSE(SegmentedLog::inspect(dir).exists);
  write_log(dir, make_entries(1, 12));
  const std::string before = read_bytes(seg_path);
  const storage::LogSummary summary = SegmentedLog::inspect(dir);
  EXPECT_TRUE(summary.exists);
  EXPECT_FALSE(summary.old_format_file);
  EXPECT_EQ(summary.segments, 1u);
  EXPECT_TRUE(summary.holds_data);
  EXPECT_EQ(summary.records, 12u);
  EXPECT_EQ(summary.file_bytes, before.size());
  EXPECT_FALSE(summary.reset_pending);
  EXPECT_EQ(read_bytes(seg_path), before);
  write_bytes(seg_path, craft_log(""));
  EXPECT_FALSE(SegmentedLog::inspect(dir).holds_data);
  // A single-file log of an older version, with or without its header.
  fs::remove_all(log_dir);
  write_bytes(log_dir, encode_records(make_entries(1, 7)));
  EXPECT_TRUE(SegmentedLog::inspect(dir).old_format_file);
  EXPECT_EQ(SegmentedLog::inspect(dir).records, 7u);
  write_bytes(log_dir, encode_old_file_header() + encode_records(make_entries(1, 4)));
  EXPECT_EQ(SegmentedLog::inspect(dir).records, 4u);
  write_bytes(log_dir, encode_old_file_header() + std::string(kChunkBytes, '\0'));
  EXPECT_TRUE(SegmentedLog::inspect(dir).exists);
  EXPECT_FALSE(SegmentedLog::inspect(dir).holds_data);
}

}  // namespace
