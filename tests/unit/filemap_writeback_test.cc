// Writeback (mm/page-writeback.c, fs/fs-writeback.c): the dirty limits
// worked out by hand from Linux's formulas, the flusher writing expired
// inodes on its own, writers throttled at dirty_bytes, reclaim leaving
// dirty file pages to the flusher (PG_reclaim) before it writes any itself,
// and a memory cgroup as a dirty domain of its own (its limits worked out
// by hand, its writer throttled, its memory.stat counts).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "memcg/memcg_state.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

std::unique_ptr<Machine> boot_files(MachineConfig c) {
  if (c.nodes.empty()) c.nodes = {NodeConfig{.memory = 64ull << 20}};
  auto r = boot_with_reclaim(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

int64_t stat(const Machine& m, NodeStat s) {
  return m.node_stat_sum(s);
}

// Waits (up to 20 s: sanitizer builds are slow) until `done` holds.
template <class F>
bool eventually(F&& done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// Opens `name` in p's table, sizes it to `pages` and maps it shared and
// writable: the mapping's address, or 0 when a step failed.
uint64_t map_shared_file(Machine& m, Process* p, const char* name, uint64_t pages, int* fd) {
  FileTable& ft = p->files;
  *fd = sys_open(m, ft, name, O_CREAT | O_RDWR);
  if (*fd < 0 || sys_ftruncate(m, ft, *fd, pages * PAGE_SIZE) != 0) return 0;
  const int64_t a =
      do_mmap_fd(p->mm, ft, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  return a > 0 ? static_cast<uint64_t>(a) : 0;
}

// Stores `value` in every byte of page i of the mapping at `a`.
bool store_page(Process* p, uint64_t a, uint64_t i, char value) {
  const std::vector<char> page(PAGE_SIZE, value);
  return access_write(p->mm, a + i * PAGE_SIZE, page.data(), PAGE_SIZE).ok();
}

TEST(FilemapWriteback, DirtyLimitsFromRatiosAsDomainDirtyLimits) {
  MachineConfig c;
  c.dirty_writeback_centisecs = 0;  // no periodic flusher: nothing moves meanwhile
  auto mp = boot_files(c);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  // global_dirtyable_memory(): free - totalreserve + file LRU + 1; no
  // highmem on x86_64.
  const uint64_t free = nr_free_pages(m), reserve = totalreserve_pages(m);
  ASSERT_EQ(global_dirtyable_memory(m), free - reserve + 1);
  // Ratios are scaled to pages first: 20% is 20 * 4096 / 100 = 819 parts of
  // 4096 (not 819.2), 10% is 409. So on A dirtyable pages thresh is
  // 819 * A / 4096 and background 409 * A / 4096, each a little below the
  // exact percentage: for A = 10001, 1999 and 998 rather than 2000 and 1000.
  const uint64_t a = global_dirtyable_memory(m);
  const DirtyLimits d = global_dirty_limits(m);
  EXPECT_EQ(d.thresh, 819 * a / 4096);
  EXPECT_EQ(d.background, 409 * a / 4096);
  // The file LRU counts as dirtyable: 256 pages of cache add 256 to A
  // (free pages drop by the same 256 and come back through the LRU).
  FileTable ft;
  const int fd = sys_open(m, ft, "f", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(256 * PAGE_SIZE, 'x');
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  lru_add_drain_all(m);
  const uint64_t file_lru = static_cast<uint64_t>(stat(m, NodeStat::NR_INACTIVE_FILE) +
                                                  stat(m, NodeStat::NR_ACTIVE_FILE));
  EXPECT_EQ(file_lru, 256u);
  const uint64_t free2 = nr_free_pages(m);
  EXPECT_EQ(global_dirtyable_memory(m), free2 - std::min(free2, reserve) + file_lru + 1);
  sys_close(m, ft, fd);
}

TEST(FilemapWriteback, BytesFormsAndTheBackgroundCap) {
  MachineConfig c;
  c.dirty_writeback_centisecs = 0;
  c.dirty_bytes = 1ull << 20;                   // 256 pages
  c.dirty_background_bytes = (2ull << 20) + 1;  // 513 pages: above thresh
  auto mp = boot_files(c);
  ASSERT_TRUE(mp);
  const DirtyLimits d = global_dirty_limits(*mp);
  EXPECT_EQ(d.thresh, 256u);
  // background >= thresh: Linux makes it half of thresh.
  EXPECT_EQ(d.background, 128u);
  // A ratio of 0 with no bytes form: both limits 0 (every write throttles).
  MachineConfig z;
  z.dirty_writeback_centisecs = 0;
  z.dirty_ratio = 0;
  z.dirty_background_ratio = 0;
  auto mz = boot_files(z);
  ASSERT_TRUE(mz);
  EXPECT_EQ(global_dirty_limits(*mz).thresh, 0u);
  EXPECT_EQ(global_dirty_limits(*mz).background, 0u);
}

TEST(FilemapWriteback, TheFlusherWritesExpiredInodesOnItsOwn) {
  MachineConfig c;
  c.dirty_writeback_centisecs = 1;  // wake every 10 ms
  c.dirty_expire_centisecs = 2;     // write what is 20 ms old
  auto mp = boot_files(c);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  FileTable ft;
  const int fd = sys_open(m, ft, "log", O_CREAT | O_WRONLY);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(10 * PAGE_SIZE + 123);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i * 7);
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  // No fsync: the flusher alone brings the host file up to date.
  EXPECT_TRUE(eventually([&] { return stat(m, NodeStat::NR_FILE_DIRTY) == 0; }));
  EXPECT_GE(stat(m, NodeStat::NR_WRITTEN), 11);
  const int hfd = open(fs_host_path(m, "log").c_str(), O_RDONLY);
  ASSERT_GE(hfd, 0);
  std::vector<char> host(buf.size() + 10);
  EXPECT_EQ(pread(hfd, host.data(), host.size(), 0), static_cast<ssize_t>(buf.size()));
  close(hfd);
  host.resize(buf.size());
  EXPECT_EQ(host, buf);
  EXPECT_EQ(filemap_check(m), "");
  sys_close(m, ft, fd);
}

TEST(FilemapWriteback, WritersAreThrottledAtDirtyBytes) {
  MachineConfig c;
  c.dirty_writeback_centisecs = 0;  // only the thresholds wake the flusher
  c.dirty_bytes = 64ull << 10;      // 16 pages
  c.dirty_background_bytes = 32ull << 10;
  auto mp = boot_files(c);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  FileTable ft;
  const int fd = sys_open(m, ft, "big", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  constexpr uint64_t kPages = 2048;
  std::vector<char> page(PAGE_SIZE);
  int64_t most_dirty = 0;
  for (uint64_t i = 0; i < kPages; ++i) {
    std::fill(page.begin(), page.end(), static_cast<char>(i));
    ASSERT_EQ(sys_write(m, ft, fd, page.data(), PAGE_SIZE), static_cast<int64_t>(PAGE_SIZE));
    most_dirty = std::max(most_dirty, stat(m, NodeStat::NR_FILE_DIRTY));
  }
  // The flusher wrote while the writes went on: before any fsync, most of
  // the file is written back, and the dirty pages never came near the
  // whole file (each write over 16 pages waits for a flusher pass).
  EXPECT_GT(stat(m, NodeStat::NR_WRITTEN), static_cast<int64_t>(kPages / 2));
  EXPECT_LT(most_dirty, static_cast<int64_t>(kPages / 2));
  EXPECT_EQ(sys_fsync(m, ft, fd), 0);
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_DIRTY), 0);
  std::vector<char> got(PAGE_SIZE);
  for (uint64_t i = 0; i < kPages; i += 97) {
    ASSERT_EQ(sys_pread(m, ft, fd, got.data(), PAGE_SIZE, i * PAGE_SIZE),
              static_cast<int64_t>(PAGE_SIZE));
    EXPECT_EQ(got[0], static_cast<char>(i));
    EXPECT_EQ(got[PAGE_SIZE - 1], static_cast<char>(i));
  }
  EXPECT_EQ(filemap_check(m), "");
  sys_close(m, ft, fd);
}

// A machine with no periodic flusher pass and dirty_bytes of 16 pages
// (dirty_background_bytes 8): writers are throttled almost at once.
std::unique_ptr<Machine> boot_dirty_16_pages() {
  MachineConfig c;
  c.dirty_writeback_centisecs = 0;
  c.dirty_bytes = 64ull << 10;
  c.dirty_background_bytes = 32ull << 10;
  return boot_files(c);
}

// Byte 100 of every 61st of `pages` pages of the host file `name` is
// want(page).
template <class Want>
void expect_host_bytes(Machine& m, const char* name, uint64_t pages, Want want) {
  const int hfd = open(fs_host_path(m, name).c_str(), O_RDONLY);
  ASSERT_GE(hfd, 0);
  for (uint64_t i = 0; i < pages; i += 61) {
    char b = 0;
    ASSERT_EQ(pread(hfd, &b, 1, static_cast<off_t>(i * PAGE_SIZE + 100)), 1);
    EXPECT_EQ(b, want(i)) << "page " << i;
  }
  close(hfd);
}

// fault_dirty_shared_page(): stores through a shared mapping are throttled
// as write()'s are. With no periodic flusher, only balance_dirty_pages can
// wake it: without the fault path's look nothing would be written before
// msync, and all 2048 pages would be dirty at the end.
TEST(FilemapWriteback, MappedWritersAreThrottledAtDirtyBytes) {
  auto mp = boot_dirty_16_pages();
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "mapper", &p), 0);
  constexpr uint64_t kPages = 2048;
  int fd;
  const uint64_t a = map_shared_file(m, p, "mapped", kPages, &fd);
  ASSERT_NE(a, 0u);
  int64_t most_dirty = 0;
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_TRUE(store_page(p, a, i, static_cast<char>(i * 5 + 3)));
    most_dirty = std::max(most_dirty, stat(m, NodeStat::NR_FILE_DIRTY));
  }
  EXPECT_GT(stat(m, NodeStat::NR_WRITTEN), static_cast<int64_t>(kPages / 2));
  EXPECT_LT(most_dirty, static_cast<int64_t>(kPages / 2));
  // Every store is in the file once msync has written the rest.
  ASSERT_EQ(do_msync(p->mm, a, kPages * PAGE_SIZE, MS_SYNC), 0);
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_DIRTY), 0);
  expect_host_bytes(m, "mapped", kPages, [](uint64_t i) { return static_cast<char>(i * 5 + 3); });
  EXPECT_EQ(filemap_check(m), "");
  exit_process(p);
}

