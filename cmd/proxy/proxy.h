// The proxy's single-threaded event loop: ppoll() over the control socket,
// every node's public socket and every relay socket, with a timer queue of
// delayed datagrams. Each datagram gets its fate from the LinkTable and is
// sent (now or later) by the Router.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "control.h"
#include "delay_queue.h"
#include "journal.h"
#include "link_table.h"
#include "log/logger.h"
#include "proxy_config.h"
#include "router.h"

namespace proxy {

struct Options {
  std::uint64_t seed = 0;
  std::size_t relay_limit = kDefaultRelayLimit;
  std::size_t queue_limit = kDefaultQueueLimit;
  std::string journal_path;  // empty: no journal (docs/proxy.md, "Message journal")
  std::size_t journal_records = kDefaultJournalRecords;
};

// A copy waiting in the delay queue: where it goes, and which message (and
// which copy of it) it is, for the journal.
struct QueuedCopy {
  Route route;
  std::uint64_t msg = 0;
  int copy = 0;
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

  // Writes the journal to options.journal_path (via PATH.tmp and a rename,
  // so a reader never sees half a file). Returns path, records, evicted,
  // total. Throws std::runtime_error if it cannot. Only with a journal.
  nlohmann::ordered_json write_journal() const;

 private:
  static std::int64_t now_us();
  ProxyStatus status() const;
  void rebuild_pollfds();
  void drain(int fd);
  void on_datagram(const Route& route, const Endpoint& sender, const char* data, std::size_t size);
  // True if the kernel took it.
  bool send_now(const Route& route, const char* data, std::size_t size);
  void flush_due();
  std::string describe(const Route& route, const Endpoint& sender, std::size_t size) const;

  ProxyConfig config_;
  Options options_;
  const logging::Logger& log_;
  LinkTable table_;
  Router router_;
  ControlSocket control_;
  DelayQueue<QueuedCopy> queue_;
  std::mt19937_64 rng_;
  std::vector<pollfd> pollfds_;
  std::vector<char> buffer_;
  DelayQueue<QueuedCopy>::Item due_;  // reused for each delivery from the queue
  std::unique_ptr<Journal> journal_;  // null unless --journal
};

}  // namespace proxy
