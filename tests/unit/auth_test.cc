// Peer authentication (src/auth): sealed datagrams open only with the same
// key and cluster id, every damaged or forged one is refused with the right
// verdict, the bytes match harness/lib/forge.py, key files are strict about
// format and mode, and open() never allocates.
#include "auth/peer_auth.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <new>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <sodium.h>

// Counts heap allocations, so the test can prove open() and a warm seal()
// make none. Replacing the global operator new is allowed in a program.
namespace {
std::atomic<long> g_allocations{0};
}
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC inlines these into callers of new and then warns that free() meets a
// pointer from operator new; here that pairing is exactly what is intended.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using Verdict = auth::PeerAuth::Verdict;

auth::Key key_of(unsigned char first) {
  auth::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<unsigned char>(first + i);
  return key;
}

const std::string kMessage =
    R"({"type":"append_entries","src":"n1","dest":"n2","term":7,"prev_log_index":4,"prev_log_term":6,)"
    R"("entries":[{"term":7,"index":5,"cmd":{"client":"c1","seq":3,"op":"set","key":"x","value":"}"}}],)"
    R"("leader_commit":4,"read_round":9})";

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "auth_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  // The message load_key_file throws, or "" when it loads.
  static std::string load_error(const std::string& path) {
    try {
      auth::load_key_file(path);
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << "names the file first: " << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
      return message;
    }
    return "";
  }
  fs::path dir_;
};

// ---------- seal and open ----------

TEST(PeerAuth, RoundTripIsValidJsonWithTheClusterId) {
  const auth::PeerAuth a("k0123456789abcdef", key_of(1));
  const std::string sealed = a.seal(kMessage);
  EXPECT_EQ(sealed.size(), kMessage.size() + a.cluster_id().size() + auth::kSealOverheadBytes);
  EXPECT_EQ(sealed.size(), a.sealed_size(kMessage.size()));
  EXPECT_EQ(sealed.substr(0, kMessage.size() - 1), kMessage.substr(0, kMessage.size() - 1));

  const auth::PeerAuth::Opened opened = a.open(sealed);
  EXPECT_EQ(opened.verdict, Verdict::Ok);
  EXPECT_EQ(opened.cluster, "k0123456789abcdef");

  const json doc = json::parse(sealed);
  EXPECT_EQ(doc["cluster"], "k0123456789abcdef");
  EXPECT_EQ(doc["term"], 7);
  EXPECT_EQ(doc["entries"][0]["cmd"]["value"], "}");
  const std::string mac = doc["mac"];
  ASSERT_EQ(mac.size(), 64u);
  EXPECT_EQ(mac.find_first_not_of("0123456789abcdef"), std::string::npos) << mac;
  // Another instance with the same id and key (another node) opens it too.
  EXPECT_EQ(auth::PeerAuth("k0123456789abcdef", key_of(1)).open(sealed).verdict, Verdict::Ok);
}

// The exact bytes harness/lib/forge.py's seal() writes (Python's hmac with
// SHA-512, truncated to 32 bytes), so the harness can forge what the node
// accepts.
TEST(PeerAuth, MatchesTheHarnessForger) {
  const auth::PeerAuth a("kgolden", key_of(0));
  const std::string expected =
      R"({"type":"request_vote","src":"n1","dest":"n2","term":3,"cluster":"kgolden",)"
      R"("mac":"478edc12156f3147b50b33e59e543468e0665f6a6c745868bbe8fe5629f30646"})";
  EXPECT_EQ(a.seal(R"({"type":"request_vote","src":"n1","dest":"n2","term":3})"), expected);
  EXPECT_EQ(a.open(expected).verdict, Verdict::Ok);
}

