// TLB shootdowns, two CPUs on two threads. One CPU changes the tree (munmap
// through zap_range, mprotect through change_protection, table frees
// through free_pgtables); the other translates and uses the result inside
// mmu_access_begin/end in a tight loop. After a change returns, the changer
// writes into what it took away (marks the unmapped page dead, reads the
// write-protected page twice): a user that still reached the old page
// through a stale TLB entry would see the mark, change the page between the
// two reads, or (under TSan) race with those plain writes and reads.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "vm/mmu.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kDead = 0xdeaddeaddeaddeadull;
constexpr pteval_t kUserRW = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER;
constexpr pteval_t kUserRO = _PAGE_PRESENT | _PAGE_USER;
constexpr uint64_t kAddr = 0x400000;
// Rounds of change-then-check; more while the other CPU has not yet made
// kProgress uses (a loaded host may not schedule its thread at first).
constexpr int kRounds = 1000;
constexpr uint64_t kProgress = 20;
constexpr int kMaxRounds = 1000000;

struct TwoCpus {
  std::unique_ptr<Machine> m;
  PageTable pt;
  std::vector<Page*> pool;

  TwoCpus() {
    m = test::boot_or_fail(test::one_node(64));
    EXPECT_TRUE(pgd_alloc(*m, paging_mode(*m), pt));
    for (int i = 0; i < 8; ++i) pool.push_back(alloc_page(*m, GFP_KERNEL | __GFP_ZERO));
  }
  ~TwoCpus() {
    zap_range(pt, 0, 0x0000800000000000ull);
    free_pgtables(pt, 0, 0x0000800000000000ull, 0, 0);
    pgd_free(pt);
    for (Page* p : pool) free_page(*m, p);
    EXPECT_EQ(check(*m), "");
  }
  uint64_t* word(Page* p, unsigned i) {
    return reinterpret_cast<uint64_t*>(m->page_address(p)) + i;
  }
  void map(Page* p, pteval_t prot) {
    ASSERT_TRUE(pte_set(pt, kAddr, pfn_pte(m->page_to_pfn(p), prot)));
    p->mapcount.fetch_add(1);
    get_page(p);
  }
  // A thread on CPU 1 that reads kAddr's first word through the MMU until
  // `stop`, counting successful reads in `reads` and, once stopped, the
  // values `is_stale` rejects in `stale`.
  template <class IsStale>
  std::thread reader(std::atomic<bool>& stop, std::atomic<uint64_t>& reads,
                     std::atomic<uint64_t>& stale, IsStale is_stale) {
    return std::thread([this, &stop, &reads, &stale, is_stale] {
      auto cpu = CpuScope::bind(*m, 1);
      ASSERT_TRUE(cpu.ok());
      uint64_t n = 0, bad = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        mmu_access_begin(*m);
        const Translation tr = translate(pt, kAddr, Access::kRead);
        if (tr.ok()) {
          uint64_t v;
          std::memcpy(&v, tr.host, sizeof v);
          if (is_stale(v)) ++bad;
          reads.store(++n, std::memory_order_relaxed);
        }
        mmu_access_end(*m);
      }
      stale.store(bad);
    });
  }
  // A thread on CPU 1 that increments the word at kAddr + `offset` through
  // the MMU until `stop`, counting the increments that went through in
  // `writes`.
  std::thread writer(std::atomic<bool>& stop, uint64_t offset, std::atomic<uint64_t>& writes) {
    return std::thread([this, &stop, offset, &writes] {
      auto cpu = CpuScope::bind(*m, 1);
      ASSERT_TRUE(cpu.ok());
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        mmu_access_begin(*m);
        const Translation tr = translate(pt, kAddr + offset, Access::kWrite);
        if (tr.ok()) {
          uint64_t v;
          std::memcpy(&v, tr.host, sizeof v);
          ++v;
          std::memcpy(tr.host, &v, sizeof v);
          writes.store(++n, std::memory_order_relaxed);
        }
        mmu_access_end(*m);
      }
    });
  }
};

