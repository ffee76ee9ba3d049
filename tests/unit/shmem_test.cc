// shmem (filemap/shmem.cc): memfd files and shared anonymous mappings live
// in the page cache as swap-backed pages. Holes read as zeros, a truncate
// zeroes what it cuts, reclaim sends pages to swap through the index's swap
// entries and faults, reads and swapoff bring them back, with every byte
// the same; the counters (NR_SHMEM, MM_SHMEMPAGES, nrswapped, the commit
// charge) follow. check(mm), filemap_check() and swap_check() hold after
// each step.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "memcg/memcontrol.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"

namespace mmkit {
namespace {

// Each test runs under both LRU policies: the classic lists and lru_gen.
struct ShmemTest : ::testing::TestWithParam<bool> {
  void SetUp() override {
    MachineConfig c;
    c.cpus = 1;
    c.nodes = {NodeConfig{.memory = 64ull << 20}};
    c.swap = 64ull << 20;
    c.lru_gen = GetParam();
    auto r = boot_with_reclaim(c);
    ASSERT_TRUE(r.ok()) << r.error().message;
    m = std::move(r.value());
    ASSERT_EQ(spawn(*m, "shm", &p), 0);
  }
  void TearDown() override {
    if (p) exit_process(p);
  }
  void checks() {
    lru_add_drain_all(*m);
    EXPECT_EQ(check(p->mm), "");
    EXPECT_EQ(filemap_check(*m), "");
    EXPECT_EQ(lru_check(*m), "");
    EXPECT_EQ(swap_check(*m), "");
  }
  // Puts the process in a memory cgroup of `pages` pages.
  void confine(uint64_t pages) {
    MemCgroup* cg = mem_cgroup_create(*m, "small", pages * PAGE_SIZE);
    ASSERT_NE(cg, nullptr);
    p->mm->memcg = p->files.memcg = cg;
  }
  static char pattern(uint64_t page, uint64_t off) {
    return static_cast<char>((page * 131 + off * 7 + 1) & 0xff);
  }
  void write_pattern(uint64_t addr, uint64_t pages) {
    std::vector<char> buf(PAGE_SIZE);
    for (uint64_t i = 0; i < pages; ++i) {
      for (uint64_t o = 0; o < PAGE_SIZE; ++o) buf[o] = pattern(i, o);
      ASSERT_TRUE(access_write(p->mm, addr + i * PAGE_SIZE, buf.data(), PAGE_SIZE).ok()) << i;
    }
  }
  // A shared anonymous mapping of `pages` pages, every page written with
  // the pattern; 0 (and a failure) when it cannot be mapped.
  uint64_t map_shared_written(uint64_t pages) {
    const int64_t a =
        do_mmap(p->mm, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    EXPECT_GT(a, 0);
    if (a <= 0) return 0;
    write_pattern(static_cast<uint64_t>(a), pages);
    return static_cast<uint64_t>(a);
  }
  void verify_pattern(uint64_t addr, uint64_t pages, MmStruct* mm = nullptr) {
    std::vector<char> buf(PAGE_SIZE);
    for (uint64_t i = 0; i < pages; ++i) {
      ASSERT_TRUE(access_read(mm ? mm : p->mm, addr + i * PAGE_SIZE, buf.data(), PAGE_SIZE).ok());
      for (uint64_t o = 0; o < PAGE_SIZE; o += 509)
        ASSERT_EQ(buf[o], pattern(i, o)) << i << "+" << o;
    }
  }
  std::unique_ptr<Machine> m;
  Process* p = nullptr;
};

INSTANTIATE_TEST_SUITE_P(Lru, ShmemTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "LruGen" : "Classic";
                         });

TEST_P(ShmemTest, MemfdHolesReadAsZerosAndTruncateZeroesWhatItCuts) {
  const int fd = sys_memfd_create(*m, p->files, "buf", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  char c = 'x';
  ASSERT_EQ(sys_pwrite(*m, p->files, fd, &c, 1, 5 * PAGE_SIZE + 10), 1);
  std::vector<char> buf(6 * PAGE_SIZE, 'q');
  ASSERT_EQ(sys_pread(*m, p->files, fd, buf.data(), buf.size(), 0),
            static_cast<int64_t>(5 * PAGE_SIZE + 11));
  for (uint64_t i = 0; i < 5 * PAGE_SIZE + 10; ++i) ASSERT_EQ(buf[i], 0) << i;
  EXPECT_EQ(buf[5 * PAGE_SIZE + 10], 'x');
  // Only the written page exists: the holes took none.
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_SHMEM), 1);
  const std::string meminfo = render_meminfo(*m);
  EXPECT_NE(meminfo.find("Shmem:                 4 kB"), std::string::npos) << meminfo;
  // Cut inside the page, then grow again: the cut bytes read as zeros.
  ASSERT_EQ(sys_ftruncate(*m, p->files, fd, 5 * PAGE_SIZE + 4), 0);
  ASSERT_EQ(sys_ftruncate(*m, p->files, fd, 6 * PAGE_SIZE), 0);
  ASSERT_EQ(sys_pread(*m, p->files, fd, &c, 1, 5 * PAGE_SIZE + 10), 1);
  EXPECT_EQ(c, 0);
  EXPECT_EQ(sys_fsync(*m, p->files, fd), 0);
  checks();
  ASSERT_EQ(sys_ftruncate(*m, p->files, fd, 0), 0);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_SHMEM), 0);
  EXPECT_EQ(sys_close(*m, p->files, fd), 0);
  checks();
}

