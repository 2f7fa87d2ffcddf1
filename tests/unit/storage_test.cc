#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "raft/types.h"
#include "storage/crc32c.h"
#include "storage/log_store.h"

namespace {

namespace fs = std::filesystem;
using raft::Entry;
using raft::EntryType;
using storage::LogStore;
using storage::MetaStore;
using storage::StorageError;

constexpr std::uint64_t kRecordOverheadBytes = 8 + 17;  // header + term/index/type

std::uint64_t record_bytes(const Entry& entry) { return kRecordOverheadBytes + entry.data.size(); }

Entry make_entry(raft::Term term, raft::Index index, std::string data = {},
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
std::vector<Entry> make_entries(raft::Index first, raft::Index last, raft::Term term = 1) {
  std::vector<Entry> entries;
  for (raft::Index i = first; i <= last; ++i) {
    std::string data;
    for (std::uint64_t j = 0; j < (i * 37) % 300; ++j) data.push_back(static_cast<char>((i + j) & 0xFF));
    entries.push_back(make_entry(term, i, std::move(data), i % 7 == 0 ? EntryType::Noop : EntryType::Command));
  }
  return entries;
}

std::uint64_t total_bytes(const std::vector<Entry>& entries) {
  std::uint64_t sum = 0;
  for (const Entry& entry : entries) sum += record_bytes(entry);
  return sum;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

void append_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Independent encoder of the documented record format, for crafting files.
std::string encode_record(const Entry& entry) {
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

void write_log(const std::string& dir, const std::vector<Entry>& entries) {
  LogStore store(dir);
  store.append(entries);
  store.sync();
}

std::vector<Entry> reopen_entries(const std::string& dir) {
  LogStore store(dir);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  return store.take_recovered();
}

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<unsigned> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("storage_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++) + "_" + info->name());
    fs::remove_all(dir_);
    dir = (dir_ / "n1").string();  // nested: the stores must create missing parents
    log_path = (dir_ / "n1" / "log").string();
    meta_path = (dir_ / "n1" / "meta").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir;
  std::string log_path;
  std::string meta_path;

 private:
  fs::path dir_;
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

// ---- LogStore: normal operation ---------------------------------------------

TEST_F(StorageTest, NewStoreCreatesDirectoryAndEmptyLog) {
  LogStore store(dir);
  EXPECT_TRUE(fs::exists(log_path));
  EXPECT_EQ(fs::file_size(log_path), 0u);
  EXPECT_EQ(store.last_index(), 0u);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_TRUE(store.take_recovered().empty());
}

TEST_F(StorageTest, RecordLayoutMatchesHeader) {
  const Entry entry = make_entry(0x0102030405060708ull, 1, std::string("a\0b", 3), EntryType::Command);
  write_log(dir, {entry});
  const std::string bytes = read_bytes(log_path);
  ASSERT_EQ(bytes, encode_record(entry));
  // Spot-check little-endian fields rather than trusting the helper alone.
  EXPECT_EQ(static_cast<unsigned char>(bytes[4]), 20);    // payload length = 17 + 3
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 0x08);  // term, low byte first
  EXPECT_EQ(static_cast<unsigned char>(bytes[16]), 1);    // index
  EXPECT_EQ(static_cast<unsigned char>(bytes[24]), 1);    // type Command
}

TEST_F(StorageTest, RoundTripsManyEntriesAcrossReopen) {
  const std::vector<Entry> all = make_entries(1, 2000, 3);
  {
    LogStore store(dir);
    for (std::size_t start = 0; start < all.size(); start += 137) {
      const std::size_t end = std::min(all.size(), start + 137);
      store.append(std::vector<Entry>(all.begin() + static_cast<std::ptrdiff_t>(start),
                                       all.begin() + static_cast<std::ptrdiff_t>(end)));
      store.sync();
    }
    EXPECT_EQ(store.last_index(), 2000u);
  }
  EXPECT_EQ(fs::file_size(log_path), total_bytes(all));
  LogStore store(dir);
  EXPECT_EQ(store.last_index(), 2000u);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.take_recovered(), all);
  EXPECT_TRUE(store.take_recovered().empty());  // moved out once
}

TEST_F(StorageTest, HandCraftedFileIsRecovered) {
  const std::vector<Entry> entries = make_entries(1, 5, 9);
  std::string bytes;
  for (const Entry& entry : entries) bytes += encode_record(entry);
  fs::create_directories(dir);
  write_bytes(log_path, bytes);
  EXPECT_EQ(reopen_entries(dir), entries);
}

TEST_F(StorageTest, TruncatesSuffixThenAppends) {
  std::vector<Entry> expected = make_entries(1, 10, 1);
  {
    LogStore store(dir);
    store.append(expected);
    // A new leader overwrites 6..10 with a shorter suffix of its own term.
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
  EXPECT_EQ(fs::file_size(log_path), total_bytes(expected));
  EXPECT_EQ(reopen_entries(dir), expected);
}

TEST_F(StorageTest, TruncatesWholeLogFromIndexOne) {
  write_log(dir, make_entries(1, 10, 1));
  {
    LogStore store(dir);
    store.append({make_entry(4, 1, "only")});
    store.sync();
  }
  EXPECT_EQ(reopen_entries(dir), std::vector<Entry>{make_entry(4, 1, "only")});
}

TEST_F(StorageTest, RejectsGapsWithoutTouchingTheLog) {
  write_log(dir, make_entries(1, 5));
  const std::string before = read_bytes(log_path);
  {
    LogStore store(dir);
    EXPECT_THROW(store.append({make_entry(1, 7)}), std::invalid_argument);
    EXPECT_THROW(store.append({make_entry(1, 0)}), std::invalid_argument);
    // Starts inside the log (would truncate) but has a hole: nothing may be cut.
    EXPECT_THROW(store.append({make_entry(2, 3), make_entry(2, 5)}), std::invalid_argument);
    EXPECT_EQ(store.last_index(), 5u);
    store.append({});  // empty batch is a no-op
    store.sync();
  }
  EXPECT_EQ(read_bytes(log_path), before);
}

TEST_F(StorageTest, RejectsOversizedEntry) {
  LogStore store(dir);
  EXPECT_THROW(store.append({make_entry(1, 1, std::string(1 << 20, 'x'))}), std::invalid_argument);
  EXPECT_EQ(store.last_index(), 0u);
  EXPECT_EQ(fs::file_size(log_path), 0u);
}

// ---- LogStore: torn tails -----------------------------------------------------

TEST_F(StorageTest, RecoversFromChoppedLastRecord) {
  const std::vector<Entry> entries = make_entries(1, 20);
  const std::uint64_t last_bytes = record_bytes(entries.back());
  const std::uint64_t full_bytes = total_bytes(entries);
  // Cut inside the payload, inside the header, and just after the header.
  for (const std::uint64_t chop : {std::uint64_t{1}, std::uint64_t{10}, last_bytes - 8, last_bytes - 3,
                                   last_bytes - 1}) {
    SCOPED_TRACE("chop " + std::to_string(chop));
    fs::remove_all(dir);
    write_log(dir, entries);
    fs::resize_file(log_path, full_bytes - chop);
    {
      LogStore store(dir);
      EXPECT_EQ(store.truncated_tail_bytes(), last_bytes - chop);
      EXPECT_EQ(store.last_index(), 19u);
      EXPECT_EQ(store.take_recovered(), std::vector<Entry>(entries.begin(), entries.end() - 1));
    }
    EXPECT_EQ(fs::file_size(log_path), full_bytes - last_bytes);
    EXPECT_EQ(reopen_entries(dir).size(), 19u);  // the cut was persisted
  }
}

TEST_F(StorageTest, RecoversFromGarbagePartialHeader) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  append_bytes(log_path, "\xAB\xCD\xEF\x12\x34");
  LogStore store(dir);
  EXPECT_EQ(store.truncated_tail_bytes(), 5u);
  EXPECT_EQ(store.take_recovered(), entries);
  EXPECT_EQ(fs::file_size(log_path), total_bytes(entries));
}

TEST_F(StorageTest, RecoversFromZeroFilledTail) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  append_bytes(log_path, std::string(4096, '\0'));
  LogStore store(dir);
  EXPECT_EQ(store.truncated_tail_bytes(), 4096u);
  EXPECT_EQ(store.take_recovered(), entries);
}

TEST_F(StorageTest, RecoversFromBadChecksumOnLastRecord) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  std::string bytes = read_bytes(log_path);
  bytes[bytes.size() - 1] ^= 0x40;
  write_bytes(log_path, bytes);
  LogStore store(dir);
  EXPECT_EQ(store.truncated_tail_bytes(), record_bytes(entries.back()));
  EXPECT_EQ(store.take_recovered(), std::vector<Entry>(entries.begin(), entries.end() - 1));
}

TEST_F(StorageTest, RecoversFromHeaderFollowedByZeros) {
  // The file grew but only the first block of the last write landed: a valid
  // header, then zeros where the payload and later records should be.
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  std::string bytes = read_bytes(log_path);
  const std::uint64_t last_offset = bytes.size() - record_bytes(entries.back());
  for (std::uint64_t i = last_offset + 8; i < bytes.size(); ++i) bytes[i] = '\0';
  bytes += std::string(1000, '\0');
  write_bytes(log_path, bytes);
  LogStore store(dir);
  EXPECT_EQ(store.truncated_tail_bytes(), record_bytes(entries.back()) + 1000);
  EXPECT_EQ(store.last_index(), 19u);
}

TEST_F(StorageTest, AppendsAfterTornTailRecovery) {
  std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  fs::resize_file(log_path, fs::file_size(log_path) - 4);
  const std::vector<Entry> more = make_entries(20, 30, 2);
  {
    LogStore store(dir);
    EXPECT_GT(store.truncated_tail_bytes(), 0u);
    EXPECT_EQ(store.last_index(), 19u);
    store.append(more);
    store.sync();
  }
  entries.pop_back();
  entries.insert(entries.end(), more.begin(), more.end());
  LogStore store(dir);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.last_index(), 30u);
  EXPECT_EQ(store.take_recovered(), entries);
}

