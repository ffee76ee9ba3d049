// /proc/vmstat: "name value" lines in Linux 6.1's mm/vmstat.c vmstat_text[]
// order: zone_stat_item, numa_stat_item (CONFIG_NUMA), node_stat_item, the
// writeback thresholds, then vm_event_item (vmstat_start/vmstat_show).
//
// Real values: nr_free_pages (NR_FREE_PAGES, the buddy lists), the node
// stats mmkit keeps (slab pages, which Linux counts in bytes and prints in
// pages, LRU sizes, the page cache, dirty and writeback pages, workingset
// events; Machine::node_stat_sum over the nodes), the two dirty thresholds
// (filemap's global_dirty_limits(), mm/page-writeback.c), and every
// event mmkit counts (Machine::sum_event over VmEvent, matched to Linux's
// name). Everything else prints 0, as an untouched counter does.
// mmkit's private events (kFirstPrivateVmEvent on) are not Linux's, so only
// vmstat_fields(m, true) and the JSON view carry them.
#include <fmt/format.h>

#include <algorithm>

#include "filemap/filemap.h"
#include "page_alloc/page_alloc.h"
#include "procfs/internal.h"
#include "procfs/procfs.h"

namespace mmkit {
namespace procfs_internal {

uint64_t node_stat_value(const Node& n, std::string_view name) {
  auto get = [&](NodeStat item) {
    return static_cast<uint64_t>(std::max<int64_t>(n.stat[static_cast<unsigned>(item)].get(), 0));
  };
  if (name == "nr_slab_reclaimable") return get(NodeStat::NR_SLAB_RECLAIMABLE);
  if (name == "nr_slab_unreclaimable") return get(NodeStat::NR_SLAB_UNRECLAIMABLE);
  if (name == "nr_kernel_misc_reclaimable") return get(NodeStat::NR_KERNEL_MISC_RECLAIMABLE);
  if (name == "nr_page_table_pages") return get(NodeStat::NR_PAGETABLE);
  if (name == "nr_anon_pages") return get(NodeStat::NR_ANON_PAGES);
  if (name == "nr_inactive_anon") return get(NodeStat::NR_INACTIVE_ANON);
  if (name == "nr_active_anon") return get(NodeStat::NR_ACTIVE_ANON);
  if (name == "nr_inactive_file") return get(NodeStat::NR_INACTIVE_FILE);
  if (name == "nr_active_file") return get(NodeStat::NR_ACTIVE_FILE);
  if (name == "nr_unevictable") return get(NodeStat::NR_UNEVICTABLE);
  if (name == "nr_isolated_anon") return get(NodeStat::NR_ISOLATED_ANON);
  if (name == "nr_swapcached") return get(NodeStat::NR_SWAPCACHE);
  if (name == "nr_file_pages") return get(NodeStat::NR_FILE_PAGES);
  if (name == "nr_mapped") return get(NodeStat::NR_FILE_MAPPED);
  if (name == "nr_shmem") return get(NodeStat::NR_SHMEM);
  if (name == "nr_dirty") return get(NodeStat::NR_FILE_DIRTY);
  if (name == "nr_writeback") return get(NodeStat::NR_WRITEBACK);
  if (name == "nr_vmscan_write") return get(NodeStat::NR_VMSCAN_WRITE);
  if (name == "nr_vmscan_immediate_reclaim") return get(NodeStat::NR_VMSCAN_IMMEDIATE);
  if (name == "nr_dirtied") return get(NodeStat::NR_DIRTIED);
  if (name == "nr_written") return get(NodeStat::NR_WRITTEN);
  if (name == "workingset_refault_anon") return get(NodeStat::WORKINGSET_REFAULT_ANON);
  if (name == "workingset_refault_file") return get(NodeStat::WORKINGSET_REFAULT_FILE);
  if (name == "workingset_activate_anon") return get(NodeStat::WORKINGSET_ACTIVATE_ANON);
  if (name == "workingset_activate_file") return get(NodeStat::WORKINGSET_ACTIVATE_FILE);
  if (name == "workingset_restore_anon") return get(NodeStat::WORKINGSET_RESTORE_ANON);
  if (name == "workingset_restore_file") return get(NodeStat::WORKINGSET_RESTORE_FILE);
  return 0;
}

std::vector<std::string_view> node_stat_names(const Machine& m) {
  std::vector<std::string_view> v = {
      "nr_inactive_anon",
      "nr_active_anon",
      "nr_inactive_file",
      "nr_active_file",
      "nr_unevictable",
      "nr_slab_reclaimable",
      "nr_slab_unreclaimable",
      "nr_isolated_anon",
      "nr_isolated_file",
      "workingset_nodes",
      "workingset_refault_anon",
      "workingset_refault_file",
      "workingset_activate_anon",
      "workingset_activate_file",
      "workingset_restore_anon",
      "workingset_restore_file",
      "workingset_nodereclaim",
      "nr_anon_pages",
      "nr_mapped",
      "nr_file_pages",
      "nr_dirty",
      "nr_writeback",
      "nr_writeback_temp",
      "nr_shmem",
      "nr_shmem_hugepages",
      "nr_shmem_pmdmapped",
      "nr_file_hugepages",
      "nr_file_pmdmapped",
      "nr_anon_transparent_hugepages",
      "nr_vmscan_write",
      "nr_vmscan_immediate_reclaim",
      "nr_dirtied",
      "nr_written",
      "nr_throttled_written",
      "nr_kernel_misc_reclaimable",
      "nr_foll_pin_acquired",
      "nr_foll_pin_released",
      "nr_kernel_stack",
      "nr_page_table_pages",
      "nr_sec_page_table_pages",
      "nr_swapcached",
  };
  if (has_numa(m)) {  // CONFIG_NUMA_BALANCING
    v.push_back("pgpromote_success");
    v.push_back("pgpromote_candidate");
  }
  return v;
}

std::vector<std::string_view> vm_event_names(const Machine& m) {
  const bool x86_64 = m.arch() == Arch::x86_64;
  const bool numa = has_numa(m);
  std::vector<std::string_view> v = {"pgpgin", "pgpgout", "pswpin", "pswpout"};
  // TEXTS_FOR_ZONES(): dma, dma32 (CONFIG_ZONE_DMA32), normal, high
  // (CONFIG_HIGHMEM), movable; no _device without CONFIG_ZONE_DEVICE.
  const std::string_view zones64[3][4] = {
      {"pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgalloc_movable"},
      {"allocstall_dma", "allocstall_dma32", "allocstall_normal", "allocstall_movable"},
      {"pgskip_dma", "pgskip_dma32", "pgskip_normal", "pgskip_movable"}};
  const std::string_view zones32[3][4] = {
      {"pgalloc_dma", "pgalloc_normal", "pgalloc_high", "pgalloc_movable"},
      {"allocstall_dma", "allocstall_normal", "allocstall_high", "allocstall_movable"},
      {"pgskip_dma", "pgskip_normal", "pgskip_high", "pgskip_movable"}};
  for (const auto& row : x86_64 ? zones64 : zones32)
    v.insert(v.end(), std::begin(row), std::end(row));
  v.insert(v.end(),
           {"pgfree",          "pgactivate",     "pgdeactivate",   "pglazyfree",
            "pgfault",         "pgmajfault",     "pglazyfreed",    "pgrefill",
            "pgreuse",         "pgsteal_kswapd", "pgsteal_direct", "pgdemote_kswapd",
            "pgdemote_direct", "pgscan_kswapd",  "pgscan_direct",  "pgscan_direct_throttle",
            "pgscan_anon",     "pgscan_file",    "pgsteal_anon",   "pgsteal_file"});
  if (numa) v.push_back("zone_reclaim_failed");
  v.insert(v.end(), {"pginodesteal", "slabs_scanned", "kswapd_inodesteal",
                     "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "pageoutrun",
                     "pgrotated", "drop_pagecache", "drop_slab", "oom_kill"});
  if (numa)  // CONFIG_NUMA_BALANCING
    v.insert(v.end(), {"numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults",
                       "numa_hint_faults_local", "numa_pages_migrated"});
  v.insert(v.end(),
           {// CONFIG_MIGRATION
            "pgmigrate_success", "pgmigrate_fail", "thp_migration_success", "thp_migration_fail",
            "thp_migration_split",
            // CONFIG_COMPACTION
            "compact_migrate_scanned", "compact_free_scanned", "compact_isolated", "compact_stall",
            "compact_fail", "compact_success", "compact_daemon_wake",
            "compact_daemon_migrate_scanned", "compact_daemon_free_scanned",
            // CONFIG_HUGETLB_PAGE, CONFIG_CMA
            "htlb_buddy_alloc_success", "htlb_buddy_alloc_fail", "cma_alloc_success",
            "cma_alloc_fail", "unevictable_pgs_culled", "unevictable_pgs_scanned",
            "unevictable_pgs_rescued", "unevictable_pgs_mlocked", "unevictable_pgs_munlocked",
            "unevictable_pgs_cleared", "unevictable_pgs_stranded",
            // CONFIG_TRANSPARENT_HUGEPAGE
            "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge",
            "thp_collapse_alloc", "thp_collapse_alloc_failed", "thp_file_alloc",
            "thp_file_fallback", "thp_file_fallback_charge", "thp_file_mapped", "thp_split_page",
            "thp_split_page_failed", "thp_deferred_split_page", "thp_split_pmd",
            "thp_scan_exceed_none_pte", "thp_scan_exceed_swap_pte", "thp_scan_exceed_share_pte"});
  if (x86_64) v.push_back("thp_split_pud");  // CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD
  v.insert(v.end(), {"thp_zero_page_alloc", "thp_zero_page_alloc_failed", "thp_swpout",
                     "thp_swpout_fallback",
                     // CONFIG_MEMORY_BALLOON, CONFIG_BALLOON_COMPACTION
                     "balloon_inflate", "balloon_deflate", "balloon_migrate",
                     // CONFIG_SWAP (+ CONFIG_KSM), CONFIG_KSM, CONFIG_ZSWAP, CONFIG_X86
                     "swap_ra", "swap_ra_hit", "ksm_swpin_copy", "cow_ksm", "zswpin", "zswpout",
                     "zswpwb",  // Linux 6.8's writeback event, after zswpout
                     "direct_map_level2_splits", "direct_map_level3_splits"});
  return v;
}

uint64_t vm_event_value(const Machine& m, std::string_view name) {
  for (unsigned i = 0; i < kFirstPrivateVmEvent; ++i)
    if (kVmEventNames[i] == name)
      return static_cast<uint64_t>(std::max<int64_t>(m.sum_event(static_cast<VmEvent>(i)), 0));
  return 0;
}

}  // namespace procfs_internal

std::vector<VmstatField> vmstat_fields(const Machine& m, bool with_private) {
  namespace pi = procfs_internal;
  std::vector<VmstatField> v;
  for (std::string_view name : pi::kZoneStatNames)
    v.push_back({name, name == "nr_free_pages" ? nr_free_pages(m) : 0});
  if (pi::has_numa(m))
    for (std::string_view name : pi::kNumaStatNames) v.push_back({name, 0});
  for (std::string_view name : pi::node_stat_names(m)) {
    uint64_t value = 0;
    for (unsigned nid = 0; nid < m.nr_nodes(); ++nid)
      value += pi::node_stat_value(m.node(nid), name);
    v.push_back({name, value});
  }
  const DirtyLimits d = global_dirty_limits(m);
  v.push_back({"nr_dirty_threshold", d.thresh});
  v.push_back({"nr_dirty_background_threshold", d.background});
  for (std::string_view name : pi::vm_event_names(m))
    v.push_back({name, pi::vm_event_value(m, name)});
  if (with_private) {
    for (unsigned i = kFirstPrivateVmEvent; i < kNrVmEvents; ++i)
      v.push_back({kVmEventNames[i], static_cast<uint64_t>(std::max<int64_t>(
                                         m.sum_event(static_cast<VmEvent>(i)), 0))});
  }
  return v;
}

std::string render_vmstat(const Machine& m) {
  fmt::memory_buffer out;
  for (const VmstatField& f : vmstat_fields(m))
    fmt::format_to(std::back_inserter(out), "{} {}\n", f.name, f.value);
  return fmt::to_string(out);
}

}  // namespace mmkit
