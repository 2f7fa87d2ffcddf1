#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace proxy {

int open_udp_socket(const Endpoint& local, std::string& error) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const sockaddr_in addr = local.to_sockaddr();
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    error = "bind " + local.to_string() + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

void enlarge_buffers(int fd, int bytes) {
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

Endpoint local_endpoint(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return Endpoint{};
  return Endpoint::from_sockaddr(addr);
}

RecvResult receive_from(int fd, char* buffer, std::size_t capacity, std::size_t& size, Endpoint& from) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  const ssize_t n = ::recvfrom(fd, buffer, capacity, MSG_TRUNC, reinterpret_cast<sockaddr*>(&addr), &len);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return RecvResult::kEmpty;
    if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
      return RecvResult::kRetry;
    }
    return RecvResult::kEmpty;  // unexpected: stop reading this socket for this round
  }
  if (static_cast<std::size_t>(n) > capacity || len < sizeof(sockaddr_in) || addr.sin_family != AF_INET) {
    return RecvResult::kRetry;
  }
  size = static_cast<std::size_t>(n);
  from = Endpoint::from_sockaddr(addr);
  return RecvResult::kDatagram;
}

bool send_to(int fd, const Endpoint& to, const char* data, std::size_t size) {
  const sockaddr_in addr = to.to_sockaddr();
  for (int attempt = 0; attempt < 3; ++attempt) {
    const ssize_t n = ::sendto(fd, data, size, 0, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    if (n >= 0) return true;
    if (errno != EINTR) return false;
  }
  return false;
}

void close_socket(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace proxy