TEST(TlbShootdown, MunmapLeavesNoStalePath) {
  TwoCpus t;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, dead_seen{0};
  std::thread reader = t.reader(stop, reads, dead_seen, [](uint64_t v) { return v == kDead; });
  {
    auto cpu = CpuScope::bind(*t.m, 0);
    ASSERT_TRUE(cpu.ok());
    // Until CPU 1 has also taken a request: on a loaded host its reads may
    // all fall inside one mapping, and it stops before the next translate.
    auto more = [&] { return reads.load() < kProgress || tlb_stats(*t.m, 1).flushes == 0; };
    for (int i = 0; i < kRounds || (more() && i < kMaxRounds); ++i) {
      Page* p = t.pool[i % t.pool.size()];
      *t.word(p, 0) = i + 1;  // live
      t.map(p, kUserRO);
      for (int k = 0; k < 3; ++k) std::this_thread::yield();
      ASSERT_EQ(zap_range(t.pt, kAddr, kAddr + PAGE_SIZE), 1u);
      *t.word(p, 0) = kDead;  // as if freed and reused
    }
    EXPECT_GT(tlb_stats(*t.m, 0).shootdowns, 0u);
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(dead_seen.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(tlb_stats(*t.m, 1).flushes, 0u);
}

TEST(TlbShootdown, MprotectStopsWritesAtOnce) {
  TwoCpus t;
  Page* p = t.pool[0];
  t.map(p, kUserRW);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes{0};
  std::thread writer = t.writer(stop, 8, writes);
  uint64_t changed_while_ro = 0;
  {
    auto cpu = CpuScope::bind(*t.m, 0);
    ASSERT_TRUE(cpu.ok());
    for (int i = 0; i < kRounds || (writes.load() < kProgress && i < kMaxRounds); ++i) {
      ASSERT_EQ(change_protection(t.pt, kAddr, kAddr + PAGE_SIZE, _PAGE_USER), 1u);
      const uint64_t before = *t.word(p, 1);
      for (int k = 0; k < 3; ++k) std::this_thread::yield();
      if (*t.word(p, 1) != before) ++changed_while_ro;
      ASSERT_EQ(change_protection(t.pt, kAddr, kAddr + PAGE_SIZE, _PAGE_USER | _PAGE_RW), 1u);
      for (int k = 0; k < 3; ++k) std::this_thread::yield();
    }
  }
  stop.store(true);
  writer.join();
  EXPECT_EQ(changed_while_ro, 0u);
  EXPECT_GT(writes.load(), 0u);
  EXPECT_EQ(*t.word(p, 1), writes.load());  // every counted write landed, none was lost
}

// A write through any translation, cached or walked, leaves DIRTY in the
// entry, so zap_range's exchange always carries it to the page.
TEST(TlbShootdown, DirtyBitIsNeverLost) {
  TwoCpus t;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes{0};
  std::thread writer = t.writer(stop, 16, writes);
  uint64_t written = 0, lost = 0;
  {
    auto cpu = CpuScope::bind(*t.m, 0);
    ASSERT_TRUE(cpu.ok());
    for (int i = 0; i < kRounds || (written < kProgress && i < kMaxRounds); ++i) {
      Page* p = t.pool[i % t.pool.size()];
      p->clear(PG_dirty);
      const uint64_t before = *t.word(p, 2);
      t.map(p, kUserRW);  // clean: no DIRTY in the entry
      for (int k = 0; k < 2; ++k) std::this_thread::yield();
      ASSERT_EQ(zap_range(t.pt, kAddr, kAddr + PAGE_SIZE), 1u);
      if (*t.word(p, 2) != before) {
        ++written;
        if (!p->test(PG_dirty)) ++lost;
      }
    }
  }
  stop.store(true);
  writer.join();
  EXPECT_EQ(lost, 0u);
  EXPECT_GT(written, 0u);
}

TEST(TlbShootdown, FreedTablesAreNeverWalked) {
  TwoCpus t;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> hits{0}, bad{0};
  std::thread reader = t.reader(stop, hits, bad, [](uint64_t v) { return v == kDead || v == 0; });
  {
    auto cpu = CpuScope::bind(*t.m, 0);
    ASSERT_TRUE(cpu.ok());
    for (int i = 0; i < kRounds || (hits.load() < kProgress && i < kMaxRounds); ++i) {
      Page* p = t.pool[i % t.pool.size()];
      *t.word(p, 0) = i + 1;
      t.map(p, kUserRO);
      std::this_thread::yield();
      ASSERT_EQ(zap_range(t.pt, kAddr, kAddr + PAGE_SIZE), 1u);
      free_pgtables(t.pt, kAddr, kAddr + PAGE_SIZE, 0, 0);
      ASSERT_EQ(t.pt.nr_tables.load(), 1u);
      *t.word(p, 0) = kDead;
      // Table frames go back to the allocator and come out zeroed for others.
      Page* scratch = alloc_page(*t.m, GFP_KERNEL | __GFP_ZERO);
      ASSERT_NE(scratch, nullptr);
      free_page(*t.m, scratch);
    }
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
}

}  // namespace
}  // namespace mmkit
