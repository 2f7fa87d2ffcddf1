// node::BackgroundSnapshot: a forked child saves the state machine as of the
// fork (later changes in the parent do not leak into it) with the snapshot
// file's atomic protocol, the parent reads it back; a cancelled or destroyed
// one leaves no child and no temp file and never renames over a newer
// snapshot (the install path); a child that cannot write fails the node with
// a StorageError; the store removes a leftover snapshot.bg.tmp at start; a
// second thread makes it refuse to fork. Then the driver with it: one
// snapshot at a time, completed through poll_snapshot(), and cancelled by an
// installed snapshot or an admin request.
#include "node/background_snapshot.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kv/command.h"
#include "node/driver.h"
#include "storage/errors.h"
#include "storage/snapshot_store.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using node::BackgroundSnapshot;
using node::BackgroundSnapshotOptions;
using storage::SnapshotStore;

class BackgroundSnapshotTest : public ::testing::Test {
 protected:
  BackgroundSnapshotTest() {
    char pattern[] = "/tmp/background_snapshot_test_XXXXXX";
    dir = ::mkdtemp(pattern);
    snapshot_path = dir + "/snapshot";
    temp_path = dir + "/snapshot.bg.tmp";
  }
  ~BackgroundSnapshotTest() override { fs::remove_all(dir); }

  std::string dir;
  std::string snapshot_path;
  std::string temp_path;
  logging::Logger log{"test", logging::LogLevel::Error};
};

kv::Command set(const std::string& key, const std::string& value, std::uint64_t seq) {
  kv::Command c;
  c.client_id = "c1";
  c.seq = seq;
  c.op = wire::Op::Set;
  c.key = key;
  c.value = value;
  return c;
}

kv::StateMachine filled(std::size_t keys) {
  kv::StateMachine sm;
  for (std::size_t i = 1; i <= keys; ++i) sm.apply(i, set("key-" + std::to_string(i), std::string(100, 'v'), i));
  return sm;
}

// Polls until the snapshot is handed over (bounded, so a hung child fails
// the test instead of hanging it).
std::optional<node::Snapshotter::Finished> finish(BackgroundSnapshot& bg) {
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    if (std::optional<node::Snapshotter::Finished> done = bg.poll()) return done;
    std::this_thread::sleep_for(1ms);
  }
  return std::nullopt;
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

TEST_F(BackgroundSnapshotTest, AForkedChildSavesTheStateAsOfTheFork) {
  SnapshotStore store(dir);
  BackgroundSnapshot bg(store, log);
  kv::StateMachine sm = filled(2000);
  const std::string at_fork = sm.serialize();
  ASSERT_TRUE(bg.start({2000, 3}, sm));
  EXPECT_TRUE(bg.busy());
  const pid_t child = bg.child_pid();
  EXPECT_GT(child, 0);
  // The parent goes on: the child's copy-on-write image must not see this.
  sm.apply(2001, set("key-1", "changed after the fork", 2001));

  std::optional<node::Snapshotter::Finished> done = finish(bg);
  ASSERT_TRUE(done);
  EXPECT_FALSE(bg.busy());
  EXPECT_TRUE(process_gone(child));  // reaped, not a zombie
  EXPECT_EQ(done->snapshot.meta, (raft::SnapshotMeta{2000, 3}));
  ASSERT_TRUE(done->snapshot.data);
  EXPECT_EQ(*done->snapshot.data, at_fork);
  EXPECT_NE(done->figures.find("fork"), std::string::npos) << done->figures;
  EXPECT_NE(done->figures.find("serialize"), std::string::npos) << done->figures;

  // What the file holds is what was handed over, and the temp file is gone.
  const std::optional<raft::Snapshot> loaded = SnapshotStore(dir).load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->meta, done->snapshot.meta);
  EXPECT_EQ(*loaded->data, at_fork);
  EXPECT_FALSE(fs::exists(temp_path));
}

