// Per-CPU areas, after Linux's percpu allocator (mm/percpu.c), reduced to
// what per-CPU structures of a fixed set of CPUs need.
//
// A per-CPU variable has one copy in each CPU's unit, and the copies sit
// kPercpuUnitBytes apart, so a CPU reaches its copy of any variable by one
// addition (Linux's per_cpu_ptr()). The units are host memory reserved
// untouched: a copy costs resident memory only once its CPU writes it. And
// a CPU's copies of every variable share its unit's pages, where an array
// per variable (one entry per CPU) put each variable's copies on a page of
// their own: a program whose one thread uses 80 slab caches touched 80
// pages of per-CPU state, and 2 or 3 per cache more for the arrays' first
// and last CPUs; now it touches a few pages of its CPU's unit.
//
// Chunks of nr_cpus units are reserved as needed; an area comes first-fit
// from a chunk's free ranges, and a freed area is cleared in every unit
// that wrote it, so every area starts zeroed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace mmkit {

inline constexpr size_t kPercpuUnitBytes = size_t{64} << 10;

class PercpuAllocator {
 public:
  explicit PercpuAllocator(unsigned nr_cpus) : nr_cpus_(nr_cpus) {}
  ~PercpuAllocator();
  PercpuAllocator(const PercpuAllocator&) = delete;
  PercpuAllocator& operator=(const PercpuAllocator&) = delete;

  // A zeroed area of `size` bytes in every unit, aligned to `align` (a power
  // of two up to a page): CPU 0's copy. Null when size is 0 or above a
  // unit, or the host will not reserve a chunk.
  void* alloc(size_t size, size_t align);
  // Gives back an area alloc() returned, of the size asked for then.
  void free(void* p, size_t size);
  // Every chunk's free ranges sorted, disjoint, not adjacent, inside the
  // unit; "" when they are, else what is wrong.
  const char* check() const;

 private:
  struct Range {
    uint32_t start, end;
  };
  struct Chunk {
    char* base;
    std::vector<Range> free;  // sorted by start, coalesced
  };
  bool take(Chunk& c, size_t size, size_t align, uint32_t& at);

  unsigned nr_cpus_;
  mutable std::mutex lock_;
  std::vector<Chunk> chunks_;
};

// CPU `cpu`'s copy of the per-CPU variable whose CPU 0 copy is `p`.
template <class T>
inline T* per_cpu_ptr(T* p, unsigned cpu) {
  return reinterpret_cast<T*>(reinterpret_cast<uintptr_t>(p) + size_t{cpu} * kPercpuUnitBytes);
}

}  // namespace mmkit
