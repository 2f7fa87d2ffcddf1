// Loading server and client configs: valid files load, every bad field is
// reported on one line naming the file and the field, to_json round-trips.
#include "config/config.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const char* const kServerExample = R"({"id":"n1","listen":"127.0.0.1:7001","data_dir":"data/n1",
 "peers":[{"id":"n2","address":"127.0.0.1:7002"},{"id":"n3","address":"127.0.0.1:7003"}],
 "cluster_id":"k0123456789abcdef","cluster_key_file":"configs/cluster.key",
 "params":{"heartbeat_interval_ms":50,"election_timeout_ms":[150,300]}})";

const char* const kClientExample = R"({"id":"c1","servers":[{"id":"n1","address":"127.0.0.1:7001"},
 {"id":"n2","address":"127.0.0.1:7002"}],
 "params":{"request_timeout_ms":500,"deadline_ms":10000}})";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A private directory per test: tests of other modules may run at the
    // same time in the same tree.
    std::string pattern = (fs::temp_directory_path() / "config_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    out << text;
    return path;
  }

  // Loads a server config with `field` (a JSON pointer) set to `value`, or
  // removed when `remove`; returns the error message ("" if it loaded).
  std::string server_error(const std::string& pointer, const json& value, bool remove = false) {
    json j = json::parse(kServerExample);
    if (remove) {
      const json::json_pointer p(pointer);
      j[p.parent_pointer()].erase(p.back());
    } else {
      j[json::json_pointer(pointer)] = value;
    }
    return load_error([&](const std::string& path) { config::load_server_config(path); },
                      j.dump());
  }

  std::string client_error(const std::string& pointer, const json& value, bool remove = false) {
    json j = json::parse(kClientExample);
    if (remove) {
      const json::json_pointer p(pointer);
      j[p.parent_pointer()].erase(p.back());
    } else {
      j[json::json_pointer(pointer)] = value;
    }
    return load_error([&](const std::string& path) { config::load_client_config(path); },
                      j.dump());
  }

  template <typename Load>
  std::string load_error(Load load, const std::string& text) {
    const std::string path = write("bad.json", text);
    try {
      load(path);
    } catch (const config::ConfigError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
      return message;
    }
    return "";
  }

  fs::path dir_;
};

void expect_names(const std::string& message, const std::string& field) {
  EXPECT_NE(message.find("field '" + field + "'"), std::string::npos)
      << "expected field '" << field << "' in: " << message;
}

// ---------- addresses ----------

TEST(Address, Parses) {
  const config::Address a = config::parse_address("127.0.0.1:7001");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 7001);
  EXPECT_EQ(a.to_string(), "127.0.0.1:7001");
  EXPECT_EQ(config::parse_address("0.0.0.0:1").port, 1);
  EXPECT_EQ(config::parse_address("255.255.255.255:65535").port, 65535);
  const config::Address local = config::parse_address("localhost:9000");
  EXPECT_EQ(local.host, "localhost");
  EXPECT_EQ(local.to_string(), "localhost:9000");
}

TEST(Address, Rejects) {
  for (const char* text :
       {"", "127.0.0.1", "127.0.0.1:", ":7001", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:70a", "127.0.0.1: 7001", "127.0.0.1:+80", "127.0.0:7001",
        "127.0.0.1.5:7001", "256.0.0.1:7001", "1..2.3:7001", "01.2.3.4:7001", "a.b.c.d:7001",
        "example.com:80", "::1:7001", "[::1]:7001", "127.0.0.1:7001:7002", "127.0.0.1:1234567"}) {
    EXPECT_THROW(config::parse_address(text), config::ConfigError) << text;
  }
}

// ---------- valid configs ----------

TEST_F(ConfigTest, LoadsServerExample) {
  const config::ServerConfig c = config::load_server_config(write("server.json", kServerExample));
  EXPECT_EQ(c.id, "n1");
  EXPECT_EQ(c.listen.to_string(), "127.0.0.1:7001");
  EXPECT_EQ(c.data_dir, "data/n1");
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[0].id, "n2");
  EXPECT_EQ(c.peers[0].address.port, 7002);
  EXPECT_EQ(c.peers[1].id, "n3");
  EXPECT_EQ(c.params.heartbeat_interval_ms, 50);
  EXPECT_EQ(c.params.election_timeout_min_ms, 150);
  EXPECT_EQ(c.params.election_timeout_max_ms, 300);
  EXPECT_EQ(c.cluster_id, "k0123456789abcdef");
  EXPECT_EQ(c.cluster_key_file, "configs/cluster.key");  // kept as written, not resolved
  EXPECT_FALSE(c.peers_behind_proxy);
}

