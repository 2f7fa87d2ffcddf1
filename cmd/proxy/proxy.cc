#include "proxy.h"

#include <errno.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

namespace proxy {

namespace {

std::vector<std::string> node_ids(const ProxyConfig& config) {
  std::vector<std::string> ids;
  for (const NodeSpec& node : config.nodes) ids.push_back(node.id);
  return ids;
}

std::string format_ms(std::int64_t us) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3fms", static_cast<double>(us) / 1000.0);
  return text;
}

}  // namespace

Proxy::Proxy(ProxyConfig config, const Options& options, const logging::Logger& log)
    : config_(std::move(config)),
      options_(options),
      log_(log),
      table_(node_ids(config_)),
      router_(config_, options.relay_limit),
      control_(log),
      queue_(options.queue_limit),
      rng_(options.seed),
      buffer_(65536) {
  if (!options_.journal_path.empty()) {
    std::vector<std::string> names = node_ids(config_);
    names.emplace_back("client");
    journal_ = std::make_unique<Journal>(std::move(names), options_.journal_records);
  }
}

nlohmann::ordered_json Proxy::write_journal() const {
  const std::string& path = options_.journal_path;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot open " + tmp + ": " + std::strerror(errno));
    journal_->write(out);
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  return nlohmann::ordered_json{{"path", path},
                                {"records", journal_->size()},
                                {"evicted", journal_->evicted()},
                                {"total", journal_->total()}};
}

void Proxy::open() {
  control_.open(config_.control);
  router_.open();
}

std::int64_t Proxy::now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ProxyStatus Proxy::status() const {
  ProxyStatus s;
  s.seed = options_.seed;
  s.queued = queue_.size();
  s.queue_limit = queue_.limit();
  s.relays = router_.relay_count();
  s.relay_limit = router_.relay_limit();
  if (journal_) s.write_journal = [this] { return write_journal(); };
  return s;
}

void Proxy::rebuild_pollfds() {
  pollfds_.clear();
  pollfds_.push_back(pollfd{control_.fd(), POLLIN, 0});
  router_.append_pollfds(pollfds_);
}

void Proxy::run(const volatile sig_atomic_t& stop, const sigset_t& wait_mask) {
  while (stop == 0) {
    if (router_.take_sockets_changed()) rebuild_pollfds();
    timespec timeout{};
    timespec* timeout_ptr = nullptr;  // no delayed datagrams: wait for input or a signal
    if (const auto due = queue_.next_due()) {
      const std::int64_t wait_us = std::max<std::int64_t>(0, *due - now_us());
      timeout.tv_sec = static_cast<time_t>(wait_us / 1000000);
      timeout.tv_nsec = static_cast<long>((wait_us % 1000000) * 1000);
      timeout_ptr = &timeout;
    }
    const int ready = ::ppoll(pollfds_.data(), pollfds_.size(), timeout_ptr, &wait_mask);
    if (ready < 0) {
      if (errno != EINTR) log_.error(std::string("ppoll: ") + std::strerror(errno));
      continue;
    }
    if (ready > 0) {
      // Handling may open or close relays; that only marks the set for
      // rebuilding before the next wait. A listed fd closed meanwhile reads
      // as empty (the router looks every fd up again).
      const std::size_t count = pollfds_.size();
      for (std::size_t i = 0; i < count; ++i) {
        const pollfd& p = pollfds_[i];
        if (p.revents == 0) continue;
        if (p.fd == control_.fd()) {
          control_.serve(table_, status());
        } else {
          drain(p.fd);
        }
      }
    }
    flush_due();
  }
  log_.info("stopping (" + std::to_string(queue_.size()) + " delayed datagrams discarded)");
  if (journal_) {
    try {
      const auto written = write_journal();
      log_.info("journal: " + written["records"].dump() + " records written to " + options_.journal_path +
                " (" + written["evicted"].dump() + " older ones evicted)");
    } catch (const std::exception& e) {
      log_.error(std::string("journal: ") + e.what());
    }
  }
}

void Proxy::drain(int fd) {
  // A bounded batch per socket per round keeps one busy link from starving the rest.
  constexpr int kBatch = 64;
  for (int i = 0; i < kBatch; ++i) {
    std::size_t size = 0;
    Endpoint sender;
    std::optional<Route> route;
    const RecvResult result = router_.receive(fd, buffer_.data(), buffer_.size(), size, sender, route);
    if (result == RecvResult::kEmpty) return;
    if (result == RecvResult::kRetry) continue;
    if (!route) {
      if (log_.debug_enabled()) {
        log_.debug("ignored " + std::to_string(size) + "B on a relay socket from " + sender.to_string() +
                   " (not the relay's node)");
      }
      continue;
    }
    on_datagram(*route, sender, buffer_.data(), size);
  }
}

