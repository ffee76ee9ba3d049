// The page allocator's interface (mm/page_alloc.c's exported functions).
//
//   alloc_pages(m, gfp, order, nid)  2^order contiguous frames, or null
//   free_pages(m, page, order)       drop a reference; free at zero (__free_pages)
//   get_free_pages / free_pages_addr the same by direct-map address
//   drain_local_pages / drain_all_pages  give per-CPU lists back to the buddy lists
//
// The allocation path never throws. It returns null exactly where Linux
// would fail (watermarks, __GFP_THISNODE, invalid zone modifiers, fault
// injection), counts the failure, and prints Linux's allocation-failure
// report to the machine's warning sink unless __GFP_NOWARN.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "page_alloc/fast_path.h"
#include "page_alloc/gfp.h"
#include "phys/machine.h"

namespace mmkit {

// Boots a machine from a config: lays it out (Machine::create), computes
// watermarks and per-CPU list sizes, and frees all memory to the buddy
// allocator (memblock_free_all). The returned machine is ready to allocate.
Result<std::unique_ptr<Machine>> boot(const MachineConfig& cfg);

// alloc_pages(m, gfp, order, nid) and free_pages(m, page, order) are inline
// in fast_path.h.
inline Page* alloc_page(Machine& m, gfp_t gfp) {
  return alloc_pages(m, gfp, 0);
}
inline void free_page(Machine& m, Page* page) {
  free_pages(m, page, 0);
}
// __get_free_pages() / free_pages(addr): by direct-map address (no HIGHMEM).
void* get_free_pages(Machine& m, gfp_t gfp, unsigned order);
void free_pages_addr(Machine& m, void* addr, unsigned order);

// alloc_pages_exact(): `size` bytes rounded up to whole frames, carved
// from the smallest block that holds them (at most a MAX_ORDER block), the
// frames past them freed; null on failure or with __GFP_COMP. The run is
// aligned to the block it came from. free_pages_exact() gives it back.
// The _page forms take and return the first frame and a count of frames.
void* alloc_pages_exact(Machine& m, size_t size, gfp_t gfp);
void free_pages_exact(Machine& m, void* virt, size_t size);
Page* alloc_pages_exact_page(Machine& m, uint64_t nr_pages, gfp_t gfp);
void free_pages_exact_page(Machine& m, Page* page, uint64_t nr_pages);

void get_page(Page* page);
// put_page(): drops a reference to a (possibly compound) page.
void put_page(Machine& m, Page* page);

// Per-CPU lists back to the buddy allocator: the calling thread's CPU, or all.
// A CPU bound to another thread is drained by its owner at its next free
// (the request Linux queues as per-CPU work); the return value says how many
// CPUs were drained now.
void drain_local_pages(Machine& m);
unsigned drain_all_pages(Machine& m);

// Recomputes watermarks, lowmem_reserve and pcp high/batch after a sysctl
// change (min_free_kbytes, watermark_scale_factor, lowmem_reserve_ratio,
// percpu_pagelist_high_fraction), as the sysctl handlers do.
void setup_per_zone_wmarks(Machine& m);
void setup_per_zone_lowmem_reserve(Machine& m);
void zone_pcp_update(Machine& m);
// calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16) clamped, unless user-set.
uint64_t calculate_min_free_kbytes(const Machine& m);
int zone_batchsize(const Zone& z);
int zone_highsize(const Machine& m, const Zone& z, int batch);

// zone_watermark_ok() (__zone_watermark_ok) is declared in fast_path.h.

// Memory hotplug (memory_hotplug.cc): onlines the node's next offline
// memory block of `block_bytes` (aligned to its size); returns the pages
// onlined, 0 when the node has no offline memory left.
inline constexpr uint64_t kMemoryBlockBytes = uint64_t{128} << 20;  // x86-64's default
uint64_t online_memory_block(Machine& m, int nid, uint64_t block_bytes = kMemoryBlockBytes);

// Free-page reporting (page_reporting.cc): page_reporting_register() turns
// it on for free blocks of at least `order` (0: off), asking for a report
// once a zone holds `threshold` unreported pages in them; before any other
// thread uses the machine. page_reporting_process() hands the coldest
// unreported blocks back to the host until half the threshold is left in
// each zone (`everything`: until none is); returns the pages.
void page_reporting_register(Machine& m, unsigned order, uint64_t threshold);
uint64_t page_reporting_process(Machine& m, bool everything = false);
// A decay pass, for an owner that calls it every so often: hands back the
// coldest unreported blocks, as many pages as stayed unreported through
// the whole time since the last pass (no allocation took them), so memory
// freed and not used again goes back within two passes whatever the
// threshold. Returns the pages.
uint64_t page_reporting_decay(Machine& m);

// Free pages of a node or the machine (buddy lists; pcp pages not included).
uint64_t nr_free_pages(const Machine& m);
// calculate_totalreserve_pages(): per zone, the largest lowmem_reserve
// against itself and higher zones plus the high watermark, at most managed.
uint64_t totalreserve_pages(const Machine& m);
// Pages held on the per-CPU lists of a zone, all CPUs.
uint64_t zone_pcp_pages(const Zone& z);

// Where allocation-failure and bad-page reports go (default: stderr).
void set_warn_sink(Machine& m, std::function<void(const std::string&)> sink);

// Walks every buddy and per-CPU structure of the machine and proves the
// allocator's invariants (see check.cc). Returns "" when they hold, else the
// first violation found. Callers must quiesce other CPUs first.
std::string check(Machine& m);

// Visits each free block: (zone, pfn, order, migratetype). For views and tests.
void walk_free_blocks(Machine& m,
                      const std::function<void(const Zone&, uint64_t, unsigned, unsigned)>& fn);

}  // namespace mmkit
