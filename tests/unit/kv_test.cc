#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/state_machine.h"

namespace {

using kv::Command;
using kv::Result;
using kv::StateMachine;
using wire::Op;

Command make_set(std::string client, std::uint64_t seq, std::string key, std::string value) {
  return Command{std::move(client), seq, Op::Set, std::move(key), std::move(value), ""};
}
Command make_cas(std::string client, std::uint64_t seq, std::string key, std::string expected,
                 std::string value) {
  return Command{std::move(client), seq, Op::Cas, std::move(key), std::move(value),
                 std::move(expected)};
}
Command make_delete(std::string client, std::uint64_t seq, std::string key) {
  return Command{std::move(client), seq, Op::Delete, std::move(key), "", ""};
}

const Result kCasFailedAbsent{false, std::nullopt, "cas_failed"};
Result ok(std::optional<std::string> value) { return Result{true, std::move(value), ""}; }

// ---- encode / decode -------------------------------------------------------

TEST(CommandCodec, EncodesCompactWithSortedKeys) {
  EXPECT_EQ(kv::encode(make_set("c1", 3, "x", "1")),
            R"({"client":"c1","key":"x","op":"set","seq":3,"value":"1"})");
  EXPECT_EQ(kv::encode(make_cas("c1", 4, "x", "1", "2")),
            R"({"client":"c1","expected":"1","key":"x","op":"cas","seq":4,"value":"2"})");
  EXPECT_EQ(kv::encode(make_delete("c2", 1, "x")),
            R"({"client":"c2","key":"x","op":"delete","seq":1})");
}

TEST(CommandCodec, RoundTrips) {
  const std::vector<Command> commands = {
      make_set("c1", 1, "x", "1"),
      make_set("client.with:odd-chars_9", 18446744073709551615ULL, "k", ""),
      make_set("c1", 2, "quote\"back\\slash\nnewline", "unicode \u00e9\u4e2d \u0001"),
      make_cas("c1", 3, "x", "", "new"),
      make_cas("c9", 7, "x", "old", "new"),
      make_delete("c1", 4, "x"),
  };
  for (const Command& command : commands) {
    const std::string text = kv::encode(command);
    const std::optional<Command> decoded = kv::decode(text);
    ASSERT_TRUE(decoded.has_value()) << text;
    EXPECT_EQ(*decoded, command) << text;
    EXPECT_EQ(kv::encode(*decoded), text);
  }
}

TEST(CommandCodec, IgnoresUnknownAndIrrelevantFields) {
  auto decoded = kv::decode(R"({"client":"c1","key":"x","op":"delete","seq":2,"value":"v","zz":[1]})");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, make_delete("c1", 2, "x"));
}

TEST(CommandCodec, RejectsGarbage) {
  for (const char* text : {
           "",
           "   ",
           "not json",
           "{",
           "null",
           "42",
           "\"string\"",
           "[]",
           "{}",
           R"([{"client":"c1","key":"x","op":"set","seq":1,"value":"1"}])",
           R"({"client":"c1","key":"x","op":"set","seq":1,"value":"1"} trailing)",
           R"({"client":"c1","key":"x","op":"set","seq":1,"value":"1"}{})",
           "{\"client\":\"c1\",\"key\":\"\xff\",\"op\":\"set\",\"seq\":1,\"value\":\"1\"}",
       }) {
    EXPECT_FALSE(kv::decode(text).has_value()) << text;
  }
}

TEST(CommandCodec, RejectsMissingOrWronglyTypedFields) {
  for (const char* text : {
           // missing fields
           R"({"key":"x","op":"set","seq":1,"value":"1"})",
           R"({"client":"c1","op":"set","seq":1,"value":"1"})",
           R"({"client":"c1","key":"x","seq":1,"value":"1"})",
           R"({"client":"c1","key":"x","op":"set","value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":1})",
           R"({"client":"c1","key":"x","op":"cas","seq":1,"value":"1"})",
           R"({"client":"c1","key":"x","op":"cas","seq":1,"expected":"1"})",
           // wrong types
           R"({"client":7,"key":"x","op":"set","seq":1,"value":"1"})",
           R"({"client":"c1","key":["x"],"op":"set","seq":1,"value":"1"})",
           R"({"client":"c1","key":"x","op":1,"seq":1,"value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":"1","value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":1.0,"value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":1.5,"value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":-1,"value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":true,"value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":18446744073709551616,"value":"1"})",
           R"({"client":"c1","key":"x","op":"set","seq":1,"value":1})",
           R"({"client":"c1","key":"x","op":"set","seq":1,"value":null})",
           R"({"client":"c1","key":"x","op":"cas","seq":1,"expected":null,"value":"1"})",
           // out-of-range values
           R"({"client":"c1","key":"x","op":"set","seq":0,"value":"1"})",
           R"({"client":"","key":"x","op":"set","seq":1,"value":"1"})",
           R"({"client":"c1","key":"","op":"set","seq":1,"value":"1"})",
           // unknown ops, and get, which never belongs in the log
           R"({"client":"c1","key":"x","op":"get","seq":1})",
           R"({"client":"c1","key":"x","op":"SET","seq":1,"value":"1"})",
           R"({"client":"c1","key":"x","op":"append","seq":1,"value":"1"})",
       }) {
    EXPECT_FALSE(kv::decode(text).has_value()) << text;
  }
}

