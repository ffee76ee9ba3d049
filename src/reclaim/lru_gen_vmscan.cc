// Aging by page-table walks, eviction by generations and tiers, and the
// min_ttl check of the multi-generational LRU (Linux 6.1 mm/vmscan.c:
// try_to_inc_max_seq, walk_pte_range, isolate_folios, scan_folios,
// sort_folio, isolate_folio, evict_folios, lru_gen_age_node). See
// reclaim/lru_gen.h.
#include "reclaim/lru_gen.h"

#include <chrono>
#include <mutex>
#include <utility>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru_gen.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/vmscan_internal.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/mmu.h"
#include "vm/pgtable.h"
#include "vm/process_state.h"

namespace mmkit {
namespace {

using vmscan_internal::count;
using vmscan_internal::shrink_one;
using vmscan_internal::Verdict;

constexpr uint64_t kLruRefsFlags = (uint64_t{1} << PG_referenced) | (uint64_t{1} << PG_workingset);

void clear_refs(Page* page) {
  page->flags.fetch_and(~(kLruRefsMask | kLruRefsFlags), std::memory_order_acq_rel);
}

// get_swappiness(): 0 when the lruvec's anonymous pages cannot be
// reclaimed (no free swap, or none its group may take).
unsigned swappiness_of(Machine& m, const Lruvec& lv) {
  return mem_cgroup_get_nr_swap_pages(m, lv.memcg) > 0 ? m.swappiness : 0;
}

// The pages of the types reclaim may take (anon only with swap), over
// every generation; lru_lock held.
uint64_t evictable_pages(const Lruvec& lv, bool anon) {
  uint64_t total = 0;
  for (unsigned gen = 0; gen < MAX_NR_GENS; ++gen)
    for (unsigned type = anon ? 0 : 1; type < 2; ++type)
      total += static_cast<uint64_t>(std::max<int64_t>(lv.lrugen.nr_pages[gen][type], 0));
  return total;
}

// walk_mm() over every address space: the process table's lock is held (a
// try-lock) for the walk so no mm is freed under it; each mm is walked only
// when both its locks are free (an mm being torn down holds them; one torn
// down already has no VMAs left).
template <class Fn>
void walk_young_ptes(Machine& m, Fn&& fn) {
  auto* st = const_cast<ProcessState*>(process_state_if(m));
  if (!st) return;
  std::unique_lock<std::mutex> g(st->lock, std::try_to_lock);
  if (!g.owns_lock()) return;
  for (MmStruct* mm : st->mms) {
    if (mm->mm_users.load(std::memory_order_acquire) <= 0) continue;
    // (A reclaimer inside a fault holds its own mm's mmap lock: skipped.)
    if (mm->mmap_lock.held_by_me() || !mm->mmap_lock.try_lock()) continue;
    if (!mm->page_table_lock.held_by_me() && mm->page_table_lock.try_lock()) {
      for (auto& [end, vma] : mm->mm_mt)
        walk_range(mm->pgd, vma->vm_start, vma->vm_end, [&](uint64_t addr, pteval_t v) {
          if (v & _PAGE_ACCESSED) fn(mm, addr, v);
        });
      mm->page_table_lock.unlock();
    }
    mm->mmap_lock.unlock();
  }
}

// sort_folio(): true when the page was moved instead of isolated (a
// protected tier, or one reclaim cannot work on now).
bool sort_page(Machine& m, Lruvec& lv, Page* page, unsigned type, unsigned tier_idx) {
  LruGen& g = lv.lrugen;
  const uint64_t min_seq = g.min_seq[type].load(std::memory_order_relaxed);
  const unsigned next = lru_gen_from_seq(min_seq + 1);
  const unsigned tier = lru_tier_from_refs(page_lru_refs(page));
  if (tier > tier_idx) {
    // Protected: up a generation, its refs spent (folio_inc_gen).
    clear_refs(page);
    lru_gen_move_page(lv, page, next, true);
    g.protected_[type][tier - 1].fetch_add(1, std::memory_order_relaxed);
    m.node(lv.nid).stat[static_cast<unsigned>(NodeStat::WORKINGSET_ACTIVATE_ANON) + type].add(1);
    lv.workingset_activate[type].fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (page->test(PG_locked) || page->test(PG_writeback)) {
    // Waiting for writeback: its end rotates it back (PG_reclaim).
    if (page->test(PG_writeback)) page->set_atomic(PG_reclaim);
    lru_gen_move_page(lv, page, next, false);
    return true;
  }
  return false;
}

// scan_folios() from the oldest generation of `type`, never below
// MIN_NR_GENS: up to nr pages isolated (a reference, PG_lru cleared).
uint64_t scan_pages(Machine& m, Lruvec& lv, unsigned type, unsigned tier_idx, uint64_t nr,
                    std::vector<Page*>& out) {
  LruGen& g = lv.lrugen;
  if (lru_gen_nr_gens(g, type) <= MIN_NR_GENS) return 0;
  const uint64_t min_seq = g.min_seq[type].load(std::memory_order_relaxed);
  ListHead* head = &g.lists[lru_gen_from_seq(min_seq)][type];
  uint64_t scanned = 0;
  while (out.size() < nr && !head->empty() && scanned < nr * 4) {
    Page* page = container_of(head->prev, &Page::lru);
    ++scanned;
    if (sort_page(m, lv, page, type, tier_idx)) continue;
    if (!page->try_get()) {
      // Being freed: its release takes it off wherever it sits, but may be
      // waiting for this lock. Up a generation with it, as sort_folio does
      // with a page under writeback, so the oldest generation can empty
      // and min_seq move on (put back at the head, the lone page of an
      // oldest generation would be all eviction sees until it goes).
      lru_gen_move_page(lv, page, lru_gen_from_seq(min_seq + 1), false);
      continue;
    }
    // isolate_folio(): refs without PG_referenced are stale. (PG_reclaim
    // stays, so shrink_one writes a dirty file page it meets a second
    // time, as on the classic lists.)
    if (!page->test(PG_referenced)) clear_refs(page);
    page->clear_atomic(PG_referenced);
    page->clear_atomic(PG_lru);
    lru_gen_del_page(lv, page, true);
    out.push_back(page);
  }
  return scanned;
}

// should_run_aging() (Linux 6.1): eviction stalls at MIN_NR_GENS
// generations, so aging is due there; with one generation more it is due
// when the pages are spread badly: more than 1/MIN_NR_GENS of them in the
// youngest generation, or fewer than 1/(MIN_NR_GENS + 2) in the oldest (a
// handful of rejected pages in the oldest would otherwise be all eviction
// ever sees). Only the types reclaim may take count.
bool should_run_aging(Lruvec& lv, bool can_swap) {
  SpinGuard guard(lv.lru_lock);
  const LruGen& g = lv.lrugen;
  const uint64_t max_seq = g.max_seq.load(std::memory_order_relaxed);
  uint64_t min_seq = max_seq, young = 0, old = 0, total = 0;
  for (unsigned type = can_swap ? 0 : 1; type < 2; ++type) {
    const uint64_t first = g.min_seq[type].load(std::memory_order_relaxed);
    min_seq = std::min(min_seq, first);
    for (uint64_t seq = first; seq <= max_seq; ++seq) {
      const auto size =
          static_cast<uint64_t>(std::max<int64_t>(g.nr_pages[lru_gen_from_seq(seq)][type], 0));
      total += size;
      if (seq == max_seq)
        young += size;
      else if (seq + MIN_NR_GENS == max_seq)
        old += size;
    }
  }
  if (min_seq + MIN_NR_GENS > max_seq) return true;
  if (min_seq + MIN_NR_GENS < max_seq) return false;
  return young * MIN_NR_GENS > total || old * (MIN_NR_GENS + 2) < total;
}

}  // namespace

uint64_t lru_gen_age_lruvec(Machine& m, Lruvec& lv) {
  std::vector<Page*> young;
  uint64_t young_cpus = 0;
  walk_young_ptes(m, [&](MmStruct* mm, uint64_t addr, pteval_t v) {
    const uint64_t pfn = pte_pfn(v);
    if (!m.pfn_valid(pfn)) return;
    Page* page = m.pfn_to_page(pfn);
    if (page->is_tail() || !page->test(PG_lru) || page_lru_gen(page) < 0) return;
    if (&folio_lruvec(m, page) != &lv || !page->try_get()) return;
    // ptep_test_and_clear_young(), as folio_referenced does.
    pte_clear_flags_atomic(mm->pgd, addr, _PAGE_ACCESSED);
    young_cpus |= mm->pgd.cpumask.load(std::memory_order_relaxed);
    young.push_back(page);
  });
  flush_tlb_cpus(m, young_cpus);
  {
    SpinGuard g(lv.lru_lock);
    const unsigned gen = lru_gen_from_seq(lv.lrugen.max_seq.load());
    for (Page* page : young)
      if (page->test(PG_lru) && page_lru_gen(page) >= 0 &&
          page_lru_gen(page) != static_cast<int>(gen))
        lru_gen_move_page(lv, page, gen, false);
    lru_gen_inc_max_seq(lv);
  }
  for (Page* page : young) put_page(m, page);
  return young.size();
}

uint64_t lru_gen_evict(Machine& m, Lruvec& lv, ScanControl& sc, uint64_t nr) {
  const unsigned swappiness = swappiness_of(m, lv);
  std::vector<Page*> pages;
  uint64_t scanned = 0;
  unsigned type = LRU_GEN_FILE;
  {
    SpinGuard g(lv.lru_lock);
    const LruGen& lg = lv.lrugen;
    // isolate_folios(): which type, and how many tiers of it.
    int tier = -1;
    if (!swappiness) {
      type = LRU_GEN_FILE;
    } else if (lg.min_seq[LRU_GEN_ANON].load() < lg.min_seq[LRU_GEN_FILE].load()) {
      type = LRU_GEN_ANON;
    } else if (swappiness == 1) {
      type = LRU_GEN_FILE;
    } else if (swappiness == 200) {
      type = LRU_GEN_ANON;
    } else {
      unsigned t = 0;
      type = lru_gen_type_to_scan(lv, swappiness, &t);
      tier = static_cast<int>(t);
    }
    for (unsigned i = swappiness ? 0 : 1; i < 2; ++i) {
      if (tier < 0) tier = static_cast<int>(lru_gen_tier_idx(lv, type));
      scanned = scan_pages(m, lv, type, static_cast<unsigned>(tier), nr, pages);
      if (scanned) break;
      type = !type;
      tier = -1;
    }
    lru_gen_try_inc_min_seq(lv);
  }
  const uint64_t isolated = pages.size();
  sc.nr_scanned += isolated;
  lv.pgscan.fetch_add(isolated);
  count(m, sc.kswapd ? VmEvent::PGSCAN_KSWAPD : VmEvent::PGSCAN_DIRECT, isolated);
  count(m, type == LRU_GEN_FILE ? VmEvent::PGSCAN_FILE : VmEvent::PGSCAN_ANON, isolated);
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
      put_page(m, page);
      continue;
    }
    if (page->test(PG_reclaim) && (page->test(PG_dirty) || page->test(PG_writeback))) {
      // Waiting for the flusher: the second youngest generation
      // (lru_gen_add_folio), its PG_referenced restored.
      if (page->test(PG_workingset)) page->set_atomic(PG_referenced);
    } else if (v == Verdict::kActivate || page->test(PG_referenced) ||
               page->mapcount.load(std::memory_order_acquire) > 0 || page->test(PG_dirty) ||
               page->test(PG_writeback)) {
      // Rejected: not back into the oldest generation (evict_folios).
      clear_refs(page);
      page->set_atomic(PG_active);
      ++activated;
      if (v == Verdict::kActivate && page->test(PG_swapcache) && mem_cgroup_swap_full(m, page) &&
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
  count(m, type == LRU_GEN_FILE ? VmEvent::PGSTEAL_FILE : VmEvent::PGSTEAL_ANON, reclaimed);
  count(m, VmEvent::PGACTIVATE, activated);
  if (sc.nr_dirty_queued) {
    sc.nr_dirty_queued = 0;
    wakeup_flusher_threads(m);
  }
  flush_tlb_cpus(m, std::exchange(sc.young_cpus, 0));
  // move_folios_to_lru(): back onto the generations (lru_gen_add_folio).
  for (Page* page : keep) {
    Lruvec& plv = folio_lruvec(m, page);
    SpinGuard g(plv.lru_lock);
    page->set_atomic(PG_lru);
    lruvec_add_page(plv, page);
  }
  for (Page* page : keep) put_page(m, page);
  return scanned;
}

void lru_gen_shrink_lruvec(Machine& m, Lruvec& lv, ScanControl& sc) {
  const uint64_t start = sc.nr_reclaimed;
  const bool anon = swappiness_of(m, lv) > 0;
  // get_nr_to_scan(): the evictable pages >> priority.
  uint64_t total;
  {
    SpinGuard g(lv.lru_lock);
    total = evictable_pages(lv, anon);
  }
  if (!total) return;
  uint64_t nr_to_scan = total >> sc.priority;
  if (!nr_to_scan) nr_to_scan = std::min(total, sc.batch) >> (sc.priority / 4);
  if (!nr_to_scan) return;
  // Each type may age at most MAX_NR_GENS times a call: a lruvec whose
  // pages are all young cannot make aging spin.
  unsigned agings = 0, idle = 0;
  while (nr_to_scan) {
    const bool need_aging = should_run_aging(lv, anon);
    // (Past the bound, eviction goes on while it finds pages.)
    if (need_aging && agings++ < MAX_NR_GENS) lru_gen_age_lruvec(m, lv);
    const uint64_t batch = std::min(nr_to_scan, sc.batch);
    const uint64_t scanned = lru_gen_evict(m, lv, sc, batch);
    if (!scanned) {
      if (need_aging || ++idle > 2 * MAX_NR_GENS) break;
      continue;  // the oldest generations were empty: aging comes next
    }
    nr_to_scan -= std::min(nr_to_scan, scanned);
    if (sc.nr_reclaimed - start >= sc.nr_to_reclaim && !sc.kswapd) break;
  }
}

bool lru_gen_min_ttl_exhausted(Machine& m, int nid) {
  const uint64_t min_ttl = m.config().lru_gen_min_ttl_ms;
  if (!lru_gen_enabled(m) || !min_ttl) return false;
  const uint64_t now =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now().time_since_epoch())
                                .count());
  for (MemCgroup* cg : mem_cgroups(m)) {
    Lruvec& lv = mem_cgroup_lruvec(cg, nid);
    const bool anon = swappiness_of(m, lv) > 0;
    SpinGuard g(lv.lru_lock);
    // age_lruvec(): a lruvec with pages reclaim may take is reclaimable
    // once the file type's oldest generation (never older than the anon
    // type's) was born min_ttl ago, whether or not it still holds pages:
    // pages a fault added sit in the youngest generation.
    if (!evictable_pages(lv, anon)) continue;
    const unsigned gen = lru_gen_from_seq(lv.lrugen.min_seq[LRU_GEN_FILE].load());
    if (lv.lrugen.timestamps[gen].load() + min_ttl <= now) return false;
  }
  return true;
}

}  // namespace mmkit
