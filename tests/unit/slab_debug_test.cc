// slub_debug (slab_debug.cc): each kind of corruption the debug caches catch,
// with the Linux-style report it prints (captured from Machine::warn, shown
// on stdout and recorded as a test property): right and left red zone
// overwrites, a use after free (poison overwritten: the object is
// quarantined), double frees (the object on the slab's freelist and on the
// CPU's private freelist), a pointer from another cache, a corrupted
// hardened free pointer (found by the allocator and by the free path),
// kmem_cache_validate, and the slub_debug setting. After each, slab_check()
// and the page allocator's check() hold and the cache keeps working.
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/slab.h"
#include "slab/slab_debug.h"

namespace mmkit {
namespace {

constexpr slab_flags_t kFull = SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON;

class SlabDebug : public ::testing::Test {
 protected:
  void SetUp() override {
    MachineConfig c;
    c.cpus = 2;
    c.nodes = {NodeConfig{.memory = 64ull << 20}};
    auto booted = boot(c);
    ASSERT_TRUE(booted.ok());
    machine_ = std::move(*booted);
    m = machine_.get();
    m->warn_sink = [this](const std::string& s) { report += s; };
    cpu.emplace(CpuScope::bind(*m, 0));
    ASSERT_TRUE(cpu->ok());
  }

  // Prints the report into the test log and records it.
  void show(const std::string& name) {
    std::cout << "----- " << name << " -----\n" << report << std::flush;
    RecordProperty(name, report);
  }

  void healthy() {
    EXPECT_EQ(slab_check(*m), "");
    EXPECT_EQ(check(*m), "");
  }

  // Allocates and frees a few hundred more objects: nothing is reported, no
  // object is handed out twice, and the invariants hold.
  void keeps_working(KmemCache* s, const std::vector<void*>& live = {}) {
    const std::string before = report;
    std::set<void*> seen(live.begin(), live.end());
    std::vector<void*> objs;
    for (int i = 0; i < 300; ++i) {
      void* p = kmem_cache_alloc(s, GFP_KERNEL);
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(seen.insert(p).second) << "object " << p << " handed out twice";
      std::memset(p, 0x33, kmem_cache_size(s));
      objs.push_back(p);
    }
    for (void* p : objs) kmem_cache_free(s, p);
    EXPECT_EQ(report, before);
    EXPECT_EQ(kmem_cache_validate(s), 0);
    healthy();
  }

  static bool has(const std::string& text, const std::string& line) {
    return text.find(line) != std::string::npos;
  }

