// Always-on assertions for the core. Unlike assert(), RAFT_ASSERT is never
// compiled out (the default build is RelWithDebInfo, which defines NDEBUG):
// a broken invariant of the Raft core is a safety bug, and carrying on after
// one could lose acknowledged writes. A failure throws InvariantViolation, so
// the shell stops with a named error and a test can expect it.
//
// Cost when the condition holds: one compare and a branch the compiler lays
// out as not taken. The message expression is evaluated only on failure, so
// building a detailed std::string there is free on hot paths.
#pragma once

#include <stdexcept>
#include <string>

namespace raft {

// what() is "FILE:LINE: CONDITION failed: MESSAGE" for RAFT_ASSERT, or
// "invariant violated: NAME: DETAILS" for Raft::check_invariants() and
// InvariantMonitor.
class InvariantViolation : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {
[[noreturn]] void assertion_failed(const char* file, int line, const char* condition, const std::string& message);
[[noreturn]] void invariant_broken(const std::string& invariant, const std::string& details);
}  // namespace detail

}  // namespace raft

#define RAFT_ASSERT(cond, message)                                                  \
  do {                                                                              \
    if (!(cond)) [[unlikely]]                                                       \
      ::raft::detail::assertion_failed(__FILE__, __LINE__, #cond, (message));       \
  } while (false)
