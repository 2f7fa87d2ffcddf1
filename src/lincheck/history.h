// One client operation of a key-value history, and the JSON-lines format the
// checker reads and writes (one op per line; docs/lincheck.md is the
// contract the Python harness writes to).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace lincheck {

enum class OpType { Get, Set, Cas, Delete };
// ok: completed and took effect (or, for get, was read). fail: definitely
// did not take effect. unknown: timed out, may take effect at any time after
// its invocation, or never.
enum class Outcome { Ok, Fail, Unknown };

const char* to_string(OpType type);
const char* to_string(Outcome outcome);

struct Op {
  std::int64_t id = 0;
  std::string client;
  OpType type = OpType::Get;
  std::string key;
  std::optional<std::string> value;     // set, cas: the new value
  std::optional<std::string> expected;  // cas
  std::int64_t invoke_us = 0;
  std::optional<std::int64_t> complete_us;  // absent only for unknown outcomes
  Outcome outcome = Outcome::Ok;
  bool has_result = false;              // the line carried a "result" field
  std::optional<std::string> result;    // null (nullopt) = key absent
  std::string error;                    // e.g. "cas_failed" (empty if none)
  int line = 0;                         // 1-based line in the file read, 0 if built in code

  // A cas that failed because the key did not hold `expected`: a real read.
  bool is_cas_failed() const {
    return type == OpType::Cas && outcome == Outcome::Fail && error == "cas_failed";
  }
  // Ops that can never matter: definite failures other than cas_failed
  // (they did not happen) and gets whose outcome is unknown (no effect, no
  // observation).
  bool is_irrelevant() const {
    return (outcome == Outcome::Fail && !is_cas_failed()) ||
           (type == OpType::Get && outcome == Outcome::Unknown);
  }
};

struct History {
  std::vector<Op> ops;
};

// A line that is not a valid op. what() starts with "line N: ".
class ParseError : public std::runtime_error {
 public:
  ParseError(int line, const std::string& message);
  int line() const { return line_; }

 private:
  int line_;
};

// Parses one line (already known not to be blank). Throws ParseError.
Op parse_op(const std::string& text, int line);
// Reads a whole history: blank lines are skipped; ids must be unique.
// Throws ParseError with the number of the first bad line.
History read_history(std::istream& in);
// Same for a file; a file that cannot be opened throws std::runtime_error.
History read_history_file(const std::string& path);

std::string to_json_line(const Op& op);
void write_history(std::ostream& out, const History& history);

// Short human form, e.g. `cas(x, "1"→"2") → failed, saw "3"`.
std::string describe(const Op& op);
// The arguments only, e.g. `"1"→"2"`, and the result only, e.g. `failed, saw "3"`.
std::string describe_args(const Op& op);
std::string describe_result(const Op& op);
// A value as shown to people: "5" quoted, or "absent".
std::string show_value(const std::optional<std::string>& value);

}  // namespace lincheck
