// A torn CPU (CpuState::torn: a forked child's CPU whose thread the child
// did not inherit) may have frozen a slab and not yet put it on its lists.
// slab_check() reports such a slab on any other CPU and allows it once the
// CPU that left it is marked torn; everything else it checks still holds.
#include <gtest/gtest.h>

#include "slab/kmem_cache.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

TEST(SlabTornCpu, AFrozenSlabNoCpuHoldsIsAllowedOnlyBesideATornCpu) {
  auto mp = test::boot_or_fail(test::one_node(64, 2));
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  KmemCache* s = kmem_cache_create(m, "torn", 128, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  {
    auto bound = CpuScope::bind(m, 1);
    ASSERT_TRUE(bound.ok());
    void* obj = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(obj, nullptr);
    ASSERT_EQ(slab_check(m), "");
    // What a CPU stopped between freezing its new slab and taking it leaves:
    // the slab frozen, its objects all counted in use, on no CPU's lists.
    KmemCacheCpu& c = s->cpu_slab[1];
    cpu_slab_materialize(s, &c);  // the unwritten objects onto the freelist
    KmemCacheCpu saved = c;
    c.slab = nullptr;
    c.freelist = nullptr;
    EXPECT_NE(slab_check(m).find("but no CPU holds it"), std::string::npos);
    m.cpu(1).torn = true;
    EXPECT_EQ(slab_check(m), "");
    // Put back, the CPU is whole again and the cache goes as usual.
    m.cpu(1).torn = false;
    c = saved;
    ASSERT_EQ(slab_check(m), "");
    kmem_cache_free(s, obj);
    EXPECT_EQ(slab_check(m), "");
  }
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

}  // namespace
}  // namespace mmkit
