// Fault-around under concurrent change: one process reads a shared file
// mapping at random (each read fault maps the cached pages around it),
// another writes and reads back its own part of the file through its own
// mapping, a third thread cuts the file's tail off and grows it back (so
// windows reach pages being truncated) and drops the clean cache, and a
// small memory cgroup makes reclaim unmap and drop mapped file pages all
// the while (6 MiB for an 8 MiB file; the cgroup's OOM killer took the
// reader about once in 300 runs, with 750 clean inactive file pages in the
// group, until memcg reclaim retried rounds that found only busy pages:
// a preempted fault held the page-table lock the rmap walk could only
// try). The fixed part reads back right, the tail reads as zeros or
// faults with SIGBUS, and check(mm), filemap_check() and lru_check() hold
// at the end.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
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

constexpr uint64_t kFixed = 1024;  // pages [0, 1024): laid out once, never written
constexpr uint64_t kOwn = 512;     // pages [1024, 1536): the writer's
constexpr uint64_t kTail = 512;    // pages [1536, 2048): cut off and grown back
constexpr uint64_t kPages = kFixed + kOwn + kTail;

uint8_t fixed_byte(uint64_t page) {
  return static_cast<uint8_t>(page * 7 + 1);
}

TEST(FaultAroundConcurrency, ReadsWritesTruncateAndReclaim) {
  MachineConfig c;
  c.cpus = 3;
  c.nodes = {NodeConfig{.memory = 32ull << 20}};
  c.swap = 32ull << 20;
  c.dirty_writeback_centisecs = 2;
  c.dirty_expire_centisecs = 5;
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  Process* reader = nullptr;
  Process* writer = nullptr;
  int rfd = -1, wfd = -1;
  MemCgroup* cg = mem_cgroup_create(m, "small", 6ull << 20);
  ASSERT_NE(cg, nullptr);
  uint64_t rbase = 0, wbase = 0;
  {
    auto scope = CpuScope::bind(m, 0);
    ASSERT_TRUE(scope.ok());
    ASSERT_EQ(spawn(m, "reader", &reader), 0);
    ASSERT_EQ(spawn(m, "writer", &writer), 0);
    for (Process* p : {reader, writer}) p->mm->memcg = p->files.memcg = cg;
    rfd = sys_open(m, reader->files, "f", O_CREAT | O_RDWR | O_TRUNC);
    ASSERT_GE(rfd, 0);
    std::vector<char> page(PAGE_SIZE);
    for (uint64_t i = 0; i < kPages; ++i) {
      std::memset(page.data(), i < kFixed ? fixed_byte(i) : 0, PAGE_SIZE);
      ASSERT_EQ(sys_pwrite(m, reader->files, rfd, page.data(), PAGE_SIZE, i * PAGE_SIZE),
                static_cast<int64_t>(PAGE_SIZE));
    }
    ASSERT_EQ(sys_fsync(m, reader->files, rfd), 0);
    wfd = sys_open(m, writer->files, "f", O_RDWR);
    ASSERT_GE(wfd, 0);
    const int64_t a =
        do_mmap_fd(reader->mm, reader->files, 0, kPages * PAGE_SIZE, PROT_READ, MAP_SHARED, rfd, 0);
    const int64_t b = do_mmap_fd(writer->mm, writer->files, 0, kPages * PAGE_SIZE,
                                 PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0);
    ASSERT_GT(a, 0);
    ASSERT_GT(b, 0);
    rbase = static_cast<uint64_t>(a);
    wbase = static_cast<uint64_t>(b);
  }
  std::atomic<int> bad{0};
  // The first failure, for the report: which thread, what it saw.
  std::mutex first_lock;
  std::string first;
  auto note = [&](const std::string& what) {
    ++bad;
    std::lock_guard<std::mutex> g(first_lock);
    if (first.empty()) first = what;
  };
  auto describe = [](const FaultResult& f) {
    return "status " + std::to_string(static_cast<int>(f.status)) + " (" + f.reason + ")";
  };
  std::atomic<bool> done{false};
  std::atomic<uint64_t> sigbus{0};

  std::thread read_thread([&] {
    auto scope = CpuScope::bind(m, 0);
    ASSERT_TRUE(scope.ok());
    uint64_t x = 12345;
    for (int i = 0; i < 6000; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const uint64_t page = (x >> 33) % kPages;
      unsigned char got = 0xee;
      const FaultResult f = access_read(reader->mm, rbase + page * PAGE_SIZE + 100, &got, 1);
      const std::string at = "reader page " + std::to_string(page) + ": ";
      if (page >= kFixed + kOwn) {
        if (f.status == FaultStatus::kSigbus)
          ++sigbus;
        else if (!f.ok() || got != 0)
          note(at + describe(f) + " byte " + std::to_string(got));
      } else if (page < kFixed && (!f.ok() || got != fixed_byte(page))) {
        note(at + describe(f) + " byte " + std::to_string(got));
      } else if (!f.ok()) {
        note(at + describe(f));
      }
    }
  });
  std::thread write_thread([&] {
    auto scope = CpuScope::bind(m, 1);
    ASSERT_TRUE(scope.ok());
    std::vector<uint8_t> version(kOwn, 0);
    uint64_t x = 777;
    for (int i = 0; i < 6000; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const uint64_t k = (x >> 33) % kOwn;
      const uint64_t at = wbase + (kFixed + k) * PAGE_SIZE + 200;
      unsigned char got = 0;
      if (i % 2 == 0) {
        const unsigned char v = ++version[k];
        const FaultResult f = access_write(writer->mm, at, &v, 1);
        if (!f.ok()) note("writer write page " + std::to_string(kFixed + k) + ": " + describe(f));
      } else if (const FaultResult f = access_read(writer->mm, at, &got, 1);
                 !f.ok() || got != version[k]) {
        note("writer read page " + std::to_string(kFixed + k) + ": " + describe(f) + " byte " +
             std::to_string(got) + " want " + std::to_string(version[k]));
      }
      // A read in the tail too: its window may reach pages being cut.
      if (i % 8 == 0)
        (void)access_read(writer->mm, wbase + (kFixed + kOwn + k % kTail) * PAGE_SIZE, &got, 1);
    }
  });
  std::thread truncate_thread([&] {
    auto scope = CpuScope::bind(m, 2);
    ASSERT_TRUE(scope.ok());
    FileTable ft;
    const int fd = sys_open(m, ft, "f", O_RDWR);
    if (fd < 0) {
      note("open: " + std::to_string(fd));
      return;
    }
    for (int i = 0; !done.load(); ++i) {
      const uint64_t cut = kFixed + kOwn + (static_cast<uint64_t>(i) * 97) % kTail;
      if (const int e = sys_ftruncate(m, ft, fd, cut * PAGE_SIZE + 10); e != 0)
        note("truncate: " + std::to_string(e));
      std::this_thread::yield();
      if (const int e = sys_ftruncate(m, ft, fd, kPages * PAGE_SIZE); e != 0)
        note("truncate back: " + std::to_string(e));
      if (i % 16 == 0) drop_caches(m, 1);
    }
    files_close_all(m, ft);
  });
  read_thread.join();
  write_thread.join();
  done = true;
  truncate_thread.join();
  EXPECT_EQ(bad.load(), 0) << "first: " << first;
  if (bad.load()) {
    for (const std::string& l : m.kernel_log()) std::fprintf(stderr, "%s\n", l.c_str());
  }
  {
    auto scope = CpuScope::bind(m, 0);
    ASSERT_TRUE(scope.ok());
    EXPECT_EQ(check(reader->mm), "");
    EXPECT_EQ(check(writer->mm), "");
    lru_add_drain_all(m);
    EXPECT_EQ(filemap_check(m), "");
    EXPECT_EQ(lru_check(m), "");
    EXPECT_LE(cg->peak.load(), 1536);
    EXPECT_GT(m.sum_event(VmEvent::PGSTEAL_FILE), 0);
    exit_process(reader);
    exit_process(writer);
  }
}

}  // namespace
}  // namespace mmkit
