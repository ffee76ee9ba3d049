// Mempools (mm/mempool.c semantics): with failslab and fail_page_alloc
// failing every allocation, each pool kind (slab, kmalloc from a cache,
// kmalloc of a large size from the page allocator, pages) still hands out
// its min_nr reserved elements; the next one fails for GFP_ATOMIC, and a
// GFP_KERNEL request waits until another thread frees an element. Also:
// the allocator is asked before the reserve is touched, frees refill the
// reserve first, resize grows and shrinks it (and fails cleanly when the
// new array cannot be allocated), min_nr 0 pools wake their waiters, many
// threads contending for a tiny pool never get null, and destroying the
// pools gives every page back (slab_check and the free page count).
#include "slab/mempool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/slab.h"

namespace mmkit {
namespace {

using namespace std::chrono_literals;

MachineConfig small_machine() {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = 64ull << 20}};
  return c;
}

// Every slab and page allocation fails, whatever the gfp mask (except
// __GFP_NOFAIL, which mempools never pass).
void fail_everything(Machine& m) {
  m.failslab.configure(FaultConfig{.probability = 100, .times = -1});
  m.failslab_cfg.ignore_gfp_wait = false;
  m.fail_page_alloc.configure(FaultConfig{.probability = 100, .times = -1});
  m.fail_page_alloc_cfg.min_order = 0;
  m.fail_page_alloc_cfg.ignore_gfp_wait = false;
}

void fail_nothing(Machine& m) {
  m.failslab.configure(FaultConfig{});
  m.fail_page_alloc.configure(FaultConfig{});
}

// Gives empty slabs and per-CPU pages back; the caller is bound to no CPU.
uint64_t settled_free_pages(Machine& m) {
  for (KmemCache* c : slab_caches(m)) kmem_cache_shrink(c);
  drain_all_pages(m);
  return nr_free_pages(m);
}

class MempoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto booted = boot(small_machine());
    ASSERT_TRUE(booted.ok()) << booted.error().message;
    machine_ = std::move(booted.value());
    set_warn_sink(m(), [this](const std::string& s) { warnings_.push_back(s); });
    free_at_start_ = settled_free_pages(m());
  }
  void TearDown() override {
    fail_nothing(m());
    EXPECT_EQ(slab_check(m()), "");
    EXPECT_EQ(check(m()), "");
    EXPECT_EQ(settled_free_pages(m()), free_at_start_);
  }
  Machine& m() { return *machine_; }

  std::unique_ptr<Machine> machine_;
  std::vector<std::string> warnings_;
  uint64_t free_at_start_ = 0;
};

struct PoolKind {
  const char* name;
  Mempool* pool;
  size_t bytes;  // bytes of an element to scribble on (0: a Page*)
};

void* element_memory(Machine& m, const PoolKind& k, void* e) {
  return k.bytes ? e : m.page_address(static_cast<Page*>(e));
}

