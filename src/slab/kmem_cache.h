// SLUB's internal structures (mm/slab.h, mm/slub.c).
//
// A slab is a (compound) page run from the buddy allocator; its head Page
// doubles as the slab descriptor (Linux's struct slab overlays struct page
// the same way): `mapping` names the cache, `lru` links it on a partial
// list, `private_` chains the per-CPU partial slabs, and `index` is one
// atomic word holding the slab's freelist head (as an offset into the slab)
// with its counters, so a free from any CPU is a single compare-and-swap.
//
// Free objects form singly linked lists through a free pointer inside each
// object at `offset`. Each CPU owns one active slab (c.slab) whose free
// objects it hands out from its private list (c.freelist) with no atomic
// operation; slabs a CPU owns (active or on its partial list) are "frozen":
// frees from other CPUs go to the slab's own freelist and never move a
// frozen slab between lists.
//
// Invariants (slab_check.cc): for every slab, objects == inuse + free on its
// own list; on top of that, objects on a CPU's list are counted inuse; a
// node's partial list holds only unfrozen slabs with free objects; frozen
// slabs are exactly the CPUs' active and partial slabs.
//
// Lock order: slab_mutex (cache list) > node list_lock > zone.lock.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/percpu.h"
#include "base/spinlock.h"
#include "slab/slab.h"

namespace mmkit {

inline constexpr unsigned MAX_OBJS_PER_PAGE = 32767;
inline constexpr unsigned MIN_PARTIAL = 5, MAX_PARTIAL = 10;
inline constexpr unsigned kCacheLine = 64;

// The freelist word of a slab: [frozen:1][objects:15][inuse:16][head offset + 1:32].
struct SlabWord {
  uint32_t head;  // byte offset of the first free object + 1; 0: empty
  unsigned inuse, objects;
  bool frozen;

  static SlabWord unpack(uint64_t w) {
    return {static_cast<uint32_t>(w), static_cast<unsigned>(w >> 32 & 0xffff),
            static_cast<unsigned>(w >> 48 & 0x7fff), static_cast<bool>(w >> 63)};
  }
  uint64_t pack() const {
    return uint64_t{head} | uint64_t{inuse} << 32 | uint64_t{objects} << 48 |
           uint64_t{frozen} << 63;
  }
};

struct alignas(64) KmemCacheCpu {
  // The CPU's sheaf (Linux 6.18's per-CPU sheaves, `sheaf_capacity` in
  // kmem_cache_args): a stack of up to sheaf_capacity freed objects of any
  // of the cache's slabs, which frees push and allocations pop before
  // anything else, with no atomic operation and no write to a slab. The
  // slabs count these objects in use. A full sheaf gives its older half
  // back to the slabs (sheaf_flush). Caches without sheaves: null, 0, 0.
  void** sheaf = nullptr;
  void* freelist = nullptr;  // free objects of `slab`, this CPU's alone
  Page* slab = nullptr;      // the active slab (frozen)
  // A new slab's objects not handed out yet, [bump, bump_end): allocate_slab
  // leaves their free pointers unwritten and the CPU hands them out in
  // address order once its freelist is empty; they are chained
  // (cpu_slab_materialize) before the slab leaves the CPU. Plain caches only.
  char* bump = nullptr;
  char* bump_end = nullptr;
  // Frees of this CPU to one other slab, held back and chained through
  // their free pointers (newest first), so that a run of frees to a slab
  // reaches it as one detached freelist with one compare-and-swap (Linux's
  // build_detached_freelist() for kmem_cache_free_bulk, here across calls).
  // The slab still counts them in use until the chain is flushed: when a
  // free goes to a third slab, before the CPU refills, and by flush_all().
  Page* defer_slab = nullptr;
  unsigned sheaf_size = 0, sheaf_capacity = 0;
  void* defer_head = nullptr;
  void* defer_tail = nullptr;
  unsigned defer_count = 0;
  unsigned partial_slabs = 0;
  Page* partial = nullptr;  // frozen partial slabs, chained by private_
  unsigned colour_next = 0;
};

// A cache's per-CPU structures, one area of the machine's per-CPU
// allocator (base/percpu.h): in CPU i's unit, its KmemCacheCpu and right
// after it the slots of its sheaf. Nothing is written at creation; a CPU's
// copy is zero until the CPU uses the cache (cpu_sheaf_attach), so the
// copies of CPUs that never run a cache cost no memory.
class CpuSlabs {
 public:
  CpuSlabs() = default;
  CpuSlabs(PercpuAllocator& pa, unsigned sheaf_capacity)
      : pa_(&pa),
        bytes_(sizeof(KmemCacheCpu) + size_t{sheaf_capacity} * sizeof(void*)),
        first_(static_cast<KmemCacheCpu*>(pa.alloc(bytes_, alignof(KmemCacheCpu)))) {}
  CpuSlabs(CpuSlabs&& o) noexcept : pa_(o.pa_), bytes_(o.bytes_), first_(o.first_) {
    o.first_ = nullptr;
  }
  CpuSlabs& operator=(CpuSlabs&& o) noexcept {
    std::swap(pa_, o.pa_);
    std::swap(bytes_, o.bytes_);
    std::swap(first_, o.first_);
    return *this;
  }
  ~CpuSlabs() {
    if (first_) pa_->free(first_, bytes_);
  }
  explicit operator bool() const { return first_ != nullptr; }
  KmemCacheCpu& operator[](unsigned cpu) const { return *per_cpu_ptr(first_, cpu); }

