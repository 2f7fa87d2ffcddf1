// A client's write as it travels through the Raft log: a JSON object text,
// opaque to the core, decoded again by every replica's state machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wire/messages.h"

namespace kv {

struct Command {
  std::string client_id;
  std::uint64_t seq = 0;
  wire::Op op = wire::Op::Set;  // Set, Cas or Delete (reads never enter the log)
  std::string key;
  std::string value;     // set, cas
  std::string expected;  // cas

  bool operator==(const Command&) const = default;
};

// Compact JSON object, keys sorted, e.g. {"client":"c1","key":"x","op":"set","seq":3,"value":"1"}.
std::string encode(const Command& command);
// nullopt when the text is not a well-formed command.
std::optional<Command> decode(std::string_view text);

}  // namespace kv