TEST_F(MempoolTest, ReserveServesMinNrWhenEveryAllocationFails) {
  constexpr int kMin = 8;
  KmemCache* cache = kmem_cache_create(m(), "mempool_obj64", 64, 0, 0);
  ASSERT_NE(cache, nullptr);
  PoolKind kinds[] = {
      {"slab", mempool_create_slab_pool(m(), kMin, cache), 64},
      {"kmalloc-256", mempool_create_kmalloc_pool(m(), kMin, 256), 256},
      {"kmalloc-16k (page allocator)", mempool_create_kmalloc_pool(m(), kMin, 16384), 16384},
      {"page order 0", mempool_create_page_pool(m(), kMin, 0), 0},
      {"page order 2", mempool_create_page_pool(m(), kMin, 2), 0},
  };
  for (const PoolKind& k : kinds) {
    ASSERT_NE(k.pool, nullptr) << k.name;
    EXPECT_EQ(mempool_curr_nr(k.pool), kMin) << k.name;
    EXPECT_EQ(mempool_min_nr(k.pool), kMin) << k.name;
  }
  {
    auto cpu = CpuScope::bind(m(), 0);
    ASSERT_TRUE(cpu.ok());
    fail_everything(m());
    for (const PoolKind& k : kinds) {
      SCOPED_TRACE(k.name);
      std::set<void*> got;
      for (int i = 0; i < kMin; ++i) {
        void* e = mempool_alloc(k.pool, i % 2 ? GFP_KERNEL : GFP_ATOMIC);
        ASSERT_NE(e, nullptr) << "element " << i;
        ASSERT_TRUE(got.insert(e).second) << "element handed out twice";
        std::memset(element_memory(m(), k, e), 0xa5, k.bytes ? k.bytes : PAGE_SIZE);
      }
      EXPECT_EQ(mempool_curr_nr(k.pool), 0);
      EXPECT_EQ(mempool_alloc(k.pool, GFP_ATOMIC), nullptr);
      EXPECT_EQ(mempool_alloc(k.pool, GFP_NOWAIT), nullptr);
      // Freed elements refill the reserve (the allocator is never asked).
      for (void* e : got) mempool_free(e, k.pool);
      EXPECT_EQ(mempool_curr_nr(k.pool), kMin);
      // And can be handed out again.
      std::vector<void*> again;
      for (int i = 0; i < kMin; ++i) again.push_back(mempool_alloc(k.pool, GFP_NOIO));
      for (void* e : again) {
        EXPECT_TRUE(got.count(e)) << "a reserved element that was not in the reserve";
        mempool_free(e, k.pool);
      }
    }
    EXPECT_GT(m().failslab.failures(), 0);
    EXPECT_GT(m().fail_page_alloc.failures(), 0);
    fail_nothing(m());
  }
  for (const PoolKind& k : kinds) mempool_destroy(k.pool);
  EXPECT_EQ(kmem_cache_destroy(cache), 0);
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
}

TEST_F(MempoolTest, AllocatorFirstThenReserveAndFreeRefillsFirst) {
  Mempool* pool = mempool_create_kmalloc_pool(m(), 4, 128);
  ASSERT_NE(pool, nullptr);
  // Memory is plentiful: the allocator serves, the reserve stays full.
  std::vector<void*> live;
  for (int i = 0; i < 10; ++i) live.push_back(mempool_alloc(pool, GFP_KERNEL));
  for (void* e : live) ASSERT_NE(e, nullptr);
  EXPECT_EQ(mempool_curr_nr(pool), 4);
  // Take two from the reserve while the allocator fails.
  fail_everything(m());
  live.push_back(mempool_alloc(pool, GFP_ATOMIC));
  live.push_back(mempool_alloc(pool, GFP_ATOMIC));
  fail_nothing(m());
  EXPECT_EQ(mempool_curr_nr(pool), 2);
  // The first two frees refill the reserve; the rest go to kfree.
  const uint64_t active_before = get_slabinfo(kmalloc_cache(m(), 128)).active_objs;
  for (void* e : live) mempool_free(e, pool);
  EXPECT_EQ(mempool_curr_nr(pool), 4);
  EXPECT_EQ(get_slabinfo(kmalloc_cache(m(), 128)).active_objs, active_before - 10);
  mempool_free(nullptr, pool);  // ignored
  mempool_destroy(pool);
  mempool_destroy(nullptr);
}

