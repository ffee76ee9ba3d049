// Page faults: the zero page on read, demand-zero on write, COW after fork
// (copy while shared, reuse when exclusive), the SIGSEGV reasons, shared
// anonymous memory across fork, and the counters each path moves.
#include <gtest/gtest.h>

#include <cstring>

#include "page_alloc/page_alloc.h"
#include "slab/slab.h"
#include "vm/mm.h"
#include "vm/mmu.h"
#include "vm/process.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

std::unique_ptr<Machine> small() {
  return test::boot_or_fail(test::one_node(64));
}

uint64_t pfn_at(MmStruct* mm, uint64_t addr) {
  return pte_pfn(pte_get(mm->pgd, addr));
}

int64_t anon_pages(Machine& m) {
  return m.node_stat_sum(NodeStat::NR_ANON_PAGES);
}

TEST(VmFault, ReadMapsTheZeroPageWriteAllocates) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  const int64_t a = do_mmap(mm, 0, 2 * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  const int64_t faults = m->sum_event(VmEvent::PGFAULT);
  char buf[16] = {1};
  ASSERT_TRUE(access_read(mm, a, buf, sizeof buf).ok());
  EXPECT_EQ(buf[0], 0);
  const pteval_t zero = pte_get(mm->pgd, a);
  EXPECT_EQ(pte_pfn(zero), m->page_to_pfn(zero_page(*m)));
  EXPECT_FALSE(pte_write(zero));
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 0u);
  EXPECT_EQ(m->sum_event(VmEvent::PGFAULT), faults + 1);
  // Writing replaces the zero page with a zeroed page of its own.
  ASSERT_TRUE(access_write(mm, a + 8, "hi", 2).ok());
  const pteval_t own = pte_get(mm->pgd, a);
  EXPECT_NE(pte_pfn(own), m->page_to_pfn(zero_page(*m)));
  EXPECT_TRUE(pte_write(own) && (own & _PAGE_DIRTY));
  ASSERT_TRUE(access_read(mm, a, buf, sizeof buf).ok());
  EXPECT_EQ(std::memcmp(buf, "\0\0\0\0\0\0\0\0hi\0\0\0\0\0\0", 16), 0);
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 1u);
  EXPECT_EQ(anon_pages(*m), 1);
  // Demand-zero write on the second page: one fault, one page.
  ASSERT_TRUE(access_touch(mm, a + kPage, 1, Access::kWrite).ok());
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 2u);
  EXPECT_EQ(mm->min_flt.load(), 3u);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
  EXPECT_EQ(anon_pages(*m), 0);
}

