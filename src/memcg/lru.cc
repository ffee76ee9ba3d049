// LRU lists, per-CPU add batches and memcg charging (mm/swap.c,
// mm/memcontrol.c). See lru.h for the rules.
#include "memcg/lru.h"

#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "memcg/lru_gen.h"
#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

void node_lru_stat(Machine& m, int nid, unsigned lru, int64_t n) {
  m.node(nid).stat[NR_LRU_BASE + lru].add(n);
}

uint16_t memcg_id_of(const MemcgState& st, const Machine& m, const Page* page) {
  return st.page_memcg ? st.page_memcg[m.page_to_pfn(page)].load(std::memory_order_acquire) : 0;
}

}  // namespace

// __folio_put()'s memcg half: off the list, uncharged, LRU flags cleared.
void memcg_page_release(Machine& m, Page* page) {
  if (page->test(PG_lru)) {
    Lruvec& lv = folio_lruvec(m, page);
    SpinGuard g(lv.lru_lock);
    if (page->test(PG_lru)) {
      page->clear_atomic(PG_lru);
      lruvec_del_page(lv, page);
    }
  }
  if (page->test(PG_memcg)) mem_cgroup_uncharge(m, page);
  // An anonymous page keeps its anon_vma while it sits unmapped in the swap
  // cache; it goes with the page (PAGE_MAPPING_ANON is bit 0).
  if (reinterpret_cast<uintptr_t>(page->mapping_once()) & 1 && page->mapcount.load() == 0)
    page->set_mapping_once(nullptr);
  page->flags.fetch_and(
      ~((uint64_t{1} << PG_active) | (uint64_t{1} << PG_referenced) |
        (uint64_t{1} << PG_workingset) | (uint64_t{1} << PG_swapbacked) |
        (uint64_t{1} << PG_unevictable) | (uint64_t{1} << PG_dirty) | (uint64_t{1} << PG_uptodate) |
        (uint64_t{1} << PG_readahead) | kLruRefsMask),
      std::memory_order_relaxed);
}

namespace {

// Moves a batch's pages onto their lists (folio_batch_move_lru), taking
// each lruvec's lock once per run of pages that share it, and drops the
// batch's references after the locks are gone (a put may free the page,
// which takes lru_lock itself).
void drain_batch(Machine& m, LruBatch& b) {
  Page* pages[kLruBatchSize];
  unsigned nr;
  {
    SpinGuard g(b.lock);
    nr = b.nr;
    for (unsigned i = 0; i < nr; ++i) pages[i] = b.pages[i];
    b.nr = 0;
  }
  Lruvec* locked = nullptr;
  for (unsigned i = 0; i < nr; ++i) {
    Page* page = pages[i];
    Lruvec* lv = &folio_lruvec(m, page);
    if (lv != locked) {
      if (locked) locked->lru_lock.unlock();
      lv->lru_lock.lock();
      locked = lv;
    }
    page->set_atomic(PG_lru);
    lruvec_add_page(*lv, page);
  }
  if (locked) locked->lru_lock.unlock();
  for (unsigned i = 0; i < nr; ++i) put_page(m, pages[i]);
}

LruBatch& this_batch(Machine& m, MemcgState& st) {
  CpuState* cpu = this_cpu(m);
  return st.batches[cpu ? cpu->id : m.nr_cpus()];
}

}  // namespace

Lruvec& mem_cgroup_lruvec(MemCgroup* cg, int nid) {
  return *cg->lruvec[nid];
}

MemCgroup* page_memcg(Machine& m, const Page* page) {
  MemcgState& st = memcg_state(m);
  const uint16_t id = memcg_id_of(st, m, page);
  MemCgroup* cg = id ? st.group(id) : nullptr;
  return cg ? cg : st.root();
}