  std::unique_ptr<Machine> machine_;
  Machine* m = nullptr;
  std::string report;
  std::optional<Result<CpuScope>> cpu;
};

unsigned objects_per_slab(KmemCache* s) {
  return get_slabinfo(s).objperslab;
}

TEST_F(SlabDebug, RightRedzoneOverflowIsReportedAndTheObjectQuarantined) {
  KmemCache* s = kmem_cache_create(*m, "rz64", 64, 0, kFull);
  ASSERT_NE(s, nullptr);
  auto* a = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a[-1], SLUB_RED_ACTIVE);  // red zones active while allocated
  EXPECT_EQ(a[64], SLUB_RED_ACTIVE);
  EXPECT_EQ(a[0], POISON_FREE);
  a[64] = 0;  // one byte past object_size
  kmem_cache_free(s, a);
  show("right_redzone");
  EXPECT_TRUE(
      has(report,
          "=============================================================================\n"
          "BUG rz64 (Not tainted): Right Redzone overwritten\n"
          "-----------------------------------------------------------------------------\n\n"
          "INFO: 0x"));
  EXPECT_TRUE(has(report, "First byte 0x0 instead of 0xcc\n"));
  EXPECT_TRUE(has(report, "\nSlab 0x"));
  EXPECT_TRUE(has(report, "\nRedzone  0x"));
  EXPECT_TRUE(has(report, "00 cc cc cc cc cc cc cc"));
  EXPECT_TRUE(has(report, "\nObject   0x"));
  EXPECT_TRUE(has(report, "FIX rz64: Restoring Right Redzone 0x"));
  // SLAB_CONSISTENCY_CHECKS: the free fails and the object is withheld,
  // its red zones restored and still active.
  EXPECT_TRUE(has(report, "FIX rz64: Marking object as quarantined\n"));
  EXPECT_TRUE(has(report, "not freed\n"));
  EXPECT_EQ(kmem_cache_quarantined(s), 1u);
  EXPECT_EQ(a[64], SLUB_RED_ACTIVE);
  EXPECT_EQ(a[-1], SLUB_RED_ACTIVE);
  // Freeing it again is refused, not taken for a first free.
  report.clear();
  kmem_cache_free(s, a);
  EXPECT_TRUE(has(report, "Object is quarantined"));
  EXPECT_EQ(kmem_cache_quarantined(s), 1u);
  report.clear();
  EXPECT_EQ(kmem_cache_validate(s), 0);
  healthy();
  keeps_working(s, {a});
}

TEST_F(SlabDebug, RedzoneOverflowWithoutConsistencyChecksIsRestoredAndFreed) {
  KmemCache* s = kmem_cache_create(*m, "rzonly", 64, 0, SLAB_RED_ZONE);
  ASSERT_NE(s, nullptr);
  auto* a = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  ASSERT_NE(a, nullptr);
  a[64] = 0;
  kmem_cache_free(s, a);
  show("right_redzone_no_checks");
  EXPECT_TRUE(has(report, "BUG rzonly (Not tainted): Right Redzone overwritten\n"));
  EXPECT_TRUE(has(report, "FIX rzonly: Restoring Right Redzone 0x"));
  EXPECT_FALSE(has(report, "not freed"));
  EXPECT_EQ(kmem_cache_quarantined(s), 0u);
  EXPECT_EQ(a[64], SLUB_RED_INACTIVE);  // freed: inactive red zones
  report.clear();
  EXPECT_EQ(kmem_cache_validate(s), 0);
  healthy();
  keeps_working(s);
}

TEST_F(SlabDebug, LeftRedzoneUnderflowIsReported) {
  KmemCache* s = kmem_cache_create(*m, "lz40", 40, 0, kFull);
  ASSERT_NE(s, nullptr);
  auto* a = static_cast<uint8_t*>(kmem_cache_alloc(s, GFP_KERNEL));
  ASSERT_NE(a, nullptr);
  a[-2] = 'A';
  kmem_cache_free(s, a);
  show("left_redzone");
  EXPECT_TRUE(has(report, "BUG lz40 (Not tainted): Left Redzone overwritten\n"));
  EXPECT_TRUE(has(report, "First byte 0x41 instead of 0xcc\n"));
  EXPECT_TRUE(has(report, "FIX lz40: Restoring Left Redzone 0x"));
  EXPECT_TRUE(has(report, "not freed\n"));
  EXPECT_EQ(a[-2], SLUB_RED_ACTIVE);  // restored, and the object withheld
  report.clear();
  healthy();
  keeps_working(s, {a});
}

TEST_F(SlabDebug, UseAfterFreeQuarantinesTheObject) {
  KmemCache* s = kmem_cache_create(*m, "uaf64", 64, 0, kFull);
  ASSERT_NE(s, nullptr);
  auto* x = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  ASSERT_NE(x, nullptr);
  kmem_cache_free(s, x);
  ASSERT_EQ(report, "");
  x[10] = 'U';  // write after free
  // Allocate until the allocator reaches x (debug frees go to the slab's
  // freelist, which the CPU takes when its private list runs dry).
  std::vector<void*> got;
  for (unsigned i = 0; report.empty() && i < 4 * objects_per_slab(s); ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(p, nullptr);
    ASSERT_NE(p, x) << "the corrupted object was handed out";
    got.push_back(p);
  }
  show("use_after_free");
  EXPECT_TRUE(has(report, "BUG uaf64 (Not tainted): Poison overwritten\n"));
  EXPECT_TRUE(has(report, "First byte 0x55 instead of 0x6b\n"));
  EXPECT_TRUE(has(report, "@offset="));
  EXPECT_TRUE(has(report, "6b 6b 55 6b 6b"));
  EXPECT_TRUE(has(report, "FIX uaf64: Restoring Poison 0x"));
  EXPECT_TRUE(has(report, "FIX uaf64: Marking object as quarantined\n"));
  EXPECT_EQ(kmem_cache_quarantined(s), 1u);
  healthy();
  // The allocation that met x got another object; later ones never get x.
  for (int i = 0; i < 200; ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(p, x);
    got.push_back(p);
  }
  // Freeing the dangling pointer again is refused.
  report.clear();
  kmem_cache_free(s, x);
  show("free_of_quarantined");
  EXPECT_TRUE(has(report, "Object is quarantined"));
  EXPECT_TRUE(has(report, "not freed"));
  report.clear();
  for (void* p : got) kmem_cache_free(s, p);
  EXPECT_EQ(report, "");
  EXPECT_EQ(kmem_cache_validate(s), 0);  // the quarantined object looks in use
  healthy();
  keeps_working(s);
}

TEST_F(SlabDebug, DoubleFreeIsRefused) {
  KmemCache* s = kmem_cache_create(*m, "dbl32", 32, 0, kFull);
  ASSERT_NE(s, nullptr);
  const unsigned n = objects_per_slab(s);
  std::vector<void*> live;
  for (unsigned i = 0; i < n; ++i)
    live.push_back(kmem_cache_alloc(s, GFP_KERNEL));  // one full slab
  // 1. On the slab's own freelist.
  void* a = live[3];
  kmem_cache_free(s, a);
  ASSERT_EQ(report, "");
  kmem_cache_free(s, a);
  show("double_free_slab_list");
  EXPECT_TRUE(has(report, "BUG dbl32 (Not tainted): Object already free\n"));
  EXPECT_TRUE(has(report, "FIX dbl32: Object at 0x"));
  EXPECT_TRUE(has(report, " not freed\n"));
  healthy();
  // 2. On the CPU's private freelist: free two; the next allocation takes
  // the slab's freelist, hands out one and keeps the other on the CPU.
  report.clear();
  void* b = live[5];
  kmem_cache_free(s, b);
  live.erase(live.begin() + 5);
  live.erase(live.begin() + 3);
  void* c = kmem_cache_alloc(s, GFP_KERNEL);
  ASSERT_TRUE(c == a || c == b);
  live.push_back(c);
  void* other = c == a ? b : a;
  kmem_cache_free(s, other);  // already free: on this CPU's private freelist
  show("double_free_cpu_list");
  EXPECT_TRUE(has(report, "Object already free\n"));
  EXPECT_TRUE(has(report, " not freed\n"));
  healthy();
  // Allocate everything back: no object twice.
  report.clear();
  std::set<void*> seen(live.begin(), live.end());
  ASSERT_EQ(seen.size(), live.size());
  for (unsigned i = 0; i < 2 * n; ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_TRUE(seen.insert(p).second) << "object " << p << " handed out twice";
    live.push_back(p);
  }
  EXPECT_TRUE(seen.count(other));
  EXPECT_EQ(report, "");
  for (void* p : live) kmem_cache_free(s, p);
  EXPECT_EQ(report, "");
  healthy();
  keeps_working(s);
}

TEST_F(SlabDebug, InvalidPointerIsRefused) {
  KmemCache* s = kmem_cache_create(*m, "inv48", 48, 0, kFull);
  ASSERT_NE(s, nullptr);
  auto* a = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, a + 8);
  show("invalid_pointer");
  EXPECT_TRUE(has(report, "BUG inv48 (Not tainted): Invalid object pointer 0x"));
  EXPECT_TRUE(has(report, " not freed\n"));
  report.clear();
  kmem_cache_free(s, a);
  EXPECT_EQ(report, "");
  healthy();
  keeps_working(s);
}

