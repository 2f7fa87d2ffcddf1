#include "config/config.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace config {
namespace {

using json = nlohmann::json;

// Thrown by the field checkers below, which do not know the file name;
// load_*() adds it. Keeping the two apart lets every checker stay short.
struct FieldError {
  std::string field;
  std::string what;
};

[[noreturn]] void fail(const std::string& field, const std::string& what) {
  throw FieldError{field, what};
}

// ConfigError promises one line; parser messages or odd field names must not
// break that.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string describe(const json& v) {
  if (v.is_number_float()) return "a non-integer number";
  if (v.is_number()) return "an integer";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return v.type_name();
}

// Same rule as wire::is_valid_client_id (PROTOCOL.md: 1-64 characters of
// [A-Za-z0-9_.:-]), repeated here because the config library must not depend
// on the wire library. Cluster ids follow it too (auth::is_valid_cluster_id).
bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

const json* find(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const json& require(const json& object, const char* key, const std::string& name) {
  const json* v = find(object, key);
  if (v == nullptr) fail(name, "missing");
  return *v;
}

std::string as_non_empty_string(const json& v, const std::string& name) {
  if (!v.is_string()) fail(name, "expected a non-empty string, got " + describe(v));
  std::string s = v.get<std::string>();
  if (s.empty()) fail(name, "expected a non-empty string, got an empty one");
  return s;
}

// An int that fits `int`; floats such as 50.0 and booleans are rejected so a
// typo never silently becomes a different timeout.
bool as_int(const json& v, int& out) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT_MAX)) return false;
    out = static_cast<int>(u);
    return true;
  }
  if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i < INT_MIN || i > INT_MAX) return false;
    out = static_cast<int>(i);
    return true;
  }
  return false;
}

int as_positive_int(const json& v, const std::string& name) {
  int out = 0;
  if (!as_int(v, out) || out <= 0) fail(name, "expected a positive integer, got " + v.dump());
  return out;
}

// An integer in [min, max], for the snapshot parameters (counts and bytes
// beyond int's range).
std::uint64_t as_count(const json& v, const std::string& name, std::uint64_t min, std::uint64_t max) {
  if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0) ||
      v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max) {
    fail(name, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + v.dump());
  }
  return v.get<std::uint64_t>();
}

Address as_address(const json& v, const std::string& name) {
  if (!v.is_string()) fail(name, "expected a \"host:port\" string, got " + describe(v));
  try {
    return parse_address(v.get<std::string>());
  } catch (const ConfigError& e) {
    fail(name, e.what());
  }
}

ServerRef as_server_ref(const json& v, const std::string& name) {
  if (!v.is_object()) fail(name, "expected an object {\"id\", \"address\"}, got " + describe(v));
  ServerRef ref;
  ref.id = as_non_empty_string(require(v, "id", name + ".id"), name + ".id");
  ref.address = as_address(require(v, "address", name + ".address"), name + ".address");
  return ref;
}

std::vector<ServerRef> as_server_list(const json& v, const std::string& name) {
  if (!v.is_array()) fail(name, "expected an array, got " + describe(v));
  std::vector<ServerRef> list;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string item = name + "[" + std::to_string(i) + "]";
    ServerRef ref = as_server_ref(v[i], item);
    if (!seen.insert(ref.id).second) fail(item + ".id", "duplicate id '" + ref.id + "'");
    list.push_back(std::move(ref));
  }
  return list;
}

// Configs written before peer authentication lack these fields; the fix is
// a fresh set of configs and key, so say so rather than just "missing".
const json& require_auth_field(const json& doc, const char* key) {
  const json* v = find(doc, key);
  if (v == nullptr) {
    fail(key, "missing; this config predates peer authentication, rerun ./setup --force "
              "to write new configs and a cluster key");
  }
  return *v;
}

const json* optional_object(const json& doc, const char* key) {
  const json* v = find(doc, key);
  if (v != nullptr && !v->is_object()) fail(key, "expected an object, got " + describe(*v));
  return v;
}

