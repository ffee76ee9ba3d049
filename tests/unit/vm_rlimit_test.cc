// RLIMIT_AS, RLIMIT_DATA and vm.max_map_count where Linux enforces them
// (mm/mmap.c may_expand_vm, the brk syscall's check_data_rlimit, the map
// count checks of do_mmap, do_brk_flags, __split_vma and mremap): each
// limit hit exactly (up to it succeeds, one page more fails with -ENOMEM,
// brk returns the old break), nothing charged by a refusal, and the limits
// coming from the machine config.
#include <gtest/gtest.h>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"
#include "vm/rlimit.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr uint64_t kMiB = 1ull << 20;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

// Overcommit mode 1, so that only the limit under test can refuse.
std::unique_ptr<Machine> machine(uint64_t rlimit_as, uint64_t rlimit_data,
                                 unsigned max_map_count = kDefaultMaxMapCount) {
  MachineConfig c = test::one_node(64, 1);
  c.overcommit_memory = OVERCOMMIT_ALWAYS;
  c.rlimit_as = rlimit_as;
  c.rlimit_data = rlimit_data;
  c.max_map_count = max_map_count;
  return test::boot_or_fail(c);
}

TEST(VmRlimit, MmapBeyondRlimitAsFailsWithEnomem) {
  auto m = machine(16 * kMiB, kRlimInfinity);
  MmStruct* mm = mm_alloc(*m);
  EXPECT_EQ(mm->rlimit_as, 16 * kMiB);
  const int64_t a = do_mmap(mm, 0, 12 * kMiB, kRW, kAnon);
  ASSERT_GT(a, 0);
  // RLIMIT_AS counts every kind of mapping.
  const uint64_t over = 4 * kMiB + kPage;
  EXPECT_EQ(do_mmap(mm, 0, over, PROT_READ, kAnon), -ENOMEM);
  EXPECT_EQ(do_mmap(mm, 0, over, PROT_NONE, kAnon | MAP_NORESERVE), -ENOMEM);
  EXPECT_EQ(do_mmap(mm, 0, over, kRW, MAP_SHARED | MAP_ANONYMOUS), -ENOMEM);
  EXPECT_EQ(vm_memory_committed(*m), 12 * kMiB / kPage);  // the refusals charged nothing
  // Up to the limit exactly is allowed.
  const int64_t b = do_mmap(mm, 0, 4 * kMiB, PROT_NONE, kAnon);
  ASSERT_GT(b, 0);
  EXPECT_EQ(mm->total_vm, 16 * kMiB / kPage);
  EXPECT_EQ(do_mmap(mm, 0, kPage, PROT_READ, kAnon), -ENOMEM);
  // MAP_FIXED over mapped pages counts only the pages it adds
  // (count_vma_pages_range): a's own range fits, one page past mmap_base not.
  EXPECT_EQ(do_mmap(mm, static_cast<uint64_t>(a), 2 * kMiB, PROT_READ, kAnon | MAP_FIXED), a);
  EXPECT_EQ(do_mmap(mm, mm->mmap_base - kPage, 2 * kPage, PROT_READ, kAnon | MAP_FIXED), -ENOMEM);
  // Unmapping gives the room back.
  EXPECT_EQ(do_munmap(mm, static_cast<uint64_t>(b), 4 * kMiB), 0);
  EXPECT_GT(do_mmap(mm, 0, 4 * kMiB, kRW, kAnon), 0);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
  EXPECT_EQ(vm_memory_committed(*m), 0u);
}

