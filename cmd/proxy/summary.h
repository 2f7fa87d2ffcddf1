// A one-line, best-effort summary of a datagram for the message journal
// (docs/proxy.md, "Message journal"): a cheap scan for a few JSON fields
// ("type", "term", indexes, seq/op/key of client commands) without parsing.
// Never trusted and never used for routing: a datagram that is not JSON,
// or JSON in another layout, just gets a shorter summary ("?" if nothing
// matched). Header-only and pure so the unit test can check it directly.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

namespace proxy {

inline constexpr std::size_t kSummaryBytes = 96;  // including the terminating NUL

namespace summary_detail {

// The value token of the first `"name":` in `text`, as written: a number,
// true/false/null, or a string's contents (without quotes, cut at 24 bytes).
// Empty when absent.
inline std::string_view field(std::string_view text, std::string_view name) {
  char pattern[40];
  if (name.size() + 3 > sizeof pattern) return {};
  pattern[0] = '"';
  std::memcpy(pattern + 1, name.data(), name.size());
  pattern[name.size() + 1] = '"';
  pattern[name.size() + 2] = ':';
  const std::string_view needle(pattern, name.size() + 3);
  const std::size_t at = text.find(needle);
  if (at == std::string_view::npos) return {};
  std::size_t begin = at + needle.size();
  while (begin < text.size() && text[begin] == ' ') ++begin;
  if (begin >= text.size()) return {};
  std::size_t end = begin;
  if (text[begin] == '"') {
    ++begin;
    end = begin;
    while (end < text.size() && text[end] != '"' && text[end] != '\\' && end - begin < 24) ++end;
  } else {
    while (end < text.size() && end - begin < 24 &&
           (text[end] == '-' || text[end] == '.' || (text[end] >= '0' && text[end] <= '9') ||
            (text[end] >= 'a' && text[end] <= 'z'))) {
      ++end;
    }
  }
  return text.substr(begin, end - begin);
}

// Number of entries in an "entries":[...] array: its top-level objects,
// counted by brace depth, ignoring braces inside strings. -1 if absent.
inline int entry_count(std::string_view text) {
  const std::size_t at = text.find("\"entries\":[");
  if (at == std::string_view::npos) return -1;
  int count = 0;
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = at + 11; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (depth++ == 0 && c == '{') ++count;
    } else if (c == '}' || c == ']') {
      if (depth-- == 0) break;  // the array's own closing bracket
    }
  }
  return count;
}

// Appends "label=value" (or just value when label is empty) to out.
inline void append(char* out, std::size_t& used, std::string_view label, std::string_view value) {
  if (value.empty()) return;
  auto put = [&](std::string_view piece) {
    for (char c : piece) {
      if (used + 1 >= kSummaryBytes) return;
      // The summary goes into JSON lines and a ShiViz log: keep it printable and unquoted.
      out[used++] = (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
    }
  };
  if (used > 0) put(" ");
  if (!label.empty()) {
    put(label);
    put("=");
  }
  put(value);
  out[used] = '\0';
}

}  // namespace summary_detail

// The fields summarize() reads (all but the entry count) sit near the start
// of every message of the reference format, so the journal keeps only this
// many bytes per datagram and summarizes them when it writes the file.
inline constexpr std::size_t kSummaryHeadBytes = 200;

// Entries in the datagram's "entries" array (-1 if none): the one part of a
// summary that needs the whole datagram, so it is counted on arrival.
inline int count_entries(const char* data, std::size_t size) {
  return summary_detail::entry_count(std::string_view(data, size));
}

// Writes the summary of `data` into `out` (kSummaryBytes, NUL-terminated).
// `entries`: the count from count_entries() on the whole datagram when
// `data` is only its head; by default it is counted in `data`.
inline void summarize(const char* data, std::size_t size, char* out, int entries = -2) {
  using namespace summary_detail;
  const std::string_view text(data, size);
  std::size_t used = 0;
  out[0] = '\0';
  const std::string_view type = field(text, "type");
  append(out, used, "", type);
  append(out, used, "t", field(text, "term"));
  if (type == "client_request" || type == "client_reply") {
    append(out, used, "seq", field(text, "seq"));
    append(out, used, "", field(text, "op"));
    append(out, used, "key", field(text, "key"));
    append(out, used, "ok", field(text, "ok"));
    append(out, used, "err", field(text, "error"));
    return;
  }
  append(out, used, "prev", field(text, "prev_log_index"));
  if (const int n = entries == -2 ? entry_count(text) : entries; n >= 0) {
    char count[16];
    int len = 0;
    int v = n;
    char digits[12];
    do {
      digits[len++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v > 0 && len < 11);
    for (int i = 0; i < len; ++i) count[i] = digits[len - 1 - i];
    append(out, used, "n", std::string_view(count, static_cast<std::size_t>(len)));
  }
  append(out, used, "commit", field(text, "leader_commit"));
  append(out, used, "ok", field(text, "success"));
  append(out, used, "match", field(text, "match_index"));
  append(out, used, "granted", field(text, "vote_granted"));
  if (field(text, "pre_vote") == "true") append(out, used, "", "pre");
  append(out, used, "last", field(text, "last_log_index"));
  append(out, used, "snap", field(text, "last_included_index"));
  append(out, used, "off", field(text, "offset"));
  if (used == 0) append(out, used, "", "?");
}

}  // namespace proxy
