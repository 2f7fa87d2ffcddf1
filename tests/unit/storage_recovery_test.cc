// Storage, part 2: what opening a log does with what it finds in a segment
// file. A torn tail (the last write of a crash) is cut and recovery goes on;
// corruption elsewhere, or a file truncated or replaced by someone else, is
// refused with the file and offset named and the file left untouched for
// inspection. Damage across segments: segmented_log_test.cc.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/segmented_log.h"
#include "storage_testing.h"

namespace {

using namespace storage_testing;

class StorageTest : public StorageFixture {
 protected:
  StorageTest() : StorageFixture("storage_recovery_test_") {}
};

// ---- SegmentedLog: torn tails -----------------------------------------------------

// Zeroes bytes [from, to) of the file: what a crash leaves where a write's
// pages never reached the disk (the space was preallocated, so it reads as zeros).
void zero_range(const std::string& path, std::uint64_t from, std::uint64_t to) {
  std::string bytes = read_bytes(path);
  for (std::uint64_t i = from; i < to; ++i) bytes[i] = '\0';
  write_bytes(path, bytes);
}

TEST_F(StorageTest, RecoversFromPartlyWrittenLastRecord) {
  const std::vector<Entry> entries = make_entries(1, 20);
  const std::uint64_t last_bytes = record_bytes(entries.back());
  const std::uint64_t last_offset = offset_of(entries, 20);
  const std::uint64_t end = last_offset + last_bytes;
  // Lose the end of the payload, all of it, or part of the record header.
  for (const std::uint64_t lost : {std::uint64_t{1}, std::uint64_t{10}, last_bytes - 8, last_bytes - 3,
                                   last_bytes - 1}) {
    SCOPED_TRACE("lost " + std::to_string(lost));
    fs::remove_all(dir);
    write_log(dir, entries);
    const std::uint64_t file_bytes = fs::file_size(seg_path);
    zero_range(seg_path, end - lost, end);
    {
      SegmentedLog store(dir, kSmallChunks);
      // With the length intact the whole record is cut; else its 8-byte header.
      EXPECT_EQ(store.truncated_tail_bytes(), lost <= last_bytes - 8 ? last_bytes : 8u);
      EXPECT_EQ(store.truncated_tail_records(), 1u);
      EXPECT_EQ(store.truncated_tail_offset(), last_offset);
      EXPECT_EQ(store.truncated_tail_index(), 20u);
      EXPECT_EQ(store.last_index(), 19u);
      EXPECT_EQ(store.take_recovered(), std::vector<Entry>(entries.begin(), entries.end() - 1));
    }
    // Cut by zeroing in place: same size, the bad record's bytes now zero.
    EXPECT_EQ(fs::file_size(seg_path), file_bytes);
    EXPECT_EQ(read_bytes(seg_path), craft_log(encode_records({entries.begin(), entries.end() - 1})));
    EXPECT_EQ(reopen_entries(dir).size(), 19u);  // the cut was persisted
  }
}

TEST_F(StorageTest, RecoversFromGarbageRecordHeaderAtTheEnd) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t end = offset_of(entries, 21);
  std::string bytes = read_bytes(seg_path);
  bytes.replace(end, 7, "\xAB\xCD\xEF\x12\x34\x56\x78");  // a length of ~7 MiB: not believed
  write_bytes(seg_path, bytes);
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), 8u);
  EXPECT_EQ(store.truncated_tail_records(), 1u);
  EXPECT_EQ(store.truncated_tail_offset(), end);
  EXPECT_EQ(store.take_recovered(), entries);
  EXPECT_EQ(read_bytes(seg_path), craft_log(encode_records(entries)));
}

TEST_F(StorageTest, ZerosAfterTheRecordsAreNotATornTail) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  // Even a whole extra chunk of zeros (a growth step whose records never came).
  std::string bytes = read_bytes(seg_path);
  bytes.append(kChunkBytes, '\0');
  write_bytes(seg_path, bytes);
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.truncated_tail_records(), 0u);
  EXPECT_EQ(store.take_recovered(), entries);
  EXPECT_EQ(store.preallocated_free_bytes(), bytes.size() - offset_of(entries, 21));
}

