// The slab allocator's entry points: cache creation (with SLUB's size,
// alignment and order calculation and cache merging, mm/slab_common.c), the
// per-CPU fast paths of kmem_cache_alloc/free, shrink and destroy.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <random>

#include "base/bitops.h"
#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab_debug.h"

namespace mmkit {

namespace {

constexpr slab_flags_t SLAB_NEVER_MERGE =
    SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TYPESAFE_BY_RCU | SLAB_NO_MERGE |
    SLAB_CONSISTENCY_CHECKS | SLAB_FREELIST_HARDENED | SLAB_COLOUR;
constexpr slab_flags_t SLAB_MERGE_SAME = SLAB_RECLAIM_ACCOUNT | SLAB_CACHE_DMA | SLAB_CACHE_DMA32;
constexpr slab_flags_t kValidFlags =
    SLAB_DEBUG_FLAGS | SLAB_HWCACHE_ALIGN | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_PANIC |
    SLAB_RECLAIM_ACCOUNT | SLAB_NO_MERGE | SLAB_FREELIST_HARDENED | SLAB_COLOUR | SLAB_KMALLOC;

unsigned get_order(uint64_t size) {
  return size <= PAGE_SIZE ? 0 : static_cast<unsigned>(fls((size - 1) >> PAGE_SHIFT));
}
unsigned order_objects(unsigned order, unsigned size) {
  return static_cast<unsigned>((PAGE_SIZE << order) / size);
}

// calculate_alignment(): SLAB_HWCACHE_ALIGN aligns to the cache line, or a
// fraction of it for small objects, never below a word.
unsigned calculate_alignment(slab_flags_t flags, unsigned align, unsigned size) {
  if (flags & SLAB_HWCACHE_ALIGN) {
    unsigned ralign = kCacheLine;
    while (size <= ralign / 2) ralign /= 2;
    align = std::max(align, ralign);
  }
  align = std::max(align, 8u);
  return static_cast<unsigned>(align_up(align, sizeof(void*)));
}

// calculate_order(): the smallest order up to slub_max_order (3 unless the
// machine's config raises it) that holds
// min_objects = 4 * (fls(nr_cpus) + 1) objects (or slub_min_objects when
// set) and wastes at most 1/16 of the slab, then 1/8, 1/4, 1/2; failing
// that, the order of one object.
unsigned calculate_order(unsigned size, unsigned nr_cpus, unsigned slub_max_order,
                         unsigned slub_min_objects) {
  constexpr unsigned slub_min_order = 0;
  unsigned min_objects = slub_min_objects ? slub_min_objects : 4 * (fls(nr_cpus) + 1);
  const unsigned max_objects = std::max(order_objects(slub_max_order, size), 1u);
  min_objects = std::min(min_objects, max_objects);
  const unsigned min_order = std::max(slub_min_order, get_order(uint64_t{min_objects} * size));
  if (order_objects(min_order, size) > MAX_OBJS_PER_PAGE)
    return get_order(uint64_t{size} * MAX_OBJS_PER_PAGE) - 1;
  for (unsigned fraction = 16; fraction > 1; fraction /= 2) {
    for (unsigned order = min_order; order <= slub_max_order; ++order) {
      const unsigned slab_size = static_cast<unsigned>(PAGE_SIZE) << order;
      if (slab_size % size <= slab_size / fraction) return order;
    }
  }
  return get_order(size);
}

// calculate_sizes(): where the free pointer and debug metadata go, the
// stride, and the slab order.
bool calculate_sizes(KmemCache* s) {
  unsigned size = static_cast<unsigned>(align_up(s->object_size, sizeof(void*)));
  if ((s->flags & SLAB_RED_ZONE) && size == s->object_size)
    size += sizeof(void*);  // right red zone
  s->inuse = size;
  if ((s->flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON)) || s->ctor ||
      ((s->flags & SLAB_RED_ZONE) && s->object_size < sizeof(void*))) {
    s->offset = size;  // the object must stay intact while free
    size += sizeof(void*);
  } else if (s->freeptr_offset_arg >= 0) {
    s->offset = static_cast<unsigned>(s->freeptr_offset_arg);
  } else {
    s->offset = static_cast<unsigned>(align_down(s->object_size / 2, sizeof(void*)));
  }
  // Owner tracking (SLAB_STORE_USER): the allocating and the freeing call
  // site, after the free pointer; then a kmalloc cache's requested size.
  if (s->flags & SLAB_STORE_USER) size += 2 * kSlabTrackBytes;
  s->orig_size_offset = 0;
  if ((s->flags & SLAB_KMALLOC) && (s->flags & SLAB_RED_ZONE)) {
    s->orig_size_offset = size;
    size += sizeof(unsigned);
  }
  if (s->flags & SLAB_RED_ZONE) {
    s->red_left_pad = static_cast<unsigned>(align_up(sizeof(void*), s->align));
    size += s->red_left_pad;
  }
  size = static_cast<unsigned>(align_up(size, s->align));
  s->size = size;
  s->size_magic = ~uint64_t{0} / size + 1;
  const MachineConfig& cfg = s->machine->config();
  const unsigned order =
      calculate_order(size, s->machine->nr_cpus(), cfg.slub_max_order, cfg.slub_min_objects);
  if (order > MAX_PAGE_ORDER) return false;
  s->order = order;
  s->objects = order_objects(order, size);
  s->min_order = get_order(size);
  s->min_objects = order_objects(s->min_order, size);
  s->colour_slack =
      static_cast<unsigned>(align_down(s->slab_bytes(order) - s->objects * size, kCacheLine));
  s->allocflags = (order ? __GFP_COMP : 0) |
                  ((s->flags & SLAB_RECLAIM_ACCOUNT) ? __GFP_RECLAIMABLE : 0) |
                  ((s->flags & SLAB_CACHE_DMA) ? __GFP_DMA : 0) |
                  ((s->flags & SLAB_CACHE_DMA32) ? __GFP_DMA32 : 0);
  if (s->min_order) s->allocflags |= __GFP_COMP;
  return true;
}

// slub_set_cpu_partial(): the budget in objects and, since the slabs it
// counts are about half full, twice that in slabs' worth (mm/slub.c).
void slub_set_cpu_partial(KmemCache* s, unsigned nr) {
  s->cpu_partial.store(nr, std::memory_order_relaxed);
  s->cpu_partial_slabs.store(static_cast<unsigned>(div_round_up(uint64_t{nr} * 2, s->objects)),
                             std::memory_order_relaxed);
}

// set_cpu_partial(): how many objects a CPU may keep on partial slabs.
void set_cpu_partial(KmemCache* s) {
  unsigned nr = 0;
  if (s->has_cpu_partial())
    nr = s->size >= PAGE_SIZE ? 6 : s->size >= 1024 ? 24 : s->size >= 256 ? 52 : 120;
  slub_set_cpu_partial(s, nr);
}

KmemCache* find_mergeable(SlabState& st, unsigned size, unsigned align, slab_flags_t flags,
                          void (*ctor)(void*)) {
  if (ctor || (flags & SLAB_NEVER_MERGE)) return nullptr;
  size = static_cast<unsigned>(align_up(size, sizeof(void*)));
  align = calculate_alignment(flags, align, size);
  size = static_cast<unsigned>(align_up(size, align));
  for (auto it = st.caches.rbegin(); it != st.caches.rend(); ++it) {
    KmemCache* s = *it;
    if ((s->flags & SLAB_NEVER_MERGE) || s->ctor || s->refcount < 0 || s->freeptr_offset_arg >= 0 ||
        s->sheaf_capacity)
      continue;
    if (size > s->size) continue;
    if ((flags & SLAB_MERGE_SAME) != (s->flags & SLAB_MERGE_SAME)) continue;
    if ((s->size & ~(align - 1)) != s->size) continue;  // alignment compatible
    if (s->size - size >= sizeof(void*)) continue;      // would waste a word or more
    return s;
  }
  return nullptr;
}

KmemCache* create_cache(Machine& m, PercpuAllocator& pa, std::string_view name, unsigned size,
                        const KmemCacheArgs& args, slab_flags_t flags) {
  auto s = std::make_unique<KmemCache>();
  s->machine = &m;
  s->name = std::string(name);
  s->object_size = size;
  s->flags = flags;
  s->ctor = args.ctor;
  s->align = calculate_alignment(flags, args.align, size);
  if (args.use_freeptr_offset) s->freeptr_offset_arg = static_cast<int>(args.freeptr_offset);
  s->sheaf_capacity = args.sheaf_capacity;
  if (!kmem_cache_open(s.get(), pa)) return nullptr;
  return s.release();
}

// should_failslab(): failslab's filters, then the attribute.
bool should_failslab(Machine& m, gfp_t gfp) {
  if (gfp & __GFP_NOFAIL) return false;
  if (m.failslab_cfg.ignore_gfp_wait && (gfp & __GFP_DIRECT_RECLAIM)) return false;
  return m.failslab.should_fail(1);
}

}  // namespace

