#include "raft/assert.h"

#include <string_view>

namespace raft::detail {

void assertion_failed(const char* file, int line, const char* condition, const std::string& message) {
  // Name the file from its src/ folder on, not by the build machine's path.
  std::string_view path(file);
  if (auto at = path.rfind("src/"); at != std::string_view::npos) path.remove_prefix(at);
  std::string what(path);
  what += ':';
  what += std::to_string(line);
  what += ": ";
  what += condition;
  what += " failed: ";
  what += message;
  throw InvariantViolation(what);
}

void invariant_broken(const std::string& invariant, const std::string& details) {
  throw InvariantViolation("invariant violated: " + invariant + ": " + details);
}

}  // namespace raft::detail
