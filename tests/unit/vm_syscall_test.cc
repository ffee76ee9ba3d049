// mmap, munmap, mprotect, brk and mremap: edge cases and Linux's errno for
// each bad argument, VMA split and merge, and the address-space layout.
#include <gtest/gtest.h>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/process.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

std::unique_ptr<Machine> small(Arch arch = Arch::x86_64) {
  return test::boot_or_fail(test::one_node(64, 2, arch));
}

int nr_vmas(MmStruct* mm) {
  return mm->map_count;
}

TEST(VmLayout, X86_64AndI386) {
  auto m = small();
  const MmLayout l = mm_layout(*m);
  EXPECT_EQ(l.task_size, 0x7ffffffff000ull);
  EXPECT_EQ(l.mmap_base, 0x7ffffffff000ull - (128ull << 20));
  auto m32 = small(Arch::i386);
  const MmLayout l32 = mm_layout(*m32);
  EXPECT_EQ(l32.task_size, 0xC0000000ull);
  EXPECT_EQ(l32.mmap_base, 0xC0000000ull - (128ull << 20));
  EXPECT_EQ(l32.mode, PagingMode::kI386);
}

TEST(VmMmap, TopDownBelowMmapBase) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  ASSERT_NE(mm, nullptr);
  const int64_t a = do_mmap(mm, 0, 3 * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  EXPECT_EQ(static_cast<uint64_t>(a), mm->mmap_base - 3 * kPage);
  const int64_t b = do_mmap(mm, 0, kPage, PROT_READ, kAnon);
  EXPECT_EQ(static_cast<uint64_t>(b), static_cast<uint64_t>(a) - kPage);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMmap, BadArguments) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  EXPECT_EQ(do_mmap(mm, 0, 0, kRW, kAnon), -EINVAL);              // zero length
  EXPECT_EQ(do_mmap(mm, 0, kPage, kRW, MAP_ANONYMOUS), -EINVAL);  // no type
  EXPECT_EQ(do_mmap(mm, 0, kPage, kRW, MAP_PRIVATE), -EBADF);     // a file mapping
  EXPECT_EQ(do_mmap(mm, 0x10001000, kPage, kRW, kAnon | MAP_FIXED), 0x10001000);
  EXPECT_EQ(do_mmap(mm, 0x10000800, kPage, kRW, kAnon | MAP_FIXED), -EINVAL);    // unaligned
  EXPECT_EQ(do_mmap(mm, 0x1000, kPage, kRW, kAnon | MAP_FIXED), -EPERM);         // < mmap_min_addr
  EXPECT_EQ(do_mmap(mm, 0, ~0ull - 10, kRW, kAnon), -ENOMEM);                    // wraps
  EXPECT_EQ(do_mmap(mm, 0, mm->layout.task_size + kPage, kRW, kAnon), -ENOMEM);  // too large
  EXPECT_EQ(do_mmap(mm, mm->layout.task_size - kPage, 2 * kPage, kRW, kAnon | MAP_FIXED), -ENOMEM);
  EXPECT_EQ(do_mmap(mm, 0x10000000, 2 * kPage, kRW, kAnon | MAP_FIXED_NOREPLACE), -EEXIST);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMmap, HintUsedWhenFreeAndFixedReplaces) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  EXPECT_EQ(do_mmap(mm, 0x20000000, 4 * kPage, kRW, kAnon), 0x20000000);
  // The hint is taken when free, else the search decides.
  const int64_t b = do_mmap(mm, 0x20000000, kPage, kRW, kAnon);
  EXPECT_GT(b, 0);
  EXPECT_NE(b, 0x20000000);
  // A hint below mmap_min_addr is rounded up to it.
  EXPECT_EQ(do_mmap(mm, 0x2000, kPage, kRW, kAnon), static_cast<int64_t>(mmap_min_addr));
  // MAP_FIXED replaces what is there and the data goes with it.
  const char x = 'x';
  ASSERT_TRUE(access_write(mm, 0x20001000, &x, 1).ok());
  EXPECT_EQ(do_mmap(mm, 0x20001000, kPage, kRW, kAnon | MAP_FIXED), 0x20001000);
  char y = 1;
  ASSERT_TRUE(access_read(mm, 0x20001000, &y, 1).ok());
  EXPECT_EQ(y, 0);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMmap, AdjacentMappingsMergeDifferentFlagsDoNot) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  ASSERT_EQ(do_mmap(mm, 0x30000000, 2 * kPage, kRW, kAnon | MAP_FIXED), 0x30000000);
  ASSERT_EQ(do_mmap(mm, 0x30002000, 2 * kPage, kRW, kAnon | MAP_FIXED), 0x30002000);
  EXPECT_EQ(nr_vmas(mm), 1);  // merged: same flags, contiguous pgoff
  ASSERT_EQ(do_mmap(mm, 0x30004000, kPage, PROT_READ, kAnon | MAP_FIXED), 0x30004000);
  EXPECT_EQ(nr_vmas(mm), 2);
  // A NORESERVE mapping lacks VM_ACCOUNT, so it does not merge either.
  ASSERT_EQ(do_mmap(mm, 0x2fffe000, 2 * kPage, kRW, kAnon | MAP_FIXED | MAP_NORESERVE), 0x2fffe000);
  EXPECT_EQ(nr_vmas(mm), 3);
  // Shared anonymous mappings never merge (each is its own object).
  ASSERT_EQ(do_mmap(mm, 0x40000000, kPage, kRW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED),
            0x40000000);
  ASSERT_EQ(do_mmap(mm, 0x40001000, kPage, kRW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED),
            0x40001000);
  EXPECT_EQ(nr_vmas(mm), 5);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMunmap, SplitsAndErrors) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  ASSERT_EQ(do_mmap(mm, 0x30000000, 8 * kPage, kRW, kAnon | MAP_FIXED), 0x30000000);
  ASSERT_TRUE(access_touch(mm, 0x30000000, 8 * kPage, Access::kWrite).ok());
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 8u);
  EXPECT_EQ(do_munmap(mm, 0x30002000, 2 * kPage), 0);  // a hole in the middle
  EXPECT_EQ(nr_vmas(mm), 2);
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 6u);
  EXPECT_EQ(mm->total_vm, 6u);
  FaultResult f = handle_mm_fault(mm, 0x30002000, Access::kRead);
  EXPECT_EQ(f.status, FaultStatus::kSigsegv);
  EXPECT_EQ(f.si_code, SEGV_MAPERR);
  EXPECT_EQ(do_munmap(mm, 0x30000001, kPage), -EINVAL);  // unaligned
  EXPECT_EQ(do_munmap(mm, 0x30000000, 0), -EINVAL);      // zero length
  EXPECT_EQ(do_munmap(mm, mm->layout.task_size, kPage), -EINVAL);
  EXPECT_EQ(do_munmap(mm, 0x50000000, kPage), 0);  // nothing there: fine
  EXPECT_EQ(do_munmap(mm, 0x30000000, 8 * kPage), 0);
  EXPECT_EQ(nr_vmas(mm), 0);
  EXPECT_EQ(mm->total_vm, 0u);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMprotect, SplitMergeAndErrors) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  ASSERT_EQ(do_mmap(mm, 0x30000000, 4 * kPage, kRW, kAnon | MAP_FIXED), 0x30000000);
  ASSERT_TRUE(access_touch(mm, 0x30000000, 4 * kPage, Access::kWrite).ok());
  EXPECT_EQ(do_mprotect(mm, 0x30001000, kPage, PROT_READ), 0);
  EXPECT_EQ(nr_vmas(mm), 3);
  FaultResult f = handle_mm_fault(mm, 0x30001000, Access::kWrite);
  EXPECT_EQ(f.status, FaultStatus::kSigsegv);
  EXPECT_EQ(f.si_code, SEGV_ACCERR);
  EXPECT_EQ(f.addr, 0x30001000u);
  EXPECT_EQ(check(mm), "");
  // Back to read-write: the three merge again; the data survived.
  EXPECT_EQ(do_mprotect(mm, 0x30001000, kPage, kRW), 0);
  EXPECT_EQ(nr_vmas(mm), 1);
  const char c = 'c';
  EXPECT_TRUE(access_write(mm, 0x30001000, &c, 1).ok());
  EXPECT_EQ(do_mprotect(mm, 0x30000001, kPage, PROT_READ), -EINVAL);  // unaligned
  EXPECT_EQ(do_mprotect(mm, 0x30000000, kPage, 0x40), -EINVAL);       // unknown bit
  EXPECT_EQ(do_mprotect(mm, 0x30000000, kPage, PROT_READ | PROT_GROWSDOWN), -EINVAL);
  EXPECT_EQ(do_mprotect(mm, 0x30000000, kPage, PROT_GROWSUP | PROT_GROWSDOWN), -EINVAL);
  EXPECT_EQ(do_mprotect(mm, 0x30000000, 0, PROT_READ), 0);                // zero length: nothing
  EXPECT_EQ(do_mprotect(mm, 0x30000000, 8 * kPage, PROT_READ), -ENOMEM);  // runs into a hole
  EXPECT_EQ(do_mprotect(mm, 0x50000000, kPage, PROT_READ), -ENOMEM);      // nothing mapped
  // PROT_NONE: every access is refused with SEGV_ACCERR.
  EXPECT_EQ(do_mprotect(mm, 0x30000000, 4 * kPage, PROT_NONE), 0);
  f = handle_mm_fault(mm, 0x30000000, Access::kRead);
  EXPECT_EQ(f.si_code, SEGV_ACCERR);
  char r;
  EXPECT_FALSE(access_read(mm, 0x30000000, &r, 1).ok());
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmBrk, GrowShrinkAndRefuse) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  const uint64_t base = mm->start_brk;
  EXPECT_EQ(do_brk(mm, 0), base);  // the query form
  EXPECT_EQ(do_brk(mm, base + 100), base + 100);
  EXPECT_EQ(nr_vmas(mm), 1);
  const char x = 'h';
  EXPECT_TRUE(access_write(mm, base + 99, &x, 1).ok());
  EXPECT_EQ(do_brk(mm, base + 3 * kPage), base + 3 * kPage);
  EXPECT_EQ(nr_vmas(mm), 1);  // extended in place
  EXPECT_EQ(mm->data_vm, 3u);
  EXPECT_EQ(do_brk(mm, base + kPage), base + kPage);  // shrink
  EXPECT_EQ(mm->data_vm, 1u);
  EXPECT_EQ(do_brk(mm, base - kPage), base + kPage);  // below start_brk: refused
  // A mapping in the way stops growth (the old break comes back).
  ASSERT_EQ(do_mmap(mm, base + 4 * kPage, kPage, kRW, kAnon | MAP_FIXED),
            static_cast<int64_t>(base + 4 * kPage));
  EXPECT_EQ(do_brk(mm, base + 4 * kPage + 1), base + kPage);
  char y;
  EXPECT_TRUE(access_read(mm, base + 99, &y, 1).ok());
  EXPECT_EQ(y, 'h');
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMremap, ShrinkGrowInPlaceMoveAndErrors) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  ASSERT_EQ(do_mmap(mm, 0x30000000, 4 * kPage, kRW, kAnon | MAP_FIXED), 0x30000000);
  const char a = 'a', b = 'b';
  ASSERT_TRUE(access_write(mm, 0x30000000, &a, 1).ok());
  ASSERT_TRUE(access_write(mm, 0x30001000, &b, 1).ok());
  EXPECT_EQ(do_mremap(mm, 0x30000000, 4 * kPage, 2 * kPage, 0), 0x30000000);  // shrink
  EXPECT_EQ(mm->total_vm, 2u);
  EXPECT_EQ(do_mremap(mm, 0x30000000, 2 * kPage, 6 * kPage, 0), 0x30000000);  // grow in place
  EXPECT_EQ(mm->total_vm, 6u);
  // Block growth in place, then move.
  ASSERT_EQ(do_mmap(mm, 0x30006000, kPage, PROT_READ, kAnon | MAP_FIXED), 0x30006000);
  EXPECT_EQ(do_mremap(mm, 0x30000000, 6 * kPage, 8 * kPage, 0), -ENOMEM);
  const int64_t n = do_mremap(mm, 0x30000000, 6 * kPage, 8 * kPage, MREMAP_MAYMOVE);
  ASSERT_GT(n, 0);
  EXPECT_NE(n, 0x30000000);
  char r = 0;
  EXPECT_TRUE(access_read(mm, n, &r, 1).ok());
  EXPECT_EQ(r, 'a');
  EXPECT_TRUE(access_read(mm, n + kPage, &r, 1).ok());
  EXPECT_EQ(r, 'b');
  EXPECT_EQ(handle_mm_fault(mm, 0x30000000, Access::kRead).si_code, SEGV_MAPERR);
  // MREMAP_FIXED to a chosen address.
  EXPECT_EQ(do_mremap(mm, n, 8 * kPage, 8 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, 0x60000000),
            0x60000000);
  EXPECT_TRUE(access_read(mm, 0x60001000, &r, 1).ok());
  EXPECT_EQ(r, 'b');
  EXPECT_EQ(do_mremap(mm, 0x60000000, kPage, kPage, 8), -EINVAL);  // bad flag
  EXPECT_EQ(do_mremap(mm, 0x60000000, kPage, kPage, MREMAP_FIXED, 0x70000000), -EINVAL);
  EXPECT_EQ(do_mremap(mm, 0x60000001, kPage, kPage, 0), -EINVAL);            // unaligned
  EXPECT_EQ(do_mremap(mm, 0x60000000, kPage, 0, 0), -EINVAL);                // zero length
  EXPECT_EQ(do_mremap(mm, 0x70000000, kPage, 2 * kPage, 0), -EFAULT);        // unmapped
  EXPECT_EQ(do_mremap(mm, 0x60000000, 16 * kPage, 17 * kPage, 0), -EFAULT);  // spans a VMA end
  EXPECT_EQ(
      do_mremap(mm, 0x60000000, 2 * kPage, 2 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, 0x60001000),
      -EINVAL);  // overlapping
  // Shrinking a range that runs past TASK_SIZE: do_vmi_munmap's EINVAL.
  const uint64_t top = mm->layout.task_size - 2 * kPage;
  ASSERT_EQ(do_mmap(mm, top, 2 * kPage, kRW, kAnon | MAP_FIXED), static_cast<int64_t>(top));
  EXPECT_EQ(do_mremap(mm, top, 4 * kPage, kPage, 0), -EINVAL);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMmap, PopulateFaultsEverythingIn) {
  auto m = small();
  MmStruct* mm = mm_alloc(*m);
  ASSERT_GT(do_mmap(mm, 0, 16 * kPage, kRW, kAnon | MAP_POPULATE), 0);
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 16u);
  // Read-only populate maps the zero page: no RSS.
  ASSERT_GT(do_mmap(mm, 0, 4 * kPage, PROT_READ, kAnon | MAP_POPULATE), 0);
  EXPECT_EQ(mm->get_mm_counter(MM_ANONPAGES), 16u);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmProcess, SpawnHasAStackAndAHeapStart) {
  auto m = small();
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "init", &p), 0);
  EXPECT_EQ(p->pid, 1);
  EXPECT_EQ(p->mm->map_count, 1);
  EXPECT_EQ(p->mm->stack_vm, kInitialStack / kPage);
  // Stack growth below the VMA by a fault.
  const uint64_t below = p->mm->layout.stack_top - kInitialStack - 10 * kPage;
  EXPECT_TRUE(handle_mm_fault(p->mm, below, Access::kWrite).ok());
  EXPECT_EQ(p->mm->stack_vm, kInitialStack / kPage + 10);
  // Beyond RLIMIT_STACK it is a SIGSEGV.
  const FaultResult f =
      handle_mm_fault(p->mm, p->mm->layout.stack_top - kStackRlimit - kPage, Access::kWrite);
  EXPECT_EQ(f.si_code, SEGV_MAPERR);
  Process* q = nullptr;
  ASSERT_EQ(spawn(*m, "a-very-long-command-name", &q), 0);
  EXPECT_EQ(q->pid, 2);
  EXPECT_EQ(q->comm, "a-very-long-com");
  EXPECT_EQ(find_process(*m, 2), q);
  exit_process(q);
  EXPECT_EQ(find_process(*m, 2), nullptr);
  EXPECT_EQ(check(p->mm), "");
  exit_process(p);
  EXPECT_TRUE(processes(*m).empty());
}

TEST(VmProcess, MachineTeardownReapsLiveProcesses) {
  // Processes still alive when the machine goes: their address spaces are
  // torn down with it (the sanitizer build proves nothing leaks).
  auto m = small();
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "orphan", &p), 0);
  const int64_t a = do_mmap(p->mm, 0, 8 * kPage, kRW, kAnon);
  ASSERT_TRUE(access_touch(p->mm, a, 8 * kPage, Access::kWrite).ok());
  ASSERT_GT(do_mmap(p->mm, 0, kPage, kRW, MAP_SHARED | MAP_ANONYMOUS), 0);
  Process* c = nullptr;
  ASSERT_EQ(fork_process(p, &c), 0);
  MmStruct* bare = mm_alloc(*m);
  ASSERT_NE(bare, nullptr);
  EXPECT_EQ(processes(*m).size(), 2u);
  EXPECT_EQ(machine_mms(*m).size(), 3u);
  m.reset();
}

}  // namespace
}  // namespace mmkit