// crypto_auth is HMAC-SHA-512-256: HMAC-SHA-512 cut to 32 bytes. A short HMAC
// key is zero-padded, so RFC 4231 test case 2 (key "Jefe") applies.
TEST(PeerAuth, CryptoAuthIsHmacSha512Truncated) {
  ASSERT_GE(sodium_init(), 0);
  unsigned char key[crypto_auth_KEYBYTES] = {'J', 'e', 'f', 'e'};
  const std::string data = "what do ya want for nothing?";
  unsigned char mac[crypto_auth_BYTES];
  crypto_auth(mac, reinterpret_cast<const unsigned char*>(data.data()), data.size(), key);
  char hex[2 * crypto_auth_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  EXPECT_STREQ(hex, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554");
}

TEST(PeerAuth, FlippedBitAnywhereIsRefused) {
  const std::string id = "k42";
  const auth::PeerAuth a(id, key_of(9));
  const std::string sealed = a.seal(kMessage);
  const std::size_t suffix_start = sealed.size() - (8 + 64 + 2);          // ,"mac":"...."}
  const std::size_t id_start = suffix_start - 1 - id.size();              // the id's characters
  const std::size_t field_start = id_start - std::string(",\"cluster\":\"").size();
  int counts[4] = {};
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = sealed;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      const Verdict v = a.open(damaged).verdict;
      ++counts[static_cast<int>(v)];
      const std::string where = "byte " + std::to_string(i) + " bit " + std::to_string(bit);
      if (i < field_start) {
        EXPECT_EQ(v, Verdict::BadMac) << where;
      } else if (i >= id_start && i < suffix_start - 1) {
        // The id itself: a readable other id is another cluster's claim.
        EXPECT_TRUE(v == Verdict::ForeignCluster || v == Verdict::BadMac) << where;
      } else if (i < suffix_start) {
        EXPECT_EQ(v, Verdict::BadMac) << where;  // ,"cluster":" or the closing quote
      } else {
        // The suffix: still a lowercase hex digit means a wrong MAC, anything
        // else means it no longer looks sealed.
        EXPECT_TRUE(v == Verdict::NoMac || v == Verdict::BadMac) << where;
      }
    }
  }
  EXPECT_EQ(counts[static_cast<int>(Verdict::Ok)], 0);
  EXPECT_GT(counts[static_cast<int>(Verdict::NoMac)], 0);
  EXPECT_GT(counts[static_cast<int>(Verdict::ForeignCluster)], 0);
}

TEST(PeerAuth, ForeignCluster) {
  const auth::Key key = key_of(3);
  const auth::PeerAuth ours("k1", key);
  for (const std::string& other :
       {std::string("k2"), std::string("xk1"), std::string("k12"), std::string("K1"), std::string("k"),
        std::string(64, 'z')}) {
    const std::string sealed = auth::PeerAuth(other, key).seal(kMessage);
    const auth::PeerAuth::Opened opened = ours.open(sealed);
    EXPECT_EQ(opened.verdict, Verdict::ForeignCluster) << other;
    EXPECT_EQ(opened.cluster, other);
  }
}

TEST(PeerAuth, OtherKeyIsBadMac) {
  const std::string sealed = auth::PeerAuth("k1", key_of(3)).seal(kMessage);
  const auth::PeerAuth::Opened opened = auth::PeerAuth("k1", key_of(4)).open(sealed);
  EXPECT_EQ(opened.verdict, Verdict::BadMac);
  EXPECT_EQ(opened.cluster, "k1");
}

TEST(PeerAuth, TruncatedOrExtendedIsRefused) {
  const auth::PeerAuth a("k1", key_of(5));
  const std::string sealed = a.seal(kMessage);
  for (std::size_t n = 0; n < sealed.size(); ++n) {
    EXPECT_EQ(a.open(std::string_view(sealed).substr(0, n)).verdict, Verdict::NoMac) << n;
    EXPECT_NE(a.open(std::string_view(sealed).substr(n + 1)).verdict, Verdict::Ok) << n;
  }
  EXPECT_EQ(a.open(sealed + " ").verdict, Verdict::NoMac);
  EXPECT_EQ(a.open(sealed + "\n").verdict, Verdict::NoMac);
  EXPECT_EQ(a.open(" " + sealed).verdict, Verdict::BadMac);
}

