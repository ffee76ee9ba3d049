// Page tables: entry layouts against Linux's values, the 4-level, 5-level
// and i386 trees as stored in frames, tables allocated on demand and freed
// (NR_PAGETABLE and the free page count back where they started), the kernel
// half shared by user trees, the zero page and special entries, the range
// operations' counts, a seeded randomised sequence against a std::map model
// with check() after every step, and every bad input refused with a reason.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "vm/mmu.h"
#include "vm/pgtable.h"
#include "vm/vm_state.h"

namespace mmkit {
namespace {

MachineConfig small_config(Arch arch = Arch::x86_64, unsigned levels = 4) {
  MachineConfig c;
  c.arch = arch;
  c.cpus = 2;
  c.nodes.push_back(NodeConfig{.memory = 64ull << 20});
  if (arch == Arch::x86_64 && levels == 5) c.paging_levels = 5;
  return c;
}

struct Fixture {
  std::unique_ptr<Machine> m;
  std::vector<std::string> warnings;
  explicit Fixture(Arch arch = Arch::x86_64, unsigned levels = 4) {
    auto r = boot(small_config(arch, levels));
    EXPECT_TRUE(r.ok()) << r.error().message;
    m = std::move(r.value());
    m->warn_sink = [this](const std::string& s) { warnings.push_back(s); };
    kernel_page_table(*m);  // the vm state's own frames come first
  }
  int64_t pagetables() const { return m->node_stat_sum(NodeStat::NR_PAGETABLE); }
  uint64_t free_pages() {
    drain_all_pages(*m);
    return nr_free_pages(*m);
  }
  // A fresh page the test owns (refcount 1), as a fault would allocate it.
  Page* page() {
    Page* p = alloc_page(*m, GFP_KERNEL | __GFP_ZERO);
    EXPECT_NE(p, nullptr);
    return p;
  }
  // Maps `p` at `addr` the way a fault does: entry, mapcount and a reference.
  void map(PageTable& pt, uint64_t addr, Page* p, pteval_t prot) {
    ASSERT_TRUE(pte_set(pt, addr, pfn_pte(m->page_to_pfn(p), prot)));
    p->mapcount.fetch_add(1);
    get_page(p);
  }
  std::string last_warning() const { return warnings.empty() ? "" : warnings.back(); }
};

constexpr pteval_t kUserRW = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER;
constexpr pteval_t kUserRO = _PAGE_PRESENT | _PAGE_USER;

TEST(PgtableBits, MatchLinux) {
  // arch/x86/include/asm/pgtable_types.h
  EXPECT_EQ(_PAGE_PRESENT, 0x001u);
  EXPECT_EQ(_PAGE_RW, 0x002u);
  EXPECT_EQ(_PAGE_USER, 0x004u);
  EXPECT_EQ(_PAGE_PWT, 0x008u);
  EXPECT_EQ(_PAGE_PCD, 0x010u);
  EXPECT_EQ(_PAGE_ACCESSED, 0x020u);
  EXPECT_EQ(_PAGE_DIRTY, 0x040u);
  EXPECT_EQ(_PAGE_PSE, 0x080u);
  EXPECT_EQ(_PAGE_GLOBAL, 0x100u);
  EXPECT_EQ(_PAGE_SPECIAL, 0x200u);
  EXPECT_EQ(_PAGE_NX, 0x8000000000000000ull);
  EXPECT_EQ(PTE_PFN_MASK, 0x000ffffffffff000ull);
  EXPECT_EQ(_PAGE_TABLE, 0x067u);
  EXPECT_EQ(_KERNPG_TABLE, 0x063u);
  EXPECT_EQ(pfn_pte(0x12345, kUserRW | _PAGE_NX), 0x8000000012345007ull);
  EXPECT_EQ(pte_pfn(0x8000000012345067ull), 0x12345u);
  EXPECT_EQ(pfn_pte(uint64_t{1} << 40, _PAGE_PRESENT), 0x1ull);  // frame bits end at 51
}

TEST(PgtableFormat, Geometry) {
  const PagingFormat& l4 = paging_format(PagingMode::kX86_64_4Level);
  EXPECT_EQ(l4.levels, 4u);
  EXPECT_EQ(l4.va_bits, 48u);
  EXPECT_EQ(l4.shift[0], 39u);
  EXPECT_EQ(l4.shift[3], 12u);
  const PagingFormat& l5 = paging_format(PagingMode::kX86_64_5Level);
  EXPECT_EQ(l5.levels, 5u);
  EXPECT_EQ(l5.shift[0], 48u);
  EXPECT_EQ(l5.shift[1], 39u);
  const PagingFormat& i386 = paging_format(PagingMode::kI386);
  EXPECT_EQ(i386.levels, 2u);
  EXPECT_EQ(i386.index_bits, 10u);
  EXPECT_EQ(i386.entry_shift, 2u);
  EXPECT_EQ(i386.shift[0], 22u);
  EXPECT_EQ(i386.kernel_index, 768u);  // 0xC0000000 >> 22
}

TEST(PgtableFormat, CanonicalAddresses) {
  using enum PagingMode;
  EXPECT_TRUE(addr_canonical(kX86_64_4Level, 0x00007fffffffffffull));
  EXPECT_FALSE(addr_canonical(kX86_64_4Level, 0x0000800000000000ull));
  EXPECT_TRUE(addr_canonical(kX86_64_4Level, 0xffff800000000000ull));
  EXPECT_FALSE(addr_canonical(kX86_64_4Level, 0xfffe800000000000ull));
  EXPECT_TRUE(addr_canonical(kX86_64_5Level, 0x00ff800000000000ull));
  EXPECT_FALSE(addr_canonical(kX86_64_5Level, 0x0100000000000000ull));
  EXPECT_TRUE(addr_canonical(kX86_64_5Level, 0xff00000000000000ull));
  EXPECT_TRUE(addr_canonical(kI386, 0xffffffffull));
  EXPECT_FALSE(addr_canonical(kI386, 0x100000000ull));
  EXPECT_TRUE(addr_kernel_half(kX86_64_4Level, VMALLOC_START_L4));
  EXPECT_FALSE(addr_kernel_half(kX86_64_4Level, 0x7fff0000000ull));
  EXPECT_TRUE(addr_kernel_half(kI386, 0xc0000000ull));
  EXPECT_FALSE(addr_kernel_half(kI386, 0xbffff000ull));
}

// Reads entry `idx` of the table in frame `pfn` as the hardware would.
uint64_t raw_entry(Machine& m, uint64_t pfn, uint64_t idx, bool wide) {
  const char* t = m.phys_window(pfn);
  if (wide) {
    uint64_t v;
    std::memcpy(&v, t + idx * 8, 8);
    return v;
  }
  uint32_t v;
  std::memcpy(&v, t + idx * 4, 4);
  return v;
}

TEST(PgtableWalk, FourLevelTreeInFrames) {
  Fixture fx;
  Machine& m = *fx.m;
  const int64_t tables0 = fx.pagetables();
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, PagingMode::kX86_64_4Level, pt));
  EXPECT_EQ(pt.nr_tables.load(), 1u);
  const uint64_t addr = 0x00007f1234567000ull;
  Page* p = fx.page();
  const pteval_t val = pfn_pte(m.page_to_pfn(p), kUserRW | _PAGE_NX);
  ASSERT_TRUE(pte_set(pt, addr, val));
  p->mapcount.fetch_add(3);            // the three entries this test makes
  EXPECT_EQ(pt.nr_tables.load(), 4u);  // PGD, PUD, PMD, PTE
  EXPECT_EQ(fx.pagetables(), tables0 + 4);
  // Follow the indices by hand: bits 39..47, 30..38, 21..29, 12..20.
  uint64_t t = m.page_to_pfn(pt.pgd);
  for (unsigned shift : {39u, 30u, 21u}) {
    const uint64_t e = raw_entry(m, t, (addr >> shift) & 511, true);
    EXPECT_EQ(e & PTE_FLAGS_MASK, _PAGE_TABLE);
    t = pte_pfn(e);
  }
  EXPECT_EQ(raw_entry(m, t, (addr >> 12) & 511, true), val);
  EXPECT_EQ(pte_get(pt, addr), val);
  EXPECT_EQ(pte_get(pt, addr + PAGE_SIZE), 0u);
  EXPECT_EQ(pte_get(pt, 0x1000), 0u);
  EXPECT_EQ(check(pt), "");
  // A second page in the same PTE table costs nothing; one 1 GiB away a PMD and PTE.
  ASSERT_TRUE(pte_set(pt, addr + PAGE_SIZE, val));
  EXPECT_EQ(pt.nr_tables.load(), 4u);
  ASSERT_TRUE(pte_set(pt, addr + (1ull << 30), val));
  EXPECT_EQ(pt.nr_tables.load(), 6u);
  EXPECT_EQ(pte_clear(pt, addr), val);
  EXPECT_EQ(pte_clear(pt, addr + PAGE_SIZE), val);
  EXPECT_EQ(pte_clear(pt, addr + (1ull << 30)), val);
  free_pgtables(pt, 0, 0x0000800000000000ull, 0, 0);
  EXPECT_EQ(pt.nr_tables.load(), 1u);
  pgd_free(pt);
  EXPECT_EQ(fx.pagetables(), tables0);
  free_page(m, p);
}

