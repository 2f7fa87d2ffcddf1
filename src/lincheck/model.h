// The sequential specification the history is checked against: one key is a
// register holding an optional string (absent at first). Keys are
// independent, so the checker runs one register per key.
//
//   get ok            result must equal the state
//   set ok            state = value (a result, if given, must equal value)
//   cas ok            state must equal expected; state = value
//   cas fail, cas_failed   state must differ from expected, and equal the
//                     result if one is given; no change (a real read)
//   delete ok         result must equal the state; state = absent
//   set unknown       state = value        } may also never happen: the
//   delete unknown    state = absent       } checker can place an unknown
//   cas unknown       if state == expected } op after every other op
//                     then state = value
// Other fails and unknown gets never happened: they are not checked at all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lincheck/history.h"

namespace lincheck {

// Readable reference form, on real strings: applies `op` to `state` and
// returns true, or returns false (state unchanged) if `op` cannot happen in
// that state. Ops that never matter (Op::is_irrelevant) return true.
bool apply(const Op& op, std::optional<std::string>& state);

// Why `op` cannot happen in `state`, in words; empty if it can.
std::string why_illegal(const Op& op, const std::optional<std::string>& state);

// The fast form used by the search: values of one key are interned to small
// integers, so a state is an int and a step is a few compares.
using State = std::int32_t;
inline constexpr State kAbsent = 0;  // the key holds no value
inline constexpr State kAny = -1;    // "no constraint" in a Step operand

struct Step {
  enum Kind : std::uint8_t {
    kRead,           // requires s == a
    kWrite,          // s = a                (set ok / set unknown)
    kCasOk,          // requires s == a; s = b
    kCasFailed,      // requires s != a and (b == kAny or s == b)
    kCasUnknown,     // if s == a then s = b
    kDeleteOk,       // requires s == a; s = absent
    kDeleteUnknown,  // s = absent
    kNever,          // can never happen (e.g. a set whose result differs from its value)
  };
  Kind kind = kNever;
  State a = kAny;
  State b = kAny;

  // Applies the step to `s`; false if it cannot happen in `s`.
  bool apply(State& s) const {
    switch (kind) {
      case kRead: return s == a;
      case kWrite: s = a; return true;
      case kCasOk: if (s != a) return false; s = b; return true;
      case kCasFailed: return s != a && (b == kAny || s == b);
      case kCasUnknown: if (s == a) s = b; return true;
      case kDeleteOk: if (s != a) return false; s = kAbsent; return true;
      case kDeleteUnknown: s = kAbsent; return true;
      case kNever: return false;
    }
    return false;
  }
};

// Interns the values of one key's ops and compiles ops to Steps.
class Interner {
 public:
  Interner();
  State intern(const std::optional<std::string>& value);
  // Precondition: !op.is_irrelevant().
  Step compile(const Op& op);
  const std::optional<std::string>& value(State s) const { return values_[s]; }

 private:
  std::unordered_map<std::string, State> ids_;
  std::vector<std::optional<std::string>> values_;
};

// The values `op` observes in the state (what it reads or compares with),
// and the value it may write. Used to decide which unknown writes can never
// matter and which subsets of a violation still make sense.
std::vector<std::optional<std::string>> observed_values(const Op& op);
std::optional<std::optional<std::string>> written_value(const Op& op);

}  // namespace lincheck
