#include "net/udp_socket.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace net {
namespace {

// Large enough for any datagram (PROTOCOL.md caps them at 65,507 bytes).
constexpr std::size_t kReceiveBufferBytes = 65536;
// Bursts of client traffic and log replication would overflow the default
// (~200 KiB) kernel buffers and drop datagrams for no good reason.
constexpr int kKernelBufferBytes = 4 * 1024 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

sockaddr_in Endpoint::to_sockaddr() const {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = ip;
  addr.sin_port = port;
  return addr;
}

Endpoint Endpoint::from_sockaddr(const sockaddr_in& addr) {
  return Endpoint{addr.sin_addr.s_addr, addr.sin_port};
}

std::string Endpoint::to_string() const {
  char text[INET_ADDRSTRLEN] = {};
  in_addr addr{};
  addr.s_addr = ip;
  if (inet_ntop(AF_INET, &addr, text, sizeof text) == nullptr) return "?:" + std::to_string(ntohs(port));
  return std::string(text) + ":" + std::to_string(ntohs(port));
}

Endpoint resolve(const config::Address& address) {
  // Only literal IPv4 addresses and "localhost": no DNS, so resolution can
  // never block or change behind the cluster's back.
  const std::string host = address.host == "localhost" ? std::string("127.0.0.1") : address.host;
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1) {
    throw std::runtime_error("cannot resolve address '" + address.host + ":" +
                             std::to_string(address.port) +
                             "': host must be a dotted IPv4 address or localhost");
  }
  return Endpoint{addr.s_addr, htons(address.port)};
}

UdpSocket::UdpSocket(const Endpoint& local) {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket(): " + errno_text(errno));

  // Best effort: the kernel clamps to rmem_max/wmem_max, which is fine.
  int size = kKernelBufferBytes;
  (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);

  const sockaddr_in addr = local.to_sockaddr();
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("cannot bind UDP socket to " + local.to_string() + ": " +
                             errno_text(err));
  }
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

UdpSocket::UdpSocket(UdpSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), scratch_(std::move(other.scratch_)) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    scratch_ = std::move(other.scratch_);
  }
  return *this;
}

Endpoint UdpSocket::local_endpoint() const {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("getsockname(): " + errno_text(errno));
  }
  return Endpoint::from_sockaddr(addr);
}

bool UdpSocket::send_to(const Endpoint& to, std::string_view datagram) {
  const sockaddr_in addr = to.to_sockaddr();
  for (;;) {
    const ssize_t n = ::sendto(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    // ECONNREFUSED (an ICMP error from an earlier send), ENOBUFS, EAGAIN, ...:
    // UDP is lossy anyway and the protocol retries, so the datagram is just lost.
    return false;
  }
}

bool UdpSocket::receive(std::string& buffer, Endpoint& from, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::max(timeout, std::chrono::milliseconds(0));
  // The datagram lands in a buffer allocated once and is copied out at its
  // own length: resizing `buffer` to 64 KiB for every datagram zero-filled
  // up to 64 KiB each time (perf: memset was 2.4% of a busy leader).
  if (!scratch_) scratch_ = std::make_unique<char[]>(kReceiveBufferBytes);
  for (;;) {
    // Try first, poll only when nothing is queued: draining a burst costs
    // one system call per datagram rather than two.
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    const ssize_t n = ::recvfrom(fd_, scratch_.get(), kReceiveBufferBytes, MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&addr), &len);
    if (n >= 0) {
      buffer.assign(scratch_.get(), static_cast<std::size_t>(n));
      from = Endpoint::from_sockaddr(addr);
      return true;
    }
    const int err = errno;
    buffer.clear();
    if (err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL) {
      throw std::runtime_error("recvfrom(): " + errno_text(err));  // a bug, not the network
    }
    // EINTR, nothing queued (EAGAIN) or a queued ICMP error (ECONNREFUSED,
    // ...) is not a datagram: wait while time is left.
    const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (remaining <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(remaining));
    if (ready < 0 && errno != EINTR) throw std::runtime_error("poll(): " + errno_text(errno));
    if (ready == 0) return false;
  }
}

bool UdpSocket::send_many(const Endpoint* to, const std::string* datagrams, std::size_t count) {
  bool all = true;
  std::size_t done = 0;
  while (done < count) {
    // One sendmmsg per kMaxSendBatch datagrams: the arrays live on the stack.
    const std::size_t n = std::min(count - done, kMaxSendBatch);
    std::array<sockaddr_in, kMaxSendBatch> addrs{};
    std::array<iovec, kMaxSendBatch> iovs{};
    std::array<mmsghdr, kMaxSendBatch> msgs{};
    for (std::size_t i = 0; i < n; ++i) {
      addrs[i] = to[done + i].to_sockaddr();
      iovs[i].iov_base = const_cast<char*>(datagrams[done + i].data());
      iovs[i].iov_len = datagrams[done + i].size();
      msgs[i].msg_hdr.msg_name = &addrs[i];
      msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int sent = ::sendmmsg(fd_, msgs.data(), static_cast<unsigned>(n), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      // The first datagram failed (ECONNREFUSED from an earlier ICMP error,
      // ENOBUFS, ...): it is lost, as with sendto; go on with the next one.
      all = false;
      ++done;
      continue;
    }
    done += static_cast<std::size_t>(sent);
  }
  return all;
}

}  // namespace net