// ---- state machine semantics ---------------------------------------------

TEST(StateMachine, SetGetAndDelete) {
  StateMachine sm;
  EXPECT_EQ(sm.get("x"), std::nullopt);
  EXPECT_EQ(sm.apply(1, make_set("c1", 1, "x", "1")), ok("1"));
  EXPECT_EQ(sm.get("x"), "1");
  EXPECT_EQ(sm.apply(2, make_set("c1", 2, "x", "2")), ok("2"));
  EXPECT_EQ(sm.get("x"), "2");
  EXPECT_EQ(sm.size(), 1u);

  EXPECT_EQ(sm.apply(3, make_delete("c1", 3, "x")), ok("2"));
  EXPECT_EQ(sm.get("x"), std::nullopt);
  EXPECT_EQ(sm.size(), 0u);
  // Deleting an absent key succeeds and reports null.
  EXPECT_EQ(sm.apply(4, make_delete("c1", 4, "x")), ok(std::nullopt));
  EXPECT_EQ(sm.size(), 0u);
}

TEST(StateMachine, EmptyValueIsAValueNotAbsence) {
  StateMachine sm;
  EXPECT_EQ(sm.apply(1, make_set("c1", 1, "x", "")), ok(""));
  EXPECT_EQ(sm.get("x"), "");
  EXPECT_EQ(sm.apply(2, make_cas("c1", 2, "x", "", "y")), ok("y"));
  EXPECT_EQ(sm.apply(3, make_delete("c1", 3, "x")), ok("y"));
}

TEST(StateMachine, CasSucceedsOnlyWhenExpectedMatches) {
  StateMachine sm;
  // Absent key: fails with null, and does not create the key.
  EXPECT_EQ(sm.apply(1, make_cas("c1", 1, "x", "", "1")), kCasFailedAbsent);
  EXPECT_EQ(sm.get("x"), std::nullopt);
  EXPECT_EQ(sm.size(), 0u);

  sm.apply(2, make_set("c1", 2, "x", "a"));
  // Mismatch: fails and reports the current value; nothing changes.
  EXPECT_EQ(sm.apply(3, make_cas("c1", 3, "x", "b", "c")), (Result{false, "a", "cas_failed"}));
  EXPECT_EQ(sm.get("x"), "a");
  // Match: succeeds and reports the new value.
  EXPECT_EQ(sm.apply(4, make_cas("c1", 4, "x", "a", "c")), ok("c"));
  EXPECT_EQ(sm.get("x"), "c");
}

TEST(StateMachine, KeysAreIndependent) {
  StateMachine sm;
  sm.apply(1, make_set("c1", 1, "x", "1"));
  sm.apply(2, make_set("c1", 2, "y", "2"));
  sm.apply(3, make_delete("c1", 3, "x"));
  EXPECT_EQ(sm.get("x"), std::nullopt);
  EXPECT_EQ(sm.get("y"), "2");
}

// ---- exactly-once ----------------------------------------------------------

TEST(StateMachine, DuplicateCasReturnsCachedResultWithoutReapplying) {
  StateMachine sm;
  sm.apply(1, make_set("c1", 1, "x", "a"));
  EXPECT_EQ(sm.apply(2, make_cas("c2", 1, "x", "a", "b")), ok("b"));
  // The retry would fail if re-applied (x is now "b"); it must get the
  // original success instead.
  EXPECT_EQ(sm.apply(3, make_cas("c2", 1, "x", "a", "b")), ok("b"));
  EXPECT_EQ(sm.get("x"), "b");
  EXPECT_EQ(sm.last_seq("c2"), 1u);
}

