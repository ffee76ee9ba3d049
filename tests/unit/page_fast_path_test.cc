// The page allocator's inline fast paths (page_alloc/fast_path.h).
//
// The fast allocation folds the LOW watermark test into one per-CPU
// threshold (PcpClass::free_above), so the threshold must follow every
// change to what it stands for: the watermarks (a min_free_kbytes sysctl),
// the high-atomic reserve, and lowmem_reserve. The fast free folds the
// free-time checks into one test, so every page it must not take (a mapped,
// compound-tail or still-referenced page) must still reach Linux's checks.
// Threads bound to no CPU count their PGALLOC/PGFREE under zone->lock; the
// machine's sums must include them.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "page_alloc/page_alloc.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::unique_ptr<Machine> boot_mib(uint64_t mib, unsigned cpus = 1) {
  return test::boot_or_fail(test::one_node(mib, cpus));
}

int64_t expected_free_above(const PcpClass& cls) {
  const Zone& z = *cls.zone;
  return static_cast<int64_t>(z.low_wmark() + z.lowmem_reserve[cls.highest] +
                              z.nr_reserved_highatomic);
}

// Every valid class of every CPU agrees with its zone.
void expect_thresholds_current(Machine& m) {
  for (unsigned c = 0; c < m.nr_cpus(); ++c)
    for (unsigned bits = 0; bits < 32; ++bits) {
      const PcpClass& cls = m.cpu(static_cast<int>(c)).pcp_class[bits];
      if (!cls.zone) continue;
      EXPECT_EQ(cls.free_above.load(), expected_free_above(cls))
          << "cpu " << c << " class " << bits;
    }
}

TEST(PageFastPath, ClassesNameTheZonelistsFirstUsableZone) {
  auto mp = boot_mib(64, 2);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  const Zone& dma = m.node(0).zones[0];
  const Zone& dma32 = m.node(0).zones[1];
  for (int c = 0; c < 2; ++c) {
    const CpuState& cpu = m.cpu(c);
    EXPECT_EQ(cpu.pcp_class[GFP_KERNEL & 0x1f].zone, &dma32);
    EXPECT_EQ(cpu.pcp_class[GFP_KERNEL & 0x1f].pcp, &dma32.pcp[c]);
    EXPECT_EQ(cpu.pcp_class[GFP_KERNEL & 0x1f].pgalloc_event,
              static_cast<unsigned>(VmEvent::PGALLOC_DMA32));
    EXPECT_EQ(cpu.pcp_class[GFP_DMA & 0x1f].zone, &dma);
    EXPECT_EQ(cpu.pcp_class[GFP_DMA & 0x1f].highest, 0u);
    // Invalid zone modifiers and both mobility bits have no class.
    EXPECT_EQ(cpu.pcp_class[(__GFP_DMA | __GFP_HIGHMEM) & 0x1f].zone, nullptr);
    EXPECT_EQ(cpu.pcp_class[(__GFP_MOVABLE | __GFP_RECLAIMABLE) & 0x1f].zone, nullptr);
  }
  expect_thresholds_current(m);
}

