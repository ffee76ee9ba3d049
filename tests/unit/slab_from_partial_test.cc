// Objects for a caller bound to no CPU: kmem_cache_alloc_from_partial()
// (the malloc heap's magazine refills) and the single-object path of
// slab_alloc_slow() (alloc_single_from_partial, Linux 6.2). What must hold:
// objects come off the node's first partial slab, distinct and free before;
// the slab leaves the partial list exactly when it is full and stays
// unfrozen; a node without partial slabs, a debug cache, n = 0 and a node
// that does not exist give nothing; the counts agree with slabinfo and
// slab_check() holds after every step.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "slab/kmem_cache.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

SlabWord word_of(Machine& m, void* obj) {
  return SlabWord::unpack(slab_word(m.virt_to_page(obj)->head()).load());
}

TEST(SlabFromPartial, TakesInFreelistOrderAndUnlistsAFullSlab) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  KmemCache* s = kmem_cache_create(m, "from_partial", 64, 0, 0);
  ASSERT_NE(s, nullptr);
  void* out[64];
  EXPECT_EQ(kmem_cache_alloc_from_partial(s, 0, out, 8), 0u);  // no partial slab yet

  // Two full slabs, allocated with no CPU bound (each new slab's other
  // objects go to the node list), then every other object of the first
  // freed: one partial slab with objects/2 free.
  std::vector<void*> objs;
  for (unsigned i = 0; i < 2 * s->objects; ++i) objs.push_back(kmem_cache_alloc(s, GFP_KERNEL));
  for (void* p : objs) ASSERT_NE(p, nullptr);
  EXPECT_EQ(s->node[0]->nr_partial, 0u);
  EXPECT_EQ(slab_check(m), "");
  Page* first = m.virt_to_page(objs[0])->head();
  std::set<void*> freed;
  for (unsigned i = 0; i < s->objects; i += 2) {
    if (m.virt_to_page(objs[i])->head() != first) continue;
    kmem_cache_free(s, objs[i]);
    freed.insert(objs[i]);
  }
  ASSERT_EQ(s->node[0]->nr_partial, 1u);
  EXPECT_EQ(slab_check(m), "");

  // Three objects, all of them ones the slab had free.
  const SlabWord before = word_of(m, objs[0]);
  ASSERT_EQ(kmem_cache_alloc_from_partial(s, 0, out, 3), 3u);
  std::set<void*> taken(out, out + 3);
  EXPECT_EQ(taken.size(), 3u);
  for (void* p : taken) EXPECT_TRUE(freed.count(p)) << p;
  const SlabWord after = word_of(m, objs[0]);
  EXPECT_EQ(after.inuse, before.inuse + 3);
  EXPECT_FALSE(after.frozen);
  EXPECT_EQ(s->node[0]->nr_partial, 1u);
  EXPECT_EQ(slab_check(m), "");

  // More than are left: the rest, and the slab leaves the list full.
  const unsigned left = static_cast<unsigned>(freed.size()) - 3;
  ASSERT_EQ(kmem_cache_alloc_from_partial(s, 0, out + 3, 64), left);
  taken.insert(out + 3, out + 3 + left);
  EXPECT_EQ(taken, freed);
  EXPECT_EQ(word_of(m, objs[0]).inuse, s->objects);
  EXPECT_FALSE(word_of(m, objs[0]).frozen);
  EXPECT_EQ(s->node[0]->nr_partial, 0u);
  EXPECT_EQ(slab_check(m), "");
  EXPECT_EQ(kmem_cache_alloc_from_partial(s, 0, out, 8), 0u);

  // A free to the full slab lists it again; the single-object path takes it.
  kmem_cache_free(s, out[0]);
  EXPECT_EQ(s->node[0]->nr_partial, 1u);
  void* again = kmem_cache_alloc(s, GFP_KERNEL);
  EXPECT_EQ(again, out[0]);
  EXPECT_EQ(s->node[0]->nr_partial, 0u);
  EXPECT_EQ(slab_check(m), "");

  // Nothing for n = 0 or a node the machine lacks.
  kmem_cache_free(s, again);
  EXPECT_EQ(kmem_cache_alloc_from_partial(s, 0, out, 0), 0u);
  EXPECT_EQ(kmem_cache_alloc_from_partial(s, 1, out, 8), 0u);
  EXPECT_EQ(kmem_cache_alloc_from_partial(s, -1, out, 8), 0u);

  for (void* p : objs)
    if (!freed.count(p)) kmem_cache_free(s, p);
  for (unsigned i = 1; i < 3 + left; ++i) kmem_cache_free(s, out[i]);
  EXPECT_EQ(slab_check(m), "");
  EXPECT_EQ(get_slabinfo(s).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

TEST(SlabFromPartial, DebugCachesGiveNothing) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  KmemCache* s = kmem_cache_create(m, "from_partial_dbg", 64, 0, SLAB_RED_ZONE);
  ASSERT_NE(s, nullptr);
  void* a = kmem_cache_alloc(s, GFP_KERNEL);
  void* b = kmem_cache_alloc(s, GFP_KERNEL);
  kmem_cache_free(s, a);
  void* out[4];
  EXPECT_EQ(kmem_cache_alloc_from_partial(s, 0, out, 4), 0u);
  kmem_cache_free(s, b);
  EXPECT_EQ(slab_check(m), "");
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

}  // namespace
}  // namespace mmkit