namespace {
constexpr unsigned kNodesPerChunk = 64;
constinit std::mutex node_pool_lock;
constinit void* node_pool_free = nullptr;  // free slots, chained through their first word
}  // namespace

KmemCacheNode* alloc_kmem_cache_node() {
  void* slot;
  {
    std::lock_guard<std::mutex> g(node_pool_lock);
    if (!node_pool_free) {
      // Never freed: a chunk's slots go back to the pool, whose free list
      // keeps every chunk reachable.
      auto* chunk = static_cast<char*>(::operator new (kNodesPerChunk * sizeof(KmemCacheNode),
                                                       std::align_val_t{alignof(KmemCacheNode)}));
      for (unsigned i = kNodesPerChunk; i-- > 0;) {
        void* p = chunk + size_t{i} * sizeof(KmemCacheNode);
        *static_cast<void**>(p) = node_pool_free;
        node_pool_free = p;
      }
    }
    slot = node_pool_free;
    node_pool_free = *static_cast<void**>(slot);
  }
  return new (slot) KmemCacheNode();
}

void free_kmem_cache_node(KmemCacheNode* n) {
  n->~KmemCacheNode();
  std::lock_guard<std::mutex> g(node_pool_lock);
  *reinterpret_cast<void**>(n) = node_pool_free;
  node_pool_free = n;
}

