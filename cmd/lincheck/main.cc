// lincheck: checks that a key-value history (JSON lines, docs/lincheck.md)
// is linearizable, explains a violation, and draws it as an HTML timeline.
// It also generates synthetic histories for tests and benchmarks.
//
// Exit status: 0 linearizable, 1 not linearizable, 2 usage or bad input,
// 3 undecided (the time budget or the memory cap stopped it), 4 empty
// history (nothing to check: a harness that recorded nothing must not pass).

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lincheck/checker.h"
#include "lincheck/explain.h"
#include "lincheck/generate.h"
#include "lincheck/history.h"
#include "lincheck/html.h"

namespace {

using namespace lincheck;

constexpr const char* kUsage =
    "usage: lincheck HISTORY.jsonl [--html OUT.html] [--timeout-s S] [--max-memory-mb M] [--json]\n"
    "       lincheck --generate N [--keys K] [--clients C] [--seed S] [--unknown-ratio R] [--corrupt]\n"
    "\n"
    "Checks that a key-value history (JSON lines; - reads standard input) is linearizable.\n"
    "  --html OUT     also write a self-contained HTML timeline of the result\n"
    "  --timeout-s S  time budget for the whole check (default 10); shrinking a\n"
    "                 violation to a minimal set gets the same budget again\n"
    "  --max-memory-mb M  cap on the search's cache (default 1024); reaching it\n"
    "                 stops the check undecided, like the time budget\n"
    "  --json         print a JSON verdict object instead of text\n"
    "  --no-reduce    search unknown-outcome ops without the reductions (slow; for cross-checking)\n"
    "Exit status: 0 linearizable, 1 not linearizable, 2 usage or bad input, 3 undecided,\n"
    "4 empty history (no operations: nothing was checked).\n"
    "\n"
    "--generate writes a synthetic linearizable history to standard output\n"
    "(defaults: --keys 10 --clients 16 --seed 1 --unknown-ratio 0.05); --corrupt\n"
    "turns one read into a stale read, so the history is not linearizable.\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "lincheck: " << message << "\n\n" << kUsage;
  std::exit(2);
}

double parse_double(const std::string& flag, const std::string& text) {
  try {
    std::size_t used = 0;
    double value = std::stod(text, &used);
    if (used == text.size() && value >= 0) return value;
  } catch (const std::exception&) {
  }
  usage_error(flag + " needs a non-negative number, not \"" + text + "\"");
}

std::uint64_t parse_count(const std::string& flag, const std::string& text) {
  try {
    std::size_t used = 0;
    unsigned long long value = std::stoull(text, &used);
    if (used == text.size() && text[0] != '-') return value;
  } catch (const std::exception&) {
  }
  usage_error(flag + " needs a non-negative integer, not \"" + text + "\"");
}

std::string quote_key(const std::string& key) { return nlohmann::json(key).dump(); }

constexpr int kExitEmpty = 4;

// Which limit stopped an undecided check: the first undecided key's reason
// ("time budget" or "memory budget"); keys skipped after the deadline say
// "time budget".
std::string stopped_by(const CheckResult& result) {
  for (const KeyResult& k : result.keys) {
    if (k.search.verdict == Verdict::Unknown) return k.search.why_unknown.empty() ? "time budget" : k.search.why_unknown;
  }
  return "";
}

nlohmann::json ids(const History& history, const std::vector<std::size_t>& indexes) {
  nlohmann::json array = nlohmann::json::array();
  for (std::size_t i : indexes) array.push_back(history.ops[i].id);
  return array;
}

std::string id_list(const History& history, const std::vector<std::size_t>& indexes,
                    std::size_t max_shown) {
  std::ostringstream out;
  std::size_t begin = indexes.size() > max_shown ? indexes.size() - max_shown : 0;
  if (begin > 0) out << "… ";
  for (std::size_t k = begin; k < indexes.size(); ++k) {
    out << (k > begin ? " " : "") << history.ops[indexes[k]].id;
  }
  return out.str();
}

