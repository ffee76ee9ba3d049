// Address spaces on two CPUs at once (threads bound with CpuScope):
//  - two children of one parent break COW on the same pages at the same
//    time; each must see only its own bytes and the parent its original
//    ones, mapcounts and NR_ANON_PAGES must come out exact;
//  - one thread reads and writes a range of an address space while the
//    other changes the same range (mprotect, munmap, mmap again), so TLB
//    shootdowns race with copies; every copy either completes or reports a
//    SIGSEGV, and check() holds at the end.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/process.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

std::unique_ptr<Machine> two_cpus() {
  return test::boot_or_fail(test::one_node(64));
}

TEST(VmConcurrency, ChildrenBreakCowOnTheSamePagesAtOnce) {
  auto m = two_cpus();
  constexpr uint64_t kPages = 256;
  Process* parent = nullptr;
  ASSERT_EQ(spawn(*m, "parent", &parent), 0);
  const int64_t a = do_mmap(parent->mm, 0, kPages * kPage, kRW, kAnon);
  ASSERT_GT(a, 0);
  std::vector<char> page(kPage, 'P');
  for (uint64_t i = 0; i < kPages; ++i)
    ASSERT_TRUE(access_write(parent->mm, a + i * kPage, page.data(), kPage).ok());
  Process* kids[2] = {};
  ASSERT_EQ(fork_process(parent, &kids[0]), 0);
  ASSERT_EQ(fork_process(parent, &kids[1]), 0);
  std::atomic<int> ready{0};
  std::atomic<bool> ok[2] = {true, true};
  auto run = [&](int cpu) {
    auto scope = CpuScope::bind(*m, cpu);
    ASSERT_TRUE(scope.ok());
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    std::vector<char> mine(kPage, static_cast<char>('a' + cpu));
    for (int round = 0; round < 4; ++round)
      for (uint64_t i = 0; i < kPages; ++i)
        if (!access_write(kids[cpu]->mm, a + i * kPage + round, mine.data(), 64).ok())
          ok[cpu] = false;
  };
  std::thread t0(run, 0), t1(run, 1);
  t0.join();
  t1.join();
  EXPECT_TRUE(ok[0] && ok[1]);
  char buf[64];
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_TRUE(access_read(parent->mm, a + i * kPage, buf, 64).ok());
    EXPECT_EQ(buf[0], 'P');
    for (int k = 0; k < 2; ++k) {
      ASSERT_TRUE(access_read(kids[k]->mm, a + i * kPage, buf, 64).ok());
      EXPECT_EQ(buf[0], 'a' + k);
    }
  }
  for (Process* p : {parent, kids[0], kids[1]}) EXPECT_EQ(check(p->mm), "");
  // Every page now has three private copies (the parent's reused in place).
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_ANON_PAGES), static_cast<int64_t>(3 * kPages));
  for (Process* p : {kids[0], kids[1], parent}) exit_process(p);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_ANON_PAGES), 0);
}

TEST(VmConcurrency, CopiesRaceWithMprotectAndMunmap) {
  auto m = two_cpus();
  constexpr uint64_t kPages = 64;
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "racer", &p), 0);
  const uint64_t base = 0x20000000;
  ASSERT_EQ(do_mmap(p->mm, base, kPages * kPage, kRW, kAnon | MAP_FIXED),
            static_cast<int64_t>(base));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> copies{0}, segvs{0};
  std::thread reader([&] {
    auto scope = CpuScope::bind(*m, 0);
    ASSERT_TRUE(scope.ok());
    std::vector<char> buf(3 * kPage, 'r');
    uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const uint64_t at = base + (i++ % kPages) * kPage + 100;
      const FaultResult f = (i & 1) ? access_write(p->mm, at, buf.data(), buf.size())
                                    : access_read(p->mm, at, buf.data(), buf.size());
      (f.ok() ? copies : segvs).fetch_add(1);
      if (!f.ok()) {
        EXPECT_EQ(f.status, FaultStatus::kSigsegv);
      }
    }
  });
  {
    auto scope = CpuScope::bind(*m, 1);
    ASSERT_TRUE(scope.ok());
    auto done = [&] { return copies.load() + segvs.load(); };
    for (int round = 0; round < 150; ++round) {
      // Let the reader get a few copies in between changes.
      const uint64_t seen = done();
      for (int spin = 0; spin < 100000 && done() < seen + 2; ++spin) std::this_thread::yield();
      const uint64_t at = base + (round * 7 % kPages) * kPage;
      switch (round % 3) {
        case 0: {
          // ENOMEM when an earlier munmap left a hole in the range.
          const int r = do_mprotect(p->mm, at, 4 * kPage, (round & 4) ? PROT_READ : PROT_NONE);
          EXPECT_TRUE(r == 0 || r == -ENOMEM) << r;
          break;
        }
        case 1:
          EXPECT_EQ(do_munmap(p->mm, at, 4 * kPage), 0);
          break;
        default:
          EXPECT_GE(do_mmap(p->mm, base, kPages * kPage, kRW, kAnon | MAP_FIXED), 0);
          break;
      }
    }
  }
  stop = true;
  reader.join();
  EXPECT_GT(copies.load() + segvs.load(), 0u);
  EXPECT_EQ(check(p->mm), "");
  exit_process(p);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_ANON_PAGES), 0);
  EXPECT_EQ(check(*m), "");
}

}  // namespace
}  // namespace mmkit
