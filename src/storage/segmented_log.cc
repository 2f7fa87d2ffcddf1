#include "storage/segmented_log.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "storage/crc32c.h"
#include "storage/file_io.h"

namespace storage {
namespace {

using namespace io;

constexpr std::string_view kResetName = "reset";
// reset marker = ["RKVRST01"][after u64 LE][chunk_bytes u32 LE][crc32c u32 LE of the 20 bytes before]
constexpr std::string_view kResetMagic = "RKVRST01";
constexpr std::size_t kResetMarkerBytes = 24;
// The single-file log of the previous format, and its 24-byte header.
constexpr std::string_view kOldMagic = "RKVLOG02";
constexpr std::uint64_t kOldHeaderBytes = 24;
constexpr std::string_view kTempSuffix = ".tmp";

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string encode_reset_marker(raft::Index after, std::uint32_t chunk_bytes) {
  std::string bytes(kResetMagic);
  append_u64(bytes, after);
  append_u32(bytes, chunk_bytes);
  append_u32(bytes, crc32c(bytes.data(), bytes.size()));
  return bytes;
}

struct ResetMarker {
  raft::Index after = 0;
  std::uint32_t chunk_bytes = 0;
};

// The marker is only ever created by rename, so any damage is corruption.
ResetMarker decode_reset_marker(const std::string& path, std::string_view bytes) {
  const auto corrupt = [&](const std::string& problem) {
    return StorageError("corrupt reset marker " + path + ": " + problem + "; refusing to start");
  };
  if (bytes.size() != kResetMarkerBytes) {
    throw corrupt(std::to_string(bytes.size()) + " bytes, expected " + std::to_string(kResetMarkerBytes));
  }
  if (bytes.substr(0, kResetMagic.size()) != kResetMagic) {
    throw corrupt("it does not start with \"" + std::string(kResetMagic) + "\"");
  }
  const std::uint32_t stored_crc = get_u32(bytes.data() + 20);
  const std::uint32_t computed_crc = crc32c(bytes.data(), 20);
  if (stored_crc != computed_crc) {
    throw corrupt("checksum mismatch (expected " + hex32(stored_crc) + ", found " + hex32(computed_crc) + ")");
  }
  ResetMarker marker{get_u64(bytes.data() + 8), get_u32(bytes.data() + 16)};
  if (marker.chunk_bytes < Segment::kMinChunkBytes || marker.chunk_bytes > Segment::kMaxChunkBytes) {
    throw corrupt("chunk size " + std::to_string(marker.chunk_bytes) + " out of range");
  }
  return marker;
}

// Checksum-valid records from `pos` on, in the record format every version
// shares (best effort: stops at the first one that is not).
std::uint64_t count_records(std::string_view file, std::uint64_t pos) {
  std::uint64_t records = 0;
  while (file.size() >= pos && file.size() - pos >= Segment::kRecordHeaderBytes) {
    const std::uint32_t payload_bytes = get_u32(file.data() + pos + 4);
    if (payload_bytes < Segment::kPayloadPrefixBytes ||
        payload_bytes > file.size() - pos - Segment::kRecordHeaderBytes) {
      break;
    }
    if (crc32c(file.data() + pos + 4, 4 + payload_bytes) != get_u32(file.data() + pos)) break;
    ++records;
    pos += Segment::kRecordHeaderBytes + payload_bytes;
  }
  return records;
}

// The summary of an older version's single-file log (with the RKVLOG02
// header, or older still without any).
LogSummary summarize_old_file(std::string_view file) {
  LogSummary summary;
  summary.exists = true;
  summary.old_format_file = true;
  summary.file_bytes = file.size();
  const bool has_header = file.substr(0, kOldMagic.size()) == kOldMagic && file.size() >= kOldHeaderBytes;
  const std::uint64_t pos = has_header ? kOldHeaderBytes : 0;
  summary.holds_data = !all_zero(file.substr(pos));
  summary.records = count_records(file, pos);
  return summary;
}

[[noreturn]] void refuse_old_file(const std::string& path, std::string_view file) {
  std::string what;
  if (file.substr(0, kOldMagic.size()) == kOldMagic) {
    what = "a log of an older format (RKVLOG02)";
  } else if (file.substr(0, 6) == kOldMagic.substr(0, 6)) {
    what = "a log of another format (\"" + std::string(file.substr(0, kOldMagic.size())) + "\")";
  } else {
    what = "a log file of an older version (records without a header) or not a log at all";
  }
  throw StorageError(path + " is " + what + "; this version keeps its log in " + path +
                     "/ (segment files); move the data_dir away or delete it to start this node fresh; "
                     "refusing to start");
}

}  // namespace

std::string SegmentedLog::directory_of(const std::string& dir) { return join(dir, "log"); }

SegmentedLog::SegmentedLog(const std::string& dir, LogOptions options)
    : dir_(dir), log_dir_(directory_of(dir)), options_(options) {
  if (options.chunk_bytes < Segment::kMinChunkBytes || options.chunk_bytes > Segment::kMaxChunkBytes) {
    throw std::invalid_argument("log chunk size " + std::to_string(options.chunk_bytes) + " outside [" +
                                std::to_string(Segment::kMinChunkBytes) + ", " +
                                std::to_string(Segment::kMaxChunkBytes) + "]");
  }
  if (options.segment_bytes == 0) throw std::invalid_argument("log segment size must be at least 1 byte");
  chunk_bytes_ = options.chunk_bytes;
  create_directories(dir);
  // Never the log: what an interrupted creation left.
  const std::string tmp_dir = log_dir_ + std::string(kTempSuffix);
  if (file_exists(tmp_dir)) {
    remove_tree(tmp_dir);
    recovery_.removed_temp_files.push_back(tmp_dir);
  }
  if (!file_exists(log_dir_)) {
    create_new_log();
  } else if (!is_directory(log_dir_)) {
    const std::string file = *read_file_if_exists(log_dir_);
    if (summarize_old_file(file).holds_data) refuse_old_file(log_dir_, file);
    // Holds no record (empty, header only, all zeros): nothing can be lost
    // by starting afresh, as that version would have.
    remove_file(log_dir_);
    fsync_directory(dir_);
    recovery_.replaced_empty_old_file = true;
    create_new_log();
  }
  open_existing();
}

SegmentedLog::~SegmentedLog() = default;

void SegmentedLog::create_new_log() {
  // Built whole under a temporary name and renamed into place, so a log
  // directory without a segment is never the result of a crash.
  const std::string tmp_dir = log_dir_ + std::string(kTempSuffix);
  create_directories(tmp_dir);
  Segment::create_unpublished(tmp_dir, 1, chunk_bytes_, 0)->publish();
  rename_file(tmp_dir, log_dir_);
  fsync_directory(dir_);
  recovery_.created = true;
}

void SegmentedLog::open_existing() {
  std::vector<raft::Index> firsts;
  bool reset_pending = false;
  std::vector<std::string> temp_files;
  for (const std::string& name : list_directory(log_dir_)) {
    const std::string path = join(log_dir_, name);
    if (ends_with(name, kTempSuffix)) {
      temp_files.push_back(path);
    } else if (name == kResetName) {
      reset_pending = true;
    } else if (const std::optional<raft::Index> first = Segment::parse_file_name(name)) {
      firsts.push_back(*first);
    } else {
      throw StorageError("unexpected file " + path + " in the log directory (it holds only segment files named "
                         "by 20-digit first indexes, \"" + Segment::file_name(1) + "\"); refusing to start");
    }
  }
  std::sort(firsts.begin(), firsts.end());

  std::optional<ResetMarker> marker;
  if (reset_pending) {
    const std::string path = join(log_dir_, std::string(kResetName));
    marker = decode_reset_marker(path, *read_file_if_exists(path));
  }
  if (!marker && firsts.empty()) {
    throw StorageError(log_dir_ + " holds no segment file: its segments were deleted (the log always keeps "
                       "at least one), and starting with an empty log would lose acknowledged entries; "
                       "refusing to start");
  }
  // Checks passed: from here recovery may change the directory.
  for (const std::string& path : temp_files) remove_file(path);
  if (!temp_files.empty()) fsync_directory(log_dir_);
  recovery_.removed_temp_files.insert(recovery_.removed_temp_files.end(), temp_files.begin(), temp_files.end());
  if (marker) {
    finish_reset(marker->after, marker->chunk_bytes, firsts);
    recovery_.resumed_reset_after = marker->after;
    return;
  }

  // Pure until every segment passed: a refused log is left as found.
  std::deque<std::unique_ptr<Segment>> segments;
  std::vector<raft::Entry> entries;
  for (const raft::Index first : firsts) {
    std::unique_ptr<Segment> segment = Segment::open(log_dir_, first, &entries);
    if (!segments.empty()) {
      const Segment& previous = *segments.back();
      // Only the last segment can be torn: each one is synced before the
      // next one is created, and suffix removal deletes later ones first.
      if (previous.torn_tail().records > 0 || previous.cut_pending()) {
        const std::string problem = previous.cut_pending()
                                        ? "a suffix removal pending"
                                        : "a damaged last record at offset " +
                                              std::to_string(previous.torn_tail().offset);
        throw StorageError("corrupt log: " + previous.path() + " has " + problem + ", but " + segment->path() +
                           " follows it (only the last segment can be torn by a crash); refusing to start");
      }
      if (segment->first_index() != previous.last_index() + 1) {
        const std::string held = previous.empty() ? "no entry" : "entries " + std::to_string(previous.first_index()) +
                                                                      ".." + std::to_string(previous.last_index());
        const std::string what = segment->first_index() > previous.last_index() + 1
                                     ? "a gap: entries " + std::to_string(previous.last_index() + 1) + ".." +
                                           std::to_string(segment->first_index() - 1) + " are missing"
                                     : "an overlap";
        throw StorageError("corrupt log: " + previous.path() + " holds " + held + " but the next segment " +
                           segment->path() + " starts at index " + std::to_string(segment->first_index()) + ": " +
                           what + "; refusing to start");
      }
      if (!segment->empty() && !previous.empty() &&
          segment->term_at(segment->first_index()) < previous.term_at(previous.last_index())) {
        throw StorageError("corrupt log: term " + std::to_string(segment->term_at(segment->first_index())) +
                           " at index " + std::to_string(segment->first_index()) + " (" + segment->path() +
                           ") is below term " + std::to_string(previous.term_at(previous.last_index())) +
                           " of index " + std::to_string(previous.last_index()) + " (" + previous.path() +
                           "); refusing to start");
      }
      segments.back()->close_file();
    }
    segments.push_back(std::move(segment));
  }
  Segment& last = *segments.back();
  recovery_.torn = last.torn_tail();
  recovery_.resumed_cut_bytes = last.repair();
  chunk_bytes_ = last.chunk_bytes();
  segments_ = std::move(segments);
  recovered_ = std::move(entries);
}

void SegmentedLog::finish_reset(raft::Index after, std::uint32_t chunk_bytes, const std::vector<raft::Index>& firsts) {
  // Under the marker the order of deletion does not matter: whatever a crash
  // leaves, the next start finishes the reset from the start.
  for (auto it = firsts.rbegin(); it != firsts.rend(); ++it) remove_file(join(log_dir_, Segment::file_name(*it)));
  std::unique_ptr<Segment> segment = Segment::create_unpublished(log_dir_, after + 1, chunk_bytes, 0);
  segment->publish();  // its directory fsync also makes the deletions durable
  remove_file(join(log_dir_, std::string(kResetName)));
  fsync_directory(log_dir_);
  segments_.clear();
  segments_.push_back(std::move(segment));
  chunk_bytes_ = chunk_bytes;
}

LogSummary SegmentedLog::inspect(const std::string& dir) {
  const std::string log_dir = directory_of(dir);
  LogSummary summary;
  if (!file_exists(log_dir)) return summary;
  if (!is_directory(log_dir)) return summarize_old_file(*read_file_if_exists(log_dir));
  summary.exists = true;
  for (const std::string& name : list_directory(log_dir)) {
    if (name == kResetName) summary.reset_pending = true;
    if (!Segment::parse_file_name(name)) continue;
    const std::optional<std::string> file = read_file_if_exists(join(log_dir, name));
    if (!file) continue;
    const std::uint64_t pos = Segment::has_current_header(*file) ? Segment::kHeaderBytes : 0;
    ++summary.segments;
    summary.file_bytes += file->size();
    summary.holds_data = summary.holds_data || !all_zero(std::string_view(*file).substr(pos));
    summary.records += count_records(*file, pos);
  }
  return summary;
}

std::vector<raft::Entry> SegmentedLog::take_recovered() { return std::exchange(recovered_, {}); }

raft::Term SegmentedLog::term_at(raft::Index index) const {
  if (index < first_index() || index > last_index()) {
    throw std::out_of_range("term of index " + std::to_string(index) + ": " + log_dir_ + " holds " +
                            std::to_string(first_index()) + ".." + std::to_string(last_index()));
  }
  return segments_[segment_of(index)]->term_at(index);
}

std::size_t SegmentedLog::segment_of(raft::Index index) const {
  // The last segment whose first index is <= index.
  const auto it = std::upper_bound(segments_.begin(), segments_.end(), index,
                                   [](raft::Index i, const std::unique_ptr<Segment>& s) { return i < s->first_index(); });
  return static_cast<std::size_t>(it - segments_.begin()) - 1;
}

std::vector<std::string> SegmentedLog::segment_paths() const {
  std::vector<std::string> paths;
  for (const auto& segment : segments_) paths.push_back(segment->path());
  return paths;
}

std::uint64_t SegmentedLog::file_bytes() const {
  std::uint64_t bytes = 0;
  for (const auto& segment : segments_) bytes += segment->file_bytes();
  return bytes;
}

void SegmentedLog::check_usable() const {
  if (failed_ || segments_.empty() || !segments_.back()->usable()) {
    throw StorageError("log " + log_dir_ + " is unusable after an earlier I/O error");
  }
}

void SegmentedLog::remove_segment_file(const std::string& path, bool sync_directory) {
  failed_ = true;  // until the deletion is durable, memory and disk may disagree
  remove_file(path);
  if (sync_directory) fsync_directory(log_dir_);
  failed_ = false;
}

void SegmentedLog::append(const std::vector<raft::Entry>& entries) {
  check_usable();
  if (entries.empty()) return;

  // Validate everything before touching a file, so a rejected batch leaves
  // the log exactly as it was.
  const raft::Index first = entries.front().index;
  if (first == 0 || first > last_index() + 1) {
    throw std::invalid_argument("append to " + log_dir_ + ": first index " + std::to_string(first) +
                                " does not follow last index " + std::to_string(last_index()));
  }
  if (first < first_index()) {
    throw std::invalid_argument("append to " + log_dir_ + ": first index " + std::to_string(first) +
                                " is below the log's first index " + std::to_string(first_index()) +
                                " (entries before it were compacted or reset away)");
  }
  // The entry before the batch may be gone (compacted, or the log was reset).
  raft::Term previous_term = first > first_index() ? term_at(first - 1) : 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const raft::Entry& entry = entries[i];
    const std::string what = "append to " + log_dir_ + ": entry " + std::to_string(entry.index);
    if (entry.index != first + i) {
      throw std::invalid_argument("append to " + log_dir_ + ": index " + std::to_string(entry.index) + " where " +
                                  std::to_string(first + i) + " was expected");
    }
    if (entry.data.size() > Segment::kMaxDataBytes) {
      throw std::invalid_argument(what + " has " + std::to_string(entry.data.size()) + " data bytes, limit " +
                                  std::to_string(Segment::kMaxDataBytes));
    }
    const auto type = static_cast<std::uint8_t>(entry.type);
    if (type != static_cast<std::uint8_t>(raft::EntryType::Noop) &&
        type != static_cast<std::uint8_t>(raft::EntryType::Command)) {
      throw std::invalid_argument(what + " has an unknown type");
    }
    // Recovery refuses a log whose terms decrease, so never write one.
    if (entry.term < previous_term) {
      throw std::invalid_argument(what + " has term " + std::to_string(entry.term) + ", below term " +
                                  std::to_string(previous_term) + " of the entry before it");
    }
    previous_term = entry.term;
  }