TEST(PgtableWalk, FiveLevelTreeInFrames) {
  Fixture fx(Arch::x86_64, 5);
  Machine& m = *fx.m;
  EXPECT_EQ(paging_mode(m), PagingMode::kX86_64_5Level);
  EXPECT_EQ(kernel_page_table(m).mode, PagingMode::kX86_64_5Level);
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, PagingMode::kX86_64_5Level, pt));
  const uint64_t addr = 0x00abcdef01234000ull;  // above 2^47: needs LA57
  Page* p = fx.page();
  const pteval_t val = pfn_pte(m.page_to_pfn(p), kUserRO);
  ASSERT_TRUE(pte_set(pt, addr, val));
  p->mapcount.fetch_add(1);
  EXPECT_EQ(pt.nr_tables.load(), 5u);
  uint64_t t = m.page_to_pfn(pt.pgd);
  for (unsigned shift : {48u, 39u, 30u, 21u}) {
    const uint64_t e = raw_entry(m, t, (addr >> shift) & 511, true);
    EXPECT_TRUE(e & _PAGE_PRESENT);
    t = pte_pfn(e);
  }
  EXPECT_EQ(raw_entry(m, t, (addr >> 12) & 511, true), val);
  EXPECT_EQ(check(pt), "");
  pte_clear(pt, addr);
  free_pgtables(pt, 0, 0x0100000000000000ull, 0, 0);
  EXPECT_EQ(pt.nr_tables.load(), 1u);
  pgd_free(pt);
  free_page(m, p);
}

TEST(PgtableWalk, I386TwoLevelTreeInFrames) {
  Fixture fx(Arch::i386);
  Machine& m = *fx.m;
  EXPECT_EQ(paging_mode(m), PagingMode::kI386);
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, PagingMode::kI386, pt));
  const uint64_t addr = 0x0804a000;
  Page* p = fx.page();
  // NX has no place in a 32-bit entry: dropped on store.
  ASSERT_TRUE(pte_set(pt, addr, pfn_pte(m.page_to_pfn(p), kUserRW | _PAGE_NX)));
  p->mapcount.fetch_add(1);
  const pteval_t val = pfn_pte(m.page_to_pfn(p), kUserRW);
  EXPECT_EQ(pt.nr_tables.load(), 2u);
  const uint64_t pde = raw_entry(m, m.page_to_pfn(pt.pgd), addr >> 22, false);
  EXPECT_EQ(pde & 0xfff, _PAGE_TABLE);
  EXPECT_EQ(raw_entry(m, pte_pfn(pde), (addr >> 12) & 1023, false), val);
  EXPECT_EQ(pte_get(pt, addr), val);
  EXPECT_EQ(check(pt), "");
  // Table frames come from low memory (the direct map).
  EXPECT_LT(pte_pfn(pde), m.direct_map_pfns());
  pte_clear(pt, addr);
  free_pgtables(pt, 0, 0xc0000000ull, 0, 0xc0000000ull);
  EXPECT_EQ(pt.nr_tables.load(), 1u);
  pgd_free(pt);
  free_page(m, p);
}