TEST_F(SlabDebug, PointerFromAnotherCacheIsRefused) {
  KmemCache* fa = kmem_cache_create(*m, "fa", 64, 0, SLAB_NO_MERGE);
  KmemCache* fb = kmem_cache_create(*m, "fb", 64, 0, SLAB_NO_MERGE);
  ASSERT_NE(fa, nullptr);
  ASSERT_NE(fb, nullptr);
  void* keep = kmem_cache_alloc(fa, GFP_KERNEL);  // fa has a slab of its own
  auto* o = static_cast<char*>(kmem_cache_alloc(fb, GFP_KERNEL));
  std::memcpy(o, "fb's object", 12);
  kmem_cache_free(fa, o);
  show("foreign_pointer");
  EXPECT_TRUE(
      has(report, "BUG fa (Not tainted): kmem_cache_free: object belongs to another cache\n"));
  EXPECT_TRUE(has(report, "INFO: Wrong slab cache. fa but object is from fb\n"));
  EXPECT_TRUE(has(report, "\nSlab 0x"));
  EXPECT_TRUE(has(report, "\nObject   0x"));
  EXPECT_TRUE(has(report, "fb's object"));
  EXPECT_EQ(std::string(o), "fb's object");  // untouched
  report.clear();
  healthy();
  kmem_cache_free(fb, o);
  kmem_cache_free(fa, keep);
  EXPECT_EQ(report, "");
  keeps_working(fa);
  keeps_working(fb);
}