int run_generate(const std::vector<std::string>& args) {
  GenerateOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "--generate") options.ops = parse_count(a, value());
    else if (a == "--keys") options.keys = parse_count(a, value());
    else if (a == "--clients") options.clients = parse_count(a, value());
    else if (a == "--seed") options.seed = parse_count(a, value());
    else if (a == "--unknown-ratio") options.unknown_ratio = parse_double(a, value());
    else if (a == "--corrupt") options.corrupt = true;
    else usage_error("unknown option for --generate: " + a);
  }
  if (options.keys == 0 || options.clients == 0) usage_error("--keys and --clients must be at least 1");
  if (options.unknown_ratio > 1) usage_error("--unknown-ratio must be between 0 and 1");
  Generated generated = generate(options);
  if (options.corrupt && !generated.corrupted_id) {
    std::cerr << "lincheck: found no read to corrupt; try more ops\n";
    return 2;
  }
  std::ios::sync_with_stdio(false);
  write_history(std::cout, generated.history);
  std::cout.flush();
  return std::cout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "--generate") return run_generate(args);
  }

  std::string path, html_path;
  CheckOptions options;
  bool json_output = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "--html") html_path = value();
    else if (a == "--timeout-s") options.timeout_s = parse_double(a, value());
    else if (a == "--max-memory-mb") {
      const std::uint64_t mb = parse_count(a, value());
      if (mb < 1 || mb > (std::uint64_t{1} << 20)) usage_error("--max-memory-mb must be between 1 and 1048576");
      options.max_cache_bytes = static_cast<std::size_t>(mb) << 20;
    }
    else if (a == "--json") json_output = true;
    else if (a == "--no-reduce") options.reduce_unknown_ops = false;
    else if (a.size() > 1 && a[0] == '-') usage_error("unknown option " + a);
    else if (path.empty()) path = a;
    else usage_error("more than one history given");
  }
  if (path.empty()) usage_error("no history given");

  History history;
  try {
    history = path == "-" ? read_history(std::cin) : read_history_file(path);
  } catch (const std::exception& e) {
    std::cerr << "lincheck: " << (path == "-" ? "<stdin>" : path) << ": " << e.what() << "\n";
    return 2;
  }

  if (history.ops.empty()) {
    // Not "linearizable": a recorder that wrote nothing would pass otherwise.
    if (json_output) {
      nlohmann::json out{{"verdict", "empty"}, {"empty", true}, {"ops", 0}, {"checked_ops", 0}, {"keys", 0}};
      std::cout << out.dump() << "\n";
    } else {
      std::printf("empty: the history holds no operations; nothing was checked\n");
    }
    return kExitEmpty;
  }

  CheckResult result = check(history, options);
  std::optional<Explanation> explanation;
  if (result.bad_key) {
    const KeyResult& bad = result.keys[*result.bad_key];
    explanation = explain(history, bad.key, bad.ops, options.timeout_s, options);
  }

  std::vector<std::string> bad_keys, unknown_keys;
  for (const KeyResult& k : result.keys) {
    if (k.search.verdict == Verdict::Violation) bad_keys.push_back(k.key);
    if (k.search.verdict == Verdict::Unknown) unknown_keys.push_back(k.key);
  }

  if (json_output) {
    nlohmann::json out;
    out["verdict"] = to_string(result.verdict);
    out["ops"] = result.ops;
    out["checked_ops"] = result.checked_ops;
    out["keys"] = result.keys.size();
    out["seconds"] = result.seconds;
    out["bad_key"] = result.bad_key ? nlohmann::json(result.keys[*result.bad_key].key) : nlohmann::json(nullptr);
    out["bad_keys"] = bad_keys;
    out["unknown_keys"] = unknown_keys;
    out["empty"] = false;
    out["stopped_by"] = result.verdict == Verdict::Unknown ? nlohmann::json(stopped_by(result)) : nlohmann::json(nullptr);
    nlohmann::json details = nlohmann::json::array();
    for (const KeyResult& k : result.keys) {
      details.push_back({{"key", k.key},
                         {"verdict", to_string(k.search.verdict)},
                         {"ops", k.ops.size()},
                         {"seconds", k.seconds},
                         {"steps", k.search.steps},
                         {"stopped_by", k.search.verdict == Verdict::Unknown
                                            ? nlohmann::json(k.search.why_unknown.empty() ? "time budget" : k.search.why_unknown)
                                            : nlohmann::json(nullptr)},
                         {"configurations", k.search.cache_entries},
                         {"placed_last", k.search.pruned},
                         {"open_ended", k.search.open_ended}});
    }
    out["key_details"] = details;
    if (explanation) {
      out["minimal"] = ids(history, explanation->minimal);
      out["one_minimal"] = explanation->one_minimal;
      out["partial_linearization"] = ids(history, result.keys[*result.bad_key].search.order);
      out["minimal_partial_linearization"] = ids(history, explanation->partial);
      out["state_after_minimal_partial"] = explanation->state_after_partial
                                               ? nlohmann::json(*explanation->state_after_partial)
                                               : nlohmann::json(nullptr);
      nlohmann::json stuck = nlohmann::json::array();
      for (const StuckOp& s : explanation->stuck) {
        stuck.push_back({{"id", history.ops[s.op].id}, {"reason", s.reason}});
      }
      out["stuck"] = stuck;
      out["explain_seconds"] = explanation->seconds;
    } else {
      out["minimal"] = nlohmann::json::array();
      out["partial_linearization"] = nlohmann::json::array();
    }
    std::cout << out.dump() << "\n";
  } else if (result.verdict == Verdict::Ok) {
    std::printf("linearizable: %zu ops, %zu key%s, checked in %.3f s\n", result.ops, result.keys.size(),
                result.keys.size() == 1 ? "" : "s", result.seconds);
  } else if (result.verdict == Verdict::Unknown) {
    char limit[96];
    if (stopped_by(result) == "memory budget") {
      std::snprintf(limit, sizeof limit, "the memory cap (%zu MiB)", options.max_cache_bytes >> 20);
    } else {
      std::snprintf(limit, sizeof limit, "the time budget (%g s)", options.timeout_s);
    }
    std::printf("unknown: %s ran out on key %s%s after %.3f s, with no violation "
                "found (%zu ops, %zu key%s)\n",
                limit, quote_key(unknown_keys.front()).c_str(),
                unknown_keys.size() > 1 ? (" and " + std::to_string(unknown_keys.size() - 1) + " more").c_str() : "",
                result.seconds, result.ops, result.keys.size(), result.keys.size() == 1 ? "" : "s");
  } else {
    const KeyResult& bad = result.keys[*result.bad_key];
    const Explanation& e = *explanation;
    const std::int64_t origin = origin_us(history);
    std::printf("NOT linearizable: key %s (%zu of %zu ops, %zu key%s, checked in %.3f s)\n",
                quote_key(bad.key).c_str(), bad.ops.size(), result.ops, result.keys.size(),
                result.keys.size() == 1 ? "" : "s", result.seconds);
    std::printf("%s cannot be ordered in any way consistent with a single copy of the key%s:\n",
                e.minimal.size() == 1 ? "This operation" : ("These " + std::to_string(e.minimal.size()) + " operations").c_str(),
                e.one_minimal ? "" : " (time ran out while shrinking: maybe not minimal)");
    std::fputs(format_table(history, e.minimal, origin).c_str(), stdout);
    if (e.partial.empty()) {
      std::printf("Not even the first can be placed: the key starts absent, and\n");
    } else {
      std::printf("The best order the search found for them:");
      for (std::size_t i : e.partial) std::printf(" %lld", static_cast<long long>(history.ops[i].id));
      std::printf("; then the key holds %s and it is stuck:\n", show_value(e.state_after_partial).c_str());
    }
    for (const StuckOp& s : e.stuck) {
      std::printf("  %lld %s: %s\n", static_cast<long long>(history.ops[s.op].id),
                  describe(history.ops[s.op]).c_str(), s.reason.c_str());
    }
    std::printf("Longest partial linearization of key %s: %zu of %zu ops: %s\n", quote_key(bad.key).c_str(),
                bad.search.order.size(), bad.ops.size(), id_list(history, bad.search.order, 30).c_str());
    if (bad_keys.size() > 1) {
      std::printf("Also not linearizable:");
      for (std::size_t k = 1; k < bad_keys.size(); ++k) std::printf(" %s", quote_key(bad_keys[k]).c_str());
      std::printf("\n");
    }
    std::printf("(times in ms since the first invocation; shrinking took %.3f s, %zu checks)\n", e.seconds,
                e.checks);
  }

  if (!html_path.empty()) {
    std::ofstream out(html_path, std::ios::binary);
    std::string source = path == "-" ? "<stdin>" : path;
    if (auto slash = source.find_last_of('/'); slash != std::string::npos) source = source.substr(slash + 1);
    out << render_html(history, result, explanation ? &*explanation : nullptr, source);
    if (!out) {
      std::cerr << "lincheck: cannot write " << html_path << "\n";
      return 2;
    }
  }
  switch (result.verdict) {
    case Verdict::Ok: return 0;
    case Verdict::Violation: return 1;
    case Verdict::Unknown: return 3;
  }
  return 2;
}
