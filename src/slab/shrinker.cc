// Shrinkers (mm/shrinker.c, mm/vmscan.c shrink_slab / do_shrink_slab, Linux
// 6.1's arithmetic) and the slab layer's stand-in for direct reclaim.
//
// Registration: the shrinker list lives in the machine's SlabState under
// shrinker_mutex. Linux walks it under shrinker_rwsem held for reading (a
// reclaimer that cannot get it gives up: down_read_trylock). mmkit takes
// the mutex only to snapshot the list and pin each shrinker (Shrinker::
// active, the shrinker_try_get() of Linux 6.7's lockless walk), then calls
// the shrinkers with no lock held; unregister_shrinker() unlinks under the
// mutex and waits for the pins to drop. So concurrent reclaimers all make
// progress, and a shrinker callback may allocate or take its own locks.
//
// The proportional arithmetic (do_shrink_slab): a pass at `priority` wants
// delta = (freeable >> priority) * 4 / seeks objects scanned (freeable / 2
// when seeks is 0), plus nr_deferred >> priority of the work earlier passes
// left undone, at most 2 * freeable; it scans in batches of `batch`
// (SHRINK_BATCH) while at least a batch, or everything freeable, remains;
// what it wanted but did not scan (nr + delta - scanned, at most 2 *
// freeable) is deferred to the next pass. Each batch counts its nr_scanned
// in the slabs_scanned event.
//
// Direct reclaim: SlabReclaimOps::try_to_free_pages() is what the page
// allocator's slow path calls (m.reclaim()) with __GFP_DIRECT_RECLAIM. It
// runs shrink_slab() over all nodes at DEF_PRIORITY, then 11, ... 0, and
// stops after the first priority at which the shrinkers freed anything (in
// Linux do_try_to_free_pages() also scans the LRU lists and stops at
// SWAP_CLUSTER_MAX pages). It returns the growth of free pages (buddy and
// per-CPU lists) plus the objects the shrinkers reported freed: freed
// objects need not free a whole slab, and the slow path only asks whether
// there was progress. The reclaim layer will replace this implementation
// with its own (LRU scanning, kswapd) and call shrink_slab() from there.
#include "slab/shrinker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <thread>
#include <typeinfo>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"

