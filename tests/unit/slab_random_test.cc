// SLUB under seeded random operation sequences across two CPUs (bound and
// switched on one thread) and two nodes: kmem_cache_alloc/_node/free,
// kmalloc/kfree of every size class and large sizes, shrink, caches with
// and without per-CPU sheaves, with
// slab_check() and the page allocator's check() after every step. Each
// object is filled with a pattern derived from its address and checked
// before it is freed, so an object handed out twice or corrupted shows.
// MMKIT_SEED replays a run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/slab.h"

namespace mmkit {
namespace {

uint64_t seed_from_env(uint64_t dflt) {
  const char* s = std::getenv("MMKIT_SEED");
  return s ? std::strtoull(s, nullptr, 0) : dflt;
}

MachineConfig small_numa() {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = 64ull << 20}, NodeConfig{.memory = 64ull << 20}};
  return c;
}

struct Live {
  void* p;
  size_t size;
  KmemCache* cache;  // null: kmalloc
};

uint8_t pattern(const void* p) {
  return static_cast<uint8_t>(reinterpret_cast<uintptr_t>(p) >> 3);
}

TEST(SlabRandom, ChecksHoldAfterEveryStep) {
  const uint64_t seed = seed_from_env(std::random_device{}());
  SCOPED_TRACE("MMKIT_SEED=" + std::to_string(seed));
  RecordProperty("seed", std::to_string(seed));
  auto booted = boot(small_numa());
  ASSERT_TRUE(booted.ok());
  Machine& m = **booted;
  const uint64_t free_at_boot = nr_free_pages(m);
  KmemCache* caches[] = {
      kmem_cache_create(m, "obj24", 24, 0, 0),
      kmem_cache_create(m, "obj200_hw", 200, 0, SLAB_HWCACHE_ALIGN),
      kmem_cache_create(m, "obj3000_rcl", 3000, 0, SLAB_RECLAIM_ACCOUNT),
      // Per-CPU sheaves in front of the slabs: small ones, so they fill,
      // flush and drain often.
      kmem_cache_create(m, "obj40_sheaf", 40, KmemCacheArgs{.sheaf_capacity = 6}, 0),
      kmem_cache_create(m, "obj700_sheaf", 700, KmemCacheArgs{.sheaf_capacity = 3}, 0),
  };
  constexpr unsigned kCaches = std::size(caches);
  for (KmemCache* c : caches) ASSERT_NE(c, nullptr);
  std::mt19937_64 rng(seed);
  std::vector<Live> live;
  std::optional<Result<CpuScope>> cpu;
  for (int step = 0; step < 3000; ++step) {
    const unsigned op = rng() % 100;
    if (op < 3) {  // switch CPU binding: none, 0 or 1
      cpu.reset();
      if (const int c = static_cast<int>(rng() % 3); c < 2) cpu.emplace(CpuScope::bind(m, c));
    } else if (op < 50 || live.empty()) {
      Live l{};
      if (rng() % 2) {
        l.cache = caches[rng() % kCaches];
        l.size = kmem_cache_size(l.cache);
        const int node = rng() % 4 == 0 ? static_cast<int>(rng() % 2) : NUMA_NO_NODE;
        l.p = kmem_cache_alloc_node(l.cache, GFP_KERNEL, node);
        if (l.p && node != NUMA_NO_NODE) {
          ASSERT_EQ(m.page_zone(m.virt_to_page(l.p))->node, node);
        }
      } else {
        l.size = rng() % 5 == 0 ? rng() % 20000 : rng() % 300;
        l.p = kmalloc(m, l.size, GFP_KERNEL | (rng() % 4 == 0 ? __GFP_ZERO : 0));
        if (l.size == 0) {
          ASSERT_EQ(l.p, ZERO_SIZE_PTR);
          continue;
        }
        ASSERT_GE(ksize(m, l.p), l.size);
      }
      ASSERT_NE(l.p, nullptr);
      std::memset(l.p, pattern(l.p), l.size);
      live.push_back(l);
    } else if (op < 97) {
      const size_t k = rng() % live.size();
      Live l = live[k];
      live[k] = live.back();
      live.pop_back();
      const auto* b = static_cast<const uint8_t*>(l.p);
      for (size_t i = 0; i < l.size; ++i)
        ASSERT_EQ(b[i], pattern(l.p)) << "object " << l.p << " byte " << i;
      if (l.cache)
        kmem_cache_free(l.cache, l.p);
      else
        kfree(m, l.p);
    } else {
      kmem_cache_shrink(caches[rng() % kCaches]);
    }
    ASSERT_EQ(slab_check(m), "") << "step " << step;
    ASSERT_EQ(check(m), "") << "step " << step;
  }
  cpu.reset();
  for (const Live& l : live) l.cache ? kmem_cache_free(l.cache, l.p) : kfree(m, l.p);
  for (KmemCache* c : caches) EXPECT_EQ(kmem_cache_destroy(c), 0);
  for (KmemCache* c : slab_caches(m)) kmem_cache_shrink(c);
  ASSERT_EQ(slab_check(m), "");
  drain_all_pages(m);
  EXPECT_EQ(nr_free_pages(m), free_at_boot);
  EXPECT_EQ(m.node_stat_sum(NodeStat::NR_SLAB_UNRECLAIMABLE), 0);
  EXPECT_EQ(m.node_stat_sum(NodeStat::NR_SLAB_RECLAIMABLE), 0);
}