// A hardened cache's free pointer (at s->offset inside a free object) is
// overwritten; the allocator follows it when the object is handed out.
TEST_F(SlabDebug, CorruptHardenedFreePointerIsCutOnAlloc) {
  KmemCache* s = kmem_cache_create(*m, "hard64", 64, 0, SLAB_FREELIST_HARDENED);
  ASSERT_NE(s, nullptr);
  auto* a = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  auto* b = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  auto* c = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, b);
  kmem_cache_free(s, c);  // the slab's freelist: c -> b
  ASSERT_EQ(report, "");
  std::memset(c + s->offset, 0x41, sizeof(void*));  // c's encoded pointer to b
  std::vector<void*> got;
  for (unsigned i = 0; report.empty() && i < 4 * objects_per_slab(s); ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(p, nullptr);
    got.push_back(p);
  }
  show("hardened_freepointer_alloc");
  EXPECT_TRUE(has(report, "BUG hard64 (Not tainted): Freepointer corrupt\n"));
  EXPECT_TRUE(has(report, "FIX hard64: Isolate corrupted freechain"));
  EXPECT_EQ(got.back(), c);  // c itself is fine; what followed it is lost
  healthy();
  report.clear();
  for (int i = 0; i < 300; ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(p, b) << "an object of the cut chain was handed out";
    got.push_back(p);
  }
  EXPECT_EQ(report, "");
  for (void* p : got) kmem_cache_free(s, p);
  kmem_cache_free(s, a);
  EXPECT_EQ(report, "");
  healthy();
  keeps_working(s);
}

// Hardening is not a debug mode: a free pushes on the CPU freelist without
// walking it (as Linux's hardened SLUB does), and the corruption is found
// when the chain is next followed, here by the shrink that gives the CPU's
// slab back: the chain is cut and the slab's count adjusted.
TEST_F(SlabDebug, CorruptHardenedFreePointerIsCutWhenTheChainIsWalked) {
  KmemCache* s = kmem_cache_create(*m, "hardf", 96, 0, SLAB_FREELIST_HARDENED);
  ASSERT_NE(s, nullptr);
  auto* a = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  auto* b = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  auto* c = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, b);
  kmem_cache_free(s, c);
  *reinterpret_cast<uintptr_t*>(c + s->offset) ^= 0x1000;  // flip a bit of the pointer to b
  kmem_cache_free(s, a);
  EXPECT_EQ(report, "");
  kmem_cache_shrink(s);
  show("hardened_freepointer_free");
  EXPECT_TRUE(has(report, "BUG hardf (Not tainted): Freepointer corrupt\n"));
  EXPECT_TRUE(has(report, "FIX hardf: Isolate corrupted freechain"));
  healthy();
  report.clear();
  keeps_working(s);
}

