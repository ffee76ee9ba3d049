// The page-fault handler (arch/x86/mm/fault.c do_user_addr_fault and
// access_error; mm/memory.c handle_mm_fault, do_anonymous_page,
// do_shared_fault, do_wp_page, wp_page_reuse, wp_page_copy; mm/mmap.c
// expand_downwards and acct_stack_growth).
//
//   no VMA at or above addr, or below a non-GROWSDOWN VMA  -> SEGV_MAPERR
//   the VMA forbids the access                             -> SEGV_ACCERR
//   not present, read, private   -> the zero page, read-only (_PAGE_SPECIAL)
//   not present, write, private  -> a zeroed GFP_HIGHUSER_MOVABLE page,
//                                   writable and dirty (NR_ANON_PAGES)
//   not present, file or shmem   -> do_file_fault (vm/file_map.cc)
//   present, write, read-only    -> do_wp_page: reuse the page when this is
//                                   its only mapping and nobody else holds a
//                                   reference, else copy it (the zero page
//                                   is always "copied" to a zeroed page);
//                                   the old entry is cleared and flushed
//                                   before the new one is set.
// A fault that finds the entry already allowing the access was spurious (a
// stale TLB entry): the page is flushed from this CPU and the access retried.
//
// pgfault and the mm's min_flt count handled faults; SIGSEGV and OOM
// returns are not counted, as mm_account_fault() skips them.
#include <cstring>
#include <thread>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process_state.h"
#include "vm/rlimit.h"
#include "vm/rmap.h"
#include "vm/vm_state.h"

