// A fault against reclaim's unmap of the same page, the interleaving held
// open on purpose: try_to_unmap clears the entry, and its TLB shootdown then
// waits for a CPU that stays inside an MMU access, so the entry is empty
// until that access ends; the swap entry is stored only after. A fault that
// finds the entry empty in that window must not install a page there: the
// swap entry would overwrite it (a read saw zeros, a write is lost and its
// page leaked), or it would overwrite the swap entry (the slot leaked).
// With the page-table lock taken and the entry checked again before the
// store, the fault waits for reclaim and then swaps the page back in.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "memcg/lru.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/mmu.h"
#include "vm/process.h"
#include "vm/rmap.h"

namespace mmkit {
namespace {

constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;
constexpr uint64_t kOld = 0x0123456789abcdefull, kNew = 0xfedcba9876543210ull;

class ReclaimFaultRace : public ::testing::TestWithParam<bool> {};  // a write fault?

TEST_P(ReclaimFaultRace, FaultInTryToUnmapsShootdownWindowWaitsForTheSwapEntry) {
  const bool write = GetParam();
  MachineConfig c;
  c.cpus = 3;
  c.nodes = {NodeConfig{.memory = 64ull << 20}};  // no memory pressure: kswapd stays asleep
  c.swap = 16ull << 20;
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  auto scope = CpuScope::bind(m, 0);
  ASSERT_TRUE(scope.ok());
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "p", &p), 0);
  MmStruct* mm = p->mm;
  const int64_t a = do_mmap(mm, 0, PAGE_SIZE, kRW, kAnon);
  ASSERT_GT(a, 0);
  const uint64_t addr = static_cast<uint64_t>(a);
  ASSERT_TRUE(access_write(mm, addr + 8, &kOld, sizeof kOld).ok());
  const pteval_t pte = pte_get(mm->pgd, addr);
  ASSERT_TRUE(pte_present(pte));
  Page* page = m.pfn_to_page(pte_pfn(pte));

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  std::atomic<bool> holding{false}, faulting{false}, stop{false};
  // CPU 2 uses the address space (its bit in the mm's cpumask) and then
  // stays inside an access: any shootdown of the mm waits for it to end.
  std::thread holder([&] {
    auto s = CpuScope::bind(m, 2);
    ASSERT_TRUE(s.ok());
    uint64_t w;
    ASSERT_TRUE(access_read(mm, addr + 8, &w, sizeof w).ok());
    mmu_access_begin(m);
    holding.store(true);
    while (!faulting.load() && !stop.load() && Clock::now() < deadline) std::this_thread::yield();
    // Long enough for the fault to reach its store; a fixed fault waits on
    // the page-table lock meanwhile.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    mmu_access_end(m);
  });
  // Reclaim, as shrink_folio_list does it: the page locked, in the swap
  // cache, then unmapped. try_to_unmap blocks in the shootdown with the
  // entry cleared and the page-table lock held.
  RmapResult unmapped;
  std::thread reclaimer([&] {
    while (!holding.load()) std::this_thread::yield();
    ASSERT_FALSE(page->test_and_set(PG_locked));
    ASSERT_TRUE(add_to_swap(m, page, page_memcg(m, page)->id));
    unmapped = try_to_unmap(m, page);
    page->clear_atomic(PG_locked);
  });
  // Fault once the entry is empty, that is, while reclaim is in its window.
  while (pte_get(mm->pgd, addr) != 0 && Clock::now() < deadline) std::this_thread::yield();
  const bool in_window = pte_get(mm->pgd, addr) == 0;
  faulting.store(true);
  uint64_t word = 0;
  FaultResult fr;
  if (in_window) {
    if (write)
      fr = access_write(mm, addr + 8, &kNew, sizeof kNew);
    else
      fr = access_read(mm, addr + 8, &word, sizeof word);
  }
  stop.store(true);
  holder.join();
  reclaimer.join();
  ASSERT_TRUE(in_window) << "try_to_unmap never cleared the entry";
  EXPECT_TRUE(fr.ok()) << fr.reason;
  EXPECT_EQ(unmapped.done, 1u);
  if (!write) {
    EXPECT_EQ(word, kOld) << "the read saw a page other than its own";
  }
  ASSERT_TRUE(access_read(mm, addr + 8, &word, sizeof word).ok());
  EXPECT_EQ(word, write ? kNew : kOld);
  EXPECT_EQ(check(mm), "");
  exit_process(p);
  lru_add_drain_all(m);
  EXPECT_EQ(swap_check(m), "");
}

INSTANTIATE_TEST_SUITE_P(Faults, ReclaimFaultRace, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Write" : "Read";
                         });

}  // namespace
}  // namespace mmkit
