#include "control.h"

#include <stdexcept>
#include <string_view>

#include "udp.h"

namespace proxy {

ControlSocket::~ControlSocket() { close_socket(fd_); }

void ControlSocket::open(const Endpoint& address) {
  std::string error;
  fd_ = open_udp_socket(address, error);
  if (fd_ < 0) throw std::runtime_error("control address: " + error);
}

void ControlSocket::serve(LinkTable& table, const ProxyStatus& status) {
  constexpr int kBatch = 64;
  for (int i = 0; i < kBatch; ++i) {
    std::size_t size = 0;
    Endpoint from;
    const RecvResult result = receive_from(fd_, buffer_.data(), buffer_.size(), size, from);
    if (result == RecvResult::kEmpty) return;
    if (result == RecvResult::kRetry) continue;
    std::string_view text(buffer_.data(), size);
    // Tolerate a trailing newline, as from `echo '{...}' | nc -u`.
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    const CommandOutcome outcome = execute_command(text, table, status);
    if (outcome.ok) {
      log_.info("control: " + outcome.log);
    } else {
      log_.warn("control: " + outcome.log + " (from " + from.to_string() + ")");
    }
    if (!send_to(fd_, from, outcome.reply.data(), outcome.reply.size())) {
      log_.warn("control: could not send the reply to " + from.to_string());
    }
  }
}

}  // namespace proxy