// ---- LogStore: corruption -------------------------------------------------------

// Opening must fail, name the file and the record's offset, and leave the file
// untouched for inspection.
void expect_corrupt(const std::string& dir, const std::string& log_path, std::uint64_t offset,
                    const std::string& problem) {
  const std::string before = read_bytes(log_path);
  try {
    LogStore store(dir);
    ADD_FAILURE() << "opened a corrupt log";
  } catch (const StorageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(log_path), std::string::npos) << message;
    EXPECT_NE(message.find("offset " + std::to_string(offset) + ":"), std::string::npos) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << message;
  }
  EXPECT_EQ(read_bytes(log_path), before);
}

TEST_F(StorageTest, FlippedByteInEarlyRecordIsCorruption) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t third_offset = record_bytes(entries[0]) + record_bytes(entries[1]);
  std::string bytes = read_bytes(log_path);
  bytes[third_offset + 8 + 3] ^= 0x01;  // inside the term
  write_bytes(log_path, bytes);
  expect_corrupt(dir, log_path, third_offset, "checksum mismatch");
}

TEST_F(StorageTest, InsaneLengthInEarlyRecordIsCorruption) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t second_offset = record_bytes(entries[0]);
  std::string bytes = read_bytes(log_path);
  bytes[second_offset + 7] = '\x40';  // length's top byte: ~1 GiB
  write_bytes(log_path, bytes);
  expect_corrupt(dir, log_path, second_offset, "length");
}

TEST_F(StorageTest, IndexGapInFileIsCorruption) {
  std::string bytes;
  std::uint64_t fourth_offset = 0;
  for (raft::Index index : {1, 2, 3, 5, 6}) {
    if (index == 5) fourth_offset = bytes.size();
    bytes += encode_record(make_entry(1, index, "x"));
  }
  fs::create_directories(dir);
  write_bytes(log_path, bytes);
  expect_corrupt(dir, log_path, fourth_offset, "index 5");
}

TEST_F(StorageTest, BadRecordFollowedByGarbageIsCorruption) {
  // A damaged last record with non-zero bytes after it is not a torn write.
  const std::vector<Entry> entries = make_entries(1, 5);
  write_log(dir, entries);
  const std::uint64_t last_offset = total_bytes(entries) - record_bytes(entries.back());
  std::string bytes = read_bytes(log_path);
  bytes[last_offset + 10] ^= 0x01;
  write_bytes(log_path, bytes);
  append_bytes(log_path, std::string(100, '\0') + "x");
  expect_corrupt(dir, log_path, last_offset, "checksum mismatch");
}

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

}  // namespace