namespace mmkit {

namespace {

std::atomic<int64_t>& deferred_slot(Shrinker& s, int nid) {
  if ((s.flags & SHRINKER_NUMA_AWARE) && s.nr_deferred_node && s.machine && nid >= 0 &&
      static_cast<unsigned>(nid) < s.machine->nr_nodes())
    return s.nr_deferred_node[nid];
  return s.nr_deferred;
}

// Free pages on the buddy and per-CPU lists of every zone.
uint64_t free_and_pcp_pages(Machine& m) {
  uint64_t n = nr_free_pages(m);
  m.for_each_zone([&](const Zone& z) { n += zone_pcp_pages(z); });
  return n;
}

// PF_MEMALLOC's role here: a shrinker that allocates while it is being
// called from reclaim does not recurse into reclaim.
thread_local bool tls_in_reclaim = false;

// The slab layer's ReclaimOps: shrinkers only. wakeup_kswapd() stays the
// base class's (it records the wakeup; there is no kswapd yet).
class SlabReclaimOps final : public ReclaimOps {
 public:
  uint64_t try_to_free_pages(Machine& m, gfp_t gfp, unsigned order, int nid) override {
    if (tls_in_reclaim || !(gfp & __GFP_DIRECT_RECLAIM)) return 0;
    tls_in_reclaim = true;
    const unsigned nr_nodes = m.nr_nodes();
    int first = nid;
    if (first < 0 || static_cast<unsigned>(first) >= nr_nodes) {
      const CpuState* cpu = this_cpu(m);
      first = cpu ? cpu->node : 0;
    }
    const uint64_t before = free_and_pcp_pages(m);
    uint64_t objects = 0;
    for (int priority = DEF_PRIORITY; priority >= 0 && !objects; --priority) {
      for (unsigned i = 0; i < nr_nodes; ++i)
        objects += shrink_slab(m, gfp, static_cast<int>((first + i) % nr_nodes), priority);
    }
    const uint64_t after = free_and_pcp_pages(m);
    tls_in_reclaim = false;
    return (after > before ? after - before : 0) + objects;
  }
};

// Installs the slab layer's reclaim hook unless a layer installed its own.
void install_slab_reclaim(Machine& m) {
  static SlabReclaimOps ops;  // stateless: one serves every machine
  const ReclaimOps& current = *m.reclaim();
  if (typeid(current) == typeid(ReclaimOps)) m.set_reclaim(&ops);
}

}  // namespace

int register_shrinker(Machine& m, Shrinker* shrinker, std::string_view name) {
  if (!shrinker || !shrinker->count_objects || !shrinker->scan_objects || shrinker->seeks < 0 ||
      shrinker->batch < 0) {
    m.warn("WARNING: register_shrinker: missing callbacks or negative seeks/batch\n");
    return -EINVAL;
  }
  SlabState& st = slab_state(m);
  std::lock_guard<std::mutex> g(st.shrinker_mutex);
  if (shrinker->registered) {
    m.warn(fmt::format("WARNING: register_shrinker: {} is already registered\n", shrinker->name));
    return -EINVAL;
  }
  shrinker->name = std::string(name);
  shrinker->machine = &m;
  shrinker->nr_deferred.store(0, std::memory_order_relaxed);  // Linux allocates it zeroed
  if (shrinker->flags & SHRINKER_NUMA_AWARE) {
    shrinker->nr_deferred_node = std::make_unique<std::atomic<int64_t>[]>(m.nr_nodes());
    for (unsigned i = 0; i < m.nr_nodes(); ++i) shrinker->nr_deferred_node[i].store(0);
  }
  shrinker->registered = true;
  st.shrinkers.push_back(shrinker);
  install_slab_reclaim(m);
  return 0;
}

void unregister_shrinker(Machine& m, Shrinker* shrinker) {
  if (!shrinker) return;
  SlabState& st = slab_state(m);
  {
    std::lock_guard<std::mutex> g(st.shrinker_mutex);
    auto it = std::find(st.shrinkers.begin(), st.shrinkers.end(), shrinker);
    if (it == st.shrinkers.end()) return;  // never registered: Linux returns quietly too
    st.shrinkers.erase(it);
    shrinker->registered = false;
  }
  // Wait for the passes that pinned it before it left the list.
  while (shrinker->active.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  shrinker->nr_deferred_node.reset();
  shrinker->machine = nullptr;
}

uint64_t do_shrink_slab(Machine& m, ShrinkControl& sc, Shrinker& shrinker, int priority) {
  const int64_t batch_size = shrinker.batch ? shrinker.batch : SHRINK_BATCH;
  const uint64_t count = shrinker.count_objects(shrinker, sc);
  if (count == 0 || count == SHRINK_EMPTY) return count;
  const int64_t freeable = static_cast<int64_t>(std::min<uint64_t>(count, INT64_MAX / 4));

  // Take the deferred work so concurrent passes do not do it too.
  std::atomic<int64_t>& deferred = deferred_slot(shrinker, sc.nid);
  const int64_t nr = deferred.exchange(0, std::memory_order_relaxed);

  int64_t delta;
  if (shrinker.seeks) {
    delta = (freeable >> priority) * 4 / shrinker.seeks;
  } else {
    // Objects that cost no I/O to recreate: trim them hard under pressure.
    delta = freeable / 2;
  }
  int64_t total_scan = (nr >> priority) + delta;
  total_scan = std::min(total_scan, 2 * freeable);

  // Normally scan no less than a batch per call; but when the cache holds
  // less than a batch and the pressure is high (total_scan reaches freeable),
  // scan it all rather than fail allocations over a few objects.
  uint64_t freed = 0;
  int64_t scanned = 0;
  while (total_scan >= batch_size || total_scan >= freeable) {
    const uint64_t nr_to_scan = static_cast<uint64_t>(std::min(batch_size, total_scan));
    sc.nr_to_scan = nr_to_scan;
    sc.nr_scanned = nr_to_scan;
    const uint64_t ret = shrinker.scan_objects(shrinker, sc);
    if (ret == SHRINK_STOP) break;
    freed += ret;
    m.count_event(VmEvent::SLABS_SCANNED, static_cast<int64_t>(sc.nr_scanned));
    // Linux trusts nr_scanned to be positive; a shrinker that scans nothing
    // would loop here forever, so treat that as SHRINK_STOP.
    if (sc.nr_scanned == 0) break;
    total_scan -= static_cast<int64_t>(sc.nr_scanned);
    scanned += static_cast<int64_t>(sc.nr_scanned);
  }

  // Defer the new work (delta) not done now, less the old work that was.
  int64_t next_deferred = std::max<int64_t>(nr + delta - scanned, 0);
  next_deferred = std::min(next_deferred, 2 * freeable);
  deferred.fetch_add(next_deferred, std::memory_order_relaxed);
  return freed;
}

uint64_t shrink_slab(Machine& m, gfp_t gfp_mask, int nid, int priority) {
  LayerState* ls = m.layer_state(Layer::kSlab);
  if (!ls) return 0;  // no slab layer, so no shrinkers
  SlabState& st = *static_cast<SlabState*>(ls);
  std::vector<Shrinker*> list;
  {
    std::lock_guard<std::mutex> g(st.shrinker_mutex);
    list = st.shrinkers;
    for (Shrinker* s : list) s->active.fetch_add(1, std::memory_order_relaxed);
  }
  priority = std::clamp(priority, 0, DEF_PRIORITY);
  uint64_t freed = 0;
  for (Shrinker* s : list) {
    ShrinkControl sc{gfp_mask, (s->flags & SHRINKER_NUMA_AWARE) ? nid : 0, 0, 0};
    uint64_t ret = do_shrink_slab(m, sc, *s, priority);
    if (ret == SHRINK_EMPTY) ret = 0;
    freed += ret;
    s->active.fetch_sub(1, std::memory_order_release);
  }
  return freed;
}

int64_t shrinker_nr_deferred(const Shrinker& shrinker, int nid) {
  return deferred_slot(const_cast<Shrinker&>(shrinker), nid).load(std::memory_order_relaxed);
}

}  // namespace mmkit
