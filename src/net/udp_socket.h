// A RAII IPv4 UDP socket. One per node: requests, replies and peer traffic
// all leave from the socket bound to the node's `listen` address.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace net {

// An IPv4 endpoint, comparable and hashable so it can key maps.
struct Endpoint {
  std::uint32_t ip = 0;    // network byte order
  std::uint16_t port = 0;  // network byte order
  sockaddr_in to_sockaddr() const;
  static Endpoint from_sockaddr(const sockaddr_in& addr);
  std::string to_string() const;  // "127.0.0.1:7001"
  bool operator==(const Endpoint&) const = default;
};
struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const noexcept {
    return (static_cast<std::size_t>(e.ip) << 16) ^ e.port;
  }
};

// Resolves a config address ("localhost" becomes 127.0.0.1). Throws
// std::runtime_error with a clear message when it cannot.
Endpoint resolve(const config::Address& address);

class UdpSocket {
 public:
  // Binds to `local`; port 0 picks an ephemeral port. Throws
  // std::runtime_error naming the address when bind fails.
  explicit UdpSocket(const Endpoint& local);
  ~UdpSocket();
  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const { return fd_; }
  Endpoint local_endpoint() const;

  // Best effort, like UDP itself: errors (e.g. ECONNREFUSED) are ignored.
  // Returns false if the datagram was not handed to the kernel.
  bool send_to(const Endpoint& to, std::string_view datagram);

  // Waits up to `timeout` (zero: do not wait) for one datagram. Returns
  // false on timeout. `buffer` is resized to the datagram (capacity reused).
  bool receive(std::string& buffer, Endpoint& from, std::chrono::milliseconds timeout);

  // Sends datagrams[i] to to[i] for i < count with as few sendmmsg calls as
  // possible (kMaxSendBatch a call). Best effort, as send_to: a datagram
  // the kernel refuses is lost and the rest still go. False if any was lost.
  static constexpr std::size_t kMaxSendBatch = 64;
  bool send_many(const Endpoint* to, const std::string* datagrams, std::size_t count);

 private:
  int fd_ = -1;
  std::unique_ptr<char[]> scratch_;  // receive buffer, allocated at the first receive
};

}  // namespace net