TEST(PgtableKernel, UserTreesShareTheKernelHalf) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable& k = kernel_page_table(m);
  // The vmalloc area's 64 top-level entries (32 TiB / 512 GiB) exist from the start.
  EXPECT_EQ(k.nr_tables.load(), 1u + 64u);
  PageTable before;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), before));
  Page* p = fx.page();
  const pteval_t val = pfn_pte(m.page_to_pfn(p), _PAGE_PRESENT | _PAGE_RW | _PAGE_GLOBAL);
  const uint64_t vaddr = VMALLOC_START_L4 + (5ull << 30);
  ASSERT_TRUE(pte_set(k, vaddr, val));
  // Outside the vmalloc area a new top-level entry is synced to existing trees.
  const uint64_t fixaddr = 0xffffffffff5fc000ull;
  ASSERT_TRUE(pte_set(k, fixaddr, val));
  PageTable after;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), after));
  for (PageTable* u : {&before, &after}) {
    EXPECT_EQ(pte_get(*u, vaddr), val);
    EXPECT_EQ(pte_get(*u, fixaddr), val);
    EXPECT_EQ(check(*u), "");
    EXPECT_EQ(u->nr_tables.load(), 1u);  // the kernel's tables are the kernel's
  }
  EXPECT_EQ(check(k), "");
  // User trees may not change the shared half.
  EXPECT_FALSE(pte_set(before, vaddr + PAGE_SIZE, val));
  EXPECT_NE(fx.last_warning().find("kernel half"), std::string::npos) << fx.last_warning();
  // The kernel tree keeps its shared tables when a range empties.
  pte_clear(k, vaddr);
  pte_clear(k, fixaddr);
  const uint64_t ktables = k.nr_tables.load();
  free_pgtables(k, VMALLOC_START_L4, VMALLOC_START_L4 + VMALLOC_SIZE_L4, 0, 0);
  EXPECT_EQ(k.nr_tables.load(), ktables - 2);  // the PMD and PTE tables under the PUD
  EXPECT_EQ(check(k), "");
  pgd_free(before);
  pgd_free(after);
  free_page(m, p);
}

TEST(PgtableKernel, I386KernelEntriesAreSynced) {
  Fixture fx(Arch::i386);
  Machine& m = *fx.m;
  PageTable& k = kernel_page_table(m);
  PageTable u;
  ASSERT_TRUE(pgd_alloc(m, PagingMode::kI386, u));
  Page* p = fx.page();
  const pteval_t val = pfn_pte(m.page_to_pfn(p), _PAGE_PRESENT | _PAGE_RW);
  ASSERT_TRUE(pte_set(k, 0xf8000000ull, val));
  EXPECT_EQ(pte_get(u, 0xf8000000ull), val);
  EXPECT_EQ(check(u), "");
  pte_clear(k, 0xf8000000ull);
  pgd_free(u);
  free_page(m, p);
}

TEST(PgtableZap, CountsDirtyAndReferences) {
  Fixture fx;
  Machine& m = *fx.m;
  const uint64_t free0 = fx.free_pages();
  const int64_t tables0 = fx.pagetables();
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  const uint64_t base = 0x400000;
  std::vector<Page*> pages;
  for (int i = 0; i < 600; ++i) {  // more than one PTE table and one gather batch
    Page* p = fx.page();
    pages.push_back(p);
    fx.map(pt, base + i * PAGE_SIZE, p, kUserRW | (i % 2 ? _PAGE_DIRTY : 0));
  }
  // The zero page and a special (PFN-map) entry are not counted.
  ASSERT_TRUE(pte_set(pt, base + 700 * PAGE_SIZE, pfn_pte(m.page_to_pfn(zero_page(m)), kUserRO)));
  ASSERT_TRUE(pte_set(pt, base + 701 * PAGE_SIZE,
                      pfn_pte(m.page_to_pfn(pages[0]), kUserRW | _PAGE_SPECIAL)));
  const int zero_refs = zero_page(m)->ref_count();
  EXPECT_EQ(check(pt), "");
  for (Page* p : pages) {
    EXPECT_EQ(p->mapcount.load(), 1);
    EXPECT_EQ(p->ref_count(), 2);
  }
  EXPECT_EQ(zap_range(pt, base, base + 1024 * PAGE_SIZE), 600u);
  EXPECT_EQ(zero_page(m)->ref_count(), zero_refs);
  for (size_t i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(pages[i]->mapcount.load(), 0);
    EXPECT_EQ(pages[i]->ref_count(), 1);
    EXPECT_EQ(pages[i]->test(PG_dirty), i % 2 == 1) << i;
  }
  uint64_t left = 0;
  walk_range(pt, 0, 0x0000800000000000ull, [&](uint64_t, pteval_t) { ++left; });
  EXPECT_EQ(left, 0u);
  free_pgtables(pt, base, base + 1024 * PAGE_SIZE, 0, 0);
  EXPECT_EQ(pt.nr_tables.load(), 1u);
  pgd_free(pt);
  for (Page* p : pages) {
    p->clear(PG_dirty);
    free_page(m, p);
  }
  EXPECT_EQ(fx.pagetables(), tables0);
  EXPECT_EQ(fx.free_pages(), free0);
  EXPECT_EQ(check(m), "");
}

