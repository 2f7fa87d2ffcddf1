#include "lincheck/model.h"

namespace lincheck {

std::string why_illegal(const Op& op, const std::optional<std::string>& state) {
  if (op.is_irrelevant() || op.outcome == Outcome::Unknown) return "";
  const std::string holds = "the key holds " + show_value(state);
  switch (op.type) {
    case OpType::Get:
      if (op.result != state) return "it returned " + show_value(op.result) + ", but " + holds;
      return "";
    case OpType::Set:
      if (op.has_result && op.result != op.value) {
        return "it reported storing " + show_value(op.result) + " instead of " + show_value(op.value);
      }
      return "";
    case OpType::Cas:
      if (op.outcome == Outcome::Ok) {
        if (op.has_result && op.result != op.value) {
          return "it reported storing " + show_value(op.result) + " instead of " + show_value(op.value);
        }
        if (state != op.expected) {
          return "it succeeded, so the key must have held " + show_value(op.expected) + ", but " + holds;
        }
        return "";
      }
      // cas_failed
      if (state == op.expected) {
        return "it failed, yet the key held the expected " + show_value(op.expected);
      }
      if (op.has_result && op.result != state) {
        return "it failed seeing " + show_value(op.result) + ", but " + holds;
      }
      return "";
    case OpType::Delete:
      if (op.result != state) return "it removed " + show_value(op.result) + ", but " + holds;
      return "";
  }
  return "";
}

bool apply(const Op& op, std::optional<std::string>& state) {
  if (op.is_irrelevant()) return true;
  if (op.outcome == Outcome::Unknown) {
    switch (op.type) {
      case OpType::Get: return true;
      case OpType::Set: state = op.value; return true;
      case OpType::Cas: if (state == op.expected) state = op.value; return true;
      case OpType::Delete: state.reset(); return true;
    }
    return true;
  }
  if (!why_illegal(op, state).empty()) return false;
  switch (op.type) {
    case OpType::Get: break;
    case OpType::Set: state = op.value; break;
    case OpType::Cas: if (op.outcome == Outcome::Ok) state = op.value; break;
    case OpType::Delete: state.reset(); break;
  }
  return true;
}

Interner::Interner() { values_.push_back(std::nullopt); }

State Interner::intern(const std::optional<std::string>& value) {
  if (!value) return kAbsent;
  auto [it, inserted] = ids_.emplace(*value, static_cast<State>(values_.size()));
  if (inserted) values_.push_back(*value);
  return it->second;
}

Step Interner::compile(const Op& op) {
  Step step;
  if (op.outcome == Outcome::Unknown) {
    switch (op.type) {
      case OpType::Get: step.kind = Step::kRead; step.a = kAny; break;  // never compiled
      case OpType::Set: step = {Step::kWrite, intern(op.value), kAny}; break;
      case OpType::Cas: step = {Step::kCasUnknown, intern(op.expected), intern(op.value)}; break;
      case OpType::Delete: step = {Step::kDeleteUnknown, kAny, kAny}; break;
    }
    return step;
  }
  const bool bad_echo = op.has_result && op.result != op.value;
  switch (op.type) {
    case OpType::Get: step = {Step::kRead, intern(op.result), kAny}; break;
    case OpType::Set:
      step = bad_echo ? Step{Step::kNever, kAny, kAny} : Step{Step::kWrite, intern(op.value), kAny};
      break;
    case OpType::Cas:
      if (op.outcome == Outcome::Ok) {
        step = bad_echo ? Step{Step::kNever, kAny, kAny}
                        : Step{Step::kCasOk, intern(op.expected), intern(op.value)};
      } else {
        step = {Step::kCasFailed, intern(op.expected), op.has_result ? intern(op.result) : kAny};
      }
      break;
    case OpType::Delete: step = {Step::kDeleteOk, intern(op.result), kAny}; break;
  }
  return step;
}

std::vector<std::optional<std::string>> observed_values(const Op& op) {
  if (op.is_irrelevant()) return {};
  switch (op.type) {
    case OpType::Get: return {op.result};
    case OpType::Set: return {};
    case OpType::Cas:
      if (op.outcome == Outcome::Fail) {
        if (op.has_result) return {op.result};
        return {};
      }
      return {op.expected};
    case OpType::Delete:
      if (op.outcome == Outcome::Ok) return {op.result};
      return {};
  }
  return {};
}

std::optional<std::optional<std::string>> written_value(const Op& op) {
  if (op.is_irrelevant() || op.is_cas_failed()) return std::nullopt;
  switch (op.type) {
    case OpType::Get: return std::nullopt;
    case OpType::Set:
    case OpType::Cas: return std::optional<std::string>(op.value);
    case OpType::Delete: return std::optional<std::string>();
  }
  return std::nullopt;
}

}  // namespace lincheck
