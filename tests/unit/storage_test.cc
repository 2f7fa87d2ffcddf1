#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
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
#include "storage/disk_space.h"
#include "storage/file_io.h"
#include "storage/identity.h"
#include "storage/log_store.h"

namespace {

namespace fs = std::filesystem;
using raft::Entry;
using raft::EntryType;
using storage::DiskFull;
using storage::LogOptions;
using storage::LogStore;
using storage::MetaStore;
using storage::StorageError;

constexpr std::uint64_t kRecordOverheadBytes = 8 + 17;  // header + term/index/type
constexpr std::uint64_t kFileHeaderBytes = 24;          // "RKVLOG02", chunk u32, pending cut u64, crc u32
// Small chunks so that tests cross many chunk boundaries.
constexpr std::uint32_t kChunkBytes = 4096;
const LogOptions kSmallChunks{kChunkBytes};

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

// Offset of entry `index` (1-based) in a log holding `entries`.
std::uint64_t offset_of(const std::vector<Entry>& entries, raft::Index index) {
  std::uint64_t offset = kFileHeaderBytes;
  for (raft::Index i = 1; i < index; ++i) offset += record_bytes(entries[i - 1]);
  return offset;
}

// The size a log of `data_bytes` of records must have: header + whole chunks.
std::uint64_t grid_bytes(std::uint64_t data_bytes, std::uint64_t chunk_bytes = kChunkBytes) {
  return kFileHeaderBytes + (data_bytes + chunk_bytes - 1) / chunk_bytes * chunk_bytes;
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

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Independent encoders of the documented formats, for crafting files.
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

std::string encode_file_header(std::uint32_t chunk_bytes = kChunkBytes, std::uint64_t pending_cut = 0) {
  std::string header = "RKVLOG02";
  put_le(header, chunk_bytes, 4);
  put_le(header, pending_cut, 8);
  put_le(header, storage::crc32c(header.data(), header.size()), 4);
  return header;
}

// A log file as LogStore would write it: header, records, zeros up to the grid.
std::string craft_log(const std::string& records, std::uint64_t pending_cut = 0) {
  std::string file = encode_file_header(kChunkBytes, pending_cut) + records;
  file.resize(grid_bytes(records.size()), '\0');
  return file;
}

std::string encode_records(const std::vector<Entry>& entries) {
  std::string bytes;
  for (const Entry& entry : entries) bytes += encode_record(entry);
  return bytes;
}

void write_log(const std::string& dir, const std::vector<Entry>& entries) {
  LogStore store(dir, kSmallChunks);
  store.append(entries);
  store.sync();
}

std::vector<Entry> reopen_entries(const std::string& dir) {
  LogStore store(dir, kSmallChunks);
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

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

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
    identity_path = (dir_ / "n1" / "identity").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir;
  std::string log_path;
  std::string meta_path;
  std::string identity_path;

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

TEST_F(StorageTest, NewStoreCreatesDirectoryAndLogWithHeaderOnly) {
  LogStore store(dir, kSmallChunks);
  EXPECT_TRUE(fs::exists(log_path));
  EXPECT_EQ(read_bytes(log_path), encode_file_header());  // no chunk until the first append
  EXPECT_FALSE(fs::exists(log_path + ".tmp"));
  EXPECT_EQ(store.last_index(), 0u);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.preallocated_free_bytes(), 0u);
  EXPECT_TRUE(store.take_recovered().empty());
}

TEST_F(StorageTest, DefaultChunkIsFourMiB) {
  LogStore store(dir);
  store.append({make_entry(1, 1, "x")});
  store.sync();
  EXPECT_EQ(store.chunk_bytes(), 4u << 20);
  EXPECT_EQ(fs::file_size(log_path), kFileHeaderBytes + (4u << 20));
  // An existing log keeps the chunk size in its header, whatever is asked.
  LogStore reopened(dir, kSmallChunks);
  EXPECT_EQ(reopened.chunk_bytes(), 4u << 20);
  EXPECT_THROW(LogStore(dir, LogOptions{100}), std::invalid_argument);
}

TEST_F(StorageTest, RecordLayoutMatchesHeader) {
  const Entry entry = make_entry(0x0102030405060708ull, 1, std::string("a\0b", 3), EntryType::Command);
  write_log(dir, {entry});
  const std::string bytes = read_bytes(log_path);
  ASSERT_EQ(bytes, craft_log(encode_record(entry)));
  EXPECT_EQ(bytes.substr(0, 8), "RKVLOG02");
  EXPECT_EQ(bytes.size(), kFileHeaderBytes + kChunkBytes);
  // Spot-check little-endian fields rather than trusting the helper alone.
  const std::size_t r = kFileHeaderBytes;
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 0x00);       // chunk 4096 = 0x1000, low byte first
  EXPECT_EQ(static_cast<unsigned char>(bytes[9]), 0x10);
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 4]), 20);     // payload length = 17 + 3
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 8]), 0x08);   // term, low byte first
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 16]), 1);     // index
  EXPECT_EQ(static_cast<unsigned char>(bytes[r + 24]), 1);     // type Command
}

