// The malloc front end's heap through its C++ entry points (heap.h), so the
// sanitizer builds test it too: size classes and their waste, alignment,
// realloc in place and moving, usable sizes, page runs and big blocks, and
// thousands of seeded operations against a model with the page and slab
// allocators' checks between batches; the per-CPU partial budgets a second
// thread raises. The LD_PRELOAD tests of the shared library are in
// tests/malloc.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <string_view>
#include <thread>

#include "malloc/heap.h"
#include "malloc/size_class.h"
#include "phys/machine.h"
#include "slab/slab.h"

namespace mmkit {
namespace {

TEST(MallocSizeClass, WasteAndAlignment) {
  for (size_t size = 1; size <= kMallocMaxSmall; ++size) {
    const unsigned c = malloc_size_class(size);
    const size_t block = malloc_class_size(c);
    ASSERT_GE(block, size);
    ASSERT_TRUE(c == 0 || malloc_class_size(c - 1) < size) << size;  // the smallest that fits
    ASSERT_EQ(block % 16, 0u);
    if (size > 128) {
      ASSERT_LE((block - size) * 8, block) << size;  // at most 12.5%
    }
  }
}

TEST(MallocHeap, ApiSurface) {
  void* p = heap_malloc(0);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(heap_usable_size(p), 1u);
  heap_free(p);
  for (size_t size : {1ul, 24ul, 100ul, 4000ul, 32768ul, 40000ul, 1ul << 20, 5ul << 20}) {
    char* q = static_cast<char*>(heap_malloc(size));
    ASSERT_NE(q, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 16, 0u) << size;
    EXPECT_GE(heap_usable_size(q), size);
    std::memset(q, 0x5a, heap_usable_size(q));
    heap_free(q);
  }
  // Page runs hold whole frames, no more: 20 KiB is 5 frames.
  void* run = heap_malloc(20 << 10);
  EXPECT_EQ(heap_usable_size(run), 20u << 10);
  heap_free(run);
  // A run shrinks in place: 100 KiB (25 frames) to 60 KiB keeps its frames
  // (it may grow again), to 40 KiB (10 frames, under half) gives 15 back.
  run = heap_malloc(100 << 10);
  EXPECT_EQ(heap_realloc(run, 60 << 10), run);
  EXPECT_EQ(heap_usable_size(run), 25u * 4096);
  EXPECT_EQ(heap_realloc(run, 40 << 10), run);
  EXPECT_EQ(heap_usable_size(run), 10u * 4096);
  heap_free(run);
  // calloc zeroes, and fails on overflow with ENOMEM.
  char* z = static_cast<char*>(heap_calloc(1000, 7));
  for (int i = 0; i < 7000; ++i) ASSERT_EQ(z[i], 0);
  heap_free(z);
  errno = 0;
  EXPECT_EQ(heap_calloc(SIZE_MAX / 2 + 1, 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  // memalign: every power of two from 32 bytes to 8 MiB.
  for (size_t align = 32; align <= (8u << 20); align <<= 1)
    for (size_t size : {1ul, align / 2, align, align * 3 + 5}) {
      void* a = heap_memalign(align, size);
      ASSERT_NE(a, nullptr) << align << " " << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % align, 0u) << align << " " << size;
      EXPECT_GE(heap_usable_size(a), size);
      std::memset(a, 1, size);
      heap_free(a);
    }
  errno = 0;
  EXPECT_EQ(heap_memalign(48, 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
  // realloc keeps content across classes, runs and big blocks; (p, 0) frees.
  char* g = static_cast<char*>(heap_malloc(10));
  std::memcpy(g, "mmkit-hea", 10);
  for (size_t size : {100ul, 5000ul, 70000ul, 6ul << 20, 9ul << 20, 50ul}) {
    g = static_cast<char*>(heap_realloc(g, size));
    ASSERT_NE(g, nullptr);
    EXPECT_STREQ(g, "mmkit-hea") << size;
  }
  EXPECT_EQ(heap_realloc(g, 0), nullptr);
  EXPECT_EQ(heap_check(), "");
  ASSERT_NE(heap_machine(), nullptr);
}

// Big blocks: freed ranges are reused (calloc still reads zero), realloc
// keeps content growing in place and moving, and the area's check holds.
TEST(MallocHeap, BigBlocksAgainstAModel) {
  std::mt19937_64 rng(11);
  struct Block {
    size_t size;
    uint8_t seed;
  };
  std::map<char*, Block> live;
  auto touch = [](char* p, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i += 4096) p[i] = static_cast<char>(seed + i / 4096);
    p[n - 1] = static_cast<char>(seed);
  };
  auto intact = [](const char* p, size_t n, uint8_t seed) {
    for (size_t i = 0; i + 1 < n; i += 4096)
      if (p[i] != static_cast<char>(seed + i / 4096)) return false;
    return p[n - 1] == static_cast<char>(seed);
  };
  for (int step = 0; step < 300; ++step) {
    const size_t size = (4u << 20) + rng() % (20u << 20);
    const unsigned op = rng() % 4;
    if (live.size() < 3 || op == 0) {
      const bool zero = rng() % 2;
      char* p = static_cast<char*>(zero ? heap_calloc(1, size) : heap_malloc(size));
      ASSERT_NE(p, nullptr);
      if (zero) {
        for (size_t i = 0; i < size; i += 4096) ASSERT_EQ(p[i], 0) << "step " << step;
        ASSERT_EQ(p[size - 1], 0);
      }
      EXPECT_GE(heap_usable_size(p), size);
      const auto seed = static_cast<uint8_t>(rng());
      touch(p, size, seed);
      live[p] = {size, seed};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      ASSERT_TRUE(intact(it->first, it->second.size, it->second.seed)) << "step " << step;
      if (op == 1) {
        heap_free(it->first);
        live.erase(it);
      } else {
        const Block b = it->second;
        char* q = static_cast<char*>(heap_realloc(it->first, size));
        ASSERT_NE(q, nullptr);
        live.erase(it);
        for (size_t i = 0; i + 1 < std::min(b.size, size); i += 4096)
          ASSERT_EQ(q[i], static_cast<char>(b.seed + i / 4096)) << "step " << step;
        touch(q, size, b.seed);
        live[q] = {size, b.seed};
      }
    }
    if (step % 25 == 0) {
      ASSERT_EQ(heap_check(), "") << "step " << step;
    }
  }
  for (auto& [p, b] : live) heap_free(p);
  EXPECT_EQ(heap_check(), "");
  EXPECT_EQ(heap_stats().big_blocks, 0u);
  heap_trim();
  EXPECT_EQ(heap_stats().big_cached_bytes, 0u);
  // A freed block stays resident, header page and all, until a trim.
  char* p = static_cast<char*>(heap_malloc(8u << 20));
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, 8u << 20);
  heap_free(p);
  EXPECT_EQ(heap_stats().big_cached_bytes, (8u << 20) + 4096);
  EXPECT_EQ(heap_check(), "");
  heap_trim();
  EXPECT_EQ(heap_stats().big_cached_bytes, 0u);
  EXPECT_EQ(heap_check(), "");
}

// SLUB's per-CPU partial budget while one thread uses the heap, four
// times that once a second thread binds a CPU (heap_boot.cc says why).
TEST(MallocHeap, SecondThreadRaisesThePerCpuPartialBudgets) {
  void* p = heap_malloc(64);
  ASSERT_NE(p, nullptr);
  KmemCache* s64 = nullptr;
  for (KmemCache* s : slab_caches(*heap_machine()))
    if (std::string_view(kmem_cache_name(s)) == "malloc-64") s64 = s;
  ASSERT_NE(s64, nullptr);
  const unsigned before = kmem_cache_cpu_partial(s64);
  EXPECT_TRUE(before == 120 || before == 480) << before;  // 480: a thread ran already
  std::thread([] {
    void* q = heap_malloc(64);
    ASSERT_NE(q, nullptr);
    heap_free(q);
  }).join();
  EXPECT_EQ(kmem_cache_cpu_partial(s64), 480u);
  heap_free(p);
  EXPECT_EQ(heap_check(), "");
}

TEST(MallocHeap, RandomOpsAgainstAModel) {
  std::mt19937_64 rng(7);
  struct Block {
    size_t size;
    uint8_t seed;
  };
  std::map<char*, Block> live;
  auto fill = [](char* p, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i += 61) p[i] = static_cast<char>(seed + i);
  };
  auto verify = [](char* p, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i += 61)
      if (p[i] != static_cast<char>(seed + i)) return false;
    return true;
  };
  auto pick_size = [&] {
    const unsigned r = rng() % 100;
    if (r < 70) return static_cast<size_t>(rng() % 256 + 1);
    if (r < 90) return static_cast<size_t>(rng() % 32768 + 1);
    if (r < 99) return static_cast<size_t>(rng() % (1u << 20) + 1);
    return static_cast<size_t>(rng() % (8u << 20) + 1);
  };
  for (int step = 0; step < 20000; ++step) {
    const unsigned op = rng() % 10;
    if (op < 5 || live.empty()) {
      const size_t size = pick_size();
      char* p = static_cast<char*>(op == 0   ? heap_calloc(1, size)
                                   : op == 1 ? heap_memalign(size_t{64} << (rng() % 8), size)
                                             : heap_malloc(size));
      ASSERT_NE(p, nullptr);
      if (op == 0) {
        for (size_t i = 0; i < size; i += 97) ASSERT_EQ(p[i], 0);
      }
      // No overlap with the live neighbours.
      auto next = live.lower_bound(p);
      if (next != live.end()) {
        ASSERT_LE(p + size, next->first);
      }
      if (next != live.begin()) {
        ASSERT_LE(std::prev(next)->first + std::prev(next)->second.size, p);
      }
      const auto seed = static_cast<uint8_t>(rng());
      fill(p, size, seed);
      live[p] = {size, seed};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      ASSERT_TRUE(verify(it->first, it->second.size, it->second.seed));
      if (op < 8) {
        heap_free(it->first);
        live.erase(it);
      } else {
        const size_t size = pick_size();
        const Block b = it->second;
        char* q = static_cast<char*>(heap_realloc(it->first, size));
        ASSERT_NE(q, nullptr);
        live.erase(it);
        ASSERT_TRUE(verify(q, std::min(size, b.size), b.seed));
        fill(q, size, b.seed);
        live[q] = {size, b.seed};
      }
    }
    if (step % 1000 == 999) {
      ASSERT_EQ(heap_check(), "") << "step " << step;
    }
  }
  for (auto& [p, b] : live) heap_free(p);
  heap_thread_exit();
  EXPECT_EQ(heap_check(), "");
}

}  // namespace
}  // namespace mmkit