namespace mmkit {
namespace mm_internal {
namespace {

FaultResult segv(uint64_t addr, int code, const char* reason) {
  return {FaultStatus::kSigsegv, code, addr, reason};
}

FaultResult oom(uint64_t addr) {
  return {FaultStatus::kOom, 0, addr, "out of memory"};
}

// expand_downwards(): grows a GROWSDOWN VMA down to `addr`.
bool expand_stack(MmStruct* mm, VmArea* vma, uint64_t addr) {
  addr &= ~(PAGE_SIZE - 1);
  if (addr < mmap_min_addr) return false;
  // Enforce stack_guard_gap below the stack (unless the neighbour is a stack too).
  if (VmArea* prev = vma_prev(mm, vma)) {
    if (prev->vm_end > addr) return false;
    if (!(prev->vm_flags & VM_GROWSDOWN) && (prev->vm_flags & VM_ACCESS_FLAGS) &&
        addr - prev->vm_end < stack_guard_gap)
      return false;
  }
  const uint64_t size = vma->vm_end - addr;
  const int64_t grow = static_cast<int64_t>((vma->vm_start - addr) >> PAGE_SHIFT);
  // acct_stack_growth(): RLIMIT_AS (may_expand_vm), RLIMIT_STACK, then the
  // commit charge.
  if (!may_expand_vm(mm, vma->vm_flags, static_cast<uint64_t>(grow))) return false;
  if (size > kStackRlimit) return false;
  if (static_cast<uint64_t>(grow) > vma->vm_pgoff) return false;
  // Charged only when the VMA is accounted, so that its unmap gives the
  // charge back (an mprotect can have dropped VM_ACCOUNT from the stack).
  if ((vma->vm_flags & VM_ACCOUNT) && vm_enough_memory_mm(mm, grow)) return false;
  vm_stat_account(mm, vma->vm_flags, grow);
  std::lock_guard pt(mm->page_table_lock);  // reclaim reads the bounds under it
  vma->vm_start = addr;
  vma->vm_pgoff -= static_cast<uint64_t>(grow);
  return true;
}

// x86's access_error(), with the instruction fetch of a non-exec VMA
// refused at once (the NX bit would refuse it on the retry).
bool access_error(const Machine& m, const VmArea* vma, Access access) {
  switch (access) {
    case Access::kWrite:
      return !(vma->vm_flags & VM_WRITE);
    case Access::kExec:
      if (m.arch() == Arch::x86_64) return !(vma->vm_flags & VM_EXEC);
      return !(vma->vm_flags & VM_ACCESS_FLAGS);
    case Access::kRead:
      return !(vma->vm_flags & VM_ACCESS_FLAGS);
  }
  return true;
}

// clear_user_highpage(): zeroes a page about to be mapped to user space,
// with cached stores as x86 Linux's clear_page_erms does (a string store,
// arch/x86/lib/clear_page_64.S). A frame freed moments ago is still in the
// cache and zeroes in a fraction of the time; a cold one costs what the
// memory's write bandwidth allows whichever stores are used (non-temporal
// ones save a tenth there and lose twofold on hot frames; see
// docs/PERFORMANCE.md, vm/clear_page_cold). The mapping entry is set after
// this with a release store, which orders the zeroes before it.
void clear_user_highpage(Machine& m, Page* page) {
  std::memset(m.phys_window(m.page_to_pfn(page)), 0, PAGE_SIZE);
}

void anon_vma_prepare(MmStruct* mm, VmArea* vma) {
  if (!vma->anon_vma)
    anon_vma_assign(vma, mm->state->next_anon_vma.fetch_add(1, std::memory_order_relaxed));
}

uint64_t linear_page_index(const VmArea* vma, uint64_t addr) {
  return vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
}

// A new private page's allocation: charged to the mm's memory cgroup (which
// may reclaim from the group's own lists or OOM-kill in it), swap-backed.
Page* alloc_anon_page(MmStruct* mm, gfp_t gfp) {
  Machine& m = *mm->machine;
  Page* page = alloc_page(m, gfp);
  if (!page) return nullptr;
  if (mem_cgroup_charge(m, page, mm->memcg) != 0) {
    put_page(m, page);
    return nullptr;
  }
  page->set_atomic(PG_swapbacked);
  return page;
}

// The last step of a new anonymous page's mapping: its rmap and LRU list.
void anon_page_mapped(Machine& m, VmArea* vma, Page* page, uint64_t addr) {
  page_add_new_anon_rmap(m, page, vma->anon_vma);
  page->index = linear_page_index(vma, addr);
}

FaultResult killed(uint64_t addr) {
  return {FaultStatus::kKilled, 0, addr, "killed by the OOM killer"};
}

// The entry still maps the page it mapped when the fault looked (reclaim
// may have made it a swap entry since; only a fault, and we hold the mmap
// lock, can map another page there).
bool pte_same_page(pteval_t now, pteval_t then) {
  return pte_present(now) && pte_pfn(now) == pte_pfn(then);
}

// `slot` is the entry for `addr` (its tables made by the caller), empty when
// the fault looked. It is filled under the page-table lock and only if it is
// still empty (do_anonymous_page's pte_none check under the PTE lock): an
// empty entry may be reclaim's, which try_to_unmap clears and, once its TLB
// shootdown has waited for every CPU's access, sets to the swap entry. A
// store in between would be overwritten by the swap entry (the read saw
// zeros, the write is lost); one after it would overwrite the swap entry.
FaultResult do_anonymous_page(MmStruct* mm, VmArea* vma, uint64_t addr, Access access,
                              EntryRef slot) {
  Machine& m = *mm->machine;
  if (access != Access::kWrite) {
    std::lock_guard pt(mm->page_table_lock);
    if (slot.load() == 0)  // else filled meanwhile: the access retries
      slot.publish(pfn_pte(m.page_to_pfn(zero_page(m)), vma->vm_page_prot & ~_PAGE_RW) |
                   _PAGE_SPECIAL);
    return {};
  }
  anon_vma_prepare(mm, vma);
  // vma_alloc_zeroed_movable_folio(): allocate, then clear_user_highpage.
  // The slot's table stays (only an mmap-lock holder frees tables).
  Page* page = alloc_anon_page(mm, GFP_HIGHUSER_MOVABLE);
  if (!page) return mm->oom_killed.load() ? killed(addr) : oom(addr);
  clear_user_highpage(m, page);
  const pteval_t entry =
      pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
  {
    std::unique_lock pt(mm->page_table_lock);
    if (slot.load() != 0) {  // reclaim's swap entry: the access retries and swaps in
      pt.unlock();
      put_page(m, page);
      return {};
    }
    anon_page_mapped(m, vma, page, addr);
    slot.publish(entry);  // set_pte_at(), after the zeroing it orders
  }
  update_mmu_cache(mm->pgd, addr, slot, entry);
  add_mm_counter(mm, MM_ANONPAGES, 1);
  lru_cache_add(m, page);
  return {};
}

FaultResult do_wp_page(MmStruct* mm, VmArea* vma, uint64_t addr, pteval_t pte) {
  Machine& m = *mm->machine;
  const uint64_t pfn = pte_pfn(pte);
  const bool zero = (pte & _PAGE_SPECIAL) || pfn == m.page_to_pfn(zero_page(m));
  Page* old = zero ? nullptr : m.pfn_to_page(pfn);
  if (old) {
    // Our reference, taken while the entry still maps the page: once the
    // page-table lock is dropped reclaim may unmap and free it (Linux's
    // do_wp_page runs under the PTE lock and takes it with folio_get).
    {
      std::lock_guard pt(mm->page_table_lock);
      if (!pte_same_page(pte_get(mm->pgd, addr), pte)) return {};
      get_page(old);
    }
    // A swap-cache page mapped only here gives its slot up first
    // (wp_can_reuse_anon_folio's folio_free_swap).
    if (old->test(PG_swapcache) && old->mapcount.load(std::memory_order_acquire) == 1 &&
        !old->test_and_set(PG_locked)) {
      folio_free_swap(m, old);
      unlock_page(old);
    }
    // A page still in this CPU's LRU batch holds the batch's reference:
    // drain it before judging (wp_can_reuse_anon_folio's lru_add_drain).
    if (old->mapcount.load(std::memory_order_acquire) == 1 && old->ref_count() > 2 &&
        !old->test(PG_lru))
      lru_add_drain(m);
    // Another address space may be dropping its mapping and reference
    // meanwhile; both are atomic and fall, so a stale read only copies.
    // Two references: the mapping's and ours.
    if (PageAnon(old) && old->mapcount.load(std::memory_order_acquire) == 1 &&
        old->ref_count() == 2) {
      // wp_page_reuse(): ours alone; make it writable in place, unless
      // reclaim unmapped it meanwhile (the access retries).
      {
        std::lock_guard pt(mm->page_table_lock);
        if (pte_same_page(pte_get(mm->pgd, addr), pte)) {
          pte_set_flags_atomic(mm->pgd, addr, _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED);
          flush_tlb_page(mm->pgd, addr);
          m.count_event(VmEvent::PGREUSE);
        }
      }
      put_page(m, old);
      return {};
    }
  }
  // wp_page_copy(). The old page is held across the allocation, which may
  // reclaim (direct reclaim can unmap it from this very address space):
  // the entry is looked at again before anything is changed.
  anon_vma_prepare(mm, vma);
  Page* page = alloc_anon_page(mm, GFP_HIGHUSER_MOVABLE | (zero ? __GFP_ZERO : 0));
  if (!page) {
    if (old) put_page(m, old);
    return mm->oom_killed.load() ? killed(addr) : oom(addr);
  }
  // The copy is made before the entry is looked at: the old page is ours
  // to read (our reference) whatever happens to the entry, and reclaim
  // must not wait on the page-table lock for a page's worth of copying.
  if (old) std::memcpy(m.phys_window(m.page_to_pfn(page)), m.phys_window(pfn), PAGE_SIZE);
  const pteval_t entry =
      pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
  {
    std::unique_lock pt(mm->page_table_lock);
    if (!pte_same_page(pte_get(mm->pgd, addr), pte)) {
      pt.unlock();
      put_page(m, page);
      if (old) put_page(m, old);
      return {};  // the access retries and faults on what is there now
    }
    anon_page_mapped(m, vma, page, addr);
    // ptep_clear_flush() then set_pte_at(): no CPU may keep the old page.
    pte_clear(mm->pgd, addr);
    flush_tlb_page(mm->pgd, addr);
    pte_set(mm->pgd, addr, entry);  // the table exists: cannot fail
  }
  lru_cache_add(m, page);
  if (old) {
    // A private file mapping's page-cache page gives way to an anonymous
    // copy: the file page count moves to the anonymous one.
    if (!PageAnon(old)) {
      add_mm_counter(mm, mm_counter_file(old), -1);
      add_mm_counter(mm, MM_ANONPAGES, 1);
    }
    if (page_remove_rmap(m, old)) m.mod_node_page_state(old, NodeStat::NR_ANON_PAGES, -1);
    put_page(m, old);  // the mapping's reference
    put_page(m, old);  // ours
  } else
    add_mm_counter(mm, MM_ANONPAGES, 1);
  return {};
}

}  // namespace

FaultResult do_swap_page(MmStruct* mm, VmArea* vma, uint64_t addr, Access access, pteval_t pte) {
  Machine& m = *mm->machine;
  const SwpEntry entry = pte_to_swp_entry(mm->pgd.mode, pte);
  anon_vma_prepare(mm, vma);
  MemCgroup* const fallback = mm->memcg;
  // The page comes back charged to the group its slot was charged to
  // (mem_cgroup_swapin_charge_folio), readahead pages without reclaim.
  const SwapChargeFn charge = [&](Page* p, SwpEntry e, bool readahead) {
    const uint16_t id = swap_cgroup_id(m, e);
    MemCgroup* cg = id ? memcg_state(m).group(id) : nullptr;
    return mem_cgroup_charge(m, p, cg ? cg : fallback, readahead) == 0;
  };
  bool major = false;
  Page* page = swapin_readahead(m, entry, true, charge, &major);
  if (!page) {
    if (pte_get(mm->pgd, addr) != pte) return {};  // changed meanwhile: retry
    return mm->oom_killed.load() ? killed(addr) : oom(addr);
  }
  lock_page(page);
  std::unique_lock pt(mm->page_table_lock);  // after the page lock, as reclaim takes them
  if (pte_get(mm->pgd, addr) != pte || !page->test(PG_swapcache) ||
      page->private_once() != entry.val) {
    pt.unlock();
    unlock_page(page);
    put_page(m, page);
    return {};
  }
  // Filed under the family's root anon_vma unless it already has one, so
  // every branch that may share the slot finds it (__folio_set_anon).
  if (!page->mapping_once()) {
    page->set_mapping_once(reinterpret_cast<void*>(anon_vma_root(vma) << 2 | PAGE_MAPPING_ANON));
    page->index = linear_page_index(vma, addr);
  }
  if (page->mapcount.fetch_add(1, std::memory_order_acq_rel) == 0)
    m.mod_node_page_state(page, NodeStat::NR_ANON_PAGES, 1);
  swap_free(m, entry);  // our reference from swapin is the mapping's now
  add_mm_counter(mm, MM_SWAPENTS, -1);
  add_mm_counter(mm, MM_ANONPAGES, 1);
  pteval_t newpte = pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) | _PAGE_ACCESSED;
  // A write to a page nobody else can reach: it leaves the swap cache and is
  // mapped writable at once (do_swap_page's exclusive case).
  if (access == Access::kWrite && (vma->vm_flags & VM_WRITE) &&
      page->mapcount.load(std::memory_order_acquire) == 1 && folio_free_swap(m, page))
    newpte |= _PAGE_RW | _PAGE_DIRTY;
  pte_set(mm->pgd, addr, newpte);  // not present before: nothing to flush
  pt.unlock();
  // should_try_to_free_swap(): with swap, or the group's swap.max, more
  // than half used, the copy in swap goes; the page alone holds the data
  // now, so it is dirty.
  if (page->test(PG_swapcache) && mem_cgroup_swap_full(m, page) && folio_free_swap(m, page))
    page->set_atomic(PG_dirty);
  unlock_page(page);
  FaultResult r;
  r.major = major;
  return r;
}

namespace {
struct FaultMmScope {
  MmStruct* saved;
  explicit FaultMmScope(MmStruct* mm) : saved(tls_fault_mm) { tls_fault_mm = mm; }
  ~FaultMmScope() { tls_fault_mm = saved; }
};
}  // namespace

FaultResult handle_fault_locked(MmStruct* mm, uint64_t addr, Access access) {
  Machine& m = *mm->machine;
  if (mm->oom_killed.load(std::memory_order_relaxed)) return killed(addr);
  const FaultMmScope scope(mm);
  if (addr >= mm->layout.task_size)
    return segv(addr, SEGV_MAPERR, "address outside the user address space");
  VmArea* vma = find_vma(mm, addr);
  if (!vma) return segv(addr, SEGV_MAPERR, "no VMA at or above the address");
  if (vma->vm_start > addr) {
    if (!(vma->vm_flags & VM_GROWSDOWN))
      return segv(addr, SEGV_MAPERR, "no VMA covers the address");
    if (!expand_stack(mm, vma, addr))
      return segv(addr, SEGV_MAPERR, "the stack cannot grow to the address");
  }
  if (access_error(m, vma, access))
    return segv(addr, SEGV_ACCERR,
                access == Access::kWrite  ? "write to a VMA without VM_WRITE"
                : access == Access::kExec ? "instruction fetch from a VMA without VM_EXEC"
                                          : "read from a VMA without access (PROT_NONE)");
  m.count_event(VmEvent::PGFAULT);
  // Every VMA has recency here (no VM_SEQ_READ, VM_RAND_READ or
  // FMODE_NOREUSE): pages the fault adds to the LRU are young for MGLRU.
  const LruGenFaultScope lru_fault;
  const uint64_t page_addr = addr & ~(PAGE_SIZE - 1);
  // __handle_mm_fault(): the tables down to the entry are made first, then
  // the entry is looked at and, for a new page, stored through the same
  // slot: one walk. The address is below TASK_SIZE, so canonical and in
  // the user half.
  const PagingFormat& f = paging_format(mm->pgd.mode);
  char* p;
  if (!get_or_alloc_entry(mm->pgd, to_linear(f, page_addr), GFP_KERNEL, &p)) return oom(addr);
  const EntryRef slot(p, f.entry_shift == 3);
  const pteval_t pte = slot.load();
  FaultResult r;
  if (is_swap_pte(pte)) {
    r = do_swap_page(mm, vma, page_addr, access, pte);
  } else if (!pte_present(pte)) {
    r = vma->vm_file ? do_file_fault(mm, vma, page_addr, access)
                     : do_anonymous_page(mm, vma, page_addr, access, slot);
  } else if (access == Access::kWrite && !pte_write(pte)) {
    r = vma->vm_file && (vma->vm_flags & VM_SHARED) ? do_file_wp_page(mm, vma, page_addr, pte)
                                                    : do_wp_page(mm, vma, page_addr, pte);
  } else {
    // Spurious: the entry allows it now (a stale TLB entry faulted). Unless
    // reclaim has unmapped the page since: then the access faults again.
    std::lock_guard pt(mm->page_table_lock);
    if (pte_same_page(slot.load(), pte))
      pte_set_flags_atomic(mm->pgd, page_addr,
                           _PAGE_ACCESSED | (access == Access::kWrite ? _PAGE_DIRTY : 0));
    flush_tlb_local(m);
  }
  if (r.ok() && r.major) {
    mm->maj_flt.fetch_add(1, std::memory_order_relaxed);
    m.count_event(VmEvent::PGMAJFAULT);
  } else if (r.ok()) {
    mm->min_flt.fetch_add(1, std::memory_order_relaxed);
  }
  return r;
}

}  // namespace mm_internal

FaultResult handle_mm_fault(MmStruct* mm, uint64_t addr, Access access) {
  FaultResult r;
  {
    std::lock_guard g(mm->mmap_lock);
    r = mm_internal::handle_fault_locked(mm, addr, access);
  }
  // fault_dirty_shared_page(): a writer through a shared mapping is
  // throttled as write() is, here with mmap_lock dropped (Linux holds it
  // for reading), so the process's other threads fault on meanwhile.
  if (r.dirtied) balance_dirty_pages_ratelimited(*mm->machine, mm->memcg);
  // The way back to user space: a fault whose charges took the group over
  // memory.high pays its sleep here, with no lock held.
  mem_cgroup_handle_over_high(*mm->machine, mm->memcg);
  return r;
}

}  // namespace mmkit