TEST_P(ShmemTest, MemfdRejectsBadFlagsAndLongNames) {
  EXPECT_EQ(sys_memfd_create(*m, p->files, "x", 0x100), -EINVAL);
  EXPECT_EQ(sys_memfd_create(*m, p->files, std::string(250, 'n'), 0), -EINVAL);
  EXPECT_GE(sys_memfd_create(*m, p->files, std::string(249, 'n'), MFD_ALLOW_SEALING), 0);
}

TEST_P(ShmemTest, SharedAnonymousGoesToSwapAndComesBackWhole) {
  constexpr uint64_t kPages = 512;
  const uint64_t committed = vm_memory_committed(*m);
  confine(96);
  const int64_t a =
      do_mmap(p->mm, 0, kPages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_GT(a, 0);
  EXPECT_EQ(vm_memory_committed(*m), committed + kPages);
  write_pattern(static_cast<uint64_t>(a), kPages);
  // 512 pages through a group of 96: most went to swap through the index.
  EXPECT_LT(m->node_stat_sum(NodeStat::NR_SHMEM), 200);
  EXPECT_GT(m->sum_event(VmEvent::PSWPOUT), 0);
  checks();
  verify_pattern(static_cast<uint64_t>(a), kPages);
  checks();
  // A child shares the pages: it reads what the parent wrote, and the
  // parent reads what the child writes.
  Process* child = nullptr;
  ASSERT_EQ(fork_process(p, &child), 0);
  verify_pattern(static_cast<uint64_t>(a), kPages, child->mm);
  char c = 0x5a;
  ASSERT_TRUE(access_write(child->mm, a + 7 * PAGE_SIZE + 3, &c, 1).ok());
  EXPECT_EQ(check(child->mm), "");
  exit_process(child);
  c = 0;
  ASSERT_TRUE(access_read(p->mm, a + 7 * PAGE_SIZE + 3, &c, 1).ok());
  EXPECT_EQ(c, 0x5a);
  checks();
  // munmap: the file goes with its pages, swap entries and charge.
  ASSERT_EQ(do_munmap(p->mm, static_cast<uint64_t>(a), kPages * PAGE_SIZE), 0);
  lru_add_drain_all(*m);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_SHMEM), 0);
  EXPECT_EQ(vm_memory_committed(*m), committed);
  try_to_reclaim_swap_cache(*m);
  EXPECT_EQ(swap_free_pages(*m), swap_total_pages(*m));
  checks();
}