TEST_F(StorageTest, RoundTripsManyEntriesAcrossReopen) {
  const std::vector<Entry> all = make_entries(1, 2000, 3);
  {
    LogStore store(dir, kSmallChunks);
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
      EXPECT_EQ(fs::file_size(log_path), grid_bytes(written));
      EXPECT_EQ(store.preallocated_free_bytes(), grid_bytes(written) - kFileHeaderBytes - written);
    }
    EXPECT_EQ(store.last_index(), 2000u);
  }
  const std::string bytes = read_bytes(log_path);
  EXPECT_EQ(bytes, craft_log(encode_records(all)));
  LogStore store(dir, kSmallChunks);
  EXPECT_EQ(store.last_index(), 2000u);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.take_recovered(), all);
  EXPECT_TRUE(store.take_recovered().empty());  // moved out once
}

TEST_F(StorageTest, EntryLargerThanAChunkGrowsSeveralChunks) {
  const Entry big = make_entry(1, 1, std::string(3 * kChunkBytes + 5, 'b'));
  {
    LogStore store(dir, kSmallChunks);
    store.append({big});
    store.sync();
    EXPECT_EQ(store.file_bytes(), kFileHeaderBytes + 4 * kChunkBytes);
  }
  EXPECT_EQ(reopen_entries(dir), std::vector<Entry>{big});
}

TEST_F(StorageTest, HandCraftedFileIsRecovered) {
  const std::vector<Entry> entries = make_entries(1, 5, 9);
  fs::create_directories(dir);
  write_bytes(log_path, craft_log(encode_records(entries)));
  EXPECT_EQ(reopen_entries(dir), entries);
}

TEST_F(StorageTest, EmptyFileIsStartedAfresh) {
  // An older version created an empty log on a fresh start: no entries to lose.
  fs::create_directories(dir);
  write_bytes(log_path, "");
  {
    LogStore store(dir, kSmallChunks);
    EXPECT_EQ(store.last_index(), 0u);
  }
  EXPECT_EQ(read_bytes(log_path), encode_file_header());
}

