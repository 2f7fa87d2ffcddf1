// The proxy's single-threaded event loop: ppoll() over the control socket,
// every node's public socket and every relay socket, with a timer queue of
// delayed datagrams. Each datagram gets its fate from the LinkTable and is
// sent (now or later) by the Router.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "control.h"
#include "delay_queue.h"
#include "link_table.h"
#include "log/logger.h"
#include "proxy_config.h"
#include "router.h"

namespace proxy {

struct Options {
  std::uint64_t seed = 0;
  std::size_t relay_limit = kDefaultRelayLimit;
  std::size_t queue_limit = kDefaultQueueLimit;
};

class Proxy {
 public:
  Proxy(ProxyConfig config, const Options& options, const logging::Logger& log);

  // Binds every socket. Throws std::runtime_error naming what failed.
  void open();

  // Runs until `stop` becomes nonzero. `wait_mask` is the signal mask used
  // while waiting (the caller blocks SIGTERM/SIGINT elsewhere, so they can
  // only arrive inside ppoll and never get lost).
  void run(const volatile sig_atomic_t& stop, const sigset_t& wait_mask);

 private:
  static std::int64_t now_us();
  ProxyStatus status() const;
  void rebuild_pollfds();
  void drain(int fd);
  void on_datagram(const Route& route, const Endpoint& sender, const char* data, std::size_t size);
  void send_now(const Route& route, const char* data, std::size_t size);
  void flush_due();
  std::string describe(const Route& route, const Endpoint& sender, std::size_t size) const;

  ProxyConfig config_;
  Options options_;
  const logging::Logger& log_;
  LinkTable table_;
  Router router_;
  ControlSocket control_;
  DelayQueue<Route> queue_;
  std::mt19937_64 rng_;
  std::vector<pollfd> pollfds_;
  std::vector<char> buffer_;
  DelayQueue<Route>::Item due_;  // reused for each delivery from the queue
};

}  // namespace proxy
