// SLUB's deferred frees (KmemCacheCpu::defer_*): a CPU's frees to a slab
// other than its active one are chained and reach the slab with one
// compare-and-swap when the CPU frees to a third slab, refills, or is
// flushed. What must hold: the chain is only ever for one slab and its
// objects stay counted in use until the flush (slab_check() proves both
// after every step); every path that gives a CPU's slabs back (shrink,
// destroy, the refill) flushes it first, so no object is lost; and a double
// free of the chain's head is caught as SLUB catches one of its freelist's.
// Also a new slab's unwritten objects (KmemCacheCpu::bump): handed out in
// address order, chained when the slab leaves the CPU or the fast path
// declines, and never lost.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

std::unique_ptr<Machine> boot_small(unsigned cpus) {
  return test::boot_or_fail(test::one_node(64, cpus));
}

Page* slab_of(Machine& m, void* obj) {
  return m.virt_to_page(obj)->head();
}

unsigned slab_inuse(Page* slab) {
  return SlabWord::unpack(slab_word(slab).load()).inuse;
}

TEST(SlabDeferredFree, RunsOfFreesReachTheirSlabInOneStep) {
  auto mp = boot_small(1);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  KmemCache* s = kmem_cache_create(m, "defer64", 64, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  const unsigned per_slab = s->objects;
  // Three slabs' worth: the first two are full and off the CPU when the
  // frees start; the third is the active one.
  std::vector<void*> objs;
  for (unsigned i = 0; i < 3 * per_slab; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  for (void* p : objs) ASSERT_NE(p, nullptr);
  Page* first = slab_of(m, objs[0]);
  Page* second = slab_of(m, objs[per_slab]);
  ASSERT_NE(first, second);
  ASSERT_EQ(slab_inuse(first), per_slab);
  KmemCacheCpu& c = s->cpu_slab[0];

  // Frees to the first slab are held back: it still counts them in use.
  for (unsigned i = 0; i < per_slab / 2; ++i) {
    kmem_cache_free(s, objs[i]);
    ASSERT_EQ(slab_check(m), "") << "after free " << i;
  }
  EXPECT_EQ(c.defer_slab, first);
  EXPECT_EQ(c.defer_count, per_slab / 2);
  EXPECT_EQ(slab_inuse(first), per_slab);

  // A free to the second slab hands the chain over in one step.
  kmem_cache_free(s, objs[per_slab]);
  EXPECT_EQ(slab_inuse(first), per_slab - per_slab / 2);
  EXPECT_EQ(c.defer_slab, second);
  EXPECT_EQ(c.defer_count, 1u);
  ASSERT_EQ(slab_check(m), "");

  // Everything else goes back; shrink flushes the last chain, and the cache
  // then holds no object (destroy succeeds).
  for (size_t i = 0; i < objs.size(); ++i)
    if (i >= per_slab / 2 && i != per_slab) kmem_cache_free(s, objs[i]);
  ASSERT_EQ(slab_check(m), "");
  kmem_cache_shrink(s);
  EXPECT_EQ(c.defer_slab, nullptr);
  ASSERT_EQ(slab_check(m), "");
  EXPECT_EQ(get_slabinfo(s).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(check(m), "");
}

TEST(SlabDeferredFree, TheRefillFlushesTheChainAndReusesItsObjects) {
  auto mp = boot_small(1);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  KmemCache* s = kmem_cache_create(m, "defer_refill", 256, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  const unsigned per_slab = s->objects;
  std::vector<void*> objs;
  for (unsigned i = 0; i < 2 * per_slab; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  Page* first = slab_of(m, objs[0]);
  for (unsigned i = 0; i < per_slab; ++i) kmem_cache_free(s, objs[i]);
  ASSERT_EQ(s->cpu_slab[0].defer_slab, first);
  ASSERT_EQ(slab_inuse(first), per_slab);
  // The active slab is exhausted, so the next allocation refills: the
  // chain goes back first, and the object comes from the first slab.
  ASSERT_EQ(s->cpu_slab[0].freelist, nullptr);
  void* again = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(s->cpu_slab[0].defer_slab, nullptr);
  EXPECT_EQ(slab_of(m, again), first);
  ASSERT_EQ(slab_check(m), "");
  kmem_cache_free(s, again);
  for (unsigned i = per_slab; i < 2 * per_slab; ++i) kmem_cache_free(s, objs[i]);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(check(m), "");
}

TEST(SlabDeferredFree, DoubleFreeOfTheChainHeadIsReported) {
  auto mp = boot_small(1);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  std::vector<std::string> warnings;
  set_warn_sink(m, [&](const std::string& w) { warnings.push_back(w); });
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  KmemCache* s = kmem_cache_create(m, "defer_df", 128, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  std::vector<void*> objs;
  for (unsigned i = 0; i < 2 * s->objects; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, objs[0]);
  kmem_cache_free(s, objs[1]);
  ASSERT_EQ(s->cpu_slab[0].defer_head, objs[1]);
  kmem_cache_free(s, objs[1]);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("double free detected"), std::string::npos) << warnings[0];
  EXPECT_EQ(s->cpu_slab[0].defer_count, 2u);
  ASSERT_EQ(slab_check(m), "");
  for (size_t i = 2; i < objs.size(); ++i) kmem_cache_free(s, objs[i]);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(warnings.size(), 1u);
}

TEST(SlabDeferredFree, AnotherCpusChainIsFlushedByDestroy) {
  // CPU 1 frees objects of CPU 0's slabs and keeps the last chain; when the
  // thread leaves CPU 1, destroy (flush_all) takes the CPU over and
  // returns the chain, so the cache is empty.
  auto mp = boot_small(2);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  KmemCache* s = kmem_cache_create(m, "defer_remote", 64, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  std::vector<void*> objs;
  {
    auto cpu0 = CpuScope::bind(m, 0);
    ASSERT_TRUE(cpu0.ok());
    for (unsigned i = 0; i < 3 * s->objects; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  }
  {
    auto cpu1 = CpuScope::bind(m, 1);
    ASSERT_TRUE(cpu1.ok());
    for (void* p : objs) kmem_cache_free(s, p);
    EXPECT_NE(s->cpu_slab[1].defer_slab, nullptr);
    ASSERT_EQ(slab_check(m), "");
  }
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(check(m), "");
}

TEST(SlabLazySlab, NewSlabObjectsComeInOrderAndAreChainedWhenTheSlabLeaves) {
  auto mp = boot_small(1);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  KmemCache* s = kmem_cache_create(m, "lazy96", 96, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  KmemCacheCpu& c = s->cpu_slab[0];
  char* first = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(c.bump, first + s->size);
  EXPECT_EQ(c.bump_end, first + static_cast<size_t>(s->objects) * s->size);
  ASSERT_EQ(slab_check(m), "");
  char* second = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  EXPECT_EQ(second, first + s->size) << "address order";
  // A freed object comes back before the unwritten ones (it is hot).
  kmem_cache_free(s, second);
  EXPECT_EQ(kmem_cache_alloc(s, GFP_KERNEL), second);
  // __GFP_ZERO declines the fast path: the rest is chained, and the object
  // comes zeroed.
  std::memset(first + 2 * s->size, 0x5a, s->object_size);
  auto* z = static_cast<unsigned char*>(kmem_cache_alloc(s, GFP_KERNEL | __GFP_ZERO));
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(c.bump, c.bump_end);
  for (unsigned i = 0; i < s->object_size; ++i) ASSERT_EQ(z[i], 0) << i;
  ASSERT_EQ(slab_check(m), "");
  EXPECT_EQ(get_slabinfo(s).active_objs, s->objects) << "the CPU's objects count as active";
  kmem_cache_free(s, z);
  kmem_cache_free(s, second);
  kmem_cache_free(s, first);
  ASSERT_EQ(slab_check(m), "");

  // A fresh slab left with unwritten objects: shrink chains them back.
  std::vector<void*> objs;
  for (unsigned i = 0; i < s->objects + 3; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  ASSERT_NE(c.bump, c.bump_end);
  kmem_cache_shrink(s);
  EXPECT_EQ(c.bump, nullptr);
  ASSERT_EQ(slab_check(m), "");
  for (void* p : objs) kmem_cache_free(s, p);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(check(m), "");
}

}  // namespace
}  // namespace mmkit
