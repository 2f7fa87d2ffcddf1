#include "kv/command.h"

#include <nlohmann/json.hpp>

namespace kv {

namespace {

using nlohmann::json;

// Spelled out here rather than via wire::to_string so that the state machine's
// log format cannot drift if the wire layer ever renames an op.
const char* op_name(wire::Op op) {
  switch (op) {
    case wire::Op::Set:
      return "set";
    case wire::Op::Cas:
      return "cas";
    case wire::Op::Delete:
      return "delete";
    case wire::Op::Get:
      break;
  }
  return "get";
}

std::optional<wire::Op> parse_op(const std::string& name) {
  // "get" is deliberately absent: reads never enter the log, so a logged get
  // can only be corruption or a bug and must not be applied.
  if (name == "set") return wire::Op::Set;
  if (name == "cas") return wire::Op::Cas;
  if (name == "delete") return wire::Op::Delete;
  return std::nullopt;
}

// Returns nullptr when absent or not a string, so callers can reject in one test.
const std::string* string_field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

}  // namespace

std::string encode(const Command& command) {
  // nlohmann::json's default object is a std::map, which is what gives the
  // sorted key order: every replica and every run produce the same bytes.
  json object;
  object["client"] = command.client_id;
  object["key"] = command.key;
  object["op"] = op_name(command.op);
  object["seq"] = command.seq;
  if (command.op == wire::Op::Set || command.op == wire::Op::Cas) {
    object["value"] = command.value;
  }
  if (command.op == wire::Op::Cas) {
    object["expected"] = command.expected;
  }
  // Strings reach us from decoded JSON datagrams and are therefore valid
  // UTF-8; dump() would throw on anything else, which is a caller bug.
  return object.dump();
}

std::optional<Command> decode(std::string_view text) {
  // allow_exceptions=false: a parse failure yields a "discarded" value
  // instead of throwing, which keeps this function noexcept in practice.
  const json object = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return std::nullopt;

  const std::string* client = string_field(object, "client");
  const std::string* op_text = string_field(object, "op");
  const std::string* key = string_field(object, "key");
  if (client == nullptr || client->empty() || op_text == nullptr || key == nullptr ||
      key->empty()) {
    return std::nullopt;
  }

  // Only a non-negative integer literal parses as number_unsigned; negative
  // numbers, floats (including 3.0) and out-of-range values are rejected.
  auto seq = object.find("seq");
  if (seq == object.end() || !seq->is_number_unsigned()) return std::nullopt;

  std::optional<wire::Op> op = parse_op(*op_text);
  if (!op) return std::nullopt;

  Command command;
  command.client_id = *client;
  command.seq = seq->get<std::uint64_t>();
  if (command.seq == 0) return std::nullopt;  // PROTOCOL.md: seq >= 1
  command.op = *op;
  command.key = *key;

  if (command.op == wire::Op::Set || command.op == wire::Op::Cas) {
    const std::string* value = string_field(object, "value");
    if (value == nullptr) return std::nullopt;
    command.value = *value;
  }
  if (command.op == wire::Op::Cas) {
    const std::string* expected = string_field(object, "expected");
    if (expected == nullptr) return std::nullopt;
    command.expected = *expected;
  }
  // Fields that do not belong to the op (e.g. "value" on a delete) are
  // ignored, as PROTOCOL.md does for unknown fields.
  return command;
}

}  // namespace kv
