// The errors storage throws. Every message names the file it is about, so an
// operator can act on it without reading code.
#pragma once

#include <stdexcept>

namespace storage {

// Damaged or unreadable state, or an I/O failure: the node must not go on.
struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A write, fsync or preallocation failed because the file system has no room
// left (ENOSPC, or EDQUOT for a quota). Separate so the node can tell the
// operator "free some space" instead of "your disk is broken".
struct DiskFull : StorageError {
  using StorageError::StorageError;
};

}  // namespace storage
