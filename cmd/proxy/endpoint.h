// An IPv4 UDP endpoint in host byte order: small, comparable, and packable
// into one 48-bit integer so it can key hash maps without allocating.
// Header-only so the unit test (which does not link cmd/proxy) can use it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace proxy {

struct Endpoint {
  std::uint32_t ip = 0;    // host byte order
  std::uint16_t port = 0;  // host byte order

  std::uint64_t key() const { return (static_cast<std::uint64_t>(ip) << 16) | port; }
  bool operator==(const Endpoint&) const = default;

  sockaddr_in to_sockaddr() const {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(ip);
    addr.sin_port = htons(port);
    return addr;
  }
  static Endpoint from_sockaddr(const sockaddr_in& addr) {
    return Endpoint{ntohl(addr.sin_addr.s_addr), ntohs(addr.sin_port)};
  }
  bool is_loopback() const { return (ip >> 24) == 127; }
  std::string to_string() const {
    return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." +
           std::to_string((ip >> 8) & 0xff) + "." + std::to_string(ip & 0xff) + ":" +
           std::to_string(port);
  }
};

// "localhost" becomes 127.0.0.1; otherwise the host must be dotted IPv4.
inline std::optional<Endpoint> resolve(const config::Address& address) {
  const std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
  in_addr parsed{};
  if (inet_pton(AF_INET, host.c_str(), &parsed) != 1) return std::nullopt;
  return Endpoint{ntohl(parsed.s_addr), address.port};
}

}  // namespace proxy
