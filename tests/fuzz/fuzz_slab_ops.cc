// libFuzzer target for the slab allocator: bytes become a sequence of
// kmem_cache_create / kmem_cache_alloc(_node) / kmem_cache_free / kmalloc /
// kfree / krealloc / kmem_cache_shrink / kmem_cache_destroy / CPU bind-
// unbind operations on one small machine (x86_64, one node of 32 MiB, 2
// CPUs) booted per input.
//
// Caches get a size, an alignment and flags from the input; the flags are
// limited to SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, SLAB_NO_MERGE,
// SLAB_POISON, SLAB_RED_ZONE and SLAB_FREELIST_HARDENED, so caches both
// merge (into each other and the kmalloc caches) and carry debug metadata.
// Every live object is filled with a pattern derived from its address and
// checked before it is freed; __GFP_ZERO objects must arrive zeroed; a
// cache is destroyed only when none of our live objects is in it, and must
// then succeed. After every operation slab_check() must return "" and no
// "BUG" report may have appeared; at the end everything is freed and
// destroyed, the caches shrunk, the CPUs drained, and the free page count
// must equal the boot value. Any violation prints the reason and aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/slab.h"

namespace {

using namespace mmkit;

constexpr size_t kMaxOps = 200;
constexpr size_t kMaxCaches = 8;
constexpr size_t kMaxLive = 512;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_slab_ops: %s\n", why.c_str());
  std::abort();
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : d_(data), n_(size) {}
  bool more() const { return i_ < n_; }
  uint8_t next() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t next16() { return static_cast<uint16_t>(next() | next() << 8); }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

constexpr slab_flags_t kFlagChoices[] = {SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT,
                                         SLAB_NO_MERGE,      SLAB_POISON,
                                         SLAB_RED_ZONE,      SLAB_FREELIST_HARDENED};
constexpr gfp_t kGfps[] = {GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_KERNEL | __GFP_ZERO,
                           GFP_ATOMIC | __GFP_ZERO};

struct Handle {
  KmemCache* cache;
  unsigned size;  // the size this handle asked for (a merged cache may be larger)
};

struct Obj {
  void* p;
  size_t size;
  KmemCache* cache;  // null: kmalloc
};

uint8_t pattern(const void* p) {
  return static_cast<uint8_t>(reinterpret_cast<uintptr_t>(p) >> 3 ^ 0x5c);
}

void fill(const Obj& o) {
  std::memset(o.p, pattern(o.p), o.size);
}

void verify(const Obj& o, const std::string& what) {
  const auto* b = static_cast<const uint8_t*>(o.p);
  for (size_t i = 0; i < o.size; ++i)
    if (b[i] != pattern(o.p))
      fail(what + ": object " + std::to_string(reinterpret_cast<uintptr_t>(o.p)) + " byte " +
           std::to_string(i) + " changed while live");
}

void verify_zero(const Obj& o, const std::string& what) {
  const auto* b = static_cast<const uint8_t*>(o.p);
  for (size_t i = 0; i < o.size; ++i)
    if (b[i]) fail(what + ": __GFP_ZERO object not zeroed at byte " + std::to_string(i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Input in(data, size);
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes.push_back(NodeConfig{.memory = 32ull << 20});
  auto booted = boot(cfg);
  if (!booted.ok()) fail("boot failed: " + booted.error().message);
  Machine& m = **booted;
  std::vector<std::string> bugs;
  set_warn_sink(m, [&](const std::string& s) {
    if (s.find("BUG") != std::string::npos) bugs.push_back(s);
  });
  const uint64_t boot_free = nr_free_pages(m);
  std::vector<Handle> handles;
  std::vector<Obj> live;
  std::optional<CpuScope> scope;
  unsigned created = 0;

  auto release = [&](size_t k, bool use_kfree, const std::string& what) {
    const Obj o = live[k];
    live[k] = live.back();
    live.pop_back();
    verify(o, what);
    if (o.cache && !use_kfree)
      kmem_cache_free(o.cache, o.p);
    else
      kfree(m, o.p);
  };

  for (size_t op = 0; op < kMaxOps && in.more(); ++op) {
    const uint8_t kind = in.next() % 10;
    std::string what;
    if (kind == 0) {  // create a cache
      const unsigned sz = 1 + in.next16() % 9000;
      const uint8_t ab = in.next();
      const unsigned align = ab & 0x80 ? 0 : 1u << (ab % 13);  // 0, or 1 .. 4096
      const uint8_t fb = in.next();
      slab_flags_t flags = 0;
      for (unsigned i = 0; i < std::size(kFlagChoices); ++i)
        if (fb >> i & 1) flags |= kFlagChoices[i];
      what = "kmem_cache_create size " + std::to_string(sz) + " align " + std::to_string(align) +
             " flags " + std::to_string(flags);
      if (handles.size() < kMaxCaches) {
        KmemCache* c = kmem_cache_create(m, "fuzz" + std::to_string(created++), sz, align, flags);
        if (c) {
          if (kmem_cache_size(c) < sz) fail(what + ": object size below the request");
          handles.push_back({c, sz});
        }
      }
    } else if (kind == 1 || kind == 2) {  // allocate from a cache
      const uint8_t hb = in.next(), gb = in.next();
      if (handles.empty() || live.size() >= kMaxLive) continue;
      const Handle& h = handles[hb % handles.size()];
      const gfp_t gfp = kGfps[gb % std::size(kGfps)];
      what = std::string("kmem_cache_alloc ") + kmem_cache_name(h.cache) + " " + format_gfp(gfp);
      void* p = gb & 0x80 ? kmem_cache_alloc_node(h.cache, gfp, 0) : kmem_cache_alloc(h.cache, gfp);
      if (!p) fail(what + ": failed on a machine with memory to spare");
      const Obj o{p, h.size, h.cache};
      if (gfp & __GFP_ZERO) verify_zero(o, what);
      fill(o);
      live.push_back(o);
    } else if (kind == 3) {  // free the j-th live object
      const uint8_t jb = in.next();
      if (live.empty()) continue;
      what = "free";
      release(jb % live.size(), false, what);
    } else if (kind == 4) {  // kmalloc
      const uint16_t sb = in.next16();
      const uint8_t gb = in.next();
      if (live.size() >= kMaxLive) continue;
      const size_t sz = sb & 0x8000 ? sb % 20000 : sb % 600;
      const gfp_t gfp = kGfps[gb % std::size(kGfps)];
      what = "kmalloc " + std::to_string(sz) + " " + format_gfp(gfp);
      void* p = kmalloc(m, sz, gfp);
      if (sz == 0) {
        if (p != ZERO_SIZE_PTR) fail(what + ": not ZERO_SIZE_PTR");
        kfree(m, p);
      } else {
        if (!p) fail(what + ": failed on a machine with memory to spare");
        if (ksize(m, p) < sz) fail(what + ": ksize below the request");
        const Obj o{p, sz, nullptr};
        if (gfp & __GFP_ZERO) verify_zero(o, what);
        fill(o);
        live.push_back(o);
      }
    } else if (kind == 5) {  // kfree the j-th live object (any cache's)
      const uint8_t jb = in.next();
      what = "kfree";
      if (live.empty()) {
        kfree(m, nullptr);
        continue;
      }
      release(jb % live.size(), true, what);
    } else if (kind == 6) {  // krealloc a live kmalloc object
      const uint8_t jb = in.next();
      const uint16_t sb = in.next16();
      if (live.empty()) continue;
      Obj& o = live[jb % live.size()];
      if (o.cache) continue;
      const size_t sz = 1 + sb % 10000;
      what = "krealloc " + std::to_string(o.size) + " -> " + std::to_string(sz);
      verify(o, what);
      void* q = krealloc(m, o.p, sz, GFP_KERNEL);
      if (!q) fail(what + ": failed on a machine with memory to spare");
      const auto* b = static_cast<const uint8_t*>(q);
      for (size_t i = 0; i < std::min(sz, o.size); ++i)
        if (b[i] != pattern(o.p)) fail(what + ": contents not preserved");
      o.p = q;
      o.size = sz;
      fill(o);
    } else if (kind == 7) {  // shrink a cache of ours or a kmalloc cache
      const uint8_t hb = in.next();
      KmemCache* c = hb & 0x80 || handles.empty() ? kmalloc_cache(m, 1u << (hb % 14))
                                                  : handles[hb % handles.size()].cache;
      what = std::string("kmem_cache_shrink ") + kmem_cache_name(c);
      kmem_cache_shrink(c);
    } else if (kind == 8) {  // destroy a cache none of our live objects is in
      const uint8_t hb = in.next();
      if (handles.empty()) continue;
      const size_t k = hb % handles.size();
      KmemCache* c = handles[k].cache;
      bool busy = false;
      for (const Obj& o : live) busy |= o.cache == c;
      if (busy) continue;
      what = std::string("kmem_cache_destroy ") + kmem_cache_name(c);
      if (kmem_cache_destroy(c) != 0) fail(what + ": failed on an empty cache");
      handles[k] = handles.back();
      handles.pop_back();
    } else {  // bind CPU 0 or 1, or unbind
      const unsigned cpu = in.next() % (m.nr_cpus() + 1);
      scope.reset();
      if (cpu < m.nr_cpus()) {
        auto s = CpuScope::bind(m, static_cast<int>(cpu));
        if (!s.ok()) fail("bind: " + s.error().message);
        scope.emplace(std::move(s.value()));
      }
      what = "bind " + std::to_string(cpu);
    }
    if (!bugs.empty()) fail("after " + what + ": " + bugs.front());
    if (std::string err = slab_check(m); !err.empty()) fail("after " + what + ": " + err);
  }

  scope.reset();
  while (!live.empty()) release(live.size() - 1, false, "final free");
  for (const Handle& h : handles)
    if (kmem_cache_destroy(h.cache) != 0) fail("final kmem_cache_destroy failed");
  for (KmemCache* c : slab_caches(m)) kmem_cache_shrink(c);
  if (std::string err = slab_check(m); !err.empty()) fail("after freeing everything: " + err);
  if (!bugs.empty()) fail(bugs.front());
  if (drain_all_pages(m) != m.nr_cpus()) fail("could not drain every CPU");
  if (std::string err = check(m); !err.empty()) fail("page allocator after freeing: " + err);
  if (nr_free_pages(m) != boot_free)
    fail("free pages " + std::to_string(nr_free_pages(m)) + " != boot " +
         std::to_string(boot_free));
  return 0;
}