bool kmem_cache_open(KmemCache* s, PercpuAllocator& pa) {
  Machine& m = *s->machine;
  if (!calculate_sizes(s)) return false;
  s->min_partial = std::clamp(static_cast<unsigned>(ilog2(s->size)) / 2, MIN_PARTIAL, MAX_PARTIAL);
  set_cpu_partial(s);
  std::random_device rd;
  s->random = (uint64_t{rd()} << 32) | rd();
  s->fp_hardened = (s->flags & SLAB_FREELIST_HARDENED) || m.config().slab_freelist_hardened;
  if (s->debug()) s->sheaf_capacity = 0;  // every debug free goes the checked way
  s->flags = (s->flags & ~SLAB_HAS_SHEAVES) | (s->sheaf_capacity ? SLAB_HAS_SHEAVES : 0);
  s->cpu_slab = CpuSlabs(pa, s->sheaf_capacity);
  if (!s->cpu_slab) return false;
  for (unsigned i = 0; i < m.nr_nodes(); ++i) {
    s->node.emplace_back(alloc_kmem_cache_node());
    SpinGuard g(s->node.back()->list_lock);
    s->node.back()->partial.init();
  }
  return true;
}

KmemCache* kmem_cache_create(Machine& m, std::string_view name, unsigned size, unsigned align,
                             slab_flags_t flags, void (*ctor)(void*)) {
  return kmem_cache_create(m, name, size, KmemCacheArgs{.align = align, .ctor = ctor}, flags);
}

