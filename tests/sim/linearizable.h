// The end-of-run check on what clients saw: the whole history of client
// operations (clients.h) must be linearizable (src/lincheck: each key a
// register; ok / fail / unknown outcomes; docs/lincheck.md). Times are the
// clients' event counter, so "A completed before B was invoked" is exact.
#pragma once

#include "lincheck/history.h"

namespace sim {

// Throws Violation when the history is not linearizable, or when the
// checker's budget runs out (a run must give a verdict, or it proves nothing).
void check_linearizable(const lincheck::History& history);

}  // namespace sim
