// Memory hotplug: onlining the next offline memory block of a node
// (mm/memory_hotplug.c online_pages()).
//
// A node booted with `online` smaller than its memory has its tail offline:
// spanned by its zones, not present, inaccessible in the host. Onlining a
// block makes its RAM accessible, adds it to the present and managed pages
// of the zones it falls in and frees it to the buddy allocator, marked as
// reported (the host holds none of it yet, so there is nothing to hand
// back). The zonelists already list the node's empty zones (phys lists
// them at boot), so nothing is rebuilt. Unlike Linux, the watermarks and
// per-CPU list sizes keep their boot values: the fast paths read them
// without a lock, and the malloc heap this serves needs no reserves that
// grow with it.
#include <fmt/format.h>

#include <algorithm>

#include "page_alloc/internal.h"

namespace mmkit {

uint64_t online_memory_block(Machine& m, int nid, uint64_t block_bytes) {
  Node& node = m.node(nid);
  std::lock_guard<std::mutex> g(node.hotplug_lock);
  const uint64_t start = node.online_end_pfn.load(std::memory_order_relaxed);
  const uint64_t node_end = node.node_start_pfn + node.node_spanned_pages;
  if (start >= node_end) return 0;
  // Memory blocks are aligned to their size (memory_block_size_bytes()).
  const uint64_t block_pages = std::max<uint64_t>(block_bytes >> PAGE_SHIFT, MAX_ORDER_NR_PAGES);
  const uint64_t end = std::min(node_end, (start / block_pages + 1) * block_pages);
  if (!m.online_ram(start, end - start)) return 0;
  for (unsigned i = 0; i < node.nr_zones; ++i) {
    Zone& z = node.zones[i];
    const uint64_t a = std::max(start, z.zone_start_pfn), b = std::min(end, z.end_pfn());
    if (a >= b) continue;
    m.init_pageblocks(a, b, &z);
    SpinGuard zg(z.lock);
    z.present_pages.fetch_add(b - a, std::memory_order_relaxed);
    z.managed_pages.fetch_add(b - a, std::memory_order_relaxed);
    free_pages_range(z, a, b, Fpi::kReported);
  }
  node.node_present_pages.fetch_add(end - start, std::memory_order_relaxed);
  node.online_end_pfn.store(end, std::memory_order_release);
  m.printk(fmt::format("memory hotplug: node {} onlined [mem {:#018x}-{:#018x}]", nid,
                       start << PAGE_SHIFT, (end << PAGE_SHIFT) - 1));
  return end - start;
}

}  // namespace mmkit
