// The log as a directory of segments: rolling to a new segment when the open
// one is full, compaction that deletes whole segments and never rewrites the
// ones it keeps, suffix removal across segments, reset to an empty log that
// starts after a snapshot, restarts after each, what is refused when the
// segments do not fit together, and a full disk while rolling.
// One segment's format and recovery: storage_test.cc, storage_recovery_test.cc.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/segmented_log.h"
#include "storage_testing.h"

namespace {

using namespace storage_testing;

class SegmentedLogTest : public StorageFixture {
 protected:
  SegmentedLogTest() : StorageFixture("segmented_log_test_") {}
};

// 100 data bytes make 125-byte records: 8 fit in a segment of 1,000 bytes.
constexpr std::uint64_t kDataBytes = 100;
constexpr std::uint64_t kRecordsPerSegment = 8;
const LogOptions kTinySegments{kChunkBytes, 1000};

std::vector<Entry> sized_entries(raft::Index first, raft::Index last, raft::Term term = 1) {
  std::vector<Entry> entries;
  for (raft::Index i = first; i <= last; ++i) {
    entries.push_back(make_entry(term, i, std::string(kDataBytes, static_cast<char>('a' + i % 26))));
  }
  return entries;
}

// Appends entries one by one (each a batch), then syncs.
void append_each(SegmentedLog& log, const std::vector<Entry>& entries) {
  for (const Entry& entry : entries) log.append({entry});
  log.sync();
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(dir)) names.push_back(item.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<Entry> concat(std::vector<Entry> a, const std::vector<Entry>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// What must stay the same in a file compaction keeps: same inode (not
// replaced), same modification time (not written), same bytes.
struct FileStamp {
  ino_t inode = 0;
  std::int64_t mtime_ns = 0;
  std::string bytes;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return {st.st_ino, std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec, read_bytes(path)};
}

// ---- rolling ------------------------------------------------------------------

TEST_F(SegmentedLogTest, RollsToANewSegmentWhenTheOpenOneIsFull) {
  const std::vector<Entry> entries = sized_entries(1, 20);
  {
    SegmentedLog log(dir, kTinySegments);
    append_each(log, entries);
    EXPECT_EQ(log.segment_count(), 3u);
    EXPECT_EQ(log.first_index(), 1u);
    EXPECT_EQ(log.last_index(), 20u);
  }
  // Named by first index; each holds 8 records (1,000 bytes), the last the rest.
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(1), segment_name(9), segment_name(17)}));
  EXPECT_EQ(read_bytes(segment_path(1)), craft_log(encode_records(sized_entries(1, 8))));
  EXPECT_EQ(read_bytes(segment_path(9)), craft_log(encode_records(sized_entries(9, 16)), 0, 9));
  EXPECT_EQ(read_bytes(segment_path(17)), craft_log(encode_records(sized_entries(17, 20)), 0, 17));
  SegmentedLog log(dir, kTinySegments);
  EXPECT_EQ(log.take_recovered(), entries);
  EXPECT_EQ(log.segment_count(), 3u);
  EXPECT_EQ(log.truncated_tail_records(), 0u);
  EXPECT_TRUE(log.recovery().removed_temp_files.empty());
}

TEST_F(SegmentedLogTest, OneBatchIsSplitAcrossAsManySegmentsAsItNeeds) {
  const std::vector<Entry> entries = sized_entries(1, 30);
  {
    SegmentedLog log(dir, kTinySegments);
    log.append(sized_entries(1, 3));
    log.append(sized_entries(4, 30));  // fills segment 1, then 9..16, 17..24, 25..30
    log.sync();
    EXPECT_EQ(log.segment_count(), 4u);
  }
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(1), segment_name(9), segment_name(17),
                                                         segment_name(25)}));
  SegmentedLog log(dir, kTinySegments);
  EXPECT_EQ(log.take_recovered(), entries);
  // Appends continue in the last segment after a restart.
  log.append(sized_entries(31, 32));
  log.sync();
  EXPECT_EQ(log.segment_count(), 4u);
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), sized_entries(1, 32));
}