 private:
  PercpuAllocator* pa_ = nullptr;
  size_t bytes_ = 0;
  KmemCacheCpu* first_ = nullptr;
};

// The slots of `c`'s sheaf, which follow it in its unit.
inline void** cpu_sheaf_slots(KmemCacheCpu& c) {
  return reinterpret_cast<void**>(&c + 1);
}

struct KmemCacheNode {
  SpinLock list_lock;
  ListHead partial GUARDED_BY(list_lock);
  uint64_t nr_partial GUARDED_BY(list_lock) = 0;
  // The node's slabs and their objects in one word ([slabs:24][objects:40]),
  // so creating or discarding a slab is one atomic add (Linux's
  // inc_slabs_node()/dec_slabs_node() update two atomics).
  std::atomic<uint64_t> slabs_objects{0};
  static constexpr unsigned kSlabsShift = 40;
  void account_slab(int64_t slabs, int64_t objects) {
    slabs_objects.fetch_add(static_cast<uint64_t>(slabs * (int64_t{1} << kSlabsShift) + objects),
                            std::memory_order_relaxed);
  }
  int64_t nr_slabs() const {
    return static_cast<int64_t>(slabs_objects.load(std::memory_order_relaxed) >> kSlabsShift);
  }
  int64_t total_objects() const {
    return static_cast<int64_t>(slabs_objects.load(std::memory_order_relaxed) &
                                ((uint64_t{1} << kSlabsShift) - 1));
  }
};

// kmem_cache_node objects come from chunks of 64, shared by every machine
// of the process (Linux allocates them from its kmem_cache_node cache):
// the caches' list_locks sit side by side, so libmmkit-malloc's fork
// handlers, which lock and unlock every one, write a few pages that fork
// made copy-on-write rather than one page per cache.
KmemCacheNode* alloc_kmem_cache_node();
void free_kmem_cache_node(KmemCacheNode* n);
struct KmemCacheNodeDeleter {
  void operator()(KmemCacheNode* n) const { free_kmem_cache_node(n); }
};

struct KmemCache {
  Machine* machine = nullptr;
  std::string name;
  unsigned object_size = 0;  // what the user asked for (grows when merged)
  unsigned size = 0;         // object plus metadata, aligned: the stride
  unsigned align = 0;
  unsigned inuse = 0;   // offset of the metadata after the object
  unsigned offset = 0;  // free pointer offset within the object
  unsigned red_left_pad = 0;
  // Where a SLAB_KMALLOC object with red zones keeps its requested size
  // (after the free pointer); 0: not kept.
  unsigned orig_size_offset = 0;
  slab_flags_t flags = 0;
  void (*ctor)(void*) = nullptr;
  // ~0 / size + 1: an offset x below 2^32 is a multiple of size iff
  // x * size_magic <= size_magic - 1 (mod 2^64; Lemire, Kaser and Kurz's
  // divisibility test), a multiply where x % size divides. Linux keeps
  // reciprocal_size for obj_to_index() the same way.
  uint64_t size_magic = 0;
  unsigned order = 0, objects = 0;          // oo: preferred slab order and its objects
  unsigned min_order = 0, min_objects = 0;  // min: fallback when that order fails
  unsigned colour_slack = 0;                // bytes of colour offset available
  unsigned min_partial = MIN_PARTIAL;
  // Per-CPU partial budget, in objects and in slabs; relaxed atomics since
  // kmem_cache_set_cpu_partial() may change them while CPUs use the cache.
  std::atomic<unsigned> cpu_partial{0}, cpu_partial_slabs{0};
  gfp_t allocflags = 0;
  uint64_t random = 0;  // hardened free pointer key
  // Free pointers are stored encoded (SLAB_FREELIST_HARDENED on the cache,
  // or the machine's slab_freelist_hardened: Linux's
  // CONFIG_SLAB_FREELIST_HARDENED); set by kmem_cache_open.
  bool fp_hardened = false;
  int freeptr_offset_arg = -1;  // KmemCacheArgs::freeptr_offset when used
  int refcount = 1;             // merged aliases share the cache
  // Objects slub_debug withheld from the cache (slab_debug.cc).
  std::atomic<uint64_t> quarantined{0};
  std::vector<std::string> aliases;
  CpuSlabs cpu_slab;
  unsigned sheaf_capacity = 0;  // KmemCacheArgs::sheaf_capacity; 0 for debug caches
  std::vector<std::unique_ptr<KmemCacheNode, KmemCacheNodeDeleter>> node;