// memory.stat's shmem and file_mapped count the group's own pages: a shared
// anonymous mapping of 32 pages, all written, is 32 shmem pages mapped once
// each; the root group has none of them; munmap takes both back to 0.
TEST_P(ShmemTest, MemoryStatCountsTheGroupsShmemAndMappedPages) {
  constexpr uint64_t kPages = 32;
  confine(1024);
  const uint64_t a = map_shared_written(kPages);
  ASSERT_NE(a, 0u);
  checks();
  auto stat_of = [](MemCgroup* cg, const std::string& key) {
    std::string text;
    EXPECT_TRUE(mem_cgroup_read(cg, "memory.stat", &text));
    const size_t at = text.find("\n" + key + " ");
    EXPECT_NE(at, std::string::npos) << key;
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size() + 2));
  };
  const int64_t bytes = static_cast<int64_t>(kPages * PAGE_SIZE);
  EXPECT_EQ(stat_of(p->mm->memcg, "shmem"), bytes);
  EXPECT_EQ(stat_of(p->mm->memcg, "file_mapped"), bytes);
  EXPECT_EQ(stat_of(root_mem_cgroup(*m), "shmem"), 0);
  EXPECT_EQ(stat_of(root_mem_cgroup(*m), "file_mapped"), 0);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_MAPPED), static_cast<int64_t>(kPages));
  ASSERT_EQ(do_munmap(p->mm, a, kPages * PAGE_SIZE), 0);
  lru_add_drain_all(*m);
  EXPECT_EQ(stat_of(p->mm->memcg, "shmem"), 0);
  EXPECT_EQ(stat_of(p->mm->memcg, "file_mapped"), 0);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_MAPPED), 0);
  checks();
}

