// The per-CPU partial budget (kmem_cache_cpu_partial and _set_, Linux's
// /sys/kernel/slab/<cache>/cpu_partial). What must hold: the default follows
// SLUB's table by object size; a CPU keeps the slabs its frees make partial
// up to the budget's slabs' worth and sends the rest to the node list; a new
// budget takes effect at once and flushes the CPU's slabs; debug caches keep
// no CPU partial slabs and refuse a budget. slab_check() holds after every
// step and every object comes back.
#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

uint64_t node_partial(KmemCache* s) {
  KmemCacheNode* n = s->node[0].get();
  SpinGuard g(n->list_lock);
  return n->nr_partial;
}

TEST(SlabCpuPartial, DefaultBudgetFollowsSlubsTableBySize) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  const struct { unsigned size, objects; } want[] = {{64, 120}, {256, 52}, {1024, 24}, {4096, 6}};
  for (const auto& w : want) {
    KmemCache* s = kmem_cache_create(m, "budget", w.size, 0, SLAB_NO_MERGE);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(kmem_cache_cpu_partial(s), w.objects) << w.size;
    EXPECT_EQ(s->cpu_partial_slabs.load(), (w.objects * 2 + s->objects - 1) / s->objects);
    EXPECT_EQ(kmem_cache_destroy(s), 0);
  }
}

// Frees one object in each of `nr` full slabs (none of them the active one)
// and returns how many of those slabs the CPU kept; the rest must be on the
// node's partial list, save the one whose free is still held back.
unsigned free_one_per_slab(Machine& m, KmemCache* s, std::vector<void*>& objs, unsigned nr) {
  const unsigned per_slab = s->objects;
  for (unsigned i = 0; i < nr; ++i) {
    kmem_cache_free(s, objs[i * per_slab]);
    objs[i * per_slab] = nullptr;
    EXPECT_EQ(slab_check(m), "") << "after the free to slab " << i;
  }
  return s->cpu_slab[0].partial_slabs;
}

// Frees the objects still live, checks the slabs and destroys the cache.
void free_rest_and_destroy(Machine& m, KmemCache* s, const std::vector<void*>& objs) {
  for (void* obj : objs)
    if (obj) kmem_cache_free(s, obj);
  EXPECT_EQ(slab_check(m), "");
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

TEST(SlabCpuPartial, CpuKeepsTheSlabsItsFreesMakePartialUpToTheBudget) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  for (const unsigned factor : {1u, 4u}) {
    KmemCache* s = kmem_cache_create(m, "partial64", 64, 0, SLAB_NO_MERGE);
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(kmem_cache_set_cpu_partial(s, factor * kmem_cache_cpu_partial(s)), 0);
    const unsigned budget_slabs = s->cpu_partial_slabs.load();
    const unsigned nr = 10;  // slabs made partial by a free
    std::vector<void*> objs;
    for (unsigned i = 0; i < (nr + 1) * s->objects; ++i) {
      objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
      ASSERT_NE(objs.back(), nullptr);
    }
    const unsigned kept = free_one_per_slab(m, s, objs, nr);
    // The last free is still held back (deferred); the other nr - 1 slabs
    // are partial, on this CPU or, past the budget, on the node.
    EXPECT_LE(kept, budget_slabs);
    EXPECT_EQ(kept + node_partial(s), nr - 1) << "factor " << factor;
    if (budget_slabs >= nr) {
      EXPECT_EQ(kept, nr - 1);
    } else {
      EXPECT_GT(node_partial(s), 0u);
    }
    free_rest_and_destroy(m, s, objs);
  }
}

TEST(SlabCpuPartial, NewBudgetFlushesTheCpuAndAppliesAtOnce) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  KmemCache* s = kmem_cache_create(m, "flush64", 64, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  std::vector<void*> objs;
  for (unsigned i = 0; i < 6 * s->objects; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  free_one_per_slab(m, s, objs, 4);
  KmemCacheCpu& c = s->cpu_slab[0];
  ASSERT_NE(c.slab, nullptr);
  ASSERT_GT(c.partial_slabs, 0u);

  ASSERT_EQ(kmem_cache_set_cpu_partial(s, 0), 0);
  EXPECT_EQ(kmem_cache_cpu_partial(s), 0u);
  EXPECT_EQ(c.slab, nullptr);
  EXPECT_EQ(c.partial, nullptr);
  EXPECT_EQ(c.partial_slabs, 0u);
  EXPECT_EQ(node_partial(s), 4u);  // the three kept and the one held back
  EXPECT_EQ(slab_check(m), "");
  // With no budget, a slab a free makes partial goes straight back (its
  // predecessor on the CPU list with it).
  for (unsigned i = 4; i < 6; ++i) {
    kmem_cache_free(s, objs[i * s->objects]);
    objs[i * s->objects] = nullptr;
    EXPECT_LE(c.partial_slabs, 1u);
    EXPECT_EQ(slab_check(m), "");
  }
  free_rest_and_destroy(m, s, objs);
}

TEST(SlabCpuPartial, DebugCachesRefuseABudget) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  KmemCache* s = kmem_cache_create(m, "poisoned", 64, 0, SLAB_POISON | SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(kmem_cache_cpu_partial(s), 0u);
  EXPECT_EQ(kmem_cache_set_cpu_partial(s, 30), -EINVAL);
  EXPECT_EQ(kmem_cache_cpu_partial(s), 0u);
  EXPECT_EQ(kmem_cache_set_cpu_partial(s, 0), 0);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

}  // namespace
}  // namespace mmkit
