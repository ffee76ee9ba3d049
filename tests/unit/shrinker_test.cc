// Shrinkers (mm/shrinker.c, mm/vmscan.c do_shrink_slab): the proportional
// scan arithmetic checked against hand-computed numbers with a fake
// shrinker (delta = (freeable >> priority) * 4 / seeks, deferred work
// carried to the next pass as nr >> priority, the 2 * freeable cap,
// batches, SHRINK_STOP, seeks 0, lowered nr_scanned, NUMA-aware per-node
// deferral, the slabs_scanned event); registration and unregistration; and
// the connection to the page allocator: an allocation that would fail on a
// full machine runs the shrinkers through direct reclaim and succeeds.
#include "slab/shrinker.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

MachineConfig one_node(uint64_t mib) {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = mib << 20}};
  return c;
}

std::unique_ptr<Machine> boot_or_die(const MachineConfig& c) {
  return test::boot_or_fail(c);
}

// A shrinker over nothing: count returns `freeable`, scan records each
// call's nr_to_scan and claims to have freed them all.
struct FakeShrinker {
  Shrinker s;
  uint64_t freeable = 1000;
  std::vector<uint64_t> scans;  // nr_to_scan of each call
  std::vector<int> nids;        // sc.nid of each count call
  uint64_t scan_result = 0;     // 0: return nr_to_scan; else this
  bool halve_scanned = false;   // report scanning half of nr_to_scan

  FakeShrinker() {
    s.count_objects = [this](Shrinker&, ShrinkControl& sc) {
      nids.push_back(sc.nid);
      return freeable;
    };
    s.scan_objects = [this](Shrinker&, ShrinkControl& sc) {
      scans.push_back(sc.nr_to_scan);
      if (halve_scanned) sc.nr_scanned = sc.nr_to_scan / 2;
      return scan_result ? scan_result : sc.nr_to_scan;
    };
  }
  uint64_t scanned() const {
    uint64_t n = 0;
    for (uint64_t x : scans) n += x;
    return n;
  }
};

TEST(Shrinker, ScanCountsFollowDoShrinkSlab) {
  auto m = boot_or_die(one_node(32));
  ASSERT_TRUE(m);
  FakeShrinker f;
  ASSERT_EQ(register_shrinker(*m, &f.s, "fake"), 0);
  const int64_t events0 = m->sum_event(VmEvent::SLABS_SCANNED);

  // Priority 12: delta = (1000 >> 12) * 4 / 2 = 0, nothing deferred: no scan.
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, DEF_PRIORITY), 0u);
  EXPECT_TRUE(f.scans.empty());
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 0);

  // Priority 0: delta = 1000 * 4 / 2 = 2000, capped at 2 * freeable = 2000;
  // 15 batches of 128 (1920); the 80 left are below a batch and below
  // freeable, so they are deferred.
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 1920u);
  EXPECT_EQ(f.scans, std::vector<uint64_t>(15, 128));
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 80);
  EXPECT_EQ(m->sum_event(VmEvent::SLABS_SCANNED) - events0, 1920);

  // Again at 0: total = (80 >> 0) + 2000, capped at 2000 again; deferred =
  // 80 + 2000 - 1920 = 160.
  f.scans.clear();
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 1920u);
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 160);

  // The deferred 160 are only 160 >> 12 = 0 at priority 12: no scan, and
  // they stay deferred (160 + 0 - 0).
  f.scans.clear();
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, DEF_PRIORITY), 0u);
  EXPECT_TRUE(f.scans.empty());
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 160);
  unregister_shrinker(*m, &f.s);
}

TEST(Shrinker, DeferredWorkCarriesOverProportionally) {
  auto m = boot_or_die(one_node(32));
  ASSERT_TRUE(m);
  FakeShrinker f;
  ASSERT_EQ(register_shrinker(*m, &f.s, "fake"), 0);
  // Priority 3: delta = (1000 >> 3) * 4 / 2 = 250 -> one batch, 122 deferred.
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 3), 128u);
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 122);
  // total = (122 >> 3) + 250 = 265 -> two batches; 122 + 250 - 256 = 116.
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 3), 256u);
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 116);
  // total = (116 >> 3) + 250 = 264 -> two batches; 116 + 250 - 256 = 110.
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 3), 256u);
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 110);
  // Priority 6: delta = 15 * 2 = 30; total = (110 >> 6) + 30 = 31 < batch:
  // nothing scanned, deferred 110 + 30 = 140.
  f.scans.clear();
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 6), 0u);
  EXPECT_TRUE(f.scans.empty());
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 140);
  // A small cache under high pressure is scanned whole even below a batch:
  // freeable 50 at priority 0: delta 100, total min(140 + 100, 100) = 100
  // >= freeable: one call of 100; deferred min(140 + 100 - 100, 100) = 100.
  f.freeable = 50;
  f.scans.clear();
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 100u);
  EXPECT_EQ(f.scans, std::vector<uint64_t>{100});
  EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 100);
  unregister_shrinker(*m, &f.s);
}