TEST(PeerAuth, UnsealedTrafficIsNoMac) {
  const auth::PeerAuth a("k1", key_of(5));
  for (const std::string& text :
       {std::string(kMessage), std::string(R"({"type":"status","src":"c1","dest":"n1"})"),
        std::string(), std::string("{}"), std::string("x"), std::string(200, '"'),
        std::string(R"({"a":1,"mac":")") + std::string(63, 'a') + "\"}",   // 63 digits
        std::string(R"({"a":1,"mac":")") + std::string(64, 'A') + "\"}",   // uppercase
        std::string(R"({"a":1,"mac": ")") + std::string(64, 'a') + "\"}",  // not seal()'s spelling
        std::string(R"({"a":1,"mac":")") + std::string(64, 'a') + "\" }"}) {
    EXPECT_EQ(a.open(text).verdict, Verdict::NoMac) << text;
  }
  // A MAC but no cluster field at all: not ours, and no id to report.
  const auth::PeerAuth::Opened opened =
      a.open(std::string(R"({"a":1,"mac":")") + std::string(64, 'a') + "\"}");
  EXPECT_EQ(opened.verdict, Verdict::BadMac);
  EXPECT_TRUE(opened.cluster.empty());
}

TEST(PeerAuth, RejectsBadInput) {
  for (const std::string& id : {std::string(), std::string(65, 'k'), std::string("a b"),
                                std::string("k\""), std::string("k/1")}) {
    EXPECT_THROW(auth::PeerAuth(id, key_of(0)), std::invalid_argument) << id;
  }
  EXPECT_TRUE(auth::is_valid_cluster_id("Az09_.:-"));
  const auth::PeerAuth a("k1", key_of(0));
  for (const char* json : {"", "{}", "{ \n}", "[1]", "{\"a\":1", "x", "{\"a\":1}\n"}) {
    EXPECT_THROW(a.seal(json), std::invalid_argument) << json;
  }
  EXPECT_EQ(a.open(a.seal("{\"a\":1}")).verdict, Verdict::Ok);
}

TEST(PeerAuth, VerdictNames) {
  EXPECT_STREQ(auth::to_string(Verdict::Ok), "ok");
  EXPECT_STREQ(auth::to_string(Verdict::NoMac), "no_mac");
  EXPECT_STREQ(auth::to_string(Verdict::ForeignCluster), "foreign_cluster");
  EXPECT_STREQ(auth::to_string(Verdict::BadMac), "bad_mac");
}

TEST(PeerAuth, OpenAndWarmSealDoNotAllocate) {
  const auth::PeerAuth a("k0123456789abcdef", key_of(7));
  const auth::PeerAuth b("kother", key_of(7));
  std::string out;
  a.seal(kMessage, out);
  const std::string foreign = b.seal(kMessage);
  const char* buffer = out.data();
  const long before = g_allocations.load();
  int ok = 0;
  for (int i = 0; i < 100; ++i) {
    a.seal(kMessage, out);
    ok += a.open(out).verdict == Verdict::Ok;
    ok += a.open(kMessage).verdict == Verdict::NoMac;
    ok += a.open(foreign).verdict == Verdict::ForeignCluster;
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(ok, 300);
  EXPECT_EQ(out.data(), buffer) << "seal reuses the buffer";
}

// No timing assertion (shared machines vary); the numbers go to the log.
TEST(PeerAuth, Cost) {
  const auth::PeerAuth a(auth::random_cluster_id(), key_of(11));
  for (const std::size_t size : {std::size_t{200}, std::size_t{48 * 1024}}) {
    std::string message = R"({"type":"append_entries","src":"n1","dest":"n2","value":")";
    message.append(size - message.size() - 2, 'v').append("\"}");
    ASSERT_EQ(message.size(), size);
    std::string out;
    a.seal(message, out);
    const int rounds = size > 1024 ? 2000 : 100000;
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    for (int i = 0; i < rounds; ++i) a.seal(message, out);
    const auto t1 = clock::now();
    int ok = 0;
    for (int i = 0; i < rounds; ++i) ok += a.open(out).verdict == Verdict::Ok;
    const auto t2 = clock::now();
    EXPECT_EQ(ok, rounds);
    const auto us = [&](clock::duration d) {
      return std::chrono::duration<double, std::micro>(d).count() / rounds;
    };
    std::printf("[ cost     ] %6zu-byte message: seal %.2f us, open %.2f us per op (%d rounds)\n", size,
                us(t1 - t0), us(t2 - t1), rounds);
  }
}

