// kmem_cache_create with KmemCacheArgs::freeptr_offset (Linux's struct
// kmem_cache_args): where a free object keeps its free pointer. What must
// hold: the pointer sits at the given offset and a free writes nothing else
// of the object; without the argument SLUB's middle of the object stays the
// default; a cache that must keep free objects intact (SLAB_POISON) keeps
// the pointer past the object whatever the argument; a bad offset is refused
// with one message naming it; such caches never merge. slab_check() holds
// after every step.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr KmemCacheArgs kAtStart{.freeptr_offset = 0, .use_freeptr_offset = true};

TEST(SlabFreeptrOffset, AFreeWritesOnlyThePointersWord) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  for (const unsigned size : {16u, 200u, 1000u, 9000u}) {
    KmemCache* s = kmem_cache_create(m, "atstart", size, kAtStart, 0);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->offset, 0u);
    std::vector<unsigned char*> objs;
    for (unsigned i = 0; i < 3 * s->objects; ++i) {
      auto* p = static_cast<unsigned char*>(kmem_cache_alloc(s, GFP_KERNEL));
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x5a, size);
      objs.push_back(p);
    }
    // Free every other object (both to the active slab and to others),
    // then check that each freed object changed only in its first word.
    for (size_t i = 0; i < objs.size(); i += 2) {
      kmem_cache_free(s, objs[i]);
      ASSERT_EQ(slab_check(m), "") << size;
    }
    for (size_t i = 0; i < objs.size(); i += 2)
      for (unsigned b = sizeof(void*); b < size; ++b)
        ASSERT_EQ(objs[i][b], 0x5a) << "size " << size << " object " << i << " byte " << b;
    // The freed objects come back and are usable.
    for (size_t i = 0; i < objs.size(); i += 2) {
      objs[i] = static_cast<unsigned char*>(kmem_cache_alloc(s, GFP_KERNEL));
      ASSERT_NE(objs[i], nullptr);
      std::memset(objs[i], 0x33, size);
    }
    EXPECT_EQ(slab_check(m), "");
    for (unsigned char* p : objs) kmem_cache_free(s, p);
    EXPECT_EQ(slab_check(m), "");
    EXPECT_EQ(kmem_cache_destroy(s), 0);
  }
}

TEST(SlabFreeptrOffset, DefaultIsTheMiddleAndPoisonKeepsItOutside) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  KmemCache* plain = kmem_cache_create(m, "middle", 100, 0, SLAB_NO_MERGE);
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->offset, 48u);  // ALIGN_DOWN(100 / 2, 8)
  KmemCache* at24 = kmem_cache_create(
      m, "at24", 100, KmemCacheArgs{.freeptr_offset = 24, .use_freeptr_offset = true}, 0);
  ASSERT_NE(at24, nullptr);
  EXPECT_EQ(at24->offset, 24u);
  KmemCache* poisoned = kmem_cache_create(m, "poisoned", 100, kAtStart, SLAB_POISON);
  ASSERT_NE(poisoned, nullptr);
  EXPECT_GE(poisoned->offset, poisoned->inuse);
  for (KmemCache* s : {plain, at24, poisoned}) EXPECT_EQ(kmem_cache_destroy(s), 0);
}

TEST(SlabFreeptrOffset, BadOffsetsAreRefusedWithTheReason) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  std::vector<std::string> warnings;
  set_warn_sink(m, [&](const std::string& w) { warnings.push_back(w); });
  const unsigned bad[] = {4, 60, 64, 1u << 31};
  for (const unsigned off : bad) {
    warnings.clear();
    EXPECT_EQ(
        kmem_cache_create(m, "bad", 64,
                          KmemCacheArgs{.freeptr_offset = off, .use_freeptr_offset = true}, 0),
        nullptr)
        << off;
    ASSERT_EQ(warnings.size(), 1u) << off;
    EXPECT_NE(
        warnings[0].find("kmem_cache_create(bad) failed: freeptr_offset " + std::to_string(off)),
        std::string::npos)
        << warnings[0];
  }
  // The last word of a 60-byte object (rounded up to 64) is inside it.
  KmemCache* ok = kmem_cache_create(
      m, "last", 60, KmemCacheArgs{.freeptr_offset = 56, .use_freeptr_offset = true}, 0);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->offset, 56u);
  EXPECT_EQ(kmem_cache_destroy(ok), 0);
  EXPECT_EQ(slab_check(m), "");
}

TEST(SlabFreeptrOffset, SuchCachesNeverMerge) {
  auto mp = test::boot_or_fail(test::one_node(64, 1));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  KmemCache* a = kmem_cache_create(m, "a", 96, kAtStart, 0);
  KmemCache* b = kmem_cache_create(m, "b", 96, kAtStart, 0);
  KmemCache* plain = kmem_cache_create(m, "plain", 96, 0, 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(plain, nullptr);
  EXPECT_NE(a, b);
  EXPECT_NE(plain, a);
  EXPECT_NE(plain, b);
  EXPECT_EQ(a->offset, 0u);
  EXPECT_EQ(b->offset, 0u);
  for (KmemCache* s : {a, b, plain}) EXPECT_EQ(kmem_cache_destroy(s), 0);
}

}  // namespace
}  // namespace mmkit
