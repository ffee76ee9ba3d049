// File mappings (vm/file_map.cc): read faults map page-cache pages, a
// shared write reaches the file through writeback (msync, fsync), a private
// write stays private, a truncated page faults with SIGBUS, fork shares the
// mapping, and reclaim unmaps and drops mapped file pages under a memory
// cgroup's limit with nothing lost; a read fault maps the cached pages
// around it (fault_around_bytes), read-only. check(mm) and filemap_check()
// hold after each step.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

// Each test runs under both LRU policies: the classic lists and lru_gen.
struct FileMapTest : ::testing::TestWithParam<bool> {
  void SetUp() override {
    MachineConfig c;
    c.cpus = 1;
    c.nodes = {NodeConfig{.memory = 64ull << 20}};
    c.swap = 64ull << 20;
    c.dirty_writeback_centisecs = 0;
    c.lru_gen = GetParam();
    auto r = boot_with_reclaim(c);
    ASSERT_TRUE(r.ok()) << r.error().message;
    m = std::move(r.value());
    ASSERT_EQ(spawn(*m, "mapper", &p), 0);
  }
  void TearDown() override {
    if (p) exit_process(p);
  }
  // A file of `pages` pages, page i filled with byte i + 1.
  int make_file(const char* name, uint64_t pages) {
    const int fd = sys_open(*m, p->files, name, O_CREAT | O_RDWR | O_TRUNC);
    std::vector<char> buf(PAGE_SIZE);
    for (uint64_t i = 0; i < pages; ++i) {
      std::fill(buf.begin(), buf.end(), static_cast<char>(i + 1));
      sys_write(*m, p->files, fd, buf.data(), PAGE_SIZE);
    }
    return fd;
  }
  char host_byte(const char* name, uint64_t off) {
    const int fd = open(fs_host_path(*m, name).c_str(), O_RDONLY);
    char c = 0;
    EXPECT_EQ(pread(fd, &c, 1, static_cast<off_t>(off)), 1);
    close(fd);
    return c;
  }
  void checks() {
    EXPECT_EQ(check(p->mm), "");
    EXPECT_EQ(filemap_check(*m), "");
    lru_add_drain_all(*m);
    EXPECT_EQ(lru_check(*m), "");
  }
  std::unique_ptr<Machine> m;
  Process* p = nullptr;
};