// A machine with slab_freelist_hardened encodes every cache's free
// pointers, on the fast paths too: a free object's pointer word is not the
// next object's address, and a plain pointer planted there is caught.
TEST(SlabHardened, MachineWideHardeningEncodesEveryCache) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = {NodeConfig{.memory = 64ull << 20}};
  cfg.slab_freelist_hardened = true;
  auto booted = boot(cfg);
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& hm = **booted;
  std::string got;
  hm.warn_sink = [&](const std::string& t) { got += t; };
  auto cpu = CpuScope::bind(hm, 0);
  ASSERT_TRUE(cpu.ok());
  KmemCache* s = kmem_cache_create(hm, "plain64", 64, 0, SLAB_NO_MERGE);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->fp_hardened);
  EXPECT_FALSE(s->debug());  // the fast paths stay
  auto* a = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  auto* b = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, a);
  kmem_cache_free(s, b);  // the CPU freelist: b -> a
  void* stored;
  std::memcpy(&stored, b + s->offset, sizeof stored);
  EXPECT_NE(stored, static_cast<void*>(a));
  EXPECT_EQ(get_freepointer(s, b), static_cast<void*>(a));
  // A plain pointer planted in b (a write after free) decodes to garbage,
  // which the fast path refuses and the slow path reports and cuts.
  char* planted = a + 2 * s->size;
  std::memcpy(b + s->offset, &planted, sizeof planted);
  // (The slab's unwritten objects are chained in front of b first.)
  std::set<void*> seen;
  std::vector<void*> objs;
  for (unsigned i = 0; got.empty() && i < 4096 / 64; ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(seen.insert(p).second) << "object " << p << " handed out twice";
    objs.push_back(p);
  }
  EXPECT_NE(got.find("BUG plain64 (Not tainted): Freepointer corrupt"), std::string::npos) << got;
  EXPECT_EQ(objs.back(), static_cast<void*>(b));  // b is fine; what followed it is cut
  EXPECT_EQ(slab_check(hm), "");
  EXPECT_EQ(check(hm), "");
  got.clear();
  for (int i = 0; i < 300; ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(seen.insert(p).second) << "object " << p << " handed out twice";
    objs.push_back(p);
  }
  for (void* p : objs) kmem_cache_free(s, p);
  EXPECT_EQ(got, "");
  EXPECT_EQ(slab_check(hm), "");
  EXPECT_EQ(check(hm), "");
}

TEST_F(SlabDebug, ValidateFindsPoisonAndRedzoneDamage) {
  KmemCache* s = kmem_cache_create(*m, "val128", 128, 0, SLAB_RED_ZONE | SLAB_POISON);
  ASSERT_NE(s, nullptr);
  std::vector<char*> objs;
  for (int i = 0; i < 8; ++i) objs.push_back(static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL)));
  EXPECT_EQ(kmem_cache_validate(s), 0);
  char* x = objs[2];
  kmem_cache_free(s, x);
  x[100] = 0x11;        // a free object's poison
  objs[5][128] = 0x22;  // an allocated object's right red zone
  EXPECT_EQ(kmem_cache_validate(s), 2);
  show("validate");
  EXPECT_TRUE(has(report, "BUG val128 (Not tainted): Poison overwritten\n"));
  EXPECT_TRUE(has(report, "First byte 0x11 instead of 0x6b\n"));
  EXPECT_TRUE(has(report, "BUG val128 (Not tainted): Right Redzone overwritten\n"));
  EXPECT_TRUE(has(report, "First byte 0x22 instead of 0xcc\n"));
  report.clear();
  EXPECT_EQ(kmem_cache_validate(s), 0);  // restored
  EXPECT_EQ(report, "");
  healthy();
  for (char* p : objs)
    if (p != x) kmem_cache_free(s, p);
  EXPECT_EQ(report, "");
  keeps_working(s);
}

TEST_F(SlabDebug, SlubDebugEnablesNamedCaches) {
  set_slub_debug(*m, kFull, "kmalloc-64,dbg*");
  KmemCache* k64 = kmalloc_cache(*m, 64);
  EXPECT_EQ(k64->flags & kFull, kFull);
  EXPECT_EQ(kmalloc_cache(*m, 32)->flags & kFull, 0u);
  KmemCache* d = kmem_cache_create(*m, "dbgfoo", 24, 0, 0);
  KmemCache* o = kmem_cache_create(*m, "other", 24, 0, SLAB_NO_MERGE);
  ASSERT_NE(d, nullptr);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(d->flags & kFull, kFull);
  EXPECT_EQ(o->flags & kFull, 0u);
  auto* p = static_cast<char*>(kmalloc(*m, 60, GFP_KERNEL));
  ASSERT_NE(p, nullptr);
  p[64] = 'X';  // past kmalloc-64's object
  kfree(*m, p);
  show("slub_debug_kmalloc");
  EXPECT_TRUE(has(report, "BUG kmalloc-64 (Not tainted): Right Redzone overwritten\n"));
  EXPECT_TRUE(has(report, "First byte 0x58 instead of 0xcc\n"));
  report.clear();
  healthy();
  keeps_working(k64);
  keeps_working(d);
  // A cache already in use keeps its flags.
  void* q = kmalloc(*m, 32, GFP_KERNEL);
  set_slub_debug(*m, SLAB_POISON, "kmalloc-32");
  EXPECT_TRUE(has(report, "slub_debug: cache kmalloc-32 is in use"));
  EXPECT_EQ(kmalloc_cache(*m, 32)->flags & SLAB_POISON, 0u);
  kfree(*m, q);
  report.clear();
  healthy();
}

