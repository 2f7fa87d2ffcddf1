// kv::StateMachine::serialize() and restore(): a snapshot carries the
// dictionary and the exactly-once sessions with their eviction order, so a
// replica restored from it answers every later command, retries included,
// exactly as the replica it came from; and restore() refuses every damaged
// or forged input by offset without changing anything.
//
// The 1,000,000-key measurement runs only on request:
//   RAFTKV_SNAPSHOT_BENCH=1 build/state_machine_snapshot_test --gtest_filter='*Million*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/snapshot_format.h"
#include "kv/state_machine.h"

namespace {

using kv::Command;
using kv::Result;
using kv::StateMachine;
using wire::Op;
namespace sf = kv::snapshot_format;

Command make_set(std::string client, std::uint64_t seq, std::string key, std::string value) {
  return Command{std::move(client), seq, Op::Set, std::move(key), std::move(value), ""};
}
Command make_cas(std::string client, std::uint64_t seq, std::string key, std::string expected, std::string value) {
  return Command{std::move(client), seq, Op::Cas, std::move(key), std::move(value), std::move(expected)};
}
Command make_delete(std::string client, std::uint64_t seq, std::string key) {
  return Command{std::move(client), seq, Op::Delete, std::move(key), "", ""};
}

// A workload with more clients than sessions (evictions), retries, stale
// seqs, failing cas, deletes of absent keys and values with every byte.
class Workload {
 public:
  explicit Workload(std::uint64_t seed, std::size_t clients = 24) : rng_(seed), next_seq_(clients, 1) {}

  Command next() {
    const std::size_t c = rng_() % next_seq_.size();
    const std::string client = "c" + std::to_string(c);
    std::uint64_t seq = next_seq_[c];
    if (rng_() % 4 == 0 && seq > 1) {
      seq -= 1 + rng_() % std::min<std::uint64_t>(seq - 1, 2);  // a retry, or a stale seq
    } else {
      ++next_seq_[c];
    }
    const std::string key = "k" + std::to_string(rng_() % 12);
    switch (rng_() % 3) {
      case 0: return make_set(client, seq, key, value());
      case 1: return make_cas(client, seq, key, value(), value());
      default: return make_delete(client, seq, key);
    }
  }

