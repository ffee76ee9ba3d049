// Overcommit (mm/util.c __vm_enough_memory): each mode's limit hit exactly
// (one page below succeeds, at the limit fails), what is charged and what
// is not, and Committed_AS returning to where it started.
#include <gtest/gtest.h>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

std::unique_ptr<Machine> machine(unsigned mode, uint64_t swap = 0) {
  MachineConfig c = test::one_node(64, 1);
  c.overcommit_memory = mode;
  c.swap = swap;
  return test::boot_or_fail(c);
}

TEST(Overcommit, DefaultsFollowLinux) {
  auto m = machine(0);
  const OvercommitSysctls& s = overcommit_sysctls(*m);
  EXPECT_EQ(s.overcommit_ratio, 50u);
  const uint64_t free_kb = nr_free_pages(*m) * 4;
  EXPECT_LE(s.user_reserve_kbytes, 128u << 10);
  EXPECT_NEAR(static_cast<double>(s.admin_reserve_kbytes), std::min<double>(free_kb / 32.0, 8192),
              64);
  EXPECT_EQ(vm_commit_limit(*m), m->totalram_pages() * 50 / 100);
  auto ms = machine(0, 16ull << 20);
  EXPECT_EQ(vm_commit_limit(*ms), ms->totalram_pages() / 2 + 4096);
  EXPECT_EQ(total_swap_pages(*ms), 4096u);
}

TEST(Overcommit, Mode0RefusesOneRequestLargerThanRamPlusSwap) {
  auto m = machine(0, 8ull << 20);
  MmStruct* mm = mm_alloc(*m);
  const uint64_t total = m->totalram_pages() + 2048;
  const int64_t a = do_mmap(mm, 0, total * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  EXPECT_EQ(vm_memory_committed(*m), total);
  // Two such requests are fine in mode 0: only a single one is judged.
  const int64_t b = do_mmap(mm, 0, total * kPage, kRW, kAnon);
  ASSERT_GT(b, 0);
  EXPECT_EQ(do_mmap(mm, 0, (total + 1) * kPage, kRW, kAnon), -ENOMEM);
  OvercommitRule why;
  EXPECT_EQ(vm_enough_memory(*m, mm, static_cast<int64_t>(total + 1), false, &why), -ENOMEM);
  EXPECT_EQ(why, OvercommitRule::kGuessTotal);
  EXPECT_EQ(vm_memory_committed(*m), 2 * total);  // the failures took their charge back
  // MAP_NORESERVE and read-only mappings are not charged.
  ASSERT_GT(do_mmap(mm, 0, (total + 1) * kPage, kRW, kAnon | MAP_NORESERVE), 0);
  ASSERT_GT(do_mmap(mm, 0, (total + 1) * kPage, PROT_READ, kAnon), 0);
  EXPECT_EQ(vm_memory_committed(*m), 2 * total);
  EXPECT_EQ(do_munmap(mm, a, total * kPage), 0);
  EXPECT_EQ(vm_memory_committed(*m), total);
  mmput(mm);
  EXPECT_EQ(vm_memory_committed(*m), 0u);
}

TEST(Overcommit, Mode1NeverRefuses) {
  auto m = machine(1);
  MmStruct* mm = mm_alloc(*m);
  ASSERT_GT(do_mmap(mm, 0, 1ull << 40, kRW, kAnon), 0);  // 1 TiB on a 64 MiB machine
  EXPECT_EQ(vm_memory_committed(*m), (1ull << 40) / kPage);
  mmput(mm);
  EXPECT_EQ(vm_memory_committed(*m), 0u);
}

TEST(Overcommit, Mode2StopsAtCommitLimitLessReserves) {
  auto m = machine(2, 4ull << 20);
  const OvercommitSysctls& s = overcommit_sysctls(*m);
  MmStruct* mm = mm_alloc(*m);
  const int64_t admin = static_cast<int64_t>(s.admin_reserve_kbytes / 4);
  const int64_t allowed = static_cast<int64_t>(vm_commit_limit(*m)) - admin;  // total_vm is 0
  const int64_t fits = allowed - 1;  // committed + pages must stay below allowed
  const int64_t a = do_mmap(mm, 0, fits * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  ASSERT_EQ(do_munmap(mm, a, fits * kPage), 0);
  EXPECT_EQ(do_mmap(mm, 0, (fits + 1) * kPage, kRW, kAnon), -ENOMEM);
  OvercommitRule why;
  EXPECT_EQ(vm_enough_memory(*m, mm, fits + 1, false, &why), -ENOMEM);
  EXPECT_EQ(why, OvercommitRule::kCommitLimit);
  // Root does not pay the admin reserve.
  EXPECT_EQ(vm_enough_memory(*m, mm, fits + 1, true), 0);
  vm_unacct_memory(*m, fits + 1);
  // MAP_NORESERVE is charged in mode 2.
  EXPECT_EQ(do_mmap(mm, 0, (fits + 1) * kPage, kRW, kAnon | MAP_NORESERVE), -ENOMEM);
  EXPECT_EQ(vm_memory_committed(*m), 0u);
  mmput(mm);
}

TEST(Overcommit, Mode2UserReserveScalesWithTotalVm) {
  auto m = machine(2);
  OvercommitSysctls& s = overcommit_sysctls(*m);
  s.admin_reserve_kbytes = 0;
  MmStruct* mm = mm_alloc(*m);
  // 64 read-only pages: total_vm 64, nothing committed; the user reserve
  // takes min(64 / 32, user_reserve) = 2 pages off the limit.
  ASSERT_GT(do_mmap(mm, 0, 64 * kPage, PROT_READ, kAnon), 0);
  const int64_t allowed = static_cast<int64_t>(vm_commit_limit(*m)) - 2;
  EXPECT_EQ(do_mmap(mm, 0, allowed * kPage, kRW, kAnon), -ENOMEM);
  const int64_t a = do_mmap(mm, 0, (allowed - 1) * kPage, kRW, kAnon);
  EXPECT_GT(a, 0);
  mmput(mm);
}

TEST(Overcommit, BrkMprotectAndForkCharge) {
  auto m = machine(0);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const uint64_t stack = kInitialStack / kPage;
  EXPECT_EQ(vm_memory_committed(*m), stack);
  do_brk(p->mm, p->mm->start_brk + 4 * kPage);
  EXPECT_EQ(vm_memory_committed(*m), stack + 4);
  const int64_t ro = do_mmap(p->mm, 0, 8 * kPage, PROT_READ, kAnon);
  EXPECT_EQ(vm_memory_committed(*m), stack + 4);
  ASSERT_EQ(do_mprotect(p->mm, ro, 8 * kPage, kRW), 0);  // becomes data: charged
  EXPECT_EQ(vm_memory_committed(*m), stack + 12);
  ASSERT_EQ(do_mprotect(p->mm, ro, 8 * kPage, PROT_READ), 0);  // never touched: given back
  EXPECT_EQ(vm_memory_committed(*m), stack + 4);
  Process* c = nullptr;
  ASSERT_EQ(fork_process(p, &c), 0);
  EXPECT_EQ(vm_memory_committed(*m), 2 * (stack + 4));
  exit_process(c);
  exit_process(p);
  EXPECT_EQ(vm_memory_committed(*m), 0u);
}

}  // namespace
}  // namespace mmkit