// /proc/meminfo's PageTables line is NR_PAGETABLE in kB.
TEST(PgtableStats, MeminfoPageTables) {
  Fixture fx;
  Machine& m = *fx.m;
  auto page_tables_kb = [&] {
    const std::string text = render_meminfo(m);
    const size_t at = text.find("PageTables:");
    EXPECT_NE(at, std::string::npos);
    return std::stoull(text.substr(at + 11));
  };
  const uint64_t kb0 = page_tables_kb();
  EXPECT_EQ(kb0, static_cast<uint64_t>(fx.pagetables()) * 4);
  EXPECT_GE(kb0, (1u + 64u) * 4);  // the kernel's top level and the vmalloc area's tables
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  ASSERT_TRUE(pte_set(pt, 0x1000, 0x2));  // a non-present (swap-style) entry: no page counted
  EXPECT_EQ(page_tables_kb(), kb0 + 4 * 4);
  pte_clear(pt, 0x1000);
  free_pgtables(pt, 0, 0x200000, 0, 0);
  pgd_free(pt);
  EXPECT_EQ(page_tables_kb(), kb0);
}

TEST(PgtableZap, LastReferenceFreesThePage) {
  Fixture fx;
  Machine& m = *fx.m;
  const uint64_t free0 = fx.free_pages();
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  for (int i = 0; i < 40; ++i) {
    Page* p = fx.page();
    ASSERT_TRUE(pte_set(pt, 0x10000000 + i * PAGE_SIZE, pfn_pte(m.page_to_pfn(p), kUserRW)));
    p->mapcount.fetch_add(1);  // the allocation's reference becomes the mapping's
  }
  EXPECT_EQ(zap_range(pt, 0x10000000, 0x10000000 + 40 * PAGE_SIZE), 40u);
  free_pgtables(pt, 0x10000000, 0x10000000 + 40 * PAGE_SIZE, 0, 0);
  pgd_free(pt);
  EXPECT_EQ(fx.free_pages(), free0);
  EXPECT_EQ(check(m), "");
}

TEST(PgtableFree, FloorAndCeilingKeepNeighboursTables) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  Page* p = fx.page();
  // Two "VMAs" in one PTE table (2 MiB span): [0x200000, 0x210000) and [0x300000, 0x310000).
  fx.map(pt, 0x200000, p, kUserRO);
  fx.map(pt, 0x300000, p, kUserRO);
  EXPECT_EQ(pt.nr_tables.load(), 4u);
  EXPECT_EQ(zap_range(pt, 0x200000, 0x210000), 1u);
  // The neighbour starts at 0x300000: the ceiling keeps the shared table.
  free_pgtables(pt, 0x200000, 0x210000, 0, 0x300000);
  EXPECT_EQ(pt.nr_tables.load(), 4u);
  EXPECT_EQ(pte_get(pt, 0x300000), pfn_pte(m.page_to_pfn(p), kUserRO));
  EXPECT_TRUE(fx.warnings.empty());
  EXPECT_EQ(check(pt), "");
  // Once the neighbour goes too, the whole chain below the PGD goes.
  EXPECT_EQ(zap_range(pt, 0x300000, 0x310000), 1u);
  free_pgtables(pt, 0x300000, 0x310000, 0, 0);
  EXPECT_EQ(pt.nr_tables.load(), 1u);
  EXPECT_EQ(check(pt), "");
  pgd_free(pt);
  free_page(m, p);
}

TEST(PgtableFree, TableWithEntriesIsKeptWithAWarning) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  Page* p = fx.page();
  fx.map(pt, 0x200000, p, kUserRO);
  free_pgtables(pt, 0x200000, 0x201000, 0, 0);  // not zapped first
  EXPECT_EQ(pt.nr_tables.load(), 4u);
  EXPECT_NE(fx.last_warning().find("still has entries"), std::string::npos) << fx.last_warning();
  EXPECT_EQ(check(pt), "");
  zap_range(pt, 0x200000, 0x201000);
  free_pgtables(pt, 0x200000, 0x201000, 0, 0);
  pgd_free(pt);
  free_page(m, p);
}

TEST(PgtableProtect, ReplacesRightsKeepsTheRest) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  Page* p = fx.page();
  const uint64_t pfn = m.page_to_pfn(p);
  fx.map(pt, 0x1000, p, kUserRW | _PAGE_ACCESSED | _PAGE_DIRTY);
  fx.map(pt, 0x2000, p, kUserRO);
  ASSERT_TRUE(pte_set(pt, 0x3000, pfn_pte(m.page_to_pfn(zero_page(m)), kUserRO)));
  EXPECT_EQ(change_protection(pt, 0, 0x10000, _PAGE_USER | _PAGE_NX), 3u);
  EXPECT_EQ(pte_get(pt, 0x1000),
            pfn_pte(pfn, _PAGE_PRESENT | _PAGE_USER | _PAGE_NX | _PAGE_ACCESSED | _PAGE_DIRTY));
  EXPECT_EQ(pte_get(pt, 0x2000), pfn_pte(pfn, kUserRO | _PAGE_NX));
  // Nothing to change: nothing counted.
  EXPECT_EQ(change_protection(pt, 0, 0x10000, _PAGE_USER | _PAGE_NX), 0u);
  // The zero page never becomes writable.
  EXPECT_EQ(change_protection(pt, 0, 0x10000, _PAGE_USER | _PAGE_RW), 3u);
  EXPECT_FALSE(pte_get(pt, 0x3000) & _PAGE_RW);
  EXPECT_TRUE(pte_get(pt, 0x2000) & _PAGE_RW);
  EXPECT_EQ(check(pt), "");
  EXPECT_EQ(zap_range(pt, 0, 0x10000), 2u);
  free_pgtables(pt, 0, 0x10000, 0, 0);
  pgd_free(pt);
  EXPECT_EQ(p->ref_count(), 1);
  free_page(m, p);
}

