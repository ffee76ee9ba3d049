// The anonymous-page mark (PAGE_MAPPING_ANON in page->mapping) and the
// NR_ANON_PAGES moves zap_range makes where an anonymous page's last mapping
// goes: demand-zero and COW pages are marked, shared anonymous and zero
// pages are not, and fork, partial unmaps, COW and exit move the count by
// exactly the pages whose last mapping went, across nodes.
#include <gtest/gtest.h>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/mmu.h"
#include "vm/process.h"
#include "vm/rmap.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

std::unique_ptr<Machine> two_nodes() {
  MachineConfig c = test::one_node(32);
  c.nodes.push_back(NodeConfig{.memory = 32ull << 20});
  return test::boot_or_fail(c);
}

Page* page_at(Machine& m, MmStruct* mm, uint64_t addr) {
  const pteval_t v = pte_get(mm->pgd, addr);
  return pte_present(v) ? m.pfn_to_page(pte_pfn(v)) : nullptr;
}

int64_t anon_pages(Machine& m) {
  return m.node_stat_sum(NodeStat::NR_ANON_PAGES);
}

TEST(VmAnonRmap, DemandZeroPagesAreMarkedAndUnmarkedAtUnmap) {
  auto m = two_nodes();
  MmStruct* mm = mm_alloc(*m);
  const int64_t a = do_mmap(mm, 0, 4 * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  ASSERT_TRUE(access_touch(mm, a, 3 * kPage, Access::kWrite).ok());
  ASSERT_TRUE(access_touch(mm, a + 3 * kPage, 1, Access::kRead).ok());  // the zero page
  for (int i = 0; i < 3; ++i) {
    Page* p = page_at(*m, mm, a + i * kPage);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(PageAnon(p));
    EXPECT_EQ(p->mapcount.load(), 1);
  }
  EXPECT_FALSE(PageAnon(zero_page(*m)));
  EXPECT_EQ(anon_pages(*m), 3);
  // A partial unmap moves the count by the pages it dropped, no more.
  Page* first = page_at(*m, mm, a);
  get_page(first);  // keep the descriptor ours to look at after the unmap
  ASSERT_EQ(do_munmap(mm, a, kPage), 0);
  EXPECT_FALSE(PageAnon(first));
  EXPECT_EQ(first->mapping, nullptr);
  EXPECT_EQ(first->mapcount.load(), 0);
  put_page(*m, first);
  EXPECT_EQ(anon_pages(*m), 2);
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 2u);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
  EXPECT_EQ(anon_pages(*m), 0);
}

