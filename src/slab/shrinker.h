// Shrinkers (include/linux/shrinker.h, mm/shrinker.c, mm/vmscan.c's
// shrink_slab / do_shrink_slab): callbacks through which caches built on
// the slab allocator (dentries, inodes, ...) give objects back under memory
// pressure.
//
//   register_shrinker(m, &shrinker, name) / unregister_shrinker(m, &shrinker)
//   shrink_slab(m, gfp, nid, priority)  one reclaim pass over every shrinker
//
// A shrinker reports how many objects it could free (count_objects) and
// frees up to sc.nr_to_scan of them (scan_objects), returning how many it
// freed or SHRINK_STOP. Reclaim asks each shrinker for a share of its
// objects proportional to the pressure: (freeable >> priority) * 4 / seeks,
// plus the work deferred from earlier passes, in batches (do_shrink_slab).
//
// Direct reclaim: the first register_shrinker() on a machine installs the
// slab layer's ReclaimOps (unless another layer has installed its own), so
// the page allocator's slow path runs the shrinkers before it gives up
// (see try_to_free_pages in shrinker.cc). The reclaim layer (LRU scanning,
// kswapd) will replace that implementation and call shrink_slab itself.
// That first registration must not race with allocations on the machine
// (Machine::set_reclaim is a plain store); later ones may.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "page_alloc/gfp.h"
#include "phys/machine.h"

namespace mmkit {

// scan_objects: "cannot make progress now, do not call me again this pass".
inline constexpr uint64_t SHRINK_STOP = ~uint64_t{0};
// count_objects: "nothing here at all" (as opposed to 0: nothing freeable now).
inline constexpr uint64_t SHRINK_EMPTY = ~uint64_t{0} - 1;
inline constexpr int DEFAULT_SEEKS = 2;       // a typical object costs 2 seeks to recreate
inline constexpr int64_t SHRINK_BATCH = 128;  // objects per scan_objects call by default
inline constexpr int DEF_PRIORITY = 12;       // first reclaim pass scans 1/4096 of everything
// Shrinker::flags: per-node counts and deferred work (Linux's value).
inline constexpr unsigned SHRINKER_NUMA_AWARE = 1u << 1;

struct ShrinkControl {
  gfp_t gfp_mask;
  int nid;              // the node under reclaim; 0 for a shrinker that is not NUMA aware
  uint64_t nr_to_scan;  // objects to scan in this call
  uint64_t nr_scanned;  // set to nr_to_scan; a shrinker may lower it to what it scanned
};

struct Shrinker {
  std::function<uint64_t(Shrinker&, ShrinkControl&)> count_objects, scan_objects;
  int seeks = DEFAULT_SEEKS;  // 0: objects cost nothing to recreate, trim hard
  int64_t batch = 0;          // 0: SHRINK_BATCH
  unsigned flags = 0;
  void* private_data = nullptr;
  // Scan work a pass wanted but did not do; the next pass adds it (for a
  // NUMA-aware shrinker, per node in nr_deferred_node instead).
  std::atomic<int64_t> nr_deferred{0};

  // --- set by register_shrinker ---
  std::string name;
  Machine* machine = nullptr;
  std::unique_ptr<std::atomic<int64_t>[]> nr_deferred_node;  // SHRINKER_NUMA_AWARE only
  std::atomic<int> active{0};  // shrink_slab passes using it now; unregister waits for 0
  bool registered = false;
};

// 0, or -EINVAL (no callbacks, negative seeks or batch, already registered).
int register_shrinker(Machine& m, Shrinker* shrinker, std::string_view name);
// Removes it and waits until no shrink_slab pass is still calling it; the
// caller may then free what the callbacks use. Not from inside its own callbacks.
void unregister_shrinker(Machine& m, Shrinker* shrinker);

// do_shrink_slab(): one shrinker at one priority; objects freed (or
// SHRINK_EMPTY / 0 when count_objects says there is nothing).
uint64_t do_shrink_slab(Machine& m, ShrinkControl& sc, Shrinker& shrinker, int priority);
// shrink_slab(): every registered shrinker for node `nid`; objects freed.
uint64_t shrink_slab(Machine& m, gfp_t gfp_mask, int nid, int priority);

// The deferred scan count of `shrinker` for `nid` (tests and views).
int64_t shrinker_nr_deferred(const Shrinker& shrinker, int nid);

}  // namespace mmkit
