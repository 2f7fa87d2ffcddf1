// A self-contained HTML page (inline CSS, JS and SVG, nothing fetched) that
// draws a checked history as a timeline: one lane per client, one bar per
// op from invocation to completion. For a violation it opens on the
// offending key's minimal violating set, in red, with the order the checker
// managed to find and why it got stuck; otherwise a key selector shows each
// key with the linearization found.
#pragma once

#include <string>

#include "lincheck/checker.h"
#include "lincheck/explain.h"
#include "lincheck/history.h"

namespace lincheck {

// `explanation` may be null (no violation). `source` names the history file.
std::string render_html(const History& history, const CheckResult& result,
                        const Explanation* explanation, const std::string& source);

}  // namespace lincheck
