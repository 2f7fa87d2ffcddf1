// The linearizability checker: parsing, the model, hand-written histories
// (tests/lincheck/*.jsonl) with their exact minimal violating sets, a
// brute-force cross-check on random small histories, generated histories,
// the time budget, and the HTML page.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lincheck/checker.h"
#include "lincheck/explain.h"
#include "lincheck/generate.h"
#include "lincheck/history.h"
#include "lincheck/html.h"
#include "lincheck/model.h"

namespace {

using namespace lincheck;

std::filesystem::path examples_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "lincheck";
}

History load(const std::string& name) { return read_history_file((examples_dir() / name).string()); }

History parse(const std::string& text) {
  std::istringstream in(text);
  return read_history(in);
}

std::vector<std::int64_t> ids_of(const History& h, const std::vector<std::size_t>& indexes) {
  std::vector<std::int64_t> ids;
  for (std::size_t i : indexes) ids.push_back(h.ops[i].id);
  return ids;
}

std::vector<std::size_t> all_indexes(const History& h) {
  std::vector<std::size_t> all(h.ops.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return all;
}

Op make(std::int64_t id, OpType type, std::optional<std::string> value, std::optional<std::string> expected,
        std::int64_t invoke, std::optional<std::int64_t> complete, Outcome outcome,
        std::optional<std::optional<std::string>> result, std::string error = "",
        std::string client = "c", std::string key = "x") {
  Op op;
  op.id = id;
  op.client = std::move(client);
  op.type = type;
  op.key = std::move(key);
  op.value = std::move(value);
  op.expected = std::move(expected);
  op.invoke_us = invoke;
  op.complete_us = complete;
  op.outcome = outcome;
  op.has_result = result.has_value();
  if (result) op.result = *result;
  op.error = std::move(error);
  return op;
}

// True if `order` (indexes) is a linearization of the relevant ops among
// `ops`: each relevant op exactly once, real time respected, and every step
// legal in the model.
::testing::AssertionResult valid_linearization(const History& h, const std::vector<std::size_t>& ops,
                                               const std::vector<std::size_t>& order) {
  std::multiset<std::size_t> expected, got(order.begin(), order.end());
  for (std::size_t i : ops) {
    if (!h.ops[i].is_irrelevant()) expected.insert(i);
  }
  if (expected != got) return ::testing::AssertionFailure() << "order is not a permutation of the ops";
  for (std::size_t a = 0; a < order.size(); ++a) {
    for (std::size_t b = a + 1; b < order.size(); ++b) {
      const Op& later = h.ops[order[b]];
      const Op& earlier = h.ops[order[a]];
      if (later.outcome != Outcome::Unknown && *later.complete_us < earlier.invoke_us) {
        return ::testing::AssertionFailure() << "op " << later.id << " completed before op " << earlier.id
                                             << " started but comes after it";
      }
    }
  }
  std::optional<std::string> state;
  for (std::size_t i : order) {
    if (!lincheck::apply(h.ops[i], state)) {
      return ::testing::AssertionFailure() << "op " << h.ops[i].id << " illegal: " << why_illegal(h.ops[i], state);
    }
  }
  return ::testing::AssertionSuccess();
}

// Reference: depth-first over every order that respects real time.
bool brute_force_linearizable(const History& h) {
  std::vector<const Op*> ops;
  for (const Op& op : h.ops) {
    if (!op.is_irrelevant()) ops.push_back(&op);
  }
  std::vector<bool> used(ops.size(), false);
  std::function<bool(std::size_t, std::optional<std::string>)> go = [&](std::size_t done,
                                                                         std::optional<std::string> state) {
    if (done == ops.size()) return true;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (used[i]) continue;
      bool blocked = false;  // some other remaining op must come first
      for (std::size_t j = 0; j < ops.size() && !blocked; ++j) {
        blocked = j != i && !used[j] && ops[j]->outcome != Outcome::Unknown &&
                  *ops[j]->complete_us < ops[i]->invoke_us;
      }
      if (blocked) continue;
      std::optional<std::string> next = state;
      if (!lincheck::apply(*ops[i], next)) continue;
      used[i] = true;
      bool ok = go(done + 1, next);
      used[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(0, std::nullopt);
}

// ---- parsing ---------------------------------------------------------------

TEST(LincheckHistory, ParsesEveryField) {
  History h = parse(
      R"({"id":17,"client":"c3","op":"cas","key":"x","expected":"1","value":"5","invoke_us":1000,"complete_us":2000,"outcome":"fail","error":"cas_failed","result":null,"extra":[1,2]})"
      "\n\n"
      R"({"id":18,"client":"c4","op":"delete","key":"x","invoke_us":1500,"complete_us":null,"outcome":"unknown"})"
      "\n");
  ASSERT_EQ(h.ops.size(), 2u);
  const Op& cas = h.ops[0];
  EXPECT_EQ(cas.id, 17);
  EXPECT_EQ(cas.client, "c3");
  EXPECT_EQ(cas.type, OpType::Cas);
  EXPECT_EQ(cas.expected, "1");
  EXPECT_EQ(cas.value, "5");
  EXPECT_EQ(cas.invoke_us, 1000);
  EXPECT_EQ(cas.complete_us, 2000);
  EXPECT_EQ(cas.outcome, Outcome::Fail);
  EXPECT_TRUE(cas.is_cas_failed());
  EXPECT_TRUE(cas.has_result);
  EXPECT_FALSE(cas.result.has_value());
  EXPECT_EQ(cas.line, 1);
  EXPECT_EQ(h.ops[1].line, 3);
  EXPECT_FALSE(h.ops[1].complete_us.has_value());
  EXPECT_EQ(h.ops[1].outcome, Outcome::Unknown);
}

TEST(LincheckHistory, RoundTrips) {
  History h = load("ok_delete.jsonl");
  std::ostringstream out;
  write_history(out, h);
  History again = parse(out.str());
  ASSERT_EQ(again.ops.size(), h.ops.size());
  for (std::size_t i = 0; i < h.ops.size(); ++i) EXPECT_EQ(to_json_line(again.ops[i]), to_json_line(h.ops[i]));
}

TEST(LincheckHistory, ErrorsCarryTheLineNumber) {
  const std::string good =
      R"({"id":1,"client":"c1","op":"get","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok","result":null})";
  struct Case {
    std::string line;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{not json", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"client":"c1","op":"get","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok","result":null})", "\"id\""},
      {R"({"id":"7","client":"c1","op":"get","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok","result":null})", "integer"},
      {R"({"id":7,"client":"c1","op":"put","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok"})", "get, set, cas or delete"},
      {R"({"id":7,"client":"c1","op":"set","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok"})", "\"value\""},
      {R"({"id":7,"client":"c1","op":"cas","key":"x","value":"1","invoke_us":0,"complete_us":5,"outcome":"ok"})", "\"expected\""},
      {R"({"id":7,"client":"c1","op":"get","key":"x","invoke_us":9,"complete_us":5,"outcome":"ok","result":null})", "before invoke_us"},
      {R"({"id":7,"client":"c1","op":"get","key":"x","invoke_us":0,"outcome":"ok","result":null})", "complete_us"},
      {R"({"id":7,"client":"c1","op":"get","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok"})", "\"result\""},
      {R"({"id":7,"client":"c1","op":"get","key":"x","invoke_us":0,"complete_us":5,"outcome":"maybe","result":null})", "ok, fail or unknown"},
      {R"({"id":1,"client":"c1","op":"get","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok","result":null})", "already used on line 1"},
  };
  for (const Case& c : cases) {
    try {
      parse(good + "\n\n" + c.line + "\n");
      ADD_FAILURE() << "accepted: " << c.line;
    } catch (const ParseError& e) {
      EXPECT_EQ(e.line(), 3) << c.line;
      EXPECT_EQ(std::string(e.what()).rfind("line 3: ", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    }
  }
}

// ---- the model -------------------------------------------------------------

TEST(LincheckModel, RegisterSemantics) {
  std::optional<std::string> s;
  EXPECT_TRUE(lincheck::apply(make(1, OpType::Get, {}, {}, 0, 1, Outcome::Ok, std::optional<std::string>()), s));
  EXPECT_FALSE(lincheck::apply(make(2, OpType::Get, {}, {}, 0, 1, Outcome::Ok, std::optional<std::string>("1")), s));
  EXPECT_TRUE(lincheck::apply(make(3, OpType::Set, "1", {}, 0, 1, Outcome::Ok, std::optional<std::string>("1")), s));
  EXPECT_EQ(s, "1");
  EXPECT_FALSE(lincheck::apply(make(4, OpType::Set, "2", {}, 0, 1, Outcome::Ok, std::optional<std::string>("3")), s));
  EXPECT_FALSE(lincheck::apply(make(5, OpType::Cas, "2", "9", 0, 1, Outcome::Ok, std::optional<std::string>("2")), s));
  EXPECT_TRUE(lincheck::apply(make(6, OpType::Cas, "2", "1", 0, 1, Outcome::Ok, std::optional<std::string>("2")), s));
  EXPECT_EQ(s, "2");
  // cas_failed: a read that must see something other than expected.
  EXPECT_FALSE(lincheck::apply(make(7, OpType::Cas, "3", "2", 0, 1, Outcome::Fail, std::optional<std::string>("2"), "cas_failed"), s));
  EXPECT_FALSE(lincheck::apply(make(8, OpType::Cas, "3", "1", 0, 1, Outcome::Fail, std::optional<std::string>("1"), "cas_failed"), s));
  EXPECT_TRUE(lincheck::apply(make(9, OpType::Cas, "3", "1", 0, 1, Outcome::Fail, std::optional<std::string>("2"), "cas_failed"), s));
  EXPECT_TRUE(lincheck::apply(make(10, OpType::Cas, "3", "1", 0, 1, Outcome::Fail, std::nullopt, "cas_failed"), s));
  EXPECT_EQ(s, "2");
  // Other failures did not happen.
  Op not_leader = make(11, OpType::Set, "5", {}, 0, 1, Outcome::Fail, std::nullopt, "not_leader");
  EXPECT_TRUE(not_leader.is_irrelevant());
  EXPECT_TRUE(lincheck::apply(not_leader, s));
  EXPECT_EQ(s, "2");
  EXPECT_FALSE(lincheck::apply(make(12, OpType::Delete, {}, {}, 0, 1, Outcome::Ok, std::optional<std::string>("1")), s));
  EXPECT_TRUE(lincheck::apply(make(13, OpType::Delete, {}, {}, 0, 1, Outcome::Ok, std::optional<std::string>("2")), s));
  EXPECT_FALSE(s.has_value());
  // Unknown: the effect, if it happens.
  EXPECT_TRUE(lincheck::apply(make(14, OpType::Cas, "7", "1", 0, {}, Outcome::Unknown, std::nullopt), s));
  EXPECT_FALSE(s.has_value());
  EXPECT_TRUE(lincheck::apply(make(15, OpType::Set, "8", {}, 0, {}, Outcome::Unknown, std::nullopt), s));
  EXPECT_EQ(s, "8");
  EXPECT_TRUE(lincheck::apply(make(16, OpType::Cas, "9", "8", 0, {}, Outcome::Unknown, std::nullopt), s));
  EXPECT_EQ(s, "9");
  EXPECT_TRUE(lincheck::apply(make(17, OpType::Delete, {}, {}, 0, {}, Outcome::Unknown, std::nullopt), s));
  EXPECT_FALSE(s.has_value());
}

TEST(LincheckModel, CompiledStepsAgreeWithTheReference) {
  std::mt19937 rng(7);
  const std::vector<std::optional<std::string>> values = {std::nullopt, "a", "b"};
  for (int round = 0; round < 5000; ++round) {
    auto pick = [&] { return values[rng() % values.size()]; };
    const OpType type = static_cast<OpType>(rng() % 4);
    const Outcome outcome = static_cast<Outcome>(rng() % 3);
    std::optional<std::string> value = type == OpType::Set || type == OpType::Cas ? std::optional<std::string>(rng() % 2 ? "a" : "b") : std::nullopt;
    std::optional<std::string> expected = type == OpType::Cas ? pick() : std::nullopt;
    std::optional<std::optional<std::string>> result;
    if (rng() % 4) result = pick();
    if (outcome == Outcome::Ok && (type == OpType::Get || type == OpType::Delete) && !result) result = pick();
    Op op = make(1, type, value, expected, 0, outcome == Outcome::Unknown ? std::nullopt : std::optional<std::int64_t>(1),
                 outcome, result, outcome == Outcome::Fail && rng() % 2 ? "cas_failed" : "");
    if (op.is_irrelevant()) continue;
    Interner interner;
    const Step step = interner.compile(op);
    const std::optional<std::string> start = pick();
    std::optional<std::string> s = start;
    State compiled = interner.intern(start);
    const bool ok = lincheck::apply(op, s);
    const bool compiled_ok = step.apply(compiled);
    ASSERT_EQ(ok, compiled_ok) << describe(op) << " on " << show_value(start);
    if (ok) {
      ASSERT_EQ(interner.value(compiled), s) << describe(op);
    }
  }
}

// ---- hand-written histories ------------------------------------------------

struct Example {
  const char* file;
  Verdict verdict;
  const char* bad_key;
  std::vector<std::int64_t> minimal;  // ids, in invocation order
};

void PrintTo(const Example& example, std::ostream* out) { *out << example.file; }

class LincheckExample : public ::testing::TestWithParam<Example> {};

TEST_P(LincheckExample, VerdictAndMinimalSet) {
  const Example& example = GetParam();
  History h = load(example.file);
  for (bool reduce : {true, false}) {
    CheckOptions options;
    options.reduce_unknown_ops = reduce;
    CheckResult result = check(h, options);
    ASSERT_EQ(result.verdict, example.verdict) << example.file << " reduce=" << reduce;
    EXPECT_EQ(result.ops, h.ops.size());
    EXPECT_EQ(brute_force_linearizable(h), example.verdict == Verdict::Ok) << example.file;
    if (example.verdict == Verdict::Ok) {
      ASSERT_FALSE(result.bad_key.has_value());
      for (const KeyResult& k : result.keys) {
        EXPECT_TRUE(valid_linearization(h, k.ops, k.search.order)) << example.file << " key " << k.key;
      }
      continue;
    }
    ASSERT_TRUE(result.bad_key.has_value());
    const KeyResult& bad = result.keys[*result.bad_key];
    EXPECT_EQ(bad.key, example.bad_key);
    Explanation e = explain(h, bad.key, bad.ops, 5.0, options);
    EXPECT_TRUE(e.one_minimal);
    EXPECT_EQ(ids_of(h, e.minimal), example.minimal) << example.file << " reduce=" << reduce;
    EXPECT_FALSE(brute_force_linearizable(History{[&] {
      std::vector<Op> ops;
      for (std::size_t i : e.minimal) ops.push_back(h.ops[i]);
      return ops;
    }()})) << example.file;
    // The partial linearization of the minimal set is a valid prefix, and
    // every op outside it has a reason.
    std::optional<std::string> state;
    for (std::size_t i : e.partial) EXPECT_TRUE(lincheck::apply(h.ops[i], state));
    EXPECT_EQ(state, e.state_after_partial);
    EXPECT_EQ(e.partial.size() + e.stuck.size(), e.minimal.size());
    for (const StuckOp& s : e.stuck) EXPECT_FALSE(s.reason.empty());
    // The key's longest partial linearization is a valid prefix too.
    state.reset();
    for (std::size_t i : bad.search.order) EXPECT_TRUE(lincheck::apply(h.ops[i], state)) << h.ops[i].id;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Histories, LincheckExample,
    ::testing::Values(
        Example{"ok_concurrent.jsonl", Verdict::Ok, "", {}},
        Example{"ok_delete.jsonl", Verdict::Ok, "", {}},
        Example{"ok_touching.jsonl", Verdict::Ok, "", {}},
        Example{"ok_unknown_write_seen.jsonl", Verdict::Ok, "", {}},
        Example{"ok_unknown_write_not_seen.jsonl", Verdict::Ok, "", {}},
        Example{"bad_stale_read.jsonl", Verdict::Violation, "x", {1, 3, 6}},
        Example{"bad_lost_write.jsonl", Verdict::Violation, "x", {1, 3}},
        Example{"bad_cas_after_overwrite.jsonl", Verdict::Violation, "x", {1, 2, 3}},
        Example{"bad_never_written.jsonl", Verdict::Violation, "x", {3}},
        Example{"bad_opposite_orders.jsonl", Verdict::Violation, "x", {1, 2, 3, 5, 4, 6}},
        Example{"bad_delete_reappears.jsonl", Verdict::Violation, "x", {1, 2, 4}},
        Example{"bad_cas_failed_stale.jsonl", Verdict::Violation, "x", {1, 2, 3}},
        Example{"bad_cas_failed_but_matched.jsonl", Verdict::Violation, "x", {1, 3}},
        Example{"bad_unknown_write_flickers.jsonl", Verdict::Violation, "x", {1, 2, 3, 4}}),
    [](const ::testing::TestParamInfo<Example>& info) {
      std::string name = info.param.file;
      return name.substr(0, name.find('.'));
    });

TEST(LincheckExamples, EveryFileIsCovered) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(examples_dir())) {
    files += entry.path().extension() == ".jsonl";
  }
  EXPECT_EQ(files, 14u) << "add new examples to the table above";
}

TEST(LincheckChecker, TouchingIsConcurrentButAGapIsNot) {
  History touching = load("ok_touching.jsonl");
  EXPECT_EQ(check(touching).verdict, Verdict::Ok);
  touching.ops[1].invoke_us += 1;  // the read now starts after the write completed
  EXPECT_EQ(check(touching).verdict, Verdict::Violation);
}

TEST(LincheckChecker, StaleReadPartialLinearization) {
  History h = load("bad_stale_read.jsonl");
  CheckResult result = check(h);
  ASSERT_EQ(result.verdict, Verdict::Violation);
  const KeyResult& bad = result.keys[*result.bad_key];
  EXPECT_EQ(ids_of(h, bad.search.order), (std::vector<std::int64_t>{1, 2, 3, 5}));
  Explanation e = explain(h, bad.key, bad.ops, 5.0);
  EXPECT_EQ(ids_of(h, e.partial), (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(e.state_after_partial, "2");
  ASSERT_EQ(e.stuck.size(), 1u);
  EXPECT_EQ(h.ops[e.stuck[0].op].id, 6);
  EXPECT_NE(e.stuck[0].reason.find("holds \"2\""), std::string::npos) << e.stuck[0].reason;
  // Key y is fine and reported as such.
  ASSERT_EQ(result.keys.size(), 2u);
  EXPECT_EQ(result.keys[1].key, "y");
  EXPECT_EQ(result.keys[1].search.verdict, Verdict::Ok);
}

TEST(LincheckChecker, EmptyHistoryIsLinearizable) {
  CheckResult result = check(History{});
  EXPECT_EQ(result.verdict, Verdict::Ok);
  EXPECT_TRUE(result.keys.empty());
}

// ---- random small histories against brute force ---------------------------

// A random history of one key: half the time from a simulated register with
// random perturbations, half the time arbitrary, over few values and
// coarse times (so intervals often touch).
History random_small_history(std::mt19937_64& rng, std::size_t n) {
  auto roll = [&](int m) { return static_cast<int>(rng() % m); };
  const std::vector<std::optional<std::string>> values = {std::nullopt, "a", "b", "c"};
  History h;
  std::optional<std::string> state;
  std::vector<std::pair<std::int64_t, std::size_t>> effects;
  for (std::size_t i = 0; i < n; ++i) {
    Op op;
    op.id = static_cast<std::int64_t>(i + 1);
    op.client = "c" + std::to_string(roll(4));
    op.key = "x";
    op.type = static_cast<OpType>(roll(4));
    if (op.type == OpType::Set || op.type == OpType::Cas) op.value = *values[1 + roll(3)];
    if (op.type == OpType::Cas) op.expected = roll(5) == 0 ? std::nullopt : values[1 + roll(3)];
    op.invoke_us = roll(12);
    const int r = roll(10);
    op.outcome = r < 6 ? Outcome::Ok : r < 8 ? Outcome::Unknown : Outcome::Fail;
    if (op.outcome != Outcome::Unknown || roll(2)) op.complete_us = op.invoke_us + roll(6);
    if (op.outcome == Outcome::Fail && op.type == OpType::Cas && roll(3)) op.error = "cas_failed";
    h.ops.push_back(op);
    effects.push_back({op.invoke_us + roll(op.complete_us ? static_cast<int>(*op.complete_us - op.invoke_us) + 1 : 8), i});
  }
  // Results: from a simulated run (consistent unless perturbed) or random.
  const bool simulate = roll(2) == 0;
  std::sort(effects.begin(), effects.end());
  for (auto [time, i] : effects) {
    Op& op = h.ops[i];
    if (op.is_irrelevant()) continue;
    const bool take_effect = op.outcome != Outcome::Unknown || roll(2);
    if (!take_effect) continue;
    const bool observed = op.outcome == Outcome::Ok || op.is_cas_failed();
    if (op.type == OpType::Cas && op.outcome == Outcome::Ok && state != op.expected) {
      op.outcome = Outcome::Fail;
      op.error = "cas_failed";
    } else if (op.is_cas_failed() && state == op.expected) {
      op.outcome = Outcome::Ok;
      op.error.clear();
    }
    if (observed) {
      op.has_result = roll(6) != 0 || op.type == OpType::Get || op.type == OpType::Delete;
      op.result = simulate && roll(8) ? (op.type == OpType::Set || (op.type == OpType::Cas && op.outcome == Outcome::Ok)
                                             ? op.value
                                             : state)
                                      : values[roll(4)];
      if (!op.has_result) op.result.reset();
    }
    lincheck::apply(op, state);
  }
  for (Op& op : h.ops) {
    if (op.outcome == Outcome::Ok && (op.type == OpType::Get || op.type == OpType::Delete) && !op.has_result) {
      op.has_result = true;
      op.result = values[roll(4)];
    }
    if (op.outcome == Outcome::Fail && !op.is_cas_failed()) op.has_result = false, op.result.reset();
  }
  return h;
}

TEST(LincheckChecker, AgreesWithBruteForceOnRandomSmallHistories) {
  std::mt19937_64 rng(2024);
  int linearizable = 0, violations = 0;
  for (int round = 0; round < 4000; ++round) {
    History h = random_small_history(rng, 3 + rng() % 6);
    const bool expected = brute_force_linearizable(h);
    for (bool reduce : {true, false}) {
      CheckOptions options;
      options.reduce_unknown_ops = reduce;
      SearchResult r = search(h, all_indexes(h), Clock::now() + std::chrono::seconds(5), options);
      ASSERT_EQ(r.verdict, expected ? Verdict::Ok : Verdict::Violation)
          << "round " << round << " reduce=" << reduce << "\n" << [&] {
               std::ostringstream out;
               write_history(out, h);
               return out.str();
             }();
      if (expected) {
        ASSERT_TRUE(valid_linearization(h, all_indexes(h), r.order)) << "round " << round;
      }
    }
    (expected ? linearizable : violations)++;
    if (!expected && round % 4 == 0) {
      // Minimal sets are violations, and removing any single op of one
      // makes it linearizable or incomplete.
      Explanation e = explain(h, "x", all_indexes(h), 5.0);
      History minimal;
      for (std::size_t i : e.minimal) minimal.ops.push_back(h.ops[i]);
      ASSERT_FALSE(brute_force_linearizable(minimal)) << "round " << round;
    }
  }
  // Both verdicts are well represented, or the comparison proves little.
  EXPECT_GT(linearizable, 800);
  EXPECT_GT(violations, 800);
}

// ---- generated histories ---------------------------------------------------

TEST(LincheckGenerated, LinearizableForManySeeds) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    GenerateOptions g;
    g.ops = 1500;
    g.keys = 1 + seed % 5;
    g.clients = 4 + seed % 13;
    g.seed = seed;
    g.unknown_ratio = seed % 2 ? 0.05 : 0.25;
    Generated generated = generate(g);
    ASSERT_EQ(generated.history.ops.size(), g.ops);
    CheckResult result = check(generated.history);
    ASSERT_EQ(result.verdict, Verdict::Ok) << "seed " << seed;
    for (const KeyResult& k : result.keys) {
      ASSERT_TRUE(valid_linearization(generated.history, k.ops, k.search.order)) << "seed " << seed;
    }
  }
}

TEST(LincheckGenerated, CorruptedOnesAreCaught) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    GenerateOptions g;
    g.ops = 1500;
    g.keys = 1 + seed % 5;
    g.clients = 4 + seed % 9;
    g.seed = seed;
    g.unknown_ratio = seed % 2 ? 0.05 : 0.2;
    g.corrupt = true;
    Generated generated = generate(g);
    ASSERT_TRUE(generated.corrupted_id.has_value());
    const History& h = generated.history;
    CheckResult result = check(h);
    ASSERT_EQ(result.verdict, Verdict::Violation) << "seed " << seed;
    const KeyResult& bad = result.keys[*result.bad_key];
    Explanation e = explain(h, bad.key, bad.ops, 10.0);
    // Values are unique, so every complete subset of the uncorrupted
    // history is linearizable: the stale read must be in the minimal set.
    std::vector<std::int64_t> ids = ids_of(h, e.minimal);
    EXPECT_NE(std::find(ids.begin(), ids.end(), *generated.corrupted_id), ids.end()) << "seed " << seed;
    EXPECT_LE(ids.size(), 6u) << "seed " << seed;
  }
}

TEST(LincheckGenerated, DeterministicPerSeed) {
  GenerateOptions g;
  g.ops = 300;
  std::ostringstream a, b;
  write_history(a, generate(g).history);
  write_history(b, generate(g).history);
  EXPECT_EQ(a.str(), b.str());
  g.seed = 2;
  std::ostringstream c;
  write_history(c, generate(g).history);
  EXPECT_NE(a.str(), c.str());
}

TEST(LincheckGenerated, TenThousandOpsCheckQuickly) {
  GenerateOptions g;
  g.ops = 10000;
  g.keys = 10;
  g.clients = 16;
  g.unknown_ratio = 0.05;
  Generated generated = generate(g);
  const auto start = Clock::now();
  CheckResult result = check(generated.history);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(result.verdict, Verdict::Ok);
  EXPECT_LT(seconds, 2.0);  // typically a few milliseconds in an optimised build
}

// ---- the time budget -------------------------------------------------------

// 40 concurrent writes of distinct values, then two reads that disagree:
// refuting it means trying every subset of the writes.
History hard_history() {
  History h;
  for (int i = 0; i < 40; ++i) {
    h.ops.push_back(make(i + 1, OpType::Set, "v" + std::to_string(i), {}, 0, 1000, Outcome::Ok,
                         std::optional<std::string>("v" + std::to_string(i)), "", "c" + std::to_string(i)));
  }
  h.ops.push_back(make(41, OpType::Get, {}, {}, 2000, 2100, Outcome::Ok, std::optional<std::string>("v0"), "", "r"));
  h.ops.push_back(make(42, OpType::Get, {}, {}, 2200, 2300, Outcome::Ok, std::optional<std::string>("v1"), "", "r"));
  return h;
}

TEST(LincheckBudget, TinyBudgetOnAHardHistoryIsUnknown) {
  History h = hard_history();
  CheckOptions options;
  options.timeout_s = 0.05;
  const auto start = Clock::now();
  CheckResult result = check(h, options);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(result.verdict, Verdict::Unknown);
  EXPECT_FALSE(result.bad_key.has_value());
  ASSERT_EQ(result.keys.size(), 1u);
  EXPECT_EQ(result.keys[0].search.why_unknown, "time budget");
  EXPECT_LT(seconds, 1.0);
}

TEST(LincheckBudget, MemoryBudgetIsUnknownToo) {
  CheckOptions options;
  options.max_cache_bytes = 1 << 20;
  CheckResult result = check(hard_history(), options);
  EXPECT_EQ(result.verdict, Verdict::Unknown);
  EXPECT_EQ(result.keys[0].search.why_unknown, "memory budget");
}

TEST(LincheckBudget, AViolationElsewhereIsStillDefinite) {
  // Key x (checked first) is not linearizable; the hard key then runs out
  // of time. The verdict is a violation, not unknown.
  History h = load("bad_stale_read.jsonl");
  for (Op op : hard_history().ops) {
    op.id += 1000;
    op.key = "hard";
    h.ops.push_back(op);
  }
  CheckOptions options;
  options.timeout_s = 0.2;
  CheckResult result = check(h, options);
  EXPECT_EQ(result.verdict, Verdict::Violation);
  ASSERT_TRUE(result.bad_key.has_value());
  EXPECT_EQ(result.keys[*result.bad_key].key, "x");
  ASSERT_EQ(result.keys.size(), 3u);
  EXPECT_EQ(result.keys[2].key, "hard");
  EXPECT_EQ(result.keys[2].search.verdict, Verdict::Unknown);
}

// ---- the page --------------------------------------------------------------

TEST(LincheckHtml, SelfContainedAndCarriesTheExplanation) {
  History h = load("bad_stale_read.jsonl");
  h.ops[0].value = "</script><script>alert(1)</script>";  // must stay inert
  h.ops[0].result = h.ops[0].value;
  h.ops[1].result = h.ops[0].value;
  h.ops[5].result = h.ops[0].value;
  CheckResult result = check(h);
  ASSERT_EQ(result.verdict, Verdict::Violation);
  const KeyResult& bad = result.keys[*result.bad_key];
  Explanation e = explain(h, bad.key, bad.ops, 5.0);
  const std::string page = render_html(h, result, &e, "bad_stale_read.jsonl");
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find(" src="), std::string::npos);
  EXPECT_EQ(page.find("@import"), std::string::npos);
  EXPECT_EQ(page.find("url(http"), std::string::npos);
  EXPECT_EQ(page.find("alert(1)</script>"), std::string::npos);
  EXPECT_NE(page.find("cannot be ordered in any way consistent with a single copy of the key"), std::string::npos);
  EXPECT_NE(page.find("\"minimal\":[0,2,5]"), std::string::npos);
  // Only the SVG namespace looks like an address.
  std::size_t at = 0;
  while ((at = page.find("http", at)) != std::string::npos) {
    EXPECT_EQ(page.compare(at, 26, "http://www.w3.org/2000/svg"), 0) << page.substr(at, 40);
    ++at;
  }

  CheckResult ok = check(load("ok_concurrent.jsonl"));
  const std::string ok_page = render_html(load("ok_concurrent.jsonl"), ok, nullptr, "ok.jsonl");
  EXPECT_NE(ok_page.find("\"verdict\":\"ok\""), std::string::npos);
  EXPECT_NE(ok_page.find("\"explanation\":null"), std::string::npos);
}

TEST(LincheckExplain, TableShowsRelativeMilliseconds) {
  History h = load("bad_stale_read.jsonl");
  const std::string table = format_table(h, {0, 2, 5}, origin_us(h));
  EXPECT_NE(table.find("6.000"), std::string::npos) << table;
  EXPECT_NE(table.find("c3"), std::string::npos) << table;
  EXPECT_NE(table.find("\"1\""), std::string::npos) << table;
}

}  // namespace