// One write() of 2048 pages against dirty_bytes of 16: the writer looks at
// the limits every 32 pages it copies (every 8 once over them), as
// generic_perform_write does, so most of the file is written back before
// the call returns and the dirty pages never come near its size.
TEST(FilemapWriteback, OneLargeWriteIsThrottledAsItGoes) {
  auto mp = boot_dirty_16_pages();
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  FileTable ft;
  const int fd = sys_open(m, ft, "large", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  constexpr uint64_t kPages = 2048;
  std::vector<char> buf(kPages * PAGE_SIZE);
  for (uint64_t i = 0; i < kPages; ++i) buf[i * PAGE_SIZE + 100] = static_cast<char>(i * 7 + 1);
  // A second thread watches the dirty pages while the one call runs.
  std::atomic<bool> done{false};
  std::atomic<int64_t> most_dirty{0};
  std::thread watcher([&] {
    while (!done.load()) {
      most_dirty.store(std::max(most_dirty.load(), stat(m, NodeStat::NR_FILE_DIRTY)));
      std::this_thread::yield();
    }
  });
  const int64_t wrote = sys_write(m, ft, fd, buf.data(), buf.size());
  done.store(true);
  watcher.join();
  ASSERT_EQ(wrote, static_cast<int64_t>(buf.size()));
  EXPECT_GT(stat(m, NodeStat::NR_WRITTEN), static_cast<int64_t>(kPages / 2));
  EXPECT_LT(most_dirty.load(), static_cast<int64_t>(kPages / 4));
  ASSERT_EQ(sys_fsync(m, ft, fd), 0);
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_DIRTY), 0);
  expect_host_bytes(m, "large", kPages, [](uint64_t i) { return static_cast<char>(i * 7 + 1); });
  EXPECT_EQ(filemap_check(m), "");
  EXPECT_EQ(sys_close(m, ft, fd), 0);
}

