#include "lincheck/history.h"

#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <set>
#include <ostream>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace lincheck {

using nlohmann::json;

const char* to_string(OpType type) {
  switch (type) {
    case OpType::Get: return "get";
    case OpType::Set: return "set";
    case OpType::Cas: return "cas";
    case OpType::Delete: return "delete";
  }
  return "?";
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::Ok: return "ok";
    case Outcome::Fail: return "fail";
    case Outcome::Unknown: return "unknown";
  }
  return "?";
}

ParseError::ParseError(int line, const std::string& message)
    : std::runtime_error("line " + std::to_string(line) + ": " + message), line_(line) {}

namespace {

[[noreturn]] void fail(int line, const std::string& message) { throw ParseError(line, message); }

// nlohmann keeps integers of 2^63 or more as unsigned; reading one as
// int64 would wrap it to a negative number (a false violation), so reject it.
std::int64_t to_int64(const json& value, const char* field, int line) {
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    fail(line, std::string("field \"") + field + "\" is " + std::to_string(value.get<std::uint64_t>()) +
                   ", out of range (integers must be below 2^63)");
  }
  return value.get<std::int64_t>();
}

std::int64_t require_int(const json& object, const char* field, int line) {
  auto it = object.find(field);
  if (it == object.end()) fail(line, std::string("missing field \"") + field + "\"");
  if (!it->is_number_integer()) fail(line, std::string("field \"") + field + "\" must be an integer");
  return to_int64(*it, field, line);
}

// Parses one line, refusing a key repeated within one object: nlohmann would
// silently keep the last value, so "result" given twice would check only one.
json parse_unique_keys(const std::string& text, int line) {
  std::vector<std::set<std::string>> open_objects;  // keys seen, per enclosing object
  std::string repeated;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() && repeated.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) repeated = key;
    }
    return true;
  };
  json object;
  try {
    object = json::parse(text, callback);
  } catch (const json::parse_error& e) {
    fail(line, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!repeated.empty()) fail(line, "field \"" + repeated + "\" appears more than once");
  return object;
}

std::string require_string(const json& object, const char* field, int line) {
  auto it = object.find(field);
  if (it == object.end()) fail(line, std::string("missing field \"") + field + "\"");
  if (!it->is_string()) fail(line, std::string("field \"") + field + "\" must be a string");
  return it->get<std::string>();
}

// A field that is a string or null; `present` tells whether it was there.
std::optional<std::string> optional_string(const json& object, const char* field, int line,
                                           bool* present) {
  auto it = object.find(field);
  *present = it != object.end();
  if (!*present || it->is_null()) return std::nullopt;
  if (!it->is_string()) fail(line, std::string("field \"") + field + "\" must be a string or null");
  return it->get<std::string>();
}

}  // namespace

Op parse_op(const std::string& text, int line) {
  const json object = parse_unique_keys(text, line);
  if (!object.is_object()) fail(line, "not a JSON object");

  Op op;
  op.line = line;
  op.id = require_int(object, "id", line);
  op.client = require_string(object, "client", line);
  if (op.client.empty()) fail(line, "field \"client\" is empty");

  std::string type = require_string(object, "op", line);
  if (type == "get") op.type = OpType::Get;
  else if (type == "set") op.type = OpType::Set;
  else if (type == "cas") op.type = OpType::Cas;
  else if (type == "delete") op.type = OpType::Delete;
  else fail(line, "field \"op\" must be get, set, cas or delete, not \"" + type + "\"");

  op.key = require_string(object, "key", line);

  std::string outcome = require_string(object, "outcome", line);
  if (outcome == "ok") op.outcome = Outcome::Ok;
  else if (outcome == "fail") op.outcome = Outcome::Fail;
  else if (outcome == "unknown") op.outcome = Outcome::Unknown;
  else fail(line, "field \"outcome\" must be ok, fail or unknown, not \"" + outcome + "\"");

  bool present = false;
  if (op.type == OpType::Set || op.type == OpType::Cas) {
    op.value = require_string(object, "value", line);
  }
  if (op.type == OpType::Cas) {
    op.expected = optional_string(object, "expected", line, &present);
    if (!present) fail(line, "a cas needs field \"expected\" (a string, or null for an absent key)");
  }

  op.invoke_us = require_int(object, "invoke_us", line);
  auto complete = object.find("complete_us");
  if (complete != object.end() && !complete->is_null()) {
    if (!complete->is_number_integer()) fail(line, "field \"complete_us\" must be an integer or null");
    op.complete_us = to_int64(*complete, "complete_us", line);
    if (*op.complete_us < op.invoke_us) fail(line, "complete_us is before invoke_us");
  } else if (op.outcome != Outcome::Unknown) {
    fail(line, "field \"complete_us\" is required unless the outcome is unknown");
  }

  op.result = optional_string(object, "result", line, &present);
  op.has_result = present;
  if (op.outcome == Outcome::Ok && !op.has_result &&
      (op.type == OpType::Get || op.type == OpType::Delete)) {
    fail(line, std::string("an ok ") + to_string(op.type) +
                   " needs field \"result\" (the value read, or null when the key was absent)");
  }
  auto error = object.find("error");
  if (error != object.end() && !error->is_null()) {
    if (!error->is_string()) fail(line, "field \"error\" must be a string");
    op.error = error->get<std::string>();
  }
  return op;
}

