// shmem under concurrent use: two CPUs each write and read back a shared
// anonymous mapping (more than RAM between them, so kswapd and direct
// reclaim send shmem pages to swap under them), while a forked child reads
// the first mapping and a third CPU writes, reads and truncates a memfd.
// Every byte reads back, and the page-cache, swap, LRU and address-space
// checks hold at the end.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/process.h"

#include "../support/settled_check.h"

namespace mmkit {
namespace {

uint64_t word_at(int id, int pass, uint64_t page) {
  return (page << 16) | (static_cast<uint64_t>(pass) << 8) | static_cast<uint64_t>(id + 1);
}

TEST(ShmemConcurrency, SharedMappingsSwapUnderWritersAForkedReaderAndAMemfd) {
  MachineConfig c;
  c.cpus = 3;
  c.nodes = {NodeConfig{.memory = 24ull << 20}};
  c.swap = 64ull << 20;
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  constexpr uint64_t kPages = (14ull << 20) / PAGE_SIZE;  // per writer: 28 MiB in all
  Process* procs[2] = {};
  uint64_t base[2] = {};
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(spawn(m, i ? "b" : "a", &procs[i]), 0);
    const int64_t a = do_mmap(procs[i]->mm, 0, kPages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS);
    ASSERT_GT(a, 0);
    base[i] = static_cast<uint64_t>(a);
  }
  Process* child = nullptr;
  ASSERT_EQ(fork_process(procs[0], &child), 0);
  std::atomic<int> bad{0};
  std::atomic<bool> done{false};
  auto writer = [&](int id) {
    auto scope = CpuScope::bind(m, id);
    ASSERT_TRUE(scope.ok());
    MmStruct* mm = procs[id]->mm;
    for (int pass = 1; pass <= 2; ++pass) {
      for (uint64_t i = 0; i < kPages; ++i) {
        const uint64_t w = word_at(id, pass, i);
        if (!access_write(mm, base[id] + i * PAGE_SIZE + 16, &w, sizeof w).ok()) ++bad;
      }
      for (uint64_t i = 0; i < kPages; ++i) {
        uint64_t w = 0;
        if (!access_read(mm, base[id] + i * PAGE_SIZE + 16, &w, sizeof w).ok() ||
            w != word_at(id, pass, i))
          ++bad;
      }
    }
  };
  std::thread other([&] {
    auto scope = CpuScope::bind(m, 2);
    ASSERT_TRUE(scope.ok());
    FileTable& ft = child->files;
    const int fd = sys_memfd_create(m, ft, "scratch", 0);
    if (fd < 0) ++bad;
    std::vector<uint8_t> buf(16 * PAGE_SIZE);
    for (int round = 0; !done.load(); ++round) {
      // The child sees the parent's words: zero, or a pass's.
      for (uint64_t i = round % 7; i < kPages; i += 61) {
        uint64_t w = 0;
        if (!access_read(child->mm, base[0] + i * PAGE_SIZE + 16, &w, sizeof w).ok() ||
            (w != 0 && w != word_at(0, 1, i) && w != word_at(0, 2, i)))
          ++bad;
      }
      std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(round));
      if (sys_pwrite(m, ft, fd, buf.data(), buf.size(), 0) != static_cast<int64_t>(buf.size()))
        ++bad;
      std::vector<uint8_t> got(buf.size());
      if (sys_pread(m, ft, fd, got.data(), got.size(), 0) != static_cast<int64_t>(got.size()) ||
          got != buf)
        ++bad;
      sys_ftruncate(m, ft, fd, static_cast<uint64_t>(round % 5) * 3000);
    }
    sys_close(m, ft, fd);
  });
  std::thread t0(writer, 0), t1(writer, 1);
  t0.join();
  t1.join();
  done.store(true);
  other.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(m.sum_event(VmEvent::PSWPOUT), 0);
  lru_add_drain_all(m);
  // kswapd may still be reclaiming: a check that meets it is taken again.
  EXPECT_EQ(test::settled_check([&] { return filemap_check(m); }), "");
  EXPECT_EQ(test::settled_check([&] { return lru_check(m); }), "");
  EXPECT_EQ(test::settled_check([&] { return swap_check(m); }), "");
  for (Process* p : procs) EXPECT_EQ(check(p->mm), "");
  EXPECT_EQ(check(child->mm), "");
  exit_process(child);
  for (Process* p : procs) exit_process(p);
  lru_add_drain_all(m);
  EXPECT_EQ(m.node_stat_sum(NodeStat::NR_SHMEM), 0);
  EXPECT_EQ(test::settled_check([&] { return filemap_check(m); }), "");
  EXPECT_EQ(swap_check(m), "");
}

}  // namespace
}  // namespace mmkit