TEST(VmRlimit, RlimitDataCountsPrivateWritableMappingsOnly) {
  auto m = machine(kRlimInfinity, 1 * kMiB);
  MmStruct* mm = mm_alloc(*m);
  RlimitRule why = RlimitRule::kNone;
  EXPECT_FALSE(may_expand_vm(mm, VM_READ | VM_WRITE, 257, &why));
  EXPECT_EQ(why, RlimitRule::kData);
  EXPECT_EQ(do_mmap(mm, 0, 2 * kMiB, kRW, kAnon), -ENOMEM);
  EXPECT_EQ(do_mmap(mm, 0, 2 * kMiB, kRW, kAnon | MAP_NORESERVE), -ENOMEM);  // data all the same
  // Not data: read-only, shared, and stacks (is_data_mapping).
  EXPECT_GT(do_mmap(mm, 0, 2 * kMiB, PROT_READ, kAnon), 0);
  EXPECT_GT(do_mmap(mm, 0, 2 * kMiB, kRW, MAP_SHARED | MAP_ANONYMOUS), 0);
  EXPECT_GT(do_mmap(mm, 0, 2 * kMiB, kRW, kAnon | MAP_GROWSDOWN), 0);
  EXPECT_EQ(mm->data_vm, 0u);
  const int64_t d = do_mmap(mm, 0, 1 * kMiB, kRW, kAnon);
  ASSERT_GT(d, 0);
  EXPECT_EQ(mm->data_vm, 256u);
  EXPECT_EQ(do_mmap(mm, 0, kPage, kRW, kAnon), -ENOMEM);
  // mprotect turning a range into data is held to the limit (mprotect_fixup).
  const int64_t ro = do_mmap(mm, 0, kPage, PROT_READ, kAnon);
  ASSERT_GT(ro, 0);
  EXPECT_EQ(do_mprotect(mm, static_cast<uint64_t>(ro), kPage, kRW), -ENOMEM);
  EXPECT_EQ(do_munmap(mm, static_cast<uint64_t>(d), kPage), 0);
  EXPECT_EQ(do_mprotect(mm, static_cast<uint64_t>(ro), kPage, kRW), 0);
  EXPECT_EQ(mm->data_vm, 256u);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmRlimit, BrkBeyondRlimitDataReturnsTheOldBreak) {
  auto m = machine(kRlimInfinity, 1 * kMiB);
  MmStruct* mm = mm_alloc(*m);
  const uint64_t start = mm->start_brk;
  EXPECT_EQ(do_brk(mm, start + 1 * kMiB), start + 1 * kMiB);
  EXPECT_EQ(do_brk(mm, start + 1 * kMiB + 1), start + 1 * kMiB);  // check_data_rlimit: bytes
  EXPECT_EQ(do_brk(mm, start + 2 * kMiB), start + 1 * kMiB);
  EXPECT_EQ(mm->data_vm, 256u);
  // The limit covers brk and private mmaps together (may_expand_vm's data_vm).
  EXPECT_EQ(do_brk(mm, start + 512 * 1024), start + 512 * 1024);
  ASSERT_GT(do_mmap(mm, 0, 256 * 1024, kRW, kAnon), 0);
  EXPECT_EQ(do_brk(mm, start + 1 * kMiB), start + 512 * 1024);
  EXPECT_EQ(do_brk(mm, start + 768 * 1024), start + 768 * 1024);
  // A limit lowered below the heap: the break cannot move, not even down,
  // until it is within the limit (the brk syscall checks before shrinking).
  mm->rlimit_data = 256 * 1024;
  EXPECT_EQ(do_brk(mm, start + 512 * 1024), start + 768 * 1024);
  EXPECT_EQ(do_brk(mm, start + 256 * 1024), start + 256 * 1024);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmRlimit, BrkBeyondRlimitAsReturnsTheOldBreak) {
  auto m = machine(1 * kMiB, kRlimInfinity);
  MmStruct* mm = mm_alloc(*m);
  const uint64_t start = mm->start_brk;
  EXPECT_EQ(do_brk(mm, start + 1 * kMiB), start + 1 * kMiB);
  EXPECT_EQ(do_brk(mm, start + 1 * kMiB + kPage), start + 1 * kMiB);
  EXPECT_EQ(mm->total_vm, 256u);
  EXPECT_EQ(vm_memory_committed(*m), 256u);  // the refusal charged nothing
  mmput(mm);
}

TEST(VmRlimit, MremapGrowthIsHeldToTheLimits) {
  auto m = machine(2 * kMiB, kRlimInfinity);
  MmStruct* mm = mm_alloc(*m);
  const int64_t a = do_mmap(mm, 0, 1 * kMiB, kRW, kAnon);
  ASSERT_GT(a, 0);
  const int64_t b = do_mremap(mm, static_cast<uint64_t>(a), 1 * kMiB, 2 * kMiB, MREMAP_MAYMOVE);
  ASSERT_GT(b, 0);
  EXPECT_EQ(do_mremap(mm, static_cast<uint64_t>(b), 2 * kMiB, 2 * kMiB + kPage, MREMAP_MAYMOVE),
            -ENOMEM);
  EXPECT_EQ(vm_memory_committed(*m), 512u);
  EXPECT_EQ(do_mremap(mm, static_cast<uint64_t>(b), 2 * kMiB, 1 * kMiB, 0),
            b);  // shrinking is fine
  mm->rlimit_data = 1 * kMiB;
  EXPECT_EQ(do_mremap(mm, static_cast<uint64_t>(b), 1 * kMiB, 1 * kMiB + kPage, MREMAP_MAYMOVE),
            -ENOMEM);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmRlimit, StackGrowthStopsAtRlimitAs) {
  // The initial stack (132 KiB) and 16 pages more.
  auto m = machine(kInitialStack + 16 * kPage, kRlimInfinity);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "stack", &p), 0);
  MmStruct* mm = p->mm;
  const uint64_t bottom = mm->layout.stack_top - kInitialStack;
  EXPECT_TRUE(handle_mm_fault(mm, bottom - 16 * kPage, Access::kWrite).ok());
  const FaultResult f = handle_mm_fault(mm, bottom - 17 * kPage, Access::kWrite);
  EXPECT_EQ(f.status, FaultStatus::kSigsegv);
  EXPECT_EQ(f.si_code, SEGV_MAPERR);
  EXPECT_EQ(mm->total_vm, (kInitialStack >> PAGE_SHIFT) + 16);
  exit_process(p);
}