TEST_F(StorageTest, TruncatesSuffixThenAppends) {
  std::vector<Entry> expected = make_entries(1, 40, 1);
  {
    LogStore store(dir, kSmallChunks);
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
  const std::string bytes = read_bytes(log_path);
  EXPECT_EQ(bytes.size(), grid_bytes(total_bytes(make_entries(1, 40, 1))));
  std::string want = craft_log(encode_records(expected));
  want.resize(bytes.size(), '\0');
  EXPECT_EQ(bytes, want);
  EXPECT_EQ(reopen_entries(dir), expected);
}

TEST_F(StorageTest, TruncatesWholeLogFromIndexOne) {
  write_log(dir, make_entries(1, 10, 1));
  {
    LogStore store(dir, kSmallChunks);
    store.append({make_entry(4, 1, "only")});
    store.sync();
  }
  EXPECT_EQ(reopen_entries(dir), std::vector<Entry>{make_entry(4, 1, "only")});
}

TEST_F(StorageTest, RejectsGapsAndDecreasingTermsWithoutTouchingTheLog) {
  write_log(dir, make_entries(1, 5, 3));
  const std::string before = read_bytes(log_path);
  {
    LogStore store(dir, kSmallChunks);
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
  EXPECT_EQ(read_bytes(log_path), before);
}

TEST_F(StorageTest, RejectsOversizedEntry) {
  LogStore store(dir, kSmallChunks);
  EXPECT_THROW(store.append({make_entry(1, 1, std::string(1 << 20, 'x'))}), std::invalid_argument);
  EXPECT_EQ(store.last_index(), 0u);
  EXPECT_EQ(fs::file_size(log_path), kFileHeaderBytes);
}

// ---- LogStore: torn tails -----------------------------------------------------

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
    const std::uint64_t file_bytes = fs::file_size(log_path);
    zero_range(log_path, end - lost, end);
    {
      LogStore store(dir, kSmallChunks);
      // With the length intact the whole record is cut; else its 8-byte header.
      EXPECT_EQ(store.truncated_tail_bytes(), lost <= last_bytes - 8 ? last_bytes : 8u);
      EXPECT_EQ(store.truncated_tail_records(), 1u);
      EXPECT_EQ(store.truncated_tail_offset(), last_offset);
      EXPECT_EQ(store.truncated_tail_index(), 20u);
      EXPECT_EQ(store.last_index(), 19u);
      EXPECT_EQ(store.take_recovered(), std::vector<Entry>(entries.begin(), entries.end() - 1));
    }
    // Cut by zeroing in place: same size, the bad record's bytes now zero.
    EXPECT_EQ(fs::file_size(log_path), file_bytes);
    EXPECT_EQ(read_bytes(log_path), craft_log(encode_records({entries.begin(), entries.end() - 1})));
    EXPECT_EQ(reopen_entries(dir).size(), 19u);  // the cut was persisted
  }
}

TEST_F(StorageTest, RecoversFromGarbageRecordHeaderAtTheEnd) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t end = offset_of(entries, 21);
  std::string bytes = read_bytes(log_path);
  bytes.replace(end, 7, "\xAB\xCD\xEF\x12\x34\x56\x78");  // a length of ~7 MiB: not believed
  write_bytes(log_path, bytes);
  LogStore store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), 8u);
  EXPECT_EQ(store.truncated_tail_records(), 1u);
  EXPECT_EQ(store.truncated_tail_offset(), end);
  EXPECT_EQ(store.take_recovered(), entries);
  EXPECT_EQ(read_bytes(log_path), craft_log(encode_records(entries)));
}

TEST_F(StorageTest, ZerosAfterTheRecordsAreNotATornTail) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  // Even a whole extra chunk of zeros (a growth step whose records never came).
  std::string bytes = read_bytes(log_path);
  bytes.append(kChunkBytes, '\0');
  write_bytes(log_path, bytes);
  LogStore store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), 0u);
  EXPECT_EQ(store.truncated_tail_records(), 0u);
  EXPECT_EQ(store.take_recovered(), entries);
  EXPECT_EQ(store.preallocated_free_bytes(), bytes.size() - offset_of(entries, 21));
}

TEST_F(StorageTest, RecoversFromBadChecksumOnLastRecord) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  std::string bytes = read_bytes(log_path);
  bytes[offset_of(entries, 21) - 1] ^= 0x40;
  write_bytes(log_path, bytes);
  LogStore store(dir, kSmallChunks);
  EXPECT_EQ(store.truncated_tail_bytes(), record_bytes(entries.back()));
  EXPECT_EQ(store.truncated_tail_records(), 1u);
  EXPECT_EQ(store.take_recovered(), std::vector<Entry>(entries.begin(), entries.end() - 1));
}

