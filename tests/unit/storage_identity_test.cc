// Storage, part 3: everything in a data directory besides the log's records:
// the meta file (term and vote), the identity file that binds the directory
// to one cluster and node, checks that refuse a directory missing a piece,
// full disks, and the free-space reserve.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "storage/disk_space.h"
#include "storage/file_io.h"
#include "storage/identity.h"
#include "storage/segmented_log.h"
#include "storage_testing.h"

namespace {

using namespace storage_testing;

class StorageTest : public StorageFixture {
 protected:
  StorageTest() : StorageFixture("storage_identity_test_") {}
};

// ---- MetaStore ---------------------------------------------------------------

TEST_F(StorageTest, MetaDefaultsWhenAbsent) {
  MetaStore meta(dir);
  EXPECT_EQ(meta.load(), raft::HardState{});
  EXPECT_FALSE(fs::exists(meta_path));
}

TEST_F(StorageTest, MetaRoundTripsAcrossInstances) {
  {
    MetaStore meta(dir);
    meta.save({7, "n2"});
    EXPECT_EQ(meta.load(), (raft::HardState{7, "n2"}));
    meta.save({0xFFFFFFFFFFFFFFFFull, std::string("n\0x", 3)});
  }
  EXPECT_EQ(MetaStore(dir).load(), (raft::HardState{0xFFFFFFFFFFFFFFFFull, std::string("n\0x", 3)}));
  MetaStore(dir).save({8, ""});
  EXPECT_EQ(MetaStore(dir).load(), (raft::HardState{8, ""}));
  EXPECT_FALSE(fs::exists(meta_path + ".tmp"));
}

TEST_F(StorageTest, MetaFlippedByteThrows) {
  MetaStore meta(dir);
  meta.save({42, "node-3"});
  const std::string good = read_bytes(meta_path);
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x10;
    write_bytes(meta_path, bad);
    try {
      (void)meta.load();
      ADD_FAILURE() << "accepted meta with byte " << i << " flipped";
    } catch (const StorageError& e) {
      EXPECT_NE(std::string(e.what()).find(meta_path), std::string::npos) << e.what();
    }
  }
}

TEST_F(StorageTest, MetaShortOrOverlongFileThrows) {
  MetaStore meta(dir);
  meta.save({42, "node-3"});
  const std::string good = read_bytes(meta_path);
  for (const std::string& bad : {std::string(), good.substr(0, 5), good.substr(0, good.size() - 1), good + "x"}) {
    write_bytes(meta_path, bad);
    try {
      (void)meta.load();
      ADD_FAILURE() << "accepted meta of " << bad.size() << " bytes";
    } catch (const StorageError& e) {
      EXPECT_NE(std::string(e.what()).find(meta_path), std::string::npos) << e.what();
    }
  }
}

TEST_F(StorageTest, MetaSaveReplacesLeftoverTempFile) {
  MetaStore meta(dir);
  write_bytes(meta_path + ".tmp", std::string(500, 'z'));  // crash mid-save
  EXPECT_EQ(meta.load(), raft::HardState{});
  meta.save({3, "n1"});
  EXPECT_EQ(meta.load(), (raft::HardState{3, "n1"}));
}

TEST_F(StorageTest, MetaMissingWithEntriesInTheLogIsRefused) {
  MetaStore meta(dir);
  EXPECT_EQ(meta.load(0), raft::HardState{});  // fresh node: term 0
  EXPECT_NO_THROW(storage::check_meta_present(dir, 0));
  const std::string message = error_of([&] { (void)meta.load(1000); });
  EXPECT_EQ(message, meta_path + " is missing but " + log_dir +
                         " holds 1000 entries: the term and vote are lost, so this node could vote twice in a "
                         "term; refusing to start");
  EXPECT_TRUE(contains(error_of([&] { storage::check_meta_present(dir, 1); }), meta_path));
  EXPECT_FALSE(fs::exists(meta_path));  // nothing was "repaired"
  meta.save({5, "n2"});
  EXPECT_EQ(meta.load(1000), (raft::HardState{5, "n2"}));
}

// ---- identity ------------------------------------------------------------------

std::string encode_identity(const std::string& cluster, const std::string& node) {
  std::string bytes = "RKVID001";
  bytes.push_back(static_cast<char>(cluster.size()));
  bytes += cluster;
  bytes.push_back(static_cast<char>(node.size()));
  bytes += node;
  put_le(bytes, storage::crc32c(bytes.data(), bytes.size()), 4);
  return bytes;
}

TEST_F(StorageTest, FirstStartWritesIdentityLaterStartsCheckIt) {
  EXPECT_TRUE(storage::check_identity(dir, "c1", "n1"));
  EXPECT_EQ(read_bytes(identity_path), encode_identity("c1", "n1"));
  EXPECT_FALSE(fs::exists(identity_path + ".tmp"));
  EXPECT_FALSE(storage::check_identity(dir, "c1", "n1"));
  // The normal life of a node: identity, then stores, then restart.
  write_log(dir, make_entries(1, 3));
  MetaStore(dir).save({1, "n1"});
  EXPECT_FALSE(storage::check_identity(dir, "c1", "n1"));
  EXPECT_EQ(read_bytes(identity_path), encode_identity("c1", "n1"));
}

