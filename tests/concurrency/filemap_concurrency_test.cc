// The page cache under concurrent use: two CPUs write and read back their
// own files (more than RAM between them, so kswapd, direct reclaim and the
// flusher all write back and drop file pages under them), a third thread
// reads one of the files sequentially (readahead) and now and then drops
// the clean cache, truncates a scratch file and fsyncs. Every byte reads
// back, the host files equal what was written after a final fsync, and the
// page-cache and LRU checks hold at the end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"

namespace mmkit {
namespace {

// The byte at `off` of worker `id`'s file after pass `pass`.
uint8_t pattern(int id, int pass, uint64_t off) {
  return static_cast<uint8_t>(off * 131 + (off >> PAGE_SHIFT) * 7 + pass * 29 + id * 3);
}

TEST(FilemapConcurrency, WritersReadersFlusherAndReclaimOnTwoCpus) {
  MachineConfig c;
  c.cpus = 3;
  c.nodes = {NodeConfig{.memory = 24ull << 20}};
  c.swap = 32ull << 20;
  c.dirty_bytes = 1ull << 20;  // throttle writers early, so the flusher runs
  c.dirty_background_bytes = 256ull << 10;
  c.dirty_writeback_centisecs = 2;
  c.dirty_expire_centisecs = 5;
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  constexpr uint64_t kBytes = 16ull << 20;  // per worker: 32 MiB in all, RAM is 24
  constexpr uint64_t kChunk = 3 * PAGE_SIZE + 100;
  FileTable ft[3];
  std::atomic<int> bad{0};
  std::atomic<bool> done{false};
  // The first thing that went wrong, for the failure message.
  std::mutex first_lock;
  std::string first;
  auto fail = [&](std::string what) {
    if (bad++ == 0) {
      std::lock_guard<std::mutex> g(first_lock);
      first = std::move(what);
    }
  };
  auto worker = [&](int id) {
    auto scope = CpuScope::bind(m, id);
    ASSERT_TRUE(scope.ok());
    const std::string name = "w" + std::to_string(id);
    const int fd = sys_open(m, ft[id], name, O_CREAT | O_RDWR);
    if (fd < 0) {
      fail(name + ": open: " + std::to_string(fd));
      return;
    }
    std::vector<uint8_t> buf(kChunk), got(kChunk);
    for (int pass = 1; pass <= 2; ++pass) {
      for (uint64_t off = 0; off < kBytes; off += kChunk) {
        const uint64_t n = std::min(kChunk, kBytes - off);
        for (uint64_t i = 0; i < n; ++i) buf[i] = pattern(id, pass, off + i);
        if (const int64_t w = sys_pwrite(m, ft[id], fd, buf.data(), n, off);
            w != static_cast<int64_t>(n))
          fail(name + ": pwrite at " + std::to_string(off) + ": " + std::to_string(w));
      }
      for (uint64_t off = 0; off < kBytes; off += kChunk) {
        const uint64_t n = std::min(kChunk, kBytes - off);
        if (const int64_t r = sys_pread(m, ft[id], fd, got.data(), n, off);
            r != static_cast<int64_t>(n))
          fail(name + ": pread at " + std::to_string(off) + ": " + std::to_string(r));
        for (uint64_t i = 0; i < n; ++i)
          if (got[i] != pattern(id, pass, off + i)) {
            fail(name + ": pass " + std::to_string(pass) + " byte " + std::to_string(off + i) +
                 " is " + std::to_string(got[i]) + ", expected " +
                 std::to_string(pattern(id, pass, off + i)));
            break;
          }
      }
    }
    if (const int e = sys_fsync(m, ft[id], fd); e != 0)
      fail(name + ": fsync: " + std::to_string(e));
    sys_close(m, ft[id], fd);
  };
  std::thread other([&] {
    auto scope = CpuScope::bind(m, 2);
    ASSERT_TRUE(scope.ok());
    const int scratch = sys_open(m, ft[2], "scratch", O_CREAT | O_RDWR);
    std::vector<uint8_t> buf(64 << 10, 0x5a);
    for (int round = 0; !done.load(); ++round) {
      // A sequential reader of worker 0's file: whatever it reads must be
      // one of the passes' bytes (or zeros not yet written).
      const int fd = sys_open(m, ft[2], "w0", O_RDONLY);
      if (fd >= 0) {
        // A read may come back short (a page it could not allocate under
        // the pressure): the file position, and `off`, move by what it read.
        for (uint64_t off = 0; off < (2u << 20);) {
          const int64_t n = sys_read(m, ft[2], fd, buf.data(), buf.size());
          if (n <= 0) break;
          for (int64_t i = 0; i < n; i += 997) {
            const uint8_t b = buf[static_cast<size_t>(i)];
            const uint64_t at = off + static_cast<uint64_t>(i);
            if (b != 0 && b != pattern(0, 1, at) && b != pattern(0, 2, at))
              fail("reader: w0 byte " + std::to_string(at) + " is " + std::to_string(b));
          }
          off += static_cast<uint64_t>(n);
        }
        sys_close(m, ft[2], fd);
      }
      sys_pwrite(m, ft[2], scratch, buf.data(), buf.size(), 0);
      sys_ftruncate(m, ft[2], scratch, static_cast<uint64_t>(round % 7) * 5000);
      if (round == 3) drop_caches(m, 1);  // once: the workers must still fill RAM
      if (round % 3 == 0) sys_fsync(m, ft[2], scratch);
    }
    sys_close(m, ft[2], scratch);
  });
  std::thread t0(worker, 0), t1(worker, 1);
  t0.join();
  t1.join();
  done.store(true);
  other.join();
  EXPECT_EQ(bad.load(), 0) << "first: " << first;
  // What was fsynced is in the host files.
  for (int id = 0; id < 2; ++id) {
    const std::string path = fs_host_path(m, "w" + std::to_string(id));
    const int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << path;
    std::vector<uint8_t> host(kBytes);
    ASSERT_EQ(pread(fd, host.data(), kBytes, 0), static_cast<ssize_t>(kBytes));
    close(fd);
    uint64_t wrong = 0;
    for (uint64_t off = 0; off < kBytes; ++off) wrong += host[off] != pattern(id, 2, off);
    EXPECT_EQ(wrong, 0u) << "worker " << id;
  }
  lru_add_drain_all(m);
  EXPECT_EQ(filemap_check(m), "");
  EXPECT_EQ(lru_check(m), "");
  // Reclaim took file pages, and the flusher or reclaim wrote some back.
  EXPECT_GT(m.sum_event(VmEvent::PGSTEAL_FILE), 0)
      << "scanned " << m.sum_event(VmEvent::PGSCAN_FILE) << " drop "
      << m.sum_event(VmEvent::DROP_PAGECACHE) << " kswapd " << m.sum_event(VmEvent::PGSCAN_KSWAPD)
      << " direct " << m.sum_event(VmEvent::PGSCAN_DIRECT) << " stealanon "
      << m.sum_event(VmEvent::PGSTEAL_ANON) << " written " << m.node_stat_sum(NodeStat::NR_WRITTEN)
      << " immediate " << m.node_stat_sum(NodeStat::NR_VMSCAN_IMMEDIATE);
  EXPECT_GT(m.node_stat_sum(NodeStat::NR_WRITTEN), 0);
}

}  // namespace
}  // namespace mmkit
