// Readers for the fields of a parsed datagram, shared by the decoders in
// codec.cc and snapshot_codec.cc. Each one either returns a value that is
// valid on its own (right JSON type, integers below 2^53) or throws Invalid
// naming the field. At the end, the two text helpers the encoders share.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "wire/codec.h"

namespace wire::fields {

using json = nlohmann::json;

// Thrown by the readers and always caught by decode(): it lets a decoder stop
// at the first problem without threading error codes through every call.
struct Invalid {
  DecodeError::Kind kind;
  std::string message;
};

// Throws Invalid with "field 'NAME': WHAT".
[[noreturn]] void fail(const std::string& field, const std::string& what,
                       DecodeError::Kind kind = DecodeError::Kind::Malformed);

// Says what a value is, precisely enough to tell -1, 1.5 and 1e30 apart from
// a valid unsigned integer.
std::string describe(const json& v);

// Never object[key] on a const json: that is undefined for missing keys.
const json* find(const json& object, const char* key);
const json& require(const json& object, const char* key, const std::string& name);

std::string as_string(const json& v, const std::string& name);
// A non-negative integer no larger than kMaxWireInteger.
std::uint64_t as_u64(const json& v, const std::string& name);
bool as_bool(const json& v, const std::string& name);

// The same, for a field of `o` named `key` that must be present.
std::string get_string(const json& o, const char* key);
std::uint64_t get_u64(const json& o, const char* key);
bool get_bool(const json& o, const char* key);

// Optional fields: absence gives the fallback, a present value must be valid.
std::uint64_t get_u64_or(const json& o, const char* key, std::uint64_t fallback);
bool get_bool_or(const json& o, const char* key, bool fallback);
std::string get_string_or_empty(const json& o, const char* key);
// A string field where JSON null (or absence) means "none".
std::string get_nullable_string(const json& o, const char* key);

// True for an integer the wire may carry (0 <= v <= kMaxWireInteger), so a
// caller can test a value without the exception as_u64 would throw.
bool is_wire_integer(const json& v);

// Shared by the Raft message decoders (codec.cc, snapshot_codec.cc).
// "V is above the message's term T".
std::string above_term(std::uint64_t value, std::uint64_t term);
// Index 0 is "before the log", of term 0; every real entry has a term >= 1.
// Throws Invalid naming term_name when the pair describes no possible log.
void check_log_position(std::uint64_t index, std::uint64_t term, const char* index_name,
                        const char* term_name);

// Compact JSON text that never throws: a string that is not valid UTF-8
// (which decode can never produce, but a caller might) is written with
// U+FFFD instead of making dump() throw.
std::string dump(const json& value);
// A string as a JSON string literal, quotes and escapes included.
std::string quote(const std::string& text);

}  // namespace wire::fields