TEST(PgtableCopy, CowWriteProtectsBothAndCounts) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable parent, child;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), parent));
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), child));
  Page* a = fx.page();
  Page* b = fx.page();
  fx.map(parent, 0x1000, a, kUserRW | _PAGE_ACCESSED | _PAGE_DIRTY);
  fx.map(parent, 0x2000, b, kUserRO);
  const uint64_t zero_pfn = m.page_to_pfn(zero_page(m));
  ASSERT_TRUE(pte_set(parent, 0x3000, pfn_pte(zero_pfn, kUserRO)));
  ASSERT_TRUE(pte_set(parent, 0x4000, pfn_pte(m.page_to_pfn(b), kUserRW | _PAGE_SPECIAL)));
  const int zero_refs = zero_page(m)->ref_count();
  ASSERT_TRUE(copy_range(child, parent, 0, 0x10000, true));
  const pteval_t wp = pfn_pte(m.page_to_pfn(a), kUserRO | _PAGE_ACCESSED | _PAGE_DIRTY);
  EXPECT_EQ(pte_get(parent, 0x1000), wp);
  EXPECT_EQ(pte_get(child, 0x1000), wp & ~_PAGE_ACCESSED);  // pte_mkold, dirty kept
  EXPECT_EQ(pte_get(child, 0x2000), pte_get(parent, 0x2000));
  EXPECT_EQ(pte_get(child, 0x3000), pfn_pte(zero_pfn, kUserRO));
  EXPECT_EQ(pte_get(child, 0x4000), pfn_pte(m.page_to_pfn(b), kUserRO | _PAGE_SPECIAL));
  EXPECT_EQ(a->mapcount.load(), 2);
  EXPECT_EQ(a->ref_count(), 3);
  EXPECT_EQ(b->mapcount.load(), 2);  // the special entry counts nothing
  EXPECT_EQ(b->ref_count(), 3);
  EXPECT_EQ(zero_page(m)->ref_count(), zero_refs);
  EXPECT_EQ(check(parent), "");
  EXPECT_EQ(check(child), "");
  // A shared mapping keeps RW.
  PageTable shared;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), shared));
  ASSERT_TRUE(pte_set(parent, 0x8000, pfn_pte(m.page_to_pfn(a), kUserRW)));
  a->mapcount.fetch_add(1);
  get_page(a);
  ASSERT_TRUE(copy_range(shared, parent, 0x8000, 0x9000, false));
  EXPECT_EQ(pte_get(shared, 0x8000), pfn_pte(m.page_to_pfn(a), kUserRW));
  // Copying onto an entry that exists is refused.
  EXPECT_FALSE(copy_range(shared, parent, 0x8000, 0x9000, false));
  EXPECT_NE(fx.last_warning().find("already maps"), std::string::npos);
  for (PageTable* t : {&parent, &child, &shared}) {
    zap_range(*t, 0, 0x10000);
    free_pgtables(*t, 0, 0x10000, 0, 0);
    pgd_free(*t);
  }
  EXPECT_EQ(a->ref_count(), 1);
  EXPECT_EQ(a->mapcount.load(), 0);
  EXPECT_EQ(b->ref_count(), 1);
  EXPECT_EQ(b->mapcount.load(), 0);
  free_page(m, a);
  free_page(m, b);
  EXPECT_EQ(check(m), "");
}

// Swap entries (present bit clear) reach the caller's callback before they
// are cleared or copied.
TEST(PgtableZap, NonPresentEntriesReachTheCaller) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable parent, child;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), parent));
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), child));
  Page* p = fx.page();
  fx.map(parent, 0x1000, p, kUserRW);
  // x86-64 swap entry layout (type 3, offset 0x42): ~offset << 14 >> 5 | type << 59.
  const pteval_t swp = (~pteval_t{0x42} << 14 >> 5) | (pteval_t{3} << 59);
  ASSERT_FALSE(pte_present(swp));
  ASSERT_TRUE(pte_set(parent, 0x3000, swp));
  std::vector<std::pair<uint64_t, pteval_t>> seen;
  auto record = [&](uint64_t a, pteval_t v) { seen.emplace_back(a, v); };
  ASSERT_TRUE(copy_range(child, parent, 0, 0x10000, true, record));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], std::make_pair(uint64_t{0x3000}, swp));
  EXPECT_EQ(pte_get(child, 0x3000), swp);
  seen.clear();
  EXPECT_EQ(zap_range(child, 0, 0x10000, record), 1u);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], std::make_pair(uint64_t{0x3000}, swp));
  EXPECT_EQ(pte_get(child, 0x3000), 0u);
  seen.clear();
  EXPECT_EQ(zap_range(parent, 0, 0x10000), 1u);  // without a callback: cleared silently
  EXPECT_EQ(pte_get(parent, 0x3000), 0u);
  EXPECT_TRUE(seen.empty());
  for (PageTable* t : {&parent, &child}) {
    free_pgtables(*t, 0, 0x10000, 0, 0);
    EXPECT_EQ(t->nr_tables.load(), 1u);
    pgd_free(*t);
  }
  EXPECT_EQ(p->ref_count(), 1);
  free_page(m, p);
}

TEST(PgtableMove, EntriesMoveWithTheirBits) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  std::vector<Page*> pages;
  for (int i = 0; i < 8; ++i) {
    pages.push_back(fx.page());
    fx.map(pt, 0x7000000 + i * PAGE_SIZE, pages.back(), kUserRW | _PAGE_DIRTY);
  }
  const uint64_t dst = 0x7f0000000000ull;  // another PGD entry
  ASSERT_TRUE(move_range(pt, 0x7000000, dst, 8 * PAGE_SIZE));
  EXPECT_EQ(move_range_done(), 8 * PAGE_SIZE);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(pte_get(pt, 0x7000000 + i * PAGE_SIZE), 0u);
    EXPECT_EQ(pte_get(pt, dst + i * PAGE_SIZE),
              pfn_pte(m.page_to_pfn(pages[i]), kUserRW | _PAGE_DIRTY));
    EXPECT_EQ(pages[i]->mapcount.load(), 1);
  }
  EXPECT_EQ(check(pt), "");
  // Overlapping ranges are refused.
  EXPECT_FALSE(move_range(pt, dst, dst + PAGE_SIZE, 8 * PAGE_SIZE));
  EXPECT_NE(fx.last_warning().find("overlap"), std::string::npos);
  EXPECT_EQ(move_range_done(), 0u);
  EXPECT_EQ(zap_range(pt, dst, dst + 8 * PAGE_SIZE), 8u);
  free_pgtables(pt, 0, 0x0000800000000000ull, 0, 0);
  EXPECT_EQ(pt.nr_tables.load(), 1u);
  pgd_free(pt);
  for (Page* p : pages) free_page(m, p);
}