TEST_F(StorageTest, RecoversFromBadChecksumOnLastRecord) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  std::string bytes = read_bytes(seg_path);
  bytes[offset_of(entries, 21) - 1] ^= 0x40;
  write_bytes(seg_path, bytes);
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), record_bytes(entries.back()));
  EXPECT_EQ(store.truncated_tail_records(), 1u);
  EXPECT_EQ(store.take_recovered(), std::vector<Entry>(entries.begin(), entries.end() - 1));
}

TEST_F(StorageTest, AppendsAfterTornTailRecovery) {
  std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  zero_range(seg_path, offset_of(entries, 21) - 4, offset_of(entries, 21));
  const std::vector<Entry> more = make_entries(20, 30, 2);
  {
    SegmentedLog store(dir, kSmallChunks);
    EXPECT_GT(store.truncated_tail_bytes(), 0u);
    EXPECT_EQ(store.last_index(), 19u);
    store.append(more);
    store.sync();
  }
  entries.pop_back();
  entries.insert(entries.end(), more.begin(), more.end());
  SegmentedLog store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.last_index(), 30u);
  EXPECT_EQ(store.take_recovered(), entries);
}

TEST_F(StorageTest, FinishesACutThatACrashInterrupted) {
  // A crash while zeroing 11..20 left record 11's header zeroed but later
  // stale records in place: without the pending cut in the header this
  // would be "zeroed header followed by data", i.e. corruption.
  const std::vector<Entry> entries = make_entries(1, 20);
  const std::uint64_t cut = offset_of(entries, 11);
  std::string records = encode_records(entries);
  for (std::uint64_t i = 0; i < 8; ++i) records[cut - kFileHeaderBytes + i] = '\0';
  fs::create_directories(log_dir);
  write_bytes(seg_path, craft_log(records));
  EXPECT_TRUE(contains(error_of([&] { SegmentedLog store(dir, kSmallChunks); }), "zeroed record header"));

  write_bytes(seg_path, craft_log(records, cut));
  {
    SegmentedLog store(dir, kSmallChunks);
    EXPECT_EQ(store.take_recovered(), make_entries(1, 10));
    EXPECT_EQ(store.resumed_cut_bytes(), offset_of(entries, 21) - cut);
    EXPECT_EQ(store.truncated_tail_records(), 0u);  // stale entries are not a torn write
  }
  EXPECT_EQ(read_bytes(seg_path), craft_log(encode_records(make_entries(1, 10))));  // cut done, cleared
  EXPECT_EQ(reopen_entries(dir), make_entries(1, 10));
}

// ---- SegmentedLog: corruption and truncation by others ----------------------------

// Opening must fail, name the file and the record's offset, and leave the file
// untouched for inspection.
void expect_corrupt(const std::string& dir, const std::string& seg_path, std::uint64_t offset,
                    const std::string& problem) {
  const std::string before = read_bytes(seg_path);
  const std::string message = error_of([&] { SegmentedLog store(dir, kSmallChunks); });
  EXPECT_TRUE(contains(message, seg_path)) << message;
  EXPECT_TRUE(contains(message, "offset " + std::to_string(offset))) << message;
  EXPECT_TRUE(contains(message, problem)) << message;
  EXPECT_TRUE(contains(message, "refusing to start")) << message;
  EXPECT_EQ(read_bytes(seg_path), before);
}

TEST_F(StorageTest, FlippedByteInEarlyRecordIsCorruption) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t third_offset = offset_of(entries, 3);
  std::string bytes = read_bytes(seg_path);
  bytes[third_offset + 8 + 3] ^= 0x01;  // inside the term
  write_bytes(seg_path, bytes);
  expect_corrupt(dir, seg_path, third_offset, "checksum mismatch");
}

TEST_F(StorageTest, InsaneLengthInEarlyRecordIsCorruption) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t second_offset = offset_of(entries, 2);
  std::string bytes = read_bytes(seg_path);
  bytes[second_offset + 7] = '\x40';  // length's top byte: ~1 GiB
  write_bytes(seg_path, bytes);
  expect_corrupt(dir, seg_path, second_offset, "length");
}