TEST_F(SegmentedLogTest, ARecordLargerThanASegmentGetsOneToItself) {
  const Entry big = make_entry(1, 2, std::string(3000, 'B'));
  {
    SegmentedLog log(dir, kTinySegments);
    log.append({make_entry(1, 1, "small")});
    log.append({big});                       // rolls: segment 1 already holds a record
    log.append({make_entry(1, 3, "next")});  // rolls again: 2 fills its segment
    log.sync();
    EXPECT_EQ(log.segment_count(), 3u);
  }
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(1), segment_name(2), segment_name(3)}));
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(),
            (std::vector<Entry>{make_entry(1, 1, "small"), big, make_entry(1, 3, "next")}));
}

// Descriptors of this process open on files under `dir`.
int descriptors_under(const std::string& dir) {
  int open = 0;
  for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(fd.path(), ec);
    if (!ec && target.string().rfind(dir, 0) == 0) ++open;
  }
  return open;
}

TEST_F(SegmentedLogTest, OnlyTheOpenSegmentKeepsAFileDescriptor) {
  // A long log must not hold one descriptor per segment (the limit is ~1,024).
  if (!fs::exists("/proc/self/fd")) GTEST_SKIP() << "no /proc/self/fd";
  {
    SegmentedLog log(dir, kTinySegments);
    append_each(log, sized_entries(1, 400));
    EXPECT_EQ(log.segment_count(), 50u);
    EXPECT_EQ(descriptors_under(log_dir), 1);
  }
  SegmentedLog log(dir, kTinySegments);
  EXPECT_EQ(descriptors_under(log_dir), 1);
  // A suffix removal reopens the closed segment it cuts into.
  log.append(sized_entries(20, 20, 2));
  log.sync();
  EXPECT_EQ(log.segment_count(), 3u);
  EXPECT_EQ(descriptors_under(log_dir), 1);
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), concat(sized_entries(1, 19), sized_entries(20, 20, 2)));
}

TEST_F(SegmentedLogTest, DefaultSegmentIsOneDefaultChunk) {
  EXPECT_EQ(LogOptions{}.segment_bytes, std::uint64_t{LogOptions{}.chunk_bytes});
  EXPECT_EQ(LogOptions{}.segment_bytes, 4u << 20);
  SegmentedLog log(dir);
  // 41 entries of 200 KiB: 20 fit in 4 MiB of records (each is 200 KiB + 25 bytes).
  for (raft::Index i = 1; i <= 41; ++i) log.append({make_entry(1, i, std::string(200 << 10, 'x'))});
  log.sync();
  EXPECT_EQ(log.segment_count(), 3u);
  for (const std::string& path : log.segment_paths()) EXPECT_EQ(fs::file_size(path), kFileHeaderBytes + (4u << 20));
}

// ---- compaction ------------------------------------------------------------------

TEST_F(SegmentedLogTest, CompactionDeletesWholeSegmentsAndNeverTouchesTheOnesItKeeps) {
  const std::vector<Entry> entries = sized_entries(1, 40);  // segments 1, 9, 17, 25, 33
  {
    SegmentedLog log(dir, kTinySegments);
    append_each(log, entries);
    ASSERT_EQ(log.segment_count(), 5u);
  }
  const std::vector<raft::Index> kept = {17, 25, 33};
  std::vector<FileStamp> before;
  for (raft::Index first : kept) before.push_back(stamp(segment_path(first)));
  {
    SegmentedLog log(dir, kTinySegments);
    (void)log.take_recovered();
    EXPECT_EQ(log.compact(0), 0u);
    EXPECT_EQ(log.compact(15), 1u);  // 1..8 go; 9..16 holds 16 > 15 and stays
    EXPECT_EQ(log.first_index(), 9u);
    EXPECT_EQ(log.compact(20), 1u);  // entries 17..20 <= 20 may remain: whole segments only
    EXPECT_EQ(log.first_index(), 17u);
    EXPECT_EQ(log.last_index(), 40u);
  }
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(17), segment_name(25), segment_name(33)}));
  for (std::size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(stamp(segment_path(kept[i])), before[i]) << kept[i];
  SegmentedLog log(dir, kTinySegments);
  EXPECT_EQ(log.first_index(), 17u);
  EXPECT_EQ(log.take_recovered(), sized_entries(17, 40));
  EXPECT_EQ(log.term_at(17), 1u);
  EXPECT_THROW((void)log.term_at(16), std::out_of_range);
  // Appends after compaction, and an append below the first index is refused.
  log.append(sized_entries(41, 41, 2));
  EXPECT_THROW(log.append(sized_entries(16, 16, 2)), std::invalid_argument);
  log.sync();
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), concat(sized_entries(17, 40), sized_entries(41, 41, 2)));
}

