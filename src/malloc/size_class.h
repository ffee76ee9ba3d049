// The malloc front end's size classes: one SLUB cache each.
//
// Finer than kmalloc's powers of two: 16-byte steps up to 128 bytes, then
// eight classes per power of two (a step of an eighth), so a request above
// 128 bytes wastes at most an eighth of its block (12.5%). Between 64 and
// 128 bytes the steps stay 16 bytes, the alignment glibc promises and GCC
// assumes of malloc (MALLOC_ABI_ALIGNMENT), which bounds the waste there at
// 15/80. Every class is a multiple of 16, and every power of two is a class,
// whose objects are aligned to their size (memalign uses them).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace mmkit {

inline constexpr size_t kMallocMaxSmall = 32768;     // larger: page runs and big blocks
inline constexpr unsigned kMallocLinearClasses = 8;  // 16 .. 128
// 8 classes per doubling from 128 to 32 KiB.
inline constexpr unsigned kMallocNrClasses = kMallocLinearClasses + 8 * 8;

// The class serving `size` bytes (1 <= size <= kMallocMaxSmall).
constexpr unsigned malloc_size_class(size_t size) {
  if (size <= 128) return static_cast<unsigned>((size + 15) >> 4) - (size != 0);
  // size in (2^k, 2^(k+1)] with k >= 7: class 8 + 8 (k - 7) + the eighth it falls in.
  const unsigned k = static_cast<unsigned>(std::bit_width(size - 1)) - 1;
  const unsigned eighth = static_cast<unsigned>((size - 1) >> (k - 3)) & 7;
  return kMallocLinearClasses + 8 * (k - 7) + eighth;
}

// The block size of class `c`.
constexpr size_t malloc_class_size(unsigned c) {
  if (c < kMallocLinearClasses) return size_t{16} * (c + 1);
  const unsigned k = 7 + (c - kMallocLinearClasses) / 8;
  return (size_t{1} << k) + ((size_t{1} << (k - 3)) * ((c - kMallocLinearClasses) % 8 + 1));
}

// Each CPU's sheaf of a class (SLUB's per-CPU sheaves) holds about 16 KiB
// of blocks: 64 of the small classes, down to 4 at 4 KiB; larger classes
// have none, their blocks are rare and a sheaf of them would pin whole pages.
constexpr unsigned malloc_sheaf_capacity(size_t size) {
  if (size > 4096) return 0;
  const size_t n = 16384 / size;
  return static_cast<unsigned>(n < 4 ? 4 : n > 64 ? 64 : n);
}

static_assert(malloc_size_class(1) == 0 && malloc_size_class(16) == 0);
static_assert(malloc_size_class(17) == 1 && malloc_size_class(128) == 7);
static_assert(malloc_size_class(129) == 8 && malloc_class_size(8) == 144);
static_assert(malloc_class_size(kMallocNrClasses - 1) == kMallocMaxSmall);
static_assert(malloc_size_class(kMallocMaxSmall) == kMallocNrClasses - 1);

}  // namespace mmkit
