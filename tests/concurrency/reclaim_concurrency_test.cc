// Reclaim racing with use: two CPUs fault and write their own processes'
// memory (two thirds more than RAM between them, so kswapd and direct reclaim both run
// and swap pages out and in under them) while a third thread maps and
// unmaps a region of one of the two address spaces. Every byte reads back,
// and the LRU, swap and address-space checks hold at the end, under the
// classic lists and under the multi-generational LRU.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../support/swap_settle.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

class ReclaimConcurrency : public ::testing::TestWithParam<bool> {};

TEST_P(ReclaimConcurrency, TwoCpusFaultWhileKswapdReclaimsAndAThirdThreadUnmaps) {
  MachineConfig c;
  c.cpus = 3;
  c.lru_gen = GetParam();
  c.nodes = {NodeConfig{.memory = 24ull << 20}};
  c.swap = 96ull << 20;
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  // 20 MiB per process, 40 MiB in all: at least 16 MiB of the workers' own
  // pages are out when their writes end, so the reads must swap in.
  constexpr uint64_t kPages = (20ull << 20) / PAGE_SIZE;
  Process* procs[2];
  uint64_t base[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(spawn(m, i ? "b" : "a", &procs[i]), 0);
    const int64_t a = do_mmap(procs[i]->mm, 0, kPages * PAGE_SIZE, kRW, kAnon);
    ASSERT_GT(a, 0);
    base[i] = static_cast<uint64_t>(a);
  }
  std::atomic<int> bad{0};
  std::atomic<bool> done{false};
  // The first bad access, described (written by the thread that counted it).
  std::string first_bad;
  auto note_bad = [&](int id, int pass, uint64_t i, const char* what, const FaultResult& r,
                      uint64_t word) {
    if (bad.fetch_add(1) == 0)
      first_bad = fmt::format("cpu {} pass {} page {}: {} status {} reason '{}' word {}", id, pass,
                              i, what, static_cast<int>(r.status), r.reason, word);
  };
  // Both workers finish a pass's writes before either reads: run one after
  // the other (a busy host may schedule them so), each would fit in RAM and
  // never swap in.
  std::barrier written(2);
  auto worker = [&](int id) {
    auto scope = CpuScope::bind(m, id);
    if (!scope.ok()) {
      ADD_FAILURE() << "cpu " << id;
      written.arrive_and_drop();
      return;
    }
    MmStruct* mm = procs[id]->mm;
    uint64_t word;
    for (int pass = 1; pass <= 2; ++pass) {
      for (uint64_t i = 0; i < kPages; ++i) {
        word = i * 1000 + static_cast<uint64_t>(pass) * 7 + static_cast<uint64_t>(id);
        const FaultResult r = access_write(mm, base[id] + i * PAGE_SIZE + 8, &word, sizeof word);
        if (!r.ok()) note_bad(id, pass, i, "write", r, word);
      }
      written.arrive_and_wait();
      for (uint64_t i = 0; i < kPages; ++i) {
        const FaultResult r = access_read(mm, base[id] + i * PAGE_SIZE + 8, &word, sizeof word);
        if (!r.ok() ||
            word != i * 1000 + static_cast<uint64_t>(pass) * 7 + static_cast<uint64_t>(id))
          note_bad(id, pass, i, "read", r, word);
      }
    }
  };
  std::thread unmapper([&] {
    auto scope = CpuScope::bind(m, 2);
    ASSERT_TRUE(scope.ok());
    MmStruct* mm = procs[1]->mm;
    char buf[64] = {1};
    while (!done.load()) {
      const int64_t a = do_mmap(mm, 0, 64 * PAGE_SIZE, kRW, kAnon);
      if (a <= 0) continue;
      for (uint64_t i = 0; i < 64; ++i)
        access_write(mm, static_cast<uint64_t>(a) + i * PAGE_SIZE, buf, 64);
      do_munmap(mm, static_cast<uint64_t>(a), 64 * PAGE_SIZE);
    }
  });
  std::thread t0(worker, 0), t1(worker, 1);
  t0.join();
  t1.join();
  done.store(true);
  unmapper.join();
  EXPECT_EQ(bad.load(), 0) << first_bad;
  EXPECT_GT(m.sum_event(VmEvent::PSWPOUT), 0);
  EXPECT_GT(m.sum_event(VmEvent::PSWPIN), 0);
  lru_add_drain_all(m);
  EXPECT_EQ(lru_check(m), "");
  EXPECT_EQ(swap_check(m), "");
  for (Process* p : procs) EXPECT_EQ(check(p->mm), "");
  for (Process* p : procs) exit_process(p);
  lru_add_drain_all(m);
  EXPECT_EQ(swap_check_counts(m, [](const std::function<void(SwpEntry)>&) {}), "");
  // No page table refers to a slot after the exits; the slots still in use
  // are swap-cache copies whose page reclaim had locked when its last entry
  // went. Dropping those leaves every slot free.
  test::drop_swap_cache_only_slots(m);
  EXPECT_EQ(swap_free_pages(m), swap_total_pages(m));
  EXPECT_EQ(swap_check(m), "");
}

INSTANTIATE_TEST_SUITE_P(Policies, ReclaimConcurrency, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "LruGen" : "Classic";
                         });

}  // namespace
}  // namespace mmkit