TEST_F(SegmentedLogTest, CompactionKeepsTheSegmentHoldingTheLastIndex) {
  SegmentedLog log(dir, kTinySegments);
  append_each(log, sized_entries(1, 20));
  EXPECT_EQ(log.compact(1000), 2u);  // everything is covered, but 17..20 stays
  EXPECT_EQ(log.first_index(), 17u);
  EXPECT_EQ(log.last_index(), 20u);
  EXPECT_EQ(log.compact(1000), 0u);
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), sized_entries(17, 20));
}

// ---- suffix removal across segments ------------------------------------------------

TEST_F(SegmentedLogTest, ReplacingASuffixDeletesLaterSegmentsAndCutsTheOneHoldingItsStart) {
  const std::vector<Entry> old_entries = sized_entries(1, 40);
  const FileStamp first_segment = [&] {
    SegmentedLog log(dir, kTinySegments);
    append_each(log, old_entries);
    return stamp(segment_path(1));
  }();
  const std::vector<Entry> replacement = sized_entries(12, 14, 2);
  {
    SegmentedLog log(dir, kTinySegments);
    log.append(replacement);  // 12 is in segment 9..16: 17, 25 and 33 go, 9 is cut after 11
    log.sync();
    EXPECT_EQ(log.last_index(), 14u);
    EXPECT_EQ(log.segment_count(), 2u);
  }
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(1), segment_name(9)}));
  EXPECT_EQ(stamp(segment_path(1)), first_segment);
  const std::vector<Entry> expected = concat(sized_entries(1, 11), replacement);
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), expected);
}

TEST_F(SegmentedLogTest, ReplacingFromASegmentsFirstIndexLeavesItEmptyThenRefillsIt) {
  {
    SegmentedLog log(dir, kTinySegments);
    append_each(log, sized_entries(1, 20));
    log.append(sized_entries(9, 9, 3));
    log.sync();
    EXPECT_EQ(log.segment_count(), 2u);
    EXPECT_EQ(log.last_index(), 9u);
  }
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), concat(sized_entries(1, 8), sized_entries(9, 9, 3)));
  // From index 1: one empty segment is left, then filled again (and rolled).
  {
    SegmentedLog log(dir, kTinySegments);
    log.append(sized_entries(1, 10, 4));
    log.sync();
  }
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(1), segment_name(9)}));
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), sized_entries(1, 10, 4));
}

// ---- reset --------------------------------------------------------------------------

TEST_F(SegmentedLogTest, ResetLeavesOneEmptySegmentStartingAfterTheGivenIndex) {
  for (const raft::Index after : {raft::Index{5}, raft::Index{100}}) {  // inside the log, and past its end
    SCOPED_TRACE(after);
    fs::remove_all(dir);
    {
      SegmentedLog log(dir, kTinySegments);
      append_each(log, sized_entries(1, 20));
      log.reset(after);
      EXPECT_EQ(log.first_index(), after + 1);
      EXPECT_EQ(log.last_index(), after);
      EXPECT_EQ(log.entry_count(), 0u);
      EXPECT_EQ(log.segment_count(), 1u);
    }
    // The empty log keeps its first index across a restart: its header says it.
    EXPECT_EQ(names_in(log_dir), std::vector<std::string>{segment_name(after + 1)});
    EXPECT_EQ(read_bytes(segment_path(after + 1)), encode_file_header(kChunkBytes, 0, after + 1));
    {
      SegmentedLog log(dir, kTinySegments);
      EXPECT_EQ(log.first_index(), after + 1);
      EXPECT_EQ(log.last_index(), after);
      EXPECT_TRUE(log.take_recovered().empty());
      EXPECT_FALSE(log.recovery().resumed_reset_after);
      EXPECT_THROW(log.append(sized_entries(after, after, 2)), std::invalid_argument);
      EXPECT_THROW(log.append(sized_entries(after + 2, after + 2, 2)), std::invalid_argument);
      // The entry before the first is gone, so any term may follow it.
      log.append(sized_entries(after + 1, after + 12, 2));
      log.sync();
    }
    SegmentedLog log(dir, kTinySegments);
    EXPECT_EQ(log.take_recovered(), sized_entries(after + 1, after + 12, 2));
    EXPECT_EQ(log.segment_count(), 2u);
  }
}

