// Reclaim of the LRU lists (mm/vmscan.c): the scan arithmetic, list
// shrinking, direct and memcg reclaim. kswapd.cc runs it per node;
// oom_kill.cc is the last resort.
#pragma once

#include <cstdint>

#include "memcg/lru.h"
#include "phys/machine.h"
#include "slab/shrinker.h"  // DEF_PRIORITY

namespace mmkit {

// inactive_is_low(): the inactive list is short against the active one
// (inactive * int_sqrt(10 * GiB of both) < active; ratio 1 under 1 GiB).
bool inactive_is_low(uint64_t inactive, uint64_t active);

// get_scan_count(): how many pages to scan from each evictable list at
// `priority` (size >> priority, split between anon and file by swappiness
// and the recent reclaim cost). With no swap, anon is not scanned; with no
// file pages, only anon is; at priority 0 both equally (SCAN_EQUAL); in
// cache-trim mode (enough inactive page cache, set by prepare_scan_count)
// only file.
struct ScanInput {
  uint64_t size[NR_LRU_LISTS] = {};
  uint64_t anon_cost = 0, file_cost = 0;
  unsigned swappiness = 60;
  unsigned priority = DEF_PRIORITY;
  bool can_swap = true;     // swap has free slots
  bool cache_trim = false;  // sc->cache_trim_mode
};
// prepare_scan_count()'s cache_trim_mode: the inactive file list has pages
// at this priority and is not low against the active one (so the file side
// needs no deactivation first).
bool cache_trim_mode(uint64_t inactive_file, uint64_t active_file, unsigned priority);
void get_scan_count(const ScanInput& in, uint64_t out[NR_LRU_LISTS]);

struct ScanControl {
  uint64_t nr_to_reclaim = SWAP_CLUSTER_MAX;
  uint64_t batch = SWAP_CLUSTER_MAX;  // pages isolated from a list at a time
  unsigned priority = DEF_PRIORITY;
  bool kswapd = false;
  MemCgroup* target = nullptr;  // memcg reclaim: this group's lists only
  uint64_t nr_scanned = 0;
  uint64_t nr_reclaimed = 0;
  uint64_t nr_dirty_queued = 0;  // dirty file pages left to the flusher this batch
  uint64_t young_cpus = 0;       // TLBs to flush at the batch's end (flush_tlb_cpus)
  // Pages kept because a lock was busy: the page's own, or a page-table
  // lock its rmap walk or unmap could only try (lock order forbids waiting).
  uint64_t nr_busy = 0;
};

// shrink_node(): every group's lruvec of node `nid` (or sc.target's), and the
// shrinkers in proportion.
void shrink_node(Machine& m, int nid, ScanControl& sc);
// try_to_free_mem_cgroup_pages(): reclaim from one group's lists, all nodes.
uint64_t try_to_free_mem_cgroup_pages(Machine& m, MemCgroup* cg, uint64_t nr_pages);

}  // namespace mmkit
