// What a verified page holds. Every page a workload writes is filled whole
// with a pattern derived from a 64-bit key, and the key from (seed, job,
// writer, page, version): a page read back after reclaim, swap or a
// copy-on-write break must show the key of the last version written to it
// by that address space, byte for byte. Version 0 (never written) must read
// as zeros. A stale, foreign or torn page differs from the first word on.
#pragma once

#include <cstdint>

namespace mmsim {

inline constexpr unsigned kPageBytes = 4096;

// The key of one version of one page (never 0 for version > 0; 0 for
// version 0, which means "all zeros").
uint64_t page_key(uint64_t seed, uint64_t job, uint64_t writer, uint64_t page, uint64_t version);

// Fills kPageBytes at `dst` with key's pattern (key 0: zeros).
void fill_page(char* dst, uint64_t key);

// The first byte of `src` that differs from key's pattern, or -1. On a
// difference *expected and *actual hold that byte of each.
int check_page(const char* src, uint64_t key, uint8_t* expected, uint8_t* actual);

}  // namespace mmsim