KmemCache* kmem_cache_create(Machine& m, std::string_view name, unsigned size,
                             const KmemCacheArgs& args, slab_flags_t flags) {
  const unsigned align = args.align;
  SlabState& st = slab_state(m);
  auto fail = [&](const std::string& why) -> KmemCache* {
    m.warn(fmt::format("kmem_cache_create({}) failed: {}{}\n", name, why,
                       (flags & SLAB_PANIC) ? " (SLAB_PANIC: fatal in Linux)" : ""));
    return nullptr;
  };
  if (name.empty()) return fail("empty name");
  if (size == 0 || size > (PAGE_SIZE << MAX_PAGE_ORDER) / 2)
    return fail(fmt::format("object size {} out of range", size));
  if (align & (align - 1)) return fail(fmt::format("alignment {} is not a power of two", align));
  if (align > PAGE_SIZE) return fail(fmt::format("alignment {} above a page", align));
  if (flags & ~kValidFlags) return fail(fmt::format("unknown flags {:#x}", flags & ~kValidFlags));
  if (flags & SLAB_TYPESAFE_BY_RCU) return fail("SLAB_TYPESAFE_BY_RCU is not supported (no RCU)");
  if (args.use_freeptr_offset &&
      (args.freeptr_offset % sizeof(void*) ||
       args.freeptr_offset + sizeof(void*) > align_up(size, sizeof(void*))))
    return fail(fmt::format("freeptr_offset {} is not a word-aligned word inside a {}-byte object",
                            args.freeptr_offset, size));
  if (args.sheaf_capacity > kMaxSheafCapacity)
    return fail(fmt::format("sheaf_capacity {} above {}", args.sheaf_capacity, kMaxSheafCapacity));

  std::lock_guard<std::mutex> g(st.slab_mutex);
  flags |= slub_debug_flags_for(st, name);  // slub_debug= (slab_debug.cc)
  for (KmemCache* s : st.caches)
    if (s->name == name) return fail("a cache of that name exists");
  KmemCache* alias = args.use_freeptr_offset || args.sheaf_capacity
                         ? nullptr
                         : find_mergeable(st, size, align, flags, args.ctor);
  if (KmemCache* s = alias) {
    s->refcount++;
    s->object_size = std::max(s->object_size, size);
    s->inuse = std::max(s->inuse, static_cast<unsigned>(align_up(size, sizeof(void*))));
    s->aliases.emplace_back(name);
    return s;
  }
  KmemCache* s = create_cache(m, st.percpu, name, size, args, flags);
  if (!s) return fail("no slab order can hold the object");
  st.caches.push_back(s);
  return s;
}

// The slow half of kmem_cache_alloc_node: fault injection, node checks,
// the sheaf, refills, debug processing, zeroing. Kept out of line so the fast path
// stays a leaf function.
void* kmem_cache_alloc_slow(KmemCache* s, CpuState* cpu, gfp_t gfp, int node) {
  Machine& m = *s->machine;
  if (m.failslab.enabled() && should_failslab(m, gfp)) return nullptr;
  if (node != NUMA_NO_NODE && (node < 0 || static_cast<unsigned>(node) >= m.nr_nodes())) {
    m.warn(fmt::format("kmem_cache_alloc_node({}): node {} does not exist\n", s->name, node));
    return nullptr;
  }
  void* obj = nullptr;
  if ((s->flags & SLAB_HAS_SHEAVES) && cpu && node == NUMA_NO_NODE) {
    KmemCacheCpu& c = s->cpu_slab[cpu->id];
    cpu_sheaf_attach(s, c);
    if (!(obj = cpu_sheaf_pop(c))) obj = cpu_slab_pop(s, c);
  }
  while (!obj) {
    obj = slab_alloc_slow(s, cpu, gfp, node);
    if (!obj || !s->debug()) break;
    Page* slab = m.virt_to_page(obj)->head();
    if (!alloc_debug_processing(s, slab, obj)) obj = nullptr;  // quarantined: take another
  }
  if (obj && (gfp & __GFP_ZERO)) std::memset(obj, 0, s->object_size);
  return obj;
}

void* kmem_cache_alloc_node(KmemCache* s, gfp_t gfp, int node) {
  const Machine& m = *s->machine;
  return slab_alloc_fast(m, s, this_cpu(m), gfp, node);
}