TEST(PageFastPath, ThresholdFollowsTheWatermarkSysctl) {
  auto mp = boot_mib(64);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  std::vector<std::string> warnings;
  set_warn_sink(m, [&](const std::string& s) { warnings.push_back(s); });
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());

  // A page on the pcp list, then the hot pair takes the fast path.
  Page* p = alloc_pages(m, GFP_KERNEL, 0);
  ASSERT_NE(p, nullptr);
  free_pages(m, p, 0);
  const int64_t slow0 = m.sum_event(VmEvent::ALLOC_SLOWPATH);
  Page* q = alloc_pages(m, GFP_KERNEL, 0);
  EXPECT_EQ(q, p) << "the hot page comes back from the list head";
  EXPECT_EQ(m.sum_event(VmEvent::ALLOC_SLOWPATH), slow0);
  free_pages(m, q, 0);

  // Raise every watermark above the free memory: the list still holds the
  // page, but the fast path must refuse and the slow path must fail.
  const uint64_t saved = m.min_free_kbytes;
  m.min_free_kbytes = 64 * 1024;
  setup_per_zone_wmarks(m);
  expect_thresholds_current(m);
  EXPECT_EQ(alloc_pages(m, GFP_KERNEL | __GFP_NOWARN, 0), nullptr);
  EXPECT_EQ(m.sum_event(VmEvent::ALLOC_SLOWPATH), slow0 + 1);

  // And back: the fast path serves again without the slow path.
  m.min_free_kbytes = saved;
  setup_per_zone_wmarks(m);
  expect_thresholds_current(m);
  Page* r = alloc_pages(m, GFP_KERNEL, 0);
  ASSERT_NE(r, nullptr);
  free_pages(m, r, 0);
  EXPECT_EQ(m.sum_event(VmEvent::ALLOC_SLOWPATH), slow0 + 1);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(check(m), "");
}

TEST(PageFastPath, ThresholdFollowsTheHighAtomicReserveAndLowmemReserve) {
  // 32 MiB: DMA and DMA32. An order-1 GFP_ATOMIC request below LOW reserves
  // a DMA32 pageblock for high-order atomic allocations (see gfp_test.cc).
  auto mp = boot_mib(32);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  set_warn_sink(m, [](const std::string&) {});
  const Zone& dma32 = m.node(0).zones[1];
  m.min_free_kbytes = 28000;
  setup_per_zone_wmarks(m);
  Page* a = alloc_pages(m, GFP_ATOMIC, 1);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(dma32.nr_reserved_highatomic, 512u);
  const PcpClass& kernel = m.cpu(0).pcp_class[GFP_KERNEL & 0x1f];
  EXPECT_EQ(kernel.free_above.load(), static_cast<int64_t>(dma32.low_wmark() + 512));
  expect_thresholds_current(m);

  // Lower watermarks: the reserve stays in the threshold.
  m.min_free_kbytes = 1;
  setup_per_zone_wmarks(m);
  EXPECT_EQ(kernel.free_above.load(), static_cast<int64_t>(dma32.low_wmark() + 512));

  // lowmem_reserve_ratio is a sysctl too.
  m.lowmem_reserve_ratio[0] = 1;
  m.lowmem_reserve_ratio[1] = 1;
  setup_per_zone_lowmem_reserve(m);
  expect_thresholds_current(m);
  free_pages(m, a, 1);
  EXPECT_EQ(check(m), "");
}

TEST(PageFastPath, FreeOfAPageLinuxWouldRejectStillReportsIt) {
  auto mp = boot_mib(64);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  std::vector<std::string> warnings;
  set_warn_sink(m, [&](const std::string& s) { warnings.push_back(s); });
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  const PerCpuPages& pcp = *m.cpu(0).pcp_class[GFP_KERNEL & 0x1f].pcp;

  // A page still mapped somewhere: "non-NULL mapping", withheld, not listed.
  Page* p = alloc_pages(m, GFP_KERNEL, 0);
  ASSERT_NE(p, nullptr);
  int owner = 0;
  p->mapping = &owner;
  const int before = pcp.count.load();
  free_pages(m, p, 0);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("non-NULL mapping"), std::string::npos) << warnings[0];
  EXPECT_TRUE(p->test(PG_bad));
  EXPECT_EQ(pcp.count.load(), before);

  // A tail page of a compound page (its refcount is 0: a bad page state).
  Page* c = alloc_pages(m, GFP_KERNEL | __GFP_COMP, 1);
  ASSERT_NE(c, nullptr);
  free_pages(m, c + 1, 0);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[1].find("Bad page state"), std::string::npos) << warnings[1];
  // With a (stray) reference, the free-time check names the tail.
  (c + 1)->refcount.store(1);
  free_pages(m, c + 1, 0);
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_NE(warnings[2].find("freeing a tail page"), std::string::npos) << warnings[2];
  (c + 1)->refcount.store(0);
  free_pages(m, c, 1);

  // A page with a second reference: the free only drops one.
  Page* s = alloc_pages(m, GFP_KERNEL, 0);
  ASSERT_NE(s, nullptr);
  get_page(s);
  free_pages(m, s, 0);
  EXPECT_EQ(s->ref_count(), 1);
  EXPECT_EQ(warnings.size(), 3u);
  free_pages(m, s, 0);
  EXPECT_EQ(s->ref_count(), 0);

  // Freeing it again is a double free.
  free_pages(m, s, 0);
  ASSERT_EQ(warnings.size(), 4u);
  EXPECT_NE(warnings[3].find("double free"), std::string::npos) << warnings[3];
  EXPECT_EQ(check(m), "");
}

