// The multi-generational LRU's lists, counts, PID controller and shadow
// entries (include/linux/mm_inline.h, mm/swap.c, mm/vmscan.c,
// mm/workingset.c of Linux 6.1). See lru_gen.h; aging and eviction are the
// reclaim layer's (reclaim/lru_gen.h).
#include "memcg/lru_gen.h"

#include <chrono>

#include <fmt/format.h>

namespace mmkit {
namespace {

constexpr uint64_t MIN_LRU_BATCH = 64;  // BITS_PER_LONG

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void set_gen_bits(Page* page, int gen) {
  uint64_t old = page->flags.load(std::memory_order_relaxed);
  const uint64_t bits = static_cast<uint64_t>(gen + 1) << kLruGenShift;
  while (!page->flags.compare_exchange_weak(old, (old & ~kLruGenMask) | bits,
                                            std::memory_order_acq_rel)) {
  }
}

// lru_gen_update_size(): a page leaves generation old_gen (-1: none) and
// joins new_gen (-1: none).
void update_size(Lruvec& lv, unsigned type, int old_gen, int new_gen) {
  Machine& m = *lv.memcg->machine;
  auto lru_of = [&](unsigned gen) {
    return type * 2 + (lru_gen_is_active(lv, gen) ? 1u : 0u);  // LRU_INACTIVE_ANON + ...
  };
  if (old_gen >= 0) {
    const auto g = static_cast<unsigned>(old_gen);
    --lv.lrugen.nr_pages[g][type];
    const unsigned lru = lru_of(g);
    lv.nr[lru].store(lv.nr[lru].load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    m.node(lv.nid).stat[NR_LRU_BASE + lru].add(-1);
  }
  if (new_gen >= 0) {
    const auto g = static_cast<unsigned>(new_gen);
    ++lv.lrugen.nr_pages[g][type];
    const unsigned lru = lru_of(g);
    lv.nr[lru].store(lv.nr[lru].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    m.node(lv.nid).stat[NR_LRU_BASE + lru].add(1);
  }
}

// reset_ctrl_pos() with carryover (NR_HIST_GENS 1): the averages take half
// of the old average plus this generation's counts, which start over.
void reset_ctrl_pos(LruGen& g, unsigned type) {
  for (unsigned tier = 0; tier < MAX_NR_TIERS; ++tier) {
    const uint64_t refaulted = g.avg_refaulted[type][tier].load(std::memory_order_relaxed) +
                               g.refaulted[type][tier].exchange(0, std::memory_order_relaxed);
    g.avg_refaulted[type][tier].store(refaulted / 2, std::memory_order_relaxed);
    uint64_t total = g.avg_total[type][tier].load(std::memory_order_relaxed) +
                     g.evicted[type][tier].exchange(0, std::memory_order_relaxed);
    if (tier) total += g.protected_[type][tier - 1].exchange(0, std::memory_order_relaxed);
    g.avg_total[type][tier].store(total / 2, std::memory_order_relaxed);
  }
}

// Shadow layout, as workingset.cc's with the eviction age replaced by
// lru_gen's token: bit 0 tag, bit 1 "refs > 0" (Linux's workingset bit),
// bits 2-17 memcg id, bits 18-23 node, bits 24-63 (min_seq << 2) | (refs - 1).
constexpr unsigned kWorkingsetShift = 1, kMemcgShift = 2, kNodeShift = 18, kTokenShift = 24;
constexpr uint64_t kMemcgMask = 0xffff, kNodeMask = 0x3f;
constexpr uint64_t kTokenMask = (uint64_t{1} << (64 - kTokenShift)) - 1;

}  // namespace

bool lru_gen_is_active(const Lruvec& lv, unsigned gen) {
  const uint64_t max_seq = lv.lrugen.max_seq.load(std::memory_order_relaxed);
  return gen == lru_gen_from_seq(max_seq) || gen == lru_gen_from_seq(max_seq - 1);
}

void lru_gen_init_lruvec(Lruvec& lv) {
  LruGen& g = lv.lrugen;
  for (auto& gen : g.lists)
    for (ListHead& l : gen) l.init();
  // lru_gen_init_lruvec(): max_seq MIN_NR_GENS + 1 over min_seq 0 is
  // MAX_NR_GENS generations; mmkit starts with MIN_NR_GENS (min_seq
  // max_seq - 1), so the first eviction ages first.
  const uint64_t max_seq = MIN_NR_GENS + 1;
  g.max_seq.store(max_seq);
  for (auto& s : g.min_seq) s.store(max_seq - MIN_NR_GENS + 1);
  const uint64_t now = now_ms();
  for (auto& t : g.timestamps) t.store(now);
}

void lru_gen_add_page(Lruvec& lv, Page* page, bool reclaiming) {
  LruGen& g = lv.lrugen;
  const unsigned type = page_lru_type(page);
  const uint64_t max_seq = g.max_seq.load(std::memory_order_relaxed);
  const uint64_t min_seq = g.min_seq[type].load(std::memory_order_relaxed);
  uint64_t seq;
  if (page->test(PG_active))
    seq = max_seq;
  else if ((type == LRU_GEN_ANON && !page->test(PG_swapcache)) ||
           (page->test(PG_reclaim) && (page->test(PG_dirty) || page->test(PG_writeback))))
    seq = max_seq - 1;
  else if (reclaiming || min_seq + MIN_NR_GENS >= max_seq)
    seq = min_seq;
  else
    seq = min_seq + 1;
  const unsigned gen = lru_gen_from_seq(seq);
  page->clear_atomic(PG_active);
  set_gen_bits(page, static_cast<int>(gen));
  update_size(lv, type, -1, static_cast<int>(gen));
  if (reclaiming)
    g.lists[gen][type].add_tail(&page->lru);
  else
    g.lists[gen][type].add(&page->lru);
}

void lru_gen_del_page(Lruvec& lv, Page* page, bool reclaiming) {
  const int gen = page_lru_gen(page);
  const unsigned type = page_lru_type(page);
  ListHead::del(&page->lru);
  update_size(lv, type, gen, -1);
  const bool active = !reclaiming && lru_gen_is_active(lv, static_cast<unsigned>(gen));
  set_gen_bits(page, -1);
  if (active) page->set_atomic(PG_active);
}

void lru_gen_move_page(Lruvec& lv, Page* page, unsigned gen, bool tail) {
  const int old = page_lru_gen(page);
  const unsigned type = page_lru_type(page);
  ListHead::del(&page->lru);
  update_size(lv, type, old, static_cast<int>(gen));
  set_gen_bits(page, static_cast<int>(gen));
  if (tail)
    lv.lrugen.lists[gen][type].add_tail(&page->lru);
  else
    lv.lrugen.lists[gen][type].add(&page->lru);
}

void lru_gen_inc_refs(Page* page) {
  if (page->test(PG_unevictable)) return;
  if (!page->test(PG_referenced)) {
    page->set_atomic(PG_referenced);
    return;
  }
  if (!page->test(PG_workingset)) {
    page->set_atomic(PG_workingset);
    return;
  }
  uint64_t old = page->flags.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & kLruRefsMask) == kLruRefsMask) return;
    const uint64_t refs = (old & kLruRefsMask) + (uint64_t{1} << kLruRefsShift);
    if (page->flags.compare_exchange_weak(old, (old & ~kLruRefsMask) | refs,
                                          std::memory_order_acq_rel))
      return;
  }
}