TEST_F(StorageTest, IdentityOfAnotherNodeOrClusterIsRefused) {
  const std::string long_id(64, 'z');
  ASSERT_TRUE(storage::check_identity(dir, long_id, "n1"));
  for (const auto& [cluster, node] : {std::pair<std::string, std::string>{long_id, "n2"}, {"c2", "n1"}}) {
    const std::string message = error_of([&] { storage::check_identity(dir, cluster, node); });
    EXPECT_EQ(message, identity_path + " belongs to cluster \"" + long_id +
                           "\" node \"n1\", but this node is cluster \"" + cluster + "\" node \"" + node +
                           "\": this data directory is another node's; refusing to start");
  }
  EXPECT_THROW(storage::check_identity(dir, "", "n1"), std::invalid_argument);
  EXPECT_THROW(storage::check_identity(dir, "c1", std::string(65, 'n')), std::invalid_argument);
}

TEST_F(StorageTest, DeletedLogNextToMetaOrSnapshotIsRefused) {
  ASSERT_TRUE(storage::check_identity(dir, "c1", "n1"));
  // A crash between writing the identity and creating the log is harmless:
  // with no meta yet, nothing was ever acknowledged.
  EXPECT_FALSE(storage::check_identity(dir, "c1", "n1"));
  write_log(dir, make_entries(1, 5));
  MetaStore(dir).save({3, "n2"});
  fs::remove_all(log_dir);
  EXPECT_EQ(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
            log_dir + " is missing but " + (fs::path(dir) / "meta").string() +
                " exists: the log was deleted, and starting with an empty one would lose acknowledged entries; "
                "refusing to start");
  EXPECT_FALSE(fs::exists(log_dir)) << "the check must not re-create the log";
  // A snapshot is only ever saved next to a log too.
  fs::remove(meta_path);
  write_bytes(snapshot_path, "any bytes: only its presence counts here");
  EXPECT_EQ(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
            log_dir + " is missing but " + snapshot_path +
                " exists: the log was deleted, and starting with an empty one would lose acknowledged entries; "
                "refusing to start");
  EXPECT_FALSE(fs::exists(log_dir));
}

TEST_F(StorageTest, CorruptIdentityIsRefused) {
  ASSERT_TRUE(storage::check_identity(dir, "c1", "n1"));
  const std::string good = read_bytes(identity_path);
  std::vector<std::string> bad_files = {"", good.substr(0, good.size() - 1), good + "x"};
  for (std::size_t i = 0; i < good.size(); ++i) {
    bad_files.push_back(good);
    bad_files.back()[i] ^= 0x01;
  }
  for (const std::string& bad : bad_files) {
    write_bytes(identity_path, bad);
    const std::string message = error_of([&] { storage::check_identity(dir, "c1", "n1"); });
    EXPECT_TRUE(contains(message, "corrupt identity file " + identity_path)) << message;
    EXPECT_EQ(read_bytes(identity_path), bad);
  }
}

TEST_F(StorageTest, MissingIdentityWithStateIsRefused) {
  write_log(dir, make_entries(1, 12));
  const std::string log_before = read_bytes(seg_path);
  EXPECT_EQ(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
            identity_path + " is missing but " + log_dir +
                " holds 12 entries: this data directory was not made by this node (or by an older version); "
                "refusing to start");
  EXPECT_FALSE(fs::exists(identity_path));
  EXPECT_EQ(read_bytes(seg_path), log_before);

  // Logs of the previous versions: one file, with or without a header.
  fs::remove_all(log_dir);
  write_bytes(log_dir, encode_records(make_entries(1, 5)));
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }), "holds 5 entries"));
  write_bytes(log_dir, encode_old_file_header() + encode_records(make_entries(1, 6)));
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }), "holds 6 entries"));
  write_bytes(log_dir, "junk");
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }), "holds 4 bytes of data"));

  fs::remove(log_dir);
  MetaStore(dir).save({3, "n2"});
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
                       identity_path + " is missing but " + meta_path + " exists"));
  fs::remove(meta_path);
  write_bytes(snapshot_path, "x");
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
                       identity_path + " is missing but " + snapshot_path + " exists"));
  EXPECT_FALSE(fs::exists(identity_path));
}

TEST_F(StorageTest, MissingIdentityWithoutStateIsCreated) {
  // Old single-file logs that are empty, header-only or all zeros hold
  // nothing: a fresh node. The check leaves them as they are.
  for (const std::string& log : {std::string(), encode_old_file_header(), std::string(5000, '\0')}) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_bytes(log_dir, log);
    EXPECT_TRUE(storage::check_identity(dir, "c1", "n1")) << log.size();
    EXPECT_EQ(read_bytes(log_dir), log);
  }
  // So does a log directory whose segments hold no record (a crash right
  // after the first start created it).
  fs::remove_all(dir);
  { SegmentedLog log(dir, kSmallChunks); }
  const std::string segment = read_bytes(seg_path);
  EXPECT_TRUE(storage::check_identity(dir, "c1", "n1"));
  EXPECT_EQ(read_bytes(seg_path), segment);
}

