// The slab allocator's interface (include/linux/slab.h): object caches and
// the kmalloc family, over the page allocator. SLUB's design (mm/slub.c).
//
//   kmem_cache_create(m, name, size, align, flags, ctor) -> KmemCache*
//   kmem_cache_alloc / _node / kmem_cache_free / kmem_cache_shrink / _destroy
//   kmalloc / kzalloc / kcalloc / krealloc / kfree / ksize / kmalloc_node
//
// The allocation paths never throw: they return null where Linux would fail.
// kmalloc(0) returns ZERO_SIZE_PTR, which faults on any use and which kfree
// accepts. Misuse (a double free, a pointer from another cache, destroying a
// cache with live objects) is reported Linux-style through Machine::warn and
// never corrupts the allocator. The slab layer of a machine starts on first
// use (the kmalloc caches are created then).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "page_alloc/gfp.h"
#include "phys/machine.h"

namespace mmkit {

using slab_flags_t = uint32_t;
// Flag values of include/linux/slab.h.
inline constexpr slab_flags_t SLAB_CONSISTENCY_CHECKS = 0x00000100;
inline constexpr slab_flags_t SLAB_RED_ZONE = 0x00000400;
inline constexpr slab_flags_t SLAB_POISON = 0x00000800;
inline constexpr slab_flags_t SLAB_HWCACHE_ALIGN = 0x00002000;
inline constexpr slab_flags_t SLAB_CACHE_DMA = 0x00004000;
inline constexpr slab_flags_t SLAB_CACHE_DMA32 = 0x00008000;
inline constexpr slab_flags_t SLAB_STORE_USER = 0x00010000;
inline constexpr slab_flags_t SLAB_PANIC = 0x00040000;
inline constexpr slab_flags_t SLAB_TYPESAFE_BY_RCU = 0x00080000;
inline constexpr slab_flags_t SLAB_RECLAIM_ACCOUNT = 0x00020000;
inline constexpr slab_flags_t SLAB_NO_MERGE = 0x01000000;
// A kmalloc-like cache whose callers ask for sizes below the object size
// (SLAB_KMALLOC): with red zones, each object keeps its requested size, and
// the bytes between it and the object's end are a red zone too ("kmalloc
// Redzone", Linux 6.1's orig_size; kmem_cache_set_orig_size()).
inline constexpr slab_flags_t SLAB_KMALLOC = 0x00001000;
// mmkit's own: hardened free pointers (CONFIG_SLAB_FREELIST_HARDENED as a
// per-cache debug option) and slab colouring (Linux's SLAB had it).
inline constexpr slab_flags_t SLAB_FREELIST_HARDENED = 0x10000000;
inline constexpr slab_flags_t SLAB_COLOUR = 0x20000000;
// mmkit-internal, not a creation flag: kmem_cache_open sets it on a cache
// with per-CPU sheaves, so the inline fast paths test debug and sheaves in
// one go and plain caches pay nothing for them.
inline constexpr slab_flags_t SLAB_HAS_SHEAVES = 0x40000000;

inline constexpr slab_flags_t SLAB_DEBUG_FLAGS =
    SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;

struct KmemCache;

// The size asked for of an object of a SLAB_KMALLOC cache with red zones:
// set after the allocation (the tail past it becomes red zone, checked
// when the object is freed), read back for malloc_usable_size. Without
// them: nothing set, and the object size read.
void kmem_cache_set_orig_size(KmemCache* s, void* obj, unsigned size);
unsigned kmem_cache_orig_size(const KmemCache* s, const void* obj);
// SLAB_STORE_USER's owner tracking records, for each allocation and free,
// the address it was made from (Linux's _RET_IP_). A front end whose own
// caller is what matters (malloc's) names it here for the calling thread's
// next allocations and frees; null: the slab allocator's caller.
void slab_set_track_caller(const void* addr);

// Returns null (and reports why) on bad arguments or when out of memory;
// with SLAB_PANIC the report says the creation was fatal, as Linux panics.
KmemCache* kmem_cache_create(Machine& m, std::string_view name, unsigned size, unsigned align,
                             slab_flags_t flags, void (*ctor)(void*) = nullptr);

// The largest KmemCacheArgs::sheaf_capacity kmem_cache_create accepts.
inline constexpr unsigned kMaxSheafCapacity = 1024;

// Linux's struct kmem_cache_args (include/linux/slab.h, 6.12), the fields
// mmkit has, for the form of kmem_cache_create that takes them.
struct KmemCacheArgs {
  unsigned align = 0;
  void (*ctor)(void*) = nullptr;
  // Where a free object keeps its free pointer, in place of SLUB's middle
  // of the object: a word-aligned offset with the word inside the object.
  // Linux honours it for SLAB_TYPESAFE_BY_RCU caches; mmkit for any cache
  // whose free objects need not stay intact (no ctor, no SLAB_POISON: those
  // keep the pointer past the object). Such a cache never merges.
  unsigned freeptr_offset = 0;
  bool use_freeptr_offset = false;
  // Objects each CPU keeps in a sheaf in front of the slabs (Linux 6.18's
  // kmem_cache_args.sheaf_capacity): frees and allocations that meet the
  // sheaf touch no slab. 0: none. Debug caches ignore it; such a cache
  // never merges.
  unsigned sheaf_capacity = 0;
};
KmemCache* kmem_cache_create(Machine& m, std::string_view name, unsigned size,
                             const KmemCacheArgs& args, slab_flags_t flags);
// kmem_cache_alloc and kmem_cache_free are inline down to the CPU
// freelist (kmem_cache.h), as kmalloc and kfree are.
inline void* kmem_cache_alloc(KmemCache* s, gfp_t gfp);
void* kmem_cache_alloc_node(KmemCache* s, gfp_t gfp, int node);
// Up to `n` objects off one partial slab of node `nid`, in one round trip
// of its list_lock, for a caller that keeps objects of its own outside any
// CPU (the malloc heap's magazines); no slab is frozen. 0 when the node has
// no partial slab, and always for debug caches (their objects need
// alloc_debug_processing one at a time).
unsigned kmem_cache_alloc_from_partial(KmemCache* s, int nid, void** out, unsigned n);
inline void kmem_cache_free(KmemCache* s, void* obj);
// 0 on success; -EBUSY (with a report) while objects are live.
int kmem_cache_destroy(KmemCache* s);
// Frees the empty slabs of the cache; returns 0.
int kmem_cache_shrink(KmemCache* s);
// How many free objects each CPU may keep on partial slabs of its own, as
// reading and writing /sys/kernel/slab/<cache>/cpu_partial do
// (cpu_partial_show/_store(), mm/slub.c). Setting flushes every CPU's slabs;
// it returns 0, or -EINVAL for a nonzero budget on a debug cache, which
// keeps no CPU partial slabs.
int kmem_cache_set_cpu_partial(KmemCache* s, unsigned objects);
unsigned kmem_cache_cpu_partial(const KmemCache* s);
const char* kmem_cache_name(const KmemCache* s);
unsigned kmem_cache_size(const KmemCache* s);  // object size

inline void* const ZERO_SIZE_PTR = reinterpret_cast<void*>(16);
inline bool ZERO_OR_NULL_PTR(const void* p) {
  return reinterpret_cast<uintptr_t>(p) <= 16;
}
inline constexpr size_t KMALLOC_MAX_CACHE_SIZE = 8192;  // larger: the page allocator

// Inline, as in Linux (kmem_cache.h has the definitions): the size class is
// a table lookup, folded away when the size is a constant.
inline void* kmalloc(Machine& m, size_t size, gfp_t gfp);
inline void* kmalloc_node(Machine& m, size_t size, gfp_t gfp, int node);
inline void* kzalloc(Machine& m, size_t size, gfp_t gfp) {
  return kmalloc(m, size, gfp | __GFP_ZERO);
}
void* kcalloc(Machine& m, size_t n, size_t size, gfp_t gfp);  // null on overflow
void* krealloc(Machine& m, const void* p, size_t new_size, gfp_t gfp);
inline void kfree(Machine& m, const void* p);
size_t ksize(Machine& m, const void* p);
// The kmalloc cache serving `size` bytes, or null above KMALLOC_MAX_CACHE_SIZE.
KmemCache* kmalloc_cache(Machine& m, size_t size);

// slub_cpu_dead(): every cache's slabs of `cpu` back to the node lists (a
// CPU going offline; the malloc front end's thread exit). The caller owns
// the CPU.
void slub_cpu_dead(Machine& m, CpuState* cpu);

// Every cache of the machine in creation order, and the names merged into it.
std::vector<KmemCache*> slab_caches(Machine& m);
std::vector<std::string> kmem_cache_aliases(const KmemCache* s);
// Visits the caches newest first (the order of Linux's slab_caches list)
// under slab_mutex, so none is destroyed meanwhile.
void for_each_slab_cache(Machine& m, const std::function<void(KmemCache*)>& fn);

// /proc/slabinfo numbers of one cache (get_slabinfo()).
struct SlabInfo {
  std::string name;
  uint64_t active_objs, num_objs;
  unsigned objsize, objperslab, pagesperslab;
  uint64_t active_slabs, num_slabs;
};
SlabInfo get_slabinfo(KmemCache* s);

// Proves every cache's invariants (see slab_check.cc); "" when they hold.
// Other CPUs must be quiet.
std::string slab_check(Machine& m);

}  // namespace mmkit

// kmalloc()'s inline definition needs the cache internals.
#include "slab/kmem_cache.h"  // IWYU pragma: export