TEST_P(ShmemTest, MemfdMappingAndFdSeeTheSameBytesUnderPressure) {
  constexpr uint64_t kPages = 384;
  confine(64);
  const int fd = sys_memfd_create(*m, p->files, "shared", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(sys_ftruncate(*m, p->files, fd, kPages * PAGE_SIZE), 0);
  const int64_t a =
      do_mmap_fd(p->mm, p->files, 0, kPages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_GT(a, 0);
  const int64_t priv = do_mmap_fd(p->mm, p->files, 0, kPages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE, fd, 0);
  ASSERT_GT(priv, 0);
  write_pattern(static_cast<uint64_t>(a), kPages);
  checks();
  std::vector<char> buf(PAGE_SIZE);
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(sys_pread(*m, p->files, fd, buf.data(), PAGE_SIZE, i * PAGE_SIZE),
              static_cast<int64_t>(PAGE_SIZE));
    for (uint64_t o = 0; o < PAGE_SIZE; o += 401) ASSERT_EQ(buf[o], pattern(i, o)) << i;
  }
  // A private mapping reads the file's bytes and keeps its writes.
  char c = 0;
  ASSERT_TRUE(access_read(p->mm, priv + 9 * PAGE_SIZE + 2, &c, 1).ok());
  EXPECT_EQ(c, pattern(9, 2));
  c = 0x11;
  ASSERT_TRUE(access_write(p->mm, priv + 9 * PAGE_SIZE + 2, &c, 1).ok());
  ASSERT_EQ(sys_pread(*m, p->files, fd, &c, 1, 9 * PAGE_SIZE + 2), 1);
  EXPECT_EQ(c, pattern(9, 2));
  // A write through the fd shows through the shared mapping.
  c = 0x22;
  ASSERT_EQ(sys_pwrite(*m, p->files, fd, &c, 1, 100 * PAGE_SIZE), 1);
  ASSERT_TRUE(access_read(p->mm, a + 100 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 0x22);
  checks();
  // Truncating the file unmaps the pages past the end: SIGBUS there.
  ASSERT_EQ(sys_ftruncate(*m, p->files, fd, 10 * PAGE_SIZE), 0);
  EXPECT_EQ(access_read(p->mm, a + 20 * PAGE_SIZE, &c, 1).status, FaultStatus::kSigbus);
  verify_pattern(static_cast<uint64_t>(a), 10);
  checks();
  EXPECT_EQ(sys_close(*m, p->files, fd), 0);
}

// smaps_rollup's Swap counts a shmem mapping's pages in swap, which are
// entries of the shmem file's index, not of the page tables
// (smap_gather_stats()): all of the file's for a mapping of the whole file,
// those in range for part of it, and for a private writable mapping only the
// indexes where it has no page of its own (its copies in swap count as
// swap entries of the page table, as VmSwap does).
TEST_P(ShmemTest, SmapsRollupCountsShmemPagesInSwap) {
  constexpr uint64_t kPages = 256;
  confine(64);
  const int fd = sys_memfd_create(*m, p->files, "rollup", 0);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(kPages * PAGE_SIZE, 's');
  ASSERT_EQ(sys_write(*m, p->files, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  auto map = [&](uint64_t pages, int flags, uint64_t pgoff) {
    const int64_t a = do_mmap_fd(p->mm, p->files, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                                 flags, fd, pgoff * PAGE_SIZE);
    EXPECT_GT(a, 0);
    return static_cast<uint64_t>(a);
  };
  map(kPages, MAP_SHARED, 0);
  map(64, MAP_SHARED, 64);
  const uint64_t priv = map(kPages, MAP_PRIVATE, 0);
  char c = 1;
  for (uint64_t i = 200; i < 210; ++i)  // copies of their own
    ASSERT_TRUE(access_write(p->mm, priv + i * PAGE_SIZE, &c, 1).ok());
  lru_add_drain_all(*m);

  Inode& inode = *find_vma(p->mm, priv)->vm_file;
  auto in_swap = [&](uint64_t start, uint64_t end) {  // value entries of the index
    uint64_t n = 0;
    for (uint64_t i = start; i < end; ++i) n += inode.i_data.i_pages.load(i) & 1;
    return n;
  };
  ASSERT_GT(in_swap(0, kPages), 32u);
  EXPECT_EQ(inode.nrswapped.load(), in_swap(0, kPages));
  auto kb = [](const std::string& text, const std::string& label) -> int64_t {
    const size_t at = text.find("\n" + label + ":");
    return at == std::string::npos ? -1 : std::stoll(text.substr(text.find(':', at + 1) + 1));
  };
  const int64_t vmswap_kb = kb(render_view(*m, std::to_string(p->pid) + "/status"), "VmSwap");
  const uint64_t pages =
      in_swap(0, kPages) + in_swap(64, 128) + in_swap(0, 200) + in_swap(210, kPages);
  const std::string rollup = render_view(*m, std::to_string(p->pid) + "/smaps_rollup");
  EXPECT_EQ(kb(rollup, "Swap"), static_cast<int64_t>(pages * PAGE_SIZE / 1024) + vmswap_kb)
      << rollup;
  EXPECT_EQ(kb(rollup, "SwapPss"), vmswap_kb) << rollup;  // shmem adds to Swap alone
  checks();
  EXPECT_EQ(sys_close(*m, p->files, fd), 0);
}

// memory.high throttles write() as it does faults: shmem pages with no swap
// to go to cannot be reclaimed, and from 283 pages on each one-page write
// into a group of 256 sleeps 11 to 29 ms on its way out: 343 ms in all, as
// calculate_high_delay() gives (reclaim_swap_test.cc works them out).
TEST(ShmemHigh, WritesPayTheMemoryHighSleep) {
  MachineConfig c;
  c.cpus = 1;
  c.nodes = {NodeConfig{.memory = 64ull << 20}};
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = *r.value();
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "writer", &p), 0);
  MemCgroup* cg = mem_cgroup_create(m, "throttled", kMemMax);
  ASSERT_NE(cg, nullptr);
  mem_cgroup_set_high(cg, 256 * PAGE_SIZE);
  p->mm->memcg = p->files.memcg = cg;
  const int fd = sys_memfd_create(m, p->files, "buf", 0);
  ASSERT_GE(fd, 0);
  std::vector<char> page(PAGE_SIZE, 'w');
  for (int i = 0; i < 300; ++i)
    ASSERT_EQ(sys_write(m, p->files, fd, page.data(), PAGE_SIZE), static_cast<int64_t>(PAGE_SIZE));
  EXPECT_EQ(cg->usage.load(), 300);
  EXPECT_EQ(cg->high_throttle_ms.load(), 343u);
  EXPECT_EQ(sys_close(m, p->files, fd), 0);
  exit_process(p);
}

TEST_P(ShmemTest, SwapoffBringsShmemBack) {
  constexpr uint64_t kPages = 256;
  confine(48);
  const uint64_t a = map_shared_written(kPages);
  ASSERT_NE(a, 0u);
  ASSERT_LT(swap_free_pages(*m), swap_total_pages(*m));
  // Room to come back to: the group's limit goes up.
  mem_cgroup_set_max(p->mm->memcg, 1ull << 30);
  const std::vector<SwapAreaInfo> areas = swap_areas(*m);
  ASSERT_EQ(areas.size(), 1u);
  ASSERT_EQ(swapoff(*m, areas[0].path), 0);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_SHMEM), static_cast<int64_t>(kPages));
  checks();
  verify_pattern(static_cast<uint64_t>(a), kPages);
  checks();
}

}  // namespace
}  // namespace mmkit
