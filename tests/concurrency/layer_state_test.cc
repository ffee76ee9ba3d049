// First use of a layer's state from several threads at once.
//
// Each layer builds its state on first use (Machine::ensure_layer_state).
// Some constructors publish into shared machine structures: the vm layer
// hangs each CPU's TLB on CpuState::tlb, the vmalloc layer makes the kmap
// page tables. If two first users both built one and the loser's were
// destroyed, its destructor would unhook the winner's TLBs. Here four
// threads start together on a fresh machine, many times over, and after
// each race the machine must look exactly as after a single first use: the
// TLBs hooked to the installed state, the same pages in use, one set of
// kmalloc caches.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab.h"
#include "vm/vm_state.h"
#include "vmalloc/highmem.h"
#include "vmalloc/state.h"
#include "vmalloc/vmalloc.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr unsigned kThreads = 4, kRounds = 20;

// A machine with one CPU per racing thread.
std::unique_ptr<Machine> boot_machine(uint64_t mib, Arch arch = Arch::x86_64) {
  return test::boot_or_fail(test::one_node(mib, kThreads, arch));
}

// Runs `first_use` on kThreads threads, each bound to its own CPU, released
// together; returns how many could not bind.
template <class F>
unsigned race(Machine& m, F first_use) {
  std::atomic<unsigned> ready{0}, unbound{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      auto cpu = CpuScope::bind(m, static_cast<int>(t));
      if (!cpu.ok()) unbound++;
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      first_use();
    });
  for (auto& t : threads) t.join();
  return unbound.load();
}

// Each thread's first kmalloc of `size`, freed at once; returns how many
// threads could not bind or got no object.
unsigned race_first_kmalloc(Machine& m, size_t size) {
  std::atomic<unsigned> failures{0};
  const unsigned unbound = race(m, [&] {
    void* p = kmalloc(m, size, GFP_KERNEL);
    if (!p) failures++;
    kfree(m, p);
  });
  return unbound + failures.load();
}

void expect_tlbs_hooked(Machine& m) {
  VmState* vs = vm_state_if(m);
  ASSERT_NE(vs, nullptr);
  for (unsigned c = 0; c < m.nr_cpus(); ++c)
    EXPECT_EQ(m.cpu(static_cast<int>(c)).tlb, &vs->tlbs[c]) << "cpu " << c;
}

TEST(LayerStateRace, VmStateIsBuiltOnceAndOwnsEveryTlb) {
  // Pages a single first use takes: the reference for every race.
  auto ref = boot_machine(64);
  ASSERT_TRUE(ref);
  const uint64_t before = nr_free_pages(*ref);
  kernel_page_table(*ref);
  const uint64_t used = before - nr_free_pages(*ref);
  ASSERT_GT(used, 0u);

  for (unsigned r = 0; r < kRounds; ++r) {
    auto m = boot_machine(64);
    ASSERT_TRUE(m);
    const uint64_t free0 = nr_free_pages(*m);
    std::atomic<PageTable*> seen[kThreads] = {};
    std::atomic<unsigned> next{0};
    ASSERT_EQ(race(*m, [&] { seen[next.fetch_add(1)].store(&kernel_page_table(*m)); }), 0u);
    for (auto& s : seen) EXPECT_EQ(s.load(), &vm_state(*m).kernel);
    expect_tlbs_hooked(*m);
    EXPECT_EQ(free0 - nr_free_pages(*m), used) << "round " << r;
    EXPECT_EQ(check(vm_state(*m).kernel), "");
    EXPECT_EQ(check(*m), "");
  }
}

TEST(LayerStateRace, VmallocStateOnI386MakesTheKmapTablesOnce) {
  for (unsigned r = 0; r < kRounds / 2; ++r) {
    auto m = boot_machine(1024, Arch::i386);  // above 896 MiB: high pages
    ASSERT_TRUE(m);
    std::atomic<unsigned> failures{0};
    const unsigned unbound = race(*m, [&] {
      // kmap_atomic needs the fixmap tables already made: it never allocates.
      Page* p = alloc_page(*m, GFP_HIGHUSER);
      if (!p) {
        failures++;
        return;
      }
      void* va = kmap_atomic(*m, p);
      if (!va)
        failures++;
      else
        kunmap_atomic(*m, va);
      free_page(*m, p);
    });
    ASSERT_EQ(unbound, 0u);
    EXPECT_EQ(failures.load(), 0u) << "round " << r;
    ASSERT_TRUE(vmalloc_state(*m).ok()) << vmalloc_state(*m).window_error;
    expect_tlbs_hooked(*m);
    EXPECT_EQ(vmalloc_check(*m), "");
    EXPECT_EQ(check(*m), "");
  }
}

TEST(LayerStateRace, KmallocCachesAreCreatedOnce) {
  for (unsigned r = 0; r < kRounds; ++r) {
    auto m = boot_machine(64);
    ASSERT_TRUE(m);
    ASSERT_EQ(race_first_kmalloc(*m, 100), 0u) << "threads unbound or without an object";
    // create_kmalloc_caches(): 13 caches, 8 bytes to 8 KiB, no duplicates.
    EXPECT_EQ(slab_state(*m).caches.size(), 13u) << "round " << r;
    EXPECT_EQ(slab_check(*m), "");
    EXPECT_EQ(check(*m), "");
  }
}

TEST(LayerStateRace, SlubDebugIsOnBeforeAnyCacheIsUsed) {
  for (unsigned r = 0; r < kRounds; ++r) {
    MachineConfig c = test::one_node(64, kThreads);
    c.slub_debug = "FZP";
    auto m = test::boot_or_fail(c);
    ASSERT_TRUE(m);
    std::mutex mu;
    std::vector<std::string> warnings;
    set_warn_sink(*m, [&](const std::string& s) {
      std::lock_guard<std::mutex> g(mu);
      warnings.push_back(s);
    });
    ASSERT_EQ(race_first_kmalloc(*m, 64), 0u) << "threads unbound or without an object";
    // Every kmalloc cache was converted before it handed out an object:
    // none is reported in use, each has red zones and poisoning.
    EXPECT_EQ(warnings, std::vector<std::string>{});
    for (KmemCache* s : slab_state(*m).caches)
      EXPECT_EQ(s->flags & (SLAB_RED_ZONE | SLAB_POISON), SLAB_RED_ZONE | SLAB_POISON) << s->name;
    EXPECT_EQ(slab_check(*m), "");
  }
}

}  // namespace
}  // namespace mmkit