History read_history(std::istream& in) {
  History history;
  std::unordered_map<std::int64_t, int> line_of_id;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    Op op = parse_op(text, line);
    auto [it, inserted] = line_of_id.emplace(op.id, line);
    if (!inserted) {
      fail(line, "id " + std::to_string(op.id) + " already used on line " + std::to_string(it->second));
    }
    history.ops.push_back(std::move(op));
  }
  return history;
}

History read_history_file(const std::string& path) {
  // An ifstream opens a directory and reads it as empty: that must not pass
  // for an (empty, hence trivially linearizable) history.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw std::runtime_error("is a directory, not a history file");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return read_history(in);
}

std::string to_json_line(const Op& op) {
  json object = json::object();
  object["id"] = op.id;
  object["client"] = op.client;
  object["op"] = to_string(op.type);
  object["key"] = op.key;
  if (op.value) object["value"] = *op.value;
  if (op.type == OpType::Cas) object["expected"] = op.expected ? json(*op.expected) : json(nullptr);
  object["invoke_us"] = op.invoke_us;
  object["complete_us"] = op.complete_us ? json(*op.complete_us) : json(nullptr);
  object["outcome"] = to_string(op.outcome);
  if (op.has_result) object["result"] = op.result ? json(*op.result) : json(nullptr);
  if (!op.error.empty()) object["error"] = op.error;
  return object.dump();
}

void write_history(std::ostream& out, const History& history) {
  for (const Op& op : history.ops) out << to_json_line(op) << '\n';
}

std::string show_value(const std::optional<std::string>& value) {
  if (!value) return "absent";
  return json(*value).dump();  // quoted and escaped
}

std::string describe_args(const Op& op) {
  switch (op.type) {
    case OpType::Get:
    case OpType::Delete: return "";
    case OpType::Set: return show_value(op.value);
    case OpType::Cas: return show_value(op.expected) + "→" + show_value(op.value);
  }
  return "";
}

std::string describe_result(const Op& op) {
  switch (op.outcome) {
    case Outcome::Unknown: return "? (timed out)";
    case Outcome::Fail:
      if (op.is_cas_failed()) {
        return op.has_result ? "failed, saw " + show_value(op.result) : "failed";
      }
      return "failed" + (op.error.empty() ? std::string() : " (" + op.error + ")");
    case Outcome::Ok:
      switch (op.type) {
        case OpType::Get:
        case OpType::Delete: return show_value(op.result);
        case OpType::Set:
        case OpType::Cas:
          if (op.has_result && op.result != op.value) return "ok, stored " + show_value(op.result);
          return "ok";
      }
  }
  return "";
}

std::string describe(const Op& op) {
  std::string args = describe_args(op);
  return std::string(to_string(op.type)) + "(" + op.key + (args.empty() ? "" : ", " + args) +
         ") → " + describe_result(op);
}

}  // namespace lincheck
