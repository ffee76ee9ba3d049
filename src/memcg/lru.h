// The LRU lists (include/linux/mmzone.h struct lruvec; mm/swap.c) and
// memcg charging (mm/memcontrol.c).
//
// Every memory cgroup keeps one lruvec per node: five lists (inactive and
// active anon, inactive and active file, unevictable), their sizes, and the
// cost of recent reclaim that get_scan_count() balances by. A page is on the
// lruvec of the group it is charged to and of its own node.
//
//   mem_cgroup_charge(m, page, cg)  charges a new user page (PG_memcg); over
//                                   memory.max the group reclaims from its
//                                   own lists, then OOM-kills inside itself
//   lru_cache_add(m, page)          queues a new page for its inactive (or,
//                                   with PG_active, active) list through the
//                                   calling CPU's batch, so a fault does not
//                                   take the LRU lock per page
//   lru_add_drain / _all            empties one CPU's batch / every batch
//   mark_page_accessed(m, page)     the reference ladder of mm/swap.c
//
// A page's last put_page() takes it off its list and uncharges it
// (Machine::page_release). Reclaim isolates pages from the lists under
// lru_lock with a reference (get_page_unless_zero) and PG_lru cleared, and
// puts them back with putback_lru_page().
//
// Locking: lru_lock (a spinlock per lruvec) guards the lists, PG_lru and
// PG_active of pages on them, and the sizes. A CPU's batch has its own lock,
// taken only by that CPU and by drainers. Lock order: batch lock, lru_lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "base/list.h"
#include "base/spinlock.h"
#include "memcg/memcg_state.h"
#include "page_alloc/gfp.h"
#include "phys/machine.h"

namespace mmkit {

enum LruList : unsigned {
  LRU_INACTIVE_ANON,
  LRU_ACTIVE_ANON,
  LRU_INACTIVE_FILE,
  LRU_ACTIVE_FILE,
  LRU_UNEVICTABLE,
  NR_LRU_LISTS
};
inline constexpr bool is_active_lru(unsigned lru) {
  return lru == LRU_ACTIVE_ANON || lru == LRU_ACTIVE_FILE;
}
inline constexpr bool is_file_lru(unsigned lru) {
  return lru == LRU_INACTIVE_FILE || lru == LRU_ACTIVE_FILE;
}

// The multi-generational LRU of one lruvec (include/linux/mmzone.h
// lru_gen_folio; see memcg/lru_gen.h). Sequence numbers only grow; a
// generation's lists are lists[seq % MAX_NR_GENS][type], type 0 anon and 1
// file, the youngest generation max_seq, the oldest of each type
// min_seq[type]. Eviction takes the oldest from the tail; MIN_NR_GENS
// generations always remain, so aging must make a third before eviction.
// Written under lru_lock; the sequence numbers and the controller's
// counters are also read without it (atomics).
inline constexpr unsigned MIN_NR_GENS = 2, MAX_NR_GENS = 4, MAX_NR_TIERS = 4;
inline constexpr unsigned LRU_GEN_ANON = 0, LRU_GEN_FILE = 1;
struct LruGen {
  std::atomic<uint64_t> max_seq{MIN_NR_GENS + 1};
  std::atomic<uint64_t> min_seq[2] = {};
  ListHead lists[MAX_NR_GENS][2];
  int64_t nr_pages[MAX_NR_GENS][2] = {};
  std::atomic<uint64_t> timestamps[MAX_NR_GENS] = {};  // each generation's birth (ms)
  // The PID controller's inputs per type and tier (NR_HIST_GENS 1): the
  // averages carried over from earlier generations, and this one's
  // evictions, refaults and pages protected (moved up a generation) by tier.
  std::atomic<uint64_t> avg_refaulted[2][MAX_NR_TIERS] = {};
  std::atomic<uint64_t> avg_total[2][MAX_NR_TIERS] = {};
  std::atomic<uint64_t> protected_[2][MAX_NR_TIERS - 1] = {};
  std::atomic<uint64_t> evicted[2][MAX_NR_TIERS] = {};
  std::atomic<uint64_t> refaulted[2][MAX_NR_TIERS] = {};
};

struct Lruvec {
  MemCgroup* memcg = nullptr;
  int nid = 0;
  SpinLock lru_lock;
  ListHead lists[NR_LRU_LISTS];
  std::atomic<uint64_t> nr[NR_LRU_LISTS] = {};  // written under lru_lock
  // lru_note_cost(): pages scanned-and-rotated or refaulted, per type; what
  // get_scan_count() balances anon against file by (anon 0, file 1).
  std::atomic<uint64_t> cost[2] = {};
  // memory.stat events of this lruvec.
  std::atomic<uint64_t> pgscan{0}, pgsteal{0}, pgactivate{0}, pgdeactivate{0}, pgrefill{0};
  // Evictions and refault activations so far (memcg/workingset.h), and the
  // workingset_* events of memory.stat, per type (anon 0, file 1).
  std::atomic<uint64_t> nonresident_age{0};
  std::atomic<uint64_t> workingset_refault[2] = {}, workingset_activate[2] = {},
                        workingset_restore[2] = {};
  LruGen lrugen;  // used when the machine boots with lru_gen = true

