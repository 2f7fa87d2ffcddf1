// Free space, and a reserve file that keeps a node able to restart on a full
// disk. Writes stay fail-stop (a failed write or fsync ends the node), but a
// node that stopped because the disk filled up must be able to start again
// once an operator frees a little space, or even without that: at startup a
// nearly full disk releases dir/"reserve" (preallocated, default 8 MiB),
// which leaves room for the meta file and a few log chunks. The reserve is
// re-created at a later start when there is room.
#pragma once

#include <cstdint>
#include <string>

#include "storage/errors.h"

namespace storage {

// Bytes available to this (unprivileged) process on dir's file system.
std::uint64_t free_bytes(const std::string& dir);
bool disk_nearly_full(const std::string& dir, std::uint64_t min_free_bytes);

// Creates dir/"reserve" of reserve_bytes (preallocated, atomically: tmp,
// fsync, rename, fsync dir) unless it exists or fewer than
// reserve_bytes + min_free_bytes are free. Returns true when it created it.
// A full disk is not an error here (the reserve is best effort): false.
bool ensure_reserve(const std::string& dir, std::uint64_t reserve_bytes, std::uint64_t min_free_bytes);
// Deletes dir/"reserve" (durably). Returns the bytes it held, 0 if none.
std::uint64_t release_reserve(const std::string& dir);

}  // namespace storage