// folio_referenced clears the young bit without a flush, as x86 does: the
// CPU that caches the translation hides the next use until the flush the
// caller makes at the end of its batch (flush_tlb_cpus of young_cpus);
// after it, the next use walks the tables and sets the bit again.
TEST(VmAnonRmap, ClearedYoungBitsHideUsesUntilTheBatchFlush) {
  auto m = two_nodes();
  auto cpu = CpuScope::bind(*m, 0);
  ASSERT_TRUE(cpu.ok());
  MmStruct* mm = mm_alloc(*m);
  const int64_t a = do_mmap(mm, 0, kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  ASSERT_TRUE(access_touch(mm, a, kPage, Access::kWrite).ok());
  Page* p = page_at(*m, mm, a);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(pte_get(mm->pgd, a) & _PAGE_ACCESSED);
  const RmapResult r = folio_referenced(*m, p);
  EXPECT_EQ(r.done, 1u);
  EXPECT_EQ(r.young_cpus, 1u);  // cpu 0 has run the mm
  EXPECT_FALSE(pte_get(mm->pgd, a) & _PAGE_ACCESSED);
  ASSERT_TRUE(access_touch(mm, a, 8, Access::kRead).ok());
  EXPECT_FALSE(pte_get(mm->pgd, a) & _PAGE_ACCESSED);  // a TLB hit
  EXPECT_EQ(folio_referenced(*m, p).done, 0u);
  flush_tlb_cpus(*m, r.young_cpus);
  ASSERT_TRUE(access_touch(mm, a, 8, Access::kRead).ok());
  EXPECT_TRUE(pte_get(mm->pgd, a) & _PAGE_ACCESSED);  // walked again
  EXPECT_EQ(folio_referenced(*m, p).done, 1u);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmAnonRmap, SharedAnonymousPagesAreNotAnon) {
  auto m = two_nodes();
  MmStruct* mm = mm_alloc(*m);
  const int64_t a = do_mmap(mm, 0, 2 * kPage, kRW, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_GT(a, 0);
  ASSERT_TRUE(access_touch(mm, a, 2 * kPage, Access::kWrite).ok());
  Page* p = page_at(*m, mm, a);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(PageAnon(p));
  EXPECT_EQ(anon_pages(*m), 0);
  EXPECT_EQ(mm->get_mm_counter(MM_SHMEMPAGES), 2u);
  ASSERT_EQ(do_munmap(mm, a, 2 * kPage), 0);
  EXPECT_EQ(anon_pages(*m), 0);
  EXPECT_EQ(mm->get_mm_counter(MM_SHMEMPAGES), 0u);
  mmput(mm);
}

TEST(VmAnonRmap, ForkCowAndExitMoveTheCountOncePerPage) {
  auto m = two_nodes();
  Process* parent = nullptr;
  ASSERT_EQ(spawn(*m, "p", &parent), 0);
  constexpr uint64_t kPages = 16;
  const int64_t a = do_mmap(parent->mm, 0, kPages * kPage, kRW, kAnon | MAP_POPULATE);
  ASSERT_GT(a, 0);
  const int64_t base = anon_pages(*m);  // the stack's pages, if any
  ASSERT_GE(base, static_cast<int64_t>(kPages));
  Process* child = nullptr;
  ASSERT_EQ(fork_process(parent, &child), 0);
  // Shared pages count once however many map them.
  EXPECT_EQ(anon_pages(*m), base);
  EXPECT_EQ(page_at(*m, parent->mm, a)->mapcount.load(), 2);
  EXPECT_TRUE(PageAnon(page_at(*m, child->mm, a)));
  // The child's COW copy is a new anonymous page; the old one stays marked
  // (the parent still maps it).
  ASSERT_TRUE(access_write(child->mm, a, "c", 1).ok());
  Page* copy = page_at(*m, child->mm, a);
  Page* orig = page_at(*m, parent->mm, a);
  ASSERT_NE(copy, orig);
  EXPECT_TRUE(PageAnon(copy));
  EXPECT_TRUE(PageAnon(orig));
  EXPECT_EQ(orig->mapcount.load(), 1);
  EXPECT_EQ(anon_pages(*m), base + 1);
  // The parent unmapping half: those pages stay mapped by the child.
  ASSERT_EQ(do_munmap(parent->mm, a, kPages / 2 * kPage), 0);
  EXPECT_EQ(anon_pages(*m), base);  // only the page the child copied went
  EXPECT_EQ(check(parent->mm), "");
  EXPECT_EQ(check(child->mm), "");
  // The child's exit drops the last mapping of the unmapped half (its copy
  // of the first page included).
  exit_process(child);
  EXPECT_EQ(anon_pages(*m), base - static_cast<int64_t>(kPages / 2));
  EXPECT_EQ(check(parent->mm), "");
  exit_process(parent);
  EXPECT_EQ(anon_pages(*m), 0);
}

TEST(VmAnonRmap, CowOfTheLastMappingUnmarksTheOldPage) {
  auto m = two_nodes();
  Process* parent = nullptr;
  ASSERT_EQ(spawn(*m, "p", &parent), 0);
  const int64_t a = do_mmap(parent->mm, 0, kPage, kRW, kAnon | MAP_POPULATE);
  ASSERT_GT(a, 0);
  Process* child = nullptr;
  ASSERT_EQ(fork_process(parent, &child), 0);
  Page* orig = page_at(*m, parent->mm, a);
  get_page(orig);  // ours, to look at after both mappings went
  const int64_t before = anon_pages(*m);
  ASSERT_TRUE(access_write(child->mm, a, "c", 1).ok());   // copies
  ASSERT_TRUE(access_write(parent->mm, a, "p", 1).ok());  // not exclusive: our ref
  EXPECT_EQ(orig->mapcount.load(), 0);
  EXPECT_FALSE(PageAnon(orig));
  EXPECT_EQ(anon_pages(*m), before + 1);  // two copies replace one page
  put_page(*m, orig);
  exit_process(child);
  exit_process(parent);
  EXPECT_EQ(anon_pages(*m), 0);
}

TEST(VmAnonRmap, RemovingAnUnmappedPageIsReported) {
  auto m = two_nodes();
  std::string warnings;
  m->warn_sink = [&](const std::string& s) { warnings += s; };
  Page* p = alloc_page(*m, GFP_HIGHUSER_MOVABLE);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(page_remove_rmap(*m, p));  // mapcount 0: a bad page map
  EXPECT_NE(warnings.find("Bad page map"), std::string::npos);
  p->mapcount.store(0);
  free_page(*m, p);
}

}  // namespace
}  // namespace mmkit
