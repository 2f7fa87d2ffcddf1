#include "lincheck/generate.h"

#include <algorithm>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace lincheck {

namespace {

bool writes_definitely(const Op& op) {
  return op.outcome == Outcome::Ok && op.type != OpType::Get;
}

}  // namespace

Generated generate(const GenerateOptions& options) {
  std::mt19937_64 rng(options.seed);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };

  const std::size_t clients = std::max<std::size_t>(1, options.clients);
  const std::size_t keys = std::max<std::size_t>(1, options.keys);
  const std::int64_t max_duration = std::max(options.min_duration_us, options.max_duration_us);

  // The next free time of each client; the earliest goes next.
  using Slot = std::pair<std::int64_t, std::size_t>;
  std::priority_queue<Slot, std::vector<Slot>, std::greater<>> ready;
  for (std::size_t c = 0; c < clients; ++c) ready.push({uniform(0, 1000), c});

  Generated generated;
  History& history = generated.history;
  // When each op takes effect on the simulated store (none: never).
  std::vector<std::optional<std::int64_t>> effect_at;
  // Values written per key so far (in invocation order), for cas' expected.
  std::unordered_map<std::string, std::vector<std::string>> written;

  for (std::size_t n = 0; n < options.ops; ++n) {
    auto [now, client] = ready.top();
    ready.pop();
    Op op;
    op.id = static_cast<std::int64_t>(n + 1);
    op.client = "c" + std::to_string(client + 1);
    op.key = "k" + std::to_string(uniform(0, static_cast<std::int64_t>(keys) - 1));
    int roll = static_cast<int>(uniform(0, 99));
    op.type = roll < 40 ? OpType::Get : roll < 70 ? OpType::Set : roll < 90 ? OpType::Cas : OpType::Delete;
    if (op.type == OpType::Set || op.type == OpType::Cas) op.value = "v" + std::to_string(op.id);
    if (op.type == OpType::Cas) {
      auto& values = written[op.key];
      if (values.empty()) {
        op.expected = "v0";
      } else {
        // Mostly the latest value written, sometimes an older one.
        std::int64_t back = chance(0.6) ? 0 : uniform(0, std::min<std::int64_t>(3, values.size() - 1));
        op.expected = values[values.size() - 1 - back];
      }
    }
    if (op.value) written[op.key].push_back(*op.value);

    const std::int64_t duration = uniform(options.min_duration_us, max_duration);
    op.invoke_us = now;
    std::optional<std::int64_t> effect;
    if (chance(options.unknown_ratio)) {
      op.outcome = Outcome::Unknown;
      if (chance(0.5)) effect = now + uniform(0, 3 * duration);  // maybe after the client gave up
    } else if (chance(options.fail_ratio)) {
      op.outcome = Outcome::Fail;
      op.error = "not_leader";
      op.complete_us = now + duration;
    } else {
      op.outcome = Outcome::Ok;
      op.complete_us = now + duration;
      effect = now + uniform(0, duration);
    }
    history.ops.push_back(std::move(op));
    effect_at.push_back(effect);
    ready.push({now + duration + uniform(0, options.max_think_us), client});
  }

  // Apply the ops to the store in effect order to learn their results.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < history.ops.size(); ++i) {
    if (effect_at[i]) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return *effect_at[a] != *effect_at[b] ? *effect_at[a] < *effect_at[b] : a < b;
  });
  std::unordered_map<std::string, std::optional<std::string>> store;
  for (std::size_t i : order) {
    Op& op = history.ops[i];
    std::optional<std::string>& state = store[op.key];
    const bool known = op.outcome == Outcome::Ok;
    switch (op.type) {
      case OpType::Get:
        if (known) op.has_result = true, op.result = state;
        break;
      case OpType::Set:
        state = op.value;
        if (known) op.has_result = true, op.result = op.value;
        break;
      case OpType::Cas:
        if (state == op.expected) {
          state = op.value;
          if (known) op.has_result = true, op.result = op.value;
        } else if (known) {
          op.outcome = Outcome::Fail;
          op.error = "cas_failed";
          op.has_result = true;
          op.result = state;
        }
        break;
      case OpType::Delete:
        if (known) op.has_result = true, op.result = state;
        state.reset();
        break;
    }
  }
  // Failed and unknown ops carry no result.

  if (options.corrupt) {
    // A get G, a definite write A of value v, and a definite write B with
    // A done before B starts and B done before G starts: G reading v is
    // impossible, since values are unique and B overwrote v for good.
    std::unordered_map<std::string, std::vector<std::size_t>> writes;  // per key, by invocation
    for (std::size_t i = 0; i < history.ops.size(); ++i) {
      if (writes_definitely(history.ops[i])) writes[history.ops[i].key].push_back(i);
    }
    const std::size_t middle = history.ops.size() / 2;
    for (std::size_t step = 0; step < history.ops.size() && !generated.corrupted_id; ++step) {
      std::size_t g = step % 2 == 0 ? middle + step / 2 : middle - 1 - step / 2;
      if (g >= history.ops.size()) continue;
      Op& get = history.ops[g];
      if (get.type != OpType::Get || get.outcome != Outcome::Ok) continue;
      const auto& candidates = writes[get.key];
      for (auto b = candidates.rbegin(); b != candidates.rend() && !generated.corrupted_id; ++b) {
        const Op& write_b = history.ops[*b];
        if (*write_b.complete_us >= get.invoke_us) continue;
        for (auto a = candidates.rbegin(); a != candidates.rend(); ++a) {
          const Op& write_a = history.ops[*a];
          if (write_a.type == OpType::Delete || *write_a.complete_us >= write_b.invoke_us) continue;
          if (write_a.value == get.result) continue;
          get.result = write_a.value;
          generated.corrupted_id = get.id;
          break;
        }
      }
    }
  }
  return generated;
}

}  // namespace lincheck