TEST(SlabBasics, KmallocSizeClassesAndLarge) {
  auto booted = boot(small_numa());
  ASSERT_TRUE(booted.ok());
  Machine& m = **booted;
  auto cpu = CpuScope::bind(m, 0);
  const std::pair<size_t, size_t> classes[] = {{1, 8},     {8, 8},     {9, 16},    {24, 32},
                                               {33, 64},   {65, 96},   {96, 96},   {97, 128},
                                               {129, 192}, {193, 256}, {257, 512}, {4097, 8192}};
  for (auto [req, cls] : classes) {
    void* p = kmalloc(m, req, GFP_KERNEL);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(ksize(m, p), cls) << req;
    EXPECT_EQ(kmem_cache_name(kmalloc_cache(m, req)),
              cls >= 1024 ? "kmalloc-" + std::to_string(cls >> 10) + "k"
                          : "kmalloc-" + std::to_string(cls));
    kfree(m, p);
  }
  void* big = kmalloc(m, 100000, GFP_KERNEL);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(ksize(m, big), 128u << 10);
  EXPECT_FALSE(m.virt_to_page(big)->test(PG_slab));
  kfree(m, big);
  EXPECT_EQ(kmalloc(m, 0, GFP_KERNEL), ZERO_SIZE_PTR);
  kfree(m, ZERO_SIZE_PTR);  // a no-op
  size_t huge = ~size_t{0} / 2;
  EXPECT_EQ(kcalloc(m, huge, 4, GFP_KERNEL), nullptr);  // overflow
  auto* z = static_cast<uint8_t*>(kcalloc(m, 10, 10, GFP_KERNEL));
  ASSERT_NE(z, nullptr);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(z[i], 0);
  std::memset(z, 7, 100);
  auto* r = static_cast<uint8_t*>(krealloc(m, z, 1000, GFP_KERNEL));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r[99], 7);
  EXPECT_EQ(ksize(m, r), 1024u);
  kfree(m, r);
  EXPECT_EQ(slab_check(m), "");
}

