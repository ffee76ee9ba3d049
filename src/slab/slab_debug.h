// slub_debug: red zones, poisoning, consistency checks on alloc and free
// (mm/slub.c's debug half). Caches with any of SLAB_DEBUG_FLAGS or
// SLAB_FREELIST_HARDENED take the slow paths, where these hooks run.
//
// Object layout of a debug cache (s->size bytes per object):
//   [red_left_pad: 0xbb/0xcc][object_size: 0x6b.. 0xa5 when free][pad to
//   inuse: 0xbb/0xcc][free pointer when it must live outside the object]
#pragma once

#include "slab/kmem_cache.h"

namespace mmkit {

inline constexpr uint8_t POISON_INUSE = 0x5a;
inline constexpr uint8_t POISON_FREE = 0x6b;
inline constexpr uint8_t POISON_END = 0xa5;
inline constexpr uint8_t SLUB_RED_INACTIVE = 0xbb;
inline constexpr uint8_t SLUB_RED_ACTIVE = 0xcc;

// A new slab's object, before the constructor runs.
void setup_object_debug(KmemCache* s, void* obj);
// Checks an object about to be handed out; false: corrupted (reported and
// quarantined), the caller must take another.
bool alloc_debug_processing(KmemCache* s, Page* slab, void* obj);
// Checks an object being freed; false: the free is refused (reported).
bool free_debug_processing(KmemCache* s, Page* slab, void* obj);

}  // namespace mmkit
