// SLUB's per-CPU sheaves (KmemCacheArgs::sheaf_capacity, Linux 6.18): a
// stack of freed objects per CPU in front of the slabs. What must hold: a
// free pushes on the sheaf and an allocation pops it, newest first, with the
// slabs still counting the objects in use; a full sheaf gives its older half
// back to the slabs and keeps the newer half in order; every path that
// gives a CPU's slabs back (shrink, destroy, a CPU going away) empties it,
// so no object and no page is lost; a double free of the sheaf's top is
// caught; debug caches have none; a capacity out of range is refused with
// one message; such caches never merge. slab_check() after every step.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr KmemCacheArgs kSheaf8{.sheaf_capacity = 8};

unsigned slab_inuse(Machine& m, void* obj) {
  return SlabWord::unpack(slab_word(m.virt_to_page(obj)->head()).load()).inuse;
}

struct SlabSheaf : ::testing::Test {
  // A 64 MiB machine of `cpus` CPUs whose warnings the test reads.
  void boot(unsigned cpus = 1) {
    mp = test::boot_or_fail(test::one_node(64, cpus));
    ASSERT_TRUE(mp);
    set_warn_sink(*mp, [this](const std::string& w) { warnings.push_back(w); });
  }
  // boot(), the thread bound to CPU 0, and `name`: 64-byte objects with an
  // 8-object sheaf.
  void boot_bound(const char* name) {
    ASSERT_NO_FATAL_FAILURE(boot());
    scope.emplace(CpuScope::bind(*mp, 0));
    ASSERT_TRUE(scope->ok());
    s = kmem_cache_create(*mp, name, 64, kSheaf8, 0);
    ASSERT_NE(s, nullptr);
  }
  std::vector<std::string> warnings;  // outlives the machine, which may warn at teardown
  std::unique_ptr<Machine> mp;
  std::optional<Result<CpuScope>> scope;
  KmemCache* s = nullptr;
};