TEST_F(BackgroundSnapshotTest, ReadsBackInPiecesOverSeveralPolls) {
  SnapshotStore store(dir);
  BackgroundSnapshotOptions options;
  options.read_budget = 0us;  // one piece per poll
  options.read_piece_bytes = 4096;
  BackgroundSnapshot bg(store, log, options);
  const kv::StateMachine sm = filled(500);  // ~60 KB: 15 pieces
  ASSERT_TRUE(bg.start({500, 1}, sm));
  int polls = 0;
  std::optional<node::Snapshotter::Finished> done;
  while (!done && polls < 100000) {
    done = bg.poll();
    if (!bg.reading_back()) std::this_thread::sleep_for(1ms);
    ++polls;
  }
  ASSERT_TRUE(done);
  EXPECT_EQ(*done->snapshot.data, sm.serialize());
  EXPECT_NE(done->figures.find("in 15 turns"), std::string::npos) << done->figures;
}

// The install path: a snapshot from the leader is about to be saved, so the
// running child must be stopped first, for good.
TEST_F(BackgroundSnapshotTest, CancelStopsTheChildSoItNeverRenamesOverANewerSnapshot) {
  SnapshotStore store(dir);
  BackgroundSnapshotOptions options;
  options.child_start_delay = 2000ms;  // certainly not renamed yet
  BackgroundSnapshot bg(store, log, options);
  const kv::StateMachine sm = filled(100);
  ASSERT_TRUE(bg.start({100, 1}, sm));
  const pid_t child = bg.child_pid();
  ASSERT_GT(child, 0);
  // Its temp file, as a child killed mid-write would leave it.
  std::ofstream(temp_path) << "half a snapshot";

  bg.cancel("a snapshot from the leader replaces it");
  EXPECT_FALSE(bg.busy());
  EXPECT_TRUE(process_gone(child));
  EXPECT_FALSE(fs::exists(temp_path));
  EXPECT_FALSE(fs::exists(snapshot_path));

  store.save({{500, 2}, std::make_shared<const std::string>(filled(5).serialize())});
  std::this_thread::sleep_for(100ms);
  const std::optional<raft::Snapshot> loaded = SnapshotStore(dir).load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->meta.index, 500u);
  EXPECT_FALSE(bg.poll());  // nothing left to complete
  // And a new one may start after it.
  BackgroundSnapshot again(store, log);
  ASSERT_TRUE(again.start({600, 2}, sm));
  ASSERT_TRUE(finish(again));
  EXPECT_EQ(SnapshotStore(dir).load()->meta.index, 600u);
}

TEST_F(BackgroundSnapshotTest, DestroyingItKillsAndReapsTheChild) {
  SnapshotStore store(dir);
  pid_t child = 0;
  {
    BackgroundSnapshotOptions options;
    options.child_start_delay = 5000ms;
    BackgroundSnapshot bg(store, log, options);
    const kv::StateMachine sm = filled(10);
    ASSERT_TRUE(bg.start({10, 1}, sm));
    child = bg.child_pid();
  }
  EXPECT_TRUE(process_gone(child));
  EXPECT_FALSE(fs::exists(snapshot_path));
  EXPECT_FALSE(fs::exists(temp_path));
}

TEST_F(BackgroundSnapshotTest, AChildThatCannotWriteFailsWithAStorageErrorAndKeepsTheOldSnapshot) {
  SnapshotStore store(dir);
  store.save({{7, 1}, std::make_shared<const std::string>(filled(3).serialize())});
  // A directory where the temp file goes: the child's open() fails.
  fs::create_directory(temp_path);
  BackgroundSnapshot bg(store, log);
  const kv::StateMachine sm = filled(50);
  ASSERT_TRUE(bg.start({50, 1}, sm));
  std::string message;
  try {
    finish(bg);
  } catch (const storage::StorageError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("background snapshot at index 50 failed: writer exited with status 1"), std::string::npos)
      << message;
  EXPECT_NE(message.find(temp_path), std::string::npos) << message;
  EXPECT_FALSE(bg.busy());
  EXPECT_EQ(store.load()->meta.index, 7u);
}