// mmap_miss (mm/filemap.c): faults that miss the cache read 32 pages
// around them until misses outnumber hits by MMAP_LOTSAMISS (100); after
// that a miss reads only its page, and hits (fault-around's mapped pages
// included) bring the read-around back. Worked by hand: a fault every 64
// pages of a cold file never finds its neighbours cached.
TEST_P(FileMapTest, ReadAroundStopsWhenMissesOutnumberHits) {
  constexpr uint64_t kStride = 64, kFaults = 300;
  const int fd = sys_open(*m, p->files, "sparse", O_CREAT | O_RDWR | O_TRUNC);
  ASSERT_GE(fd, 0);
  // A hole of (kFaults + 1) strides: nothing of it is cached.
  ASSERT_EQ(sys_ftruncate(*m, p->files, fd, (kFaults + 1) * kStride * PAGE_SIZE), 0);
  const int64_t a = do_mmap_fd(p->mm, p->files, 0, (kFaults + 1) * kStride * PAGE_SIZE, PROT_READ,
                               MAP_SHARED, fd, 0);
  ASSERT_GT(a, 0);
  const auto base = static_cast<uint64_t>(a);
  auto cached = [&] { return m->node_stat_sum(NodeStat::NR_FILE_PAGES); };
  const int64_t before = cached();
  char c = 1;
  for (uint64_t k = 0; k < kFaults; ++k)
    ASSERT_TRUE(access_read(p->mm, base + k * kStride * PAGE_SIZE, &c, 1).ok()) << k;
  EXPECT_EQ(c, 0);
  // 100 misses read 32 pages each (the first from page 0), 200 only their own.
  EXPECT_EQ(cached() - before, 100 * 32 + 200);
  // Hits: the page after each of the first 100 faults is cached; its fault
  // maps it and the 14 others of its 16-page window (fault-around), paying
  // 15 misses back each: 1500 > 300.
  for (uint64_t k = 0; k < 100; ++k)
    ASSERT_TRUE(access_read(p->mm, base + (k * kStride + 1) * PAGE_SIZE, &c, 1).ok()) << k;
  const int64_t after_hits = cached();
  EXPECT_EQ(after_hits - before, 100 * 32 + 200);
  // The next miss reads around again.
  ASSERT_TRUE(access_read(p->mm, base + kFaults * kStride * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(cached() - after_hits, 32);
  checks();
}

INSTANTIATE_TEST_SUITE_P(Lru, FileMapTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "LruGen" : "Classic";
                         });

TEST_P(FileMapTest, SharedWritesReachTheFilePrivateOnesDoNot) {
  const int fd = make_file("data", 8);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  const int64_t sh =
      do_mmap_fd(p->mm, p->files, 0, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int64_t pr = do_mmap_fd(p->mm, p->files, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE, fd, 4 * PAGE_SIZE);
  ASSERT_GT(sh, 0);
  ASSERT_GT(pr, 0);
  char c = 0;
  ASSERT_TRUE(access_read(p->mm, sh + 3 * PAGE_SIZE + 7, &c, 1).ok());
  EXPECT_EQ(c, 4);
  ASSERT_TRUE(access_read(p->mm, pr + PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 6);  // file page 5
  EXPECT_GT(m->node_stat_sum(NodeStat::NR_FILE_MAPPED), 0);
  checks();
  // A shared write dirties the page-cache page; msync writes it back.
  c = 'S';
  ASSERT_TRUE(access_write(p->mm, sh + 2 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_DIRTY), 1);
  ASSERT_EQ(do_msync(p->mm, sh, 8 * PAGE_SIZE, MS_SYNC), 0);
  EXPECT_EQ(host_byte("data", 2 * PAGE_SIZE), 'S');
  // Written again after the writeback: the PTE was cleaned, so it faults
  // and dirties the page again, and fsync sees it.
  c = 'T';
  ASSERT_TRUE(access_write(p->mm, sh + 2 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_DIRTY), 1);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  EXPECT_EQ(host_byte("data", 2 * PAGE_SIZE), 'T');
  // read() sees what the mapping wrote (one page cache).
  ASSERT_EQ(sys_pread(*m, p->files, fd, &c, 1, 2 * PAGE_SIZE), 1);
  EXPECT_EQ(c, 'T');
  // A private write copies: the file and the shared view keep the old byte.
  c = 'P';
  ASSERT_TRUE(access_write(p->mm, pr, &c, 1).ok());
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  EXPECT_EQ(host_byte("data", 4 * PAGE_SIZE), 5);
  ASSERT_TRUE(access_read(p->mm, sh + 4 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 5);
  ASSERT_TRUE(access_read(p->mm, pr, &c, 1).ok());
  EXPECT_EQ(c, 'P');
  checks();
  // A shared writable mapping of a read-only open is refused.
  const int ro = sys_open(*m, p->files, "data", O_RDONLY);
  EXPECT_EQ(do_mmap_fd(p->mm, p->files, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0),
            -EACCES);
  EXPECT_EQ(do_mmap_fd(p->mm, p->files, 0, PAGE_SIZE, PROT_READ, MAP_SHARED, 99, 0), -EBADF);
  EXPECT_EQ(do_mmap_fd(p->mm, p->files, 0, PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 100), -EINVAL);
  ASSERT_EQ(do_munmap(p->mm, sh, 8 * PAGE_SIZE), 0);
  ASSERT_EQ(do_munmap(p->mm, pr, 4 * PAGE_SIZE), 0);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_MAPPED), 0);
  checks();
}

TEST_P(FileMapTest, TruncateUnmapsAndPastTheEndIsSigbus) {
  const int fd = make_file("t", 4);
  const int64_t a =
      do_mmap_fd(p->mm, p->files, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_GT(a, 0);
  char c = 'x';
  ASSERT_TRUE(access_write(p->mm, a + 3 * PAGE_SIZE, &c, 1).ok());
  ASSERT_EQ(sys_ftruncate(*m, p->files, fd, PAGE_SIZE + 10), 0);
  checks();
  ASSERT_TRUE(access_read(p->mm, a + PAGE_SIZE + 9, &c, 1).ok());
  EXPECT_EQ(c, 2);
  ASSERT_TRUE(access_read(p->mm, a + PAGE_SIZE + 10, &c, 1).ok());
  EXPECT_EQ(c, 0);  // the cut page is zero past the end
  const FaultResult r = handle_mm_fault(p->mm, a + 3 * PAGE_SIZE, Access::kRead);
  EXPECT_EQ(r.status, FaultStatus::kSigbus);
  checks();
}

TEST_P(FileMapTest, ForkSharesAndReclaimUnmapsMappedFilePages) {
  constexpr uint64_t kPages = 512;
  const int fd = make_file("big", kPages);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  MemCgroup* cg = mem_cgroup_create(*m, "small", 96 * PAGE_SIZE);
  ASSERT_NE(cg, nullptr);
  p->mm->memcg = p->files.memcg = cg;
  ASSERT_EQ(drop_caches(*m, 1), 0);
  const int64_t a =
      do_mmap_fd(p->mm, p->files, 0, kPages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_GT(a, 0);
  // Every page faulted in (and written) through a group of 96 pages:
  // reclaim must unmap mapped file pages and write the dirty ones back.
  for (uint64_t i = 0; i < kPages; ++i) {
    char c = 0;
    ASSERT_TRUE(access_read(p->mm, a + i * PAGE_SIZE, &c, 1).ok()) << i;
    ASSERT_EQ(c, static_cast<char>(i + 1)) << i;
    if (i % 3 == 0) {
      c = static_cast<char>(0x80 | i);
      ASSERT_TRUE(access_write(p->mm, a + i * PAGE_SIZE + 1, &c, 1).ok());
    }
  }
  EXPECT_LE(cg->peak.load(), 96);
  EXPECT_GT(m->sum_event(VmEvent::PGSTEAL_FILE), 0);
  Process* child = nullptr;
  ASSERT_EQ(fork_process(p, &child), 0);
  for (uint64_t i = 0; i < kPages; i += 3) {
    char c = 0;
    ASSERT_TRUE(access_read(child->mm, a + i * PAGE_SIZE + 1, &c, 1).ok());
    EXPECT_EQ(c, static_cast<char>(0x80 | i)) << i;
  }
  EXPECT_EQ(check(child->mm), "");
  exit_process(child);
  ASSERT_EQ(do_msync(p->mm, a, kPages * PAGE_SIZE, MS_SYNC), 0);
  for (uint64_t i = 0; i < kPages; i += 3)
    EXPECT_EQ(host_byte("big", i * PAGE_SIZE + 1), static_cast<char>(0x80 | i)) << i;
  lru_add_drain_all(*m);
  checks();
  EXPECT_EQ(lru_check(*m), "");
}

// The page-table entry at `addr`: 0 (none), 'r' (read-only) or 'w'.
char pte_state(MmStruct* mm, uint64_t addr) {
  const pteval_t v = pte_get(mm->pgd, addr);
  if (!pte_present(v)) return 0;
  return (v & _PAGE_RW) ? 'w' : 'r';
}

// The pages of [addr, addr + pages * PAGE_SIZE) that are mapped.
uint64_t mapped_pages(MmStruct* mm, uint64_t addr, uint64_t pages) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < pages; ++i) n += pte_state(mm, addr + i * PAGE_SIZE) != 0;
  return n;
}

TEST_P(FileMapTest, FaultAroundMapsTheCachedWindowReadOnly) {
  EXPECT_EQ(m->fault_around_bytes, 65536u);  // Linux's default
  const int fd = make_file("fa", 64);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  constexpr uint64_t kShared = 0x40000000, kPrivate = 0x40100000;
  ASSERT_EQ(do_mmap_fd(p->mm, p->files, kShared, 64 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_FIXED, fd, 0),
            static_cast<int64_t>(kShared));
  // A read of page 20: the 16-page window [16, 32) aligned on 64 KiB.
  char c = 0;
  ASSERT_TRUE(access_read(p->mm, kShared + 20 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 21);
  EXPECT_EQ(p->mm->min_flt.load(), 1u);
  EXPECT_EQ(p->mm->get_mm_counter(MM_FILEPAGES), 16u);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_MAPPED), 16);
  EXPECT_EQ(mapped_pages(p->mm, kShared, 16), 0u);
  EXPECT_EQ(mapped_pages(p->mm, kShared + 32 * PAGE_SIZE, 32), 0u);
  for (uint64_t i = 16; i < 32; ++i) EXPECT_EQ(pte_state(p->mm, kShared + i * PAGE_SIZE), 'r') << i;
  checks();
  // The neighbours read without a fault; a write to one still faults and
  // dirties its page (writenotify).
  ASSERT_TRUE(access_read(p->mm, kShared + 31 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 32);
  EXPECT_EQ(p->mm->min_flt.load(), 1u);
  c = 'W';
  ASSERT_TRUE(access_write(p->mm, kShared + 17 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(pte_state(p->mm, kShared + 17 * PAGE_SIZE), 'w');
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_DIRTY), 1);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  EXPECT_EQ(host_byte("fa", 17 * PAGE_SIZE), 'W');
  checks();
  // A write fault does not fault around.
  ASSERT_TRUE(access_write(p->mm, kShared + 40 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(mapped_pages(p->mm, kShared + 32 * PAGE_SIZE, 32), 1u);

  // A private mapping: the window is mapped read-only, and a write to a
  // page of it copies, leaving the file and the shared view alone.
  ASSERT_EQ(do_mmap_fd(p->mm, p->files, kPrivate, 64 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_FIXED, fd, 0),
            static_cast<int64_t>(kPrivate));
  ASSERT_TRUE(access_read(p->mm, kPrivate + 3 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(mapped_pages(p->mm, kPrivate, 64), 16u);
  EXPECT_EQ(pte_state(p->mm, kPrivate + 5 * PAGE_SIZE), 'r');
  c = 'P';
  ASSERT_TRUE(access_write(p->mm, kPrivate + 5 * PAGE_SIZE, &c, 1).ok());
  ASSERT_TRUE(access_read(p->mm, kShared + 5 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 6);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  EXPECT_EQ(host_byte("fa", 5 * PAGE_SIZE), 6);
  EXPECT_EQ(p->mm->get_mm_counter(MM_ANONPAGES), 1u);
  checks();

  // Forked, the child maps the same pages; then everything goes.
  Process* child = nullptr;
  ASSERT_EQ(fork_process(p, &child), 0);
  ASSERT_TRUE(access_read(child->mm, kShared + 50 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 51);
  EXPECT_EQ(check(child->mm), "");
  exit_process(child);
  ASSERT_EQ(do_munmap(p->mm, kShared, 64 * PAGE_SIZE), 0);
  ASSERT_EQ(do_munmap(p->mm, kPrivate, 64 * PAGE_SIZE), 0);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_MAPPED), 0);
  checks();
}

TEST_P(FileMapTest, FaultAroundIsClippedToTheVmaAndThePageTable) {
  const int fd = make_file("clip", 1024);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  // Five pages at file offset 10, three pages into a 64 KiB window.
  constexpr uint64_t kSmall = 0x40203000;
  ASSERT_EQ(do_mmap_fd(p->mm, p->files, kSmall, 5 * PAGE_SIZE, PROT_READ, MAP_SHARED | MAP_FIXED,
                       fd, 10 * PAGE_SIZE),
            static_cast<int64_t>(kSmall));
  char c = 0;
  ASSERT_TRUE(access_read(p->mm, kSmall + PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 12);
  EXPECT_EQ(p->mm->get_mm_counter(MM_FILEPAGES), 5u);
  ASSERT_TRUE(access_read(p->mm, kSmall + 4 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 15);
  EXPECT_EQ(p->mm->min_flt.load(), 1u);
  checks();
  // The largest window (a page table's 2 MiB) over a VMA across two
  // tables: only the faulting table's half.
  m->fault_around_bytes = 2ull << 20;
  constexpr uint64_t kWide = 0x3ff00000;
  ASSERT_EQ(do_mmap_fd(p->mm, p->files, kWide, 512 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_FIXED,
                       fd, 0),
            static_cast<int64_t>(kWide));
  ASSERT_TRUE(access_read(p->mm, 0x40000000 + 5 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, static_cast<char>(256 + 5 + 1));
  EXPECT_EQ(mapped_pages(p->mm, kWide, 256), 0u);
  EXPECT_EQ(mapped_pages(p->mm, 0x40000000, 256), 256u);
  checks();
  // A value the config would refuse is taken as Linux's setter stores it:
  // 96 KiB as 64 KiB, 8 MiB as a page table's 2 MiB.
  m->fault_around_bytes = 96 << 10;
  ASSERT_TRUE(access_read(p->mm, kWide + 100 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(mapped_pages(p->mm, kWide + 96 * PAGE_SIZE, 16), 16u);
  EXPECT_EQ(mapped_pages(p->mm, kWide + 112 * PAGE_SIZE, 8), 0u);
  m->fault_around_bytes = 8ull << 20;
  ASSERT_TRUE(access_read(p->mm, kWide + 200 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(mapped_pages(p->mm, kWide, 256), 256u);  // the lower table's half
  checks();
  ASSERT_EQ(do_munmap(p->mm, kWide, 512 * PAGE_SIZE), 0);
  ASSERT_EQ(do_mmap_fd(p->mm, p->files, kWide, 512 * PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_FIXED,
                       fd, 0),
            static_cast<int64_t>(kWide));
  // fault_around_bytes = 4096: one page a fault.
  m->fault_around_bytes = PAGE_SIZE;
  ASSERT_TRUE(access_read(p->mm, kWide + 7 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(mapped_pages(p->mm, kWide, 256), 1u);
  checks();
}

TEST_P(FileMapTest, FaultAroundMapsOnlyCachedPages) {
  const int fd = make_file("cold", 64);
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  ASSERT_EQ(drop_caches(*m, 1), 0);
  constexpr uint64_t kAt = 0x40000000;
  ASSERT_EQ(
      do_mmap_fd(p->mm, p->files, kAt, 64 * PAGE_SIZE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0),
      static_cast<int64_t>(kAt));
  // Nothing cached: the fault reads its page (and reads around it) and
  // maps that page alone.
  char c = 0;
  ASSERT_TRUE(access_read(p->mm, kAt + 2 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 3);
  EXPECT_EQ(mapped_pages(p->mm, kAt, 64), 1u);
  EXPECT_EQ(p->mm->maj_flt.load(), 1u);
  // The next fault finds the read-around pages cached and maps them.
  ASSERT_TRUE(access_read(p->mm, kAt + 3 * PAGE_SIZE, &c, 1).ok());
  EXPECT_EQ(c, 4);
  EXPECT_GT(mapped_pages(p->mm, kAt, 16), 8u);
  checks();
}

}  // namespace
}  // namespace mmkit
