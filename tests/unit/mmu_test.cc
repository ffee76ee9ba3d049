// The software MMU: translations land on the right byte of the right frame;
// rights are the AND of the levels (NX the OR); accessed and dirty bits are
// set like the hardware's; a refused access changes nothing; the per-CPU
// TLB serves hits, is tagged by asid, re-walks a write to a clean entry,
// keeps a stale translation until flushed (as the hardware does), and is
// bypassed by threads with no CPU.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "page_alloc/page_alloc.h"
#include "vm/mmu.h"
#include "vm/vm_state.h"

namespace mmkit {
namespace {

constexpr pteval_t kUserRW = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER;
constexpr pteval_t kUserRO = _PAGE_PRESENT | _PAGE_USER;

struct Mmu {
  std::unique_ptr<Machine> m;
  PageTable pt;
  std::vector<Page*> pages;

  explicit Mmu(Arch arch = Arch::x86_64, unsigned levels = 4) {
    MachineConfig c;
    c.arch = arch;
    c.cpus = 2;
    c.nodes.push_back(NodeConfig{.memory = 64ull << 20});
    if (levels == 5) c.paging_levels = 5;
    auto r = boot(c);
    EXPECT_TRUE(r.ok()) << r.error().message;
    m = std::move(r.value());
    EXPECT_TRUE(pgd_alloc(*m, paging_mode(*m), pt));
  }
  ~Mmu() {
    const uint64_t top = pt.mode == PagingMode::kI386            ? 0xc0000000ull
                         : pt.mode == PagingMode::kX86_64_5Level ? 0x0100000000000000ull
                                                                 : 0x0000800000000000ull;
    zap_range(pt, 0, top);
    free_pgtables(pt, 0, top, 0, 0);
    pgd_free(pt);
    for (Page* p : pages) free_page(*m, p);
  }
  // Maps a fresh page (filled with `fill`) at `addr`.
  Page* map(uint64_t addr, pteval_t prot, int fill = 0) {
    Page* p = alloc_page(*m, GFP_KERNEL);
    EXPECT_NE(p, nullptr);
    std::memset(m->phys_window(m->page_to_pfn(p)), fill, PAGE_SIZE);
    EXPECT_TRUE(pte_set(pt, addr, pfn_pte(m->page_to_pfn(p), prot)));
    p->mapcount.fetch_add(1);
    get_page(p);
    pages.push_back(p);
    return p;
  }
};

TEST(MmuTranslate, ReachesTheByte) {
  Mmu t;
  Page* p = t.map(0x400000, kUserRW, 0x5a);
  const Translation r = translate(t.pt, 0x400123, Access::kRead);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.host, t.m->phys_window(t.m->page_to_pfn(p)) + 0x123);
  EXPECT_EQ(*r.host, 0x5a);
  EXPECT_EQ(pte_pfn(r.pte), t.m->page_to_pfn(p));
  // Through the translation a write lands in the page.
  const Translation w = translate(t.pt, 0x400fff, Access::kWrite);
  ASSERT_TRUE(w.ok());
  *w.host = 7;
  EXPECT_EQ(static_cast<char*>(t.m->page_address(p))[0xfff], 7);
  const Translation miss = translate(t.pt, 0x401000, Access::kRead);
  EXPECT_EQ(miss.fault, TranslateFault::kNotPresent);
  EXPECT_EQ(miss.host, nullptr);
  EXPECT_EQ(miss.pte, 0u);
  EXPECT_EQ(translate(t.pt, 0x0000800000000000ull, Access::kRead).fault,
            TranslateFault::kNonCanonical);
  EXPECT_EQ(translate(t.pt, 0x7f0000000000ull, Access::kRead).fault, TranslateFault::kNotPresent);
}

TEST(MmuTranslate, AccessedAndDirtyBits) {
  Mmu t;
  t.map(0x400000, kUserRW);
  // Clear ACCESSED on the upper levels by hand to see the walk set it.
  const PagingFormat& f = paging_format(t.pt.mode);
  std::vector<char*> uppers;
  uint64_t table = t.m->page_to_pfn(t.pt.pgd);
  for (unsigned l = 0; l + 1 < f.levels; ++l) {
    EntryRef e = table_entry(*t.m, f, table, table_index(f, l, 0x400000));
    e.store(e.load() & ~_PAGE_ACCESSED);
    uppers.push_back(e.ptr());
    table = pte_pfn(e.load());
  }
  EXPECT_FALSE(pte_get(t.pt, 0x400000) & (_PAGE_ACCESSED | _PAGE_DIRTY));
  ASSERT_TRUE(translate(t.pt, 0x400000, Access::kRead).ok());
  EXPECT_EQ(pte_get(t.pt, 0x400000) & (_PAGE_ACCESSED | _PAGE_DIRTY), _PAGE_ACCESSED);
  for (char* e : uppers) EXPECT_TRUE(EntryRef(e, true).load() & _PAGE_ACCESSED);
  const Translation w = translate(t.pt, 0x400000, Access::kWrite);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w.pte & _PAGE_DIRTY);
  EXPECT_TRUE(pte_get(t.pt, 0x400000) & _PAGE_DIRTY);
}