TEST_F(BackgroundSnapshotTest, TheStoreRemovesALeftoverBackgroundTempAtStart) {
  {
    SnapshotStore store(dir);
    store.save({{7, 1}, std::make_shared<const std::string>(filled(3).serialize())});
  }
  std::ofstream(temp_path) << std::string(123, 'x');
  std::ofstream(snapshot_path + ".tmp") << std::string(7, 'y');
  SnapshotStore store(dir);
  EXPECT_TRUE(store.removed_temp());
  EXPECT_EQ(store.removed_temp_bytes(), 130u);
  EXPECT_EQ(store.removed_temp_files(), (std::vector<std::string>{snapshot_path + ".tmp", temp_path}));
  EXPECT_FALSE(fs::exists(temp_path));
  EXPECT_EQ(store.load()->meta.index, 7u);  // the real one is untouched
  EXPECT_FALSE(SnapshotStore(dir).removed_temp());
}

TEST_F(BackgroundSnapshotTest, RefusesToForkWhenTheProcessHasASecondThread) {
  SnapshotStore store(dir);
  BackgroundSnapshot bg(store, log);
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  std::thread other([&] {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return release; });
  });
  const kv::StateMachine sm = filled(10);
  EXPECT_FALSE(bg.start({10, 1}, sm));
  EXPECT_FALSE(bg.busy());
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_one();
  other.join();
}

// ---- with the driver ----

struct Recorder : node::Storage, node::Transport {
  std::vector<raft::Index> saved;      // save_snapshot
  std::vector<raft::Index> compacted;  // compact_log
  void save_hard_state(const raft::HardState&) override {}
  void append(const std::vector<raft::Entry>&) override {}
  void sync() override {}
  void save_snapshot(const raft::Snapshot& s) override { saved.push_back(s.meta.index); }
  void compact_log(raft::Index through) override { compacted.push_back(through); }
  void reset_log(raft::Index) override {}
  void send(const raft::Message&) override {}
  void reply(const net::Endpoint&, const wire::ClientReply&) override {}
};

raft::Entry command_entry(raft::Index index, const std::string& key) {
  raft::Entry e;
  e.term = 1;
  e.index = index;
  e.data = kv::encode(set(key, "value", index));
  return e;
}

// Follower n2 of {n1, n2, n3}: leader n1 sends entries, then a snapshot.
struct Follower {
  Follower(const SnapshotStore& store, const logging::Logger& log, BackgroundSnapshotOptions options)
      : bg(store, log, options), driver(config(), raft::Recovered{}, io, io, log, driver_options(), nullptr, &bg) {}

  static raft::Config config() {
    raft::Config c;
    c.id = "n2";
    c.peers = {"n1", "n3"};
    return c;
  }
  static node::DriverOptions driver_options() {
    node::DriverOptions o;
    o.snapshot_threshold_entries = 5;
    return o;
  }
  // Entries first..last from n1, all committed.
  void append(raft::Index first, raft::Index last) {
    raft::Message m;
    m.type = raft::MessageType::AppendEntries;
    m.from = "n1";
    m.to = "n2";
    m.term = 1;
    m.prev_log_index = first - 1;
    m.prev_log_term = first > 1 ? 1 : 0;
    for (raft::Index i = first; i <= last; ++i) m.entries.push_back(command_entry(i, "k" + std::to_string(i)));
    m.leader_commit = last;
    driver.step(m);
    driver.process_ready();
  }

  Recorder io;
  BackgroundSnapshot bg;
  node::Driver driver;
};