ServerConfig parse_server(const json& doc) {
  ServerConfig c;
  c.id = as_non_empty_string(require(doc, "id", "id"), "id");
  c.listen = as_address(require(doc, "listen", "listen"), "listen");
  c.data_dir = as_non_empty_string(require(doc, "data_dir", "data_dir"), "data_dir");
  c.peers = as_server_list(require(doc, "peers", "peers"), "peers");
  for (std::size_t i = 0; i < c.peers.size(); ++i) {
    if (c.peers[i].id == c.id) {
      fail("peers[" + std::to_string(i) + "].id", "'" + c.id + "' is this server's own id");
    }
  }

  const json& cluster_id = require_auth_field(doc, "cluster_id");
  if (!cluster_id.is_string() || !is_valid_id(cluster_id.get<std::string>())) {
    fail("cluster_id",
         "expected a cluster id of 1-64 characters of [A-Za-z0-9_.:-], got " + cluster_id.dump());
  }
  c.cluster_id = cluster_id.get<std::string>();
  c.cluster_key_file =
      as_non_empty_string(require_auth_field(doc, "cluster_key_file"), "cluster_key_file");
  if (const json* v = find(doc, "peers_behind_proxy"); v != nullptr) {
    if (!v->is_boolean()) fail("peers_behind_proxy", "expected true or false, got " + describe(*v));
    c.peers_behind_proxy = v->get<bool>();
  }

  if (const json* params = optional_object(doc, "params"); params != nullptr) {
    if (const json* v = find(*params, "heartbeat_interval_ms"); v != nullptr) {
      c.params.heartbeat_interval_ms = as_positive_int(*v, "params.heartbeat_interval_ms");
    }
    if (const json* v = find(*params, "election_timeout_ms"); v != nullptr) {
      int lo = 0;
      int hi = 0;
      if (!v->is_array() || v->size() != 2 || !as_int((*v)[0], lo) || !as_int((*v)[1], hi) ||
          lo <= 0 || lo > hi) {
        fail("params.election_timeout_ms",
             "expected [min, max] with 0 < min <= max, got " + v->dump());
      }
      c.params.election_timeout_min_ms = lo;
      c.params.election_timeout_max_ms = hi;
    }
    // 2^53 - 1: the JSON-exact range; 0 turns a threshold off, except that
    // at least one must stay on, or the log grows without bound.
    constexpr std::uint64_t kMaxParam = (std::uint64_t{1} << 53) - 1;
    if (const json* v = find(*params, "snapshot_threshold_entries"); v != nullptr) {
      c.params.snapshot_threshold_entries = as_count(*v, "params.snapshot_threshold_entries", 1, kMaxParam);
    }
    if (const json* v = find(*params, "snapshot_threshold_bytes"); v != nullptr) {
      c.params.snapshot_threshold_bytes = as_count(*v, "params.snapshot_threshold_bytes", 0, kMaxParam);
    }
    if (const json* v = find(*params, "snapshot_trailing_entries"); v != nullptr) {
      c.params.snapshot_trailing_entries = as_count(*v, "params.snapshot_trailing_entries", 0, kMaxParam);
    }
  }
  // Checked after defaults are filled in: a heartbeat no faster than the
  // shortest election timeout lets followers start elections against a
  // healthy leader.
  if (c.params.heartbeat_interval_ms >= c.params.election_timeout_min_ms) {
    fail("params.heartbeat_interval_ms",
         "must be less than the election timeout minimum (" +
             std::to_string(c.params.election_timeout_min_ms) + " ms), got " +
             std::to_string(c.params.heartbeat_interval_ms));
  }
  return c;
}

ClientConfig parse_client(const json& doc) {
  ClientConfig c;
  const json& id = require(doc, "id", "id");
  if (!id.is_string() || !is_valid_id(id.get<std::string>())) {
    fail("id", "expected a client id of 1-64 characters of [A-Za-z0-9_.:-], got " + id.dump());
  }
  c.id = id.get<std::string>();
  c.servers = as_server_list(require(doc, "servers", "servers"), "servers");
  if (c.servers.empty()) fail("servers", "expected at least one server");

  if (const json* params = optional_object(doc, "params"); params != nullptr) {
    if (const json* v = find(*params, "request_timeout_ms"); v != nullptr) {
      c.params.request_timeout_ms = as_positive_int(*v, "params.request_timeout_ms");
    }
    if (const json* v = find(*params, "deadline_ms"); v != nullptr) {
      c.params.deadline_ms = as_positive_int(*v, "params.deadline_ms");
    }
  }
  // A deadline shorter than one request timeout would give up before the
  // first attempt could time out.
  if (c.params.deadline_ms < c.params.request_timeout_ms) {
    fail("params.deadline_ms", "must be >= request_timeout_ms (" +
                                   std::to_string(c.params.request_timeout_ms) + "), got " +
                                   std::to_string(c.params.deadline_ms));
  }
  return c;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string read_file(const std::string& path) {
  // stdio rather than ifstream: fopen and fread reliably set errno, which
  // gives the "No such file or directory" part of the message.
  errno = 0;
  const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  return text;
}

template <typename Config, typename Parse>
Config load(const std::string& path, Parse parse) {
  const std::string text = read_file(path);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " tag.
    if (const auto end = what.find("] "); what.starts_with("[json.") && end != std::string::npos) {
      what = what.substr(end + 2);
    }
    throw ConfigError(one_line(path + ": not valid JSON: " + what));
  }
  if (!doc.is_object()) {
    throw ConfigError(path + ": expected a JSON object at the top level, got " + describe(doc));
  }
  try {
    return parse(doc);
  } catch (const FieldError& e) {
    throw ConfigError(one_line(path + ": field '" + e.field + "': " + e.what));
  }
}