TEST_F(MempoolTest, BlockingAllocationWaitsForAFree) {
  Mempool* pool = mempool_create_page_pool(m(), 2, 0);
  ASSERT_NE(pool, nullptr);
  fail_everything(m());
  void* a = mempool_alloc(pool, GFP_KERNEL);
  void* b = mempool_alloc(pool, GFP_KERNEL);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(mempool_alloc(pool, GFP_ATOMIC), nullptr);

  std::atomic<bool> started{false}, done{false};
  void* got = nullptr;
  std::thread waiter([&] {
    started.store(true);
    got = mempool_alloc(pool, GFP_KERNEL);  // empty reserve: sleeps
    done.store(true);
  });
  while (!started.load()) std::this_thread::yield();
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(done.load()) << "a blocking mempool_alloc returned with the reserve empty";
  mempool_free(a, pool);  // wakes the waiter with `a`
  waiter.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(got, a);
  EXPECT_EQ(mempool_curr_nr(pool), 0);
  fail_nothing(m());
  mempool_free(got, pool);
  mempool_free(b, pool);
  EXPECT_EQ(mempool_curr_nr(pool), 2);
  mempool_destroy(pool);
}

TEST_F(MempoolTest, MinNrZeroPoolWakesItsWaiter) {
  Mempool* pool = mempool_create_kmalloc_pool(m(), 0, 64);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(mempool_curr_nr(pool), 0);
  void* e = mempool_alloc(pool, GFP_KERNEL);  // from the allocator
  ASSERT_NE(e, nullptr);
  fail_everything(m());
  EXPECT_EQ(mempool_alloc(pool, GFP_ATOMIC), nullptr);
  void* got = nullptr;
  std::thread waiter([&] { got = mempool_alloc(pool, GFP_KERNEL); });
  std::this_thread::sleep_for(100ms);
  mempool_free(e, pool);  // parked for the waiter (curr_nr 0 == min_nr 0)
  waiter.join();
  EXPECT_EQ(got, e);
  fail_nothing(m());
  mempool_free(got, pool);  // min_nr 0, curr_nr 0: parked again
  EXPECT_EQ(mempool_curr_nr(pool), 1);
  mempool_destroy(pool);
}

TEST_F(MempoolTest, ResizeUpAndDown) {
  KmemCache* cache = kmem_cache_create(m(), "mempool_resize", 200, 0, SLAB_HWCACHE_ALIGN);
  ASSERT_NE(cache, nullptr);
  Mempool* pool = mempool_create_slab_pool(m(), 4, cache);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(get_slabinfo(cache).active_objs, 4u);

  EXPECT_EQ(mempool_resize(pool, 40), 0);  // grow: 40 reserved, the array reallocated
  EXPECT_EQ(mempool_min_nr(pool), 40);
  EXPECT_EQ(mempool_curr_nr(pool), 40);
  EXPECT_EQ(get_slabinfo(cache).active_objs, 40u);

  EXPECT_EQ(mempool_resize(pool, 3), 0);  // shrink: the excess goes back to the cache
  EXPECT_EQ(mempool_min_nr(pool), 3);
  EXPECT_EQ(mempool_curr_nr(pool), 3);
  EXPECT_EQ(get_slabinfo(cache).active_objs, 3u);

  EXPECT_EQ(mempool_resize(pool, 0), -EINVAL);
  EXPECT_EQ(mempool_min_nr(pool), 3);

  // The new reserve array cannot be allocated: -ENOMEM, nothing changes.
  fail_everything(m());
  EXPECT_EQ(mempool_resize(pool, 20), -ENOMEM);
  EXPECT_EQ(mempool_min_nr(pool), 3);
  EXPECT_EQ(mempool_curr_nr(pool), 3);
  fail_nothing(m());

  // The array can be had but no element: Linux still returns 0 with min_nr
  // raised, and later frees top the reserve up. Only the page allocator
  // fails here; the 48-byte array comes from a warmed-up kmalloc-64 slab.
  Mempool* pages = mempool_create_page_pool(m(), 2, 1);
  ASSERT_NE(pages, nullptr);
  kfree(m(), kmalloc(m(), 48, GFP_KERNEL));
  m().fail_page_alloc.configure(FaultConfig{.probability = 100, .times = -1});
  m().fail_page_alloc_cfg.min_order = 0;
  m().fail_page_alloc_cfg.ignore_gfp_wait = false;
  EXPECT_EQ(mempool_resize(pages, 6), 0);
  EXPECT_EQ(mempool_min_nr(pages), 6);
  EXPECT_EQ(mempool_curr_nr(pages), 2);
  void* x = mempool_alloc(pages, GFP_KERNEL);
  void* y = mempool_alloc(pages, GFP_KERNEL);
  ASSERT_NE(x, nullptr);
  ASSERT_NE(y, nullptr);
  fail_nothing(m());
  std::vector<void*> extra;  // from the allocator, freed into the short reserve
  for (int i = 0; i < 5; ++i) extra.push_back(mempool_alloc(pages, GFP_KERNEL));
  EXPECT_EQ(mempool_curr_nr(pages), 0);
  for (void* e : extra) mempool_free(e, pages);
  mempool_free(x, pages);
  mempool_free(y, pages);
  EXPECT_EQ(mempool_curr_nr(pages), 6);
  mempool_destroy(pages);

  mempool_destroy(pool);
  EXPECT_EQ(get_slabinfo(cache).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(cache), 0);
}

