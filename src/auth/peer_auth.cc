#include "auth/peer_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <sodium.h>

namespace auth {

static_assert(kKeyBytes == crypto_auth_KEYBYTES, "crypto_auth (HMAC-SHA-512-256) takes a 32-byte key");
static_assert(kMacBytes == crypto_auth_BYTES, "crypto_auth (HMAC-SHA-512-256) makes a 32-byte tag");

namespace {

constexpr std::string_view kClusterOpen = ",\"cluster\":\"";
constexpr std::string_view kMacOpen = ",\"mac\":\"";
constexpr std::string_view kClose = "\"}";
constexpr std::size_t kHexBytes = 2 * kMacBytes;
constexpr std::size_t kMacSuffixBytes = kMacOpen.size() + kHexBytes + kClose.size();  // 74
static_assert(kSealOverheadBytes == kClusterOpen.size() + 1 + kMacSuffixBytes - 1);

constexpr char kHexDigits[] = "0123456789abcdef";

// sodium_init() is idempotent and thread-safe, but it opens /dev/urandom on
// first use; a function-local static does that once and keeps the verdict.
void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("libsodium: sodium_init() failed");
}

bool is_cluster_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

// -1 unless c is a hex digit; lowercase only when `lower_only`, because the
// wire format fixes one spelling of each MAC (a datagram is either exactly
// what seal() writes or not sealed).
int hex_value(char c, bool lower_only) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (!lower_only && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode_hex(std::string_view hex, unsigned char* out, bool lower_only) {
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    const int hi = hex_value(hex[2 * i], lower_only);
    const int lo = hex_value(hex[2 * i + 1], lower_only);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

void append_hex(std::string& out, const unsigned char* bytes, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kHexDigits[bytes[i] >> 4]);
    out.push_back(kHexDigits[bytes[i] & 0xf]);
  }
}

// The id in a BODY that ends with ',"cluster":"ID"', or "" when BODY does
// not end that way. Scanning back from the closing quote works because no
// id character is a quote.
std::string_view claimed_cluster(std::string_view body) {
  if (body.empty() || body.back() != '"') return {};
  const std::size_t end = body.size() - 1;
  std::size_t start = end;
  while (start > 0 && end - start < 64 && is_cluster_id_char(body[start - 1])) --start;
  if (start == end || start < kClusterOpen.size()) return {};
  if (body.substr(start - kClusterOpen.size(), kClusterOpen.size()) != kClusterOpen) return {};
  return body.substr(start, end - start);
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

bool is_valid_cluster_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    if (!is_cluster_id_char(c)) return false;
  }
  return true;
}

PeerAuth::PeerAuth(std::string cluster_id, const Key& key) : cluster_id_(std::move(cluster_id)), key_(key) {
  if (!is_valid_cluster_id(cluster_id_)) {
    throw std::invalid_argument("cluster id must be 1-64 characters of [A-Za-z0-9_.:-], got '" + cluster_id_ +
                                "'");
  }
  ensure_sodium();
  static_assert(sizeof(crypto_auth_hmacsha512256_state) <= sizeof keyed_state_);
  auto* state = reinterpret_cast<crypto_auth_hmacsha512256_state*>(keyed_state_.data());
  crypto_auth_hmacsha512256_init(state, key_.data(), key_.size());
  cluster_field_.reserve(kClusterOpen.size() + cluster_id_.size() + 1);
  cluster_field_.append(kClusterOpen).append(cluster_id_).push_back('"');
}

// The key should not outlive the object in freed memory; sodium_memzero is
// not optimised away as a plain memset before free could be.
PeerAuth::~PeerAuth() {
  sodium_memzero(key_.data(), key_.size());
  sodium_memzero(keyed_state_.data(), keyed_state_.size());
}