  if (first <= last_index()) {
    // Made durable now rather than in sync(): if the new records reached the
    // disk but the removal did not, recovery would find them followed by the
    // old suffix, all with valid checksums and contiguous indexes, and splice
    // two leaders' logs together. Newest first, so a crash leaves a prefix.
    while (segments_.back()->first_index() > first) {
      remove_segment_file(segments_.back()->path(), true);
      segments_.pop_back();
    }
    failed_ = true;  // a failed cut leaves the segment unusable (fail-stop)
    segments_.back()->cut_from(first);
    failed_ = false;
  }

  // Split the batch into runs, one per segment: the open one while it has
  // room, then new ones (rolling), and allocate all their space up front.
  struct Run {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::uint64_t bytes = 0;
  };
  std::vector<Run> runs(1);
  std::uint64_t segment_records = segments_.back()->records_bytes();
  bool segment_holds_one = !segments_.back()->empty();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::uint64_t bytes = Segment::record_bytes(entries[i]);
    if (segment_holds_one && segment_records + bytes > options_.segment_bytes) {
      runs.back().end = i;
      runs.push_back(Run{i, i, 0});
      segment_records = 0;
    }
    segment_records += bytes;
    segment_holds_one = true;
    runs.back().bytes += bytes;
  }
  runs.back().end = entries.size();
  segments_.back()->reserve(runs.front().bytes);
  std::vector<std::unique_ptr<Segment>> rolled;  // unpublished until their turn; removed if we throw first
  for (std::size_t r = 1; r < runs.size(); ++r) {
    rolled.push_back(Segment::create_unpublished(log_dir_, entries[runs[r].begin].index, chunk_bytes_, runs[r].bytes));
  }

  // Writing: any failure from here on ends the log's use.
  failed_ = true;
  const raft::Entry* data = entries.data();
  if (runs.front().end > runs.front().begin) {
    segments_.back()->write(data + runs.front().begin, data + runs.front().end, buffer_);
  }
  for (std::size_t r = 1; r < runs.size(); ++r) {
    // Complete and durable before a later segment exists: only the last
    // segment may ever be found torn.
    segments_.back()->sync();
    segments_.back()->close_file();
    rolled[r - 1]->publish();
    segments_.push_back(std::move(rolled[r - 1]));
    segments_.back()->write(data + runs[r].begin, data + runs[r].end, buffer_);
  }
  failed_ = false;
}