TEST_F(StorageTest, ZeroedHeaderInEarlyRecordIsCorruption) {
  // Records end at the first all-zero header, but not if data follows it:
  // dropping entries 10..20 silently would lose acknowledged writes.
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  zero_range(seg_path, offset_of(entries, 10), offset_of(entries, 10) + 8);
  expect_corrupt(dir, seg_path, offset_of(entries, 10), "zeroed record header followed by data");
}

TEST_F(StorageTest, IndexGapInFileIsCorruption) {
  std::string records;
  std::uint64_t fourth_offset = 0;
  for (raft::Index index : {1, 2, 3, 5, 6}) {
    if (index == 5) fourth_offset = kFileHeaderBytes + records.size();
    records += encode_record(make_entry(1, index, "x"));
  }
  fs::create_directories(log_dir);
  write_bytes(seg_path, craft_log(records));
  expect_corrupt(dir, seg_path, fourth_offset, "index 5");
}

TEST_F(StorageTest, WrongIndexInLastRecordIsCorruptionNotATornTail) {
  // Its checksum is valid: we wrote it, no crash tears a record that way.
  fs::create_directories(log_dir);
  const std::string records = encode_records(make_entries(1, 3)) + encode_record(make_entry(1, 9, "x"));
  write_bytes(seg_path, craft_log(records));
  expect_corrupt(dir, seg_path, offset_of(make_entries(1, 3), 4), "index 9 where 4 was expected");
}

TEST_F(StorageTest, DecreasingTermInFileIsCorruption) {
  std::vector<Entry> entries = make_entries(1, 11, 5);
  entries.push_back(make_entry(3, 12, "late"));
  entries.push_back(make_entry(5, 13, "more"));
  fs::create_directories(log_dir);
  write_bytes(seg_path, craft_log(encode_records(entries)));
  const std::uint64_t offset = offset_of(entries, 12);
  expect_corrupt(dir, seg_path, offset,
                 "term 3 at index 12 (offset " + std::to_string(offset) + ") is below term 5 of index 11");
}

TEST_F(StorageTest, BadRecordFollowedByGarbageIsCorruption) {
  // A damaged last record with non-zero bytes after it is not a torn write.
  const std::vector<Entry> entries = make_entries(1, 5);
  write_log(dir, entries);
  const std::uint64_t last_offset = offset_of(entries, 5);
  std::string bytes = read_bytes(seg_path);
  bytes[last_offset + 10] ^= 0x01;
  bytes[offset_of(entries, 6) + 100] = 'x';
  write_bytes(seg_path, bytes);
  expect_corrupt(dir, seg_path, last_offset, "checksum mismatch");
}

TEST_F(StorageTest, TruncationInsideARecordIsRefusedNotTakenForATornWrite) {
  // The hard case: cut inside record 1,001 of 2,000. Without preallocation
  // this looked exactly like a torn write and 1,000 entries vanished.
  const std::vector<Entry> entries = make_entries(1, 2000);
  write_log(dir, entries);
  const std::uint64_t offset = offset_of(entries, 1001);
  const std::uint64_t needed = record_bytes(entries[1000]);
  fs::resize_file(seg_path, offset + 10);
  const std::string before = read_bytes(seg_path);
  const std::string message = error_of([&] { SegmentedLog store(dir, kSmallChunks); });
  EXPECT_EQ(message, seg_path + " ends inside record 1001 at offset " + std::to_string(offset) + " (record needs " +
                         std::to_string(needed) + " bytes, 10 present): the file was truncated, not torn by a "
                         "crash; refusing to start");
  EXPECT_EQ(read_bytes(seg_path), before);
}

TEST_F(StorageTest, TruncationBetweenRecordsIsRefused) {
  const std::vector<Entry> entries = make_entries(1, 2000);
  write_log(dir, entries);
  fs::resize_file(seg_path, offset_of(entries, 1001));
  const std::string message = error_of([&] { SegmentedLog store(dir, kSmallChunks); });
  EXPECT_TRUE(contains(message, seg_path + " is " + std::to_string(offset_of(entries, 1001)) + " bytes")) << message;
  EXPECT_TRUE(contains(message, "truncated")) << message;
  // Growing it by something other than whole chunks is refused the same way.
  fs::remove_all(log_dir);
  write_log(dir, entries);
  fs::resize_file(seg_path, grid_bytes(total_bytes(entries)) + 1);
  EXPECT_TRUE(contains(error_of([&] { SegmentedLog store(dir, kSmallChunks); }), "whole chunks"));
}