  bool debug() const { return flags & SLAB_DEBUG_FLAGS; }
  // Walks of a freelist outside the fast paths check each next pointer.
  bool checks_freepointers() const { return debug() || fp_hardened; }
  bool has_cpu_partial() const { return !(flags & SLAB_DEBUG_FLAGS); }
  unsigned slab_bytes(unsigned ord) const { return static_cast<unsigned>(PAGE_SIZE) << ord; }
};

// --- the slab descriptor in the head Page ---------------------------------------------
inline KmemCache* slab_cache(const Page* slab) {
  return static_cast<KmemCache*>(slab->mapping);
}
inline std::atomic<uint64_t>& slab_word(Page* slab) {
  static_assert(sizeof(std::atomic<uint64_t>) == sizeof(slab->index));
  return *reinterpret_cast<std::atomic<uint64_t>*>(&slab->index);
}
inline Page* slab_next(const Page* slab) {
  return reinterpret_cast<Page*>(slab->private_);
}
inline void set_slab_next(Page* slab, Page* next) {
  slab->private_ = reinterpret_cast<uintptr_t>(next);
}
inline char* slab_base(const Machine& m, const Page* slab) {
  return static_cast<char*>(m.page_address(slab));
}

// Whether `off` bytes past a slab's first object start one of its
// `objects` objects (check_valid_pointer(), and the malloc front end's
// fast free): a multiply where a division would be.
inline bool slab_offset_is_object(const KmemCache* s, uint64_t off, unsigned objects) {
  return off < uint64_t{objects} * s->size && off * s->size_magic <= s->size_magic - 1;
}

// --- free pointers ---------------------------------------------------------------------
// A hardened cache stores ptr ^ random ^ bswap(address of the pointer)
// (freelist_ptr_encode() in mm/slub.c), so an overflow or a use-after-free
// write cannot plant a chosen pointer, and a plain one decodes to garbage.
inline uintptr_t freeptr_key(const KmemCache* s, const void* at) {
  return s->random ^ __builtin_bswap64(reinterpret_cast<uintptr_t>(at));
}
inline void* get_freepointer(const KmemCache* s, void* obj) {
  auto* at = reinterpret_cast<uintptr_t*>(static_cast<char*>(obj) + s->offset);
  if (!s->fp_hardened) return reinterpret_cast<void*>(*at);
  return reinterpret_cast<void*>(*at ^ freeptr_key(s, at));
}
inline void set_freepointer(const KmemCache* s, void* obj, void* fp) {
  auto* at = reinterpret_cast<uintptr_t*>(static_cast<char*>(obj) + s->offset);
  uintptr_t v = reinterpret_cast<uintptr_t>(fp);
  if (s->fp_hardened) v ^= freeptr_key(s, at);
  *at = v;
}

// --- the per-CPU halves of the fast paths, shared with the malloc front end ---
// Pops this CPU's private freelist, else hands out the active slab's next
// unwritten object. Null when both are empty, or when a hardened cache's
// next pointer leaves the object's slab block: the slow path then follows
// it with its checks and reports the corruption.
inline void* cpu_slab_pop(const KmemCache* s, KmemCacheCpu& c) {
  if (void* obj = c.freelist) [[likely]] {
    void* next = get_freepointer(s, obj);
    // A CPU freelist's next object shares the current object's naturally
    // aligned block of the slab's size (the RAM window is aligned to
    // MAX_ORDER): one xor and shift catch a pointer out of the slab.
    if (s->fp_hardened && next &&
        (reinterpret_cast<uintptr_t>(next) ^ reinterpret_cast<uintptr_t>(obj)) >>
            (PAGE_SHIFT + s->order)) [[unlikely]]
      return nullptr;
    c.freelist = next;
    return obj;
  }
  if (c.bump != c.bump_end) {
    void* obj = c.bump;
    c.bump += s->size;
    return obj;
  }
  return nullptr;
}

// Pushes `obj` (of the slab whose head page is `head`) on this CPU's
// private freelist when that is its active slab, or on the chain of frees
// it collects for one other slab. False for any other slab and for the
// naive double free hardened SLUB catches (obj already heads that list).
inline bool cpu_slab_push(const KmemCache* s, KmemCacheCpu& c, Page* head, void* obj) {
  if (head == c.slab) [[likely]] {
    if (obj == c.freelist) [[unlikely]]
      return false;
    set_freepointer(s, obj, c.freelist);
    c.freelist = obj;
    return true;
  }
  if (head == c.defer_slab && obj != c.defer_head) {
    set_freepointer(s, obj, c.defer_head);
    c.defer_head = obj;
    c.defer_count++;
    return true;
  }
  return false;
}

// A CPU's sheaf is attached the first time the CPU goes the slow way
// through a cache with sheaves: until then its capacity reads 0, so its
// first free misses the push, and nothing was written for it at creation.
inline void cpu_sheaf_attach(const KmemCache* s, KmemCacheCpu& c) {
  if (c.sheaf_capacity != s->sheaf_capacity) [[unlikely]] {
    c.sheaf = cpu_sheaf_slots(c);
    c.sheaf_capacity = s->sheaf_capacity;
  }
}

// The sheaf halves: pop the newest object (null when the sheaf is empty
// or the cache has none); push while there is room, false when full or for
// the naive double free (obj tops the sheaf already).
inline void* cpu_sheaf_pop(KmemCacheCpu& c) {
  return c.sheaf_size ? c.sheaf[--c.sheaf_size] : nullptr;
}
inline bool cpu_sheaf_push(KmemCacheCpu& c, void* obj) {
  const unsigned n = c.sheaf_size;
  if (n == c.sheaf_capacity || (n && c.sheaf[n - 1] == obj)) return false;
  c.sheaf[n] = obj;
  c.sheaf_size = n + 1;
  return true;
}

// Per-machine slab state: the cache list and the kmalloc caches.
struct SlabState final : LayerState {
  explicit SlabState(unsigned nr_cpus) : percpu(nr_cpus) {}
  PercpuAllocator percpu;  // the caches' per-CPU structures; outlives them
  std::mutex slab_mutex;
  std::vector<KmemCache*> caches;  // owned; creation order
  KmemCache* kmalloc_caches[14] = {};
  // slub_debug (set_slub_debug, slab_debug.cc), under slab_mutex: the debug
  // flags and the caches they go to ("": all).
  slab_flags_t slub_debug_flags = 0;
  std::string slub_debug_caches;
  std::mutex shrinker_mutex;                // guards `shrinkers` (shrinker.cc)
  std::vector<struct Shrinker*> shrinkers;  // registered, in registration order
  ~SlabState() override;
};
SlabState& slab_state_init(Machine& m);  // creates the kmalloc caches on first use
inline SlabState& slab_state(Machine& m) {
  if (LayerState* st = m.layer_state(Layer::kSlab)) [[likely]]
    return *static_cast<SlabState*>(st);
  return slab_state_init(m);
}

// --- the fast paths (slab_api.cc has the slow halves) ------------------------------------
[[gnu::noinline]] void* kmem_cache_alloc_slow(KmemCache* s, CpuState* cpu, gfp_t gfp, int node);
[[gnu::noinline]] void kmem_cache_free_slow(KmemCache* s, CpuState* cpu, void* obj);

// Pops this CPU's private freelist. Debug caches, caches with sheaves (the
// slow half pops the sheaf first), __GFP_ZERO, a node request and fault
// injection take the slow path.
// `m` is the cache's machine, passed when the caller has it at hand.
inline void* slab_alloc_fast(const Machine& m, KmemCache* s, CpuState* cpu, gfp_t gfp, int node) {
  if (cpu && node == NUMA_NO_NODE && !(s->flags & (SLAB_DEBUG_FLAGS | SLAB_HAS_SHEAVES)) &&
      !(gfp & __GFP_ZERO) && !m.failslab.enabled()) [[likely]] {
    if (void* obj = cpu_slab_pop(s, s->cpu_slab[cpu->id])) [[likely]]
      return obj;
  }
  return kmem_cache_alloc_slow(s, cpu, gfp, node);
}

inline void* kmem_cache_alloc(KmemCache* s, gfp_t gfp) {
  const Machine& m = *s->machine;
  return slab_alloc_fast(m, s, this_cpu(m), gfp, NUMA_NO_NODE);
}

// --- kmalloc's fast half (kmalloc.cc has the rest) -----------------------------------------
// kmalloc_index(): 1 is the 96-byte cache, 2 the 192-byte one, n >= 3 holds 2^n.
inline unsigned kmalloc_index(size_t size) {
  // size_index[] for sizes up to 192, by (size - 1) / 8.
  static constexpr uint8_t kSizeIndex[24] = {3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1,
                                             7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2};
  if (size <= 192) return kSizeIndex[(size - 1) / 8];
  return static_cast<unsigned>(std::bit_width(size - 1));
}
// Zero-size and large requests; the first kmalloc of a machine.
[[gnu::noinline]] void* kmalloc_special(Machine& m, size_t size, gfp_t gfp, int node);
[[gnu::noinline]] void* kmalloc_first(Machine& m, size_t size, gfp_t gfp, int node);

inline void* kmalloc_node(Machine& m, size_t size, gfp_t gfp, int node) {
  if (size - 1 >= KMALLOC_MAX_CACHE_SIZE) [[unlikely]]  // 0 wraps around
    return kmalloc_special(m, size, gfp, node);
  LayerState* ls = m.layer_state(Layer::kSlab);
  if (!ls) [[unlikely]]
    return kmalloc_first(m, size, gfp, node);
  KmemCache* s = static_cast<SlabState*>(ls)->kmalloc_caches[kmalloc_index(size)];
  return slab_alloc_fast(m, s, this_cpu(m), gfp, node);
}
inline void* kmalloc(Machine& m, size_t size, gfp_t gfp) {
  return kmalloc_node(m, size, gfp, NUMA_NO_NODE);
}

// Pushes an object of this CPU's active slab (`head`, the slab of a
// direct-map `obj`) on its private freelist, or an object of the slab this
// CPU is collecting frees for on that chain. Everything else (another slab,
// debug caches, bad pointers, the naive double free of hardened SLUB: obj
// == the head of either list) is slow. slab_free_try_fast is the per-CPU
// half alone, which the malloc front end's free calls too: true when obj
// went on the CPU's lists. A cache with sheaves pushes on the sheaf while
// it has room; a full one is the slow path's to flush.
inline bool slab_free_try_fast(KmemCache* s, const CpuState& cpu, Page* head, void* obj) {
  KmemCacheCpu& c = s->cpu_slab[cpu.id];
  const slab_flags_t f = s->flags & (SLAB_DEBUG_FLAGS | SLAB_HAS_SHEAVES);
  if (!f) [[likely]]
    return cpu_slab_push(s, c, head, obj);
  return f == SLAB_HAS_SHEAVES && cpu_sheaf_push(c, obj);
}
inline void slab_free_fast(KmemCache* s, CpuState* cpu, Page* head, void* obj) {
  if (cpu && slab_free_try_fast(s, *cpu, head, obj)) [[likely]]
    return;
  kmem_cache_free_slow(s, cpu, obj);
}

// The head page of a direct-map address, or null outside the direct map:
// is_direct_mapped() and virt_to_head_page() as one offset and one compare
// (null and ZERO_SIZE_PTR fall outside: the direct map starts far above).
inline Page* direct_map_head(const Machine& m, const void* p) {
  const uintptr_t off =
      reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(m.phys_window(0));
  if (off >= m.direct_map_pfns() << PAGE_SHIFT) [[unlikely]]
    return nullptr;
  return m.pfn_to_page(off >> PAGE_SHIFT)->head();
}

inline void kmem_cache_free(KmemCache* s, void* obj) {
  const Machine& m = *s->machine;
  if (Page* head = direct_map_head(m, obj)) [[likely]] {
    slab_free_fast(s, this_cpu(m), head, obj);
    return;
  }
  kmem_cache_free_slow(s, this_cpu(m), obj);  // null, or a bad pointer
}

// kfree of what is not a slab object: a large kmalloc, or a bad pointer.
[[gnu::noinline]] void kfree_special(Machine& m, const void* p);

inline void kfree(Machine& m, const void* p) {
  Page* head = direct_map_head(m, p);
  if (head && head->test(PG_slab)) [[likely]] {
    slab_free_fast(slab_cache(head), this_cpu(m), head, const_cast<void*>(p));
    return;
  }
  kfree_special(m, p);  // null, ZERO_SIZE_PTR, large kmallocs, bad pointers
}

// --- slub.cc -----------------------------------------------------------------------------------
// Sets up a new cache's sizes, order and per-CPU/node structures; the
// per-CPU ones come from `pa`, the machine's (SlabState::percpu).
bool kmem_cache_open(KmemCache* s, PercpuAllocator& pa);
void* slab_alloc_slow(KmemCache* s, CpuState* cpu, gfp_t gfp, int node);
// __slab_free(): `cnt` objects of `slab`, chained from `head` to `tail`
// through their free pointers, go back to it.
void slab_free_slow(KmemCache* s, CpuState* cpu, Page* slab, void* head, void* tail, unsigned cnt);
// A free of this CPU to a slab other than its active one: flushes the chain
// it was collecting for another slab and starts one for `slab`.
void slab_free_defer(KmemCache* s, CpuState* cpu, Page* slab, void* obj);
// Chains the CPU's unwritten objects of its active slab onto its freelist.
void cpu_slab_materialize(KmemCache* s, KmemCacheCpu* c);
// Returns the CPU's collected frees to their slab.
void flush_deferred_frees(KmemCache* s, CpuState* cpu, KmemCacheCpu* c);
// A bound CPU's free of `obj` (of `slab`) that missed its sheaf: onto its
// freelist for its active slab, onto the deferred chain, or to the slab
// with the chain flushed; a free of either list's head is reported as a
// double free.
void slab_free_cpu(KmemCache* s, CpuState* cpu, KmemCacheCpu* c, Page* slab, void* obj);
// Gives the older half of the CPU's full sheaf back to the slabs.
void sheaf_flush(KmemCache* s, CpuState* cpu, KmemCacheCpu* c);
// Returns every CPU's slabs of `s` to the node lists (flush_all()); false if
// a CPU bound to another thread still holds one.
bool flush_all(KmemCache* s);
// Frees empty slabs on the node partial lists.
void shrink_node_partials(KmemCache* s);
void free_kmem_cache_nodes(KmemCache* s);
uint64_t count_partial_free(KmemCache* s, int node);

// --- slab reports ------------------------------------------------------------------------------
void slab_report(KmemCache* s, const char* what, const void* obj);

}  // namespace mmkit
