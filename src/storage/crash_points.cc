#include "storage/crash_points.h"

namespace storage::crash_points {
namespace {

std::uint64_t budget = 0;
std::uint64_t taken = 0;
bool has_crashed = false;

}  // namespace

namespace detail {

bool armed = false;

void count_step() {
  if (has_crashed || taken == budget) {
    has_crashed = true;
    throw SimulatedCrash();
  }
  ++taken;
}

}  // namespace detail

void arm(std::uint64_t steps) {
  detail::armed = true;
  budget = steps;
  taken = 0;
  has_crashed = false;
}

void disarm() {
  detail::armed = false;
  has_crashed = false;
}

std::uint64_t steps_taken() { return taken; }

bool crashed() { return has_crashed; }

}  // namespace storage::crash_points