TEST(PgtableMove, StopsAtAnOccupiedDestination) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  Page* p = fx.page();
  fx.map(pt, 0x1000, p, kUserRO);
  fx.map(pt, 0x2000, p, kUserRO);
  // The destination's first page exists, the second clashes with a mapping.
  fx.map(pt, 0x40000000 + PAGE_SIZE, p, kUserRO);
  EXPECT_FALSE(move_range(pt, 0x1000, 0x40000000, 2 * PAGE_SIZE));
  EXPECT_EQ(move_range_done(), PAGE_SIZE);
  EXPECT_NE(pte_get(pt, 0x40000000), 0u);
  EXPECT_NE(pte_get(pt, 0x2000), 0u);
  EXPECT_EQ(check(pt), "");
  EXPECT_EQ(zap_range(pt, 0, 0x0000800000000000ull), 3u);
  free_pgtables(pt, 0, 0x0000800000000000ull, 0, 0);
  pgd_free(pt);
  free_page(m, p);
}

// fail_page_alloc for every order-0 request from here on.
void fail_all_allocations(Machine& m) {
  m.fail_page_alloc_cfg.min_order = 0;
  m.fail_page_alloc_cfg.ignore_gfp_wait = false;
  m.fail_page_alloc.configure(FaultConfig{.probability = 100, .interval = 1, .times = -1});
}

TEST(PgtableNoMemory, TableAllocationFailuresAreReported) {
  Fixture fx;
  Machine& m = *fx.m;
  const uint64_t free0 = fx.free_pages();
  PageTable parent, child;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), parent));
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), child));
  Page* p = fx.page();
  fx.map(parent, 0x200000, p, kUserRW);                              // PTE table 1
  fx.map(parent, 0x200000 + PAGE_SIZE, p, kUserRW);                  // PTE table 1
  fx.map(parent, 0x400000, p, kUserRW);                              // PTE table 2
  ASSERT_TRUE(copy_range(child, parent, 0x200000, 0x201000, true));  // child has table 1
  fail_all_allocations(m);
  EXPECT_FALSE(pte_set(parent, 0x7f0000000000ull, pfn_pte(m.page_to_pfn(p), kUserRO)));
  PageTable more;
  EXPECT_FALSE(pgd_alloc(m, paging_mode(m), more));
  // copy_range copies what fits in the tables the child has, then stops.
  EXPECT_FALSE(copy_range(child, parent, 0x201000, 0x600000, true));
  EXPECT_NE(pte_get(child, 0x201000), 0u);
  EXPECT_EQ(pte_get(child, 0x400000), 0u);
  EXPECT_EQ(p->mapcount.load(), 3 + 2);
  EXPECT_EQ(check(parent), "");
  EXPECT_EQ(check(child), "");
  // move_range stops at the first entry whose destination table is missing.
  EXPECT_FALSE(move_range(parent, 0x400000, 0x40000000, PAGE_SIZE));
  EXPECT_EQ(move_range_done(), 0u);
  EXPECT_NE(pte_get(parent, 0x400000), 0u);
  m.fail_page_alloc.configure(FaultConfig{});
  // The caller unwinds with zap_range + free_pgtables.
  for (PageTable* t : {&parent, &child}) {
    zap_range(*t, 0, 0x0000800000000000ull);
    free_pgtables(*t, 0, 0x0000800000000000ull, 0, 0);
    EXPECT_EQ(t->nr_tables.load(), 1u);
    pgd_free(*t);
  }
  EXPECT_EQ(p->mapcount.load(), 0);
  EXPECT_EQ(p->ref_count(), 1);
  free_page(m, p);
  EXPECT_EQ(fx.free_pages(), free0);
}

TEST(PgtableBadInput, RefusedWithAReason) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable pt;
  // A tree of another mode than the machine's.
  EXPECT_FALSE(pgd_alloc(m, PagingMode::kX86_64_5Level, pt));
  EXPECT_NE(fx.last_warning().find("5-level paging requested on a machine with 4-level"),
            std::string::npos)
      << fx.last_warning();
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  EXPECT_FALSE(pgd_alloc(m, paging_mode(m), pt));
  EXPECT_NE(fx.last_warning().find("already has a top-level table"), std::string::npos);
  Page* p = fx.page();
  const pteval_t val = pfn_pte(m.page_to_pfn(p), kUserRW);
  EXPECT_FALSE(pte_set(pt, 0x0000800000000000ull, val));
  EXPECT_EQ(fx.last_warning(),
            "WARNING: pte_set: address 0x800000000000 is not canonical (4-level paging)\n");
  EXPECT_FALSE(pte_set(pt, 0x1000, pfn_pte(m.max_pfn() + 5, kUserRW)));
  EXPECT_NE(fx.last_warning().find("is not a RAM page"), std::string::npos);
  EXPECT_EQ(zap_range(pt, 0x2000, 0x1000), 0u);
  EXPECT_EQ(fx.last_warning(), "WARNING: zap_range: start 0x2000 > end 0x1000\n");
  EXPECT_EQ(change_protection(pt, 0x1001, 0x3000, 0), 0u);
  EXPECT_EQ(fx.last_warning(),
            "WARNING: change_protection: range [0x1001, 0x3000) is not page aligned\n");
  EXPECT_EQ(pgtable_range_error(pt, 0x1000, 0x0000900000000000ull),
            "end 0x900000000000 is not canonical (nor the end of the lower half)");
  EXPECT_EQ(pgtable_range_error(pt, 0x0000900000000000ull, 0x0000a00000000000ull),
            "start 0x900000000000 is not canonical");
  EXPECT_EQ(pgtable_range_error(pt, 0x1000, 0),
            "range [0x1000, 0x0) reaches the kernel half, shared with the kernel's tree");
  EXPECT_EQ(pgtable_range_error(pt, 0, 0x0000800000000000ull), "");
  EXPECT_EQ(pgtable_range_error(kernel_page_table(m), VMALLOC_START_L4, 0), "");
  free_pgtables(pt, 0x200000, 0x400000, 0x300000, 0);
  EXPECT_EQ(fx.last_warning(),
            "WARNING: free_pgtables: [0x200000, 0x400000) is not inside floor 0x300000 and "
            "ceiling 0x0\n");
  PageTable other;
  EXPECT_FALSE(copy_range(pt, pt, 0, 0x1000, true));
  EXPECT_NE(fx.last_warning().find("another tree"), std::string::npos);
  EXPECT_FALSE(move_range(pt, 0x1000, 0x0000800000000000ull, PAGE_SIZE));
  EXPECT_NE(fx.last_warning().find("not canonical"), std::string::npos);
  pgd_free(kernel_page_table(m));
  EXPECT_EQ(fx.last_warning(), "WARNING: pgd_free: the kernel's tree is never freed\n");
  EXPECT_EQ(pte_set(other, 0x1000, val), false);  // never allocated: nothing to set
  EXPECT_EQ(check(other), "the tree has no top-level table");
  EXPECT_EQ(check(pt), "");
  pgd_free(pt);
  free_page(m, p);
}