TEST(SlabBasics, MergesCompatibleCachesAsAliases) {
  auto booted = boot(small_numa());
  ASSERT_TRUE(booted.ok());
  Machine& m = **booted;
  KmemCache* a = kmem_cache_create(m, "a_60", 60, 0, 0);
  EXPECT_EQ(a, kmalloc_cache(m, 64));  // merged into kmalloc-64
  auto aliases = kmem_cache_aliases(a);
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_EQ(aliases[0], "a_60");
  KmemCache* b = kmem_cache_create(m, "b_ctor", 60, 0, 0, [](void* p) { std::memset(p, 1, 60); });
  EXPECT_NE(b, a);  // a constructor prevents merging
  KmemCache* c = kmem_cache_create(m, "c_rcl", 60, 0, SLAB_RECLAIM_ACCOUNT);
  EXPECT_NE(c, a);                      // different SLAB_MERGE_SAME flags
  EXPECT_EQ(kmem_cache_destroy(a), 0);  // drops the alias only
  EXPECT_NE(kmalloc(m, 64, GFP_KERNEL), nullptr);
  EXPECT_EQ(kmem_cache_destroy(b), 0);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(SlabBasics, DestroyRefusesWhileObjectsLive) {
  auto booted = boot(small_numa());
  ASSERT_TRUE(booted.ok());
  Machine& m = **booted;
  std::string report;
  m.warn_sink = [&](const std::string& s) { report += s; };
  KmemCache* s = kmem_cache_create(m, "busy", 100, 0, SLAB_NO_MERGE);
  void* p = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(kmem_cache_destroy(s), -EBUSY);
  EXPECT_NE(
      report.find("BUG busy (Not tainted): Objects remaining in busy on __kmem_cache_shutdown()"),
      std::string::npos)
      << report;
  kmem_cache_free(s, p);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(slab_check(m), "");
}

TEST(SlabBasics, OrderFollowsCalculateOrder) {
  auto booted = boot(small_numa());  // 2 CPUs: min_objects = 4 * (fls(2) + 1) = 12
  ASSERT_TRUE(booted.ok());
  Machine& m = **booted;
  // size 8: 12 objects fit one page; waste 0 -> order 0, 512 objects.
  EXPECT_EQ(get_slabinfo(kmalloc_cache(m, 8)).pagesperslab, 1u);
  EXPECT_EQ(get_slabinfo(kmalloc_cache(m, 8)).objperslab, 512u);
  // size 512: 12 * 512 = 6144 -> min order 1 (8 KiB, 16 objects, waste 0).
  EXPECT_EQ(get_slabinfo(kmalloc_cache(m, 512)).pagesperslab, 2u);
  // size 1024: 12 KiB -> order 2 (16 objects).
  EXPECT_EQ(get_slabinfo(kmalloc_cache(m, 1024)).pagesperslab, 4u);
  // size 8192: max_objects at order 3 is 4, min_objects 4 -> order 3 (32 KiB).
  EXPECT_EQ(get_slabinfo(kmalloc_cache(m, 8192)).pagesperslab, 8u);
  EXPECT_EQ(get_slabinfo(kmalloc_cache(m, 8192)).objperslab, 4u);
  // 3000 bytes: 12 * 3000 = 36000 -> order 4 > max 3; limited to max_objects(3) = 10,
  // order 3 holds 10 (waste 2768 <= 32768/16) -> order 3.
  KmemCache* s = kmem_cache_create(m, "s3000", 3000, 0, SLAB_NO_MERGE);
  EXPECT_EQ(get_slabinfo(s).pagesperslab, 8u);
  EXPECT_EQ(get_slabinfo(s).objperslab, 10u);
}

}  // namespace
}  // namespace mmkit

namespace mmkit {
namespace {

TEST(SlabBasics, SlubDebugFromTheMachineConfig) {
  MachineConfig c = small_numa();
  c.slub_debug = "FZ,kmalloc-64";
  auto booted = boot(c);
  ASSERT_TRUE(booted.ok());
  Machine& m = **booted;
  std::string report;
  m.warn_sink = [&](const std::string& s) { report += s; };
  auto cpu = CpuScope::bind(m, 0);
  auto* p = static_cast<uint8_t*>(kmalloc(m, 64, GFP_KERNEL));
  ASSERT_NE(p, nullptr);
  p[64] = 0;  // one byte past the object: the right red zone
  kfree(m, p);
  EXPECT_NE(report.find("BUG kmalloc-64 (Not tainted): Right Redzone overwritten"),
            std::string::npos)
      << report;
  report.clear();
  auto* q = static_cast<uint8_t*>(kmalloc(m, 32, GFP_KERNEL));  // kmalloc-32: not debugged
  q[31] = 0;  // the last byte of its own object: fine
  kfree(m, q);
  EXPECT_EQ(report, "");
  EXPECT_EQ(slab_check(m), "");
}

}  // namespace
}  // namespace mmkit
