// The door between the network and the core for server-to-server traffic.
// Every peer datagram must carry this cluster's id and a MAC made with the
// cluster key (auth::PeerAuth), and must come from the address the config
// lists for its sender (unless a fault proxy relays peer traffic). What fails
// is dropped whole, counted by reason, and logged at most once a second per
// reason, so a flood cannot fill the disk with log lines.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/peer_auth.h"
#include "config/config.h"
#include "log/logger.h"
#include "net/udp_socket.h"
#include "raft/types.h"

namespace node {

enum class DropReason : std::uint8_t {
  NoMac,           // a peer message without a MAC (unauthenticated)
  BadMac,          // the MAC does not verify: forged or damaged
  ForeignCluster,  // sealed for another cluster id
  WrongAddress,    // a valid peer message from an address not configured for that peer
  UnknownSender,   // src is not one of our peers, or dest is not us
  Malformed,       // authentic but not a valid peer message (wire rules)
  kCount,
};
const char* to_string(DropReason reason);

class PeerGate {
 public:
  PeerGate(const config::ServerConfig& config, const logging::Logger& log);

  // The verdict on a datagram before it is parsed: Ok (sealed by a peer of
  // this cluster), NoMac (not sealed: client traffic, or an unauthenticated
  // peer message), or a reason to drop it now without parsing.
  auth::PeerAuth::Opened open(std::string_view datagram) const { return auth_.open(datagram); }
  // Checks sender and source address of an authentic, decoded peer message.
  bool admit(const raft::Message& m, const net::Endpoint& from);
  // The datagram to send for a peer message's JSON text (reuses a buffer).
  const std::string& seal(std::string_view json);
  const net::Endpoint* endpoint_of(const raft::NodeId& peer) const;
  bool is_peer(const std::string& id) const { return endpoints_.contains(id); }

  void drop(DropReason reason, const net::Endpoint& from, std::string_view detail);
  std::uint64_t dropped(DropReason reason) const { return counts_[static_cast<std::size_t>(reason)]; }

 private:
  const logging::Logger& log_;
  auth::PeerAuth auth_;
  std::string self_;
  bool check_source_;
  std::unordered_map<std::string, net::Endpoint> endpoints_;
  std::string sealed_;
  std::array<std::uint64_t, static_cast<std::size_t>(DropReason::kCount)> counts_{};
  // Rate-limited logging: the last time a line was written per reason, and
  // how many drops since then went unlogged.
  struct Quiet {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t suppressed = 0;
  };
  std::array<Quiet, static_cast<std::size_t>(DropReason::kCount)> quiet_{};
};

}  // namespace node
