// Memory pools (include/linux/mempool.h, mm/mempool.c): a reserve of
// preallocated elements that guarantees forward progress to code that must
// not fail an allocation under memory pressure (the block layer's bios,
// writeback), on top of any allocator given as an alloc/free callback pair.
//
//   mempool_create(m, min_nr, alloc_fn, free_fn, pool_data)  min_nr reserved up front
//   mempool_create_slab_pool / _kmalloc_pool / _page_pool    the stock back ends
//   mempool_alloc(pool, gfp) / mempool_free(element, pool)
//   mempool_resize(pool, new_min_nr) / mempool_destroy(pool)
//
// mempool_alloc() asks the allocator first (never digging into the
// emergency reserves, never retrying, never warning, and without direct
// reclaim or I/O on the first try), then takes a reserved element. With an
// empty reserve, a request that may sleep (__GFP_DIRECT_RECLAIM) waits for
// mempool_free() to return an element, retrying the allocator every 5
// seconds meanwhile, so it never returns null; any other request gets null.
// mempool_free() refills the reserve before it gives memory back.
//
// The reserve array is kmalloc'ed on the machine, as Linux does; the pool
// object itself (lock and wait queue) is host memory. All functions are
// safe to call from any thread, bound to a CPU or not.
#pragma once

#include <cstddef>

#include "page_alloc/gfp.h"
#include "phys/machine.h"
#include "slab/slab.h"

namespace mmkit {

using mempool_alloc_t = void* (*)(gfp_t gfp_mask, void* pool_data);
using mempool_free_t = void (*)(void* element, void* pool_data);

struct Mempool;

// Null when min_nr is negative, when the reserve array or one of the
// min_nr elements cannot be allocated (GFP_KERNEL), or the callbacks are null.
Mempool* mempool_create(Machine& m, int min_nr, mempool_alloc_t alloc_fn, mempool_free_t free_fn,
                        void* pool_data);
// The same with the gfp mask and node for the pool's own allocations.
Mempool* mempool_create_node(Machine& m, int min_nr, mempool_alloc_t alloc_fn,
                             mempool_free_t free_fn, void* pool_data, gfp_t gfp_mask, int node_id);

// Elements are objects of `cache` (mempool_alloc_slab / mempool_free_slab).
Mempool* mempool_create_slab_pool(Machine& m, int min_nr, KmemCache* cache);
// Elements are kmalloc(size) blocks (mempool_kmalloc / mempool_kfree).
Mempool* mempool_create_kmalloc_pool(Machine& m, int min_nr, size_t size);
// Elements are Page* of 2^order pages (mempool_alloc_pages / mempool_free_pages).
Mempool* mempool_create_page_pool(Machine& m, int min_nr, unsigned order);

// An element, or null only when gfp_mask lacks __GFP_DIRECT_RECLAIM.
void* mempool_alloc(Mempool* pool, gfp_t gfp_mask);
// Null is ignored. Refills the reserve when it is below min_nr (waking a
// waiter), else frees the element to the allocator.
void mempool_free(void* element, Mempool* pool);
// Shrinks the reserve (freeing the excess) or grows it (GFP_KERNEL). 0, or
// -EINVAL for new_min_nr <= 0, -ENOMEM when the new reserve array cannot be
// allocated. As in Linux, growth stops quietly at the first element the
// allocator cannot supply; mempool_free() tops the reserve up later.
int mempool_resize(Mempool* pool, int new_min_nr);
// Frees the reserved elements and the pool; elements still out are the
// caller's to free first (mempool_free() after destroy is a use after free).
void mempool_destroy(Mempool* pool);

// Introspection for tests and views: the pool's min_nr and reserved count.
int mempool_min_nr(const Mempool* pool);
int mempool_curr_nr(const Mempool* pool);

// --- the stock allocator callbacks -------------------------------------------------------
// Linux passes the kmalloc size or page order itself as pool_data; mmkit has
// no global machine, so they point to these (owned by the pools the
// mempool_create_*_pool helpers create).
struct MempoolKmallocData {
  Machine* machine;
  size_t size;
};
struct MempoolPageData {
  Machine* machine;
  unsigned order;
};
void* mempool_alloc_slab(gfp_t gfp_mask, void* pool_data);  // pool_data: KmemCache*
void mempool_free_slab(void* element, void* pool_data);
void* mempool_kmalloc(gfp_t gfp_mask, void* pool_data);  // pool_data: MempoolKmallocData*
void mempool_kfree(void* element, void* pool_data);
void* mempool_alloc_pages(gfp_t gfp_mask, void* pool_data);  // pool_data: MempoolPageData*
void mempool_free_pages(void* element, void* pool_data);

}  // namespace mmkit
