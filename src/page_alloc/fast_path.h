// alloc_pages() and free_pages(): the per-CPU list fast paths, inline, with
// everything else out of line in alloc.cc (as Linux's rmqueue_pcplist and
// free_unref_page are the hot halves of mm/page_alloc.c).
//
// The fast allocation takes the head of this CPU's list for the request's
// order and migrate type in its preferred zone, once the zone passes the
// order-0 LOW watermark test (one compare against PcpClass::free_above).
// The fast free puts a clean page of a pcp order at the head of its list,
// finding zone, lists and migrate type in one pageblock-table entry. Neither
// takes a lock or executes an atomic read-modify-write: only the thread
// bound to the CPU touches its lists (phys/cpu.h). Inline, a call with
// constant gfp and order folds the GFP class, the migrate type and the
// list index to constants.
//
// Anything else (an unbound thread, __GFP_COLD, a node request, fault
// injection, a failed watermark test, an empty list, a page that is shared,
// compound or fails a free-time check) goes to the out-of-line halves, which
// run Linux's general paths.
#pragma once

#include <cstdint>

#include "page_alloc/gfp.h"
#include "phys/machine.h"

namespace mmkit {

// PAGE_FLAGS_CHECK_AT_FREE: flags a page being freed must not have.
inline constexpr uint64_t kCheckAtFree = (uint64_t{1} << PG_buddy) | (uint64_t{1} << PG_slab) |
                                         (uint64_t{1} << PG_lru) | (uint64_t{1} << PG_locked) |
                                         (uint64_t{1} << PG_reserved) |
                                         (uint64_t{1} << PG_writeback) | (uint64_t{1} << PG_bad);
// Flags that send a freed page through Machine::page_release first.
inline constexpr uint64_t kReleaseAtFree = (uint64_t{1} << PG_lru) | (uint64_t{1} << PG_memcg);

// --- the out-of-line halves (alloc.cc, pcp.cc) ------------------------------------------
[[gnu::noinline]] Page* alloc_pages_slow(Machine& m, gfp_t gfp, unsigned order, int nid);
[[gnu::noinline]] void free_pages_slow(Machine& m, Page* page, unsigned order);
// prep_new_page()'s rare parts: __GFP_ZERO and compound pages.
[[gnu::noinline]] void prep_new_page_extra(Machine& m, Page* page, unsigned order, gfp_t gfp);
// Returns a batch to the buddy lists (or drains all, when asked to).
[[gnu::noinline]] void pcp_overflow(Zone& z, PerCpuPages& pcp, unsigned pindex);
// __zone_watermark_ok(): can `zone` serve an order-`order` allocation at
// `mark` for a request whose highest usable zone is `highest_zoneidx`?
bool zone_watermark_ok(const Zone& z, unsigned order, uint64_t mark, unsigned highest_zoneidx,
                       unsigned alloc_flags);

// Unlinks the first entry of a pcp list (__list_del(list, first->next)):
// its prev is the list itself, and its own pointers are left as they are,
// since the page's lru is rewritten before it is read again.
inline void pcp_list_del_first(ListHead* list, ListHead* first) {
  ListHead* next = first->next;
  next->prev = list;
  list->next = next;
}

// list_add() for a pcp list. The new entry's two pointers are stored as
// relaxed atomics (plain moves) only so the compiler does not pair them
// into a vector store, which costs three extra instructions here.
inline void pcp_list_add(ListHead* list, ListHead* n) {
  ListHead* next = list->next;
  next->prev = n;
  __atomic_store_n(&n->next, next, __ATOMIC_RELAXED);
  __atomic_store_n(&n->prev, list, __ATOMIC_RELAXED);
  list->next = n;
}

// free_unref_page_commit(): a freed page of pcp type `mt` goes to the head
// of its list (it is cache-hot); over `high`, a batch goes back.
inline void free_unref_page_commit(Zone& z, PerCpuPages& pcp, Page* page, unsigned mt,
                                   unsigned order) {
  const unsigned pindex = order_to_pindex(mt, order);
  pcp_list_add(&pcp.lists[pindex], &page->lru);
  const int count = pcp.count.load(std::memory_order_relaxed) + (1 << order);
  pcp.count.store(count, std::memory_order_relaxed);
  if (count >= pcp.high.load(std::memory_order_relaxed) ||
      pcp.drain_request.load(std::memory_order_relaxed)) [[unlikely]]
    pcp_overflow(z, pcp, pindex);
}

// Allocates 2^order contiguous frames, or returns null.
inline Page* alloc_pages(Machine& m, gfp_t gfp, unsigned order, int nid = NUMA_NO_NODE) {
  CpuState* cpu = this_cpu(m);
  if (cpu && order <= PAGE_ALLOC_COSTLY_ORDER && nid == NUMA_NO_NODE && !(gfp & __GFP_COLD) &&
      !m.fail_page_alloc.enabled()) [[likely]] {
    const PcpClass& cls = cpu->pcp_class[gfp & (GFP_ZONEMASK | __GFP_RECLAIMABLE)];
    const Zone* z = cls.zone;
    // zone_watermark_fast(): order 0 is the one compare; higher orders ask
    // __zone_watermark_ok for a free block of their size.
    if (z &&
        z->free_pages.load(std::memory_order_relaxed) >
            cls.free_above.load(std::memory_order_relaxed) &&
        (order == 0 || zone_watermark_ok(*z, order, z->low_wmark(), cls.highest, ALLOC_WMARK_LOW)))
        [[likely]] {
      PerCpuPages& pcp = *cls.pcp;
      ListHead* list = &pcp.lists[order_to_pindex(
          gfp_migratetype(gfp & GFP_MOVABLE_MASK, m.gfp_movable_mask), order)];
      ListHead* first = list->next;
      if (first != list) [[likely]] {
        pcp_list_del_first(list, first);
        pcp.count.store(pcp.count.load(std::memory_order_relaxed) - (1 << order),
                        std::memory_order_relaxed);
        if (pcp.free_factor) [[unlikely]]
          pcp.free_factor >>= 1;
        cpu->events[cls.pgalloc_event].add(int64_t{1} << order);
        Page* page = container_of(first, &Page::lru);
        page->refcount.store(1, std::memory_order_relaxed);  // prep_new_page()
        if ((gfp & __GFP_ZERO) || (order && (gfp & __GFP_COMP))) [[unlikely]]
          prep_new_page_extra(m, page, order, gfp);
        return page;
      }
    }
  }
  return alloc_pages_slow(m, gfp, order, nid);
}

// __free_pages(): drops the caller's reference; the block is freed when the
// last reference goes. `order` must be the order it was allocated with.
inline void free_pages(Machine& m, Page* page, unsigned order) {
  // The caller's reference is the only one: nobody else may touch the count
  // (speculative references are taken only on LRU and page-cache pages,
  // which are released through put_page()), so drop it with a plain store.
  // The free-time checks (free_pages_prepare) are one test over the page's
  // first line: no flag Linux checks at free, not a compound head or tail,
  // no mapping, no mapcount.
  CpuState* cpu = this_cpu(m);
  const uint64_t flags = page->flags.load(std::memory_order_relaxed);
  const uint64_t dirty = (flags & (kCheckAtFree | kReleaseAtFree | uint64_t{1} << PG_head)) |
                         reinterpret_cast<uintptr_t>(page->mapping) | page->compound_head |
                         static_cast<uint32_t>(page->mapcount.load(std::memory_order_relaxed)) |
                         static_cast<uint32_t>(page->refcount.load(std::memory_order_relaxed) - 1);
  if (cpu && order <= PAGE_ALLOC_COSTLY_ORDER && !dirty) [[likely]] {
    const Machine::PageblockInfo& pb = m.pageblock(m.page_to_pfn(page));
    const unsigned mt = pb.migratetype.load(std::memory_order_relaxed);
    if (mt < MIGRATE_PCPTYPES) [[likely]] {
      page->refcount.store(0, std::memory_order_relaxed);
      page->private_ = 0;
      // PAGE_FLAGS_CHECK_AT_PREP: a page leaves with no flag set, so its next
      // user never sees its last one's (a stale PG_uptodate would make a
      // new page-cache page look read before it is).
      page->flags.store(0, std::memory_order_relaxed);
      cpu->events[static_cast<unsigned>(VmEvent::PGFREE)].add(int64_t{1} << order);
      free_unref_page_commit(*pb.zone, pb.pcp[cpu->id], page, mt, order);
      return;
    }
  }
  free_pages_slow(m, page, order);
}

}  // namespace mmkit