TEST(StateMachine, DuplicateSetDoesNotOverwriteLaterWrite) {
  StateMachine sm;
  EXPECT_EQ(sm.apply(1, make_set("c1", 5, "x", "mine")), ok("mine"));
  EXPECT_EQ(sm.apply(2, make_set("c2", 1, "x", "theirs")), ok("theirs"));
  // c1's retry lands after c2's write; re-applying it would lose c2's write.
  EXPECT_EQ(sm.apply(3, make_set("c1", 5, "x", "mine")), ok("mine"));
  EXPECT_EQ(sm.get("x"), "theirs");
}

TEST(StateMachine, DuplicateFailedCasReturnsCachedFailure) {
  StateMachine sm;
  EXPECT_EQ(sm.apply(1, make_cas("c1", 1, "x", "a", "b")), kCasFailedAbsent);
  sm.apply(2, make_set("c2", 1, "x", "a"));
  // Re-applying would now succeed; the client must see the original failure.
  EXPECT_EQ(sm.apply(3, make_cas("c1", 1, "x", "a", "b")), kCasFailedAbsent);
  EXPECT_EQ(sm.get("x"), "a");
}

TEST(StateMachine, DuplicateDeleteReturnsRemovedValue) {
  StateMachine sm;
  sm.apply(1, make_set("c1", 1, "x", "v"));
  EXPECT_EQ(sm.apply(2, make_delete("c1", 2, "x")), ok("v"));
  sm.apply(3, make_set("c2", 1, "x", "w"));
  EXPECT_EQ(sm.apply(4, make_delete("c1", 2, "x")), ok("v"));
  EXPECT_EQ(sm.get("x"), "w");
}

TEST(StateMachine, OlderSeqReturnsLastResultAndChangesNothing) {
  StateMachine sm;
  sm.apply(1, make_set("c1", 1, "x", "1"));
  sm.apply(2, make_set("c1", 2, "x", "2"));
  // A stale seq belongs to a request the client abandoned; by design it gets
  // the cached last result and is not applied.
  EXPECT_EQ(sm.apply(3, make_set("c1", 1, "x", "stale")), ok("2"));
  EXPECT_EQ(sm.get("x"), "2");
  EXPECT_EQ(sm.last_seq("c1"), 2u);
}

TEST(StateMachine, CachedAndLastSeq) {
  StateMachine sm;
  EXPECT_EQ(sm.last_seq("c1"), 0u);
  EXPECT_EQ(sm.cached("c1", 1), std::nullopt);
  sm.apply(1, make_set("c1", 1, "x", "1"));
  sm.apply(2, make_cas("c1", 2, "x", "nope", "3"));
  EXPECT_EQ(sm.last_seq("c1"), 2u);
  EXPECT_EQ(sm.cached("c1", 2), (Result{false, "1", "cas_failed"}));
  EXPECT_EQ(sm.cached("c1", 1), std::nullopt);  // only the last one is kept
  EXPECT_EQ(sm.cached("c1", 3), std::nullopt);
  EXPECT_EQ(sm.cached("c2", 2), std::nullopt);
}

TEST(StateMachine, SeqGapsAreAllowed) {
  StateMachine sm;
  sm.apply(1, make_set("c1", 1, "x", "1"));
  EXPECT_EQ(sm.apply(2, make_set("c1", 10, "x", "10")), ok("10"));
  EXPECT_EQ(sm.last_seq("c1"), 10u);
}

// ---- bounded sessions ------------------------------------------------------

TEST(StateMachine, SessionsAreBounded) {
  StateMachine sm(3);
  for (std::uint64_t i = 1; i <= 50; ++i) {
    sm.apply(i, make_set("c" + std::to_string(i), 1, "k", std::to_string(i)));
    EXPECT_LE(sm.session_count(), 3u);
  }
  EXPECT_EQ(sm.session_count(), 3u);
  EXPECT_EQ(sm.last_seq("c50"), 1u);
  EXPECT_EQ(sm.last_seq("c49"), 1u);
  EXPECT_EQ(sm.last_seq("c48"), 1u);
  EXPECT_EQ(sm.last_seq("c47"), 0u);
}

