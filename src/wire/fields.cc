#include "wire/fields.h"

#include "wire/messages.h"

namespace wire::fields {

void fail(const std::string& field, const std::string& what, DecodeError::Kind kind) {
  throw Invalid{kind, "field '" + field + "': " + what};
}

std::string describe(const json& v) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return "a negative integer";
  if (v.is_number_float()) return "a non-integer or out-of-range number";
  if (v.is_number_unsigned()) return "an integer";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return v.type_name();
}

const json* find(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const json& require(const json& object, const char* key, const std::string& name) {
  const json* v = find(object, key);
  if (v == nullptr) fail(name, "missing");
  return *v;
}

std::string as_string(const json& v, const std::string& name) {
  if (!v.is_string()) fail(name, "expected a string, got " + describe(v));
  return v.get<std::string>();
}

bool is_wire_integer(const json& v) {
  return v.is_number_unsigned() && v.get<std::uint64_t>() <= kMaxWireInteger;
}

std::uint64_t as_u64(const json& v, const std::string& name) {
  // nlohmann parses non-negative integers that fit in 64 bits as
  // number_unsigned; negatives, fractions and larger integers land elsewhere.
  if (!v.is_number_unsigned()) {
    fail(name, "expected a non-negative integer below 2^53, got " + describe(v));
  }
  // Shared contract v1.1: integers stay below 2^53, the range every JSON
  // implementation carries exactly. A larger one may already have been
  // rounded by a sender that parses numbers as doubles, so it is not trusted.
  const auto value = v.get<std::uint64_t>();
  if (value > kMaxWireInteger) fail(name, std::to_string(value) + " is not below 2^53");
  return value;
}

bool as_bool(const json& v, const std::string& name) {
  if (!v.is_boolean()) fail(name, "expected a boolean, got " + describe(v));
  return v.get<bool>();
}

std::string get_string(const json& o, const char* key) { return as_string(require(o, key, key), key); }
std::uint64_t get_u64(const json& o, const char* key) { return as_u64(require(o, key, key), key); }
bool get_bool(const json& o, const char* key) { return as_bool(require(o, key, key), key); }

std::uint64_t get_u64_or(const json& o, const char* key, std::uint64_t fallback) {
  const json* v = find(o, key);
  return v == nullptr ? fallback : as_u64(*v, key);
}

bool get_bool_or(const json& o, const char* key, bool fallback) {
  const json* v = find(o, key);
  return v == nullptr ? fallback : as_bool(*v, key);
}

std::string get_string_or_empty(const json& o, const char* key) {
  const json* v = find(o, key);
  return v == nullptr ? std::string() : as_string(*v, key);
}

std::string get_nullable_string(const json& o, const char* key) {
  const json* v = find(o, key);
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_string()) fail(key, "expected a string or null, got " + describe(*v));
  return v->get<std::string>();
}

std::string above_term(std::uint64_t value, std::uint64_t term) {
  return std::to_string(value) + " is above the message's term " + std::to_string(term);
}

// A pair that breaks this describes no possible log (a request_vote claiming
// an empty log of term 99 would win votes it should not).
void check_log_position(std::uint64_t index, std::uint64_t term, const char* index_name,
                        const char* term_name) {
  if (index == 0 && term != 0) {
    fail(term_name, "must be 0 when " + std::string(index_name) + " is 0, got " + std::to_string(term));
  }
  if (index > 0 && term == 0) {
    fail(term_name, "must be >= 1 when " + std::string(index_name) + " is " + std::to_string(index));
  }
}

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string quote(const std::string& text) { return dump(json(text)); }

}  // namespace wire::fields
