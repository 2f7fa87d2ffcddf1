// What the client program prints for each command, as text or --json, and
// the exit code that goes with it.
#include "output.h"

#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace client_cli {
namespace {

std::string display(const std::optional<std::string>& value) { return value ? *value : "(nil)"; }

nlohmann::json json_value(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

}  // namespace

// Prints the outcome of a get/set/cas/delete and returns its exit code.
int report(bool json, int deadline_ms, const std::string& op, const client::Result& r) {
  using client::Outcome;
  if (json) {
    nlohmann::json j;
    j["ok"] = r.outcome == Outcome::Ok;
    switch (r.outcome) {
      case Outcome::Ok:
        j["value"] = json_value(r.value);
        j["node"] = r.node;
        break;
      case Outcome::CasFailed:
        j["error"] = "cas_failed";
        j["value"] = json_value(r.value);
        j["node"] = r.node;
        break;
      case Outcome::Unavailable:
        j["error"] = "unavailable";
        j["tried"] = r.tried;
        break;
      case Outcome::Rejected:
        j["error"] = r.error;
        j["message"] = r.message;
        j["node"] = r.node;
        break;
    }
    j["attempts"] = r.attempts;
    j["latency_ms"] = static_cast<double>(r.latency.count()) / 1000.0;
    std::cout << j.dump() << std::endl;
  } else {
    switch (r.outcome) {
      case Outcome::Ok:
        if (op == "get") {
          std::cout << display(r.value) << std::endl;
        } else if (op == "delete") {
          std::cout << (r.value ? "(deleted) " + *r.value : std::string("(nil)")) << std::endl;
        } else {
          std::cout << "OK" << std::endl;
        }
        break;
      case Outcome::CasFailed:
        std::cout << "(cas failed) current: " << display(r.value) << std::endl;
        break;
      case Outcome::Unavailable:
        std::cerr << "error: cluster unavailable: no answer from any server within "
                  << deadline_ms << "ms (tried " << join(r.tried, ",") << ")"
                  << std::endl;
        break;
      case Outcome::Rejected:
        std::cerr << "error: request rejected (" << r.error << ")"
                  << (r.message.empty() ? "" : ": " + r.message) << std::endl;
        break;
    }
  }
  switch (r.outcome) {
    case Outcome::Ok: return kExitOk;
    case Outcome::CasFailed: return kExitCasFailed;
    case Outcome::Unavailable: return kExitUnavailable;
    case Outcome::Rejected: return kExitRejected;
  }
  return kExitOk;
}

int print_status(bool json, const std::vector<client::ServerStatus>& statuses) {
  bool any_up = false;
  for (const auto& st : statuses) any_up = any_up || st.up;

  if (json) {
    nlohmann::json array = nlohmann::json::array();
    for (const auto& st : statuses) {
      nlohmann::json j;
      j["id"] = st.id;
      j["address"] = st.address;
      j["up"] = st.up;
      if (st.up) {
        j["role"] = st.role;
        j["term"] = st.term;
        j["leader"] = st.leader.empty() ? nlohmann::json(nullptr) : nlohmann::json(st.leader);
        j["commit_index"] = st.commit_index;
        j["last_applied"] = st.last_applied;
        j["last_log_index"] = st.last_log_index;
        j["disk_full"] = st.disk_full;
        j["snapshot_index"] = st.snapshot_index ? nlohmann::json(*st.snapshot_index) : nlohmann::json(nullptr);
        if (!st.peer_drops.empty()) {
          nlohmann::json drops = nlohmann::json::object();
          for (const auto& [reason, count] : st.peer_drops) drops[reason] = count;
          j["peer_drops"] = std::move(drops);
        }
      } else {
        for (const char* k : {"role", "term", "leader", "commit_index", "last_applied",
                              "last_log_index", "snapshot_index"}) {
          j[k] = nullptr;
        }
      }
      array.push_back(std::move(j));
    }
    std::cout << array.dump() << std::endl;
    return any_up ? kExitOk : kExitUnavailable;
  }

  std::vector<std::vector<std::string>> rows;
  // SNAP: the latest snapshot's index, '-' from a node that does not say
  // (one without snapshots). DROPPED: peer datagrams the node refused (no
  // or bad MAC, another cluster, wrong address, broken rules); --json has
  // them by reason.
  rows.push_back({"ID", "ADDRESS", "STATE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED",
                  "LAST_LOG", "SNAP", "DROPPED"});
  for (const auto& st : statuses) {
    if (st.up) {
      std::uint64_t dropped = 0;
      for (const auto& [reason, count] : st.peer_drops) dropped += count;
      rows.push_back({st.id, st.address, st.disk_full ? "up,disk_full" : "up", st.role.empty() ? "-" : st.role,
                      std::to_string(st.term), st.leader.empty() ? "-" : st.leader,
                      std::to_string(st.commit_index), std::to_string(st.last_applied),
                      std::to_string(st.last_log_index),
                      st.snapshot_index ? std::to_string(*st.snapshot_index) : "-",
                      st.peer_drops.empty() ? "-" : std::to_string(dropped)});
    } else {
      rows.push_back({st.id, st.address, "down", "-", "-", "-", "-", "-", "-", "-", "-"});
    }
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << '\n';
  }
  std::cout << std::flush;
  return any_up ? kExitOk : kExitUnavailable;
}

int print_snapshot(bool json, int deadline_ms, const client::SnapshotResult& r) {
  const int code = !r.answered ? kExitUnavailable : r.ok ? kExitOk : kExitRejected;
  if (json) {
    nlohmann::json j;
    j["node"] = r.node;
    j["ok"] = r.answered && r.ok;
    if (r.answered) j["snapshot_index"] = r.snapshot_index;
    if (!r.answered) j["error"] = "unavailable";
    if (r.answered && !r.ok) j["message"] = r.message;
    j["latency_ms"] = static_cast<double>(r.latency.count()) / 1000.0;
    std::cout << j.dump() << std::endl;
  } else if (!r.answered) {
    std::cerr << "error: " << r.node << ": no snapshot reply within " << deadline_ms
              << "ms (down, or a node without the snapshot request)" << std::endl;
  } else if (r.ok) {
    std::cout << r.node << ": snapshot at index " << r.snapshot_index << std::endl;
  } else {
    std::cerr << "error: " << r.node << ": no snapshot taken" << (r.message.empty() ? "" : ": " + r.message)
              << " (latest at index " << r.snapshot_index << ")" << std::endl;
  }
  return code;
}

}  // namespace client_cli