TEST(StateMachine, EvictsLeastRecentlyUsedByIndex) {
  StateMachine sm(3);
  sm.apply(1, make_set("a", 1, "k", "a1"));
  sm.apply(2, make_set("b", 1, "k", "b1"));
  sm.apply(3, make_set("c", 1, "k", "c1"));
  // Touching "a" makes "b" the oldest.
  sm.apply(4, make_set("a", 2, "k", "a2"));
  sm.apply(5, make_set("d", 1, "k", "d1"));
  EXPECT_EQ(sm.session_count(), 3u);
  EXPECT_EQ(sm.last_seq("b"), 0u);
  EXPECT_EQ(sm.last_seq("a"), 2u);
  EXPECT_EQ(sm.last_seq("c"), 1u);
  EXPECT_EQ(sm.last_seq("d"), 1u);

  // A duplicate does not count as use: "c" stays the oldest and goes next.
  EXPECT_EQ(sm.apply(6, make_set("c", 1, "k", "c1")), ok("c1"));
  EXPECT_EQ(sm.get("k"), "d1");
  sm.apply(7, make_set("e", 1, "k", "e1"));
  EXPECT_EQ(sm.last_seq("c"), 0u);
  EXPECT_EQ(sm.last_seq("a"), 2u);
  EXPECT_EQ(sm.last_seq("d"), 1u);
  EXPECT_EQ(sm.last_seq("e"), 1u);
}

TEST(StateMachine, EvictedClientLosesDuplicateDetection) {
  // The documented price of bounding sessions: once a client's session is
  // evicted, a late retry of its last command is applied again.
  StateMachine sm(1);
  sm.apply(1, make_set("c1", 1, "x", "1"));
  sm.apply(2, make_set("c2", 1, "x", "2"));
  EXPECT_EQ(sm.session_count(), 1u);
  EXPECT_EQ(sm.last_seq("c1"), 0u);
  EXPECT_EQ(sm.apply(3, make_set("c1", 1, "x", "1")), ok("1"));
  EXPECT_EQ(sm.get("x"), "1");
  EXPECT_EQ(sm.last_seq("c2"), 0u);  // and c1 in turn evicted c2
}

TEST(StateMachine, ZeroMaxSessionsStillKeepsOne) {
  StateMachine sm(0);
  sm.apply(1, make_set("c1", 1, "x", "1"));
  EXPECT_EQ(sm.session_count(), 1u);
  EXPECT_EQ(sm.apply(2, make_set("c1", 1, "x", "again")), ok("1"));
  EXPECT_EQ(sm.get("x"), "1");
}

// ---- determinism -----------------------------------------------------------

TEST(StateMachine, SameSequenceSameState) {
  // A random workload with many clients, duplicates, stale seqs and eviction;
  // two replicas fed the same (index, command) sequence, one via the log
  // encoding, must agree on every reply and on the final state.
  std::mt19937_64 rng(12345);
  const std::vector<std::string> keys = {"a", "b", "c", "d"};
  const std::vector<std::string> values = {"", "1", "2", "3"};
  std::vector<std::uint64_t> next_seq(20, 1);

  StateMachine first(8);
  StateMachine second(8);
  std::set<std::string> clients;
  for (std::uint64_t index = 1; index <= 5000; ++index) {
    const std::size_t c = rng() % next_seq.size();
    const std::string client = "c" + std::to_string(c);
    clients.insert(client);
    std::uint64_t seq = next_seq[c];
    if (rng() % 4 == 0 && seq > 1) {
      seq -= 1 + rng() % std::min<std::uint64_t>(seq - 1, 2);  // retry or stale
    } else {
      ++next_seq[c];
    }
    const std::string& key = keys[rng() % keys.size()];
    Command command;
    switch (rng() % 3) {
      case 0:
        command = make_set(client, seq, key, values[rng() % values.size()]);
        break;
      case 1:
        command = make_cas(client, seq, key, values[rng() % values.size()],
                           values[rng() % values.size()]);
        break;
      default:
        command = make_delete(client, seq, key);
        break;
    }
    const Result a = first.apply(index, command);
    const std::optional<Command> decoded = kv::decode(kv::encode(command));
    ASSERT_TRUE(decoded.has_value());
    const Result b = second.apply(index, *decoded);
    ASSERT_EQ(a, b) << "index " << index;
    ASSERT_LE(first.session_count(), 8u);
  }

  EXPECT_EQ(first.size(), second.size());
  for (const std::string& key : keys) EXPECT_EQ(first.get(key), second.get(key)) << key;
  EXPECT_EQ(first.session_count(), second.session_count());
  for (const std::string& client : clients) {
    const std::uint64_t seq = first.last_seq(client);
    EXPECT_EQ(seq, second.last_seq(client)) << client;
    EXPECT_EQ(first.cached(client, seq), second.cached(client, seq)) << client;
  }
}

}  // namespace