TEST_F(SlabSheaf, FreesAndAllocationsMeetTheSheafNewestFirst) {
  ASSERT_NO_FATAL_FAILURE(boot_bound("sheaf"));
  Machine& m = *mp;
  const KmemCacheCpu& c = s->cpu_slab[0];
  // Nothing is written for a CPU until it first uses the cache.
  ASSERT_EQ(c.sheaf_capacity, 0u);
  ASSERT_EQ(c.sheaf, nullptr);
  std::vector<void*> objs;
  for (unsigned i = 0; i < 3 * s->objects; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  ASSERT_EQ(c.sheaf_capacity, 8u);
  ASSERT_EQ(c.sheaf, cpu_sheaf_slots(s->cpu_slab[0]));
  // One object of each of five places: the first slab (full, no CPU's),
  // the second, the active slab.
  const std::vector<void*> freed = {objs[0], objs[s->objects], objs[1], objs[2 * s->objects],
                                    objs[s->objects + 1]};
  const unsigned inuse_first = slab_inuse(m, objs[0]);
  for (size_t i = 0; i < freed.size(); ++i) {
    kmem_cache_free(s, freed[i]);
    ASSERT_EQ(c.sheaf_size, i + 1);
    ASSERT_EQ(c.sheaf[i], freed[i]);
    ASSERT_EQ(slab_check(m), "");
  }
  EXPECT_EQ(slab_inuse(m, objs[0]), inuse_first);  // the slab was not written
  for (size_t i = freed.size(); i-- > 0;) {
    EXPECT_EQ(kmem_cache_alloc(s, GFP_KERNEL), freed[i]);
    ASSERT_EQ(slab_check(m), "");
  }
  EXPECT_EQ(c.sheaf_size, 0u);
  // __GFP_ZERO takes the slow half, which pops the sheaf too and zeroes.
  std::memset(objs[5], 0xab, 64);
  kmem_cache_free(s, objs[5]);
  auto* z = static_cast<unsigned char*>(kmem_cache_alloc(s, GFP_KERNEL | __GFP_ZERO));
  ASSERT_EQ(z, objs[5]);
  for (unsigned i = 0; i < 64; ++i) ASSERT_EQ(z[i], 0) << i;
  ASSERT_EQ(slab_check(m), "");
  for (void* p : objs) kmem_cache_free(s, p);
  ASSERT_EQ(slab_check(m), "");
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

TEST_F(SlabSheaf, AFullSheafGivesItsOlderHalfBack) {
  ASSERT_NO_FATAL_FAILURE(boot_bound("sheaf_full"));
  Machine& m = *mp;
  const KmemCacheCpu& c = s->cpu_slab[0];
  std::vector<void*> objs;
  for (unsigned i = 0; i < 4 * s->objects; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  // Nine frees from the first slab, which no CPU holds: eight fill the
  // sheaf, the ninth flushes the oldest four to their slab.
  const unsigned inuse = slab_inuse(m, objs[0]);
  for (unsigned i = 0; i < 9; ++i) {
    kmem_cache_free(s, objs[i]);
    ASSERT_EQ(slab_check(m), "") << i;
  }
  ASSERT_EQ(c.sheaf_size, 5u);
  for (unsigned i = 0; i < 5; ++i) EXPECT_EQ(c.sheaf[i], objs[4 + i]) << i;
  // The four are on the CPU's deferred chain for that slab until it flushes.
  EXPECT_EQ(c.defer_slab, m.virt_to_page(objs[0])->head());
  EXPECT_EQ(c.defer_count, 4u);
  EXPECT_EQ(slab_inuse(m, objs[0]), inuse);
  ASSERT_EQ(kmem_cache_shrink(s), 0);  // flushes the CPU: chain and sheaf reach the slab
  EXPECT_EQ(c.sheaf_size, 0u);
  EXPECT_EQ(slab_inuse(m, objs[0]), inuse - 9);
  ASSERT_EQ(slab_check(m), "");
  for (unsigned i = 9; i < objs.size(); ++i) kmem_cache_free(s, objs[i]);
  ASSERT_EQ(slab_check(m), "");
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

TEST_F(SlabSheaf, EveryObjectAndPageComesBackFromTheSheaves) {
  // Two CPUs fill their sheaves with each other's objects; the threads
  // leave their CPUs; destroy takes the CPUs over, empties the sheaves, and
  // every page is free again.
  ASSERT_NO_FATAL_FAILURE(boot(2));
  Machine& m = *mp;
  drain_all_pages(m);
  const uint64_t free_before = nr_free_pages(m);
  s = kmem_cache_create(m, "sheaf_cpus", 200, KmemCacheArgs{.sheaf_capacity = 16}, 0);
  ASSERT_NE(s, nullptr);
  std::vector<void*> a, b;
  for (int cpu = 0; cpu < 2; ++cpu) {
    auto bound = CpuScope::bind(m, cpu);
    ASSERT_TRUE(bound.ok());
    if (cpu == 0) {  // CPU 1 has not run the cache yet: its copy is all zero
      const auto* other = reinterpret_cast<const unsigned char*>(&s->cpu_slab[1]);
      EXPECT_TRUE(std::all_of(other, other + sizeof(KmemCacheCpu) + 16 * sizeof(void*),
                              [](unsigned char x) { return x == 0; }));
    }
    auto& mine = cpu ? b : a;
    for (unsigned i = 0; i < 2 * s->objects; ++i) mine.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  }
  for (int cpu = 0; cpu < 2; ++cpu) {
    auto bound = CpuScope::bind(m, cpu);
    ASSERT_TRUE(bound.ok());
    for (void* p : cpu ? a : b) kmem_cache_free(s, p);  // the other CPU's objects
    EXPECT_GT(s->cpu_slab[cpu].sheaf_size, 0u);
    ASSERT_EQ(slab_check(m), "");
  }
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  drain_all_pages(m);
  EXPECT_EQ(nr_free_pages(m), free_before);
}

TEST_F(SlabSheaf, FlushingEveryCpuWritesNothingToTheCopiesOfIdleCpus) {
  // kmem_cache_set_cpu_partial and kmem_cache_shrink flush every CPU
  // (flush_all); one that never ran the cache holds nothing, and its copy
  // must stay unwritten, or the host backs every CPU's unit with memory.
  // CPU 3's page of the copy is made read-only: a write would fault.
  ASSERT_NO_FATAL_FAILURE(boot(4));
  Machine& m = *mp;
  s = kmem_cache_create(m, "sheaf_idle", 64, kSheaf8, 0);
  ASSERT_NE(s, nullptr);
  {
    auto bound = CpuScope::bind(m, 0);
    ASSERT_TRUE(bound.ok());
    std::vector<void*> objs;
    for (unsigned i = 0; i < 3 * s->objects; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
    for (void* p : objs) kmem_cache_free(s, p);
    ASSERT_GT(s->cpu_slab[0].sheaf_size, 0u);
  }
  const auto page = reinterpret_cast<uintptr_t>(&s->cpu_slab[3]) & ~uintptr_t{PAGE_SIZE - 1};
  void* idle = reinterpret_cast<void*>(page);
  ASSERT_EQ(mprotect(idle, PAGE_SIZE, PROT_READ), 0);
  EXPECT_EQ(kmem_cache_set_cpu_partial(s, 2 * kmem_cache_cpu_partial(s)), 0);
  EXPECT_EQ(kmem_cache_shrink(s), 0);
  ASSERT_EQ(mprotect(idle, PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(s->cpu_slab[0].sheaf_size, 0u);  // CPU 0's was flushed
  ASSERT_EQ(slab_check(m), "");
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

TEST_F(SlabSheaf, ADoubleFreeOfTheTopIsCaught) {
  ASSERT_NO_FATAL_FAILURE(boot_bound("sheaf_df"));
  Machine& m = *mp;
  void* a = kmem_cache_alloc(s, GFP_KERNEL);
  void* b = kmem_cache_alloc(s, GFP_KERNEL);
  kmem_cache_free(s, a);
  kmem_cache_free(s, a);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("double free detected"), std::string::npos) << warnings[0];
  EXPECT_EQ(s->cpu_slab[0].sheaf_size, 1u);
  ASSERT_EQ(slab_check(m), "");
  kmem_cache_free(s, b);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(warnings.size(), 1u);
}

TEST_F(SlabSheaf, DebugCachesHaveNoneAndBadCapacitiesAreRefused) {
  ASSERT_NO_FATAL_FAILURE(boot());
  Machine& m = *mp;
  KmemCache* dbg = kmem_cache_create(m, "sheaf_dbg", 64, kSheaf8, SLAB_RED_ZONE);
  ASSERT_NE(dbg, nullptr);
  EXPECT_EQ(dbg->sheaf_capacity, 0u);
  EXPECT_EQ(dbg->cpu_slab[0].sheaf_capacity, 0u);
  EXPECT_EQ(kmem_cache_create(m, "sheaf_big", 64,
                              KmemCacheArgs{.sheaf_capacity = kMaxSheafCapacity + 1}, 0),
            nullptr);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("kmem_cache_create(sheaf_big) failed: sheaf_capacity 1025 above 1024"),
            std::string::npos)
      << warnings[0];
  // A cache with sheaves is never an alias of a plain one, nor the reverse.
  KmemCache* sheaved = kmem_cache_create(m, "sheaved64", 64, kSheaf8, 0);
  KmemCache* plain = kmem_cache_create(m, "plain64", 64, 0, 0);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(sheaved, nullptr);
  EXPECT_NE(plain, sheaved);
  EXPECT_EQ(sheaved->sheaf_capacity, 8u);
  for (KmemCache* c : {dbg, plain, sheaved}) EXPECT_EQ(kmem_cache_destroy(c), 0);
}

}  // namespace
}  // namespace mmkit
