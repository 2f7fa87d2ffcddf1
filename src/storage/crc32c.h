// CRC-32C (Castagnoli), the checksum of every log record and of the meta file.
// Chosen over CRC-32 for its better error detection on storage-sized blocks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace storage {

// Returns the CRC-32C of data[0, n). Passing a previous result as seed
// continues it, so crc32c(b, nb, crc32c(a, na)) == crc32c of a followed by b.
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t seed = 0);

}  // namespace storage