TEST(PageFastPath, UnboundEventsAreCounted) {
  auto mp = boot_mib(64, 2);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  ASSERT_EQ(this_cpu(m), nullptr);
  const int64_t alloc0 = m.sum_event(VmEvent::PGALLOC_DMA32);
  const int64_t free0 = m.sum_event(VmEvent::PGFREE);
  Page* p = alloc_pages(m, GFP_KERNEL, 2);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(m.sum_event(VmEvent::PGALLOC_DMA32), alloc0 + 4);
  free_pages(m, p, 2);
  EXPECT_EQ(m.sum_event(VmEvent::PGFREE), free0 + 4);
  EXPECT_EQ(m.node(0).zones[1].locked_events[static_cast<unsigned>(VmEvent::PGFREE)].get(),
            free0 + 4);
  {
    // Bound, the same pair counts on the CPU: the sums go on.
    auto scope = CpuScope::bind(m, 1);
    ASSERT_TRUE(scope.ok());
    Page* q = alloc_pages(m, GFP_KERNEL, 0);
    ASSERT_NE(q, nullptr);
    free_pages(m, q, 0);
    EXPECT_EQ(m.cpu(1).events[static_cast<unsigned>(VmEvent::PGFREE)].get(), 1);
  }
  EXPECT_EQ(m.sum_event(VmEvent::PGALLOC_DMA32), alloc0 + 5);
  EXPECT_EQ(m.sum_event(VmEvent::PGFREE), free0 + 5);
  EXPECT_EQ(check(m), "");
}

}  // namespace
}  // namespace mmkit

namespace mmkit {
namespace {

// A page's flags go with its last user (PAGE_FLAGS_CHECK_AT_PREP), on the
// per-CPU fast path and on the locked path alike: a page-cache page freed
// off the LRU with PG_uptodate once came back uptodate to a new page-cache
// user, which then handed out its stale bytes before they were read.
TEST(PageFastPath, FreedPagesCarryNoFlags) {
  auto mp = boot_mib(64);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  const uint64_t kept = uint64_t{1} << PG_uptodate | uint64_t{1} << PG_referenced |
                        uint64_t{1} << PG_workingset | uint64_t{1} << PG_dirty;
  for (int bound = 0; bound < 2; ++bound) {
    std::optional<CpuScope> scope;
    if (bound) scope.emplace(std::move(CpuScope::bind(m, 0).value()));
    for (unsigned order : {0u, 2u, 5u}) {
      Page* p = alloc_pages(m, GFP_KERNEL, order);
      ASSERT_NE(p, nullptr);
      p->flags.fetch_or(kept);
      free_pages(m, p, order);
      // The same frame comes back first (the pcp list's head, or the
      // buddy block just freed).
      Page* q = alloc_pages(m, GFP_KERNEL, order);
      ASSERT_EQ(q, p) << "order " << order << " bound " << bound;
      EXPECT_EQ(q->flags.load() & kept, 0u) << "order " << order << " bound " << bound;
      free_pages(m, q, order);
    }
  }
  EXPECT_EQ(check(m), "");
}

}  // namespace
}  // namespace mmkit
