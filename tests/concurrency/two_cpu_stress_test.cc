// Two CPUs on two threads: CPU 0 allocates (mixed orders and types), hands
// the pages to CPU 1 through a lock-free ring, CPU 1 checks and frees them;
// both drain in between. Under TSan this proves the per-CPU fast paths and
// the zone lock are race-free; afterwards check() proves nothing was lost.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "../support/spsc_ring.h"
#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

struct Item {
  Page* page;
  unsigned order;
};

using Ring = test::SpscRing<Item, 1024>;

MachineConfig two_cpu_config() {
  MachineConfig c;
  c.cpus = 2;
  c.nodes.push_back(NodeConfig{.memory = 256ull << 20});
  return c;
}

TEST(TwoCpuStress, AllocOnOneFreeOnOther) {
  auto booted = boot(two_cpu_config());
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  const uint64_t free_before = nr_free_pages(m);
  Ring ring;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> freed{0}, allocated{0};
  constexpr int kOps = 20000;

  std::thread producer([&] {
    auto cpu = CpuScope::bind(m, 0);
    ASSERT_TRUE(cpu.ok());
    std::mt19937 rng(1);
    for (int i = 0; i < kOps; ++i) {
      const unsigned order = rng() % 8 == 0 ? rng() % 5 : 0;
      const gfp_t gfp = (rng() & 1 ? GFP_KERNEL : GFP_HIGHUSER_MOVABLE) | __GFP_NOWARN;
      Page* p = alloc_pages(m, gfp, order);
      if (!p) continue;
      std::memset(m.page_address(p), static_cast<int>(i & 0xff), 64);
      allocated.fetch_add(1, std::memory_order_relaxed);
      while (!ring.push({p, order})) std::this_thread::yield();
      if (i % 5000 == 0) drain_local_pages(m);
    }
    done.store(true, std::memory_order_release);
  });
  std::thread consumer([&] {
    auto cpu = CpuScope::bind(m, 1);
    ASSERT_TRUE(cpu.ok());
    Item it;
    uint64_t n = 0;
    for (;;) {
      if (ring.pop(&it)) {
        EXPECT_EQ(it.page->ref_count(), 1);
        free_pages(m, it.page, it.order);
        if (++n % 3000 == 0) drain_all_pages(m);
        continue;
      }
      if (done.load(std::memory_order_acquire)) {
        while (ring.pop(&it)) {
          free_pages(m, it.page, it.order);
          ++n;
        }
        break;
      }
      std::this_thread::yield();
    }
    freed.store(n);
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(freed.load(), allocated.load());
  EXPECT_GT(allocated.load(), kOps / 2u);
  EXPECT_EQ(drain_all_pages(m), m.nr_cpus());  // no thread bound now: all drained
  EXPECT_EQ(check(m), "");
  EXPECT_EQ(nr_free_pages(m), free_before);
}

}  // namespace
}  // namespace mmkit