TEST_F(StorageTest, AppendsAfterTornTailRecovery) {
  std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  zero_range(log_path, offset_of(entries, 21) - 4, offset_of(entries, 21));
  const std::vector<Entry> more = make_entries(20, 30, 2);
  {
    LogStore store(dir, kSmallChunks);
    EXPECT_GT(store.truncated_tail_bytes(), 0u);
    EXPECT_EQ(store.last_index(), 19u);
    store.append(more);
    store.sync();
  }
  entries.pop_back();
  entries.insert(entries.end(), more.begin(), more.end());
  LogStore store(dir, kSmallChunks);
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
  fs::create_directories(dir);
  write_bytes(log_path, craft_log(records));
  EXPECT_TRUE(contains(error_of([&] { LogStore store(dir, kSmallChunks); }), "zeroed record header"));

  write_bytes(log_path, craft_log(records, cut));
  {
    LogStore store(dir, kSmallChunks);
    EXPECT_EQ(store.take_recovered(), make_entries(1, 10));
    EXPECT_EQ(store.resumed_cut_bytes(), offset_of(entries, 21) - cut);
    EXPECT_EQ(store.truncated_tail_records(), 0u);  // stale entries are not a torn write
  }
  EXPECT_EQ(read_bytes(log_path), craft_log(encode_records(make_entries(1, 10))));  // cut done, cleared
  EXPECT_EQ(reopen_entries(dir), make_entries(1, 10));
}

// ---- LogStore: corruption and truncation by others ----------------------------

// Opening must fail, name the file and the record's offset, and leave the file
// untouched for inspection.
void expect_corrupt(const std::string& dir, const std::string& log_path, std::uint64_t offset,
                    const std::string& problem) {
  const std::string before = read_bytes(log_path);
  const std::string message = error_of([&] { LogStore store(dir, kSmallChunks); });
  EXPECT_TRUE(contains(message, log_path)) << message;
  EXPECT_TRUE(contains(message, "offset " + std::to_string(offset))) << message;
  EXPECT_TRUE(contains(message, problem)) << message;
  EXPECT_TRUE(contains(message, "refusing to start")) << message;
  EXPECT_EQ(read_bytes(log_path), before);
}

TEST_F(StorageTest, FlippedByteInEarlyRecordIsCorruption) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t third_offset = offset_of(entries, 3);
  std::string bytes = read_bytes(log_path);
  bytes[third_offset + 8 + 3] ^= 0x01;  // inside the term
  write_bytes(log_path, bytes);
  expect_corrupt(dir, log_path, third_offset, "checksum mismatch");
}

TEST_F(StorageTest, InsaneLengthInEarlyRecordIsCorruption) {
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  const std::uint64_t second_offset = offset_of(entries, 2);
  std::string bytes = read_bytes(log_path);
  bytes[second_offset + 7] = '\x40';  // length's top byte: ~1 GiB
  write_bytes(log_path, bytes);
  expect_corrupt(dir, log_path, second_offset, "length");
}

TEST_F(StorageTest, ZeroedHeaderInEarlyRecordIsCorruption) {
  // Records end at the first all-zero header, but not if data follows it:
  // dropping entries 10..20 silently would lose acknowledged writes.
  const std::vector<Entry> entries = make_entries(1, 20);
  write_log(dir, entries);
  zero_range(log_path, offset_of(entries, 10), offset_of(entries, 10) + 8);
  expect_corrupt(dir, log_path, offset_of(entries, 10), "zeroed record header followed by data");
}

TEST_F(StorageTest, IndexGapInFileIsCorruption) {
  std::string records;
  std::uint64_t fourth_offset = 0;
  for (raft::Index index : {1, 2, 3, 5, 6}) {
    if (index == 5) fourth_offset = kFileHeaderBytes + records.size();
    records += encode_record(make_entry(1, index, "x"));
  }
  fs::create_directories(dir);
  write_bytes(log_path, craft_log(records));
  expect_corrupt(dir, log_path, fourth_offset, "index 5");
}

TEST_F(StorageTest, WrongIndexInLastRecordIsCorruptionNotATornTail) {
  // Its checksum is valid: we wrote it, no crash tears a record that way.
  fs::create_directories(dir);
  const std::string records = encode_records(make_entries(1, 3)) + encode_record(make_entry(1, 9, "x"));
  write_bytes(log_path, craft_log(records));
  expect_corrupt(dir, log_path, offset_of(make_entries(1, 3), 4), "index 9 where 4 was expected");
}

