// Simulated crashes, for tests: every state-changing file operation of the
// storage layer (a write, a creation, a rename, a deletion, a growth) first
// calls crash_points::step(). A test arms a budget of k steps; step k + 1
// throws SimulatedCrash instead of doing its operation, and from then on the
// cleanup a real crash would not do (deleting a temporary file in a
// destructor) is skipped. Reopening the directory then shows recovery exactly
// what a crash after k operations leaves, assuming each finished operation is
// durable (the fsyncs between them are what makes that true on a real disk;
// losing unsynced writes is a torn tail, tested by crafting files).
//
// Never armed in production: step() is one predictable branch. Not thread
// safe (the node's storage runs on one thread; so do the tests).
#pragma once

#include <cstdint>
#include <stdexcept>

namespace storage::crash_points {

struct SimulatedCrash : std::runtime_error {
  SimulatedCrash() : std::runtime_error("simulated crash") {}
};

// The (steps + 1)-th step from now throws.
void arm(std::uint64_t steps);
// Stops counting and forgets a crash (call before reopening).
void disarm();
// Steps taken since arm(): arm a huge budget and run an operation to learn
// how many steps it has.
std::uint64_t steps_taken();
// A simulated crash happened since arm(): skip cleanup.
bool crashed();

namespace detail {
extern bool armed;
void count_step();
}  // namespace detail

inline void step() {
  if (detail::armed) [[unlikely]] detail::count_step();
}

}  // namespace storage::crash_points