// Unbound threads take another slow path (no CPU slab); corruption found
// there leaves the machine as consistent.
TEST_F(SlabDebug, UnboundThreadUseAfterFree) {
  KmemCache* s = kmem_cache_create(*m, "unb", 64, 0, kFull);
  ASSERT_NE(s, nullptr);
  cpu.reset();
  auto* x = static_cast<char*>(kmem_cache_alloc(s, GFP_KERNEL));
  kmem_cache_free(s, x);
  x[0] = 0;
  std::vector<void*> got;
  for (unsigned i = 0; report.empty() && i < 4 * objects_per_slab(s); ++i) {
    void* p = kmem_cache_alloc(s, GFP_KERNEL);
    ASSERT_NE(p, x);
    got.push_back(p);
  }
  show("unbound_use_after_free");
  EXPECT_TRUE(has(report, "Poison overwritten"));
  report.clear();
  for (void* p : got) kmem_cache_free(s, p);
  EXPECT_EQ(report, "");
  healthy();
  keeps_working(s);
}

// Correct use of debug caches reports nothing: random allocations and frees
// across bound and unbound CPUs, with shrinks, keep every check quiet.
TEST_F(SlabDebug, CorrectUseReportsNothing) {
  KmemCache* caches[] = {
      kmem_cache_create(*m, "r_full24", 24, 0, kFull),
      kmem_cache_create(*m, "r_hw200", 200, 0, kFull | SLAB_HWCACHE_ALIGN | SLAB_COLOUR),
      kmem_cache_create(*m, "r_hard64", 64, 0, SLAB_FREELIST_HARDENED),
      kmem_cache_create(*m, "r_rz8", 8, 0, SLAB_RED_ZONE),
      kmem_cache_create(*m, "r_poison3000", 3000, 0, SLAB_POISON),
  };
  for (KmemCache* c : caches) ASSERT_NE(c, nullptr);
  std::mt19937_64 rng(12345);
  std::vector<std::pair<KmemCache*, void*>> live;
  for (int step = 0; step < 4000; ++step) {
    const unsigned op = rng() % 100;
    if (op < 3) {
      cpu.reset();
      if (const int c = static_cast<int>(rng() % 3); c < 2) cpu.emplace(CpuScope::bind(*m, c));
    } else if (op < 55 || live.empty()) {
      KmemCache* c = caches[rng() % std::size(caches)];
      void* p = kmem_cache_alloc(c, GFP_KERNEL | (rng() % 4 == 0 ? __GFP_ZERO : 0));
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x77, kmem_cache_size(c));
      live.emplace_back(c, p);
    } else if (op < 98) {
      const size_t k = rng() % live.size();
      kmem_cache_free(live[k].first, live[k].second);
      live[k] = live.back();
      live.pop_back();
    } else {
      kmem_cache_shrink(caches[rng() % std::size(caches)]);
    }
    ASSERT_EQ(report, "") << "step " << step;
    if (step % 100 == 0) {
      ASSERT_EQ(slab_check(*m), "") << "step " << step;
      for (KmemCache* c : caches) ASSERT_EQ(kmem_cache_validate(c), 0) << "step " << step;
    }
  }
  for (auto [c, p] : live) kmem_cache_free(c, p);
  EXPECT_EQ(report, "");
  healthy();
  for (KmemCache* c : caches) EXPECT_EQ(kmem_cache_destroy(c), 0);
  EXPECT_EQ(report, "");
  healthy();
}

}  // namespace
}  // namespace mmkit
