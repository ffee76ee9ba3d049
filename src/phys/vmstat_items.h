// Counter identities (include/linux/vm_event_item.h, include/linux/mmzone.h).
//
// VmEvent: monotonically increasing event counts, kept per CPU and summed by
// readers (/proc/vmstat's second half). ZoneStat: per-zone state counts.
// Names are the /proc/vmstat spellings; a layer that does not exist yet leaves
// its counters at zero, and the views print them anyway, as Linux does.
#pragma once

#include <array>
#include <string_view>

namespace mmkit {

enum class VmEvent : unsigned {
  PGPGIN,
  PGPGOUT,
  PSWPIN,
  PSWPOUT,
  PGALLOC_DMA,
  PGALLOC_DMA32,
  PGALLOC_NORMAL,
  PGALLOC_HIGH,
  PGALLOC_MOVABLE,
  ALLOCSTALL_DMA,
  ALLOCSTALL_DMA32,
  ALLOCSTALL_NORMAL,
  ALLOCSTALL_HIGH,
  ALLOCSTALL_MOVABLE,
  PGSKIP_DMA,
  PGSKIP_DMA32,
  PGSKIP_NORMAL,
  PGSKIP_HIGH,
  PGSKIP_MOVABLE,
  PGFREE,
  PGACTIVATE,
  PGDEACTIVATE,
  PGLAZYFREE,
  PGFAULT,
  PGMAJFAULT,
  PGLAZYFREED,
  PGREFILL,
  PGREUSE,
  PGSTEAL_KSWAPD,
  PGSTEAL_DIRECT,
  PGSCAN_KSWAPD,
  PGSCAN_DIRECT,
  PGSCAN_DIRECT_THROTTLE,
  PGSCAN_ANON,
  PGSCAN_FILE,
  PGSTEAL_ANON,
  PGSTEAL_FILE,
  PGINODESTEAL,
  SLABS_SCANNED,
  KSWAPD_INODESTEAL,
  KSWAPD_LOW_WMARK_HIT_QUICKLY,
  KSWAPD_HIGH_WMARK_HIT_QUICKLY,
  PAGEOUTRUN,
  PGROTATED,
  DROP_PAGECACHE,
  DROP_SLAB,
  OOM_KILL,
  ZSWPIN,   // pages loaded from zswap (mm/zswap.c)
  ZSWPOUT,  // pages stored in zswap
  ZSWPWB,   // pages written back from zswap's pool to the swap file
  ALLOC_FAIL,
  ALLOC_SLOWPATH,
  KSWAPD_WAKEUP,
  NR_EVENTS
};

inline constexpr std::array<std::string_view, static_cast<size_t>(VmEvent::NR_EVENTS)>
    kVmEventNames = {
        "pgpgin",
        "pgpgout",
        "pswpin",
        "pswpout",
        "pgalloc_dma",
        "pgalloc_dma32",
        "pgalloc_normal",
        "pgalloc_high",
        "pgalloc_movable",
        "allocstall_dma",
        "allocstall_dma32",
        "allocstall_normal",
        "allocstall_high",
        "allocstall_movable",
        "pgskip_dma",
        "pgskip_dma32",
        "pgskip_normal",
        "pgskip_high",
        "pgskip_movable",
        "pgfree",
        "pgactivate",
        "pgdeactivate",
        "pglazyfree",
        "pgfault",
        "pgmajfault",
        "pglazyfreed",
        "pgrefill",
        "pgreuse",
        "pgsteal_kswapd",
        "pgsteal_direct",
        "pgscan_kswapd",
        "pgscan_direct",
        "pgscan_direct_throttle",
        "pgscan_anon",
        "pgscan_file",
        "pgsteal_anon",
        "pgsteal_file",
        "pginodesteal",
        "slabs_scanned",
        "kswapd_inodesteal",
        "kswapd_low_wmark_hit_quickly",
        "kswapd_high_wmark_hit_quickly",
        "pageoutrun",
        "pgrotated",
        "drop_pagecache",
        "drop_slab",
        "oom_kill",
        "zswpin",
        "zswpout",
        "zswpwb",
        // mmkit's own, not in Linux's /proc/vmstat: failed allocations, slow-path
        // entries and kswapd wakeups (views print them only in JSON).
        "mmkit_alloc_fail",
        "mmkit_alloc_slowpath",
        "mmkit_kswapd_wakeup",
};
// Per-node state counts in pages (enum node_stat_item; Linux keeps slab in bytes
// internally and prints pages).
enum class NodeStat : unsigned {
  NR_SLAB_RECLAIMABLE,
  NR_SLAB_UNRECLAIMABLE,
  NR_PAGETABLE,
  NR_ANON_PAGES,
  NR_KERNEL_MISC_RECLAIMABLE,
  // The LRU sizes, in enum lru_list order (NR_LRU_BASE + lru).
  NR_INACTIVE_ANON,
  NR_ACTIVE_ANON,
  NR_INACTIVE_FILE,
  NR_ACTIVE_FILE,
  NR_UNEVICTABLE,
  NR_ISOLATED_ANON,
  NR_SWAPCACHE,
  // The page cache (mm/filemap.c, mm/page-writeback.c).
  NR_FILE_PAGES,
  NR_FILE_MAPPED,  // page-cache (and shmem) pages mapped by a PTE
  NR_SHMEM,        // shmem pages in the page cache (not those in the swap cache)
  NR_FILE_DIRTY,
  NR_WRITEBACK,
  NR_VMSCAN_WRITE,      // pages reclaim wrote back itself
  NR_VMSCAN_IMMEDIATE,  // dirty pages reclaim marked PG_reclaim and left to the flusher
  NR_DIRTIED,           // pages dirtied, ever (an event kept as a node stat, as Linux)
  NR_WRITTEN,           // pages written back, ever
  // mm/workingset.c's refault events (the file ones wait for the page cache).
  WORKINGSET_REFAULT_ANON,
  WORKINGSET_REFAULT_FILE,
  WORKINGSET_ACTIVATE_ANON,
  WORKINGSET_ACTIVATE_FILE,
  WORKINGSET_RESTORE_ANON,
  WORKINGSET_RESTORE_FILE,
  NR_STATS
};
inline constexpr unsigned NR_LRU_BASE = static_cast<unsigned>(NodeStat::NR_INACTIVE_ANON);
inline constexpr unsigned kNrNodeStats = static_cast<unsigned>(NodeStat::NR_STATS);

inline constexpr unsigned kFirstPrivateVmEvent = static_cast<unsigned>(VmEvent::ALLOC_FAIL);

}  // namespace mmkit
