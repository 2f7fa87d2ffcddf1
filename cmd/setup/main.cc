// setup: writes the server and client config files of a local cluster in
// PROTOCOL.md's format ("Configs"), and the cluster key their peers
// authenticate each other with (src/auth/peer_auth.h).
//
// Exit status: 0 on success, 1 when the files cannot be written (or would
// overwrite existing ones without --force), 2 on bad arguments.

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <climits>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "auth/peer_auth.h"
#include "config/config.h"

namespace fs = std::filesystem;

namespace {

constexpr int kMaxServers = 99;  // keeps ids and ports short; more is no test
constexpr int kMaxClients = 999;

const char* const kUsage =
    "usage: setup [N] [M] [options]\n"
    "Writes DIR/server-1.json ... DIR/server-N.json and DIR/client-1.json ... DIR/client-M.json.\n"
    "Server i has id n<i>, listens on HOST:(P+i-1) and keeps its state in data/n<i>.\n"
    "Also writes DIR/cluster.key (mode 0600), a fresh random key with which the servers\n"
    "authenticate each other's messages, and gives every server config a fresh random\n"
    "cluster_id; nodes refuse peer messages of any other cluster. Clients need no key.\n"
    "\n"
    "  N                              number of servers, 1-99 (default 5)\n"
    "  M                              number of clients, 0-999 (default 3)\n"
    "  --dir DIR                      output directory (default configs)\n"
    "  --host H                       IPv4 address of every server (default 127.0.0.1)\n"
    "  --base-port P                  port of server 1 (default 7001)\n"
    "  --heartbeat-ms MS              leader heartbeat interval (default 50)\n"
    "  --election-timeout-ms MIN,MAX  randomized election timeout range (default 150,300)\n"
    "  --request-timeout-ms MS        client's wait before retrying (default 500)\n"
    "  --deadline-ms MS               client's overall deadline per command (default 10000)\n"
    "  --snapshot-entries N           snapshot once N entries were applied since the last (default 10000)\n"
    "  --snapshot-bytes B             ... or B bytes of entry data, 0 = off (default 16777216)\n"
    "  --snapshot-trailing N          entries kept behind a snapshot for lagging followers (default 1000)\n"
    "  --force                        overwrite existing configs and cluster.key, delete stale configs\n"
    "  --help                         show this help\n";

// Thrown for anything the user typed wrong; main() turns it into exit 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown when the files cannot be written; main() turns it into exit 1.
struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  int servers = 5;
  int clients = 3;
  std::string dir = "configs";
  std::string host = "127.0.0.1";
  int base_port = 7001;
  int heartbeat_ms = 50;
  int election_min_ms = 150;
  int election_max_ms = 300;
  int request_timeout_ms = 500;
  int deadline_ms = 10000;
  int snapshot_entries = 10000;
  int snapshot_bytes = 16 << 20;
  int snapshot_trailing = 1000;
  bool force = false;
  bool help = false;
};

// Whole-string decimal parse: std::stoi would accept "12abc" and " 12".
int parse_int(std::string_view text, const std::string& what, long long min, long long max) {
  long long value = 0;
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
    throw UsageError(what + " must be an integer, got '" + std::string(text) + "'");
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    throw UsageError(what + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + ", got " + std::string(text));
  }
  return static_cast<int>(value);
}

bool looks_like_number(std::string_view arg) {
  // "-1" is a (bad) count, not an unknown flag, so it gets the range message.
  std::size_t i = (!arg.empty() && arg[0] == '-') ? 1 : 0;
  return i < arg.size() && arg[i] >= '0' && arg[i] <= '9';
}

