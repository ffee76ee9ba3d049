// Swap areas, swap slots and the swap cache (include/linux/swap.h;
// mm/swapfile.c, mm/swap_state.c, mm/page_io.c).
//
// A swap area is a real host file that begins with the header mkswap
// writes (SWAPSPACE2, version 1, last_page), so `file` and `blkid` know it.
// Its slots are counted in swap_map, one byte per page as Linux's: the
// number of swap entries in page tables (up to SWAP_MAP_MAX; more are
// counted aside, Linux's COUNT_CONTINUED pages), plus SWAP_HAS_CACHE while a
// page for the slot is in the swap cache. Slots are handed out by clusters
// of SWAPFILE_CLUSTER, each CPU filling its own cluster (percpu_cluster);
// areas are used highest priority first.
//
// The swap cache maps an entry to the page that holds its data while the
// page is on its way out (reclaim) or in (swap-in, readahead); it holds a
// reference on the page and sets PG_swapcache, with the entry in
// page->private_. Lookups take no lock.
//
// I/O is synchronous pread/pwrite on the area's file, done with PG_writeback
// set (writes) or PG_locked held (reads), never under an area's lock. A
// failed write (the machine's swap_write_fault can inject one) leaves the
// page dirty in memory.
//
// Locking: the swap lock (swapon, swapoff) is taken before an area's lock;
// an area's lock guards its swap_map, clusters and cache insertions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fault_inject.h"
#include "phys/machine.h"
#include "swap/swap_entry.h"

