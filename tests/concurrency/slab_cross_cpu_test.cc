// SLUB across two CPUs on two threads: CPU 0 allocates (kmem_cache_alloc
// from a 64-byte cache and kmalloc of mixed sizes, some beyond the kmalloc
// caches), tags each object with a unique 64-bit value at both ends and
// hands it to CPU 1 through a lock-free single-producer ring; CPU 1 checks
// the tags and frees it, which is a remote free (__slab_free's compare-and-
// swap on a slab another CPU may hold). Less often CPU 1 allocates for CPU 0
// to free, and both also free some of their own objects locally and shrink
// the caches (flush_all skips the other, bound CPU) and change the 64-byte
// cache's per-CPU partial budget while the other runs.
//
// What it proves: under TSan, that the per-CPU fast paths, the slab word
// protocol and the node list_lock are race-free (the test's own bookkeeping
// uses relaxed atomics, which give TSan no happens-before edges to hide a
// race behind; the rings' acquire/release pairs are the only ones). Always:
// no object is handed out twice (a live map indexed by address, flipped with
// relaxed exchanges, must go free->live on allocation and live->free on
// free), no live object is written by the allocator (tags intact at free),
// and no object is lost: at the end every count matches, the caches' active
// objects are back to their starting values, slab_check() holds and all
// pages return to the buddy allocator.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "../support/spsc_ring.h"
#include "page_alloc/page_alloc.h"
#include "slab/slab.h"

namespace mmkit {
namespace {

struct Item {
  void* p;
  KmemCache* cache;  // null: kmalloc
  uint32_t size;
  uint64_t tag;
};

using Ring = test::SpscRing<Item, 512>;

MachineConfig two_cpu_config() {
  MachineConfig c;
  c.cpus = 2;
  c.nodes.push_back(NodeConfig{.memory = 128ull << 20});
  return c;
}

constexpr uint32_t kSizes[] = {8,   16,  24,   40,   64,   96,   128,  192,  256,   300,
                               512, 700, 1024, 2000, 2048, 4096, 5000, 8192, 12000, 20000};

class CrossCpu {
 public:
  explicit CrossCpu(Machine& m) : m_(m) {
    base_ = static_cast<char*>(m.page_address(m.pfn_to_page(0)));
    live_ = std::make_unique<std::atomic<uint8_t>[]>((m.max_pfn() << PAGE_SHIFT) / 8);
    cache_ = kmem_cache_create(m, "cross64", 64, 0, 0);
  }
  KmemCache* cache() const { return cache_; }

  // One CPU's thread: `produce` objects for the other CPU, free what comes
  // in, keep a few of its own to free locally.
  // With `bind` false the thread holds no CPU (it still uses ring cpu_id):
  // it allocates one object at a time off the node's partial slabs and
  // frees through the slab word, beside the bound CPU's per-CPU paths.
  void run(int cpu_id, int produce, unsigned seed, bool bind = true) {
    std::optional<Result<CpuScope>> cpu;
    if (bind) {
      cpu.emplace(CpuScope::bind(m_, cpu_id));
      ASSERT_TRUE(cpu->ok()) << cpu->error().message;
    }
    Ring& out = ring_[cpu_id];
    Ring& in = ring_[1 - cpu_id];
    std::mt19937 rng(seed);
    std::vector<Item> mine;
    uint64_t seq = 0;
    Item it;
    for (int i = 0; i < produce; ++i) {
      Item obj = allocate(cpu_id, rng, ++seq);
      if (!obj.p) continue;
      if (rng() % 8 == 0) {
        mine.push_back(obj);  // freed locally, later
      } else {
        while (!out.push(obj)) {
          // The ring is full: free what the other CPU sent meanwhile, so
          // the two threads never wait on each other.
          if (in.pop(&it))
            release(it);
          else
            std::this_thread::yield();
        }
      }
      // Free some incoming objects: a burst now and then, one otherwise.
      for (int k = rng() % 16 == 0 ? 64 : 1; k > 0 && in.pop(&it); --k) release(it);
      if (mine.size() > 32 || (rng() % 64 == 0 && !mine.empty())) {
        const size_t k = rng() % mine.size();
        release(mine[k]);
        mine[k] = mine.back();
        mine.pop_back();
      }
      if (rng() % 4096 == 0) {
        kmem_cache_shrink(cache_);
        // A new per-CPU partial budget (0 to 4x the default) while the
        // other CPU frees into this cache's slabs.
        if (kmem_cache_set_cpu_partial(cache_, (rng() % 5) * 120) != 0)
          errors_.fetch_add(1, std::memory_order_relaxed);
        kmem_cache_shrink(kmalloc_cache(m_, kSizes[rng() % 16]));
      }
    }
    for (const Item& o : mine) release(o);
    done_[cpu_id].store(true, std::memory_order_release);
    // Drain the incoming ring until the other side is done and it is empty.
    for (;;) {
      if (in.pop(&it)) {
        release(it);
        continue;
      }
      if (done_[1 - cpu_id].load(std::memory_order_acquire)) {
        while (in.pop(&it)) release(it);
        break;
      }
      std::this_thread::yield();
    }
  }

  uint64_t allocated() const { return allocated_.load(); }
  uint64_t freed() const { return freed_.load(); }
  uint64_t errors() const { return errors_.load(); }
  uint64_t alloc_failures() const { return alloc_failures_.load(); }

