// The proxy's config file (docs/proxy.md, "Config"):
//   {"control":"127.0.0.1:CPORT",
//    "nodes":[{"id":"n1","public":"127.0.0.1:A1","private":"127.0.0.1:P1"}, ...]}
// Loading checks every field and throws ProxyConfigError with one line that
// names the file and the field. Header-only so the unit test can check it.
#pragma once

#include <cstddef>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "endpoint.h"

namespace proxy {

// Keeps every per-link table small and the stats reply within one datagram.
inline constexpr std::size_t kMaxNodes = 64;

struct ProxyConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NodeSpec {
  std::string id;
  Endpoint public_address;   // where peers and clients send to (the proxy binds it)
  Endpoint private_address;  // where the node itself binds
};

struct ProxyConfig {
  Endpoint control;
  std::vector<NodeSpec> nodes;
};

// A node id must also be half of a stats key ("n1>n2"), so '>' and the
// reserved endpoint names "client" and "*" are excluded.
inline bool is_valid_node_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id == "client") return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace config_detail {

using json = nlohmann::json;

struct FieldError {
  std::string field;
  std::string what;
};

[[noreturn]] inline void fail(const std::string& field, const std::string& what) {
  throw FieldError{field, what};
}

inline std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

inline Endpoint as_endpoint(const json& object, const char* key, const std::string& name) {
  const auto it = object.find(key);
  if (it == object.end()) fail(name, "missing");
  if (!it->is_string()) fail(name, "expected a \"host:port\" string, got " + std::string(it->type_name()));
  config::Address address;
  try {
    address = config::parse_address(it->get<std::string>());
  } catch (const config::ConfigError& e) {
    fail(name, e.what());
  }
  const auto endpoint = resolve(address);
  if (!endpoint) fail(name, "cannot resolve '" + address.to_string() + "'");
  return *endpoint;
}

inline ProxyConfig parse(const json& doc) {
  ProxyConfig config;
  config.control = as_endpoint(doc, "control", "control");
  const auto nodes = doc.find("nodes");
  if (nodes == doc.end()) fail("nodes", "missing");
  if (!nodes->is_array()) fail("nodes", "expected an array, got " + std::string(nodes->type_name()));
  if (nodes->empty()) fail("nodes", "expected at least one node");
  if (nodes->size() > kMaxNodes) fail("nodes", "at most " + std::to_string(kMaxNodes) + " nodes");
  // Every address the proxy binds or recognizes must be distinct, or routing
  // would be ambiguous.
  std::map<std::uint64_t, std::string> addresses{{config.control.key(), "control"}};
  auto claim = [&](const Endpoint& e, const std::string& name) {
    const auto [it, fresh] = addresses.emplace(e.key(), name);
    if (!fresh) fail(name, "address " + e.to_string() + " is also used by " + it->second);
  };
  for (std::size_t i = 0; i < nodes->size(); ++i) {
    const json& item = (*nodes)[i];
    const std::string name = "nodes[" + std::to_string(i) + "]";
    if (!item.is_object()) fail(name, "expected an object {\"id\", \"public\", \"private\"}");
    NodeSpec node;
    const auto id = item.find("id");
    if (id == item.end()) fail(name + ".id", "missing");
    if (!id->is_string() || !is_valid_node_id(id->get<std::string>())) {
      fail(name + ".id", "expected 1-64 characters of [A-Za-z0-9_.:-], not \"client\", got " + id->dump());
    }
    node.id = id->get<std::string>();
    for (const NodeSpec& other : config.nodes) {
      if (other.id == node.id) fail(name + ".id", "duplicate id '" + node.id + "'");
    }
    node.public_address = as_endpoint(item, "public", name + ".public");
    claim(node.public_address, name + ".public");
    node.private_address = as_endpoint(item, "private", name + ".private");
    claim(node.private_address, name + ".private");
    config.nodes.push_back(std::move(node));
  }
  return config;
}

}  // namespace config_detail

// `path` is used only in error messages.
inline ProxyConfig parse_proxy_config(const std::string& text, const std::string& path) {
  using config_detail::json;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (const auto end = what.find("] "); what.starts_with("[json.") && end != std::string::npos) {
      what = what.substr(end + 2);
    }
    throw ProxyConfigError(config_detail::one_line(path + ": not valid JSON: " + what));
  }
  if (!doc.is_object()) {
    throw ProxyConfigError(path + ": expected a JSON object at the top level");
  }
  try {
    return config_detail::parse(doc);
  } catch (const config_detail::FieldError& e) {
    throw ProxyConfigError(config_detail::one_line(path + ": field '" + e.field + "': " + e.what));
  }
}

inline ProxyConfig load_proxy_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ProxyConfigError(path + ": cannot open file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ProxyConfigError(path + ": cannot read file");
  return parse_proxy_config(text.str(), path);
}

}  // namespace proxy