namespace mmkit {

struct MemCgroup;

inline constexpr uint8_t SWAP_HAS_CACHE = 0x40;
inline constexpr uint8_t SWAP_MAP_MAX = 0x3e;
inline constexpr uint8_t COUNT_CONTINUED = 0x80;
inline constexpr uint64_t SWAPFILE_CLUSTER = 256;

struct SwapOptions {
  std::string path;   // "": a temporary file, removed at swapoff
  uint64_t size = 0;  // bytes; 0 with an existing file: its size
  std::optional<int> priority;
};

// swapon(): 0 and the area's type in *type, or a negative errno with *err
// saying why (the file cannot be made, it is too small or too large for the
// arch's swap entries, 32 areas are on).
int swapon(Machine& m, const SwapOptions& opt, std::string* err, unsigned* type = nullptr);
// swapoff(): brings every page of the area back into memory
// (try_to_unuse) and removes it; -ENOMEM (the area stays on, as it was)
// when memory cannot hold them, -EINVAL for an unknown path.
int swapoff(Machine& m, std::string_view path);

struct SwapAreaInfo {
  std::string path;
  uint64_t pages = 0;  // usable slots (last_page)
  uint64_t used = 0;   // slots in use
  int prio = 0;
  bool temporary = false;
};
std::vector<SwapAreaInfo> swap_areas(const Machine& m);
uint64_t swap_total_pages(const Machine& m);  // 0 before the first swapon
uint64_t swap_free_pages(const Machine& m);   // free slots
// mem_cgroup_swap_full(): vm_swap_full(), or the page's group holds at
// least half its memory.swap.max: a page that is in memory anyway then
// gives its swap-cache copy up, so the group has slots for what it evicts
// next.
bool mem_cgroup_swap_full(Machine& m, const Page* page);
// mem_cgroup_get_nr_swap_pages(): the slots a group's pages could still go
// to: the free ones, no more than its memory.swap.max leaves it.
uint64_t mem_cgroup_get_nr_swap_pages(const Machine& m, const MemCgroup* cg);
bool swap_layer_active(const Machine& m);
// IS_SWAPFILE(): the host file (st_dev, st_ino) is one of the machine's
// active swap areas, which no write may reach but swap's own.
bool swap_file_active(const Machine& m, uint64_t dev, uint64_t ino);
// vm_swap_full(): more than half of swap is in use; swap-cache copies of
// pages that are in memory anyway are then given up.
inline bool vm_swap_full(const Machine& m) {
  return swap_free_pages(m) * 2 < swap_total_pages(m);
}

// --- slots --------------------------------------------------------------
// get_swap_page(): a slot with SWAP_HAS_CACHE set and no count, charged
// to memcg `memcg_id` (swap_cgroup); {0} when every area is full.
SwpEntry get_swap_page(Machine& m, uint16_t memcg_id);
// swap_duplicate(): one more page-table reference (fork, unmap). False for
// an entry that is not in use (a corrupt entry).
bool swap_duplicate(Machine& m, SwpEntry e);
// swap_free(): one page-table reference less (zap, swap-in); the slot is
// free when no count and no cache remain.
void swap_free(Machine& m, SwpEntry e);
// The page-table references of an entry (swap_count without the cache bit).
unsigned swap_count(const Machine& m, SwpEntry e);
// The memcg id an entry was charged to.
uint16_t swap_cgroup_id(const Machine& m, SwpEntry e);

// --- the swap cache ---------------------------------------------------------
// The page caching `e`, with a reference, or null. Never waits.
Page* lookup_swap_cache(Machine& m, SwpEntry e);
// add_to_swap(): gives an anonymous page a slot and puts it in the swap
// cache (dirty: it must be written before it can be freed). False when
// swap is full.
bool add_to_swap(Machine& m, Page* page, uint16_t memcg_id);
// Removes a page from the swap cache (its reference and SWAP_HAS_CACHE go).
// Reclaim's eviction passes the shadow entry (memcg/workingset.h) that the
// slot keeps while page tables still refer to it.
void delete_from_swap_cache(Machine& m, Page* page, uintptr_t shadow = 0);
// free_swap_and_cache(): a page-table reference less, and the swap-cache
// page goes too when nothing refers to the slot any more (zap).
void free_swap_and_cache(Machine& m, SwpEntry e);
// folio_free_swap(): drops a swap-cache page's slot when no page table
// refers to it any more. True when it did.
bool folio_free_swap(Machine& m, Page* page);
// __try_to_reclaim_swap() over every area: frees the slots only the swap
// cache holds (no page-table reference; an unmapped page neither locked nor
// under writeback). These are the copies whose last entry went while
// reclaim had the page locked: free_swap_and_cache leaves them, and reclaim
// frees them when it next scans the page. Returns the slots freed.
uint64_t try_to_reclaim_swap_cache(Machine& m);
// The page of `e` read in (or found in the swap cache), with a reference,
// uptodate; null when memory or the read failed. With readahead, the other
// slots of the aligned window are read into the swap cache too
// (swap_cluster_readahead), PG_readahead set until a fault uses them; the
// window adapts as Linux's swapin_nr_pages() does: up to 2^page_cluster
// pages while readahead pages are used, one page when they are not and the
// faults are not sequential. *major: a read was done.
// `charge` charges the new pages (a memcg charge; false: give up).
using SwapChargeFn = std::function<bool(Page* page, SwpEntry e, bool readahead)>;
Page* swapin_readahead(Machine& m, SwpEntry e, bool readahead, const SwapChargeFn& charge,
                       bool* major);

// --- I/O ------------------------------------------------------------------------
// swap_writepage(): writes a locked, dirty swap-cache page to its slot
// (PG_dirty cleared, PG_writeback while the write runs). 0, or -EIO with the
// page dirty again, or -EAGAIN, dirty, when zswap refused a page of a group
// whose memory.zswap.writeback is off.
int swap_writepage(Machine& m, Page* page);
// Injected write errors (tests): the next writes fail as `c` says.
FaultAttr& swap_write_fault(Machine& m);

// --- swapoff's reach into page tables ----------------------------------------------
// Registered by the vm layer: brings every entry of area `type` mapped in
// any address space back into memory; 0 or -ENOMEM.
void set_swap_unuse(Machine& m, std::function<int(Machine&, unsigned type)> unuse);

// Proves swap's invariants: per area, inuse equals the slots with a count
// or cache bit; cluster counts equal their slots; cache entries point at
// pages with PG_swapcache and the entry in private_, and the slot has
// SWAP_HAS_CACHE; free totals add up. "" or the first violation.
std::string swap_check(Machine& m);
// The page-table references each slot should have, for check(): counted by
// the caller (vm) and compared with swap_map. "" or the first mismatch.
std::string swap_check_counts(
    Machine& m, const std::function<void(const std::function<void(SwpEntry)>& visit)>& walk);

}  // namespace mmkit