TEST_F(ConfigTest, ServerDefaultsAndUnknownFields) {
  const config::ServerConfig c = config::load_server_config(write(
      "server.json",
      R"({"id":"n1","listen":"localhost:7001","data_dir":"d","peers":[],"cluster_id":"c","cluster_key_file":"k","comment":"x","params":{"extra":1}})"));
  EXPECT_TRUE(c.peers.empty());
  EXPECT_EQ(c.params.heartbeat_interval_ms, config::ServerParams{}.heartbeat_interval_ms);
  EXPECT_EQ(c.params.election_timeout_min_ms, config::ServerParams{}.election_timeout_min_ms);
  EXPECT_EQ(c.params.election_timeout_max_ms, config::ServerParams{}.election_timeout_max_ms);
  const config::ServerConfig equal = config::load_server_config(write(
      "equal.json",
      R"({"id":"n1","listen":"127.0.0.1:7001","data_dir":"d","peers":[],"cluster_id":"c","cluster_key_file":"k","params":{"heartbeat_interval_ms":10,"election_timeout_ms":[100,100]}})"));
  EXPECT_EQ(equal.params.election_timeout_min_ms, 100);
  EXPECT_EQ(equal.params.election_timeout_max_ms, 100);
}

TEST_F(ConfigTest, LoadsClientExample) {
  const config::ClientConfig c = config::load_client_config(write("client.json", kClientExample));
  EXPECT_EQ(c.id, "c1");
  ASSERT_EQ(c.servers.size(), 2u);
  EXPECT_EQ(c.servers[1].id, "n2");
  EXPECT_EQ(c.servers[1].address.to_string(), "127.0.0.1:7002");
  EXPECT_EQ(c.params.request_timeout_ms, 500);
  EXPECT_EQ(c.params.deadline_ms, 10000);
}

TEST_F(ConfigTest, ClientDefaults) {
  const config::ClientConfig c = config::load_client_config(
      write("client.json", R"({"id":"c-1.x:y_z","servers":[{"id":"n1","address":"127.0.0.1:1"}]})"));
  EXPECT_EQ(c.params.request_timeout_ms, config::ClientParams{}.request_timeout_ms);
  EXPECT_EQ(c.params.deadline_ms, config::ClientParams{}.deadline_ms);
}

// ---------- file-level errors ----------

TEST_F(ConfigTest, MissingFile) {
  const std::string path = (dir_ / "nope.json").string();
  try {
    config::load_server_config(path);
    FAIL() << "expected ConfigError";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot open: No such file or directory");
  }
  EXPECT_THROW(config::load_client_config(path), config::ConfigError);
}

TEST_F(ConfigTest, DirectoryIsNotAFile) {
  EXPECT_THROW(config::load_server_config(dir_.string()), config::ConfigError);
}

TEST_F(ConfigTest, NotJson) {
  for (const char* text : {"", "{", "{\"id\":\"n1\",}", "nonsense", "{\"id\":\"n1\"}\n{}"}) {
    const std::string message =
        load_error([](const std::string& p) { config::load_server_config(p); }, text);
    EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
  }
}

TEST_F(ConfigTest, NotAnObject) {
  for (const char* text : {"[]", "3", "\"n1\"", "null"}) {
    EXPECT_NE(load_error([](const std::string& p) { config::load_server_config(p); }, text), "");
    EXPECT_NE(load_error([](const std::string& p) { config::load_client_config(p); }, text), "");
  }
}

// ---------- server field errors ----------

TEST_F(ConfigTest, ServerMissingFields) {
  for (const char* field : {"id", "listen", "data_dir", "peers"}) {
    expect_names(server_error(std::string("/") + field, nullptr, true), field);
  }
  expect_names(server_error("/peers/1/id", nullptr, true), "peers[1].id");
  expect_names(server_error("/peers/0/address", nullptr, true), "peers[0].address");
}

TEST_F(ConfigTest, ServerWrongFields) {
  expect_names(server_error("/id", ""), "id");
  expect_names(server_error("/id", 1), "id");
  expect_names(server_error("/listen", "127.0.0.1"), "listen");
  expect_names(server_error("/listen", "127.0.0.1:0"), "listen");
  expect_names(server_error("/listen", 7001), "listen");
  expect_names(server_error("/data_dir", ""), "data_dir");
  expect_names(server_error("/data_dir", json::array()), "data_dir");
  expect_names(server_error("/peers", json::object()), "peers");
  expect_names(server_error("/peers/0", "n2"), "peers[0]");
  expect_names(server_error("/peers/1/id", ""), "peers[1].id");
  expect_names(server_error("/peers/1/address", "nowhere"), "peers[1].address");
  expect_names(server_error("/peers/1/id", "n2"), "peers[1].id");  // duplicate
  const std::string own = server_error("/peers/0/id", "n1");
  expect_names(own, "peers[0].id");
  EXPECT_NE(own.find("own id"), std::string::npos) << own;
}