 private:
  std::string value() {
    static const std::vector<std::string> values = {"", "1", "2", std::string("\0\xff\n", 3), "long " + std::string(40, 'v')};
    return values[rng_() % values.size()];
  }
  std::mt19937_64 rng_;
  std::vector<std::uint64_t> next_seq_;
};

// Applies `n` commands at indexes from, from + 1, ...; returns the results.
std::vector<Result> run(StateMachine& sm, Workload& w, std::uint64_t from, int n) {
  std::vector<Result> results;
  for (int i = 0; i < n; ++i) results.push_back(sm.apply(from + static_cast<std::uint64_t>(i), w.next()));
  return results;
}

StateMachine busy_state(std::size_t max_sessions = 8) {
  StateMachine sm(max_sessions);
  Workload w(7);
  run(sm, w, 1, 3000);
  return sm;
}

// ------------------------------------------------------------ round trip ----

TEST(StateMachineSnapshot, EmptyStateRoundTrips) {
  StateMachine empty;
  const std::string bytes = empty.serialize();
  EXPECT_EQ(bytes.size(), sf::kHeaderBytes + 16);
  EXPECT_EQ(bytes.substr(0, 8), "RKVSTATE");
  StateMachine restored;
  restored.apply(1, make_set("c1", 1, "x", "1"));
  restored.restore(bytes);
  EXPECT_EQ(restored.size(), 0u);
  EXPECT_EQ(restored.session_count(), 0u);
  EXPECT_EQ(restored.serialize(), bytes);
}

TEST(StateMachineSnapshot, RestoredReplicaBehavesIdentically) {
  StateMachine original = busy_state();
  ASSERT_EQ(original.session_count(), 8u);  // full: the next new client evicts
  const std::string bytes = original.serialize();

  StateMachine restored(8);
  restored.apply(1, make_set("someone-else", 1, "stale", "state"));  // replaced, not merged
  restored.restore(bytes);
  EXPECT_EQ(restored.serialize(), bytes);  // canonical: the same state, the same bytes
  EXPECT_EQ(restored.size(), original.size());
  EXPECT_EQ(restored.get("stale"), std::nullopt);
  EXPECT_EQ(restored.last_seq("someone-else"), 0u);

  // Every further command, with retries and evictions, gets the same answer
  // on both, and they end in the same state.
  Workload a(99), b(99);
  EXPECT_EQ(run(original, a, 3001, 3000), run(restored, b, 3001, 3000));
  EXPECT_EQ(restored.serialize(), original.serialize());
}

TEST(StateMachineSnapshot, RetriedSeqIsAnsweredFromTheRestoredSession) {
  StateMachine original(4);
  original.apply(1, make_set("c1", 1, "x", "1"));
  original.apply(2, make_cas("c2", 5, "x", "nope", "2"));  // fails: the cached answer is a failure
  original.apply(3, make_delete("c3", 2, "x"));
  original.apply(4, make_set("c4", 1, "y", "4"));

  StateMachine restored(4);
  restored.restore(original.serialize());
  // The retries are not applied again: x stays deleted.
  EXPECT_EQ(restored.apply(5, make_set("c1", 1, "x", "1")), (Result{true, "1", ""}));
  EXPECT_EQ(restored.apply(6, make_cas("c2", 5, "x", "nope", "2")), (Result{false, "1", "cas_failed"}));
  EXPECT_EQ(restored.apply(7, make_delete("c3", 2, "x")), (Result{true, "1", ""}));
  EXPECT_EQ(restored.get("x"), std::nullopt);
  EXPECT_EQ(restored.cached("c2", 5), (Result{false, "1", "cas_failed"}));

  // The eviction order came along: c1 (index 1) is the oldest and goes first,
  // although the retries above did not touch any session.
  restored.apply(8, make_set("c5", 1, "z", "5"));
  EXPECT_EQ(restored.last_seq("c1"), 0u);
  EXPECT_EQ(restored.last_seq("c2"), 5u);
  restored.apply(9, make_set("c6", 1, "z", "6"));
  EXPECT_EQ(restored.last_seq("c2"), 0u);
  EXPECT_EQ(restored.last_seq("c3"), 2u);
}

TEST(StateMachineSnapshot, EqualStatesSerializeEqualBytes) {
  // The same final state reached by different histories (hash tables grown
  // in another order) gives the same snapshot on every replica.
  StateMachine a, b;
  for (int i = 0; i < 500; ++i) a.apply(1 + i, make_set("c1", 1 + i, "k" + std::to_string(i), "v"));
  for (int i = 0; i < 1000; ++i) b.apply(1 + i, make_set("c1", 1 + i, "k" + std::to_string((i * 7) % 1000), "v"));
  for (int i = 500; i < 1000; ++i) b.apply(1001 + i, make_delete("c1", 1001 + i, "k" + std::to_string(i)));
  a.apply(2000, make_set("c1", 2000, "k0", "v"));
  EXPECT_EQ(a.serialize(), b.serialize());
}

TEST(StateMachineSnapshot, KeysSortByteWiseThroughTheirPrefixes) {
  // serialize() sorts by an 8-byte prefix first; restore() demands the
  // byte-wise order of whole keys. Keys that tie on the prefix, embed NULs
  // or use bytes above 0x7f must still come out in that order.
  using namespace std::string_literals;
  const std::vector<std::string> keys = {""s,         "\0"s,         "\0\0"s,        "ab"s,        "ab\0"s,
                                         "ab\0\0\0\0\0\0\0"s, "abcdefgh"s, "abcdefgh\0"s, "abcdefghi"s,
                                         "abcdefgz"s, "\x7f"s,       "\x80"s,        "\xff\xff"s,  "\xff"s};
  StateMachine sm;
  std::uint64_t index = 1;
  for (const std::string& key : keys) sm.apply(index, make_set("c1", index, key, key)), ++index;
  StateMachine restored;
  restored.restore(sm.serialize());
  for (const std::string& key : keys) EXPECT_EQ(restored.get(key), key);
}

TEST(StateMachineSnapshot, LargerStateRoundTrips) {
  StateMachine sm;
  std::string value(100, 'x');
  for (std::uint64_t i = 1; i <= 50000; ++i) {
    value[i % 100] = static_cast<char>(i);
    sm.apply(i, make_set("c" + std::to_string(i % 20000), i, "key" + std::to_string(i), value));
  }
  const std::string bytes = sm.serialize();
  StateMachine restored;
  restored.restore(bytes);
  EXPECT_EQ(restored.size(), 50000u);
  EXPECT_EQ(restored.session_count(), 10000u);  // the default bound
  EXPECT_EQ(restored.get("key49999"), sm.get("key49999"));
  EXPECT_EQ(restored.serialize(), bytes);
}

TEST(StateMachineSnapshot, SerializeRefusesABrokenEvictionOrder) {
  // apply()'s precondition is violated (one index twice): the maps disagree,
  // and a snapshot of them would be refused by every replica's restore().
  StateMachine sm;
  sm.apply(5, make_set("c1", 1, "x", "1"));
  sm.apply(5, make_set("c2", 1, "x", "2"));
  EXPECT_THROW(sm.serialize(), std::logic_error);
}

// ------------------------------------------------------- refused inputs ----

// Restores into a machine holding other state and checks the refusal names
// an offset and leaves that state alone; returns the message.
std::string refused(const std::string& bytes) {
  StateMachine target(8);
  target.apply(1, make_set("keeper", 1, "kept", "value"));
  const std::string before = target.serialize();
  try {
    target.restore(bytes);
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(target.serialize(), before) << "state changed by a refused restore";
    const std::string message = e.what();
    EXPECT_NE(message.find("byte offset "), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "restore accepted " << bytes.size() << " bytes";
  return {};
}

TEST(StateMachineSnapshot, EveryTruncationIsRefused) {
  const std::string bytes = busy_state().serialize();
  ASSERT_GT(bytes.size(), 200u);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::string message = refused(bytes.substr(0, n));
    if (HasFailure()) {
      ADD_FAILURE() << "at length " << n << " of " << bytes.size() << ": " << message;
      return;
    }
  }
}

// A snapshot written field by field, to forge precise damage.
struct Forge {
  std::string out;
  sf::Writer w{out};
  Forge() {
    w.raw(sf::kMagic);
    w.u32(sf::kVersion);
  }
};

TEST(StateMachineSnapshot, ForgedInputsAreRefusedByOffsetAndField) {
  const auto expect = [](const std::string& bytes, const std::string& offset, const std::string& what) {
    const std::string message = refused(bytes);
    EXPECT_NE(message.find("byte offset " + offset + ":"), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  };
  std::string bad_magic = StateMachine().serialize();
  bad_magic[3] = 'X';
  expect(bad_magic, "0", "bad magic");

  {
    Forge f;
    f.out[8] = 2;
    f.w.u64(0);
    f.w.u64(0);
    expect(f.out, "8", "version 2");
  }
  {
    Forge f;  // a forged count is checked against the bytes left, before any allocation
    f.w.u64(std::uint64_t{1} << 60);
    f.w.u64(0);
    expect(f.out, "12", "key count 1152921504606846976 is implausible");
  }
  {
    Forge f;
    f.w.u64(2);
    f.w.str("a");
    f.w.str("1");
    f.w.str("a");
    f.w.str("2");
    f.w.u64(0);
    expect(f.out, "30", "key #1 repeats the previous key");
  }
  {
    Forge f;
    f.w.u64(2);
    f.w.str("b");
    f.w.str("1");
    f.w.str("a");
    f.w.str("2");
    f.w.u64(0);
    expect(f.out, "30", "key #1 is below the previous key");
  }
  {
    Forge f;
    f.w.u64(1);
    f.w.u32(0xFFFFFFFFu);  // key length past the end
    f.w.u64(0);
    expect(f.out, "20", "key #0: length 4294967295 runs past the end");
  }
  const auto session = [](Forge& f, const std::string& id, std::uint64_t index, std::uint8_t flags) {
    f.w.str(id);
    f.w.u64(1);
    f.w.u64(index);
    f.w.u8(flags);
    if ((flags & sf::kResultHasValue) != 0) f.w.str("v");
    f.w.str("");
  };
  {
    Forge f;
    f.w.u64(0);
    f.w.u64(2);
    session(f, "c1", 5, sf::kResultOk);
    session(f, "c1", 6, sf::kResultOk);
    expect(f.out, "55", "session #1 repeats client id 'c1'");
  }
  {
    Forge f;
    f.w.u64(0);
    f.w.u64(2);
    session(f, "c1", 5, sf::kResultOk);
    session(f, "c2", 5, sf::kResultOk);
    expect(f.out, "69", "session #1 last_index 5 is not above the previous 5");
  }
  {
    Forge f;
    f.w.u64(0);
    f.w.u64(1);
    session(f, "c1", 5, 4);
    expect(f.out, "50", "result flags 4 set unknown bits");
  }
  {
    Forge f;
    f.w.u64(0);
    f.w.u64(0);
    f.w.u8(0);
    expect(f.out, "28", "1 bytes after the last session");
  }
  {
    Forge f;  // the same forgeries, well formed, are accepted
    f.w.u64(1);
    f.w.str("a");
    f.w.str("1");
    f.w.u64(2);
    session(f, "c1", 5, sf::kResultOk | sf::kResultHasValue);
    session(f, "c2", 6, 0);
    StateMachine sm;
    sm.restore(f.out);
    EXPECT_EQ(sm.get("a"), "1");
    EXPECT_EQ(sm.cached("c1", 1), (Result{true, "v", ""}));
    EXPECT_EQ(sm.cached("c2", 1), (Result{false, std::nullopt, ""}));
    EXPECT_EQ(sm.serialize(), f.out);
  }
}

TEST(StateMachineSnapshot, RandomByteFlipsAreRefusedOrCanonical) {
  // Whatever restore() accepts is a valid state that serializes back to the
  // very same bytes (it accepts only canonical snapshots); anything else is
  // refused with invalid_argument. Never another exception, never a crash.
  const std::string bytes = busy_state().serialize();
  std::mt19937_64 rng(2024);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) damaged[rng() % damaged.size()] ^= static_cast<char>(1 << (rng() % 8));
    StateMachine sm(8);
    try {
      sm.restore(damaged);
    } catch (const std::invalid_argument&) {
      EXPECT_EQ(sm.size(), 0u);
      continue;
    }
    ++accepted;
    ASSERT_EQ(sm.serialize(), damaged) << "accepted a non-canonical snapshot (flip " << i << ")";
  }
  std::printf("byte flips: %d of 20000 accepted (flips inside values, seqs, results)\n", accepted);
  EXPECT_GT(accepted, 0);  // flips inside value bytes leave a valid state
}

// --------------------------------------------------------------- size ----

TEST(StateMachineSnapshot, MillionKeysTiming) {
  if (std::getenv("RAFTKV_SNAPSHOT_BENCH") == nullptr) {
    GTEST_SKIP() << "set RAFTKV_SNAPSHOT_BENCH=1 to measure 1,000,000 keys with 100-byte values";
  }
  using Clock = std::chrono::steady_clock;
  const auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  constexpr std::uint64_t kKeys = 1'000'000;
  StateMachine sm;
  std::string value(100, 'v');
  for (std::uint64_t i = 1; i <= kKeys; ++i) {
    value[i % 100] = static_cast<char>('a' + i % 26);
    sm.apply(i, make_set("client-" + std::to_string(i % 50000), i, "key" + std::to_string(i), value));
  }
  const auto t0 = Clock::now();
  const std::string bytes = sm.serialize();
  const auto t1 = Clock::now();
  StateMachine restored;
  restored.restore(bytes);
  const auto t2 = Clock::now();
  std::printf("1,000,000 keys x 100-byte values, %zu sessions: serialize %.0f ms, restore %.0f ms, %zu bytes "
              "(%.1f MiB)\n",
              sm.session_count(), ms(t1 - t0), ms(t2 - t1), bytes.size(), static_cast<double>(bytes.size()) / (1 << 20));
  EXPECT_EQ(restored.size(), kKeys);
  EXPECT_EQ(restored.get("key123456"), sm.get("key123456"));
}

}  // namespace
