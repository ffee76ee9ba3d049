// Shadow entries and refault distances (mm/workingset.c). See workingset.h.
#include "memcg/workingset.h"

#include "memcg/lru.h"
#include "memcg/lru_gen.h"

namespace mmkit {
namespace {

constexpr unsigned kWorkingsetShift = 1, kMemcgShift = 2, kNodeShift = 18, kAgeShift = 24;
constexpr uint64_t kMemcgMask = 0xffff, kNodeMask = 0x3f;
constexpr uint64_t kAgeMask = (uint64_t{1} << (64 - kAgeShift)) - 1;  // EVICTION_MASK

void node_stat(Machine& m, int nid, NodeStat item, int64_t n) {
  m.node(nid).stat[static_cast<unsigned>(item)].add(n);
}

}  // namespace

uintptr_t workingset_eviction(Machine& m, Page* page) {
  if (lru_gen_enabled(m)) return lru_gen_eviction(m, page);
  Lruvec& lv = folio_lruvec(m, page);
  // workingset_age_nonresident(): the age before this eviction is the
  // page's; the eviction itself is the tick.
  const uint64_t age = lv.nonresident_age.fetch_add(1, std::memory_order_relaxed);
  return static_cast<uintptr_t>(
      (age & kAgeMask) << kAgeShift | (static_cast<uint64_t>(lv.nid) & kNodeMask) << kNodeShift |
      (uint64_t{lv.memcg->id} & kMemcgMask) << kMemcgShift |
      (page->test(PG_workingset) ? uint64_t{1} << kWorkingsetShift : 0) | 1);
}

void workingset_refault(Machine& m, Page* page, uintptr_t shadow, bool swap_available) {
  if (lru_gen_enabled(m)) return lru_gen_refault(m, page, shadow);
  const uint64_t v = shadow;
  const uint64_t eviction = v >> kAgeShift;
  const int nid = static_cast<int>((v >> kNodeShift) & kNodeMask);
  const auto memcg_id = static_cast<uint16_t>((v >> kMemcgShift) & kMemcgMask);
  const bool workingset = (v >> kWorkingsetShift) & 1;
  const bool file = !page->test(PG_swapbacked);
  auto item = [file](NodeStat anon) {  // the _FILE item follows each _ANON one
    return static_cast<NodeStat>(static_cast<unsigned>(anon) + (file ? 1 : 0));
  };
  Lruvec& lv = folio_lruvec(m, page);
  node_stat(m, lv.nid, item(NodeStat::WORKINGSET_REFAULT_ANON), 1);
  lv.workingset_refault[file].fetch_add(1, std::memory_order_relaxed);
  // The lruvec the page was evicted from; a group removed since, or a node
  // the machine does not have, leaves nothing to compare with.
  MemcgState* st = memcg_state_if(m);
  MemCgroup* cg = st && memcg_id ? st->group(memcg_id) : nullptr;
  if (!cg || nid < 0 || static_cast<unsigned>(nid) >= m.nr_nodes()) return;
  Lruvec& evicted_from = mem_cgroup_lruvec(cg, nid);
  const uint64_t refault = evicted_from.nonresident_age.load(std::memory_order_relaxed);
  const uint64_t distance = (refault - eviction) & kAgeMask;
  // workingset_test_recent(): the memory a page competes for is the active
  // file list, the inactive file list too for an anonymous page and, while
  // there is swap to make room with, the active anon list (and the inactive
  // one for a file page).
  uint64_t workingset_size = evicted_from.size(LRU_ACTIVE_FILE);
  if (!file) workingset_size += evicted_from.size(LRU_INACTIVE_FILE);
  if (swap_available) {
    workingset_size += evicted_from.size(LRU_ACTIVE_ANON);
    if (file) workingset_size += evicted_from.size(LRU_INACTIVE_ANON);
  }
  if (distance > workingset_size) return;
  page->set_atomic(PG_active);
  lv.nonresident_age.fetch_add(1, std::memory_order_relaxed);
  node_stat(m, lv.nid, item(NodeStat::WORKINGSET_ACTIVATE_ANON), 1);
  lv.workingset_activate[file].fetch_add(1, std::memory_order_relaxed);
  if (workingset) {
    // Active before its eviction: a restore, and what it cost counts
    // against its side (lru_note_cost_refault).
    page->set_atomic(PG_workingset);
    lv.cost[file ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
    node_stat(m, lv.nid, item(NodeStat::WORKINGSET_RESTORE_ANON), 1);
    lv.workingset_restore[file].fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace mmkit