TEST_F(StorageTest, TruncationOnAChunkBoundaryInsideARecordIsRefused) {
  const std::vector<Entry> entries = make_entries(1, 2000);
  write_log(dir, entries);
  const std::uint64_t cut = kFileHeaderBytes + 30 * kChunkBytes;  // on the grid, inside some record
  raft::Index inside = 1;
  while (offset_of(entries, inside + 1) <= cut) ++inside;
  ASSERT_LT(offset_of(entries, inside), cut);
  fs::resize_file(seg_path, cut);
  expect_corrupt(dir, seg_path, offset_of(entries, inside), "record " + std::to_string(inside));
}

TEST_F(StorageTest, LogFileOfAnOlderVersionIsRefusedWithWhatToDo) {
  // The previous version kept the log in one file, dir/log, with header
  // "RKVLOG02"; the one before it wrote records without a header.
  fs::create_directories(dir);
  for (const std::string& old : {encode_old_file_header() + encode_records(make_entries(1, 5)),
                                 encode_records(make_entries(1, 5))}) {
    write_bytes(log_dir, old);
    const std::string message = error_of([&] { SegmentedLog store(dir, kSmallChunks); });
    EXPECT_TRUE(contains(message, log_dir + " is a log")) << message;
    EXPECT_TRUE(contains(message, "this version keeps its log in " + log_dir + "/")) << message;
    EXPECT_TRUE(contains(message, "move the data_dir away or delete it to start this node fresh")) << message;
    EXPECT_TRUE(contains(message, "refusing to start")) << message;
    EXPECT_EQ(read_bytes(log_dir), old);
  }
  EXPECT_TRUE(contains(error_of([&] { SegmentedLog store(dir, kSmallChunks); }), "older version"));
  write_bytes(log_dir, encode_old_file_header() + encode_records(make_entries(1, 5)));
  EXPECT_EQ(error_of([&] { SegmentedLog store(dir, kSmallChunks); }),
            log_dir + " is a log of an older format (RKVLOG02); this version keeps its log in " + log_dir +
                "/ (segment files); move the data_dir away or delete it to start this node fresh; refusing to start");
}

TEST_F(StorageTest, SegmentWithoutHeaderIsRefused) {
  fs::create_directories(log_dir);
  write_bytes(seg_path, encode_records(make_entries(1, 5)));
  const std::string before = read_bytes(seg_path);
  const std::string message = error_of([&] { SegmentedLog store(dir, kSmallChunks); });
  EXPECT_TRUE(contains(message, seg_path + " does not start with the log segment header")) << message;
  EXPECT_EQ(read_bytes(seg_path), before);
}

TEST_F(StorageTest, OtherFormatVersionOrDamagedHeaderIsRefused) {
  write_log(dir, make_entries(1, 5));
  const std::string good = read_bytes(seg_path);
  std::string newer = good;
  newer[7] = '4';
  write_bytes(seg_path, newer);
  EXPECT_TRUE(contains(error_of([&] { SegmentedLog store(dir, kSmallChunks); }), "\"RKVLOG04\""));
  // A first index that disagrees with the name (a renamed file), checksum intact.
  write_bytes(seg_path, craft_log(encode_records(make_entries(1, 5)), 0, 2));
  EXPECT_TRUE(contains(error_of([&] { SegmentedLog store(dir, kSmallChunks); }),
                       "corrupt log header in " + seg_path + ": first index 2, but the file name says 1"));
  for (std::size_t i = 8; i < kFileHeaderBytes; ++i) {
    std::string bad = good;
    bad[i] ^= 0x04;
    write_bytes(seg_path, bad);
    const std::string message = error_of([&] { SegmentedLog store(dir, kSmallChunks); });
    EXPECT_TRUE(contains(message, "corrupt log header in " + seg_path)) << "byte " << i << ": " << message;
  }
}

}  // namespace