std::string Proxy::describe(const Route& route, const Endpoint& sender, std::size_t size) const {
  return table_.link_name(route.from, route.to) + " " + std::to_string(size) + "B (" + sender.to_string() + ")";
}

void Proxy::on_datagram(const Route& route, const Endpoint& sender, const char* data, std::size_t size) {
  const Decision d = table_.decide(route.from, route.to, rng_);
  const bool debug = log_.debug_enabled();
  std::uint64_t msg = 0;
  if (journal_) {
    JournalFate fate = JournalFate::kPass;
    if (d.verdict == Verdict::kRefused) fate = JournalFate::kBlock;
    else if (d.verdict == Verdict::kDropped) fate = JournalFate::kDrop;
    else if (d.copies == 2) fate = JournalFate::kDuplicate;
    const int delayed = d.verdict != Verdict::kPass ? 0 : (d.delay_us[0] > 0) + (d.copies == 2 && d.delay_us[1] > 0);
    msg = journal_->send(now_us(), route.from, route.to, data, size, fate, d.delay_us,
                         d.verdict == Verdict::kRefused && d.reason != nullptr ? d.reason : "", delayed);
  }
  switch (d.verdict) {
    case Verdict::kRefused:
      if (debug) log_.debug(describe(route, sender, size) + ": blocked by " + d.reason);
      return;
    case Verdict::kDropped:
      if (debug) log_.debug(describe(route, sender, size) + ": dropped");
      return;
    case Verdict::kPass:
      break;
  }
  LinkCounters& counters = table_.counters(route.from, route.to);
  for (int copy = 0; copy < d.copies; ++copy) {
    const std::int64_t delay = d.delay_us[copy];
    const char* which = copy == 0 ? "" : " (duplicate)";
    if (delay == 0) {
      const bool sent = send_now(route, data, size);
      if (journal_) {
        if (sent) journal_->deliver(now_us(), msg, copy, route.from, route.to, size, false);
        else journal_->lost(now_us(), msg, copy, route.from, route.to, size, "send_failed", false);
      }
      if (debug) log_.debug(describe(route, sender, size) + ": forwarded" + which);
    } else if (queue_.push(now_us() + delay, QueuedCopy{route, msg, copy}, data, size)) {
      ++counters.delayed;
      if (debug) log_.debug(describe(route, sender, size) + ": delayed " + format_ms(delay) + which);
    } else {
      ++counters.overflow;
      if (journal_) journal_->lost(now_us(), msg, copy, route.from, route.to, size, "overflow", true);
      if (debug) log_.debug(describe(route, sender, size) + ": lost, delay queue full" + which);
    }
  }
}

bool Proxy::send_now(const Route& route, const char* data, std::size_t size) {
  LinkCounters& counters = table_.counters(route.from, route.to);
  if (router_.deliver(route, data, size)) {
    ++counters.forwarded;
    counters.forwarded_bytes += size;
    return true;
  } else {
    ++counters.send_failed;
    if (log_.debug_enabled()) log_.debug("send failed on " + table_.link_name(route.from, route.to) +
              (router_.relay_error().empty() ? std::string() : " (last relay error: " + router_.relay_error() + ")"));
  }
  return false;
}

void Proxy::flush_due() {
  const std::int64_t now = now_us();
  while (queue_.pop_due(now, due_)) {
    const Route& route = due_.meta.route;
    const std::size_t size = due_.payload.size();
    // A partition or block set while the datagram waited applies to it too:
    // once a cut is acknowledged, nothing crosses it.
    if (const char* why = table_.refusal(route.from, route.to)) {
      ++table_.counters(route.from, route.to).blocked;
      if (journal_) journal_->lost(now, due_.meta.msg, due_.meta.copy, route.from, route.to, size, "blocked", true);
      if (log_.debug_enabled()) {
        log_.debug(table_.link_name(route.from, route.to) + " " + std::to_string(size) +
                   "B: delayed copy blocked by " + why);
      }
      continue;
    }
    const bool sent = send_now(route, due_.payload.data(), size);
    if (journal_) {
      if (sent) journal_->deliver(now_us(), due_.meta.msg, due_.meta.copy, route.from, route.to, size, true);
      else journal_->lost(now_us(), due_.meta.msg, due_.meta.copy, route.from, route.to, size, "send_failed", true);
    }
    if (log_.debug_enabled()) {
      log_.debug(table_.link_name(route.from, route.to) + " " + std::to_string(size) +
                 "B: delayed copy forwarded");
    }
  }
}

}  // namespace proxy