TEST(FilemapWriteback, ReclaimLeavesDirtyPagesToTheFlusherFirst) {
  MachineConfig c;
  c.dirty_writeback_centisecs = 0;
  c.dirty_ratio = 100;  // no throttling: reclaim meets the dirty pages
  c.dirty_background_ratio = 100;
  auto mp = boot_files(c);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  MemCgroup* cg = mem_cgroup_create(m, "small", 128 * PAGE_SIZE);
  ASSERT_NE(cg, nullptr);
  // The pages are dirtied through a shared mapping. At a ratio of 100 the
  // group's dirty pages never pass its thresholds (they are at most its
  // file pages, which are at most its avail, once they are on the LRU), so
  // balance_dirty_pages never wakes the flusher and reclaim meets them
  // dirty.
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "writer", &p), 0);
  p->mm->memcg = p->files.memcg = cg;
  FileTable& ft = p->files;
  constexpr uint64_t kPages = 1024;
  int fd;
  const uint64_t a = map_shared_file(m, p, "d", kPages, &fd);
  ASSERT_NE(a, 0u);
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_TRUE(store_page(p, a, i, static_cast<char>(i * 3 + 1)));
    ASSERT_LE(cg->usage.load(), 128);
    // Pages still in a per-CPU LRU batch are charged but on no list, so
    // they count against the group's headroom and not as its file pages:
    // its avail would drop below its dirty pages and the writer would be
    // throttled after all.
    lru_add_drain_all(m);
  }
  // Reclaim set PG_reclaim on dirty pages it met (nr_vmscan_immediate_reclaim)
  // and woke the flusher; file pages were stolen; nothing was lost.
  EXPECT_GT(stat(m, NodeStat::NR_VMSCAN_IMMEDIATE), 0);
  EXPECT_GT(m.sum_event(VmEvent::PGSTEAL_FILE), 0);
  EXPECT_LE(cg->peak.load(), 128);
  std::vector<char> got(PAGE_SIZE);
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(sys_pread(m, ft, fd, got.data(), PAGE_SIZE, i * PAGE_SIZE),
              static_cast<int64_t>(PAGE_SIZE));
    ASSERT_EQ(got[17], static_cast<char>(i * 3 + 1)) << "page " << i;
  }
  lru_add_drain_all(m);
  EXPECT_EQ(filemap_check(m), "");
  EXPECT_EQ(lru_check(m), "");
  exit_process(p);
}