void lru_gen_inc_max_seq(Lruvec& lv) {
  LruGen& g = lv.lrugen;
  const uint64_t max_seq = g.max_seq.load(std::memory_order_relaxed);
  // inc_min_seq(): at MAX_NR_GENS, the oldest generation of a type joins
  // the next one (at its tail: its pages are the older).
  for (unsigned type = 0; type < 2; ++type) {
    if (lru_gen_nr_gens(g, type) < MAX_NR_GENS) continue;
    const uint64_t min_seq = g.min_seq[type].load(std::memory_order_relaxed);
    const unsigned old_gen = lru_gen_from_seq(min_seq), new_gen = lru_gen_from_seq(min_seq + 1);
    ListHead& from = g.lists[old_gen][type];
    while (!from.empty()) {
      Page* page = container_of(from.next, &Page::lru);
      lru_gen_move_page(lv, page, new_gen, true);
    }
    reset_ctrl_pos(g, type);
    g.min_seq[type].store(min_seq + 1, std::memory_order_relaxed);
  }
  // The generation max_seq - 1 becomes the third youngest: inactive.
  const unsigned prev = lru_gen_from_seq(max_seq - 1);
  Machine& m = *lv.memcg->machine;
  for (unsigned type = 0; type < 2; ++type) {
    const int64_t delta = g.nr_pages[prev][type];
    if (!delta) continue;
    const unsigned inactive = type * 2, active = type * 2 + 1;
    lv.nr[inactive].store(lv.nr[inactive].load(std::memory_order_relaxed) + delta,
                          std::memory_order_relaxed);
    lv.nr[active].store(lv.nr[active].load(std::memory_order_relaxed) - delta,
                        std::memory_order_relaxed);
    m.node(lv.nid).stat[NR_LRU_BASE + inactive].add(delta);
    m.node(lv.nid).stat[NR_LRU_BASE + active].add(-delta);
  }
  g.timestamps[lru_gen_from_seq(max_seq + 1)].store(now_ms(), std::memory_order_relaxed);
  g.max_seq.store(max_seq + 1, std::memory_order_release);
}