 private:
  Item allocate(int cpu_id, std::mt19937& rng, uint64_t seq) {
    Item obj{};
    obj.tag = (uint64_t(cpu_id + 1) << 56) | seq;
    if (rng() % 2) {
      obj.cache = cache_;
      obj.size = 64;
      obj.p = kmem_cache_alloc(cache_, GFP_KERNEL);
    } else {
      const unsigned r = rng() % 100;
      obj.size = kSizes[r < 2 ? 18 + r : rng() % 18];  // 2%: page-allocator sizes
      obj.p = kmalloc(m_, obj.size, GFP_KERNEL);
    }
    if (!obj.p) {
      alloc_failures_.fetch_add(1, std::memory_order_relaxed);
      return obj;
    }
    if (live(obj.p).exchange(1, std::memory_order_relaxed) != 0) {
      ADD_FAILURE() << "object " << obj.p << " (size " << obj.size << ") handed out while live";
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
    std::memcpy(obj.p, &obj.tag, 8);
    std::memcpy(static_cast<char*>(obj.p) + ((obj.size - 8) & ~7u), &obj.tag, 8);
    allocated_.fetch_add(1, std::memory_order_relaxed);
    return obj;
  }

  void release(const Item& obj) {
    uint64_t head, tail;
    std::memcpy(&head, obj.p, 8);
    std::memcpy(&tail, static_cast<char*>(obj.p) + ((obj.size - 8) & ~7u), 8);
    if (head != obj.tag || tail != obj.tag) {
      ADD_FAILURE() << "object " << obj.p << " (size " << obj.size << ") tag " << std::hex
                    << obj.tag << " overwritten: " << head << " / " << tail;
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
    std::memset(obj.p, 0, 8);  // a stale copy of the pointer would fail its tag check
    if (live(obj.p).exchange(0, std::memory_order_relaxed) != 1) {
      ADD_FAILURE() << "object " << obj.p << " freed while not live";
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
    if (obj.cache)
      kmem_cache_free(obj.cache, obj.p);
    else
      kfree(m_, obj.p);
    freed_.fetch_add(1, std::memory_order_relaxed);
  }

  std::atomic<uint8_t>& live(void* p) {
    return live_[static_cast<size_t>(static_cast<char*>(p) - base_) / 8];
  }

  Machine& m_;
  char* base_;
  std::unique_ptr<std::atomic<uint8_t>[]>
      live_;  // per 8 bytes of RAM: 1 = a live object starts here
  KmemCache* cache_;
  Ring ring_[2];  // ring_[c]: produced by CPU c for the other
  std::atomic<bool> done_[2] = {false, false};
  std::atomic<uint64_t> allocated_{0}, freed_{0}, errors_{0}, alloc_failures_{0};
};

uint64_t settled_free_pages(Machine& m) {
  for (KmemCache* c : slab_caches(m)) kmem_cache_shrink(c);
  drain_all_pages(m);
  return nr_free_pages(m);
}

// CPU 0 bound; the other thread bound to CPU 1 or to no CPU at all.
void run_pair(bool second_bound, int second_produces) {
  auto booted = boot(two_cpu_config());
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  std::vector<std::string> warnings;
  set_warn_sink(m, [&](const std::string& s) { warnings.push_back(s); });
  auto x = std::make_unique<CrossCpu>(m);
  ASSERT_NE(x->cache(), nullptr);
  const uint64_t free_before = settled_free_pages(m);
  std::vector<uint64_t> active_before;
  for (KmemCache* c : slab_caches(m)) active_before.push_back(get_slabinfo(c).active_objs);

  std::thread t0([&] { x->run(0, 30000, 1); });
  std::thread t1([&] { x->run(1, second_produces, 2, second_bound); });
  t0.join();
  t1.join();

  EXPECT_EQ(x->errors(), 0u);
  EXPECT_EQ(x->alloc_failures(), 0u);
  EXPECT_EQ(x->freed(), x->allocated());
  EXPECT_GT(x->allocated(), 30000u + second_produces / 2);
  EXPECT_TRUE(warnings.empty()) << warnings.front();

  // Both threads have unbound: everything comes back.
  EXPECT_EQ(kmem_cache_shrink(x->cache()), 0);
  EXPECT_EQ(slab_check(m), "");
  EXPECT_EQ(get_slabinfo(x->cache()).active_objs, 0u);
  const std::vector<KmemCache*> caches = slab_caches(m);
  ASSERT_EQ(caches.size(), active_before.size());
  for (size_t i = 0; i < caches.size(); ++i) {
    kmem_cache_shrink(caches[i]);
    EXPECT_EQ(get_slabinfo(caches[i]).active_objs, active_before[i]) << kmem_cache_name(caches[i]);
  }
  EXPECT_EQ(slab_check(m), "");
  EXPECT_EQ(kmem_cache_destroy(x->cache()), 0);
  EXPECT_EQ(settled_free_pages(m), free_before);
  EXPECT_EQ(check(m), "");
}

TEST(SlabCrossCpu, RemoteFreesBothWaysLoseAndDuplicateNothing) {
  run_pair(true, 6000);
}

// A thread bound to no CPU takes single objects off partial slabs while CPU 0
// frees them (freezing full slabs onto its partial list) and takes slabs for
// itself: nothing handed out twice or lost, and the lists stay consistent.
TEST(SlabCrossCpu, UnboundThreadBesideABoundCpu) {
  run_pair(false, 20000);
}

}  // namespace
}  // namespace mmkit
