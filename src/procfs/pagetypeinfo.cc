// /proc/pagetypeinfo: free blocks per migrate type and order, and pageblocks
// per migrate type, as Linux 6.1's mm/vmstat.c pagetypeinfo_show() prints
// them for each node with memory:
//
//   Page block order: 9
//   Pages per block:  512
//
//   Free pages count per migrate type at order       0      1 ...     10
//   Node    0, zone      DMA, type    Unmovable      0      0 ...      0
//   ... (every type of every populated zone)
//
//   Number of blocks type     Unmovable      Movable  Reclaimable ...
//   Node 0, zone      DMA            1            7            0 ...
//
// The free counts come from walking free_area[order].free_list[type] under
// zone->lock (pagetypeinfo_showfree_print), capped at 100000 a list and then
// printed with a leading '>'. The block counts read each pageblock's
// migrate type over the zone's span (pagetypeinfo_showblockcount_print).
// All MIGRATE_TYPES are printed, as a CONFIG_CMA kernel does; there is no
// "mixed blocks" table (that needs CONFIG_PAGE_OWNER).
#include <fmt/format.h>

#include "procfs/internal.h"
#include "procfs/procfs.h"

namespace mmkit {
namespace procfs_internal {

std::vector<PagetypeZone> pagetype_snapshot(Machine& m, int nid) {
  std::vector<PagetypeZone> zones;
  Node& node = m.node(nid);
  for (unsigned i = 0; i < node.nr_zones; ++i) {
    Zone& z = node.zones[i];
    if (!z.populated()) continue;
    PagetypeZone pz;
    pz.zone = &z;
    SpinGuard g(z.lock);
    for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt) {
      for (unsigned order = 0; order < NR_PAGE_ORDERS; ++order) {
        const ListHead& head = z.free_area[order].free_list[mt];
        uint64_t n = 0;
        for (const ListHead* p = head.next; p != &head && n < kFreeCountCap; p = p->next) ++n;
        pz.free[mt][order] = n;
      }
    }
    // Linux steps from zone_start_pfn by whole pageblocks and skips pfns
    // outside the memory map or belonging to another zone.
    for (uint64_t pfn = z.zone_start_pfn; pfn < z.end_pfn(); pfn += m.pageblock_nr_pages()) {
      if (pfn >= m.max_pfn() || m.pfn_zone(pfn) != &z) continue;
      const unsigned mt = m.get_pageblock_migratetype(pfn);
      if (mt < MIGRATE_TYPES) ++pz.blocks[mt];
    }
    zones.push_back(pz);
  }
  return zones;
}

}  // namespace procfs_internal

std::string render_pagetypeinfo(Machine& m) {
  using procfs_internal::kFreeCountCap;
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  for (unsigned nid = 0; nid < m.nr_nodes(); ++nid) {
    const auto zones = procfs_internal::pagetype_snapshot(m, static_cast<int>(nid));
    if (zones.empty()) continue;  // a memoryless node prints nothing
    fmt::format_to(it, "Page block order: {}\n", m.pageblock_order());
    fmt::format_to(it, "Pages per block:  {}\n", m.pageblock_nr_pages());
    out.push_back('\n');

    fmt::format_to(it, "{:<43} ", "Free pages count per migrate type at order");
    for (unsigned order = 0; order < NR_PAGE_ORDERS; ++order) fmt::format_to(it, "{:>6} ", order);
    out.push_back('\n');
    for (const auto& pz : zones) {
      for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt) {
        fmt::format_to(it, "Node {:>4}, zone {:>8}, type {:>12} ", nid, pz.zone->name,
                       kMigrateTypeNames[mt]);
        for (uint64_t n : pz.free[mt])
          fmt::format_to(it, "{}{:>6} ", n >= kFreeCountCap ? ">" : "", n);
        out.push_back('\n');
      }
    }

    fmt::format_to(it, "\n{:<23}", "Number of blocks type ");
    for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt)
      fmt::format_to(it, "{:>12} ", kMigrateTypeNames[mt]);
    out.push_back('\n');
    for (const auto& pz : zones) {
      fmt::format_to(it, "Node {}, zone {:>8} ", nid, pz.zone->name);
      for (uint64_t n : pz.blocks) fmt::format_to(it, "{:>12} ", n);
      out.push_back('\n');
    }
  }
  return fmt::to_string(out);
}

}  // namespace mmkit