TEST_F(ConfigTest, ServerParams) {
  expect_names(server_error("/params", 5), "params");
  for (const json& bad : {json(0), json(-5), json(50.5), json("50"), json(true), json(1e12)}) {
    expect_names(server_error("/params/heartbeat_interval_ms", bad), "params.heartbeat_interval_ms");
  }
  for (const json& bad :
       {json::array({300, 150}), json::array({0, 100}), json::array({-1, 100}), json::array({150}),
        json::array({150, 300, 400}), json(150), json::array({150.5, 300}),
        json::array({"150", "300"}), json::object()}) {
    const std::string message = server_error("/params/election_timeout_ms", bad);
    expect_names(message, "params.election_timeout_ms");
    EXPECT_NE(message.find("expected [min, max] with 0 < min <= max"), std::string::npos) << message;
  }
  // The heartbeat must be faster than the shortest election timeout, also
  // when one of them is a default.
  expect_names(server_error("/params/heartbeat_interval_ms", 150), "params.heartbeat_interval_ms");
  expect_names(server_error("/params/election_timeout_ms", json::array({50, 60})),
               "params.heartbeat_interval_ms");
  expect_names(server_error("/params/election_timeout_ms", json::array({20, 60})),
               "params.heartbeat_interval_ms");
}

TEST_F(ConfigTest, ErrorLooksLikeTheDocumentedExample) {
  const std::string path = write("server-1.json", R"({"id":"n1","listen":"127.0.0.1:7001","data_dir":"d",
      "peers":[],"cluster_id":"c","cluster_key_file":"k","params":{"election_timeout_ms":[300,150]}})");
  try {
    config::load_server_config(path);
    FAIL() << "expected ConfigError";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": field 'params.election_timeout_ms': expected "
                                                 "[min, max] with 0 < min <= max",
                                          0),
              0u)
        << e.what();
  }
}

// ---------- peer authentication fields ----------

TEST_F(ConfigTest, ServerAuthFields) {
  // Every character class the id alphabet allows, and the longest id.
  EXPECT_EQ(server_error("/cluster_id", "A-z_0.9:x"), "");
  EXPECT_EQ(server_error("/cluster_id", std::string(64, 'k')), "");
  for (const json& bad : {json(""), json("two words"), json(std::string(65, 'k')), json("k\"x"),
                          json("caf\u00e9"), json("a/b"), json(7), json(true), json(nullptr),
                          json::array({"k1"})}) {
    const std::string message = server_error("/cluster_id", bad);
    expect_names(message, "cluster_id");
    EXPECT_NE(message.find("expected a cluster id of 1-64 characters of [A-Za-z0-9_.:-], got "),
              std::string::npos)
        << message;
  }
  for (const json& bad : {json(""), json(1), json(false), json::object()}) {
    expect_names(server_error("/cluster_key_file", bad), "cluster_key_file");
  }
  for (const json& bad : {json(1), json(0), json("true"), json(nullptr), json::array()}) {
    const std::string message = server_error("/peers_behind_proxy", bad);
    expect_names(message, "peers_behind_proxy");
    EXPECT_NE(message.find("expected true or false, got "), std::string::npos) << message;
  }
  json j = json::parse(kServerExample);
  j["peers_behind_proxy"] = true;
  EXPECT_TRUE(config::load_server_config(write("proxied.json", j.dump())).peers_behind_proxy);
  j["peers_behind_proxy"] = false;
  EXPECT_FALSE(config::load_server_config(write("direct.json", j.dump())).peers_behind_proxy);
}

// A config written before peer authentication existed names the file, the
// field and the fix, on one line.
TEST_F(ConfigTest, ServerConfigFromBeforeAuthentication) {
  for (const char* field : {"cluster_id", "cluster_key_file"}) {
    const std::string message = server_error(std::string("/") + field, nullptr, true);
    expect_names(message, field);
    EXPECT_NE(message.find("missing; this config predates peer authentication, rerun ./setup "
                           "--force to write new configs and a cluster key"),
              std::string::npos)
        << message;
  }
  const std::string path = write("server-1.json", R"({"id":"n1","listen":"127.0.0.1:7001",
      "data_dir":"data/n1","peers":[{"id":"n2","address":"127.0.0.1:7002"}],
      "params":{"heartbeat_interval_ms":50,"election_timeout_ms":[150,300]}})");
  try {
    config::load_server_config(path);
    FAIL() << "expected ConfigError";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": field 'cluster_id': missing; this config predates peer authentication, "
                     "rerun ./setup --force to write new configs and a cluster key");
  }
}

