#include "node/peer_gate.h"

namespace node {

const char* to_string(DropReason reason) {
  switch (reason) {
    case DropReason::NoMac: return "no_mac";
    case DropReason::BadMac: return "bad_mac";
    case DropReason::ForeignCluster: return "foreign_cluster";
    case DropReason::WrongAddress: return "wrong_address";
    case DropReason::UnknownSender: return "unknown_sender";
    case DropReason::Malformed: return "malformed";
    case DropReason::kCount: break;
  }
  return "unknown";
}

PeerGate::PeerGate(const config::ServerConfig& config, const logging::Logger& log)
    : log_(log),
      auth_(config.cluster_id, auth::load_key_file(config.cluster_key_file)),
      self_(config.id),
      check_source_(!config.peers_behind_proxy) {
  for (const auto& peer : config.peers) endpoints_[peer.id] = net::resolve(peer.address);
}

const net::Endpoint* PeerGate::endpoint_of(const raft::NodeId& peer) const {
  auto it = endpoints_.find(peer);
  return it == endpoints_.end() ? nullptr : &it->second;
}

bool PeerGate::admit(const raft::Message& m, const net::Endpoint& from) {
  auto it = endpoints_.find(m.from);
  if (it == endpoints_.end() || m.to != self_) {
    drop(DropReason::UnknownSender, from, "src '" + m.from + "', dest '" + m.to + "'");
    return false;
  }
  // A node sends everything from its one listen socket (PROTOCOL.md), which
  // is the address every peer's config lists for it. A datagram that claims
  // to be from n2 but comes from elsewhere is a misconfigured or hostile
  // sender, even if it holds a valid MAC (a replayed capture).
  if (check_source_ && !(from == it->second)) {
    drop(DropReason::WrongAddress, from, "claims to be " + m.from + " (configured at " + it->second.to_string() + ")");
    return false;
  }
  return true;
}

const std::string& PeerGate::seal(std::string_view json) {
  auth_.seal(json, sealed_);
  return sealed_;
}

void PeerGate::drop(DropReason reason, const net::Endpoint& from, std::string_view detail) {
  const auto r = static_cast<std::size_t>(reason);
  ++counts_[r];
  Quiet& q = quiet_[r];
  const auto now = std::chrono::steady_clock::now();
  if (q.last != std::chrono::steady_clock::time_point{} && now - q.last < std::chrono::seconds(1)) {
    ++q.suppressed;
    return;
  }
  std::string line = std::string("dropped peer datagram (") + to_string(reason) + ") from " + from.to_string() +
                     ": " + std::string(detail);
  if (q.suppressed > 0) line += "; " + std::to_string(q.suppressed) + " more of this kind in the last second(s)";
  line += "; " + std::to_string(counts_[r]) + " in all";
  log_.warn(line);
  q.last = now;
  q.suppressed = 0;
}

}  // namespace node
