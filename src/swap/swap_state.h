// The swap layer's per-machine state (Layer::kSwap): the areas, their
// swap maps, clusters and swap caches. Internal to src/swap.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "swap/swap.h"

namespace mmkit {

struct ZswapEntry;  // zswap.cc
struct ZswapState;  // zswap.cc
struct ZswapStateDeleter {
  void operator()(ZswapState* z) const;
};
// zswap's trees cover 2^14 slots each (SWAP_ADDRESS_SPACE_SHIFT, 64 MiB of
// swap), each under its own lock, as mm/zswap.c splits them.
inline constexpr unsigned kZswapTreeShift = 14;

struct SwapInfo {
  // Read on every swap entry's lookup, written only by swapon and swapoff:
  // kept off the cache lines the lock and the counters below bounce on.
  unsigned type = 0;
  int prio = 0;
  int fd = -1;
  uint64_t max = 0;                 // slots including the header page (last_page + 1)
  uint64_t pages = 0;               // usable slots
  std::atomic<bool> writeok{true};  // SWP_WRITEOK: off while swapoff runs
  // The swap cache, by offset: a Page*, a shadow entry left by reclaim
  // (bit 0 set, memcg/workingset.h) while the slot is in use, or 0.
  std::unique_ptr<std::atomic<uintptr_t>[]> cache;
  std::unique_ptr<std::atomic<uint16_t>[]> memcg_id;  // swap_cgroup, by offset
  std::unique_ptr<uint8_t[]> swap_map;                // per slot: count | SWAP_HAS_CACHE (lock)
  // zswap's tree: each slot's entry, or null (written under the slot's
  // tree lock; see zswap.cc), and one lock per 2^kZswapTreeShift slots.
  std::unique_ptr<std::atomic<ZswapEntry*>[]> zswap;
  std::unique_ptr<std::mutex[]> zswap_locks;
  std::string path;
  bool temporary = false;
  uint64_t dev = 0, ino = 0;  // the host file's identity (st_dev, st_ino)

  alignas(64) std::mutex lock;                       // guards the maps and clusters below
  std::unordered_map<uint64_t, uint32_t> continued;  // counts above SWAP_MAP_MAX
  std::vector<uint16_t> cluster_count;               // slots in use per cluster
  // Two stacks of clusters with lazy deletion (an entry may have filled or
  // emptied since it was pushed; a flag per cluster says it is on the
  // stack): every wholly free cluster is on free_clusters, every partly
  // used one on nonfull_clusters, so no allocation scans the whole map
  // (the free and nonfull lists of mm/swapfile.c's cluster allocator).
  std::vector<uint32_t> free_clusters;
  std::vector<uint32_t> nonfull_clusters;
  std::vector<uint8_t> cluster_listed;  // bit 0: on free_clusters; bit 1: on nonfull_clusters
  std::vector<uint64_t> percpu_next;    // per CPU: next slot to try, 0: none
  alignas(64) std::atomic<uint64_t> inuse_pages{0};

  ~SwapInfo();
  uint64_t nr_clusters() const { return (max + SWAPFILE_CLUSTER - 1) / SWAPFILE_CLUSTER; }
  // Slots of cluster c (the last may be short; the header counts as used).
  uint64_t cluster_slots(uint64_t c) const {
    return std::min(max, (c + 1) * SWAPFILE_CLUSTER) - c * SWAPFILE_CLUSTER;
  }
};

struct SwapState final : LayerState {
  explicit SwapState(Machine& m);
  ~SwapState() override;

  Machine& m;
  std::mutex swap_lock;  // swapon/swapoff, the areas' order
  std::array<std::atomic<SwapInfo*>, MAX_SWAPFILES> info = {};
  std::vector<std::unique_ptr<SwapInfo>> owned;
  std::vector<SwapInfo*> by_prio;  // highest first (swap_lock, copied under it)
  std::atomic<std::vector<SwapInfo*>*> avail{nullptr};
  std::vector<std::unique_ptr<std::vector<SwapInfo*>>> old_avail;  // kept until teardown
  int least_priority = -1;
  std::atomic<int64_t> total{0}, nr_free{0};
  // Slots handed out, for the turns areas of one priority take.
  std::atomic<uint64_t> allocs{0};
  FaultAttr write_fault;
  // swapin_nr_pages()'s state: readahead pages used since the last fault
  // that read, the offset of that fault, and the window it chose.
  std::atomic<unsigned> ra_hits{0};
  std::atomic<uint64_t> ra_prev_offset{0};
  std::atomic<unsigned> ra_last_pages{0};
  std::function<int(Machine&, unsigned)> unuse;
  std::unique_ptr<ZswapState, ZswapStateDeleter> zswap;  // zswap.cc
};

SwapState& swap_state(Machine& m);
inline SwapState* swap_state_if(const Machine& m) {
  return static_cast<SwapState*>(m.layer_state(Layer::kSwap));
}
// The area of an entry, or null for an entry of no area.
SwapInfo* swap_info(const Machine& m, SwpEntry e);
// Sets (swapcache_prepare: 0, -EEXIST when a page is cached or on its way,
// -ENOENT for a free slot) or clears a slot's SWAP_HAS_CACHE.
int swap_set_cache_bit(Machine& m, SwpEntry e, bool set);
// Reads a slot (pread). 0 or -EIO.
int swap_read_slot(SwapInfo& si, uint64_t offset, void* buf);

// --- zswap's side (zswap.cc) -------------------------------------------------------
// zswap's state for a new swap layer, its parameters from the config.
ZswapState* zswap_create(Machine& m);
// swapon: the area's tree (si.zswap, si.zswap_locks) and, with zswap on,
// the entry cache.
void zswap_swapon(SwapState& st, SwapInfo& si);
// A freed slot's entry goes (zswap_invalidate); called under si.lock.
void zswap_invalidate(SwapState& st, SwapInfo& si, uint64_t offset);
// zswap's writeback through the swap cache (zswap_writeback_entry): claims
// slot `e` (its SWAP_HAS_CACHE), puts a new page for it in the swap cache,
// locked, lets `fill` write the data into the page, writes the page to the
// slot, calls `written` (the slot still claimed) and takes the page out of
// the cache again. 0; -EEXIST when the slot is claimed (a page is cached or
// on its way); -ENOENT when the slot is free or `fill` found nothing;
// -ENOMEM without a page; -EIO when the write failed (nothing is lost).
int swap_writeback_slot(Machine& m, SwpEntry e, const std::function<bool(void* dst)>& fill,
                        const std::function<void()>& written);

}  // namespace mmkit