void SegmentedLog::sync() {
  check_usable();
  for (const auto& segment : segments_) {
    if (segment->dirty()) {
      failed_ = true;
      segment->sync();
      failed_ = false;
    }
  }
}

std::size_t SegmentedLog::compact(raft::Index through) {
  check_usable();
  std::size_t deleted = 0;
  // Oldest first, each deletion durable before the next: a crash leaves a
  // suffix of the log, never a gap. The segment holding last_index() stays.
  while (segments_.size() > 1 && segments_.front()->last_index() <= through &&
         segments_.front()->last_index() < last_index()) {
    remove_segment_file(segments_.front()->path(), true);
    segments_.pop_front();
    ++deleted;
  }
  return deleted;
}

void SegmentedLog::reset(raft::Index after) {
  check_usable();
  if (after >= raft::kMaxNumber) {
    throw std::invalid_argument("reset of " + log_dir_ + " after index " + std::to_string(after) + ": beyond 2^53 - 1");
  }
  // The marker first: from the moment it is durable, a restart finishes the
  // reset instead of finding a log with some segments gone.
  write_file_atomically(log_dir_, std::string(kResetName), encode_reset_marker(after, chunk_bytes_));
  failed_ = true;
  std::vector<raft::Index> firsts;
  for (const auto& segment : segments_) firsts.push_back(segment->first_index());
  finish_reset(after, chunk_bytes_, firsts);
  recovered_.clear();
  failed_ = false;
}

}  // namespace storage
