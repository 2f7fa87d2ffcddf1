#include "storage/meta_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "storage/crc32c.h"
#include "storage/file_io.h"

namespace storage {
namespace {

using namespace io;

constexpr std::size_t kTermBytes = 8;
constexpr std::size_t kLengthBytes = 4;
constexpr std::size_t kCrcBytes = 4;
constexpr std::size_t kMinFileBytes = kTermBytes + kLengthBytes + kCrcBytes;

std::string meta_path(const std::string& dir) { return join(dir, "meta"); }

}  // namespace

MetaStore::MetaStore(const std::string& dir) : dir_(dir) { create_directories(dir_); }

raft::HardState MetaStore::load() const {
  const std::string path = meta_path(dir_);
  const std::optional<std::string> file = read_file_if_exists(path);
  if (!file) return {};  // never saved: term 0, no vote
  const std::string& bytes = *file;

  // The file is only ever replaced by rename, so any damage here is real
  // corruption, never a torn write: refuse rather than forget a vote.
  const auto corrupt = [&](const std::string& problem) {
    return StorageError("corrupt meta file " + path + ": " + problem + "; refusing to start");
  };
  if (bytes.size() < kMinFileBytes) {
    throw corrupt("only " + std::to_string(bytes.size()) + " bytes, need at least " + std::to_string(kMinFileBytes));
  }
  const std::uint32_t vote_bytes = get_u32(bytes.data() + kTermBytes);
  const std::size_t expected_size = kMinFileBytes + static_cast<std::size_t>(vote_bytes);
  if (bytes.size() != expected_size) {
    throw corrupt("size " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(expected_size));
  }
  const std::size_t covered_bytes = bytes.size() - kCrcBytes;
  const std::uint32_t stored_crc = get_u32(bytes.data() + covered_bytes);
  const std::uint32_t computed_crc = crc32c(bytes.data(), covered_bytes);
  if (stored_crc != computed_crc) {
    throw corrupt("checksum mismatch (expected " + hex32(stored_crc) + ", found " + hex32(computed_crc) + ")");
  }

  raft::HardState state;
  state.current_term = get_u64(bytes.data());
  state.voted_for.assign(bytes.data() + kTermBytes + kLengthBytes, vote_bytes);
  return state;
}

void MetaStore::save(const raft::HardState& state) {
  std::string bytes;
  bytes.reserve(kMinFileBytes + state.voted_for.size());
  append_u64(bytes, state.current_term);
  append_u32(bytes, static_cast<std::uint32_t>(state.voted_for.size()));
  bytes += state.voted_for;
  append_u32(bytes, crc32c(bytes.data(), bytes.size()));
  write_file_atomically(dir_, "meta", bytes);
}

bool MetaStore::exists() const { return file_exists(meta_path(dir_)); }

std::string MetaStore::path() const { return meta_path(dir_); }

raft::HardState MetaStore::load(std::uint64_t log_entries) const {
  check_meta_present(dir_, log_entries);
  return load();
}

void check_meta_present(const std::string& dir, std::uint64_t log_entries) {
  if (log_entries == 0) return;  // a fresh node: term 0, no vote, is the truth
  const std::string path = meta_path(dir);
  if (file_exists(path)) return;
  // Entries exist only after a term was reached, and the shell saves the term
  // before the entries; so the term and vote were lost, not never written.
  throw StorageError(path + " is missing but " + join(dir, "log") + " holds " + std::to_string(log_entries) +
                     " entries: the term and vote are lost, so this node could vote twice in a term; "
                     "refusing to start");
}

}  // namespace storage