void mod_lruvec_page_state(Machine& m, Page* page, NodeStat item, int64_t n) {
  m.mod_node_page_state(page, item, n);
  if (item == NodeStat::NR_FILE_DIRTY)
    page_memcg(m, page)->nr_file_dirty.fetch_add(n, std::memory_order_relaxed);
  else if (item == NodeStat::NR_WRITEBACK)
    page_memcg(m, page)->nr_writeback.fetch_add(n, std::memory_order_relaxed);
  else if (item == NodeStat::NR_SHMEM)
    page_memcg(m, page)->nr_shmem.fetch_add(n, std::memory_order_relaxed);
  else if (item == NodeStat::NR_FILE_MAPPED)
    page_memcg(m, page)->nr_file_mapped.fetch_add(n, std::memory_order_relaxed);
}

Lruvec& folio_lruvec(Machine& m, const Page* page) {
  return mem_cgroup_lruvec(page_memcg(m, page), m.page_zone(page)->node);
}

namespace {

// Under lru_gen every evictable page is on a generation list.
bool on_gen_lists(const Lruvec& lv, const Page* page) {
  return lru_gen_enabled(*lv.memcg->machine) && !page->test(PG_unevictable);
}

}  // namespace

void lruvec_add_page(Lruvec& lv, Page* page) {
  if (on_gen_lists(lv, page)) return lru_gen_add_page(lv, page, false);
  const unsigned lru = page_lru(page);
  lv.lists[lru].add(&page->lru);
  lv.nr[lru].store(lv.nr[lru].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  node_lru_stat(*lv.memcg->machine, lv.nid, lru, 1);
}

void lruvec_add_page_tail(Lruvec& lv, Page* page) {
  if (on_gen_lists(lv, page)) return lru_gen_add_page(lv, page, true);
  const unsigned lru = page_lru(page);
  lv.lists[lru].add_tail(&page->lru);
  lv.nr[lru].store(lv.nr[lru].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  node_lru_stat(*lv.memcg->machine, lv.nid, lru, 1);
}

void lruvec_del_page(Lruvec& lv, Page* page) {
  if (page_lru_gen(page) >= 0) return lru_gen_del_page(lv, page, false);
  const unsigned lru = page_lru(page);
  ListHead::del(&page->lru);
  lv.nr[lru].store(lv.nr[lru].load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  node_lru_stat(*lv.memcg->machine, lv.nid, lru, -1);
}

namespace {

// current->memcg_nr_pages_over_high: the pages this thread charged over
// memory.high since it last returned to user space.
thread_local uint64_t nr_pages_over_high = 0;

constexpr unsigned MEMCG_CHARGE_BATCH = 64;  // include/linux/memcontrol.h
constexpr unsigned MEMCG_DELAY_PRECISION_SHIFT = 20;
constexpr unsigned MEMCG_DELAY_SCALING_SHIFT = 14;
constexpr uint64_t kHz = 1000;
constexpr uint64_t MEMCG_MAX_HIGH_DELAY_JIFFIES = 2 * kHz;

}  // namespace

uint64_t mem_cgroup_high_delay_ms(uint64_t usage, uint64_t high, uint64_t nr_pages) {
  if (usage <= high) return 0;
  high = std::max<uint64_t>(high, 1);  // calculate_overage(): a threshold of at least a page
  const unsigned __int128 overage =
      (static_cast<unsigned __int128>(usage - high) << MEMCG_DELAY_PRECISION_SHIFT) / high;
  // Linux computes this in 64 bits; 128 keep a group far over its limit
  // from wrapping around to a short sleep.
  unsigned __int128 penalty = overage * overage * kHz;
  penalty >>= MEMCG_DELAY_PRECISION_SHIFT + MEMCG_DELAY_SCALING_SHIFT;
  penalty = penalty * nr_pages / MEMCG_CHARGE_BATCH;
  return penalty > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(penalty);
}

void mem_cgroup_handle_over_high(Machine& m, MemCgroup* cg) {
  if (!nr_pages_over_high) return;  // every fault comes here: a load, no store
  const uint64_t nr_pages = std::exchange(nr_pages_over_high, 0);
  MemcgState& st = memcg_state(m);
  if (!cg) cg = st.root();
  const uint64_t high = cg->high.load(std::memory_order_relaxed);
  if (high == kMemMax) return;
  uint64_t want = nr_pages;  // reclaim_high(), then SWAP_CLUSTER_MAX a retry
  for (int retries = MAX_RECLAIM_RETRIES;;) {
    const uint64_t reclaimed = st.reclaim_ops->reclaim ? st.reclaim_ops->reclaim(m, cg, want) : 0;
    const int64_t usage = cg->usage.load(std::memory_order_relaxed);
    const uint64_t delay =
        std::min(mem_cgroup_high_delay_ms(static_cast<uint64_t>(std::max<int64_t>(usage, 0)), high,
                                          nr_pages),
                 MEMCG_MAX_HIGH_DELAY_JIFFIES);
    // Not worth a sleep (HZ / 100); and while reclaim makes progress it
    // is given the chance to bring the group down instead.
    if (delay <= kHz / 100) return;
    if (reclaimed || retries-- > 0) {
      want = SWAP_CLUSTER_MAX;
      continue;
    }
    cg->high_throttle_ms.fetch_add(delay, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    return;
  }
}

int mem_cgroup_charge(Machine& m, Page* page, MemCgroup* cg, ChargeMode mode) {
  MemcgState& st = memcg_state(m);
  const bool no_reclaim = mode == ChargeMode::kNoReclaim;
  bool reclaimed = false;  // kNoRetry: once
  if (!cg) cg = st.root();
  // try_charge_memcg(): over the limit, reclaim from the group's own lists
  // (MAX_RECLAIM_RETRIES rounds while they make progress), then the
  // group's OOM killer, then fail.
  int retries = MAX_RECLAIM_RETRIES;
  bool oomed = false;
  for (;;) {
    const uint64_t max = cg->max.load(std::memory_order_relaxed);
    const int64_t now = cg->usage.fetch_add(1, std::memory_order_relaxed) + 1;
    if (max == kMemMax || static_cast<uint64_t>(now) <= max) {
      mem_cgroup_note_peak(cg, now);
      // Over memory.high: the charge stands, and the excess is reclaimed
      // now (mem_cgroup_handle_over_high's reclaim_high, no OOM kill).
      const uint64_t high = cg->high.load(std::memory_order_relaxed);
      if (high != kMemMax && static_cast<uint64_t>(now) > high) {
        cg->ev_high.fetch_add(1, std::memory_order_relaxed);
        ++nr_pages_over_high;  // the sleep is owed at the return to user space
        if (!no_reclaim && st.reclaim_ops->reclaim)
          st.reclaim_ops->reclaim(
              m, cg, std::max(static_cast<uint64_t>(now) - high, memcg_reclaim_batch(high)));
      }
      break;
    }
    cg->usage.fetch_sub(1, std::memory_order_relaxed);
    cg->ev_max.fetch_add(1, std::memory_order_relaxed);
    if (no_reclaim || !st.reclaim_ops->reclaim) return -ENOMEM;
    if (mode == ChargeMode::kNoRetry && reclaimed) return -ENOMEM;
    reclaimed = true;
    const uint64_t over = static_cast<uint64_t>(now) - max;
    if (st.reclaim_ops->reclaim(m, cg, std::max(over, memcg_reclaim_batch(max)))) continue;
    if (mode == ChargeMode::kNoRetry) return -ENOMEM;
    if (--retries > 0) continue;
    if (oomed || !st.reclaim_ops->oom) return -ENOMEM;
    cg->ev_oom.fetch_add(1, std::memory_order_relaxed);
    if (!st.reclaim_ops->oom(m, cg)) return -ENOMEM;
    oomed = true;  // one kill per charge; the victim's pages are gone now
    retries = MAX_RECLAIM_RETRIES;
  }
  if (st.page_memcg) st.page_memcg[m.page_to_pfn(page)].store(cg->id, std::memory_order_release);
  page->set_atomic(PG_memcg);
  return 0;
}

void mem_cgroup_uncharge(Machine& m, Page* page) {
  if (!page->test_and_clear(PG_memcg)) return;
  MemcgState& st = memcg_state(m);
  const uint16_t id = memcg_id_of(st, m, page);
  if (MemCgroup* cg = id ? st.group(id) : nullptr)
    cg->usage.fetch_sub(1, std::memory_order_relaxed);
  if (st.page_memcg) st.page_memcg[m.page_to_pfn(page)].store(0, std::memory_order_release);
}

namespace {
thread_local bool t_in_lru_fault = false;  // current->in_lru_fault
}  // namespace

LruGenFaultScope::LruGenFaultScope() : outer_(t_in_lru_fault) {
  t_in_lru_fault = true;
}
LruGenFaultScope::~LruGenFaultScope() {
  t_in_lru_fault = outer_;
}
bool lru_gen_in_fault() {
  return t_in_lru_fault;
}

void lru_cache_add(Machine& m, Page* page) {
  MemcgState& st = memcg_state(m);
  if (t_in_lru_fault && lru_gen_enabled(m) && !page->test(PG_unevictable))
    page->set_atomic(PG_active);
  get_page(page);
  LruBatch& b = this_batch(m, st);
  bool full;
  {
    SpinGuard g(b.lock);
    b.pages[b.nr++] = page;
    full = b.nr == kLruBatchSize;
  }
  if (full) drain_batch(m, b);
}

void lru_add_drain(Machine& m) {
  MemcgState& st = memcg_state(m);
  drain_batch(m, this_batch(m, st));
}

void lru_add_drain_all(Machine& m) {
  MemcgState& st = memcg_state(m);
  for (unsigned i = 0; i <= m.nr_cpus(); ++i) drain_batch(m, st.batches[i]);
}

void mark_page_accessed(Machine& m, Page* page) {
  if (lru_gen_enabled(m)) return lru_gen_inc_refs(page);
  // inactive,unreferenced -> inactive,referenced -> active,unreferenced.
  if (!page->test(PG_referenced)) {
    page->set_atomic(PG_referenced);
    return;
  }
  if (page->test(PG_active) || page->test(PG_unevictable)) return;
  if (!page->test(PG_lru)) return;  // in a batch or isolated: the flag says enough
  Lruvec& lv = folio_lruvec(m, page);
  SpinGuard g(lv.lru_lock);
  if (!page->test(PG_lru) || page->test(PG_active)) return;
  lruvec_del_page(lv, page);
  page->set_atomic(PG_active);
  page->clear_atomic(PG_referenced);
  lruvec_add_page(lv, page);
  lv.pgactivate.fetch_add(1, std::memory_order_relaxed);
  m.count_event(VmEvent::PGACTIVATE);
}

void folio_rotate_reclaimable(Machine& m, Page* page) {
  if (lru_gen_enabled(m)) {
    // lru_move_tail(): back to the oldest generation's tail, evicted next.
    if (!page->test(PG_lru) || page->test(PG_unevictable)) return;
    Lruvec& lv = folio_lruvec(m, page);
    SpinGuard g(lv.lru_lock);
    if (!page->test(PG_lru) || page_lru_gen(page) < 0) return;
    lru_gen_del_page(lv, page, true);
    lru_gen_add_page(lv, page, true);
    m.count_event(VmEvent::PGROTATED);
    return;
  }
  if (!page->test(PG_lru) || page->test(PG_active) || page->test(PG_unevictable)) return;
  Lruvec& lv = folio_lruvec(m, page);
  SpinGuard g(lv.lru_lock);
  if (!page->test(PG_lru) || page->test(PG_active)) return;  // isolated meanwhile
  lruvec_del_page(lv, page);
  lruvec_add_page_tail(lv, page);
  m.count_event(VmEvent::PGROTATED);
}

void putback_lru_page(Machine& m, Page* page) {
  {
    Lruvec& lv = folio_lruvec(m, page);
    SpinGuard g(lv.lru_lock);
    page->set_atomic(PG_lru);
    lruvec_add_page(lv, page);
  }
  put_page(m, page);
}

void set_memcg_reclaim_ops(Machine& m, MemcgReclaimOps ops) {
  *memcg_state(m).reclaim_ops = ops;
}

namespace {

// One node's lists: with every group's lruvec of the node locked, so the
// node's counters (changed only under those locks) are a true snapshot even
// while kswapd works.
std::string check_node(Machine& m, const std::vector<MemCgroup*>& groups, unsigned nid) {
  std::vector<Lruvec*> lvs;
  for (MemCgroup* cg : groups) lvs.push_back(&mem_cgroup_lruvec(cg, static_cast<int>(nid)));
  for (Lruvec* lv : lvs) lv->lru_lock.lock();
  std::string err;
  int64_t sum[NR_LRU_LISTS] = {};
  for (size_t g = 0; g < lvs.size() && err.empty(); ++g) {
    Lruvec& lv = *lvs[g];
    // Under lru_gen the classic lists hold only unevictable pages, and the
    // generations add to the active and inactive counts.
    uint64_t gen_n[NR_LRU_LISTS] = {};
    if (lru_gen_enabled(m)) err = lru_gen_check_lruvec(m, lv, gen_n);
    for (unsigned lru = 0; lru < NR_LRU_LISTS && err.empty(); ++lru) {
      uint64_t n = 0;
      if (lru_gen_enabled(m) && lru != LRU_UNEVICTABLE && !lv.lists[lru].empty())
        err = fmt::format("{} node {} list {}: not empty under lru_gen", mem_cgroup_name(groups[g]),
                          nid, lru);
      for (ListHead* p = lv.lists[lru].next; p != &lv.lists[lru] && err.empty(); p = p->next) {
        ++n;
        Page* page = container_of(p, &Page::lru);
        const uint64_t pfn = m.page_to_pfn(page);
        if (!page->test(PG_lru))
          err = fmt::format("pfn {:#x} on an LRU list without PG_lru", pfn);
        else if (page_lru(page) != lru)
          err = fmt::format("pfn {:#x} on list {} but its flags say {}", pfn, lru, page_lru(page));
        else if (&folio_lruvec(m, page) != &lv)
          err = fmt::format("pfn {:#x} on the lruvec of {} node {} but charged elsewhere", pfn,
                            mem_cgroup_name(groups[g]), nid);
        else if (!page->test(PG_memcg))
          err = fmt::format("pfn {:#x} on an LRU list but not charged", pfn);
      }
      n += gen_n[lru];
      if (err.empty() && n != lv.size(lru))
        err = fmt::format("{} node {} list {}: {} pages counted, {} on the list",
                          mem_cgroup_name(groups[g]), nid, lru, lv.size(lru), n);
      sum[lru] += static_cast<int64_t>(n);
    }
  }
  for (unsigned lru = 0; lru < NR_LRU_LISTS && err.empty(); ++lru) {
    const int64_t stat = m.node(static_cast<int>(nid)).stat[NR_LRU_BASE + lru].get();
    if (stat != sum[lru])
      err = fmt::format("node {} LRU {}: node stat {} but {} pages on the lists", nid, lru, stat,
                        sum[lru]);
  }
  for (Lruvec* lv : lvs) lv->lru_lock.unlock();
  return err;
}

}  // namespace

std::string lru_check(Machine& m) {
  const std::vector<MemCgroup*> groups = mem_cgroups(m);
  for (unsigned nid = 0; nid < m.nr_nodes(); ++nid)
    if (std::string err = check_node(m, groups, nid); !err.empty()) return err;
  return "";
}

}  // namespace mmkit
