// node: one Raft server. Usage: node CONFIG_PATH [--log-level LEVEL]
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.h"
#include "node/server.h"
#include "storage/errors.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s CONFIG_PATH [--log-level error|warn|info|debug] [-v]\n"
               "  Runs one Raft server of the replicated key-value store.\n"
               "  CONFIG_PATH  a server config written by ./setup (e.g. configs/server-1.json)\n"
               "  --log-level  info (default) logs role and term changes; debug logs every RPC\n"
               "  -v           same as --log-level debug\n"
               "  SIGTERM or SIGINT stops the node cleanly.\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  node::Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(argv[0]);
      return 0;
    } else if (arg == "-v") {
      options.log_level = logging::LogLevel::Debug;
    } else if (arg == "--log-level" && i + 1 < argc) {
      if (!logging::parse_log_level(argv[++i], options.log_level)) return usage(argv[0]);
    } else if (arg.rfind("--log-level=", 0) == 0) {
      if (!logging::parse_log_level(arg.substr(12), options.log_level)) return usage(argv[0]);
    } else if (!arg.empty() && arg[0] != '-' && config_path.empty()) {
      config_path = arg;
    } else {
      return usage(argv[0]);
    }
  }
  if (config_path.empty()) return usage(argv[0]);

  config::ServerConfig config;
  try {
    config = config::load_server_config(config_path);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "node: %s\n", e.what());
    return 2;
  }

  // No SA_RESTART: a signal interrupts poll() so the loop sees the flag.
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const std::string id = config.id;
  try {
    node::Server server(std::move(config), options);
    return server.run(g_stop);
  } catch (const storage::StorageError& e) {
    // Fail-stop: a node that cannot trust or extend its disk must not vote
    // or acknowledge anything.
    std::fprintf(stderr, "node %s: fatal storage error: %s\n", id.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "node %s: fatal: %s\n", id.c_str(), e.what());
    return 1;
  }
}
