// /proc/buddyinfo: free blocks per order of each populated zone, one line a
// zone, as Linux 6.1's mm/vmstat.c frag_show_print() prints them:
//
//   Node 0, zone      DMA      1      0      1 ...   (11 orders, "%6lu " each)
//
// Zones are visited in node, then zone-index order; unpopulated zones are
// skipped (walk_zones_in_node with assert_populated). Each zone's counts are
// read under its zone->lock, as walk_zones_in_node takes it.
#include <fmt/format.h>
#include <array>

#include "procfs/procfs.h"

namespace mmkit {

std::string render_buddyinfo(const Machine& m) {
  fmt::memory_buffer out;
  m.for_each_zone([&](const Zone& z) {
    if (!z.populated()) return;
    std::array<uint64_t, NR_PAGE_ORDERS> nr_free;
    {
      SpinGuard g(const_cast<SpinLock&>(z.lock));
      for (unsigned order = 0; order < NR_PAGE_ORDERS; ++order)
        nr_free[order] = z.free_area[order].nr_free;
    }
    fmt::format_to(std::back_inserter(out), "Node {}, zone {:>8} ", z.node, z.name);
    for (uint64_t n : nr_free) fmt::format_to(std::back_inserter(out), "{:>6} ", n);
    out.push_back('\n');
  });
  return fmt::to_string(out);
}

}  // namespace mmkit
