// zswap under real threads: two CPUs write and read back their own
// processes' memory (well over RAM between them) while kswapd and direct
// reclaim store pages into zswap, faults load them, the small pool's limit
// makes the storing threads write entries back, and a third thread forks
// and exits a child of one process (sharing and dropping its swap entries).
// Every byte reads back; zswap's, swap's and the LRU's checks hold at the end.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "../support/swap_settle.h"
#include "memcg/lru.h"
#include "memcg/memcg_state.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "swap/zswap.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

// A page, different per page and pass: every 5th same-filled, the others
// half pseudo-random words (about 2:1, so the small pool fills and writes
// back).
void fill(uint64_t* w, uint64_t i, int pass, int id) {
  const uint64_t v = i * 1000 + static_cast<uint64_t>(pass) * 7 + static_cast<uint64_t>(id);
  for (size_t k = 0; k < PAGE_SIZE / 8; ++k) {
    uint64_t x = (v << 12 | k) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    w[k] = i % 5 == 0 || k % 2 ? v : x;
  }
}

TEST(ZswapConcurrency, TwoCpusSwapThroughZswapWhileKswapdAndWritebackRun) {
  MachineConfig c;
  c.cpus = 3;
  c.nodes = {NodeConfig{.memory = 24ull << 20}};
  c.swap = 96ull << 20;
  c.zswap.enabled = true;
  c.zswap.max_pool_percent = 5;  // small: writeback runs too
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  constexpr uint64_t kPages = (20ull << 20) / PAGE_SIZE;
  Process* procs[2];
  uint64_t base[2];
  // "a" runs in a memory cgroup: its own reclaim stores and frees entries
  // charged to the group while kswapd and the root's pages do the same.
  MemCgroup* cg = mem_cgroup_create(m, "a", 12ull << 20);
  ASSERT_NE(cg, nullptr);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(spawn(m, i ? "b" : "a", &procs[i]), 0);
    if (i == 0) procs[i]->mm->memcg = cg;
    const int64_t a = do_mmap(procs[i]->mm, 0, kPages * PAGE_SIZE, kRW, kAnon);
    ASSERT_GT(a, 0);
    base[i] = static_cast<uint64_t>(a);
  }
  std::atomic<int> bad{0};
  std::atomic<bool> done{false};
  auto worker = [&](int id) {
    auto scope = CpuScope::bind(m, id);
    ASSERT_TRUE(scope.ok());
    MmStruct* mm = procs[id]->mm;
    std::vector<uint64_t> buf(PAGE_SIZE / 8), want(PAGE_SIZE / 8);
    for (int pass = 1; pass <= 2; ++pass) {
      for (uint64_t i = 0; i < kPages; ++i) {
        fill(buf.data(), i, pass, id);
        if (!access_write(mm, base[id] + i * PAGE_SIZE, buf.data(), PAGE_SIZE).ok()) ++bad;
      }
      for (uint64_t i = 0; i < kPages; ++i) {
        fill(want.data(), i, pass, id);
        if (!access_read(mm, base[id] + i * PAGE_SIZE, buf.data(), PAGE_SIZE).ok() || buf != want)
          ++bad;
      }
    }
  };
  std::thread forker([&] {
    auto scope = CpuScope::bind(m, 2);
    ASSERT_TRUE(scope.ok());
    while (!done.load()) {
      Process* child = nullptr;
      if (fork_process(procs[1], &child) == 0) exit_process(child);
      std::this_thread::yield();
    }
  });
  std::thread t0(worker, 0), t1(worker, 1);
  t0.join();
  t1.join();
  done = true;
  forker.join();
  EXPECT_EQ(bad.load(), 0);
  const ZswapStats s = zswap_stats(m);
  EXPECT_GT(m.sum_event(VmEvent::ZSWPOUT), 0);
  EXPECT_GT(m.sum_event(VmEvent::ZSWPIN), 0);
  EXPECT_GT(s.pool_limit_hit, 0u);
  EXPECT_GT(s.written_back_pages, 0u);
  lru_add_drain_all(m);
  EXPECT_EQ(zswap_check(m), "");
  EXPECT_EQ(swap_check(m), "");
  EXPECT_EQ(lru_check(m), "");
  for (Process* p : procs) exit_process(p);
  test::drop_swap_cache_only_slots(m);
  EXPECT_EQ(zswap_stats(m).stored_pages, 0u);
  EXPECT_EQ(zswap_check(m), "");
  EXPECT_EQ(cg->zswap_bytes.load(), 0);
  EXPECT_EQ(cg->usage.load(), 0);
}

}  // namespace
}  // namespace mmkit
