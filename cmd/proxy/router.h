// NAT-style routing (docs/proxy.md, "Routing"), never looking inside a
// datagram:
//  * A datagram on node j's public socket from source S travels link i>j if
//    S is node i's private address, else client>j. It goes to j's private
//    address from the relay socket for (S, j).
//  * A datagram on relay (S, j) from j's private address is a reply on link
//    j>i (or j>client) and goes to S from j's public socket, so S sees it
//    come from the address it sent to. Anything else on a relay is ignored.
// Relay sockets are made on first use and kept in an LRU map of bounded size.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "endpoint.h"
#include "lru_map.h"
#include "proxy_config.h"
#include "udp.h"

namespace proxy {

inline constexpr std::size_t kDefaultRelayLimit = 4096;

// Where one datagram goes and which link it travels.
struct Route {
  enum class Kind : std::uint8_t {
    kToNode,    // source -> node `node`'s private address, via relay (source, node)
    kToSource,  // node `node` -> source, from node's public socket
  };
  Kind kind = Kind::kToNode;
  int node = 0;     // j
  Endpoint source;  // S: a node's private address or a client's address
  int from = 0;     // link endpoints as LinkTable numbers them
  int to = 0;
};

class Router {
 public:
  // Nodes are numbered in config order; `client` is the LinkTable number of
  // the client endpoint (the node count).
  Router(const ProxyConfig& config, std::size_t relay_limit);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Binds every node's public address. Throws std::runtime_error naming the
  // node and address.
  void open();

  // True once after the set of sockets changed (a relay opened or closed).
  bool take_sockets_changed();
  // Appends a pollfd (POLLIN) for every public and relay socket.
  void append_pollfds(std::vector<pollfd>& fds) const;

  // Reads one datagram from a public or relay socket. On kDatagram, `route`
  // says where it goes, or is empty when it must be ignored (a relay heard
  // from someone other than its node). An unknown fd reads as kEmpty.
  RecvResult receive(int fd, char* buffer, std::size_t capacity, std::size_t& size, Endpoint& sender,
                     std::optional<Route>& route);

  // Sends one datagram along `route`, opening the relay socket if needed.
  bool deliver(const Route& route, const char* data, std::size_t size);

  std::size_t relay_count() const { return relays_.size(); }
  std::size_t relay_limit() const { return relays_.capacity(); }
  const std::string& relay_error() const { return relay_error_; }  // last failure to open one

 private:
  struct Relay {
    int fd = -1;
    Endpoint source;
    int node = 0;
  };
  static std::uint64_t relay_key(const Endpoint& source, int node) {
    return (source.key() << 16) | static_cast<std::uint64_t>(node);
  }
  int endpoint_of(const Endpoint& address) const;  // node index, or the client number
  const Relay* relay_for(const Endpoint& source, int node);  // finds or opens; nullptr on failure

  std::vector<NodeSpec> nodes_;
  int client_;
  std::vector<int> public_fds_;
  std::unordered_map<int, int> node_by_public_fd_;
  std::unordered_map<std::uint64_t, int> node_by_private_;
  LruMap<std::uint64_t, Relay> relays_;
  std::unordered_map<int, std::uint64_t> relay_key_by_fd_;
  bool sockets_changed_ = true;
  std::string relay_error_;
};

}  // namespace proxy
