// Private pieces the procfs views share: Linux 6.1's counter names and the
// few derived numbers (totalreserve_pages, stat thresholds, dirty limits)
// that more than one view prints.
//
// Names and their order follow Linux 6.1's mm/vmstat.c vmstat_text[] and
// include/linux/mmzone.h (zone_stat_item, numa_stat_item, node_stat_item),
// include/linux/vm_event_item.h (vm_event_item), for Debian 12's kernel
// config: CONFIG_ZSMALLOC, CONFIG_SWAP, CONFIG_MIGRATION, CONFIG_COMPACTION,
// CONFIG_HUGETLB_PAGE, CONFIG_CMA, CONFIG_TRANSPARENT_HUGEPAGE,
// CONFIG_MEMORY_BALLOON, CONFIG_BALLOON_COMPACTION, CONFIG_KSM, CONFIG_ZSWAP
// on both arches; CONFIG_NUMA, CONFIG_NUMA_BALANCING, CONFIG_ZONE_DMA32 and
// the PUD-sized THP on x86_64 only; CONFIG_HIGHMEM on i386 only.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "phys/machine.h"

namespace mmkit::procfs_internal {

// enum zone_stat_item: per-zone counters (zoneinfo, then vmstat's first lines).
inline constexpr std::string_view kZoneStatNames[] = {"nr_free_pages",
                                                      "nr_zone_inactive_anon",
                                                      "nr_zone_active_anon",
                                                      "nr_zone_inactive_file",
                                                      "nr_zone_active_file",
                                                      "nr_zone_unevictable",
                                                      "nr_zone_write_pending",
                                                      "nr_mlock",
                                                      "nr_bounce",
                                                      "nr_zspages",
                                                      "nr_free_cma"};

// enum numa_stat_item (CONFIG_NUMA).
inline constexpr std::string_view kNumaStatNames[] = {
    "numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other"};

// Whether the modelled kernel has CONFIG_NUMA (and CONFIG_NUMA_BALANCING).
inline bool has_numa(const Machine& m) {
  return m.arch() == Arch::x86_64;
}

// enum node_stat_item, as zoneinfo's "per-node stats" and vmstat print it.
std::vector<std::string_view> node_stat_names(const Machine& m);
// The value of a node stat item by its /proc name, for one node (pages);
// 0 for the items mmkit does not track yet.
uint64_t node_stat_value(const Node& n, std::string_view name);

// enum vm_event_item names in vmstat_text order (all but the zone-indexed
// ones are the same on both arches, give or take the config above).
std::vector<std::string_view> vm_event_names(const Machine& m);

// The machine's event count for a Linux event name, or 0 when mmkit has no
// such counter (yet). Private mmkit events are not found here.
uint64_t vm_event_value(const Machine& m, std::string_view name);

// calculate_normal_threshold(): the per-CPU counter drift a zone tolerates.
int stat_threshold(const Machine& m, const Zone& z);

// One populated zone's /proc/pagetypeinfo numbers, read under zone->lock:
// free blocks per migrate type and order (counted by walking the free lists,
// capped at kFreeCountCap as Linux caps them), and pageblocks per type.
inline constexpr uint64_t kFreeCountCap = 100000;
struct PagetypeZone {
  const Zone* zone = nullptr;
  std::array<std::array<uint64_t, NR_PAGE_ORDERS>, MIGRATE_TYPES> free{};  // [type][order]
  std::array<uint64_t, MIGRATE_TYPES> blocks{};
};
// The populated zones of node `nid`, in zone-index order.
std::vector<PagetypeZone> pagetype_snapshot(Machine& m, int nid);

// Free pages of the machine's HIGHMEM zones.
uint64_t free_highmem_pages(const Machine& m);

}  // namespace mmkit::procfs_internal