void kmem_cache_free_slow(KmemCache* s, CpuState* cpu, void* obj) {
  Machine& m = *s->machine;
  if (!obj) return;
  if (!m.is_direct_mapped(obj)) {
    slab_report(s, "kmem_cache_free: pointer outside the direct map", obj);
    return;
  }
  Page* slab = m.virt_to_page(obj)->head();
  if (!slab->test(PG_slab) || slab_cache(slab) != s) {
    slab_report(s,
                slab->test(PG_slab) ? "kmem_cache_free: object belongs to another cache"
                                    : "kmem_cache_free: object is not from a slab",
                obj);
    return;
  }
  if (cpu && !s->debug()) {
    KmemCacheCpu& c = s->cpu_slab[cpu->id];
    cpu_sheaf_attach(s, c);
    if (c.sheaf_size && c.sheaf[c.sheaf_size - 1] == obj) {
      slab_report(s, "double free detected", obj);  // it tops the sheaf
      return;
    }
    // A full sheaf makes room, unless obj can go to the active slab or the
    // deferred chain without writing a slab.
    if (c.sheaf_capacity && c.sheaf_size == c.sheaf_capacity && slab != c.slab &&
        slab != c.defer_slab)
      sheaf_flush(s, cpu, &c);
    if (!cpu_sheaf_push(c, obj)) slab_free_cpu(s, cpu, &c, slab, obj);
    return;
  }
  if (s->debug() && !free_debug_processing(s, slab, obj)) return;
  slab_free_slow(s, cpu, slab, obj, obj, 1);
}

int kmem_cache_shrink(KmemCache* s) {
  flush_all(s);
  shrink_node_partials(s);
  return 0;
}

int kmem_cache_destroy(KmemCache* s) {
  if (!s) return 0;
  Machine& m = *s->machine;
  SlabState& st = slab_state(m);
  std::lock_guard<std::mutex> g(st.slab_mutex);
  if (--s->refcount > 0) return 0;  // an alias goes; the cache stays
  const bool flushed = flush_all(s);
  shrink_node_partials(s);
  int64_t slabs = 0, objects = 0;
  for (auto& n : s->node) {
    slabs += n->nr_slabs();
    objects += n->total_objects();
  }
  if (slabs) {
    s->refcount++;
    m.warn(fmt::format(
        "=============================================================================\n"
        "BUG {} (Not tainted): Objects remaining in {} on __kmem_cache_shutdown()\n"
        "-----------------------------------------------------------------------------\n"
        "{} slab(s) with {} object slots still allocated{}\n"
        "kmem_cache_destroy {}: Slab cache still has objects\n",
        s->name, s->name, slabs, objects,
        flushed ? "" : " (a CPU bound to another thread still holds a slab)", s->name));
    return -EBUSY;
  }
  st.caches.erase(std::find(st.caches.begin(), st.caches.end(), s));
  delete s;
  return 0;
}

int kmem_cache_set_cpu_partial(KmemCache* s, unsigned objects) {
  if (objects && !s->has_cpu_partial()) return -EINVAL;
  slub_set_cpu_partial(s, objects);
  flush_all(s);
  return 0;
}

unsigned kmem_cache_cpu_partial(const KmemCache* s) {
  return s->cpu_partial.load(std::memory_order_relaxed);
}

const char* kmem_cache_name(const KmemCache* s) {
  return s->name.c_str();
}
unsigned kmem_cache_size(const KmemCache* s) {
  return s->object_size;
}

std::vector<KmemCache*> slab_caches(Machine& m) {
  SlabState& st = slab_state(m);
  std::lock_guard<std::mutex> g(st.slab_mutex);
  return st.caches;
}

std::vector<std::string> kmem_cache_aliases(const KmemCache* s) {
  return s->aliases;
}

void for_each_slab_cache(Machine& m, const std::function<void(KmemCache*)>& fn) {
  SlabState& st = slab_state(m);
  std::lock_guard<std::mutex> g(st.slab_mutex);
  for (auto it = st.caches.rbegin(); it != st.caches.rend(); ++it) fn(*it);
}

SlabInfo get_slabinfo(KmemCache* s) {
  SlabInfo info{s->name, 0, 0, s->size, s->objects, 1u << s->order, 0, 0};
  uint64_t free = 0;
  for (unsigned i = 0; i < s->node.size(); ++i) {
    info.num_slabs += s->node[i]->nr_slabs();
    info.num_objs += s->node[i]->total_objects();
    free += count_partial_free(s, static_cast<int>(i));
  }
  info.active_objs = info.num_objs - free;
  info.active_slabs = info.num_slabs;
  return info;
}

// slab_report() is in slab_debug.cc.

SlabState::~SlabState() {
  for (KmemCache* s : caches) delete s;
}

}  // namespace mmkit
