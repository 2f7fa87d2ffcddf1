#include "linearizable.h"

#include <sstream>

#include "lincheck/checker.h"
#include "lincheck/explain.h"
#include "common.h"

namespace sim {

namespace {

// Histories of one run are small (a few thousand ops on a few keys, clients
// one request at a time): the search takes milliseconds. The budget is for
// a pathological case, reported rather than waited for.
constexpr double kBudgetSeconds = 20.0;
constexpr double kExplainSeconds = 5.0;

}  // namespace

void check_linearizable(const lincheck::History& history) {
  lincheck::CheckOptions options;
  options.timeout_s = kBudgetSeconds;
  const lincheck::CheckResult result = lincheck::check(history, options);
  if (result.verdict == lincheck::Verdict::Ok) return;
  if (result.verdict == lincheck::Verdict::Unknown) {
    std::string why;
    for (const lincheck::KeyResult& k : result.keys) {
      if (k.search.verdict == lincheck::Verdict::Unknown) why += " key '" + k.key + "': " + k.search.why_unknown + ";";
    }
    throw Violation{"linearizability: the clients' history gets a verdict (lincheck)",
                    "the checker ran out of its budget:" + why + " " + std::to_string(result.ops) + " ops"};
  }
  const lincheck::KeyResult& bad = result.keys[*result.bad_key];
  const lincheck::Explanation e = lincheck::explain(history, bad.key, bad.ops, kExplainSeconds, options);
  std::ostringstream out;
  out << "key '" << bad.key << "': these " << e.minimal.size()
      << " operations cannot be ordered consistently with one copy of the key (times: tick.event):\n"
      << lincheck::format_table(history, e.minimal, 0);
  if (!e.stuck.empty()) {
    out << "    after the order found, the key holds " << lincheck::show_value(e.state_after_partial) << ":\n";
    for (const lincheck::StuckOp& s : e.stuck) {
      out << "      " << lincheck::describe(history.ops[s.op]) << ": " << s.reason << "\n";
    }
  }
  throw Violation{"linearizability: every answer clients got fits one order of their operations (§8, lincheck)",
                  out.str()};
}

}  // namespace sim