TEST(Shrinker, SeeksBatchStopAndScannedVariants) {
  auto m = boot_or_die(one_node(32));
  ASSERT_TRUE(m);
  {  // seeks 0: delta = freeable / 2 = 500 at any priority; 3 batches, 116 deferred.
    FakeShrinker f;
    f.s.seeks = 0;
    ASSERT_EQ(register_shrinker(*m, &f.s, "seeks0"), 0);
    EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, DEF_PRIORITY), 384u);
    EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 116);
    unregister_shrinker(*m, &f.s);
  }
  {  // batch 100: 2000 in 20 calls of 100, nothing deferred.
    FakeShrinker f;
    f.s.batch = 100;
    ASSERT_EQ(register_shrinker(*m, &f.s, "batch100"), 0);
    EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 2000u);
    EXPECT_EQ(f.scans, std::vector<uint64_t>(20, 100));
    EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 0);
    unregister_shrinker(*m, &f.s);
  }
  {  // SHRINK_STOP at once: nothing freed or scanned, all 2000 deferred.
    FakeShrinker f;
    f.scan_result = SHRINK_STOP;
    ASSERT_EQ(register_shrinker(*m, &f.s, "stop"), 0);
    const int64_t ev = m->sum_event(VmEvent::SLABS_SCANNED);
    EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 0u);
    EXPECT_EQ(f.scans.size(), 1u);
    EXPECT_EQ(m->sum_event(VmEvent::SLABS_SCANNED), ev);
    EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 2000);
    unregister_shrinker(*m, &f.s);
  }
  {  // A shrinker that scans half of what it is asked: total_scan drops by
     // 64 per call of 128, so 2000 takes 30 calls (1920 scanned, 80 left).
    FakeShrinker f;
    f.halve_scanned = true;
    f.scan_result = 1;
    ASSERT_EQ(register_shrinker(*m, &f.s, "half"), 0);
    const int64_t ev = m->sum_event(VmEvent::SLABS_SCANNED);
    EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 30u);
    EXPECT_EQ(f.scans, std::vector<uint64_t>(30, 128));
    EXPECT_EQ(m->sum_event(VmEvent::SLABS_SCANNED) - ev, 30 * 64);
    EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 80);
    unregister_shrinker(*m, &f.s);
  }
  {  // count 0 and SHRINK_EMPTY: no scan, nothing deferred, 0 freed.
    FakeShrinker f;
    f.freeable = 0;
    ASSERT_EQ(register_shrinker(*m, &f.s, "zero"), 0);
    EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 0u);
    f.freeable = SHRINK_EMPTY;
    EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 0u);
    EXPECT_TRUE(f.scans.empty());
    EXPECT_EQ(shrinker_nr_deferred(f.s, 0), 0);
    unregister_shrinker(*m, &f.s);
  }
}

TEST(Shrinker, NumaAwareShrinkersDeferPerNode) {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = 32ull << 20}, NodeConfig{.memory = 32ull << 20}};
  auto m = boot_or_die(c);
  ASSERT_TRUE(m);
  FakeShrinker aware, plain;
  aware.s.flags = SHRINKER_NUMA_AWARE;
  ASSERT_EQ(register_shrinker(*m, &aware.s, "aware"), 0);
  ASSERT_EQ(register_shrinker(*m, &plain.s, "plain"), 0);
  shrink_slab(*m, GFP_KERNEL, 1, 3);  // 250 wanted, 128 scanned, 122 deferred
  EXPECT_EQ(aware.nids, std::vector<int>{1});
  EXPECT_EQ(plain.nids, std::vector<int>{0});  // not NUMA aware: always node 0
  EXPECT_EQ(shrinker_nr_deferred(aware.s, 1), 122);
  EXPECT_EQ(shrinker_nr_deferred(aware.s, 0), 0);
  EXPECT_EQ(shrinker_nr_deferred(plain.s, 0), 122);
  unregister_shrinker(*m, &aware.s);
  unregister_shrinker(*m, &plain.s);
}

TEST(Shrinker, RegisterAndUnregister) {
  auto m = boot_or_die(one_node(32));
  ASSERT_TRUE(m);
  std::vector<std::string> warnings;
  set_warn_sink(*m, [&](const std::string& s) { warnings.push_back(s); });
  FakeShrinker a, b;
  ASSERT_EQ(register_shrinker(*m, &a.s, "a"), 0);
  EXPECT_EQ(register_shrinker(*m, &a.s, "a"), -EINVAL);  // twice
  Shrinker empty;
  EXPECT_EQ(register_shrinker(*m, &empty, "empty"), -EINVAL);  // no callbacks
  ASSERT_EQ(register_shrinker(*m, &b.s, "b"), 0);
  EXPECT_EQ(a.s.name, "a");
  EXPECT_EQ(warnings.size(), 2u);

  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 2u * 1920u);
  unregister_shrinker(*m, &a.s);
  a.scans.clear();
  b.scans.clear();
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 1920u);
  EXPECT_TRUE(a.scans.empty());
  EXPECT_FALSE(b.scans.empty());
  unregister_shrinker(*m, &a.s);  // not registered: ignored
  unregister_shrinker(*m, &b.s);
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 0u);
  // Registered again after unregistering: a fresh start.
  ASSERT_EQ(register_shrinker(*m, &a.s, "a2"), 0);
  EXPECT_EQ(shrink_slab(*m, GFP_KERNEL, 0, 0), 1920u);
  unregister_shrinker(*m, &a.s);
}