nlohmann::ordered_json server_list_json(const std::vector<ServerRef>& list) {
  auto out = nlohmann::ordered_json::array();
  for (const ServerRef& ref : list) {
    out.push_back({{"id", ref.id}, {"address", ref.address.to_string()}});
  }
  return out;
}

std::string pretty(const nlohmann::ordered_json& doc) {
  // replace: a config built in code with a non-UTF-8 string still serializes.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

// Decimal digits only, without sign or spaces; false when empty or too long
// to matter (the caller bounds the value).
bool parse_decimal(std::string_view text, std::size_t max_digits, unsigned long& out) {
  if (text.empty() || text.size() > max_digits) return false;
  out = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<unsigned long>(c - '0');
  }
  return true;
}

bool is_dotted_ipv4(std::string_view host) {
  int parts = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = host.find('.', start);
    const std::string_view part =
        host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    unsigned long octet = 0;
    // Leading zeros are refused, as inet_pton does, because some tools read
    // them as octal.
    if (!parse_decimal(part, 3, octet) || octet > 255 || (part.size() > 1 && part[0] == '0')) {
      return false;
    }
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

}  // namespace

std::string Address::to_string() const { return host + ":" + std::to_string(port); }

Address parse_address(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    throw ConfigError("expected \"host:port\", got '" + text + "'");
  }
  const std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  // "localhost" stays as text; turning it into 127.0.0.1 belongs to the
  // network layer, which resolves names.
  if (host != "localhost" && !is_dotted_ipv4(host)) {
    throw ConfigError("host must be a dotted IPv4 address or localhost, got '" + text + "'");
  }
  unsigned long port = 0;
  if (!parse_decimal(port_text, 5, port) || port < 1 || port > 65535) {
    throw ConfigError("port must be an integer in 1..65535, got '" + text + "'");
  }
  return Address{host, static_cast<std::uint16_t>(port)};
}

ServerConfig load_server_config(const std::string& path) {
  return load<ServerConfig>(path, parse_server);
}

ClientConfig load_client_config(const std::string& path) {
  return load<ClientConfig>(path, parse_client);
}

std::string to_json(const ServerConfig& config) {
  nlohmann::ordered_json doc;
  doc["id"] = config.id;
  doc["listen"] = config.listen.to_string();
  doc["data_dir"] = config.data_dir;
  doc["peers"] = server_list_json(config.peers);
  doc["cluster_id"] = config.cluster_id;
  doc["cluster_key_file"] = config.cluster_key_file;
  doc["peers_behind_proxy"] = config.peers_behind_proxy;
  doc["params"] = {
      {"heartbeat_interval_ms", config.params.heartbeat_interval_ms},
      {"election_timeout_ms",
       {config.params.election_timeout_min_ms, config.params.election_timeout_max_ms}},
      {"snapshot_threshold_entries", config.params.snapshot_threshold_entries},
      {"snapshot_threshold_bytes", config.params.snapshot_threshold_bytes},
      {"snapshot_trailing_entries", config.params.snapshot_trailing_entries},
  };
  return pretty(doc);
}

std::string to_json(const ClientConfig& config) {
  nlohmann::ordered_json doc;
  doc["id"] = config.id;
  doc["servers"] = server_list_json(config.servers);
  doc["params"] = {
      {"request_timeout_ms", config.params.request_timeout_ms},
      {"deadline_ms", config.params.deadline_ms},
  };
  return pretty(doc);
}

}  // namespace config