bool lru_gen_try_inc_min_seq(Lruvec& lv) {
  LruGen& g = lv.lrugen;
  bool success = false;
  const uint64_t max_seq = g.max_seq.load(std::memory_order_relaxed);
  for (unsigned type = 0; type < 2; ++type) {
    uint64_t min_seq = g.min_seq[type].load(std::memory_order_relaxed);
    const uint64_t start = min_seq;
    while (min_seq + MIN_NR_GENS <= max_seq && g.lists[lru_gen_from_seq(min_seq)][type].empty())
      ++min_seq;
    if (min_seq == start) continue;
    reset_ctrl_pos(g, type);
    g.min_seq[type].store(min_seq, std::memory_order_relaxed);
    success = true;
  }
  return success;
}

CtrlPos lru_gen_read_ctrl_pos(const Lruvec& lv, unsigned type, unsigned tier, unsigned gain) {
  const LruGen& g = lv.lrugen;
  CtrlPos pos;
  pos.refaulted = g.avg_refaulted[type][tier].load(std::memory_order_relaxed) +
                  g.refaulted[type][tier].load(std::memory_order_relaxed);
  pos.total = g.avg_total[type][tier].load(std::memory_order_relaxed) +
              g.evicted[type][tier].load(std::memory_order_relaxed);
  if (tier) pos.total += g.protected_[type][tier - 1].load(std::memory_order_relaxed);
  pos.gain = gain;
  return pos;
}

bool lru_gen_positive_ctrl_err(const CtrlPos& sp, const CtrlPos& pv) {
  return pv.refaulted < MIN_LRU_BATCH || pv.refaulted * (sp.total + MIN_LRU_BATCH) * sp.gain <=
                                             (sp.refaulted + 1) * pv.total * pv.gain;
}

unsigned lru_gen_tier_idx(const Lruvec& lv, unsigned type) {
  // A larger gain (1:2) for the other tiers leaves a margin: any of them
  // has at least twice the first tier's refaults per access.
  const CtrlPos sp = lru_gen_read_ctrl_pos(lv, type, 0, 1);
  unsigned tier = 1;
  for (; tier < MAX_NR_TIERS; ++tier)
    if (!lru_gen_positive_ctrl_err(sp, lru_gen_read_ctrl_pos(lv, type, tier, 2))) break;
  return tier - 1;
}

unsigned lru_gen_type_to_scan(const Lruvec& lv, unsigned swappiness, unsigned* tier_idx) {
  const unsigned gain[2] = {swappiness, 200 - swappiness};
  const unsigned type =
      lru_gen_positive_ctrl_err(lru_gen_read_ctrl_pos(lv, LRU_GEN_ANON, 0, gain[LRU_GEN_ANON]),
                                lru_gen_read_ctrl_pos(lv, LRU_GEN_FILE, 0, gain[LRU_GEN_FILE]))
          ? 1u
          : 0u;
  const CtrlPos sp = lru_gen_read_ctrl_pos(lv, !type, 0, gain[!type]);
  unsigned tier = 1;
  for (; tier < MAX_NR_TIERS; ++tier)
    if (!lru_gen_positive_ctrl_err(sp, lru_gen_read_ctrl_pos(lv, type, tier, gain[type]))) break;
  *tier_idx = tier - 1;
  return type;
}

uintptr_t lru_gen_eviction(Machine& m, Page* page) {
  Lruvec& lv = folio_lruvec(m, page);
  const unsigned type = page_lru_type(page);
  const unsigned refs = page_lru_refs(page);
  const unsigned tier = lru_tier_from_refs(refs);
  const uint64_t min_seq = lv.lrugen.min_seq[type].load(std::memory_order_relaxed);
  const uint64_t token = (min_seq << kLruRefsWidth) | (refs ? refs - 1 : 0);
  lv.lrugen.evicted[type][tier].fetch_add(1, std::memory_order_relaxed);
  return static_cast<uintptr_t>((token & kTokenMask) << kTokenShift |
                                (static_cast<uint64_t>(lv.nid) & kNodeMask) << kNodeShift |
                                (uint64_t{lv.memcg->id} & kMemcgMask) << kMemcgShift |
                                (refs ? uint64_t{1} << kWorkingsetShift : 0) | 1);
}

