// Server and client config files (PROTOCOL.md, "Configs"). Loading checks
// every field and throws ConfigError with one line naming file and field.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace config {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Address {
  std::string host;  // dotted IPv4, e.g. 127.0.0.1 ("localhost" is accepted and mapped)
  std::uint16_t port = 0;
  std::string to_string() const;  // "host:port"
};
// Parses "host:port"; throws ConfigError (message without file name) when bad.
Address parse_address(const std::string& text);

struct ServerRef {
  std::string id;
  Address address;
};

struct ServerParams {
  int heartbeat_interval_ms = 50;
  int election_timeout_min_ms = 150;
  int election_timeout_max_ms = 300;
  // Snapshots (docs/PROTOCOL.md, "Snapshots and the snapshot lab"): take one
  // once this many entries, or this many bytes of entry data, have been
  // applied since the last; keep this many entries behind it so a follower
  // that lags a little catches up without a whole snapshot (at most half
  // the entry threshold, so a small threshold still bounds the log).
  std::uint64_t snapshot_threshold_entries = 10000;
  std::uint64_t snapshot_threshold_bytes = std::uint64_t{16} << 20;  // 16 MiB
  std::uint64_t snapshot_trailing_entries = 1000;
};

struct ServerConfig {
  std::string id;
  Address listen;
  std::string data_dir;
  std::vector<ServerRef> peers;
  ServerParams params;
  // Peer authentication (src/auth): every server-to-server datagram carries
  // cluster_id and a MAC made with the key in cluster_key_file. The config
  // keeps only the path (relative paths are taken from the directory the
  // node starts in, as data_dir is); the node loads the key, so this library
  // needs no crypto.
  std::string cluster_id;  // 1-64 characters of [A-Za-z0-9_.:-]
  std::string cluster_key_file;
  // True when a fault proxy relays peer traffic: a peer's datagrams then
  // arrive from the proxy's address, not the one listed for the peer, so the
  // node must not insist on it (the MAC still must verify).
  bool peers_behind_proxy = false;
};

struct ClientParams {
  int request_timeout_ms = 500;
  int deadline_ms = 10000;
};

struct ClientConfig {
  std::string id;
  std::vector<ServerRef> servers;
  ClientParams params;
};

ServerConfig load_server_config(const std::string& path);
ClientConfig load_client_config(const std::string& path);

// Pretty-printed JSON (2-space indent, trailing newline) in PROTOCOL.md's format.
std::string to_json(const ServerConfig& config);
std::string to_json(const ClientConfig& config);

}  // namespace config