  uint64_t size(unsigned lru) const { return nr[lru].load(std::memory_order_relaxed); }
};

// The lruvec of `cg` on node `nid`.
Lruvec& mem_cgroup_lruvec(MemCgroup* cg, int nid);
// The group a page is charged to (the root when it is not charged).
MemCgroup* page_memcg(Machine& m, const Page* page);
// The lruvec a page belongs on: its group's, on its node.
Lruvec& folio_lruvec(Machine& m, const Page* page);
// __mod_lruvec_page_state(): a node statistic of `page` and, for the items
// memory.stat counts per group (NR_FILE_DIRTY, NR_WRITEBACK, NR_SHMEM,
// NR_FILE_MAPPED), the page's group's. The page must stay charged to that
// group while it counts there (page-cache pages are charged before they
// enter the cache and uncharged after they are freed).
void mod_lruvec_page_state(Machine& m, Page* page, NodeStat item, int64_t n);

// The list a page goes on by its flags (folio_lru_list).
inline unsigned page_lru(const Page* page) {
  if (page->test(PG_unevictable)) return LRU_UNEVICTABLE;
  const unsigned base = page->test(PG_swapbacked) ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE;
  return base + (page->test(PG_active) ? 1 : 0);
}

// Adds / removes a page on its lruvec's list; lru_lock held, PG_lru set by
// the caller after add and cleared before del.
void lruvec_add_page(Lruvec& lv, Page* page);
void lruvec_add_page_tail(Lruvec& lv, Page* page);
void lruvec_del_page(Lruvec& lv, Page* page);

// 0, or -ENOMEM when the group stays over memory.max after reclaim and its
// OOM killer (the fault then fails with VM_FAULT_OOM). `cg` null: the root.
// kNoReclaim (swap and shmem readahead): a charge over the limit fails at
// once. kNoRetry (__GFP_NORETRY, page-cache readahead): one round of the
// group's reclaim, then -ENOMEM; never the OOM killer.
enum class ChargeMode { kNormal, kNoRetry, kNoReclaim };
int mem_cgroup_charge(Machine& m, Page* page, MemCgroup* cg, ChargeMode mode);
inline int mem_cgroup_charge(Machine& m, Page* page, MemCgroup* cg, bool no_reclaim = false) {
  return mem_cgroup_charge(m, page, cg, no_reclaim ? ChargeMode::kNoReclaim : ChargeMode::kNormal);
}
// Drops a page's charge (the release hook does this for freed pages).
void mem_cgroup_uncharge(Machine& m, Page* page);

// folio_add_lru(). With the multi-generational LRU, a page added while its
// thread handles a page fault (LruGenFaultScope) is marked active and goes
// to the youngest generation: a faulted page was just used, and readahead
// in the fault path is assumed to be needed soon (mm/swap.c).
void lru_cache_add(Machine& m, Page* page);
// lru_gen_enter_fault()/lru_gen_exit_fault() (mm/memory.c): the calling
// thread handles a page fault for the scope's lifetime.
class LruGenFaultScope {
 public:
  LruGenFaultScope();
  ~LruGenFaultScope();
  LruGenFaultScope(const LruGenFaultScope&) = delete;
  LruGenFaultScope& operator=(const LruGenFaultScope&) = delete;

 private:
  bool outer_;
};
bool lru_gen_in_fault();
void lru_add_drain(Machine& m);
void lru_add_drain_all(Machine& m);
void mark_page_accessed(Machine& m, Page* page);
// folio_rotate_reclaimable(): a page on an inactive list whose writeback
// reclaim was waiting for moves to the list's tail (PGROTATED).
void folio_rotate_reclaimable(Machine& m, Page* page);
// Puts an isolated page back on its list and drops the isolation reference.
void putback_lru_page(Machine& m, Page* page);

// What the reclaim layer gives the memcg layer at boot: reclaim from a
// group's own lists, and the group's OOM killer.
struct MemcgReclaimOps {
  // try_to_free_mem_cgroup_pages(): pages reclaimed (nr_pages wanted).
  uint64_t (*reclaim)(Machine& m, MemCgroup* cg, uint64_t nr_pages) = nullptr;
  // mem_cgroup_out_of_memory(): true when a victim was killed.
  bool (*oom)(Machine& m, MemCgroup* cg) = nullptr;
};
void set_memcg_reclaim_ops(Machine& m, MemcgReclaimOps ops);

// Proves the lists' invariants: every page on a list has PG_lru, is on the
// list page_lru() names, of the lruvec folio_lruvec() names; PG_active iff
// on an active list; sizes equal lengths; node stats equal the sums; each
// group's usage at least its pages on lists. Other CPUs must be quiet.
std::string lru_check(Machine& m);

}  // namespace mmkit
