#include "router.h"

#include <netinet/in.h>

#include <stdexcept>

namespace proxy {

Router::Router(const ProxyConfig& config, std::size_t relay_limit)
    : nodes_(config.nodes), client_(static_cast<int>(config.nodes.size())), relays_(relay_limit) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    node_by_private_.emplace(nodes_[i].private_address.key(), static_cast<int>(i));
  }
}

Router::~Router() {
  for (const int fd : public_fds_) close_socket(fd);
  relays_.for_each([](const std::uint64_t&, const Relay& relay) { close_socket(relay.fd); });
}

void Router::open() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    std::string error;
    const int fd = open_udp_socket(nodes_[i].public_address, error);
    if (fd < 0) {
      throw std::runtime_error("node " + nodes_[i].id + " public address: " + error);
    }
    enlarge_buffers(fd, 4 << 20);
    public_fds_.push_back(fd);
    node_by_public_fd_.emplace(fd, static_cast<int>(i));
  }
  sockets_changed_ = true;
}

bool Router::take_sockets_changed() {
  const bool changed = sockets_changed_;
  sockets_changed_ = false;
  return changed;
}

void Router::append_pollfds(std::vector<pollfd>& fds) const {
  for (const int fd : public_fds_) fds.push_back(pollfd{fd, POLLIN, 0});
  relays_.for_each([&](const std::uint64_t&, const Relay& relay) { fds.push_back(pollfd{relay.fd, POLLIN, 0}); });
}

int Router::endpoint_of(const Endpoint& address) const {
  const auto it = node_by_private_.find(address.key());
  return it == node_by_private_.end() ? client_ : it->second;
}

RecvResult Router::receive(int fd, char* buffer, std::size_t capacity, std::size_t& size, Endpoint& sender,
                           std::optional<Route>& route) {
  route.reset();
  if (const auto pub = node_by_public_fd_.find(fd); pub != node_by_public_fd_.end()) {
    const RecvResult result = receive_from(fd, buffer, capacity, size, sender);
    if (result != RecvResult::kDatagram) return result;
    const int j = pub->second;
    route = Route{Route::Kind::kToNode, j, sender, endpoint_of(sender), j};
    return result;
  }
  const auto key = relay_key_by_fd_.find(fd);
  if (key == relay_key_by_fd_.end()) return RecvResult::kEmpty;  // closed since poll() reported it
  const RecvResult result = receive_from(fd, buffer, capacity, size, sender);
  if (result != RecvResult::kDatagram) return result;
  const Relay* relay = relays_.find(key->second);  // also marks it recently used
  if (relay == nullptr) return RecvResult::kEmpty;
  const int j = relay->node;
  if (!(sender == nodes_[static_cast<std::size_t>(j)].private_address)) return result;  // foreign: ignore
  route = Route{Route::Kind::kToSource, j, relay->source, j, endpoint_of(relay->source)};
  return result;
}

const Router::Relay* Router::relay_for(const Endpoint& source, int node) {
  const std::uint64_t key = relay_key(source, node);
  if (const Relay* relay = relays_.find(key)) return relay;
  const Endpoint& target = nodes_[static_cast<std::size_t>(node)].private_address;
  // Loopback nodes get loopback relays; otherwise let the kernel choose.
  const Endpoint local{target.is_loopback() ? static_cast<std::uint32_t>(INADDR_LOOPBACK) : 0u, 0};
  const int fd = open_udp_socket(local, relay_error_);
  if (fd < 0) return nullptr;
  // Open before evicting, so the new fd never reuses the evicted one's number.
  if (auto evicted = relays_.insert(key, Relay{fd, source, node})) {
    relay_key_by_fd_.erase(evicted->second.fd);
    close_socket(evicted->second.fd);
  }
  relay_key_by_fd_[fd] = key;
  sockets_changed_ = true;
  return relays_.find(key);
}

bool Router::deliver(const Route& route, const char* data, std::size_t size) {
  const NodeSpec& node = nodes_[static_cast<std::size_t>(route.node)];
  if (route.kind == Route::Kind::kToNode) {
    const Relay* relay = relay_for(route.source, route.node);
    if (relay == nullptr) return false;
    return send_to(relay->fd, node.private_address, data, size);
  }
  return send_to(public_fds_[static_cast<std::size_t>(route.node)], route.source, data, size);
}

}  // namespace proxy