// ---------- key files ----------

TEST_F(KeyFileTest, WriteThenLoad) {
  const std::string path = (dir_ / "cluster.key").string();
  const mode_t old_umask = ::umask(0);  // even a permissive umask must not widen the mode
  auth::write_key_file(path);
  ::umask(old_umask);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(text.size(), 65u);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), 64u);
  const auth::Key first = auth::load_key_file(path);

  // Overwriting (setup --force) gives a fresh key and leaves no temporary file.
  auth::write_key_file(path);
  EXPECT_NE(auth::load_key_file(path), first);
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

TEST_F(KeyFileTest, LoadsTheDocumentedFormat) {
  const std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  EXPECT_EQ(auth::load_key_file(write("a.key", hex + "\n")), key_of(0));
  EXPECT_EQ(auth::load_key_file(write("b.key", hex)), key_of(0));
  EXPECT_EQ(auth::load_key_file(write("c.key", hex + "\r\n")), key_of(0));
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(auth::load_key_file(write("d.key", upper + "\n")), key_of(0));
  EXPECT_EQ(auth::load_key_file(write("e.key", hex + "\n", 0400)), key_of(0));
}

TEST_F(KeyFileTest, RefusesAKeyOthersCanRead) {
  const std::string hex(64, 'a');
  for (const mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    const std::string path = write("open.key", hex + "\n", mode);
    const std::string message = load_error(path);
    EXPECT_NE(message.find("run: chmod 600 " + path), std::string::npos) << message;
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(message.find(std::string("mode ") + octal), std::string::npos) << message;
  }
}

TEST_F(KeyFileTest, RefusesWrongContent) {
  const std::string hex(64, 'a');
  for (const std::string& text : {std::string(), std::string("\n"), std::string(63, 'a') + "\n",
                                  hex + "a\n", hex + "\n\n", hex + " ", std::string(32, '\x01'),
                                  std::string(500, 'a')}) {
    const std::string message = load_error(write("bad.key", text));
    EXPECT_NE(message.find("must hold 64 hex digits and a newline"), std::string::npos) << message;
  }
  std::string not_hex = hex;
  not_hex[10] = 'g';
  const std::string message = load_error(write("g.key", not_hex + "\n"));
  EXPECT_NE(message.find("not a hex digit"), std::string::npos) << message;
}

TEST_F(KeyFileTest, MissingFileOrDirectory) {
  const std::string path = (dir_ / "nope.key").string();
  EXPECT_EQ(load_error(path), path + ": cannot open cluster key file: No such file or directory");
  EXPECT_EQ(load_error(dir_.string()), dir_.string() + ": cluster key file is not a regular file");
  EXPECT_THROW(auth::write_key_file((dir_ / "no-such-dir" / "k").string()), std::runtime_error);
}

TEST(ClusterId, RandomAndValid) {
  const std::string a = auth::random_cluster_id();
  const std::string b = auth::random_cluster_id();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 17u);
  EXPECT_EQ(a[0], 'k');
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef", 1), std::string::npos) << a;
  EXPECT_TRUE(auth::is_valid_cluster_id(a));
}

}  // namespace