TEST_F(BackgroundSnapshotTest, TheDriverTakesOneAtATimeAndCompletesItThroughPoll) {
  SnapshotStore store(dir);
  Follower f(store, log, {});
  f.append(1, 6);  // past the threshold of 5: started, not taken yet
  ASSERT_TRUE(f.bg.busy());
  EXPECT_EQ(f.bg.started(), (raft::SnapshotMeta{6, 1}));
  EXPECT_EQ(f.driver.core().snapshot().meta.index, 0u);
  const pid_t child = f.bg.child_pid();
  f.append(7, 14);  // another threshold's worth: no second child
  EXPECT_TRUE(f.bg.busy());
  EXPECT_EQ(f.bg.started().index, 6u);
  EXPECT_TRUE(f.bg.child_pid() == child || f.bg.reading_back() || f.bg.child_pid() == 0);

  const auto until = std::chrono::steady_clock::now() + 30s;
  while (f.bg.busy() && std::chrono::steady_clock::now() < until) {
    f.driver.poll_snapshot();
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_FALSE(f.bg.busy());
  EXPECT_EQ(f.driver.core().snapshot().meta, (raft::SnapshotMeta{6, 1}));
  EXPECT_TRUE(f.io.saved.empty());  // the child saved it, not the loop
  EXPECT_FALSE(f.io.compacted.empty());
  EXPECT_EQ(SnapshotStore(dir).load()->meta.index, 6u);
  // The state as of index 6 exactly, though 14 were applied when it finished.
  kv::StateMachine at6;
  for (raft::Index i = 1; i <= 6; ++i) at6.apply(i, set("k" + std::to_string(i), "value", i));
  EXPECT_EQ(*f.driver.core().snapshot().data, at6.serialize());
  // The next threshold starts the next one (8 entries applied since 6).
  f.append(15, 15);
  EXPECT_TRUE(f.bg.busy());
  EXPECT_EQ(f.bg.started().index, 15u);
}

TEST_F(BackgroundSnapshotTest, AnInstalledSnapshotCancelsTheRunningChildFirst) {
  SnapshotStore store(dir);
  BackgroundSnapshotOptions options;
  options.child_start_delay = 2000ms;
  Follower f(store, log, options);
  f.append(1, 6);
  ASSERT_TRUE(f.bg.busy());
  const pid_t child = f.bg.child_pid();
  ASSERT_GT(child, 0);

  kv::StateMachine leader;
  for (raft::Index i = 1; i <= 20; ++i) leader.apply(i, set("k" + std::to_string(i), "value", i));
  raft::Message m;
  m.type = raft::MessageType::InstallSnapshot;
  m.from = "n1";
  m.to = "n2";
  m.term = 1;
  m.last_included_index = 20;
  m.last_included_term = 1;
  m.data = leader.serialize();
  m.total_bytes = m.data.size();
  m.done = true;
  f.driver.step(m);
  f.driver.process_ready();

  EXPECT_FALSE(f.bg.busy());
  EXPECT_TRUE(process_gone(child));
  EXPECT_EQ(f.io.saved, (std::vector<raft::Index>{20}));
  EXPECT_EQ(f.driver.last_applied(), 20u);
  EXPECT_FALSE(fs::exists(snapshot_path));  // the child never renamed
  EXPECT_FALSE(fs::exists(temp_path));
  f.driver.poll_snapshot();  // nothing to complete
  EXPECT_EQ(f.driver.core().snapshot().meta.index, 20u);
}

TEST_F(BackgroundSnapshotTest, AnAdminSnapshotCancelsTheRunningChildAndIsTakenSynchronously) {
  SnapshotStore store(dir);
  BackgroundSnapshotOptions options;
  options.child_start_delay = 2000ms;
  Follower f(store, log, options);
  f.append(1, 6);
  ASSERT_TRUE(f.bg.busy());
  const pid_t child = f.bg.child_pid();
  f.append(7, 8);
  EXPECT_EQ(f.driver.take_snapshot(), 8u);
  EXPECT_FALSE(f.bg.busy());
  EXPECT_TRUE(process_gone(child));
  EXPECT_EQ(f.io.saved, (std::vector<raft::Index>{8}));
  EXPECT_EQ(f.driver.core().snapshot().meta.index, 8u);
}

}  // namespace