TEST_F(SegmentedLogTest, ResetOfAnEmptyLogAndToZero) {
  SegmentedLog log(dir, kTinySegments);
  log.reset(7);
  log.reset(7);
  EXPECT_EQ(names_in(log_dir), std::vector<std::string>{segment_name(8)});
  log.reset(0);
  EXPECT_EQ(names_in(log_dir), std::vector<std::string>{segment_name(1)});
  EXPECT_EQ(log.first_index(), 1u);
  EXPECT_THROW(log.reset(raft::kMaxNumber), std::invalid_argument);
}

TEST_F(SegmentedLogTest, AnInterruptedResetIsFinishedAtTheNextStart) {
  // The state a crash leaves after the marker, with some segments deleted.
  {
    SegmentedLog log(dir, kTinySegments);
    append_each(log, sized_entries(1, 20));
  }
  std::string marker = "RKVRST01";
  put_le(marker, 30, 8);
  put_le(marker, kChunkBytes, 4);
  put_le(marker, storage::crc32c(marker.data(), marker.size()), 4);
  write_bytes(fs::path(log_dir) / "reset", marker);
  fs::remove(segment_path(17));
  EXPECT_TRUE(SegmentedLog::inspect(dir).reset_pending);
  {
    SegmentedLog log(dir, kTinySegments);
    EXPECT_EQ(log.recovery().resumed_reset_after, raft::Index{30});
    EXPECT_EQ(log.first_index(), 31u);
    EXPECT_TRUE(log.take_recovered().empty());
  }
  EXPECT_EQ(names_in(log_dir), std::vector<std::string>{segment_name(31)});
  // A damaged marker is refused, not guessed at.
  marker[9] ^= 1;
  write_bytes(fs::path(log_dir) / "reset", marker);
  const std::string message = error_of([&] { SegmentedLog log(dir, kTinySegments); });
  EXPECT_TRUE(contains(message, "corrupt reset marker " + (fs::path(log_dir) / "reset").string())) << message;
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(31), "reset"}));
}

// ---- what is refused across segments ------------------------------------------------

class DamagedSegmentsTest : public SegmentedLogTest {
 protected:
  void SetUp() override {
    SegmentedLogTest::SetUp();
    SegmentedLog log(dir, kTinySegments);
    append_each(log, sized_entries(1, 24));  // segments 1, 9, 17
  }
  // Opening must fail with every part in the message, and change nothing.
  void expect_refused(const std::vector<std::string>& parts) {
    std::vector<FileStamp> before;
    const std::vector<std::string> names = names_in(log_dir);
    for (const std::string& name : names) before.push_back(stamp((fs::path(log_dir) / name).string()));
    const std::string message = error_of([&] { SegmentedLog log(dir, kTinySegments); });
    for (const std::string& part : parts) EXPECT_TRUE(contains(message, part)) << part << "\n" << message;
    EXPECT_TRUE(contains(message, "refusing to start")) << message;
    ASSERT_EQ(names_in(log_dir), names);
    for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(stamp((fs::path(log_dir) / names[i]).string()), before[i]);
  }
};

TEST_F(DamagedSegmentsTest, AMissingMiddleSegmentIsAGap) {
  fs::remove(segment_path(9));
  expect_refused({"corrupt log: " + segment_path(1) + " holds entries 1..8 but the next segment " + segment_path(17) +
                  " starts at index 17: a gap: entries 9..16 are missing"});
}

TEST_F(DamagedSegmentsTest, OverlappingSegmentsAreRefused) {
  write_bytes(segment_path(5), craft_log(encode_records(sized_entries(5, 6)), 0, 5));
  expect_refused({segment_path(1) + " holds entries 1..8 but the next segment " + segment_path(5) +
                  " starts at index 5: an overlap"});
}

