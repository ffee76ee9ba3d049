// Scanning and shrinking the LRU lists (mm/vmscan.c): isolate_lru_folios,
// shrink_active_list, shrink_inactive_list, shrink_folio_list,
// get_scan_count, shrink_lruvec, shrink_node. See vmscan.h.
#include "reclaim/vmscan.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru_gen.h"
#include "memcg/workingset.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/lru_gen.h"
#include "reclaim/vmscan_internal.h"
#include "slab/shrinker.h"
#include "swap/swap.h"
#include "vm/mmu.h"
#include "vm/rmap.h"

namespace mmkit {
namespace {

uint64_t int_sqrt(uint64_t x) {
  uint64_t r = 0;
  while ((r + 1) * (r + 1) <= x) ++r;
  return r;
}

}  // namespace

void vmscan_internal::count(Machine& m, VmEvent e, uint64_t n) {
  if (n) m.count_event(e, static_cast<int64_t>(n));
}

namespace {

using vmscan_internal::count;

// isolate_lru_folios(): up to nr pages from the tail of `lru`, each with a
// reference and PG_lru cleared, off the list.
std::vector<Page*> isolate(Lruvec& lv, unsigned lru, uint64_t nr) {
  std::vector<Page*> out;
  SpinGuard g(lv.lru_lock);
  ListHead* head = &lv.lists[lru];
  uint64_t looked = 0;
  while (out.size() < nr && head->prev != head && looked++ < nr * 4) {
    Page* page = container_of(head->prev, &Page::lru);
    if (!page->try_get()) {  // being freed: its release takes it off
      ListHead::del(&page->lru);
      head->add(&page->lru);
      continue;
    }
    page->clear_atomic(PG_lru);
    lruvec_del_page(lv, page);
    out.push_back(page);
  }
  return out;
}

// Puts pages back (putback_lru_page for each), with one lock hold per
// lruvec, then drops the isolation references outside the lock.
void putback(Machine& m, std::vector<Page*>& pages) {
  for (Page* page : pages) {
    Lruvec& lv = folio_lruvec(m, page);
    SpinGuard g(lv.lru_lock);
    page->set_atomic(PG_lru);
    lruvec_add_page(lv, page);
  }
  for (Page* page : pages) put_page(m, page);
}

void shrink_active_list(Machine& m, Lruvec& lv, uint64_t nr, ScanControl& sc, unsigned lru) {
  std::vector<Page*> pages = isolate(lv, lru, nr);
  for (Page* page : pages) {
    // Anonymous pages are deactivated whether referenced or not (only
    // executable file pages stay active); the young bits are cleared so the
    // inactive list sees fresh references (under the page lock, which keeps
    // a swap-in from filing the page anew meanwhile).
    if (!page->test_and_set(PG_locked)) {
      sc.young_cpus |= folio_referenced(m, page).young_cpus;
      page->clear_atomic(PG_locked);
    }
    page->clear_atomic(PG_active);
    page->clear_atomic(PG_referenced);
    page->set_atomic(PG_workingset);  // it was active: a refault of it is a restore
  }
  lv.pgrefill.fetch_add(pages.size());
  lv.pgdeactivate.fetch_add(pages.size());
  count(m, VmEvent::PGREFILL, pages.size());
  count(m, VmEvent::PGDEACTIVATE, pages.size());
  sc.nr_scanned += pages.size();
  flush_tlb_cpus(m, std::exchange(sc.young_cpus, 0));
  putback(m, pages);
}

// __remove_mapping() for a swap-cache page: only when our isolation
// reference and the cache's are the last (a racing swap-in that found the
// page keeps it), the page leaves the cache and is freed by our put.
bool remove_mapping(Machine& m, Page* page) {
  int32_t expected = 2;
  if (page->mapcount.load(std::memory_order_acquire) != 0 ||
      !page->refcount.compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
    return false;
  get_page(page);  // delete_from_swap_cache drops the cache's reference
  delete_from_swap_cache(m, page, workingset_eviction(m, page));
  return true;
}

}  // namespace

namespace vmscan_internal {

namespace {
// A page kept because something held a lock reclaim could only try.
Verdict busy(ScanControl& sc) {
  ++sc.nr_busy;
  return Verdict::kKeep;
}
}  // namespace

Verdict shrink_one(Machine& m, Page* page, ScanControl& sc) {
  if (page->test(PG_writeback) || page->test(PG_unevictable)) return Verdict::kKeep;
  const RmapResult refs = folio_referenced(m, page);
  sc.young_cpus |= refs.young_cpus;
  const bool referenced_page = page->test_and_clear(PG_referenced);
  if (refs.done) {
    // folio_check_references(): the first look after the fault only marks
    // it; referenced again (or by several PTEs), it is activated.
    page->set_atomic(PG_referenced);
    if (referenced_page || refs.done > 1) return Verdict::kActivate;
    return Verdict::kKeep;
  }
  if (refs.busy) return busy(sc);
  if (!page->test(PG_swapbacked)) {
    // A page-cache page: written back when dirty (pageout), then dropped
    // with a shadow entry left in its slot. One truncated meanwhile has no
    // mapping; its last put frees it.
    if (!page_is_file_cache(page)) return Verdict::kKeep;
    if (page->mapcount.load(std::memory_order_acquire) > 0) {
      try_to_unmap(m, page);  // through the file's i_mmap
      if (page->mapcount.load(std::memory_order_acquire) > 0) return busy(sc);
    }
    if (page->test(PG_dirty)) {
      // Dirty: the flusher is asked to write it and PG_reclaim set, so its
      // writeback's end rotates it to the tail for the next scan. Linux
      // lets only kswapd write such a page itself; mmkit lets any
      // reclaimer write one it meets dirty a second time, so a memory
      // cgroup's reclaim never waits on a flusher that lags behind.
      if (!page->test_and_set(PG_reclaim)) {
        m.mod_node_page_state(page, NodeStat::NR_VMSCAN_IMMEDIATE, 1);
        ++sc.nr_dirty_queued;
        return Verdict::kKeep;
      }
      page->clear_atomic(PG_reclaim);
      if (const int e = filemap_writepage(m, page); e == -EAGAIN)
        return Verdict::kKeep;
      else if (e)
        return Verdict::kActivate;
      m.mod_node_page_state(page, NodeStat::NR_VMSCAN_WRITE, 1);
    }
    return filemap_remove_mapping(m, page) ? Verdict::kReclaimed : Verdict::kKeep;
  }
  if (page_is_shmem(page)) {
    // A shmem page: unmapped through its inode's i_mmap like a file page.
    // Clean, it was never written and simply goes (its hole reads as
    // zeros); dirty, shmem_writepage() trades its index entry for a swap
    // entry and hands it to the swap cache, where it is written and freed
    // below as an anonymous page is.
    if (page->mapcount.load(std::memory_order_acquire) > 0) {
      try_to_unmap(m, page);
      if (page->mapcount.load(std::memory_order_acquire) > 0) return busy(sc);
    }
    if (!page->test(PG_dirty))
      return filemap_remove_mapping(m, page) ? Verdict::kReclaimed : Verdict::kKeep;
    if (!shmem_writepage(m, page)) return Verdict::kActivate;
  } else if (!page->test(PG_swapcache)) {
    // A swap-backed page with no mapping was truncated from shmem while
    // isolated: the last put frees it.
    if (!page->mapping_once()) return Verdict::kKeep;
    if (!add_to_swap(m, page, page_memcg(m, page)->id)) return Verdict::kActivate;
  }
  if (page->mapcount.load(std::memory_order_acquire) > 0) {
    try_to_unmap(m, page);
    if (page->mapcount.load(std::memory_order_acquire) > 0) return busy(sc);
  }
  if (page->test(PG_dirty)) {
    // pageout(): written with PG_writeback; a failure keeps it dirty.
    if (swap_writepage(m, page) != 0) return Verdict::kActivate;
  }
  return remove_mapping(m, page) ? Verdict::kReclaimed : Verdict::kKeep;
}

}  // namespace vmscan_internal

namespace {

using vmscan_internal::shrink_one;
using vmscan_internal::Verdict;

void shrink_inactive_list(Machine& m, Lruvec& lv, uint64_t nr, ScanControl& sc, unsigned lru) {
  std::vector<Page*> pages = isolate(lv, lru, nr);
  const uint64_t scanned = pages.size();
  sc.nr_scanned += scanned;
  lv.pgscan.fetch_add(scanned);
  count(m, sc.kswapd ? VmEvent::PGSCAN_KSWAPD : VmEvent::PGSCAN_DIRECT, scanned);
  count(m, is_file_lru(lru) ? VmEvent::PGSCAN_FILE : VmEvent::PGSCAN_ANON, scanned);
  std::vector<Page*> keep;
  uint64_t reclaimed = 0, activated = 0;
  for (Page* page : pages) {
    Verdict v = Verdict::kKeep;
    if (!page->test_and_set(PG_locked)) {
      v = shrink_one(m, page, sc);
      page->clear_atomic(PG_locked);
    } else {
      ++sc.nr_busy;
    }
    if (v == Verdict::kReclaimed) {
      ++reclaimed;
      put_page(m, page);  // the isolation reference: the page is free now
      continue;
    }
    if (v == Verdict::kActivate) {
      page->set_atomic(PG_active);
      ++activated;
      // activate_locked: a page kept in memory gives its swap copy up when
      // swap is short (its data then lives only in the page: dirty).
      if (page->test(PG_swapcache) && mem_cgroup_swap_full(m, page) &&
          !page->test_and_set(PG_locked)) {
        if (folio_free_swap(m, page)) page->set_atomic(PG_dirty);
        page->clear_atomic(PG_locked);
      }
    }
    keep.push_back(page);
  }
  sc.nr_reclaimed += reclaimed;
  lv.pgsteal.fetch_add(reclaimed);
  lv.pgactivate.fetch_add(activated);
  count(m, sc.kswapd ? VmEvent::PGSTEAL_KSWAPD : VmEvent::PGSTEAL_DIRECT, reclaimed);
  count(m, is_file_lru(lru) ? VmEvent::PGSTEAL_FILE : VmEvent::PGSTEAL_ANON, reclaimed);
  count(m, VmEvent::PGACTIVATE, activated);
  // Dirty file pages met: the flusher writes them (WB_REASON_VMSCAN).
  if (sc.nr_dirty_queued) {
    sc.nr_dirty_queued = 0;
    wakeup_flusher_threads(m);
  }
  // lru_note_cost(): what rotating costs the anon side.
  lv.cost[is_file_lru(lru) ? 1 : 0].fetch_add(activated);
  flush_tlb_cpus(m, std::exchange(sc.young_cpus, 0));
  putback(m, keep);
}

void shrink_lruvec(Machine& m, Lruvec& lv, ScanControl& sc) {
  if (lru_gen_enabled(m)) return lru_gen_shrink_lruvec(m, lv, sc);
  ScanInput in;
  for (unsigned l = 0; l < NR_LRU_LISTS; ++l) in.size[l] = lv.size(l);
  in.anon_cost = lv.cost[0].load();
  in.file_cost = lv.cost[1].load();
  in.swappiness = m.swappiness;
  in.priority = sc.priority;
  in.can_swap = mem_cgroup_get_nr_swap_pages(m, lv.memcg) > 0;  // can_reclaim_anon_pages()
  in.cache_trim =
      cache_trim_mode(in.size[LRU_INACTIVE_FILE], in.size[LRU_ACTIVE_FILE], sc.priority);
  uint64_t nr[NR_LRU_LISTS];
  get_scan_count(in, nr);
  const uint64_t start = sc.nr_reclaimed;
  while (nr[LRU_INACTIVE_ANON] || nr[LRU_ACTIVE_ANON] || nr[LRU_INACTIVE_FILE] ||
         nr[LRU_ACTIVE_FILE]) {
    for (unsigned lru = 0; lru < LRU_UNEVICTABLE; ++lru) {
      if (!nr[lru]) continue;
      const uint64_t batch = std::min(nr[lru], sc.batch);
      nr[lru] -= batch;
      if (is_active_lru(lru)) {
        // shrink_list(): the active list only feeds a short inactive one.
        if (inactive_is_low(lv.size(lru - 1), lv.size(lru)))
          shrink_active_list(m, lv, batch, sc, lru);
      } else {
        shrink_inactive_list(m, lv, batch, sc, lru);
      }
    }
    if (sc.nr_reclaimed - start >= sc.nr_to_reclaim && !sc.kswapd) break;
  }
  // Keep the inactive anon list fed (shrink_lruvec's final age_active_anon).
  if (in.can_swap && inactive_is_low(lv.size(LRU_INACTIVE_ANON), lv.size(LRU_ACTIVE_ANON)))
    shrink_active_list(m, lv, sc.batch, sc, LRU_ACTIVE_ANON);
}

}  // namespace

bool inactive_is_low(uint64_t inactive, uint64_t active) {
  const uint64_t gb = (inactive + active) >> (30 - PAGE_SHIFT);
  const uint64_t ratio = gb ? int_sqrt(10 * gb) : 1;
  return inactive * ratio < active;
}

bool cache_trim_mode(uint64_t inactive_file, uint64_t active_file, unsigned priority) {
  return (inactive_file >> priority) && !inactive_is_low(inactive_file, active_file);
}

void get_scan_count(const ScanInput& in, uint64_t out[NR_LRU_LISTS]) {
  const bool have_file = in.size[LRU_INACTIVE_FILE] + in.size[LRU_ACTIVE_FILE] > 0;
  uint64_t fraction[2] = {1, 1}, denominator = 1;
  if (!in.can_swap) {
    fraction[0] = 0;  // SCAN_FILE
  } else if (!have_file) {
    fraction[1] = 0;  // SCAN_ANON: nothing else to take
  } else if (in.priority == 0 && in.swappiness) {
    // SCAN_EQUAL: out of options, every list in full.
  } else if (in.cache_trim || in.swappiness == 0) {
    fraction[0] = 0;  // SCAN_FILE: enough clean cache to take first
  } else {
    // SCAN_FRACT: anon against file, weighed by swappiness and by what
    // reclaiming each recently cost.
    const uint64_t total = in.anon_cost + in.file_cost;
    const uint64_t a = total + in.anon_cost, f = total + in.file_cost;
    const uint64_t t = a + f;
    fraction[0] = in.swappiness * (t + 1) / (a + 1);
    fraction[1] = (200 - in.swappiness) * (t + 1) / (f + 1);
    denominator = fraction[0] + fraction[1];
  }
  for (unsigned lru = 0; lru < NR_LRU_LISTS; ++lru) {
    if (lru == LRU_UNEVICTABLE) {
      out[lru] = 0;
      continue;
    }
    const unsigned file = is_file_lru(lru) ? 1 : 0;
    const uint64_t scan = in.size[lru] >> in.priority;
    out[lru] = scan * fraction[file] / denominator;
  }
}

void shrink_node(Machine& m, int nid, ScanControl& sc) {
  lru_add_drain(m);
  const uint64_t scanned_before = sc.nr_scanned;
  if (sc.target) {
    shrink_lruvec(m, mem_cgroup_lruvec(sc.target, nid), sc);
  } else {
    for (MemCgroup* cg : mem_cgroups(m)) {
      shrink_lruvec(m, mem_cgroup_lruvec(cg, nid), sc);
      if (!sc.kswapd && sc.nr_reclaimed >= sc.nr_to_reclaim) break;
    }
    // do_shrink_slab() in proportion to the LRU scan (shrink_slab's priority).
    if (sc.nr_scanned > scanned_before)
      shrink_slab(m, GFP_KERNEL, nid, static_cast<int>(sc.priority));
  }
}

constexpr int kBusyRounds = 4;

uint64_t try_to_free_mem_cgroup_pages(Machine& m, MemCgroup* cg, uint64_t nr_pages) {
  ScanControl sc;
  sc.target = cg;
  sc.batch = memcg_reclaim_batch(cg->max.load(std::memory_order_relaxed));
  sc.nr_to_reclaim = std::max(nr_pages, sc.batch);
  // A round that freed nothing because pages were busy is tried again
  // after a yield, a few times: in the kernel the holder of a page-table
  // spinlock cannot be preempted, here a faulting thread holding one may
  // be, and 16 such rounds in a row made the group's OOM killer fire on a
  // group of clean file pages (FaultAroundConcurrency at 6 MiB).
  for (int round = 0;; ++round) {
    for (int prio = DEF_PRIORITY; prio >= 0 && sc.nr_reclaimed < sc.nr_to_reclaim; --prio) {
      sc.priority = static_cast<unsigned>(prio);
      for (unsigned nid = 0; nid < m.nr_nodes(); ++nid) shrink_node(m, static_cast<int>(nid), sc);
    }
    if (sc.nr_reclaimed || !sc.nr_busy || round == kBusyRounds) break;
    sc.nr_busy = 0;
    std::this_thread::yield();
  }
  return sc.nr_reclaimed;
}

}  // namespace mmkit