// A memory cgroup's own dirty domain (mm/page-writeback.c, cgroup
// writeback): mem_cgroup_wb_stats, mdtc_calc_avail, domain_dirty_limits.
// A group of 1024 pages whose charged pages are all clean file pages on its
// LRU (filepages F = usage U): headroom = 1024 - U; with no dirty page
// anywhere, other_clean = global_avail - F, far above the headroom, so
// avail = F + (1024 - U) = 1024, thresh = 819 * 1024 / 4096 = 204 and
// background = 409 * 1024 / 4096 = 102. With dirty_bytes, the group's ratio
// is ceil(bytes / global_avail) per 4096 (bytes / pages: the ratio of the
// global dirtyable memory in 4096ths).
// A machine with no periodic flusher pass, a memory cgroup of `pages`
// pages, and a file opened in a descriptor table charged to it.
class GroupWriteback : public ::testing::Test {
 protected:
  void open_in_group(uint64_t pages, const char* name) {
    MachineConfig c;
    c.dirty_writeback_centisecs = 0;
    mp_ = boot_files(c);
    ASSERT_TRUE(mp_);
    cg = mem_cgroup_create(*mp_, "g", pages * PAGE_SIZE);
    ASSERT_NE(cg, nullptr);
    ft.memcg = cg;
    fd = sys_open(*mp_, ft, name, O_CREAT | O_RDWR);
    ASSERT_GE(fd, 0);
  }
  void TearDown() override {
    if (mp_ && fd >= 0) {
      EXPECT_EQ(sys_close(*mp_, ft, fd), 0);
    }
  }
  Machine& machine() { return *mp_; }

  std::unique_ptr<Machine> mp_;
  MemCgroup* cg = nullptr;
  FileTable ft;
  int fd = -1;
};