// ---------- client field errors ----------

TEST_F(ConfigTest, ClientFields) {
  expect_names(client_error("/id", nullptr, true), "id");
  expect_names(client_error("/id", ""), "id");
  expect_names(client_error("/id", "bad id"), "id");
  expect_names(client_error("/id", std::string(65, 'c')), "id");
  expect_names(client_error("/id", 3), "id");
  expect_names(client_error("/servers", nullptr, true), "servers");
  expect_names(client_error("/servers", json::array()), "servers");
  expect_names(client_error("/servers", "n1"), "servers");
  expect_names(client_error("/servers/1/id", "n1"), "servers[1].id");
  expect_names(client_error("/servers/0/address", "127.0.0.1:99999"), "servers[0].address");
  expect_names(client_error("/params", json::array()), "params");
  expect_names(client_error("/params/request_timeout_ms", 0), "params.request_timeout_ms");
  expect_names(client_error("/params/request_timeout_ms", "500"), "params.request_timeout_ms");
  expect_names(client_error("/params/deadline_ms", -1), "params.deadline_ms");
  expect_names(client_error("/params/deadline_ms", 499), "params.deadline_ms");
  EXPECT_EQ(client_error("/params/deadline_ms", 500), "");  // equal is fine
}

// ---------- to_json ----------

TEST_F(ConfigTest, ServerToJsonRoundTrips) {
  config::ServerConfig c;
  c.id = "n2";
  c.listen = config::parse_address("127.0.0.1:7002");
  c.data_dir = "data/n2 with \"quotes\"";
  c.peers = {{"n1", config::parse_address("127.0.0.1:7001")},
             {"n3", config::parse_address("localhost:7003")}};
  c.params = {20, 100, 250};
  c.cluster_id = "k-test.1";
  c.cluster_key_file = "configs/cluster.key";
  c.peers_behind_proxy = true;
  const std::string text = config::to_json(c);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("\n  \"id\": \"n2\""), std::string::npos) << "2-space indent:\n" << text;
  EXPECT_EQ(json::parse(text)["params"]["election_timeout_ms"], json::array({100, 250}));
  EXPECT_EQ(json::parse(text)["cluster_id"], "k-test.1");
  EXPECT_EQ(json::parse(text)["cluster_key_file"], "configs/cluster.key");
  EXPECT_EQ(json::parse(text)["peers_behind_proxy"], true);

  const config::ServerConfig back = config::load_server_config(write("rt.json", text));
  EXPECT_EQ(back.id, c.id);
  EXPECT_EQ(back.listen.to_string(), c.listen.to_string());
  EXPECT_EQ(back.data_dir, c.data_dir);
  ASSERT_EQ(back.peers.size(), 2u);
  EXPECT_EQ(back.peers[1].id, "n3");
  EXPECT_EQ(back.peers[1].address.to_string(), "localhost:7003");
  EXPECT_EQ(back.params.heartbeat_interval_ms, 20);
  EXPECT_EQ(back.params.election_timeout_min_ms, 100);
  EXPECT_EQ(back.params.election_timeout_max_ms, 250);
  EXPECT_EQ(back.cluster_id, "k-test.1");
  EXPECT_EQ(back.cluster_key_file, "configs/cluster.key");
  EXPECT_TRUE(back.peers_behind_proxy);
  EXPECT_EQ(config::to_json(back), text);
}

TEST_F(ConfigTest, ClientToJsonRoundTrips) {
  config::ClientConfig c;
  c.id = "c9";
  c.servers = {{"n1", config::parse_address("127.0.0.1:7001")}};
  c.params = {250, 3000};
  const std::string text = config::to_json(c);
  EXPECT_EQ(text.back(), '\n');
  const config::ClientConfig back = config::load_client_config(write("rt.json", text));
  EXPECT_EQ(back.id, "c9");
  ASSERT_EQ(back.servers.size(), 1u);
  EXPECT_EQ(back.servers[0].address.to_string(), "127.0.0.1:7001");
  EXPECT_EQ(back.params.request_timeout_ms, 250);
  EXPECT_EQ(back.params.deadline_ms, 3000);
  EXPECT_EQ(config::to_json(back), text);
}

}  // namespace