Options parse_args(int argc, char** argv) {
  Options options;
  std::vector<std::string_view> positional;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.empty() || arg[0] != '-' || looks_like_number(arg)) {
      positional.push_back(arg);
      continue;
    }
    // Both "--flag value" and "--flag=value".
    std::string name(arg);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) throw UsageError(name + " needs a value");
      return argv[++i];
    };
    auto no_value = [&] {
      if (inline_value) throw UsageError(name + " takes no value");
    };

    if (name == "--help" || name == "-h") {
      no_value();
      options.help = true;
    } else if (name == "--force") {
      no_value();
      options.force = true;
    } else if (name == "--dir") {
      options.dir = value();
      if (options.dir.empty()) throw UsageError("--dir must not be empty");
    } else if (name == "--host") {
      options.host = value();
    } else if (name == "--base-port") {
      options.base_port = parse_int(value(), "--base-port", 1, 65535);
    } else if (name == "--heartbeat-ms") {
      options.heartbeat_ms = parse_int(value(), "--heartbeat-ms", 1, INT_MAX);
    } else if (name == "--election-timeout-ms") {
      const std::string range = value();
      const auto comma = range.find(',');
      if (comma == std::string::npos) {
        throw UsageError("--election-timeout-ms must be MIN,MAX, got '" + range + "'");
      }
      options.election_min_ms =
          parse_int(std::string_view(range).substr(0, comma), "election timeout MIN", 1, INT_MAX);
      options.election_max_ms =
          parse_int(std::string_view(range).substr(comma + 1), "election timeout MAX", 1, INT_MAX);
    } else if (name == "--request-timeout-ms") {
      options.request_timeout_ms = parse_int(value(), "--request-timeout-ms", 1, INT_MAX);
    } else if (name == "--deadline-ms") {
      options.deadline_ms = parse_int(value(), "--deadline-ms", 1, INT_MAX);
    } else if (name == "--snapshot-entries") {
      options.snapshot_entries = parse_int(value(), "--snapshot-entries", 1, INT_MAX);
    } else if (name == "--snapshot-bytes") {
      options.snapshot_bytes = parse_int(value(), "--snapshot-bytes", 0, INT_MAX);
    } else if (name == "--snapshot-trailing") {
      options.snapshot_trailing = parse_int(value(), "--snapshot-trailing", 0, INT_MAX);
    } else {
      throw UsageError("unknown option " + name);
    }
  }
  if (options.help) return options;

  if (positional.size() > 2) {
    throw UsageError("unexpected argument '" + std::string(positional[2]) + "'");
  }
  if (positional.size() >= 1) {
    options.servers = parse_int(positional[0], "N (servers)", 1, kMaxServers);
  }
  if (positional.size() >= 2) {
    options.clients = parse_int(positional[1], "M (clients)", 0, kMaxClients);
  }

  if (options.base_port + options.servers - 1 > 65535) {
    throw UsageError("ports " + std::to_string(options.base_port) + ".." +
                     std::to_string(options.base_port + options.servers - 1) +
                     " run past 65535; lower --base-port");
  }
  if (options.election_min_ms > options.election_max_ms) {
    throw UsageError("election timeout MIN (" + std::to_string(options.election_min_ms) +
                     ") exceeds MAX (" + std::to_string(options.election_max_ms) + ")");
  }
  // A follower whose election timer can fire before a heartbeat arrives
  // would keep deposing a healthy leader.
  if (options.heartbeat_ms >= options.election_min_ms) {
    throw UsageError("--heartbeat-ms (" + std::to_string(options.heartbeat_ms) +
                     ") must be below the election timeout MIN (" +
                     std::to_string(options.election_min_ms) + ")");
  }
  // Let config's own parser judge the host, so setup never writes a file
  // the node would refuse; it also canonicalizes "localhost".
  try {
    options.host = config::parse_address(options.host + ":" + std::to_string(options.base_port)).host;
  } catch (const config::ConfigError& e) {
    throw UsageError("bad --host '" + options.host + "': " + e.what());
  }
  return options;
}

// Parses "server-K.json" / "client-K.json" for the given prefix; K is a
// positive decimal without leading zeros, so only names setup writes match.
std::optional<int> numbered_name(const std::string& name, std::string_view prefix) {
  constexpr std::string_view suffix = ".json";
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  const std::string_view digits =
      std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits[0] == '0' || digits.size() > 6) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::stoi(std::string(digits));
}

constexpr const char* kKeyFileName = "cluster.key";

bool is_config_name(const std::string& name) {
  // A key left from an earlier run belongs to configs that may still be in
  // use elsewhere; replacing it needs --force as much as they do.
  if (name == kKeyFileName) return true;
  // Matches the glob server-*.json / client-*.json, the files that a node or
  // the launcher might pick up as part of the cluster.
  for (std::string_view prefix : {"server-", "client-"}) {
    if (name.size() > prefix.size() + 5 && name.starts_with(prefix) && name.ends_with(".json")) {
      return true;
    }
  }
  return false;
}

std::vector<fs::path> existing_configs(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return found;
  if (!fs::is_directory(dir, ec)) throw SetupError(dir.string() + " exists and is not a directory");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (is_config_name(entry.path().filename().string())) found.push_back(entry.path());
  }
  if (ec) throw SetupError("cannot list " + dir.string() + ": " + ec.message());
  // Directory order is arbitrary; sorted output is easier to read and diff.
  std::sort(found.begin(), found.end());
  return found;
}

