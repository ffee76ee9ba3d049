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

// FPI flags of __free_one_page: kToTail lists the block at the tail;
// kReported also lists it at the tail and asks for no free-page report
// (FPI_SKIP_REPORT_NOTIFY: the host holds none of its memory).
enum class Fpi { kNone, kToTail, kReported };

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
// Takes a free block off its list (an allocation, a steal, an isolation),
// lowering zone.free_pages by its size; returns whether it was reported.
bool take_free_block(Page* p, Zone& z, unsigned order, unsigned mt) REQUIRES(z.lock);
// __free_pages_memory(): frees [start, end) of one zone in maximal aligned
// blocks (boot and memory hotplug).
void free_pages_range(Zone& z, uint64_t start, uint64_t end, Fpi fpi) REQUIRES(z.lock);
Page* __rmqueue(Zone& z, unsigned order, unsigned mt, unsigned alloc_flags) REQUIRES(z.lock);
// Moves `count` blocks of `order` onto a pcp list, tail first; returns how many.
int rmqueue_bulk(Zone& z, unsigned order, int count, ListHead* list, unsigned mt,
                 unsigned alloc_flags);
// Takes one block straight from the buddy lists (orders above the pcp's,
// or a thread bound to no CPU) and counts PGALLOC_<zone> for `cpu` (null:
// in the zone's locked_events, under the lock).
Page* rmqueue_buddy(Zone& z, CpuState* cpu, unsigned order, unsigned mt, unsigned alloc_flags);
void free_one_page(Zone& z, Page* page, uint64_t pfn, unsigned order, Fpi fpi);
// free_one_page() for a freshly freed block, counting PGFREE like rmqueue_buddy.
void free_one_page_counted(Zone& z, CpuState* cpu, Page* page, uint64_t pfn, unsigned order);
void reserve_highatomic_pageblock(Zone& z, Page* page, unsigned order);
bool unreserve_highatomic_pageblock(Machine& m, Zone* const* zonelist, unsigned highest,
                                    unsigned mt, bool force);

// --- watermarks.cc ---------------------------------------------------------------------
// Recomputes every CPU's PcpClass::free_above from the zones' LOW
// watermark, lowmem_reserve and high-atomic reserve (call after any
// change), for the classes of zone `only` (under its lock) or all of them.
void pcp_class_update(Machine& m, const Zone* only = nullptr);

// --- pcp.cc: per-CPU lists ------------------------------------------------------------
Page* rmqueue_pcplist(Zone& z, CpuState& cpu, unsigned order, unsigned mt, unsigned alloc_flags,
                      bool cold);
void free_unref_page(Zone& z, CpuState& cpu, Page* page, uint64_t pfn, unsigned order);
void drain_pages_zone(Zone& z, PerCpuPages& pcp);

// --- alloc.cc ------------------------------------------------------------------------
// Reports a page that failed a free-time check (Linux's bad_page()).
void bad_page(Machine& m, Page* page, const char* reason);
// Drops one reference with an atomic decrement; frees the block at zero.
void put_page_order(Machine& m, Page* page, unsigned order);

}  // namespace mmkit
