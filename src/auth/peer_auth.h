// Peer authentication: every server-to-server datagram carries this
// cluster's id and a MAC made with the cluster key, so that forged datagrams
// (no key) and a stray cluster's traffic (another id) are refused before
// anything parses them. Client traffic stays unauthenticated.
//
// Wire format. A peer message is one JSON object; sealing keeps the datagram
// one valid JSON object, so tools that read peer traffic still can:
//
//   datagram = BODY + ',"mac":"' + 64 lowercase hex digits + '"}'
//   BODY     = the message's JSON text without its final '}'
//              + ',"cluster":"' + CLUSTER_ID + '"'
//   MAC      = crypto_auth(BODY, key): libsodium's HMAC-SHA-512-256
//              (HMAC-SHA-512 truncated to 32 bytes), over BODY's bytes exactly.
//
// The MAC covers the cluster id too, so an insider of one cluster cannot
// relabel its traffic as another's. harness/lib/forge.py builds the same
// bytes with Python's hmac module.
//
// Key file: 64 hex digits (the 32 key bytes) and a newline, mode 0600.
// Nothing else is in it, so `xxd -r -p` or Python's bytes.fromhex read it.
//
// Not covered: replay. A captured datagram stays valid forever; Raft's terms
// and indexes make replays largely harmless, and the node also checks that a
// peer's datagram comes from the address its config lists for that peer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace auth {

// crypto_auth_KEYBYTES and crypto_auth_BYTES; peer_auth.cc static_asserts
// that they match, so this header needs no sodium include.
inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kMacBytes = 32;
using Key = std::array<unsigned char, kKeyBytes>;

// Bytes seal() adds beyond the cluster id: ',"cluster":"' (12) + '"' (1) +
// ',"mac":"' (8) + 64 hex + '"}' (2), minus the message's own '}' (1).
// sealed.size() == json.size() + cluster_id.size() + kSealOverheadBytes.
inline constexpr std::size_t kSealOverheadBytes = 12 + 1 + 8 + 2 * kMacBytes + 2 - 1;

// True for 1-64 characters of [A-Za-z0-9_.:-] (the client-id alphabet of
// PROTOCOL.md). The id needs no JSON escaping, and open() can find it by
// scanning back from its closing quote.
bool is_valid_cluster_id(std::string_view id);

class PeerAuth {
 public:
  // Throws std::invalid_argument for a bad cluster id, std::runtime_error
  // when libsodium cannot initialise.
  PeerAuth(std::string cluster_id, const Key& key);
  ~PeerAuth();
  PeerAuth(const PeerAuth&) = default;
  PeerAuth& operator=(const PeerAuth&) = default;

  // json must be one non-empty JSON object, "{...}" with nothing after the
  // '}' (what wire::encode produces). Writes the datagram into out, reusing
  // its capacity: once out has grown to the largest message, sealing does
  // not allocate. Throws std::invalid_argument for "{}" or a non-object.
  void seal(std::string_view json, std::string& out) const;
  std::string seal(std::string_view json) const;
  std::size_t sealed_size(std::size_t json_size) const {
    return json_size + cluster_id_.size() + kSealOverheadBytes;
  }

  enum class Verdict : std::uint8_t {
    Ok,              // sealed with our key for our cluster id
    NoMac,           // no well-formed ',"mac":"<64 hex>"}' suffix: not sealed (e.g. client traffic)
    ForeignCluster,  // sealed, but names another cluster (unverified claim: we lack its key)
    BadMac,          // sealed for our cluster id (or no readable id) but the MAC does not verify
  };
  struct Opened {
    Verdict verdict;
    // The cluster id the datagram claims, for logs; empty when unreadable
    // or absent. Points into the datagram passed to open().
    std::string_view cluster;
  };
  // Cheap checks first (suffix shape, then the cluster id), the MAC last;
  // crypto_auth_verify compares in constant time. Never allocates, never
  // parses JSON.
  Opened open(std::string_view datagram) const;

  const std::string& cluster_id() const { return cluster_id_; }

 private:
  std::string cluster_id_;
  std::string cluster_field_;  // ',"cluster":"' + id + '"', the tail open() expects BODY to have
  Key key_;
  // HMAC state with the key's inner and outer pads already hashed
  // (crypto_auth_hmacsha512256_state, kept opaque so this header needs no
  // <sodium.h>). Copying it per message saves two of the four SHA-512
  // blocks a short message costs.
  alignas(16) std::array<unsigned char, 416> keyed_state_{};
  void mac(std::string_view body, unsigned char out[kMacBytes]) const;
};

const char* to_string(PeerAuth::Verdict verdict);  // "ok", "no_mac", "foreign_cluster", "bad_mac"

// Reads a key file. Throws std::runtime_error naming the path when the file
// is missing or unreadable, is not a regular file, is accessible by group or
// others ("run: chmod 600 PATH"), or does not hold exactly 64 hex digits
// (a trailing newline, "\n" or "\r\n", is allowed).
Key load_key_file(const std::string& path);

// Writes a fresh random key to path (replacing any file there). The key is
// written to a temporary file that mkstemp creates with mode 0600 in the same
// directory, flushed, then renamed over path: the key is never readable by
// others, not even briefly, and a crash leaves either the old or the new
// file. Throws std::runtime_error on failure.
void write_key_file(const std::string& path);

// A fresh random cluster id: "k" + 16 lowercase hex digits (64 random bits).
std::string random_cluster_id();

}  // namespace auth