void lru_gen_refault(Machine& m, Page* page, uintptr_t shadow) {
  const uint64_t v = shadow;
  const uint64_t token = v >> kTokenShift;
  const int nid = static_cast<int>((v >> kNodeShift) & kNodeMask);
  const auto memcg_id = static_cast<uint16_t>((v >> kMemcgShift) & kMemcgMask);
  const bool workingset = (v >> kWorkingsetShift) & 1;
  const unsigned type = page_lru_type(page);
  Lruvec& lv = folio_lruvec(m, page);
  // Only a refault into the lruvec it left, while the generation it was
  // evicted from is still the oldest, says anything about its tier.
  if (nid != lv.nid || memcg_id != lv.memcg->id) return;
  const uint64_t min_seq = lv.lrugen.min_seq[type].load(std::memory_order_relaxed);
  if ((token >> kLruRefsWidth) != (min_seq & (kTokenMask >> kLruRefsWidth))) return;
  const unsigned refs =
      static_cast<unsigned>(token & ((1u << kLruRefsWidth) - 1)) + (workingset ? 1 : 0);
  const unsigned tier = lru_tier_from_refs(refs);
  lv.lrugen.refaulted[type][tier].fetch_add(1, std::memory_order_relaxed);
  auto item = [type](NodeStat anon) {  // the _FILE item follows each _ANON one
    return static_cast<unsigned>(anon) + (type == LRU_GEN_FILE ? 1 : 0);
  };
  m.node(lv.nid).stat[item(NodeStat::WORKINGSET_REFAULT_ANON)].add(1);
  lv.workingset_refault[type].fetch_add(1, std::memory_order_relaxed);
  // A tier the controller protects refaults faster than the first: the
  // page comes back young (newer kernels' lru_gen_refault activation).
  if (tier > 0 && tier > lru_gen_tier_idx(lv, type)) {
    page->set_atomic(PG_active);
    m.node(lv.nid).stat[item(NodeStat::WORKINGSET_ACTIVATE_ANON)].add(1);
    lv.workingset_activate[type].fetch_add(1, std::memory_order_relaxed);
  }
  if (refs == (1u << kLruRefsWidth)) {
    page->set_atomic(PG_workingset);
    m.node(lv.nid).stat[item(NodeStat::WORKINGSET_RESTORE_ANON)].add(1);
    lv.workingset_restore[type].fetch_add(1, std::memory_order_relaxed);
  }
}

std::string lru_gen_check_lruvec(Machine& m, Lruvec& lv, uint64_t nr_lists[NR_LRU_LISTS]) {
  LruGen& g = lv.lrugen;
  const uint64_t max_seq = g.max_seq.load(std::memory_order_relaxed);
  for (unsigned type = 0; type < 2; ++type) {
    const uint64_t min_seq = g.min_seq[type].load(std::memory_order_relaxed);
    if (min_seq > max_seq || max_seq - min_seq + 1 < MIN_NR_GENS ||
        max_seq - min_seq + 1 > MAX_NR_GENS)
      return fmt::format("node {} type {}: min_seq {} max_seq {}", lv.nid, type, min_seq, max_seq);
    for (unsigned gen = 0; gen < MAX_NR_GENS; ++gen) {
      int64_t n = 0;
      for (ListHead* p = g.lists[gen][type].next; p != &g.lists[gen][type]; p = p->next) {
        ++n;
        Page* page = container_of(p, &Page::lru);
        const uint64_t pfn = m.page_to_pfn(page);
        if (!page->test(PG_lru))
          return fmt::format("pfn {:#x} on generation {} without PG_lru", pfn, gen);
        if (page_lru_gen(page) != static_cast<int>(gen))
          return fmt::format("pfn {:#x} on generation {} but its flags say {}", pfn, gen,
                             page_lru_gen(page));
        if (page_lru_type(page) != type)
          return fmt::format("pfn {:#x} on type {} lists but is of the other type", pfn, type);
        if (page->test(PG_active) || page->test(PG_unevictable))
          return fmt::format("pfn {:#x} on generation {} with PG_active or PG_unevictable", pfn,
                             gen);
        if (&folio_lruvec(m, page) != &lv)
          return fmt::format("pfn {:#x} on a generation list of another lruvec", pfn);
        if (!page->test(PG_memcg))
          return fmt::format("pfn {:#x} on a generation list but not charged", pfn);
      }
      if (n != g.nr_pages[gen][type])
        return fmt::format("node {} gen {} type {}: {} pages counted, {} on the list", lv.nid, gen,
                           type, g.nr_pages[gen][type], n);
      bool live = false;
      for (uint64_t seq = min_seq; seq <= max_seq; ++seq) live |= lru_gen_from_seq(seq) == gen;
      if (!live && n)
        return fmt::format("node {} gen {} type {}: {} pages outside [min_seq, max_seq]", lv.nid,
                           gen, type, n);
      nr_lists[type * 2 + (lru_gen_is_active(lv, gen) ? 1 : 0)] += static_cast<uint64_t>(n);
    }
  }
  return "";
}

}  // namespace mmkit