TEST_F(MempoolTest, CreateFailsCleanlyWhenTheReserveCannotBeFilled) {
  m().fail_page_alloc.configure(FaultConfig{.probability = 100, .times = -1});
  m().fail_page_alloc_cfg.min_order = 0;
  m().fail_page_alloc_cfg.ignore_gfp_wait = false;
  EXPECT_EQ(mempool_create_page_pool(m(), 4, 0), nullptr);
  EXPECT_EQ(mempool_create_kmalloc_pool(m(), 4, 32768), nullptr);
  fail_nothing(m());
  m().failslab.configure(FaultConfig{.probability = 100, .times = -1});
  m().failslab_cfg.ignore_gfp_wait = false;
  EXPECT_EQ(mempool_create_kmalloc_pool(m(), 4, 64), nullptr);  // the array itself fails
  fail_nothing(m());
  // After 3 elements, the 4th fails: the 3 go back (TearDown counts pages).
  Mempool* ok = mempool_create_page_pool(m(), 3, 2);
  ASSERT_NE(ok, nullptr);
  m().fail_page_alloc.configure(FaultConfig{.probability = 100, .times = -1});
  EXPECT_EQ(mempool_create_page_pool(m(), 3, 2), nullptr);
  fail_nothing(m());
  mempool_destroy(ok);
  EXPECT_EQ(mempool_create(m(), -1, mempool_kmalloc, mempool_kfree, nullptr), nullptr);
  EXPECT_EQ(mempool_create(m(), 1, nullptr, mempool_kfree, nullptr), nullptr);
}

TEST_F(MempoolTest, ContendedTinyPoolNeverReturnsNullToBlockingCallers) {
  KmemCache* cache = kmem_cache_create(m(), "mempool_contended", 128, 0, 0);
  ASSERT_NE(cache, nullptr);
  Mempool* pool = mempool_create_slab_pool(m(), 2, cache);
  ASSERT_NE(pool, nullptr);
  fail_everything(m());
  std::atomic<int> nulls{0};
  std::atomic<uint64_t> tag{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::optional<Result<CpuScope>> cpu;
      if (t < 2) cpu.emplace(CpuScope::bind(m(), t));
      for (int i = 0; i < 500; ++i) {
        auto* e = static_cast<uint64_t*>(mempool_alloc(pool, GFP_KERNEL));
        if (!e) {
          nulls.fetch_add(1);
          continue;
        }
        const uint64_t mine = tag.fetch_add(1) + 1;
        *e = mine;
        std::this_thread::yield();
        if (*e != mine) nulls.fetch_add(1000);  // someone else holds it too
        mempool_free(e, pool);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(nulls.load(), 0);
  EXPECT_EQ(mempool_curr_nr(pool), 2);
  fail_nothing(m());
  mempool_destroy(pool);
  EXPECT_EQ(kmem_cache_destroy(cache), 0);
}

}  // namespace
}  // namespace mmkit