TEST_F(GroupWriteback, AGroupsDirtyLimitsFromItsOwnMemory) {
  ASSERT_NO_FATAL_FAILURE(open_in_group(1024, "f"));
  Machine& m = machine();
  std::vector<char> buf(300 * PAGE_SIZE, 'd');
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), 100 * PAGE_SIZE),
            100 * static_cast<int64_t>(PAGE_SIZE));
  // file_dirty and file_writeback in memory.stat follow the group's pages.
  std::string text;
  ASSERT_TRUE(mem_cgroup_read(cg, "memory.stat", &text));
  EXPECT_NE(text.find("\nfile_dirty 409600\nfile_writeback 0\n"), std::string::npos) << text;
  ASSERT_TRUE(mem_cgroup_read(root_mem_cgroup(m), "memory.stat", &text));
  EXPECT_NE(text.find("\nfile_dirty 0\n"), std::string::npos) << text;
  EXPECT_EQ(filemap_check(m), "");
  ASSERT_EQ(sys_fsync(m, ft, fd), 0);
  ASSERT_TRUE(mem_cgroup_read(cg, "memory.stat", &text));
  EXPECT_NE(text.find("\nfile_dirty 0\nfile_writeback 0\n"), std::string::npos) << text;
  lru_add_drain_all(m);
  const MemcgWbStats s = mem_cgroup_wb_stats(cg);
  ASSERT_EQ(s.filepages, 100u);
  EXPECT_EQ(s.headroom, 1024u - 100u);
  const MemcgDirtyDomain d = memcg_dirty_domain(m, cg);
  EXPECT_EQ(d.dirty, 0u);
  EXPECT_EQ(d.avail, 1024u);
  EXPECT_EQ(d.limits.thresh, 204u);
  EXPECT_EQ(d.limits.background, 102u);
  // 50 dirty pages: clean = 50, F = 150, U = 150: avail = 150 + 874 = 1024
  // still, and the domain's dirty is 50.
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), 50 * PAGE_SIZE), 50 * static_cast<int64_t>(PAGE_SIZE));
  lru_add_drain_all(m);
  const MemcgDirtyDomain d2 = memcg_dirty_domain(m, cg);
  EXPECT_EQ(d2.dirty, 50u);
  EXPECT_EQ(d2.avail, 1024u);
  // dirty_bytes = 1 MiB on G global dirtyable pages: ratio = ceil(2^20 / G)
  // 4096ths of the group's 1024 pages.
  ASSERT_EQ(sys_fsync(m, ft, fd), 0);
  m.dirty_bytes = 1 << 20;
  const uint64_t g = global_dirtyable_memory(m);
  const uint64_t ratio = ((1u << 20) + g - 1) / g;
  EXPECT_EQ(memcg_dirty_domain(m, cg).limits.thresh, ratio * 1024 / 4096);
}

// A group writing four times its memory.max, on a machine whose global
// limits are far above the group: without its own domain its dirty pages
// would climb to its limit for reclaim to meet; with it the writer waits
// for the flusher once they pass the group's thresh (204 pages).
TEST_F(GroupWriteback, AGroupsWriterIsThrottledInItsOwnDomain) {
  ASSERT_NO_FATAL_FAILURE(open_in_group(1024, "big"));
  Machine& m = machine();
  ASSERT_GT(global_dirty_limits(m).thresh, 2048u);
  constexpr uint64_t kPages = 4096;
  std::vector<char> page(PAGE_SIZE);
  int64_t most_dirty = 0;
  for (uint64_t i = 0; i < kPages; ++i) {
    std::fill(page.begin(), page.end(), static_cast<char>(i * 5 + 2));
    ASSERT_EQ(sys_write(m, ft, fd, page.data(), PAGE_SIZE), static_cast<int64_t>(PAGE_SIZE));
    most_dirty = std::max(most_dirty, cg->nr_file_dirty.load());
  }
  EXPECT_GT(most_dirty, 0);
  EXPECT_LT(most_dirty, 512);
  EXPECT_GT(stat(m, NodeStat::NR_WRITTEN), static_cast<int64_t>(kPages / 2));
  EXPECT_LE(cg->peak.load(), 1024);
  std::vector<char> got(PAGE_SIZE);
  for (uint64_t i = 0; i < kPages; i += 61) {
    ASSERT_EQ(sys_pread(m, ft, fd, got.data(), PAGE_SIZE, i * PAGE_SIZE),
              static_cast<int64_t>(PAGE_SIZE));
    ASSERT_EQ(got[100], static_cast<char>(i * 5 + 2)) << "page " << i;
  }
  lru_add_drain_all(m);
  EXPECT_EQ(filemap_check(m), "");
}