// Write-then-rename so that an interrupted run never leaves a half-written
// config for a node to choke on.
void write_file(const fs::path& path, const std::string& text) {
  fs::path temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw SetupError("cannot write " + temp.string());
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    throw SetupError("cannot create " + path.string() + ": " + ec.message());
  }
}

std::string server_id(int i) { return "n" + std::to_string(i); }

void run(const Options& options) {
  const fs::path dir = options.dir;
  const std::vector<fs::path> existing = existing_configs(dir);
  if (!existing.empty() && !options.force) {
    throw SetupError(dir.string() + " already holds configs (e.g. " +
                     existing.front().filename().string() +
                     "); refusing to overwrite them, pass --force to replace them");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw SetupError("cannot create directory " + dir.string() + ": " + ec.message());

  // The key first: a server config never names a key file that is not there.
  // The path is the one setup was given (e.g. configs/cluster.key), which the
  // node resolves from the directory it is started in, as it does data_dir.
  const fs::path key_path = dir / kKeyFileName;
  auth::write_key_file(key_path.string());
  std::cout << "wrote " << key_path.string() << "\n";
  // Fresh per run: nodes of an older cluster (same ports, other key) that
  // are still running are then refused as foreign, and say so in their logs.
  const std::string cluster_id = auth::random_cluster_id();

  std::vector<config::ServerRef> servers;
  for (int i = 1; i <= options.servers; ++i) {
    servers.push_back({server_id(i), config::Address{options.host,
                                                     static_cast<std::uint16_t>(options.base_port + i - 1)}});
  }

  for (int i = 1; i <= options.servers; ++i) {
    config::ServerConfig server;
    server.id = server_id(i);
    server.listen = servers[i - 1].address;
    server.data_dir = "data/" + server.id;
    for (const config::ServerRef& peer : servers) {
      if (peer.id != server.id) server.peers.push_back(peer);
    }
    server.params.heartbeat_interval_ms = options.heartbeat_ms;
    server.params.election_timeout_min_ms = options.election_min_ms;
    server.params.election_timeout_max_ms = options.election_max_ms;
    server.params.snapshot_threshold_entries = static_cast<std::uint64_t>(options.snapshot_entries);
    server.params.snapshot_threshold_bytes = static_cast<std::uint64_t>(options.snapshot_bytes);
    server.params.snapshot_trailing_entries = static_cast<std::uint64_t>(options.snapshot_trailing);
    server.cluster_id = cluster_id;
    server.cluster_key_file = key_path.string();

    const fs::path path = dir / ("server-" + std::to_string(i) + ".json");
    const std::string text = config::to_json(server);
    write_file(path, text);
    // Reading back through the node's own loader proves the file is one the
    // node accepts, not merely one we believe is right.
    if (config::to_json(config::load_server_config(path.string())) != text) {
      throw SetupError(path.string() + " does not read back as written");
    }
    std::cout << "wrote " << path.string() << "\n";
  }

  for (int i = 1; i <= options.clients; ++i) {
    config::ClientConfig client;
    client.id = "c" + std::to_string(i);
    client.servers = servers;
    client.params.request_timeout_ms = options.request_timeout_ms;
    client.params.deadline_ms = options.deadline_ms;

    const fs::path path = dir / ("client-" + std::to_string(i) + ".json");
    const std::string text = config::to_json(client);
    write_file(path, text);
    if (config::to_json(config::load_client_config(path.string())) != text) {
      throw SetupError(path.string() + " does not read back as written");
    }
    std::cout << "wrote " << path.string() << "\n";
  }

  // Leftovers from a bigger cluster would otherwise be started by tools that
  // glob the directory, as servers that the new ones have never heard of.
  for (const fs::path& path : existing) {
    const std::string name = path.filename().string();
    const auto server = numbered_name(name, "server-");
    const auto client = numbered_name(name, "client-");
    if ((server && *server > options.servers) || (client && *client > options.clients)) {
      fs::remove(path, ec);
      if (ec) throw SetupError("cannot remove stale " + path.string() + ": " + ec.message());
      std::cout << "removed stale " << path.string() << "\n";
    }
  }

  // Under `make cluster` (make exports MAKELEVEL) the cluster is starting
  // already; telling the user to start it would only confuse.
  if (std::getenv("MAKELEVEL") == nullptr) std::cout << "start the cluster with: make cluster\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_args(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "setup: " << e.what() << "\n" << kUsage;
    return 2;
  }
  if (options.help) {
    std::cout << kUsage;
    return 0;
  }
  try {
    run(options);
  } catch (const std::exception& e) {
    // SetupError, ConfigError from the read-back, filesystem errors, bad_alloc.
    std::cerr << "setup: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