// update_mmu_cache(): the access a demand-zero fault interrupted hits the
// TLB the fault preloaded; a later change of the entry is still seen.
TEST(VmFault, FaultPreloadsTheTlb) {
  auto m = small();
  auto cpu = CpuScope::bind(*m, 0);
  ASSERT_TRUE(cpu.ok());
  MmStruct* mm = mm_alloc(*m);
  const int64_t a = do_mmap(mm, 0, 2 * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  const uint64_t misses = tlb_stats(*m, 0).misses;
  ASSERT_TRUE(access_write(mm, a, "x", 1).ok());
  EXPECT_EQ(tlb_stats(*m, 0).misses, misses + 1);  // the fault's walk, not the retry's
  char c = 0;
  ASSERT_TRUE(access_read(mm, a, &c, 1).ok());
  EXPECT_EQ(c, 'x');
  EXPECT_EQ(tlb_stats(*m, 0).misses, misses + 1);
  // The preloaded entry goes with the page: after munmap the address faults.
  ASSERT_EQ(do_munmap(mm, a, kPage), 0);
  FaultResult f;
  EXPECT_EQ(user_page_begin(mm, a, Access::kRead, &f), nullptr);
  EXPECT_EQ(f.status, FaultStatus::kSigsegv);
  // A read fault maps the zero page read-only: the preload must not let a
  // write through.
  ASSERT_TRUE(access_read(mm, a + kPage, &c, 1).ok());
  ASSERT_TRUE(access_write(mm, a + kPage, "y", 1).ok());
  EXPECT_NE(pte_pfn(pte_get(mm->pgd, a + kPage)), m->page_to_pfn(zero_page(*m)));
  EXPECT_EQ(*static_cast<char*>(m->page_address(zero_page(*m))), 0);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmFault, SegvReasons) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  ASSERT_EQ(do_mmap(mm, 0x30000000, kPage, PROT_READ, kAnon | MAP_FIXED), 0x30000000);
  FaultResult f = handle_mm_fault(mm, 0x20000000, Access::kRead);
  EXPECT_EQ(f.status, FaultStatus::kSigsegv);
  EXPECT_EQ(f.si_code, SEGV_MAPERR);
  EXPECT_EQ(f.addr, 0x20000000u);
  f = handle_mm_fault(mm, 0x30000010, Access::kWrite);
  EXPECT_EQ(f.si_code, SEGV_ACCERR);
  EXPECT_EQ(f.addr, 0x30000010u);
  EXPECT_STRNE(f.reason, "");
  f = handle_mm_fault(mm, 0x30000000, Access::kExec);
  EXPECT_EQ(f.si_code, SEGV_ACCERR);
  f = handle_mm_fault(mm, mm->layout.task_size + 5, Access::kRead);
  EXPECT_EQ(f.si_code, SEGV_MAPERR);
  // A failed write copies nothing and reports the first unreachable byte.
  ASSERT_EQ(do_mmap(mm, 0x30001000, kPage, kRW, kAnon | MAP_FIXED), 0x30001000);
  char big[2 * kPage] = {};
  f = access_write(mm, 0x30001800, big, sizeof big);
  EXPECT_EQ(f.si_code, SEGV_MAPERR);
  EXPECT_EQ(f.addr, 0x30002000u);
  // No memory touched by SIGSEGVs: nothing but the one page just written.
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 1u);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmFault, CowCopiesWhileSharedReusesWhenExclusive) {
  auto m = small();
  Process* parent = nullptr;
  ASSERT_EQ(spawn(*m, "parent", &parent), 0);
  const int64_t a = do_mmap(parent->mm, 0, 2 * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  ASSERT_TRUE(access_write(parent->mm, a, "parent", 7).ok());
  ASSERT_TRUE(access_write(parent->mm, a + kPage, "second", 7).ok());
  const uint64_t pfn0 = pfn_at(parent->mm, a);
  Process* child = nullptr;
  ASSERT_EQ(fork_process(parent, &child), 0);
  EXPECT_EQ(child->ppid, parent->pid);
  // Both map the same frames, write-protected, mapcount 2.
  EXPECT_EQ(pfn_at(child->mm, a), pfn0);
  EXPECT_FALSE(pte_write(pte_get(parent->mm->pgd, a)));
  EXPECT_EQ(m->pfn_to_page(pfn0)->mapcount.load(), 2);
  EXPECT_EQ(child->mm->get_mm_counter(MM_ANONPAGES), 2u);
  EXPECT_EQ(anon_pages(*m), 2);
  EXPECT_EQ(check(parent->mm), "");
  // The child writes: it gets a copy; the parent keeps its data.
  ASSERT_TRUE(access_write(child->mm, a, "child", 6).ok());
  EXPECT_NE(pfn_at(child->mm, a), pfn0);
  char buf[8];
  ASSERT_TRUE(access_read(parent->mm, a, buf, 7).ok());
  EXPECT_STREQ(buf, "parent");
  ASSERT_TRUE(access_read(child->mm, a, buf, 6).ok());
  EXPECT_STREQ(buf, "child");
  EXPECT_EQ(m->pfn_to_page(pfn0)->mapcount.load(), 1);
  EXPECT_EQ(anon_pages(*m), 3);
  // The parent writes its now-exclusive page: reused in place.
  const int64_t reuse = m->sum_event(VmEvent::PGREUSE);
  ASSERT_TRUE(access_write(parent->mm, a, "P", 1).ok());
  EXPECT_EQ(pfn_at(parent->mm, a), pfn0);
  EXPECT_EQ(m->sum_event(VmEvent::PGREUSE), reuse + 1);
  // The second page is still shared; the child's read sees the old data.
  ASSERT_TRUE(access_read(child->mm, a + kPage, buf, 7).ok());
  EXPECT_STREQ(buf, "second");
  EXPECT_EQ(check(parent->mm), "");
  EXPECT_EQ(check(child->mm), "");
  exit_process(child);
  EXPECT_EQ(m->pfn_to_page(pfn_at(parent->mm, a + kPage))->mapcount.load(), 1);
  EXPECT_EQ(anon_pages(*m), 2);
  EXPECT_EQ(check(parent->mm), "");
  exit_process(parent);
  EXPECT_EQ(anon_pages(*m), 0);
}

TEST(VmFault, SharedAnonymousIsSharedAcrossFork) {
  auto m = small();
  Process* parent = nullptr;
  ASSERT_EQ(spawn(*m, "parent", &parent), 0);
  const int64_t a = do_mmap(parent->mm, 0, 2 * kPage, kRW, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_GT(a, 0);
  ASSERT_TRUE(access_write(parent->mm, a, "one", 4).ok());
  Process* child = nullptr;
  ASSERT_EQ(fork_process(parent, &child), 0);
  // Written by the child after fork, on a page nobody had touched: the
  // parent sees it, as both map the same shmem object.
  ASSERT_TRUE(access_write(child->mm, a + kPage, "two", 4).ok());
  char buf[4];
  ASSERT_TRUE(access_read(parent->mm, a + kPage, buf, 4).ok());
  EXPECT_STREQ(buf, "two");
  ASSERT_TRUE(access_write(parent->mm, a, "uno", 4).ok());
  ASSERT_TRUE(access_read(child->mm, a, buf, 4).ok());
  EXPECT_STREQ(buf, "uno");
  EXPECT_EQ(pfn_at(parent->mm, a), pfn_at(child->mm, a));
  EXPECT_EQ(child->mm->get_mm_counter(MM_SHMEMPAGES), 2u);
  EXPECT_EQ(check(parent->mm), "");
  EXPECT_EQ(check(child->mm), "");
  exit_process(parent);
  ASSERT_TRUE(access_read(child->mm, a, buf, 4).ok());
  EXPECT_STREQ(buf, "uno");
  exit_process(child);
}

TEST(VmFault, I386HighMemoryPagesFaultAndCopy) {
  MachineConfig c;
  c.arch = Arch::i386;
  c.cpus = 1;
  c.nodes = {NodeConfig{.memory = 1200ull << 20}};  // HIGHMEM above 896 MiB
  auto booted = boot(c);
  ASSERT_TRUE(booted.ok());
  Machine& m = **booted;
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "high", &p), 0);
  const int64_t a = do_mmap(p->mm, 0, kPage, kRW, kAnon);
  ASSERT_TRUE(access_write(p->mm, a, "high", 5).ok());
  // GFP_HIGHUSER_MOVABLE takes the highest zone first: the page has no
  // direct-map address and is reached through the machine's window.
  Page* page = m.pfn_to_page(pfn_at(p->mm, a));
  EXPECT_EQ(m.page_zone(page)->kind, ZoneKind::HIGHMEM);
  EXPECT_EQ(m.page_address(page), nullptr);
  Process* child = nullptr;
  ASSERT_EQ(fork_process(p, &child), 0);
  ASSERT_TRUE(access_write(child->mm, a, "kid", 4).ok());
  char buf[5];
  ASSERT_TRUE(access_read(p->mm, a, buf, 5).ok());
  EXPECT_STREQ(buf, "high");
  ASSERT_TRUE(access_read(child->mm, a, buf, 4).ok());
  EXPECT_STREQ(buf, "kid");
  EXPECT_EQ(check(child->mm), "");
  exit_process(child);
  exit_process(p);
}

