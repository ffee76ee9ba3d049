// Private interfaces between the page allocator's files (Linux's mm/internal.h).
//
// Lock order: zone->lock is the only lock here and is never held across
// zones; a CPU's pcp lists are owned by the thread bound to that CPU (or by a
// drainer that has taken the CPU over), so they need no lock.
#pragma once

#include "page_alloc/gfp.h"
#include "page_alloc/page_alloc.h"
#include "phys/machine.h"

namespace mmkit {

enum class Fpi { kNone, kToTail };

// --- buddy.cc: free lists, split and merge (all under zone.lock) -------------
inline bool migratetype_is_mergeable(unsigned mt) {
  return mt < MIGRATE_PCPTYPES;
}
inline unsigned buddy_order(const Page* p) {
  return static_cast<unsigned>(p->private_);
}

void __free_one_page(Zone& z, Page* page, uint64_t pfn, unsigned order, unsigned mt, Fpi fpi)
    REQUIRES(z.lock);
Page* __rmqueue_smallest(Zone& z, unsigned order, unsigned mt) REQUIRES(z.lock);
Page* __rmqueue(Zone& z, unsigned order, unsigned mt, unsigned alloc_flags) REQUIRES(z.lock);
// Moves `count` blocks of `order` onto a pcp list, tail first; returns how many.
int rmqueue_bulk(Zone& z, unsigned order, int count, ListHead* list, unsigned mt,
                 unsigned alloc_flags);
// Takes one block straight from the buddy lists (orders above the pcp's).
Page* rmqueue_buddy(Zone& z, unsigned order, unsigned mt, unsigned alloc_flags);
void free_one_page(Zone& z, Page* page, uint64_t pfn, unsigned order, Fpi fpi);
void reserve_highatomic_pageblock(Zone& z, Page* page, unsigned order);
bool unreserve_highatomic_pageblock(Machine& m, Zone* const* zonelist, unsigned highest,
                                    unsigned mt, bool force);

// --- pcp.cc: per-CPU lists ------------------------------------------------------------
Page* rmqueue_pcplist(Zone& z, CpuState& cpu, unsigned order, unsigned mt, unsigned alloc_flags,
                      bool cold);
void free_unref_page(Zone& z, CpuState& cpu, Page* page, uint64_t pfn, unsigned order);
// Returns a batch to the buddy lists (or drains all, when asked to).
void pcp_overflow(Zone& z, PerCpuPages& pcp, unsigned pindex);

// free_unref_page_commit(): a freed page of pcp type `mt` goes to the head
// of its list (it is cache-hot); over `high`, a batch goes back.
inline void free_unref_page_commit(Zone& z, PerCpuPages& pcp, Page* page, unsigned mt,
                                   unsigned order) {
  const unsigned pindex = order_to_pindex(mt, order);
  pcp.lists[pindex].add(&page->lru);
  const int count = pcp.count.load(std::memory_order_relaxed) + (1 << order);
  pcp.count.store(count, std::memory_order_relaxed);
  if (count >= pcp.high.load(std::memory_order_relaxed) ||
      pcp.drain_request.load(std::memory_order_relaxed)) [[unlikely]]
    pcp_overflow(z, pcp, pindex);
}
void drain_pages_zone(Zone& z, PerCpuPages& pcp);

// --- alloc.cc ------------------------------------------------------------------------
// Reports a page that failed a free-time check (Linux's bad_page()).
void bad_page(Machine& m, Page* page, const char* reason);
// Drops one reference with an atomic decrement; frees the block at zero.
void put_page_order(Machine& m, Page* page, unsigned order);

}  // namespace mmkit
