#include "wire/messages.h"

namespace wire {

const char* to_string(Op op) {
  switch (op) {
    case Op::Get:
      return "get";
    case Op::Set:
      return "set";
    case Op::Cas:
      return "cas";
    case Op::Delete:
      return "delete";
  }
  return "unknown";  // unreachable for valid enum values; keeps -Wreturn-type quiet
}

bool is_valid_client_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxClientIdBytes) return false;
  for (const char c : id) {
    // Explicit ranges rather than <cctype>: isalnum depends on the locale and
    // the set of allowed ids must not.
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace wire