TEST(PgtableBadInput, I386EntryWidth) {
  Fixture fx(Arch::i386);
  Machine& m = *fx.m;
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, PagingMode::kI386, pt));
  EXPECT_FALSE(pte_set(pt, 0x100000000ull, 0));
  EXPECT_NE(fx.last_warning().find("not canonical (i386 paging)"), std::string::npos);
  EXPECT_FALSE(pte_set(pt, 0x1000, pfn_pte(uint64_t{1} << 21, kUserRW)));
  EXPECT_NE(fx.last_warning().find("does not fit the 32-bit format"), std::string::npos)
      << fx.last_warning();
  EXPECT_FALSE(pte_set(pt, 0xc0001000ull, pfn_pte(1, kUserRW)));
  EXPECT_NE(fx.last_warning().find("kernel half"), std::string::npos);
  pgd_free(pt);
}

TEST(PgtableBadInput, CheckFindsCorruption) {
  Fixture fx;
  Machine& m = *fx.m;
  PageTable pt;
  ASSERT_TRUE(pgd_alloc(m, paging_mode(m), pt));
  Page* p = fx.page();
  ASSERT_TRUE(pte_set(pt, 0x1000, pfn_pte(m.page_to_pfn(p), kUserRW)));
  // Mapped but its mapcount was never raised.
  EXPECT_NE(check(pt).find("mapcount is 0"), std::string::npos) << check(pt);
  p->mapcount.fetch_add(1);
  EXPECT_EQ(check(pt), "");
  pt.nr_tables.fetch_add(1);
  EXPECT_EQ(check(pt), "nr_tables is 5 but 4 tables are reachable");
  pt.nr_tables.fetch_sub(1);
  ASSERT_TRUE(pte_set(pt, 0x2000, pfn_pte(m.page_to_pfn(zero_page(m)), kUserRW)));
  EXPECT_NE(check(pt).find("zero page is mapped writable"), std::string::npos);
  pte_clear(pt, 0x2000);
  get_page(p);
  zap_range(pt, 0, 0x10000);
  free_pgtables(pt, 0, 0x10000, 0, 0);
  pgd_free(pt);
  free_page(m, p);
}

// --- A seeded random sequence against a model ---------------------------------

struct Model {
  std::map<uint64_t, pteval_t> entries;  // present entries by address
};

class RandomSequence {
 public:
  RandomSequence(Fixture& fx, uint32_t seed) : fx_(fx), m_(*fx.m), rng_(seed) {
    switch (paging_mode(m_)) {
      case PagingMode::kX86_64_4Level:
        top_ = 0x0000800000000000ull;
        bases_ = {0x400000, 0x7f0000000000ull, 0x40000000, 0x1ff000};
        break;
      case PagingMode::kX86_64_5Level:
        top_ = 0x0100000000000000ull;
        bases_ = {0x400000, 0x00ff000000000000ull, 0x0000ff8000000000ull, 0x1ff000};
        break;
      case PagingMode::kI386:  // 4 MiB per PTE table
        top_ = 0xc0000000ull;
        bases_ = {0x08048000, 0xbf800000ull, 0x40000000, 0x3ff000};
        break;
    }
  }

  void run(int steps) {
    for (auto* t : {&a_, &b_}) ASSERT_TRUE(pgd_alloc(m_, paging_mode(m_), *t));
    for (int i = 0; i < 64; ++i) pool_.push_back(fx_.page());
    for (int step = 0; step < steps; ++step) {
      const unsigned op = rng_() % 7;
      do_op(op);
      ASSERT_NO_FATAL_FAILURE(verify(step, op));
    }
    for (auto* t : {&a_, &b_}) {
      zap_range(*t, 0, top_);
      free_pgtables(*t, 0, top_, 0, 0);
      EXPECT_EQ(t->nr_tables.load(), 1u);
      pgd_free(*t);
    }
    for (Page* p : pool_) {
      EXPECT_EQ(p->ref_count(), 1);
      EXPECT_EQ(p->mapcount.load(), 0);
      p->clear(PG_dirty);
      free_page(m_, p);
    }
  }

 private:
  // Addresses in a few clusters so that tables are shared, emptied and freed.
  uint64_t addr() { return bases_[rng_() % 4] + (rng_() % 1024) * PAGE_SIZE; }
  void range(uint64_t* s, uint64_t* e) {
    *s = addr();
    *e = *s + (1 + rng_() % 600) * PAGE_SIZE;
  }
  pteval_t prot() {
    pteval_t p = _PAGE_PRESENT | _PAGE_USER;
    if (rng_() % 2) p |= _PAGE_RW;
    if (rng_() % 3 == 0) p |= _PAGE_DIRTY;
    if (rng_() % 4 == 0 && paging_mode(m_) != PagingMode::kI386) p |= _PAGE_NX;
    return p;
  }
  PageTable& tree(Model** model) {
    const bool use_b = rng_() % 3 == 0;
    *model = use_b ? &mb_ : &ma_;
    return use_b ? b_ : a_;
  }
  void drop_model(Model& md, uint64_t s, uint64_t e) {
    md.entries.erase(md.entries.lower_bound(s), md.entries.lower_bound(e));
  }
  uint64_t model_count_normal(const Model& md, uint64_t s, uint64_t e) const {
    uint64_t n = 0;
    const uint64_t zero = m_.page_to_pfn(zero_page(m_));
    for (auto it = md.entries.lower_bound(s); it != md.entries.end() && it->first < e; ++it)
      if (pte_pfn(it->second) != zero) ++n;
    return n;
  }