// memory.stat keeps workingset events per type: a file read twice through
// a group too small for it refaults file pages, and they are counted as
// workingset_refault_file, not _anon, as /proc/vmstat counts them.
TEST_F(GroupWriteback, MemoryStatCountsFileRefaultsAsFile) {
  ASSERT_NO_FATAL_FAILURE(open_in_group(64, "f"));
  Machine& m = machine();
  std::vector<char> buf(256 * PAGE_SIZE, 'r');
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  ASSERT_EQ(sys_fsync(m, ft, fd), 0);
  for (int pass = 0; pass < 2; ++pass)
    ASSERT_EQ(sys_pread(m, ft, fd, buf.data(), buf.size(), 0), static_cast<int64_t>(buf.size()));
  const int64_t refaults = stat(m, NodeStat::WORKINGSET_REFAULT_FILE);
  ASSERT_GT(refaults, 0);
  EXPECT_EQ(stat(m, NodeStat::WORKINGSET_REFAULT_ANON), 0);
  std::string text;
  ASSERT_TRUE(mem_cgroup_read(cg, "memory.stat", &text));
  EXPECT_NE(text.find("\nworkingset_refault_anon 0\nworkingset_refault_file " +
                      std::to_string(refaults) + "\n"),
            std::string::npos)
      << text;
}

TEST(FilemapWriteback, CountersFollowWritesFsyncAndDropCaches) {
  MachineConfig c;
  c.dirty_writeback_centisecs = 0;
  auto mp = boot_files(c);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  FileTable ft;
  const int fd = sys_open(m, ft, "m", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(100 * PAGE_SIZE, 'q');
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_PAGES), 100);
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_DIRTY), 100);
  EXPECT_EQ(stat(m, NodeStat::NR_DIRTIED), 100);
  ASSERT_EQ(sys_fdatasync(m, ft, fd), 0);
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_DIRTY), 0);
  EXPECT_EQ(stat(m, NodeStat::NR_WRITTEN), 100);
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_PAGES), 100);
  ASSERT_EQ(drop_caches(m, 3), 0);
  EXPECT_EQ(stat(m, NodeStat::NR_FILE_PAGES), 0);
  EXPECT_EQ(m.sum_event(VmEvent::DROP_PAGECACHE), 1);
  EXPECT_EQ(m.sum_event(VmEvent::DROP_SLAB), 1);
  sys_close(m, ft, fd);
}

// si_mem_available() (mm/page_alloc.c): free - totalreserve, plus the file
// LRU less min(half of it, the low watermarks), plus reclaimable slab and
// kernel memory less the same kind of floor. With 2000 clean file pages and
// low watermarks summing to W < 1000, the page cache adds 2000 - W pages:
// reclaim would leave the watermarks' worth of it.
TEST(FilemapWriteback, MemAvailableAsSiMemAvailable) {
  MachineConfig c;
  c.dirty_writeback_centisecs = 0;
  auto mp = boot_files(c);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  FileTable ft;
  const int fd = sys_open(m, ft, "avail", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(2000 * PAGE_SIZE, 'a');
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  ASSERT_EQ(sys_fsync(m, ft, fd), 0);
  lru_add_drain_all(m);
  uint64_t wlow = 0;
  m.for_each_zone([&](const Zone& z) { wlow += z.low_wmark(); });
  ASSERT_LT(wlow, 1000u);
  const uint64_t file = static_cast<uint64_t>(stat(m, NodeStat::NR_ACTIVE_FILE) +
                                              stat(m, NodeStat::NR_INACTIVE_FILE));
  ASSERT_EQ(file, 2000u);
  const uint64_t reclaimable = static_cast<uint64_t>(stat(m, NodeStat::NR_SLAB_RECLAIMABLE) +
                                                     stat(m, NodeStat::NR_KERNEL_MISC_RECLAIMABLE));
  const uint64_t free = nr_free_pages(m);
  const int64_t expected = static_cast<int64_t>(free) -
                           static_cast<int64_t>(totalreserve_pages(m)) +
                           static_cast<int64_t>(file - std::min(file / 2, wlow)) +
                           static_cast<int64_t>(reclaimable - std::min(reclaimable / 2, wlow));
  uint64_t avail_kb = 0;
  for (const MeminfoField& f : meminfo_fields(m))
    if (f.name() == "MemAvailable") avail_kb = f.value;
  EXPECT_EQ(avail_kb, static_cast<uint64_t>(std::max<int64_t>(expected, 0)) * 4);
  // The page cache's share: 2000 - W pages.
  EXPECT_GE(avail_kb, (free + 2000 - wlow) * 4 - totalreserve_pages(m) * 4);
  sys_close(m, ft, fd);
}

}  // namespace
}  // namespace mmkit