TEST(MmuTranslate, ProtectionFaultsTouchNothing) {
  Mmu t;
  t.map(0x1000, kUserRO);
  t.map(0x2000, kUserRW | _PAGE_NX);
  t.map(0x3000, _PAGE_PRESENT | _PAGE_RW);  // kernel only
  const pteval_t before1 = pte_get(t.pt, 0x1000);
  const Translation w = translate(t.pt, 0x1000, Access::kWrite);
  EXPECT_EQ(w.fault, TranslateFault::kProtection);
  EXPECT_EQ(w.host, nullptr);
  EXPECT_EQ(w.pte, before1);
  EXPECT_EQ(pte_get(t.pt, 0x1000), before1);  // no accessed, no dirty
  EXPECT_EQ(translate(t.pt, 0x1000, Access::kWrite, false).fault, TranslateFault::kProtection);
  EXPECT_EQ(translate(t.pt, 0x2000, Access::kExec).fault, TranslateFault::kProtection);
  EXPECT_EQ(translate(t.pt, 0x2000, Access::kExec, false).fault, TranslateFault::kProtection);
  EXPECT_TRUE(translate(t.pt, 0x1000, Access::kExec).ok());
  const pteval_t before3 = pte_get(t.pt, 0x3000);
  EXPECT_EQ(translate(t.pt, 0x3000, Access::kRead).fault, TranslateFault::kProtection);
  EXPECT_EQ(pte_get(t.pt, 0x3000), before3);
  EXPECT_TRUE(translate(t.pt, 0x3000, Access::kWrite, false).ok());  // kernel mode
}

TEST(MmuTranslate, RightsAreTheAndOfAllLevels) {
  Mmu t;
  t.map(0x200000, kUserRW);
  const PagingFormat& f = paging_format(t.pt.mode);
  // Take RW off the PMD entry: the RW leaf no longer allows writes.
  uint64_t table = t.m->page_to_pfn(t.pt.pgd);
  for (unsigned l = 0; l + 2 < f.levels; ++l)
    table = pte_pfn(table_entry(*t.m, f, table, table_index(f, l, 0x200000)).load());
  EntryRef pmd = table_entry(*t.m, f, table, table_index(f, f.levels - 2, 0x200000));
  pmd.store(pmd.load() & ~_PAGE_RW);
  EXPECT_EQ(translate(t.pt, 0x200000, Access::kWrite).fault, TranslateFault::kProtection);
  EXPECT_TRUE(translate(t.pt, 0x200000, Access::kRead).ok());
  pmd.store((pmd.load() | _PAGE_RW | _PAGE_NX) & ~_PAGE_USER);
  EXPECT_EQ(translate(t.pt, 0x200000, Access::kRead).fault, TranslateFault::kProtection);
  EXPECT_EQ(translate(t.pt, 0x200000, Access::kExec, false).fault, TranslateFault::kProtection);
  EXPECT_TRUE(translate(t.pt, 0x200000, Access::kWrite, false).ok());
  pmd.store(pmd.load() | _PAGE_USER);
  pmd.store(pmd.load() & ~_PAGE_NX);
}

