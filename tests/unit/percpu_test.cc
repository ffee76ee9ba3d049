// The per-CPU allocator (base/percpu.h): areas zeroed in every unit, one
// unit stride apart, first-fit with alignment, freed areas cleared and
// coalesced, a second chunk when the first is full, and bad requests
// refused; check() after every step of a random sequence against a model.
#include "base/percpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>

namespace mmkit {
namespace {

bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  return std::all_of(b, b + n, [](unsigned char c) { return c == 0; });
}

TEST(Percpu, CopiesAreOneUnitApartAndStartZeroed) {
  PercpuAllocator pa(4);
  auto* p = static_cast<uint64_t*>(pa.alloc(64, 64));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  for (unsigned cpu = 0; cpu < 4; ++cpu) {
    uint64_t* copy = per_cpu_ptr(p, cpu);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(copy) - reinterpret_cast<uintptr_t>(p),
              cpu * kPercpuUnitBytes);
    EXPECT_TRUE(all_zero(copy, 64));
    *copy = 100 + cpu;  // each CPU's copy is its own
  }
  for (unsigned cpu = 0; cpu < 4; ++cpu) EXPECT_EQ(*per_cpu_ptr(p, cpu), 100 + cpu);
  // Freed and taken again: zero in every unit, whichever CPUs wrote it.
  pa.free(p, 64);
  auto* q = static_cast<uint64_t*>(pa.alloc(64, 64));
  ASSERT_EQ(q, p);
  for (unsigned cpu = 0; cpu < 4; ++cpu) EXPECT_TRUE(all_zero(per_cpu_ptr(q, cpu), 64)) << cpu;
  EXPECT_STREQ(pa.check(), "");
}

TEST(Percpu, RefusesWhatNoUnitCanHold) {
  PercpuAllocator pa(2);
  EXPECT_EQ(pa.alloc(0, 8), nullptr);
  EXPECT_EQ(pa.alloc(kPercpuUnitBytes + 1, 8), nullptr);
  EXPECT_EQ(pa.alloc(16, 3), nullptr);     // not a power of two
  EXPECT_EQ(pa.alloc(16, 8192), nullptr);  // above a page
  EXPECT_NE(pa.alloc(kPercpuUnitBytes, 8), nullptr);
  // The first chunk is full: the next area comes from a second one.
  void* p = pa.alloc(8, 8);
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(pa.check(), "");
}

TEST(Percpu, RandomAreasNeverOverlapAndCoalesceWhenFreed) {
  constexpr unsigned kCpus = 3;
  PercpuAllocator pa(kCpus);
  std::mt19937 rng(7);
  std::map<uintptr_t, size_t> live;  // CPU 0 copy -> size
  auto overlaps = [&](uintptr_t at, size_t size) {
    auto it = live.upper_bound(at);
    if (it != live.end() && it->first < at + size) return true;
    if (it != live.begin() && std::prev(it)->first + std::prev(it)->second > at) return true;
    return false;
  };
  for (int step = 0; step < 4000; ++step) {
    if (live.empty() || rng() % 3) {
      const size_t size = 1 + rng() % 3000, align = size_t{1} << (rng() % 8);
      void* p = pa.alloc(size, align);
      ASSERT_NE(p, nullptr);
      const auto at = reinterpret_cast<uintptr_t>(p);
      ASSERT_EQ(at % align, 0u);
      ASSERT_FALSE(overlaps(at, size)) << step;
      for (unsigned cpu = 0; cpu < kCpus; ++cpu) {
        ASSERT_TRUE(all_zero(per_cpu_ptr(static_cast<char*>(p), cpu), size)) << step;
        std::memset(per_cpu_ptr(static_cast<char*>(p), cpu), 0x5a + cpu, size);
      }
      live[at] = size;
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      pa.free(reinterpret_cast<void*>(it->first), it->second);
      live.erase(it);
    }
    ASSERT_STREQ(pa.check(), "") << step;
  }
  for (auto [at, size] : live) pa.free(reinterpret_cast<void*>(at), size);
  ASSERT_STREQ(pa.check(), "");
  // Everything freed coalesces back: a whole unit fits again in a chunk
  // that exists (no new chunk would be at the old base).
  void* whole = pa.alloc(kPercpuUnitBytes, 4096);
  ASSERT_NE(whole, nullptr);
  EXPECT_TRUE(all_zero(whole, kPercpuUnitBytes));
}

}  // namespace
}  // namespace mmkit