  void do_op(unsigned op) {
    Model* md;
    PageTable& pt = tree(&md);
    uint64_t s, e;
    switch (op) {
      case 0:
      case 1: {  // map a page (or the zero page), as a fault would
        const uint64_t a = addr();
        if (md->entries.count(a)) return;
        if (rng_() % 5 == 0) {
          const pteval_t v = pfn_pte(m_.page_to_pfn(zero_page(m_)), _PAGE_PRESENT | _PAGE_USER);
          ASSERT_TRUE(pte_set(pt, a, v));
          md->entries[a] = v;
        } else {
          Page* p = pool_[rng_() % pool_.size()];
          const pteval_t v = pfn_pte(m_.page_to_pfn(p), prot());
          ASSERT_TRUE(pte_set(pt, a, v));
          p->mapcount.fetch_add(1);
          get_page(p);
          md->entries[a] = v;
        }
        return;
      }
      case 2:  // munmap
        range(&s, &e);
        EXPECT_EQ(zap_range(pt, s, e), model_count_normal(*md, s, e));
        drop_model(*md, s, e);
        return;
      case 3:  // munmap and free the tables, with the neighbours as floor/ceiling
        range(&s, &e);
        zap_range(pt, s, e);
        drop_model(*md, s, e);
        {
          auto lo = md->entries.lower_bound(s);
          const uint64_t floor = lo == md->entries.begin() ? 0 : std::prev(lo)->first + PAGE_SIZE;
          const uint64_t ceiling = lo == md->entries.end() ? 0 : lo->first;
          free_pgtables(pt, s, e, floor, ceiling);
        }
        return;
      case 4: {  // mprotect
        range(&s, &e);
        const pteval_t np = prot() & (_PAGE_RW | _PAGE_USER | _PAGE_NX);
        uint64_t expect = 0;
        const uint64_t zero = m_.page_to_pfn(zero_page(m_));
        for (auto it = md->entries.lower_bound(s); it != md->entries.end() && it->first < e; ++it) {
          pteval_t nv = (it->second & ~(_PAGE_RW | _PAGE_USER | _PAGE_NX)) | np;
          if (pte_pfn(nv) == zero) nv &= ~_PAGE_RW;
          if (nv != it->second) ++expect;
          it->second = nv;
        }
        EXPECT_EQ(change_protection(pt, s, e, np), expect);
        return;
      }
      case 5: {  // fork a range of a into b (b's range emptied first)
        range(&s, &e);
        zap_range(b_, s, e);
        drop_model(mb_, s, e);
        const bool cow = rng_() % 2;
        ASSERT_TRUE(copy_range(b_, a_, s, e, cow));
        for (auto it = ma_.entries.lower_bound(s); it != ma_.entries.end() && it->first < e; ++it) {
          if (cow) it->second &= ~_PAGE_RW;
          mb_.entries[it->first] = it->second & ~_PAGE_ACCESSED;
        }
        return;
      }
      case 6: {  // mremap within a, onto an emptied destination
        range(&s, &e);
        const uint64_t len = e - s;
        uint64_t d = addr();
        if (d < e && s < d + len) return;
        zap_range(a_, d, d + len);
        drop_model(ma_, d, d + len);
        ASSERT_TRUE(move_range(a_, s, d, len));
        std::map<uint64_t, pteval_t> moved;
        for (auto it = ma_.entries.lower_bound(s); it != ma_.entries.end() && it->first < e; ++it)
          moved[it->first - s + d] = it->second;
        drop_model(ma_, s, e);
        ma_.entries.insert(moved.begin(), moved.end());
        return;
      }
    }
  }

  void verify(int step, unsigned op) {
    for (auto [t, md] : {std::pair{&a_, &ma_}, std::pair{&b_, &mb_}}) {
      ASSERT_EQ(check(*t), "") << "step " << step << " op " << op;
      std::map<uint64_t, pteval_t> seen;
      walk_range(*t, 0, top_, [&](uint64_t a, pteval_t v) { seen[a] = v; });
      ASSERT_EQ(seen, md->entries) << "step " << step << " op " << op;
    }
    ASSERT_TRUE(fx_.warnings.empty()) << fx_.warnings.front();
  }

  Fixture& fx_;
  Machine& m_;
  std::mt19937 rng_;
  uint64_t top_ = 0;
  std::array<uint64_t, 4> bases_{};
  PageTable a_, b_;
  Model ma_, mb_;
  std::vector<Page*> pool_;
};

void run_model_sequence(Arch arch, unsigned levels) {
  for (uint32_t seed : {1u, 2u, 3u, 20261122u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Fixture fx(arch, levels);
    const uint64_t free0 = fx.free_pages();
    const int64_t tables0 = fx.pagetables();
    RandomSequence(fx, seed).run(1500);
    EXPECT_EQ(fx.pagetables(), tables0);
    EXPECT_EQ(fx.free_pages(), free0);
    EXPECT_EQ(check(*fx.m), "");
  }
}

TEST(PgtableRandom, ModelSequence4Level) {
  run_model_sequence(Arch::x86_64, 4);
}
TEST(PgtableRandom, ModelSequence5Level) {
  run_model_sequence(Arch::x86_64, 5);
}
TEST(PgtableRandom, ModelSequenceI386) {
  run_model_sequence(Arch::i386, 2);
}

}  // namespace
}  // namespace mmkit