TEST_F(DamagedSegmentsTest, ADamagedLastRecordIsOnlyATornTailInTheLastSegment) {
  std::string bytes = read_bytes(segment_path(9));
  bytes[offset_of(sized_entries(9, 16), 16) + 30] ^= 0x01;  // record 16, the last of a closed segment
  write_bytes(segment_path(9), bytes);
  expect_refused({"corrupt log: " + segment_path(9) + " has a damaged last record at offset " +
                      std::to_string(offset_of(sized_entries(9, 16), 16)),
                  "but " + segment_path(17) + " follows it"});
  // The same damage in the last segment is a torn tail, cut and reported.
  fs::remove(segment_path(17));
  fs::remove(segment_path(9));
  {
    SegmentedLog log(dir, kTinySegments);
    append_each(log, sized_entries(9, 16));
  }
  bytes = read_bytes(segment_path(9));
  bytes[offset_of(sized_entries(9, 16), 16) + 30] ^= 0x01;
  write_bytes(segment_path(9), bytes);
  SegmentedLog log(dir, kTinySegments);
  EXPECT_EQ(log.truncated_tail_records(), 1u);
  EXPECT_EQ(log.truncated_tail_file(), segment_path(9));
  EXPECT_EQ(log.truncated_tail_index(), 16u);
  EXPECT_EQ(log.take_recovered(), sized_entries(1, 15));
}

TEST_F(DamagedSegmentsTest, APendingCutInAnEarlierSegmentIsRefused) {
  write_bytes(segment_path(9), craft_log(encode_records(sized_entries(9, 16)), offset_of(sized_entries(9, 16), 12), 9));
  expect_refused({segment_path(9) + " has a suffix removal pending", segment_path(17)});
}

TEST_F(DamagedSegmentsTest, TermsDecreasingAcrossSegmentsAreRefused) {
  write_bytes(segment_path(17), craft_log(encode_records(sized_entries(17, 24, 0)), 0, 17));
  expect_refused({"term 0 at index 17 (" + segment_path(17) + ") is below term 1 of index 16 (" + segment_path(9)});
}

TEST_F(DamagedSegmentsTest, UnexpectedFilesAndAnEmptyDirectoryAreRefused) {
  write_bytes(fs::path(log_dir) / "notes.txt", "x");
  expect_refused({"unexpected file " + (fs::path(log_dir) / "notes.txt").string()});
  fs::remove(fs::path(log_dir) / "notes.txt");
  for (raft::Index first : {1, 9, 17}) fs::remove(segment_path(first));
  expect_refused({log_dir + " holds no segment file: its segments were deleted"});
}

TEST_F(DamagedSegmentsTest, LeftoversOfACrashAreRemovedUnread) {
  write_bytes(segment_path(25) + ".tmp", std::string(5000, 'z'));  // a roll interrupted before its rename
  fs::create_directories(log_dir + ".tmp");                         // a creation interrupted before its rename
  write_bytes(fs::path(log_dir + ".tmp") / segment_name(1), "partial");
  SegmentedLog log(dir, kTinySegments);
  EXPECT_EQ(log.recovery().removed_temp_files, (std::vector<std::string>{log_dir + ".tmp", segment_path(25) + ".tmp"}));
  EXPECT_EQ(log.take_recovered(), sized_entries(1, 24));
  EXPECT_FALSE(fs::exists(log_dir + ".tmp"));
  EXPECT_EQ(names_in(log_dir), (std::vector<std::string>{segment_name(1), segment_name(9), segment_name(17)}));
}

// ---- full disk while rolling -----------------------------------------------------

TEST_F(SegmentedLogTest, AFullDiskWhileRollingLeavesTheLogAsItWas) {
  // /dev/full fails every write with a real ENOSPC; the new segment's
  // temporary file is pointed at it.
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  SegmentedLog log(dir, kTinySegments);
  append_each(log, sized_entries(1, 6));
  const FileStamp before = stamp(seg_path);
  fs::create_symlink("/dev/full", segment_path(9) + ".tmp");
  try {
    log.append(sized_entries(7, 12));  // 7 and 8 fit, 9..12 need segment 9
    ADD_FAILURE() << "rolled onto a full disk";
  } catch (const DiskFull& e) {
    EXPECT_TRUE(contains(e.what(), segment_path(9) + ".tmp")) << e.what();
  }
  EXPECT_EQ(log.last_index(), 6u);
  EXPECT_EQ(log.segment_count(), 1u);
  EXPECT_EQ(stamp(seg_path), before);  // not even 7 and 8 were written
  EXPECT_EQ(names_in(log_dir), std::vector<std::string>{segment_name(1)});
  // Space is back (the failed attempt removed its file): the same batch goes through.
  log.append(sized_entries(7, 12));
  log.sync();
  EXPECT_EQ(SegmentedLog(dir, kTinySegments).take_recovered(), sized_entries(1, 12));
}

}  // namespace
