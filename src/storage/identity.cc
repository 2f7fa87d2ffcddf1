#include "storage/identity.h"

#include <stdexcept>
#include <string_view>

#include "storage/crc32c.h"
#include "storage/disk_space.h"
#include "storage/file_io.h"
#include "storage/segmented_log.h"
#include "storage/snapshot_store.h"

namespace storage {
namespace {

using namespace io;

constexpr std::string_view kMagic = "RKVID001";
constexpr std::size_t kCrcBytes = 4;

void validate_id(const char* what, const std::string& id) {
  if (id.empty() || id.size() > kMaxIdBytes) {
    throw std::invalid_argument(std::string(what) + " \"" + id + "\" must be 1 to " + std::to_string(kMaxIdBytes) +
                                " bytes, not " + std::to_string(id.size()));
  }
}

std::string encode_identity(const std::string& cluster_id, const std::string& node_id) {
  std::string bytes(kMagic);
  bytes.push_back(static_cast<char>(cluster_id.size()));
  bytes += cluster_id;
  bytes.push_back(static_cast<char>(node_id.size()));
  bytes += node_id;
  append_u32(bytes, crc32c(bytes.data(), bytes.size()));
  return bytes;
}

struct Identity {
  std::string cluster_id;
  std::string node_id;
};

// The identity is only ever replaced by rename, so any damage is corruption.
Identity decode_identity(const std::string& path, std::string_view bytes) {
  const auto corrupt = [&](const std::string& problem) {
    return StorageError("corrupt identity file " + path + ": " + problem + "; refusing to start");
  };
  if (bytes.size() < kMagic.size() + 2 + kCrcBytes) {
    throw corrupt("only " + std::to_string(bytes.size()) + " bytes");
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) throw corrupt("it does not start with \"" + std::string(kMagic) + "\"");
  const std::size_t covered_bytes = bytes.size() - kCrcBytes;
  const std::uint32_t stored_crc = get_u32(bytes.data() + covered_bytes);
  const std::uint32_t computed_crc = crc32c(bytes.data(), covered_bytes);
  if (stored_crc != computed_crc) {
    throw corrupt("checksum mismatch (expected " + hex32(stored_crc) + ", found " + hex32(computed_crc) + ")");
  }
  // Lengths are checked even though the checksum matched: a file from a
  // buggy writer must not make us read past the end.
  std::size_t pos = kMagic.size();
  Identity identity;
  for (std::string* id : {&identity.cluster_id, &identity.node_id}) {
    if (pos >= covered_bytes) throw corrupt("ids run past the end of the file");
    const std::size_t n = static_cast<unsigned char>(bytes[pos++]);
    if (n == 0 || n > kMaxIdBytes || n > covered_bytes - pos) throw corrupt("bad id length " + std::to_string(n));
    id->assign(bytes.substr(pos, n));
    pos += n;
  }
  if (pos != covered_bytes) throw corrupt(std::to_string(covered_bytes - pos) + " unexpected bytes after the ids");
  return identity;
}

}  // namespace

bool check_identity(const std::string& dir, const std::string& cluster_id, const std::string& node_id) {
  validate_id("cluster id", cluster_id);
  validate_id("node id", node_id);
  const std::string path = join(dir, "identity");

  if (const std::optional<std::string> bytes = read_file_if_exists(path)) {
    const Identity found = decode_identity(path, *bytes);
    if (found.cluster_id != cluster_id || found.node_id != node_id) {
      throw StorageError(path + " belongs to cluster \"" + found.cluster_id + "\" node \"" + found.node_id +
                         "\", but this node is cluster \"" + cluster_id + "\" node \"" + node_id +
                         "\": this data directory is another node's; refusing to start");
    }
    // The log may only be absent if nothing was ever acknowledged. Every
    // ack is sent after a term was saved (a follower adopts the leader's
    // term first), and a snapshot is only saved next to an existing log, so
    // a meta or snapshot file next to a missing log means the log was
    // deleted; starting empty would forget entries a majority counted on.
    const std::string log_path = SegmentedLog::directory_of(dir);
    if (!file_exists(log_path)) {
      for (const std::string& name : {std::string("meta"), std::string("snapshot")}) {
        if (file_exists(join(dir, name))) {
          throw StorageError(log_path + " is missing but " + join(dir, name) +
                             " exists: the log was deleted, and starting with an empty one would lose "
                             "acknowledged entries; refusing to start");
        }
      }
    }
    return false;
  }

  // No identity: only a directory without any state may be adopted.
  const std::string stranger =
      ": this data directory was not made by this node (or by an older version); refusing to start";
  const std::string meta_path = join(dir, "meta");
  if (file_exists(meta_path)) throw StorageError(path + " is missing but " + meta_path + " exists" + stranger);
  if (SnapshotStore::exists(dir)) {
    throw StorageError(path + " is missing but " + join(dir, "snapshot") + " exists" + stranger);
  }
  const LogSummary log = SegmentedLog::inspect(dir);
  if (log.holds_data) {
    const std::string what = log.records > 0 ? "holds " + std::to_string(log.records) + " entries"
                                             : "holds " + std::to_string(log.file_bytes) + " bytes of data";
    throw StorageError(path + " is missing but " + SegmentedLog::directory_of(dir) + " " + what + stranger);
  }
  create_directories(dir);
  write_file_atomically(dir, "identity", encode_identity(cluster_id, node_id));
  return true;
}

DataDirState prepare_data_dir(const std::string& dir, const std::string& cluster_id, const std::string& node_id,
                              const DataDirOptions& options) {
  DataDirState state;
  state.identity_created = check_identity(dir, cluster_id, node_id);
  state.disk_nearly_full = disk_nearly_full(dir, options.min_free_bytes);
  if (state.disk_nearly_full) {
    state.reserve_released_bytes = release_reserve(dir);
  } else {
    state.reserve_created = ensure_reserve(dir, options.reserve_bytes, options.min_free_bytes);
  }
  return state;
}

}  // namespace storage
