// What a node recovers at restart from a snapshot, a log and a meta file
// (storage/recovery.h): the entries after the snapshot, a stale log reset so
// that disk and memory agree, and the combinations that are refused because
// something acknowledged would be lost. Each refusal names the files and
// changes nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "storage/recovery.h"
#include "storage_testing.h"

namespace {

using namespace storage_testing;
using storage::SnapshotStore;

class RestartTest : public StorageFixture {
 protected:
  RestartTest() : StorageFixture("storage_restart_test_") {}
};

const LogOptions kTinySegments{kChunkBytes, 1000};  // 8 records of 125 bytes per segment

std::vector<Entry> sized_entries(raft::Index first, raft::Index last, raft::Term term = 1) {
  std::vector<Entry> entries;
  for (raft::Index i = first; i <= last; ++i) entries.push_back(make_entry(term, i, std::string(100, 'e')));
  return entries;
}

void write_entries(const std::string& dir, const std::vector<Entry>& entries) {
  SegmentedLog log(dir, kTinySegments);
  for (const Entry& entry : entries) log.append({entry});
  log.sync();
}

void save_snapshot(const std::string& dir, raft::Index index, raft::Term term) {
  SnapshotStore(dir).save({{index, term}, std::make_shared<const std::string>("state at " + std::to_string(index))});
}

// The stores opened in the order the node opens them, then recovered.
struct Restarted {
  explicit Restarted(const std::string& dir)
      : snapshots(dir), log(dir, kTinySegments), meta(dir), state(storage::recover_data_dir(snapshots, log, meta)) {}
  SnapshotStore snapshots;
  SegmentedLog log;
  MetaStore meta;
  storage::RecoveredState state;
};

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(dir)) names.push_back(item.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The refusal must name every part; the log and snapshot stay as they were.
void expect_refused(const std::string& dir, const std::vector<std::string>& parts) {
  const std::string log_dir = (fs::path(dir) / "log").string();
  const std::vector<std::string> segments = names_in(log_dir);
  std::vector<std::string> contents;
  for (const std::string& name : segments) contents.push_back(read_bytes(fs::path(log_dir) / name));
  const std::string message = error_of([&] { Restarted restarted(dir); });
  for (const std::string& part : parts) EXPECT_TRUE(contains(message, part)) << part << "\n" << message;
  EXPECT_TRUE(contains(message, "refusing to start")) << message;
  ASSERT_EQ(names_in(log_dir), segments);
  for (std::size_t i = 0; i < segments.size(); ++i) EXPECT_EQ(read_bytes(fs::path(log_dir) / segments[i]), contents[i]);
}

TEST_F(RestartTest, AFreshDirectoryRecoversNothing) {
  Restarted r(dir);
  EXPECT_EQ(r.state.recovered.hard_state, raft::HardState{});
  EXPECT_FALSE(r.state.recovered.snapshot);
  EXPECT_TRUE(r.state.recovered.entries.empty());
  EXPECT_TRUE(r.state.report.log.created);
  EXPECT_EQ(r.state.report.log_first_index, 1u);
  EXPECT_EQ(r.state.report.log_last_index, 0u);
  EXPECT_FALSE(r.state.report.log_reset);
}

TEST_F(RestartTest, WithoutASnapshotTheWholeLogIsRecovered) {
  write_entries(dir, sized_entries(1, 20));
  MetaStore(dir).save({3, "n2"});
  Restarted r(dir);
  EXPECT_EQ(r.state.recovered.hard_state, (raft::HardState{3, "n2"}));
  EXPECT_EQ(r.state.recovered.entries, sized_entries(1, 20));
  EXPECT_EQ(r.state.report.entries_covered, 0u);
  EXPECT_EQ(r.state.report.snapshot_bytes, 0u);
}

TEST_F(RestartTest, EntriesAtOrBelowTheSnapshotAreSkippedButKeptOnDisk) {
  write_entries(dir, sized_entries(1, 40));
  MetaStore(dir).save({1, ""});
  save_snapshot(dir, 20, 1);
  const std::vector<std::string> segments = names_in(log_dir);
  Restarted r(dir);
  ASSERT_TRUE(r.state.recovered.snapshot);
  EXPECT_EQ(r.state.recovered.snapshot->meta, (raft::SnapshotMeta{20, 1}));
  EXPECT_EQ(*r.state.recovered.snapshot->data, "state at 20");
  EXPECT_EQ(r.state.report.snapshot_bytes, std::string("state at 20").size());
  EXPECT_EQ(r.state.recovered.entries, sized_entries(21, 40));
  EXPECT_EQ(r.state.report.entries_covered, 20u);
  EXPECT_FALSE(r.state.report.log_reset);
  EXPECT_EQ(names_in(log_dir), segments);  // compaction is the node's call, not recovery's
}

TEST_F(RestartTest, ACompactedLogContinuesTheSnapshot) {
  write_entries(dir, sized_entries(1, 40));
  MetaStore(dir).save({1, ""});
  save_snapshot(dir, 20, 1);
  SegmentedLog(dir, kTinySegments).compact(20);  // keeps 17..40
  Restarted r(dir);
  EXPECT_EQ(r.state.report.log_first_index, 17u);
  EXPECT_EQ(r.state.report.entries_covered, 4u);
  EXPECT_EQ(r.state.recovered.entries, sized_entries(21, 40));
}

TEST_F(RestartTest, ALogStartingRightAfterTheSnapshotIsKeptWhole) {
  {
    SegmentedLog log(dir, kTinySegments);
    log.reset(20);
    log.append(sized_entries(21, 30, 4));
    log.sync();
  }
  MetaStore(dir).save({4, "n1"});
  save_snapshot(dir, 20, 3);  // the entry at 20 is gone: no term to compare, and none needed
  Restarted r(dir);
  EXPECT_EQ(r.state.recovered.entries, sized_entries(21, 30, 4));
  EXPECT_FALSE(r.state.report.log_reset);
}

TEST_F(RestartTest, ALogThatDisagreesWithTheSnapshotIsReset) {
  // A crash came after saving a snapshot received from a leader of term 2 and
  // before the stale log was reset.
  write_entries(dir, sized_entries(1, 40, 1));
  MetaStore(dir).save({2, ""});
  save_snapshot(dir, 30, 2);
  {
    Restarted r(dir);
    EXPECT_TRUE(r.state.report.log_reset);
    EXPECT_EQ(r.state.report.entries_discarded, 10u);  // 31..40
    EXPECT_EQ(r.state.report.entries_covered, 30u);
    EXPECT_TRUE(r.state.recovered.entries.empty());
    EXPECT_EQ(r.log.first_index(), 31u);
    EXPECT_EQ(r.log.last_index(), 30u);
    r.log.append(sized_entries(31, 35, 2));
    r.log.sync();
  }
  EXPECT_EQ(names_in(log_dir), std::vector<std::string>{segment_name(31)});
  Restarted r(dir);
  EXPECT_FALSE(r.state.report.log_reset);
  EXPECT_EQ(r.state.recovered.entries, sized_entries(31, 35, 2));
}

TEST_F(RestartTest, ALogBehindTheSnapshotIsReset) {
  write_entries(dir, sized_entries(1, 10));
  MetaStore(dir).save({2, ""});
  save_snapshot(dir, 50, 2);
  Restarted r(dir);
  EXPECT_TRUE(r.state.report.log_reset);
  EXPECT_EQ(r.state.report.entries_discarded, 0u);
  EXPECT_EQ(r.log.first_index(), 51u);
  EXPECT_TRUE(r.state.recovered.entries.empty());
}

TEST_F(RestartTest, AnEmptyLogBelowTheSnapshotIsReset) {
  // A new node: its first snapshot, from the leader, was saved, and a crash
  // came before the reset.
  { SegmentedLog log(dir, kTinySegments); }
  MetaStore(dir).save({2, "n1"});
  save_snapshot(dir, 50, 2);
  {
    Restarted r(dir);
    EXPECT_TRUE(r.state.report.log_reset);
    EXPECT_EQ(r.log.first_index(), 51u);
    r.log.append(sized_entries(51, 51, 2));
    r.log.sync();
  }
  EXPECT_EQ(Restarted(dir).state.recovered.entries, sized_entries(51, 51, 2));
}

TEST_F(RestartTest, ALogEndingAtTheSnapshotWithAnotherTermIsResetSoLaterEntriesSurvive) {
  // Nothing follows the snapshot, so nothing is "discarded"; but if entry 20
  // of term 1 stayed, entries 21.. appended after the restart would follow a
  // stale entry, and the next restart would throw them away as stale too.
  write_entries(dir, sized_entries(1, 20, 1));
  MetaStore(dir).save({2, ""});
  save_snapshot(dir, 20, 2);
  {
    Restarted r(dir);
    EXPECT_TRUE(r.state.report.log_reset);
    EXPECT_EQ(r.log.first_index(), 21u);
    r.log.append(sized_entries(21, 25, 2));
    r.log.sync();
  }
  Restarted r(dir);
  EXPECT_FALSE(r.state.report.log_reset);
  EXPECT_EQ(r.state.recovered.entries, sized_entries(21, 25, 2));
}

TEST_F(RestartTest, ALogStartingAfterTheSnapshotIsRefused) {
  {
    SegmentedLog log(dir, kTinySegments);
    log.reset(30);
    log.append(sized_entries(31, 35));
    log.sync();
  }
  MetaStore(dir).save({1, ""});
  save_snapshot(dir, 10, 1);
  expect_refused(dir, {segment_path(31) + " starts the log at index 31 but the snapshot " + snapshot_path +
                           " ends at index 10: entries 11..30 are lost"});
  fs::remove(snapshot_path);
  expect_refused(dir, {segment_path(31) + " starts the log at index 31 but there is no snapshot (" + snapshot_path +
                           " is missing): entries 1..30 are lost"});
}

TEST_F(RestartTest, AMissingMetaIsRefusedNextToEntriesOrASnapshot) {
  write_entries(dir, sized_entries(1, 5));
  expect_refused(dir, {meta_path + " is missing but " + log_dir + " holds 5 entries"});
  SegmentedLog(dir, kTinySegments).reset(5);
  save_snapshot(dir, 5, 1);
  expect_refused(dir, {meta_path + " is missing but " + snapshot_path + " holds the state through index 5"});
}

TEST_F(RestartTest, AMetaTermBelowTheSnapshotTermIsRefused) {
  write_entries(dir, sized_entries(1, 5, 4));
  MetaStore(dir).save({3, "n1"});
  save_snapshot(dir, 5, 4);
  expect_refused(dir, {meta_path + " holds term 3, below term 4 of the snapshot " + snapshot_path});
}

TEST_F(RestartTest, ADamagedSnapshotIsRefusedBeforeTheLogIsReset) {
  write_entries(dir, sized_entries(1, 40, 1));
  MetaStore(dir).save({2, ""});
  save_snapshot(dir, 30, 2);  // a stale log: a good snapshot would reset it
  std::string bytes = read_bytes(snapshot_path);
  bytes.back() ^= 1;
  write_bytes(snapshot_path, bytes);
  expect_refused(dir, {"corrupt snapshot " + snapshot_path + " at offset 40"});
}

TEST_F(RestartTest, TheReportNamesWhatRecoveryRepaired) {
  write_entries(dir, sized_entries(1, 12));
  MetaStore(dir).save({1, ""});
  save_snapshot(dir, 4, 1);
  write_bytes(snapshot_path + ".tmp", std::string(77, 's'));  // an interrupted save
  std::string bytes = read_bytes(segment_path(9));           // a torn last record
  bytes[offset_of(sized_entries(9, 12), 12) + 40] ^= 0x10;
  write_bytes(segment_path(9), bytes);
  Restarted r(dir);
  const storage::RecoveryReport& report = r.state.report;
  EXPECT_TRUE(report.removed_snapshot_temp);
  EXPECT_EQ(report.removed_snapshot_temp_bytes, 77u);
  EXPECT_EQ(report.log.torn.records, 1u);
  EXPECT_EQ(report.log.torn.path, segment_path(9));
  EXPECT_EQ(report.log.torn.index, 12u);
  EXPECT_EQ(report.log_last_index, 11u);
  EXPECT_EQ(r.state.recovered.entries, sized_entries(5, 11));
  EXPECT_FALSE(fs::exists(snapshot_path + ".tmp"));
}

}  // namespace
