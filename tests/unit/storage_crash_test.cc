// Crashes at every step of every operation that deletes, cuts, rolls or
// replaces: each operation runs with a simulated crash after k file
// operations (storage/crash_points.h), for k = 0, 1, ... until it completes,
// and after each crash the directory is reopened as a restarted node would.
// Every crash must recover, to the old state or the new one (or, where an
// operation removes step by step, to a state in between that loses nothing
// the caller relied on), and never lose an entry that was synced before the
// operation began, unless a snapshot covers it.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/crash_points.h"
#include "storage/recovery.h"
#include "storage_testing.h"

namespace {

using namespace storage_testing;
using storage::SnapshotStore;
namespace crash_points = storage::crash_points;

class CrashTest : public StorageFixture {
 protected:
  CrashTest() : StorageFixture("storage_crash_test_") {}

  // prepare() builds the state before the operation (no crash); operation()
  // opens what it needs and runs; check(finished) reopens and judges. Fails
  // unless the operation had at least min_steps crash points.
  void crash_at_every_step(const std::function<void()>& prepare, const std::function<void()>& operation,
                           const std::function<void(bool finished)>& check, std::uint64_t min_steps) {
    for (std::uint64_t k = 0;; ++k) {
      SCOPED_TRACE("crash after " + std::to_string(k) + " steps");
      fs::remove_all(dir);
      prepare();
      bool finished = false;
      crash_points::arm(k);
      try {
        operation();
        finished = true;
      } catch (const crash_points::SimulatedCrash&) {
      }
      crash_points::disarm();
      check(finished);
      if (finished) {
        EXPECT_GE(k, min_steps) << "too few crash points: the operation was not exercised";
        RecordProperty("steps", static_cast<int>(k));
        return;
      }
      if (HasFatalFailure()) return;
      ASSERT_LT(k, 100000u) << "the operation never finished";
    }
  }
};

const LogOptions kTinySegments{kChunkBytes, 1000};  // 8 records of 125 bytes per segment

std::vector<Entry> sized_entries(raft::Index first, raft::Index last, raft::Term term = 1) {
  std::vector<Entry> entries;
  for (raft::Index i = first; i <= last; ++i) entries.push_back(make_entry(term, i, std::string(100, 'c')));
  return entries;
}

std::vector<Entry> concat(std::vector<Entry> a, const std::vector<Entry>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void write_entries(const std::string& dir, const std::vector<Entry>& entries) {
  SegmentedLog log(dir, kTinySegments);
  for (const Entry& entry : entries) log.append({entry});
  log.sync();
}

raft::Snapshot make_snapshot(raft::Index index, raft::Term term, std::size_t bytes = 3000) {
  return {{index, term}, std::make_shared<const std::string>(std::string(bytes, static_cast<char>('0' + index % 10)))};
}

struct Restarted {
  explicit Restarted(const std::string& dir)
      : snapshots(dir), log(dir, kTinySegments), meta(dir), state(storage::recover_data_dir(snapshots, log, meta)) {}
  SnapshotStore snapshots;
  SegmentedLog log;
  MetaStore meta;
  storage::RecoveredState state;
};

// ---- the log alone -----------------------------------------------------------------

TEST_F(CrashTest, CreatingTheLog) {
  crash_at_every_step([] {}, [&] { SegmentedLog log(dir, kTinySegments); },
                      [&](bool) {
                        SegmentedLog log(dir, kTinySegments);
                        EXPECT_EQ(log.first_index(), 1u);
                        EXPECT_EQ(log.last_index(), 0u);
                        EXPECT_FALSE(fs::exists(log_dir + ".tmp"));
                      }, 6);
}

TEST_F(CrashTest, RollingAcrossSegments) {
  crash_at_every_step([&] { write_entries(dir, sized_entries(1, 6)); },
                      [&] {
                        SegmentedLog log(dir, kTinySegments);
                        log.append(sized_entries(7, 30));
                        log.sync();
                      },
                      [&](bool finished) {
                        const std::vector<Entry> got = SegmentedLog(dir, kTinySegments).take_recovered();
                        ASSERT_GE(got.size(), 6u);
                        EXPECT_EQ(got, sized_entries(1, got.size()));
                        if (finished) {
          EXPECT_EQ(got.size(), 30u);
        }
                      }, 17);
}

TEST_F(CrashTest, CompactingDeletesOldestFirstAndLeavesNoGap) {
  crash_at_every_step([&] { write_entries(dir, sized_entries(1, 40)); },
                      [&] { SegmentedLog(dir, kTinySegments).compact(30); },
                      [&](bool finished) {
                        SegmentedLog log(dir, kTinySegments);
                        const raft::Index first = log.first_index();
                        EXPECT_TRUE(first == 1 || first == 9 || first == 17 || first == 25) << first;
                        EXPECT_EQ(log.take_recovered(), sized_entries(first, 40));  // nothing after 30 lost
                        if (finished) {
          EXPECT_EQ(first, 25u);
        }
                      }, 4);
}

TEST_F(CrashTest, ResettingLeavesTheOldLogOrTheNewEmptyOne) {
  for (const raft::Index after : {raft::Index{20}, raft::Index{50}}) {
    SCOPED_TRACE(after);
    crash_at_every_step([&] { write_entries(dir, sized_entries(1, 40)); },
                        [&] { SegmentedLog(dir, kTinySegments).reset(after); },
                        [&](bool finished) {
                          SegmentedLog log(dir, kTinySegments);
                          const std::vector<Entry> got = log.take_recovered();
                          if (log.first_index() == 1 && !finished) {
                            EXPECT_EQ(got, sized_entries(1, 40));  // the old log, whole
                          } else {
                            EXPECT_EQ(log.first_index(), after + 1);
                            EXPECT_TRUE(got.empty());
                          }
                        }, 13);
  }
}

TEST_F(CrashTest, ReplacingASuffixAcrossSegmentsNeverSplicesOldAfterNew) {
  const std::vector<Entry> old_entries = sized_entries(1, 40, 1);
  const std::vector<Entry> replacement = sized_entries(12, 20, 2);
  crash_at_every_step([&] { write_entries(dir, old_entries); },
                      [&] {
                        SegmentedLog log(dir, kTinySegments);
                        log.append(replacement);
                        log.sync();
                      },
                      [&](bool finished) {
                        const std::vector<Entry> got = SegmentedLog(dir, kTinySegments).take_recovered();
                        ASSERT_GE(got.size(), 11u) << "entries before the replaced suffix were lost";
                        const bool old_prefix = got == sized_entries(1, got.size(), 1);
                        const bool new_prefix = got.size() <= 20 &&
                                                got == concat(sized_entries(1, 11, 1), sized_entries(12, got.size(), 2));
                        EXPECT_TRUE(old_prefix || new_prefix) << "a splice of " << got.size() << " entries";
                        if (finished) {
          EXPECT_EQ(got, concat(sized_entries(1, 11, 1), replacement));
        }
                      }, 13);
}

// ---- the snapshot ----------------------------------------------------------------------

TEST_F(CrashTest, SavingASnapshotLeavesTheOldOneOrTheNewOne) {
  crash_at_every_step([&] { SnapshotStore(dir).save(make_snapshot(10, 1)); },
                      [&] { SnapshotStore(dir).save(make_snapshot(20, 2, 100000)); },
                      [&](bool finished) {
                        SnapshotStore store(dir);
                        EXPECT_FALSE(fs::exists(snapshot_path + ".tmp"));
                        const std::optional<raft::Snapshot> loaded = store.load();
                        ASSERT_TRUE(loaded);
                        const raft::Snapshot expected = make_snapshot(loaded->meta.index == 20 ? 20 : 10,
                                                                      loaded->meta.index == 20 ? 2 : 1,
                                                                      loaded->meta.index == 20 ? 100000 : 3000);
                        EXPECT_EQ(loaded->meta, expected.meta);
                        EXPECT_EQ(*loaded->data, *expected.data);
                        if (finished) {
          EXPECT_EQ(loaded->meta.index, 20u);
        }
                      }, 5);
}

// ---- the node's sequences: snapshot, then the log behind it ------------------------------

TEST_F(CrashTest, TakingASnapshotThenCompacting) {
  // Driver::take_snapshot: save, then compact; the log's entries after the
  // snapshot, or all of them without it, must always be there.
  crash_at_every_step(
      [&] {
        write_entries(dir, sized_entries(1, 40));
        MetaStore(dir).save({1, "n1"});
      },
      [&] {
        SnapshotStore snapshots(dir);
        SegmentedLog log(dir, kTinySegments);
        snapshots.save(make_snapshot(30, 1));
        log.compact(30);
      },
      [&](bool finished) {
        Restarted r(dir);
        const raft::Recovered& got = r.state.recovered;
        const raft::Index base = got.snapshot ? got.snapshot->meta.index : 0;
        EXPECT_TRUE(base == 0 || base == 30) << base;
        EXPECT_EQ(got.entries, sized_entries(base + 1, 40));
        EXPECT_FALSE(r.state.report.log_reset);
        if (finished) {
          EXPECT_EQ(r.log.first_index(), 25u);
        }
      }, 9);
}

TEST_F(CrashTest, InstallingASnapshotThatReplacesAStaleLog) {
  // Driver::install_snapshot with a log that does not match: save, then reset.
  crash_at_every_step(
      [&] {
        write_entries(dir, sized_entries(1, 40, 1));
        MetaStore(dir).save({3, "n2"});
      },
      [&] {
        SnapshotStore snapshots(dir);
        SegmentedLog log(dir, kTinySegments);
        snapshots.save(make_snapshot(50, 3));
        log.reset(50);
      },
      [&](bool) {
        Restarted r(dir);
        const raft::Recovered& got = r.state.recovered;
        if (!got.snapshot) {
          EXPECT_EQ(got.entries, sized_entries(1, 40));
          return;
        }
        EXPECT_EQ(got.snapshot->meta, (raft::SnapshotMeta{50, 3}));
        EXPECT_TRUE(got.entries.empty());
        EXPECT_EQ(r.log.first_index(), 51u);  // reset by the operation, or by recovery
        // And a restart after that finds nothing left to repair.
        r.log.append(sized_entries(51, 52, 3));
        r.log.sync();
      }, 18);
}

TEST_F(CrashTest, InstallingASnapshotThatKeepsTheMatchingSuffix) {
  // Driver::install_snapshot with a log holding the snapshot's last entry:
  // save, then compact; the suffix after it is the leader's and stays.
  crash_at_every_step(
      [&] {
        write_entries(dir, sized_entries(1, 40, 1));
        MetaStore(dir).save({1, ""});
      },
      [&] {
        SnapshotStore snapshots(dir);
        SegmentedLog log(dir, kTinySegments);
        snapshots.save(make_snapshot(20, 1));
        log.compact(20);
      },
      [&](bool) {
        Restarted r(dir);
        const raft::Index base = r.state.recovered.snapshot ? 20 : 0;
        EXPECT_EQ(r.state.recovered.entries, sized_entries(base + 1, 40));
      }, 8);
}

TEST_F(CrashTest, RecoveryItselfResettingAStaleLog) {
  // A restart that crashes while recovery resets the log is finished by the next.
  crash_at_every_step(
      [&] {
        write_entries(dir, sized_entries(1, 40, 1));
        MetaStore(dir).save({2, ""});
        SnapshotStore(dir).save(make_snapshot(30, 2));
      },
      [&] { Restarted r(dir); },
      [&](bool) {
        Restarted r(dir);
        ASSERT_TRUE(r.state.recovered.snapshot);
        EXPECT_EQ(r.state.recovered.snapshot->meta.index, 30u);
        EXPECT_TRUE(r.state.recovered.entries.empty());
        EXPECT_EQ(r.log.first_index(), 31u);
      }, 15);
}

}  // namespace