TEST_F(StorageTest, DecreasingTermInFileIsCorruption) {
  std::vector<Entry> entries = make_entries(1, 11, 5);
  entries.push_back(make_entry(3, 12, "late"));
  entries.push_back(make_entry(5, 13, "more"));
  fs::create_directories(dir);
  write_bytes(log_path, craft_log(encode_records(entries)));
  const std::uint64_t offset = offset_of(entries, 12);
  expect_corrupt(dir, log_path, offset,
                 "term 3 at index 12 (offset " + std::to_string(offset) + ") is below term 5 of index 11");
}

TEST_F(StorageTest, BadRecordFollowedByGarbageIsCorruption) {
  // A damaged last record with non-zero bytes after it is not a torn write.
  const std::vector<Entry> entries = make_entries(1, 5);
  write_log(dir, entries);
  const std::uint64_t last_offset = offset_of(entries, 5);
  std::string bytes = read_bytes(log_path);
  bytes[last_offset + 10] ^= 0x01;
  bytes[offset_of(entries, 6) + 100] = 'x';
  write_bytes(log_path, bytes);
  expect_corrupt(dir, log_path, last_offset, "checksum mismatch");
}

TEST_F(StorageTest, TruncationInsideARecordIsRefusedNotTakenForATornWrite) {
  // The hard case: cut inside record 1,001 of 2,000. Without preallocation
  // this looked exactly like a torn write and 1,000 entries vanished.
  const std::vector<Entry> entries = make_entries(1, 2000);
  write_log(dir, entries);
  const std::uint64_t offset = offset_of(entries, 1001);
  const std::uint64_t needed = record_bytes(entries[1000]);
  fs::resize_file(log_path, offset + 10);
  const std::string before = read_bytes(log_path);
  const std::string message = error_of([&] { LogStore store(dir, kSmallChunks); });
  EXPECT_EQ(message, log_path + " ends inside record 1001 at offset " + std::to_string(offset) + " (record needs " +
                         std::to_string(needed) + " bytes, 10 present): the file was truncated, not torn by a "
                         "crash; refusing to start");
  EXPECT_EQ(read_bytes(log_path), before);
}

TEST_F(StorageTest, TruncationBetweenRecordsIsRefused) {
  const std::vector<Entry> entries = make_entries(1, 2000);
  write_log(dir, entries);
  fs::resize_file(log_path, offset_of(entries, 1001));
  const std::string message = error_of([&] { LogStore store(dir, kSmallChunks); });
  EXPECT_TRUE(contains(message, log_path + " is " + std::to_string(offset_of(entries, 1001)) + " bytes")) << message;
  EXPECT_TRUE(contains(message, "truncated")) << message;
  // Growing it by something other than whole chunks is refused the same way.
  fs::remove(log_path);
  write_log(dir, entries);
  fs::resize_file(log_path, grid_bytes(total_bytes(entries)) + 1);
  EXPECT_TRUE(contains(error_of([&] { LogStore store(dir, kSmallChunks); }), "whole chunks"));
}

TEST_F(StorageTest, TruncationOnAChunkBoundaryInsideARecordIsRefused) {
  const std::vector<Entry> entries = make_entries(1, 2000);
  write_log(dir, entries);
  const std::uint64_t cut = kFileHeaderBytes + 30 * kChunkBytes;  // on the grid, inside some record
  raft::Index inside = 1;
  while (offset_of(entries, inside + 1) <= cut) ++inside;
  ASSERT_LT(offset_of(entries, inside), cut);
  fs::resize_file(log_path, cut);
  expect_corrupt(dir, log_path, offset_of(entries, inside), "record " + std::to_string(inside));
}

TEST_F(StorageTest, LogWithoutHeaderIsRefusedAsOlderFormat) {
  fs::create_directories(dir);
  write_bytes(log_path, encode_records(make_entries(1, 5)));  // what the previous version wrote
  const std::string before = read_bytes(log_path);
  const std::string message = error_of([&] { LogStore store(dir, kSmallChunks); });
  EXPECT_TRUE(contains(message, log_path)) << message;
  EXPECT_TRUE(contains(message, "older version")) << message;
  EXPECT_EQ(read_bytes(log_path), before);
}