// crypto_auth (HMAC-SHA-512-256) of body, from the precomputed keyed state:
// the same tag crypto_auth would compute (auth_test checks it).
void PeerAuth::mac(std::string_view body, unsigned char out[kMacBytes]) const {
  crypto_auth_hmacsha512256_state state;
  std::memcpy(&state, keyed_state_.data(), sizeof state);
  crypto_auth_hmacsha512256_update(&state, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  crypto_auth_hmacsha512256_final(&state, out);
}

void PeerAuth::seal(std::string_view json, std::string& out) const {
  // An empty object would give '{,"cluster":...', which is not JSON.
  std::size_t last = json.size() >= 2 ? json.size() - 2 : 0;
  while (last > 0 && (json[last] == ' ' || json[last] == '\n' || json[last] == '\t' || json[last] == '\r')) --last;
  if (json.size() < 3 || json.front() != '{' || json.back() != '}' || last == 0) {
    throw std::invalid_argument("PeerAuth::seal: expected a non-empty JSON object");
  }
  out.clear();
  out.reserve(sealed_size(json.size()));
  out.append(json.substr(0, json.size() - 1)).append(cluster_field_);
  unsigned char tag[kMacBytes];
  mac(out, tag);
  out.append(kMacOpen);
  append_hex(out, tag, sizeof tag);
  out.append(kClose);
}

std::string PeerAuth::seal(std::string_view json) const {
  std::string out;
  seal(json, out);
  return out;
}

PeerAuth::Opened PeerAuth::open(std::string_view datagram) const {
  // 1. Shape of the suffix: a few byte compares reject client traffic and
  //    junk without touching the rest.
  if (datagram.size() <= kMacSuffixBytes || !datagram.ends_with(kClose) ||
      datagram.substr(datagram.size() - kMacSuffixBytes, kMacOpen.size()) != kMacOpen) {
    return {Verdict::NoMac, {}};
  }
  unsigned char mac[kMacBytes];
  if (!decode_hex(datagram.substr(datagram.size() - kClose.size() - kHexBytes, kHexBytes), mac, true)) {
    return {Verdict::NoMac, {}};
  }
  const std::string_view body = datagram.substr(0, datagram.size() - kMacSuffixBytes);

  // 2. The cluster id: a memcmp against the tail we expect. Anything else is
  //    another cluster's (when its id is readable) or not ours at all.
  if (!body.ends_with(cluster_field_)) {
    const std::string_view claimed = claimed_cluster(body);
    if (!claimed.empty()) return {Verdict::ForeignCluster, claimed};
    return {Verdict::BadMac, {}};
  }
  const std::string_view cluster =
      body.substr(body.size() - 1 - cluster_id_.size(), cluster_id_.size());

  // 3. The MAC over BODY exactly, compared in constant time (as
  //    crypto_auth_verify does).
  unsigned char expected[kMacBytes];
  this->mac(body, expected);
  if (crypto_verify_32(mac, expected) != 0) return {Verdict::BadMac, cluster};
  return {Verdict::Ok, cluster};
}

const char* to_string(PeerAuth::Verdict verdict) {
  switch (verdict) {
    case PeerAuth::Verdict::Ok: return "ok";
    case PeerAuth::Verdict::NoMac: return "no_mac";
    case PeerAuth::Verdict::ForeignCluster: return "foreign_cluster";
    case PeerAuth::Verdict::BadMac: return "bad_mac";
  }
  return "unknown";
}

Key load_key_file(const std::string& path) {
  const Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    throw std::runtime_error(path + ": cannot open cluster key file: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) {
    throw std::runtime_error(path + ": cannot stat cluster key file: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(path + ": cluster key file is not a regular file");
  // Whoever can read the key can forge any peer message; whoever can write
  // it can swap in their own. Like ssh with private keys, refuse to use it.
  if ((st.st_mode & 077) != 0) {
    throw std::runtime_error(path + ": cluster key file has mode " + mode_text(st.st_mode) +
                             ", open to group or others; run: chmod 600 " + path);
  }

  // 64 hex digits plus "\r\n" at most; one byte more is enough to tell that
  // the file is too long.
  char text[kHexBytes + 3];
  std::size_t size = 0;
  while (size < sizeof text) {
    const ssize_t n = ::read(file.fd, text + size, sizeof text - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(path + ": cannot read cluster key file: " + std::strerror(errno));
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  const std::string_view content(text, size);
  const std::string_view rest = content.substr(std::min(content.size(), kHexBytes));
  Key key{};
  std::string problem;
  if (size >= sizeof text) {
    problem = "more than " + std::to_string(sizeof text - 1) + " bytes";
  } else if (size < kHexBytes || !(rest.empty() || rest == "\n" || rest == "\r\n")) {
    problem = std::to_string(size) + " bytes";
  } else if (!decode_hex(content.substr(0, kHexBytes), key.data(), false)) {
    problem = "a character that is not a hex digit";
  }
  sodium_memzero(text, sizeof text);
  if (!problem.empty()) {
    sodium_memzero(key.data(), key.size());
    throw std::runtime_error(path + ": cluster key file must hold 64 hex digits and a newline (a 32-byte key), got " +
                             problem + "; rerun ./setup --force to write a new one");
  }
  return key;
}

void write_key_file(const std::string& path) {
  ensure_sodium();
  Key key;
  randombytes_buf(key.data(), key.size());
  char text[kHexBytes + 1];
  for (std::size_t i = 0; i < key.size(); ++i) {
    text[2 * i] = kHexDigits[key[i] >> 4];
    text[2 * i + 1] = kHexDigits[key[i] & 0xf];
  }
  text[kHexBytes] = '\n';
  sodium_memzero(key.data(), key.size());

  // Same directory, so the rename is atomic; mkostemp creates the file with
  // mode 0600 whatever the umask, so the key is never readable by others.
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    sodium_memzero(text, sizeof text);
    throw std::runtime_error("cannot create " + temp + ": " + std::strerror(errno));
  }
  std::string error;
  {
    const Fd file{fd};
    std::size_t done = 0;
    while (error.empty() && done < sizeof text) {
      const ssize_t n = ::write(fd, text + done, sizeof text - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) error = std::string("cannot write: ") + std::strerror(errno);
      else done += static_cast<std::size_t>(n);
    }
    if (error.empty() && ::fchmod(fd, 0600) != 0) error = std::string("cannot chmod: ") + std::strerror(errno);
    if (error.empty() && ::fsync(fd) != 0) error = std::string("cannot fsync: ") + std::strerror(errno);
  }
  sodium_memzero(text, sizeof text);
  if (error.empty() && ::rename(temp.c_str(), path.c_str()) != 0) {
    error = std::string("cannot rename into place: ") + std::strerror(errno);
  }
  if (!error.empty()) {
    ::unlink(temp.c_str());
    throw std::runtime_error(path + ": " + error);
  }
}

std::string random_cluster_id() {
  ensure_sodium();
  unsigned char bytes[8];
  randombytes_buf(bytes, sizeof bytes);
  std::string id = "k";
  append_hex(id, bytes, sizeof bytes);
  return id;
}

}  // namespace auth