TEST(MmuTranslate, FiveLevelAndI386) {
  {
    Mmu t(Arch::x86_64, 5);
    Page* p = t.map(0x00ff000000001000ull, kUserRW, 3);
    const Translation r = translate(t.pt, 0x00ff000000001010ull, Access::kRead);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.host, t.m->phys_window(t.m->page_to_pfn(p)) + 0x10);
    EXPECT_EQ(translate(t.pt, 0x0100000000000000ull, Access::kRead).fault,
              TranslateFault::kNonCanonical);
  }
  {
    Mmu t(Arch::i386);
    Page* p = t.map(0x08048000, kUserRO, 9);
    const Translation r = translate(t.pt, 0x08048004, Access::kExec);  // no NX on i386
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.host, t.m->phys_window(t.m->page_to_pfn(p)) + 4);
    EXPECT_EQ(translate(t.pt, 0x08048004, Access::kWrite).fault, TranslateFault::kProtection);
    EXPECT_EQ(translate(t.pt, 0x100000000ull, Access::kRead).fault, TranslateFault::kNonCanonical);
  }
}

TEST(MmuTlb, HitsMissesAndDirtyRewalk) {
  Mmu t;
  t.map(0x400000, kUserRW);
  auto cpu = CpuScope::bind(*t.m, 0);
  ASSERT_TRUE(cpu.ok());
  const TlbStats s0 = tlb_stats(*t.m, 0);
  ASSERT_TRUE(translate(t.pt, 0x400000, Access::kRead).ok());
  ASSERT_TRUE(translate(t.pt, 0x400008, Access::kRead).ok());
  TlbStats s1 = tlb_stats(*t.m, 0);
  EXPECT_EQ(s1.misses - s0.misses, 1u);  // the second one hit
  // The entry was cached clean: the first write walks to set DIRTY.
  ASSERT_TRUE(translate(t.pt, 0x400000, Access::kWrite).ok());
  EXPECT_TRUE(pte_get(t.pt, 0x400000) & _PAGE_DIRTY);
  TlbStats s2 = tlb_stats(*t.m, 0);
  EXPECT_EQ(s2.misses - s1.misses, 1u);
  ASSERT_TRUE(translate(t.pt, 0x400000, Access::kWrite).ok());
  EXPECT_EQ(tlb_stats(*t.m, 0).misses, s2.misses);  // now a hit
}

TEST(MmuTlb, StaleUntilFlushed) {
  Mmu t;
  Page* a = t.map(0x400000, kUserRW, 1);
  auto cpu = CpuScope::bind(*t.m, 0);
  ASSERT_TRUE(cpu.ok());
  ASSERT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 1);
  // Changing the entry behind the TLB's back: the hardware keeps using the
  // cached translation until a flush, and so does the software TLB.
  Page* b = alloc_page(*t.m, GFP_KERNEL);
  std::memset(t.m->page_address(b), 2, PAGE_SIZE);
  const pteval_t old = pte_clear(t.pt, 0x400000);
  ASSERT_TRUE(pte_set(t.pt, 0x400000, pfn_pte(t.m->page_to_pfn(b), kUserRW)));
  EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 1);
  flush_tlb_page(t.pt, 0x400000);
  EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 2);
  // flush_tlb_range, flush_tlb_mm and flush_tlb_local do it too.
  ASSERT_TRUE(pte_set(t.pt, 0x400000, old));
  EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 2);
  flush_tlb_range(t.pt, 0x3ff000, 0x402000);
  EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 1);
  ASSERT_TRUE(pte_set(t.pt, 0x400000, pfn_pte(t.m->page_to_pfn(b), kUserRW)));
  flush_tlb_mm(t.pt);
  EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 2);
  ASSERT_TRUE(pte_set(t.pt, 0x400000, old));
  flush_tlb_local(*t.m);
  EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 1);
  // zap_range and change_protection flush for themselves.
  EXPECT_EQ(change_protection(t.pt, 0x400000, 0x401000, _PAGE_USER), 1u);
  EXPECT_EQ(translate(t.pt, 0x400000, Access::kWrite).fault, TranslateFault::kProtection);
  EXPECT_EQ(zap_range(t.pt, 0x400000, 0x401000), 1u);
  EXPECT_EQ(translate(t.pt, 0x400000, Access::kRead).fault, TranslateFault::kNotPresent);
  EXPECT_EQ(a->mapcount.load(), 0);
  free_page(*t.m, b);
}

