// File mappings (vm/file_map.cc): read faults map page-cache pages, a
// shared write reaches the file through writeback (msync, fsync), a private
// write stays private, a truncated page faults with SIGBUS, fork shares the
// mapping, and reclaim unmaps and drops mapped file pages under a memory
// cgroup's limit with nothing lost. check(mm) and filemap_check() hold
// after each step.
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

}  // namespace
}  // namespace mmkit
