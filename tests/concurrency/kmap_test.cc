// kmap and kmap_atomic from several threads at once on an i386 machine.
//
// Permanent kmaps: five threads (two bound to the machine's CPUs, three
// unbound) each map a batch of 205 high pages, write a pattern through the
// mappings, check it through the frames, and unmap, over and over. Five
// batches need 1025 slots, one more than LAST_PKMAP, so threads wait in
// kmap; since four batches less one page each (4 * 204 = 816) leave slots
// over, some thread can always finish its batch, and none may deadlock.
// kmap_atomic: both CPUs map nested pairs of high pages at the same time.
// vmalloc/vfree: three threads (two bound) allocate, fill, check and free
// areas at once; no two live areas overlap and every page comes back.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "vm/pgtable.h"
#include "vmalloc/highmem.h"
#include "vmalloc/layout.h"
#include "vmalloc/vmalloc.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

std::unique_ptr<Machine> boot_i386_2g() {
  return test::boot_or_fail(test::one_node(2048, 2, Arch::i386));
}

TEST(KmapConcurrency, MoreKmapsThanSlotsFromFiveThreadsComplete) {
  auto m = boot_i386_2g();
  ASSERT_TRUE(m);
  constexpr unsigned kThreads = 5, kBatch = 205, kRounds = 12;
  static_assert(kThreads * kBatch > LAST_PKMAP && kThreads * (kBatch - 1) < LAST_PKMAP);
  std::vector<std::vector<Page*>> pages(kThreads);
  for (auto& v : pages)
    for (unsigned i = 0; i < kBatch; ++i) {
      v.push_back(alloc_page(*m, GFP_HIGHUSER));
      ASSERT_TRUE(v.back() && PageHighMem(*m, v.back()));
    }
  std::atomic<unsigned> errors{0};
  std::atomic<uint64_t> kmaps{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::optional<CpuScope> cpu;
      if (t < m->nr_cpus()) {
        auto s = CpuScope::bind(*m, static_cast<int>(t));
        if (!s.ok()) {
          errors++;
          return;
        }
        cpu.emplace(std::move(s.value()));
      }
      for (unsigned r = 0; r < kRounds; ++r) {
        std::vector<uint32_t*> maps;
        for (unsigned i = 0; i < kBatch; ++i) {
          auto* a = static_cast<uint32_t*>(kmap(*m, pages[t][i]));
          if (!a) {
            errors++;
            return;
          }
          const uint32_t tag = (t << 24) | (r << 12) | i;
          a[0] = tag;
          a[PAGE_SIZE / 4 - 1] = ~tag;
          maps.push_back(a);
          kmaps++;
        }
        for (unsigned i = 0; i < kBatch; ++i) {
          const uint32_t tag = (t << 24) | (r << 12) | i;
          const auto* frame =
              reinterpret_cast<const uint32_t*>(m->phys_window(m->page_to_pfn(pages[t][i])));
          if (maps[i][0] != tag || frame[0] != tag || frame[PAGE_SIZE / 4 - 1] != ~tag) errors++;
          kunmap(*m, pages[t][i]);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_EQ(kmaps.load(), uint64_t{kThreads} * kBatch * kRounds);
  EXPECT_GT(kmaps.load(), LAST_PKMAP);
  EXPECT_EQ(pkmap_waiters(*m), 0u);
  for (auto& v : pages)
    for (Page* p : v) free_page(*m, p);
  kmap_flush_unused(*m);
  EXPECT_EQ(pkmap_slots_in_use(*m), 0u);
  EXPECT_EQ(check(kernel_page_table(*m)), "");
}

TEST(KmapConcurrency, KmapAtomicOnBothCpusAtOnce) {
  auto m = boot_i386_2g();
  ASSERT_TRUE(m);
  constexpr int kIters = 3000;
  std::atomic<unsigned> errors{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&, c] {
      auto cpu = CpuScope::bind(*m, c);
      if (!cpu.ok()) {
        errors++;
        return;
      }
      Page* p[2] = {alloc_page(*m, GFP_HIGHUSER), alloc_page(*m, GFP_HIGHUSER)};
      ready++;
      while (ready.load() < 2) std::this_thread::yield();
      for (int i = 0; i < kIters; ++i) {
        auto* a = static_cast<int*>(kmap_atomic(*m, p[0]));
        auto* b = static_cast<int*>(kmap_atomic(*m, p[1]));
        if (!a || !b || a == b) {
          errors++;
          break;
        }
        a[0] = i * 2 + c;
        b[1] = -(i * 2 + c);
        std::memcpy(b + 2, a, sizeof(int));  // copy across two live mappings
        if (b[2] != i * 2 + c) errors++;
        kunmap_atomic(*m, b);
        kunmap_atomic(*m, a);
        const auto* fa = reinterpret_cast<const int*>(m->phys_window(m->page_to_pfn(p[0])));
        const auto* fb = reinterpret_cast<const int*>(m->phys_window(m->page_to_pfn(p[1])));
        if (fa[0] != i * 2 + c || fb[1] != -(i * 2 + c)) errors++;
      }
      free_page(*m, p[0]);
      free_page(*m, p[1]);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_EQ(check(kernel_page_table(*m)), "");
}

TEST(KmapConcurrency, VmallocAndVfreeFromThreeThreads) {
  auto m = boot_i386_2g();
  ASSERT_TRUE(m);
  PageTable& kpt = kernel_page_table(*m);
  vfree(*m, vmalloc(*m, PAGE_SIZE));  // the layer's state and tables exist
  drain_all_pages(*m);
  const uint64_t before = nr_free_pages(*m), tables_before = kpt.nr_tables.load();
  std::atomic<unsigned> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::optional<CpuScope> cpu;
      if (t < 2) {
        auto s = CpuScope::bind(*m, t);
        if (!s.ok()) {
          errors++;
          return;
        }
        cpu.emplace(std::move(s.value()));
      }
      std::vector<std::pair<char*, uint64_t>> live;
      for (int i = 0; i < 300; ++i) {
        const uint64_t size = (1 + (i * 7 + t) % 24) * PAGE_SIZE - (i % 3);
        auto* p = static_cast<char*>(vmalloc(*m, size));
        if (!p) {
          errors++;
          return;
        }
        std::memset(p, 'a' + t, size);
        live.emplace_back(p, size);
        if (live.size() > 4) {
          auto [q, qs] = live.front();
          if (std::count(q, q + qs, 'a' + t) != static_cast<long>(qs)) errors++;
          vfree(*m, q);
          live.erase(live.begin());
        }
      }
      for (auto [q, qs] : live) vfree(*m, q);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_EQ(vmalloc_check(*m), "");
  EXPECT_EQ(vmalloc_nr_pages(*m), 0u);
  drain_all_pages(*m);
  EXPECT_EQ(nr_free_pages(*m) + (kpt.nr_tables.load() - tables_before), before);
  EXPECT_EQ(check(*m), "");
  EXPECT_EQ(check(kpt), "");
}

}  // namespace
}  // namespace mmkit