TEST(MmuTlb, TaggedByAsid) {
  Mmu t;
  PageTable other;
  ASSERT_TRUE(pgd_alloc(*t.m, paging_mode(*t.m), other));
  EXPECT_NE(other.asid, t.pt.asid);
  t.map(0x400000, kUserRW, 1);
  Page* b = alloc_page(*t.m, GFP_KERNEL);
  std::memset(t.m->page_address(b), 2, PAGE_SIZE);
  ASSERT_TRUE(pte_set(other, 0x400000, pfn_pte(t.m->page_to_pfn(b), kUserRW)));
  auto cpu = CpuScope::bind(*t.m, 1);
  ASSERT_TRUE(cpu.ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 1);
    EXPECT_EQ(*translate(other, 0x400000, Access::kRead).host, 2);
  }
  EXPECT_EQ(other.cpumask.load(), 2u);  // CPU 1 walked it
  pte_clear(other, 0x400000);
  free_pgtables(other, 0, 0x0000800000000000ull, 0, 0);
  pgd_free(other);
  free_page(*t.m, b);
}

TEST(MmuTlb, UnboundThreadsAlwaysWalk) {
  Mmu t;
  t.map(0x400000, kUserRW, 1);
  const TlbStats s0 = tlb_stats(*t.m, 0), s1 = tlb_stats(*t.m, 1);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(translate(t.pt, 0x400000, Access::kRead).ok());
  EXPECT_EQ(tlb_stats(*t.m, 0).misses + tlb_stats(*t.m, 1).misses, s0.misses + s1.misses);
  EXPECT_EQ(t.pt.cpumask.load(), 0u);
  // An unbound thread sees a change at once (it caches nothing).
  Page* b = alloc_page(*t.m, GFP_KERNEL);
  std::memset(t.m->page_address(b), 2, PAGE_SIZE);
  const pteval_t old = pte_clear(t.pt, 0x400000);
  ASSERT_TRUE(pte_set(t.pt, 0x400000, pfn_pte(t.m->page_to_pfn(b), kUserRW)));
  EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 2);
  ASSERT_TRUE(pte_set(t.pt, 0x400000, old));
  free_page(*t.m, b);
  EXPECT_TRUE(tlb_stats(*t.m, 5).misses == 0);  // out-of-range CPU: empty stats
}

TEST(MmuTlb, FreedTreeTranslatesNothing) {
  Mmu t;
  PageTable other;
  ASSERT_TRUE(pgd_alloc(*t.m, paging_mode(*t.m), other));
  Page* p = alloc_page(*t.m, GFP_KERNEL);
  ASSERT_TRUE(pte_set(other, 0x400000, pfn_pte(t.m->page_to_pfn(p), kUserRO)));
  auto cpu = CpuScope::bind(*t.m, 0);
  ASSERT_TRUE(cpu.ok());
  ASSERT_TRUE(translate(other, 0x400000, Access::kRead).ok());
  pte_clear(other, 0x400000);
  free_pgtables(other, 0, 0x0000800000000000ull, 0, 0);
  pgd_free(other);
  EXPECT_EQ(other.pgd, nullptr);
  EXPECT_EQ(translate(other, 0x400000, Access::kRead).fault, TranslateFault::kNotPresent);
  free_page(*t.m, p);
}

TEST(MmuTlb, RemoteCpuFlushesBeforeItsNextTranslate) {
  Mmu t;
  t.map(0x400000, kUserRW, 1);
  std::atomic<int> phase{0};
  char seen_after = 0;
  std::thread other([&] {
    auto cpu = CpuScope::bind(*t.m, 1);
    ASSERT_TRUE(cpu.ok());
    EXPECT_EQ(*translate(t.pt, 0x400000, Access::kRead).host, 1);
    phase.store(1);
    while (phase.load() != 2) std::this_thread::yield();
    const Translation r = translate(t.pt, 0x400000, Access::kRead);
    seen_after = r.ok() ? *r.host : 0;
  });
  while (phase.load() != 1) std::this_thread::yield();
  {
    auto cpu = CpuScope::bind(*t.m, 0);
    ASSERT_TRUE(cpu.ok());
    EXPECT_EQ(zap_range(t.pt, 0x400000, 0x401000), 1u);
    EXPECT_EQ(tlb_stats(*t.m, 0).shootdowns, 1u);
  }
  phase.store(2);
  other.join();
  EXPECT_EQ(seen_after, 0);  // not the zapped page through CPU 1's stale entry
}

}  // namespace
}  // namespace mmkit