// ---- disk full -----------------------------------------------------------------

TEST(DiskFullTest, EnospcAndEdquotAreDiskFullOtherErrorsAreNot) {
  // A real ENOSPC from the log's fallocate or pwrite needs a small file
  // system (a root-only mount); this checks the classification they all use.
  for (const int err : {ENOSPC, EDQUOT}) {
    try {
      storage::io::throw_io("cannot write", "data/n1/log", err);
    } catch (const DiskFull& e) {
      EXPECT_TRUE(contains(e.what(), "cannot write data/n1/log")) << e.what();
      EXPECT_TRUE(contains(e.what(), "the disk is full")) << e.what();
    }
  }
  try {
    storage::io::throw_io("cannot write", "data/n1/log", EIO);
  } catch (const DiskFull&) {
    ADD_FAILURE() << "EIO classified as a full disk";
  } catch (const StorageError& e) {
    EXPECT_TRUE(contains(e.what(), "cannot write data/n1/log")) << e.what();
  }
}

TEST_F(StorageTest, FullDiskDuringMetaOrIdentityWriteIsDiskFull) {
  // /dev/full fails every write with a real ENOSPC; the temporary file of an
  // atomic write is pointed at it.
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  fs::create_directories(dir);
  fs::create_symlink("/dev/full", meta_path + ".tmp");
  MetaStore meta(dir);
  try {
    meta.save({1, "n1"});
    ADD_FAILURE() << "wrote to a full disk";
  } catch (const DiskFull& e) {
    EXPECT_TRUE(contains(e.what(), meta_path + ".tmp")) << e.what();
  }
  EXPECT_FALSE(fs::exists(meta_path));
  fs::create_symlink("/dev/full", identity_path + ".tmp");
  EXPECT_THROW(storage::check_identity(dir, "c1", "n1"), DiskFull);
  EXPECT_FALSE(fs::exists(identity_path));
}

TEST_F(StorageTest, ReserveIsCreatedReleasedAndRecreated) {
  const std::string reserve_path = dir + "/reserve";
  const std::uint64_t reserve_bytes = 1 << 20;
  EXPECT_FALSE(storage::disk_nearly_full(fs::temp_directory_path().string(), 0));
  EXPECT_TRUE(storage::ensure_reserve(dir, reserve_bytes, 0));
  EXPECT_EQ(fs::file_size(reserve_path), reserve_bytes);
  struct stat st {};
  ASSERT_EQ(::stat(reserve_path.c_str(), &st), 0);
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, reserve_bytes);  // allocated, not sparse
  EXPECT_FALSE(storage::ensure_reserve(dir, reserve_bytes, 0));  // already there
  EXPECT_GE(storage::release_reserve(dir), reserve_bytes);
  EXPECT_FALSE(fs::exists(reserve_path));
  EXPECT_EQ(storage::release_reserve(dir), 0u);
  // Not re-created while free space is short, then re-created when it allows.
  const std::uint64_t more_than_the_disk = std::uint64_t{1} << 62;
  EXPECT_TRUE(storage::disk_nearly_full(dir, more_than_the_disk));
  EXPECT_FALSE(storage::ensure_reserve(dir, reserve_bytes, more_than_the_disk));
  EXPECT_FALSE(fs::exists(reserve_path));
  EXPECT_TRUE(storage::ensure_reserve(dir, reserve_bytes, 0));
}

TEST_F(StorageTest, PrepareDataDirReleasesTheReserveOnANearlyFullDisk) {
  storage::DataDirOptions options;
  options.reserve_bytes = 1 << 20;
  options.min_free_bytes = 0;
  const storage::DataDirState first = storage::prepare_data_dir(dir, "c1", "n1", options);
  EXPECT_TRUE(first.identity_created);
  EXPECT_TRUE(first.reserve_created);
  EXPECT_EQ(first.reserve_released_bytes, 0u);
  options.min_free_bytes = std::uint64_t{1} << 62;  // "nearly full"
  const storage::DataDirState full = storage::prepare_data_dir(dir, "c1", "n1", options);
  EXPECT_FALSE(full.identity_created);
  EXPECT_FALSE(full.reserve_created);
  EXPECT_GE(full.reserve_released_bytes, options.reserve_bytes);
  EXPECT_FALSE(fs::exists(dir + "/reserve"));
  options.min_free_bytes = 0;
  EXPECT_TRUE(storage::prepare_data_dir(dir, "c1", "n1", options).reserve_created);
  EXPECT_THROW(storage::prepare_data_dir(dir, "c1", "n2", options), StorageError);
}

}  // namespace
