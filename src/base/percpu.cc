// Per-CPU areas (percpu.h): chunks of units reserved in host memory,
// first-fit ranges within a chunk.
#include "base/percpu.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

namespace mmkit {

PercpuAllocator::~PercpuAllocator() {
  for (Chunk& c : chunks_) munmap(c.base, size_t{nr_cpus_} * kPercpuUnitBytes);
}

bool PercpuAllocator::take(Chunk& c, size_t size, size_t align, uint32_t& at) {
  for (size_t i = 0; i < c.free.size(); ++i) {
    Range& r = c.free[i];
    const size_t start = (r.start + align - 1) & ~(align - 1);
    if (start + size > r.end) continue;
    const Range before{r.start, static_cast<uint32_t>(start)};
    const Range after{static_cast<uint32_t>(start + size), r.end};
    c.free.erase(c.free.begin() + static_cast<std::ptrdiff_t>(i));
    auto pos = c.free.begin() + static_cast<std::ptrdiff_t>(i);
    if (after.start < after.end) pos = c.free.insert(pos, after);
    if (before.start < before.end) c.free.insert(pos, before);
    at = static_cast<uint32_t>(start);
    return true;
  }
  return false;
}

void* PercpuAllocator::alloc(size_t size, size_t align) {
  if (size == 0 || size > kPercpuUnitBytes || align == 0 || (align & (align - 1)) || align > 4096)
    return nullptr;
  std::lock_guard<std::mutex> g(lock_);
  uint32_t at;
  for (Chunk& c : chunks_)
    if (take(c, size, align, at)) return c.base + at;
  // MAP_NORESERVE: a unit's pages are the host's to find when a CPU first
  // writes them, and until then cost nothing.
  void* base = mmap(nullptr, size_t{nr_cpus_} * kPercpuUnitBytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  chunks_.push_back({static_cast<char*>(base), {{0, static_cast<uint32_t>(kPercpuUnitBytes)}}});
  Chunk& c = chunks_.back();
  take(c, size, align, at);
  return c.base + at;
}

void PercpuAllocator::free(void* p, size_t size) {
  if (!p) return;
  std::lock_guard<std::mutex> g(lock_);
  for (Chunk& c : chunks_) {
    const uintptr_t off = reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(c.base);
    if (off >= kPercpuUnitBytes) continue;  // below the base it wraps around
    // Cleared where written only: reading a unit's untouched page maps the
    // host's zero page and makes nothing resident.
    for (unsigned cpu = 0; cpu < nr_cpus_; ++cpu) {
      char* copy = c.base + size_t{cpu} * kPercpuUnitBytes + off;
      if (std::any_of(copy, copy + size, [](char b) { return b != 0; })) std::memset(copy, 0, size);
    }
    Range r{static_cast<uint32_t>(off), static_cast<uint32_t>(off + size)};
    auto it = std::lower_bound(c.free.begin(), c.free.end(), r,
                               [](const Range& a, const Range& b) { return a.start < b.start; });
    it = c.free.insert(it, r);
    if (it + 1 != c.free.end() && it->end == (it + 1)->start) {
      it->end = (it + 1)->end;
      c.free.erase(it + 1);
    }
    if (it != c.free.begin() && (it - 1)->end == it->start) {
      (it - 1)->end = it->end;
      c.free.erase(it);
    }
    return;
  }
}

const char* PercpuAllocator::check() const {
  std::lock_guard<std::mutex> g(lock_);
  for (const Chunk& c : chunks_) {
    uint32_t prev_end = 0;
    bool first = true;
    for (const Range& r : c.free) {
      if (r.start >= r.end) return "percpu: an empty free range";
      if (r.end > kPercpuUnitBytes) return "percpu: a free range past the unit";
      if (!first && r.start <= prev_end) return "percpu: free ranges overlap or touch";
      prev_end = r.end;
      first = false;
    }
  }
  return "";
}

}  // namespace mmkit
