// The multi-generational LRU's lists (Linux 6.1+ include/linux/mm_inline.h
// lru_gen_add_folio/lru_gen_del_folio, mm/swap.c folio_inc_refs,
// mm/vmscan.c inc_max_seq/inc_min_seq and the PID controller,
// mm/workingset.c lru_gen_eviction/lru_gen_refault).
//
// A machine booted with lru_gen = true keeps every evictable page of a
// lruvec on the generation list its flags name (gen + 1 in kLruGenMask)
// instead of the active and inactive lists; unevictable pages stay on
// LRU_UNEVICTABLE. The classic entry points (lruvec_add_page,
// lruvec_del_page, mark_page_accessed, folio_rotate_reclaimable,
// putback_lru_page) dispatch here, so callers do not know the policy.
//
// Counting, as Linux's lru_gen_update_size: Lruvec::nr[] and the node's
// NR_*_ANON/FILE items count the two youngest generations as active and
// the others as inactive, so meminfo adds up under both policies:
//   nr[type*2 + 1] = sum of nr_pages[gen][type] for gen in {max_seq, max_seq-1}
//   nr[type*2]     = sum of nr_pages[gen][type] for the other generations
//
// Tiers: a page's refs (LRU_REFS bits plus PG_workingset) count its
// accesses through file descriptors; its tier is order_base_2(refs + 1).
// Eviction protects the tiers whose refault rate the PID controller finds
// above the first tier's (positive_ctrl_err), moving them up a generation.
#pragma once

#include <cstdint>

#include "memcg/lru.h"

namespace mmkit {

inline bool lru_gen_enabled(const Machine& m) {
  return m.config().lru_gen;
}
inline unsigned lru_gen_from_seq(uint64_t seq) {
  return static_cast<unsigned>(seq % MAX_NR_GENS);
}
// The generation in a page's flags, or -1 when it is on no generation list.
inline int page_lru_gen(const Page* page) {
  return static_cast<int>((page->flags.load(std::memory_order_relaxed) & kLruGenMask) >>
                          kLruGenShift) -
         1;
}
inline unsigned page_lru_type(const Page* page) {
  return page->test(PG_swapbacked) ? LRU_GEN_ANON : LRU_GEN_FILE;
}
// folio_lru_refs(): accesses beyond the first (LRU_REFS plus PG_workingset).
inline unsigned page_lru_refs(const Page* page) {
  const uint64_t f = page->flags.load(std::memory_order_relaxed);
  return static_cast<unsigned>((f & kLruRefsMask) >> kLruRefsShift) + (f >> PG_workingset & 1);
}
// lru_tier_from_refs(): order_base_2(refs + 1).
inline unsigned lru_tier_from_refs(unsigned refs) {
  unsigned t = 0;
  while ((1u << t) < refs + 1) ++t;
  return t;
}
// Generations of a type now (max_seq - min_seq + 1).
inline unsigned lru_gen_nr_gens(const LruGen& g, unsigned type) {
  return static_cast<unsigned>(g.max_seq.load(std::memory_order_relaxed) -
                               g.min_seq[type].load(std::memory_order_relaxed) + 1);
}
// lru_gen_is_active(): one of the two youngest generations.
bool lru_gen_is_active(const Lruvec& lv, unsigned gen);

void lru_gen_init_lruvec(Lruvec& lv);
// lru_gen_add_folio(): onto a generation chosen by the page's state
// (PG_active: the youngest; anonymous outside the swap cache, or waiting
// for writeback with PG_reclaim: the second youngest; from reclaim
// (`reclaiming`): the oldest's tail; else the oldest, or the one after it
// when there are more than MIN_NR_GENS). Clears PG_active. lru_lock held.
void lru_gen_add_page(Lruvec& lv, Page* page, bool reclaiming);
// lru_gen_del_folio(): off its list, gen bits cleared; outside reclaim a
// page of an active generation keeps PG_active, so it comes back young.
void lru_gen_del_page(Lruvec& lv, Page* page, bool reclaiming);
// Moves a page on its lruvec to generation `gen` (at the head, or the tail
// when `tail`), keeping the counts. lru_lock held.
void lru_gen_move_page(Lruvec& lv, Page* page, unsigned gen, bool tail);
// folio_inc_refs(): mark_page_accessed's ladder under lru_gen.
void lru_gen_inc_refs(Page* page);
// inc_max_seq(): a new youngest generation (born now); when MAX_NR_GENS
// exist already, the oldest is folded into the next (inc_min_seq). The
// generation that stops being one of the two youngest moves its counts from
// active to inactive. lru_lock held.
void lru_gen_inc_max_seq(Lruvec& lv);
// try_to_inc_min_seq(): drops empty oldest generations (never below
// MIN_NR_GENS), carrying the controller's averages over. lru_lock held.
bool lru_gen_try_inc_min_seq(Lruvec& lv);

// The PID controller (mm/vmscan.c read_ctrl_pos, positive_ctrl_err).
struct CtrlPos {
  uint64_t refaulted = 0, total = 0;
  unsigned gain = 0;
};
CtrlPos lru_gen_read_ctrl_pos(const Lruvec& lv, unsigned type, unsigned tier, unsigned gain);
// True when pv has few refaults (< MIN_LRU_BATCH) or a refault rate no
// higher than sp's, weighed by the gains.
bool lru_gen_positive_ctrl_err(const CtrlPos& sp, const CtrlPos& pv);
// get_tier_idx(): the highest tier eviction may take (higher ones refault
// at least twice as often as the first and are protected).
unsigned lru_gen_tier_idx(const Lruvec& lv, unsigned type);
// get_type_to_scan(): anon or file by swappiness and the first tiers'
// refault rates; *tier the highest tier of it to evict.
unsigned lru_gen_type_to_scan(const Lruvec& lv, unsigned swappiness, unsigned* tier);

// lru_gen_eviction(): the shadow entry of an evicted page: the oldest
// sequence number of its type and its refs (the eviction is counted in its
// tier).
uintptr_t lru_gen_eviction(Machine& m, Page* page);
// lru_gen_refault(): counts the refault in the tier of its refs when the
// page comes back within the generation it left; a tier the controller
// protects comes back into the youngest generation (PG_active,
// workingset_activate), and refs at their maximum count as a restore.
void lru_gen_refault(Machine& m, Page* page, uintptr_t shadow);

// The lru_gen half of lru_check() for one lruvec (lru_lock held): each
// generation list's pages carry its gen, type and lruvec; nr_pages are the
// lengths; generations outside [min_seq, max_seq] are empty; nr[] is as
// the counting rule above says. `nr_lists` gets the list lengths by
// NR_LRU_LISTS index (active/inactive by the rule).
std::string lru_gen_check_lruvec(Machine& m, Lruvec& lv, uint64_t nr_lists[NR_LRU_LISTS]);

}  // namespace mmkit
