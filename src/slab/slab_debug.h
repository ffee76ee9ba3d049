// slub_debug: red zones, poisoning, consistency checks on alloc and free
// (mm/slub.c's debug half). Caches with any of SLAB_DEBUG_FLAGS or
// SLAB_FREELIST_HARDENED take the slow paths, where these hooks run.
//
// Object layout of a debug cache (s->size bytes per object):
//   [red_left_pad: 0xbb/0xcc][object_size: 0x6b.. 0xa5 when free][pad to
//   inuse: 0xbb/0xcc][free pointer when it must live outside the object]
//   [padding to s->size: 0x5a]
// With SLAB_POISON the whole slab starts as POISON_INUSE (0x5a), so the
// bytes past the last object (and a colour offset) are checked too.
//
// Reports follow Linux's format (slab_bug / object_err / slab_err /
// check_bytes_and_report / slab_fix), each one call of Machine::warn:
//
//   =============================================================================
//   BUG kmalloc-64 (Not tainted): Poison overwritten
//   -----------------------------------------------------------------------------
//
//   INFO: 0x...-0x... @offset=NN. First byte 0x42 instead of 0x6b
//   Slab 0x... objects=.. used=.. fp=0x... flags=0x...
//   Object 0x... @offset=NN fp=0x...
//
//   Redzone  0x...: bb bb bb bb bb bb bb bb                          ........
//   Object   0x...: 42 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  Bkkkkkkkkkkkkkkk
//   ...
//   FIX kmalloc-64: Restoring Poison 0x...-0x...=0x6b
//   FIX kmalloc-64: Marking object as quarantined
//
// What happens on corruption (the machine keeps running):
//   - alloc: a free object whose poison, red zones or padding are damaged is
//     quarantined: never handed out nor freed again, counted as in use by its
//     slab (so slab_check's objects == inuse + free holds) and in
//     kmem_cache_quarantined(); the allocator takes another object.
//   - free: a pointer that is not an object of the slab ("Invalid object
//     pointer"), an object already free ("Object already free", found on
//     the slab's freelist or the private freelist of the CPU holding the
//     slab) or a quarantined object is refused; damaged red zones ("Left/
//     Right Redzone overwritten") or padding are restored, and then, with
//     SLAB_CONSISTENCY_CHECKS, the free is refused and the object
//     quarantined ("Object at 0x... not freed", as Linux's
//     free_consistency_checks()); without it the object is freed.
//   - a free pointer that is not null and not an object of its slab
//     ("Freepointer corrupt" / "Freechain corrupt") is cut: the objects
//     behind it stay counted as in use and are never handed out.
//
// The checks of a slab's freelist and of another CPU's private freelist are
// exact when the other CPUs leave the cache alone meanwhile (the debug use
// case); the node list_lock is held while a slab's freelist is walked.
#pragma once

#include <string_view>

#include "slab/kmem_cache.h"

namespace mmkit {

inline constexpr uint8_t POISON_INUSE = 0x5a;
inline constexpr uint8_t POISON_FREE = 0x6b;
inline constexpr uint8_t POISON_END = 0xa5;
inline constexpr uint8_t SLUB_RED_INACTIVE = 0xbb;
inline constexpr uint8_t SLUB_RED_ACTIVE = 0xcc;

void setup_object_debug_slow(KmemCache* s, void* obj);
// A new slab's object, before the constructor runs: red zones inactive,
// poison (and, for the slab's first object, the slab's padding).
inline void setup_object_debug(KmemCache* s, void* obj) {
  if (s->flags & (SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)) [[unlikely]]
    setup_object_debug_slow(s, obj);
}
// SLAB_STORE_USER: two tracks (allocated, freed) after the free pointer.
inline constexpr unsigned kSlabTrackBytes = 32;
// Checks an object about to be handed out; false: corrupted (reported and
// quarantined), the caller must take another.
bool alloc_debug_processing(KmemCache* s, Page* slab, void* obj);
// Checks an object being freed; false: the free is refused (reported).
bool free_debug_processing(KmemCache* s, Page* slab, void* obj);

// True when p is null or the address of an object of `slab` (on an object
// boundary, below the slab's object count).
bool check_valid_pointer(const KmemCache* s, Page* slab, const void* p);

void* get_freepointer_checked_slow(const KmemCache* s, Page* slab, void* obj);
// get_freepointer() for the allocator's own walks of a freelist: for a
// debug or hardened cache (checks_freepointers()), a next pointer that is
// neither null nor an object of the slab is reported ("Freepointer
// corrupt"), obj's free pointer is set to null and null is returned: the
// rest of that chain is lost (it stays counted as in use). `slab` may be
// null (then obj's slab is looked up).
inline void* get_freepointer_checked(const KmemCache* s, Page* slab, void* obj) {
  if (!s->checks_freepointers()) [[likely]]
    return get_freepointer(s, obj);
  return get_freepointer_checked_slow(s, slab, obj);
}

// validate_slab_cache(): checks every slab of the cache (found in the
// mem_map): each free object's poison and free pointer, every object's red
// zones and padding, each slab's padding and freelist. Reports every error
// (restoring the damaged bytes, cutting corrupt freelists) and returns how
// many it found. CPUs bound to other threads must leave the cache alone;
// slabs such a CPU holds are skipped.
int kmem_cache_validate(KmemCache* s);

// Objects the debug checks withheld from the cache (see above).
uint64_t kmem_cache_quarantined(const KmemCache* s);

// slub_debug=<flags>,<cache>,<cache>...: ORs `flags` (SLAB_DEBUG_FLAGS and
// SLAB_FREELIST_HARDENED) into every cache created from now on whose name is
// in the comma-separated list (an entry ending in '*' matches a prefix), or
// into every cache when the list is empty. Existing matching caches that
// have never allocated a slab (the kmalloc caches at boot) are converted
// too; one already in use keeps its flags (reported). Call at boot.
void set_slub_debug(Machine& m, slab_flags_t flags, std::string_view cache_names_csv);
// Applies the machine config's slub_debug string ("FZP,kmalloc-64,dbg*") to
// the layer's state `st` as it is built, before any cache can be used.
void apply_slub_debug_param(Machine& m, SlabState& st);
// The slub_debug flags for a cache named `name` (kmem_cache_create ORs them
// into its flags). Caller holds st.slab_mutex.
slab_flags_t slub_debug_flags_for(const SlabState& st, std::string_view name);

}  // namespace mmkit