TEST(VmRlimit, ForkInheritsTheParentsLimits) {
  auto m = machine(kRlimInfinity, kRlimInfinity);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "parent", &p), 0);
  EXPECT_EQ(p->mm->rlimit_as, kRlimInfinity);
  p->mm->rlimit_as = 64 * kMiB;  // setrlimit in the parent
  p->mm->rlimit_data = 8 * kMiB;
  Process* c = nullptr;
  ASSERT_EQ(fork_process(p, &c), 0);
  EXPECT_EQ(c->mm->rlimit_as, 64 * kMiB);
  EXPECT_EQ(c->mm->rlimit_data, 8 * kMiB);
  exit_process(c);
  exit_process(p);
}

TEST(VmMaxMapCount, ComesFromTheConfigAndIsLive) {
  auto dflt = machine(kRlimInfinity, kRlimInfinity);
  EXPECT_EQ(sysctl_max_map_count(*dflt), 65530);
  auto m = machine(kRlimInfinity, kRlimInfinity, 4);
  EXPECT_EQ(sysctl_max_map_count(*m), 4);
  MmStruct* mm = mm_alloc(*m);
  // Alternating protections keep neighbours from merging: one VMA each.
  // do_mmap refuses only once map_count > max_map_count, so a process can
  // reach max_map_count + 1 VMAs, as in Linux.
  int mapped = 0;
  uint64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    const int64_t a = do_mmap(mm, 0, 3 * kPage, i % 2 ? PROT_READ : kRW, kAnon);
    if (a > 0) {
      ++mapped;
      last = static_cast<uint64_t>(a);
    } else {
      EXPECT_EQ(a, -ENOMEM);
    }
  }
  EXPECT_EQ(mapped, 5);
  EXPECT_EQ(mm->map_count, 5);
  // Splitting needs map_count < max_map_count (__split_vma, munmap's split).
  EXPECT_EQ(do_munmap(mm, last + kPage, kPage), -ENOMEM);
  EXPECT_EQ(do_mprotect(mm, last + kPage, kPage, PROT_NONE), -ENOMEM);
  EXPECT_EQ(do_munmap(mm, last, 3 * kPage), 0);  // a whole VMA needs no split
  EXPECT_EQ(mm->map_count, 4);
  EXPECT_EQ(do_munmap(mm, last + 3 * kPage + kPage, kPage), -ENOMEM);  // 4 >= 4
  // brk: the heap is a fifth VMA; then do_brk_flags refuses (5 > 4) even a
  // growth that would merge into it.
  const uint64_t start = mm->start_brk;
  EXPECT_EQ(do_brk(mm, start + kPage), start + kPage);
  EXPECT_EQ(mm->map_count, 5);
  EXPECT_EQ(do_brk(mm, start + 2 * kPage), start + kPage);
  EXPECT_EQ(do_mmap(mm, 0, kPage, kRW, kAnon), -ENOMEM);
  // Writing the sysctl takes effect at once.
  sysctl_max_map_count(*m) = 100;
  EXPECT_EQ(do_brk(mm, start + 2 * kPage), start + 2 * kPage);
  EXPECT_GT(do_mmap(mm, 0, kPage, PROT_READ, kAnon), 0);
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

TEST(VmMaxMapCount, MremapMoveKeepsThreeSlotsSpare) {
  auto m = machine(kRlimInfinity, kRlimInfinity, 5);
  MmStruct* mm = mm_alloc(*m);
  int64_t a = 0;
  for (int i = 0; i < 2; ++i) a = do_mmap(mm, 0, kPage, i % 2 ? PROT_READ : kRW, kAnon);
  ASSERT_GT(a, 0);
  EXPECT_EQ(mm->map_count, 2);  // move_vma needs map_count < max_map_count - 3
  EXPECT_EQ(do_mremap(mm, static_cast<uint64_t>(a), kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                      0x40000000),
            -ENOMEM);
  sysctl_max_map_count(*m) = 6;
  EXPECT_EQ(do_mremap(mm, static_cast<uint64_t>(a), kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                      0x40000000),
            0x40000000);
  mmput(mm);
}

}  // namespace
}  // namespace mmkit