TEST(VmFault, NothingLeaksAfterExit) {
  auto m = small();
  Process* warm = nullptr;  // creates the zero page and the VMA cache
  ASSERT_EQ(spawn(*m, "warm", &warm), 0);
  exit_process(warm);
  for (KmemCache* s : slab_caches(*m)) kmem_cache_shrink(s);
  drain_all_pages(*m);
  const uint64_t free0 = nr_free_pages(*m);
  const int64_t tables0 = m->node_stat_sum(NodeStat::NR_PAGETABLE);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const int64_t a = do_mmap(p->mm, 0, 64 * kPage, kRW, kAnon);
  ASSERT_TRUE(access_touch(p->mm, a, 64 * kPage, Access::kWrite).ok());
  Process* c = nullptr;
  ASSERT_EQ(fork_process(p, &c), 0);
  ASSERT_TRUE(access_touch(c->mm, a, 32 * kPage, Access::kWrite).ok());
  EXPECT_LT(nr_free_pages(*m), free0);
  exit_process(p);
  exit_process(c);
  for (KmemCache* s : slab_caches(*m)) kmem_cache_shrink(s);
  drain_all_pages(*m);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_PAGETABLE), tables0);
  EXPECT_EQ(nr_free_pages(*m), free0);
  EXPECT_EQ(check(*m), "");
}

}  // namespace
}  // namespace mmkit