TEST_F(StorageTest, OtherFormatVersionOrDamagedHeaderIsRefused) {
  write_log(dir, make_entries(1, 5));
  const std::string good = read_bytes(log_path);
  std::string newer = good;
  newer[7] = '3';
  write_bytes(log_path, newer);
  EXPECT_TRUE(contains(error_of([&] { LogStore store(dir, kSmallChunks); }), "\"RKVLOG03\""));
  for (std::size_t i = 8; i < kFileHeaderBytes; ++i) {
    std::string bad = good;
    bad[i] ^= 0x04;
    write_bytes(log_path, bad);
    const std::string message = error_of([&] { LogStore store(dir, kSmallChunks); });
    EXPECT_TRUE(contains(message, "corrupt log header in " + log_path)) << "byte " << i << ": " << message;
  }
}

TEST_F(StorageTest, InspectReadsWithoutChangingAnything) {
  EXPECT_FALSE(LogStore::inspect(dir).exists);
  write_log(dir, make_entries(1, 12));
  const std::string before = read_bytes(log_path);
  const storage::LogSummary summary = LogStore::inspect(dir);
  EXPECT_TRUE(summary.exists);
  EXPECT_TRUE(summary.has_header);
  EXPECT_TRUE(summary.holds_data);
  EXPECT_EQ(summary.records, 12u);
  EXPECT_EQ(summary.file_bytes, before.size());
  EXPECT_EQ(read_bytes(log_path), before);
  write_bytes(log_path, encode_records(make_entries(1, 7)));  // older format
  EXPECT_FALSE(LogStore::inspect(dir).has_header);
  EXPECT_EQ(LogStore::inspect(dir).records, 7u);
  write_bytes(log_path, craft_log(""));
  EXPECT_FALSE(LogStore::inspect(dir).holds_data);
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

TEST_F(StorageTest, MetaMissingWithEntriesInTheLogIsRefused) {
  MetaStore meta(dir);
  EXPECT_EQ(meta.load(0), raft::HardState{});  // fresh node: term 0
  EXPECT_NO_THROW(storage::check_meta_present(dir, 0));
  const std::string message = error_of([&] { (void)meta.load(1000); });
  EXPECT_EQ(message, meta_path + " is missing but " + log_path +
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

TEST_F(StorageTest, DeletedLogNextToMetaIsRefused) {
  ASSERT_TRUE(storage::check_identity(dir, "c1", "n1"));
  // A crash between writing the identity and creating the log is harmless:
  // with no meta yet, nothing was ever acknowledged.
  EXPECT_FALSE(storage::check_identity(dir, "c1", "n1"));
  write_log(dir, make_entries(1, 5));
  MetaStore(dir).save({3, "n2"});
  fs::remove(log_path);
  EXPECT_EQ(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
            log_path + " is missing but " + (fs::path(dir) / "meta").string() +
                " exists: the log was deleted, and starting with an empty one would lose acknowledged entries; "
                "refusing to start");
  EXPECT_FALSE(fs::exists(log_path)) << "the check must not re-create the log";
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
  const std::string log_before = read_bytes(log_path);
  EXPECT_EQ(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
            identity_path + " is missing but " + log_path +
                " holds 12 entries: this data directory was not made by this node (or by an older version); "
                "refusing to start");
  EXPECT_FALSE(fs::exists(identity_path));
  EXPECT_EQ(read_bytes(log_path), log_before);

  write_bytes(log_path, encode_records(make_entries(1, 5)));  // a log of the previous version
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }), "holds 5 entries"));
  write_bytes(log_path, "junk");
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }), "holds 4 bytes of data"));

  fs::remove(log_path);
  MetaStore(dir).save({3, "n2"});
  EXPECT_TRUE(contains(error_of([&] { storage::check_identity(dir, "c1", "n1"); }),
                       identity_path + " is missing but " + meta_path + " exists"));
  EXPECT_FALSE(fs::exists(identity_path));
}

TEST_F(StorageTest, MissingIdentityWithoutStateIsCreated) {
  // Empty, header-only or all-zero logs hold nothing: a fresh node.
  for (const std::string& log : {std::string(), craft_log(""), std::string(5000, '\0')}) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_bytes(log_path, log);
    EXPECT_TRUE(storage::check_identity(dir, "c1", "n1")) << log.size();
    EXPECT_EQ(read_bytes(log_path), log);
  }
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