TEST(Shrinker, KeepsAnotherLayersReclaimOps) {
  auto m = boot_or_die(one_node(32));
  ASSERT_TRUE(m);
  struct Other : ReclaimOps {
  } other;
  m->set_reclaim(&other);
  FakeShrinker f;
  ASSERT_EQ(register_shrinker(*m, &f.s, "fake"), 0);
  EXPECT_EQ(m->reclaim(), &other);
  unregister_shrinker(*m, &f.s);
  m->set_reclaim(nullptr);
}

// A cache of 4 KiB kmalloc objects its shrinker can free (newest first).
struct ObjectCache {
  Machine& m;
  std::vector<void*> objs;
  uint64_t scan_calls = 0, freed = 0;
  Shrinker s;

  explicit ObjectCache(Machine& machine) : m(machine) {
    s.count_objects = [this](Shrinker&, ShrinkControl&) -> uint64_t {
      return objs.empty() ? SHRINK_EMPTY : objs.size();
    };
    s.scan_objects = [this](Shrinker&, ShrinkControl& sc) -> uint64_t {
      ++scan_calls;
      uint64_t n = 0;
      for (; n < sc.nr_to_scan && !objs.empty(); ++n) {
        kfree(m, objs.back());
        objs.pop_back();
      }
      sc.nr_scanned = n;
      freed += n;
      return n ? n : SHRINK_STOP;
    };
  }
};

TEST(Shrinker, DirectReclaimRunsShrinkersForAFailingAllocation) {
  auto m = boot_or_die(one_node(32));
  ASSERT_TRUE(m);
  std::vector<std::string> warnings;
  set_warn_sink(*m, [&](const std::string& s) { warnings.push_back(s); });
  const uint64_t free_at_boot = nr_free_pages(*m);
  ObjectCache cache(*m);
  ASSERT_EQ(register_shrinker(*m, &cache.s, "objcache"), 0);
  std::vector<Page*> pages;
  {
    auto cpu = CpuScope::bind(*m, 0);
    ASSERT_TRUE(cpu.ok());
    // Fill the machine without direct reclaim: 4 KiB objects, then pages.
    constexpr gfp_t kNoReclaim = GFP_NOWAIT | __GFP_NOWARN;
    while (void* p = kmalloc(*m, 4096, kNoReclaim)) cache.objs.push_back(p);
    while (Page* p = alloc_page(*m, kNoReclaim)) pages.push_back(p);
    ASSERT_GT(cache.objs.size(), 1000u);
    ASSERT_EQ(alloc_page(*m, kNoReclaim), nullptr);
    EXPECT_EQ(cache.scan_calls, 0u);
    EXPECT_GT(m->node(0).kswapd_wakeups.get(), 0);  // the stub's record, kept

    // GFP_KERNEL: the slow path's direct reclaim runs the shrinker.
    const size_t held = cache.objs.size();
    const int64_t scanned0 = m->sum_event(VmEvent::SLABS_SCANNED);
    Page* p = alloc_page(*m, GFP_KERNEL);
    ASSERT_NE(p, nullptr) << (warnings.empty() ? "" : warnings.back());
    pages.push_back(p);
    EXPECT_GT(cache.scan_calls, 0u);
    EXPECT_LT(cache.objs.size(), held);
    EXPECT_EQ(cache.freed, held - cache.objs.size());
    EXPECT_GT(m->sum_event(VmEvent::SLABS_SCANNED), scanned0);
    EXPECT_GT(m->sum_event(VmEvent::ALLOCSTALL_NORMAL), 0);
    // And a kmalloc that needs a new order-3 slab, too.
    void* obj = kmalloc(*m, 4096, GFP_KERNEL);
    ASSERT_NE(obj, nullptr);
    cache.objs.push_back(obj);
    EXPECT_EQ(slab_check(*m), "");
    EXPECT_EQ(check(*m), "");

    // Unregistered, the shrinker is not called: filled up with GFP_KERNEL
    // (direct reclaim and draining included), the machine fails.
    unregister_shrinker(*m, &cache.s);
    const uint64_t calls = cache.scan_calls;
    while (Page* q = alloc_page(*m, GFP_KERNEL | __GFP_NOWARN)) pages.push_back(q);
    EXPECT_EQ(alloc_page(*m, GFP_KERNEL | __GFP_NOWARN), nullptr);
    EXPECT_EQ(cache.scan_calls, calls);
    EXPECT_FALSE(cache.objs.empty());

    for (Page* q : pages) free_page(*m, q);
    for (void* o : cache.objs) kfree(*m, o);
  }
  for (KmemCache* c : slab_caches(*m)) kmem_cache_shrink(c);
  EXPECT_EQ(slab_check(*m), "");
  drain_all_pages(*m);
  EXPECT_EQ(check(*m), "");
  EXPECT_EQ(nr_free_pages(*m), free_at_boot);
}

}  // namespace
}  // namespace mmkit
