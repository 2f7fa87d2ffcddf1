// proxy: a UDP fault proxy standing in front of every node of one cluster.
// Usage: proxy --config PROXY_JSON [--seed N] [--log-level info|debug]
//              [--max-relays N] [--max-delayed N] [--journal PATH [--journal-records N]]
// See docs/proxy.md for the config, the routing and the control protocol.
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>

#include "log/logger.h"
#include "proxy.h"
#include "proxy_config.h"

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

int usage(const char* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s --config PROXY_JSON [--seed N] [--log-level error|warn|info|debug]\n"
               "  A UDP fault proxy in front of every node of one cluster (see docs/proxy.md).\n"
               "  --config     {\"control\":\"127.0.0.1:CPORT\",\"nodes\":[{\"id\":\"n1\",\n"
               "               \"public\":\"127.0.0.1:A1\",\"private\":\"127.0.0.1:P1\"}, ...]}\n"
               "  --seed       seed of every random decision (default: random, logged at start)\n"
               "  --log-level  info (default): startup and control commands; debug: every datagram\n"
               "  --max-relays N   bound on relay sockets, least recently used evicted (default 4096)\n"
               "  --max-delayed N  bound on datagrams waiting in the delay queue (default 100000)\n"
               "  --journal PATH   record every datagram's fate in a bounded journal, written to PATH\n"
               "                   on the 'journal' control command and at exit (default: off)\n"
               "  --journal-records N  keep the last N records (default 100000; older ones are counted)\n"
               "  Prints \"proxy ready: N nodes, control HOST:PORT\" on stdout once listening.\n"
               "  SIGTERM or SIGINT stops it (exit 0). Exit 2: bad usage or config; 1: cannot bind.\n",
               argv0);
  return code;
}

bool parse_count(const std::string& text, std::uint64_t& out) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0') return false;
  out = v;
  return true;
}

// Each relay socket is one fd: raise the soft limit as far as allowed and
// shrink the relay bound if it still does not fit.
std::size_t fit_relay_limit(std::size_t wanted, std::size_t node_count, const logging::Logger& log) {
  const rlim_t reserve = static_cast<rlim_t>(node_count + 64);
  const rlim_t needed = static_cast<rlim_t>(wanted) + reserve;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return wanted;
  if (limit.rlim_cur < needed) {
    rlimit raised = limit;
    raised.rlim_cur = (limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= needed) ? needed : limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    const std::size_t fit = limit.rlim_cur > reserve + 16 ? static_cast<std::size_t>(limit.rlim_cur - reserve) : 16;
    log.warn("open-file limit " + std::to_string(limit.rlim_cur) + " allows only " + std::to_string(fit) +
             " relay sockets (wanted " + std::to_string(wanted) + ")");
    return fit;
  }
  return wanted;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::uint64_t seed = 0;
  bool have_seed = false;
  logging::LogLevel level = logging::LogLevel::Info;
  std::size_t max_relays = proxy::kDefaultRelayLimit;
  std::size_t max_delayed = proxy::kDefaultQueueLimit;
  std::string journal_path;
  std::size_t journal_records = proxy::kDefaultJournalRecords;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* name, std::string& out) {
      const std::string prefix = std::string(name) + "=";
      if (arg == name && i + 1 < argc) {
        out = argv[++i];
        return true;
      }
      if (arg.rfind(prefix, 0) == 0) {
        out = arg.substr(prefix.size());
        return true;
      }
      return false;
    };
    std::string v;
    if (arg == "-h" || arg == "--help") {
      return usage(argv[0], 0);
    } else if (value("--config", v)) {
      config_path = v;
    } else if (value("--seed", v)) {
      if (!parse_count(v, seed)) {
        std::fprintf(stderr, "proxy: --seed wants a non-negative integer, got '%s'\n", v.c_str());
        return 2;
      }
      have_seed = true;
    } else if (value("--max-relays", v) || value("--max-delayed", v)) {
      std::uint64_t n = 0;
      if (!parse_count(v, n) || n < 1 || n > 10000000) {
        std::fprintf(stderr, "proxy: %s wants an integer in 1..10000000, got '%s'\n",
                     arg.rfind("--max-relays", 0) == 0 ? "--max-relays" : "--max-delayed", v.c_str());
        return 2;
      }
      (arg.rfind("--max-relays", 0) == 0 ? max_relays : max_delayed) = static_cast<std::size_t>(n);
    } else if (value("--journal-records", v)) {
      std::uint64_t n = 0;
      if (!parse_count(v, n) || n < 1 || n > 10000000) {
        std::fprintf(stderr, "proxy: --journal-records wants an integer in 1..10000000, got '%s'\n", v.c_str());
        return 2;
      }
      journal_records = static_cast<std::size_t>(n);
    } else if (value("--journal", v)) {
      if (v.empty()) {
        std::fprintf(stderr, "proxy: --journal wants a file path\n");
        return 2;
      }
      journal_path = v;
    } else if (value("--log-level", v)) {
      if (!logging::parse_log_level(v, level)) {
        std::fprintf(stderr, "proxy: --log-level wants error, warn, info or debug, got '%s'\n", v.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "proxy: unexpected argument '%s'\n", arg.c_str());
      return usage(argv[0], 2);
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "proxy: --config PROXY_JSON is required\n");
    return usage(argv[0], 2);
  }

  proxy::ProxyConfig config;
  try {
    config = proxy::load_proxy_config(config_path);
  } catch (const proxy::ProxyConfigError& e) {
    std::fprintf(stderr, "proxy: %s\n", e.what());
    return 2;
  }
  if (!have_seed) seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();

  const logging::Logger log("proxy", level);
  proxy::Options options;
  options.seed = seed;
  options.relay_limit = fit_relay_limit(max_relays, config.nodes.size(), log);
  options.queue_limit = max_delayed;
  options.journal_path = journal_path;
  options.journal_records = journal_records;

  // SIGTERM and SIGINT stay blocked except inside ppoll(), so one arriving
  // between a check of the flag and the wait cannot be missed.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigset_t wait_mask;
  sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    proxy::Proxy server(config, options, log);
    server.open();
    if (!journal_path.empty()) {
      // Written once now (empty) so a bad path is refused at start, not at the end.
      try {
        server.write_journal();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "proxy: --journal: %s\n", e.what());
        return 2;
      }
      log.info("journal: " + journal_path + ", last " + std::to_string(journal_records) + " records kept");
    }
    log.info("seed " + std::to_string(seed) + " (replay with --seed " + std::to_string(seed) + ")");
    for (const proxy::NodeSpec& node : config.nodes) {
      log.info("node " + node.id + ": public " + node.public_address.to_string() + " -> private " +
               node.private_address.to_string());
    }
    log.info("control " + config.control.to_string() + "; relay sockets <= " +
             std::to_string(options.relay_limit) + ", delay queue <= " + std::to_string(options.queue_limit));
    std::printf("proxy ready: %zu nodes, control %s\n", config.nodes.size(), config.control.to_string().c_str());
    std::fflush(stdout);
    server.run(g_stop, wait_mask);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy: %s\n", e.what());
    return 1;
  }
  return 0;
}
