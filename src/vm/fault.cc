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
//   not present, shared          -> the ShmemObject's page at vm_pgoff
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

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process_state.h"
#include "vm/rlimit.h"
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

void anon_stat(Machine& m, Page* p, int64_t n) {
  m.node(m.page_zone(p)->node).stat[static_cast<unsigned>(NodeStat::NR_ANON_PAGES)].add(n);
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
    vma->anon_vma = mm->state->next_anon_vma.fetch_add(1, std::memory_order_relaxed);
}

// `slot` is the empty entry for `addr` (its tables made by the caller).
FaultResult do_anonymous_page(MmStruct* mm, VmArea* vma, uint64_t addr, Access access,
                              EntryRef slot) {
  Machine& m = *mm->machine;
  if (access != Access::kWrite) {
    slot.publish(pfn_pte(m.page_to_pfn(zero_page(m)), vma->vm_page_prot & ~_PAGE_RW) |
                 _PAGE_SPECIAL);
    return {};
  }
  anon_vma_prepare(mm, vma);
  // vma_alloc_zeroed_movable_folio(): allocate, then clear_user_highpage.
  Page* page = alloc_page(m, GFP_HIGHUSER_MOVABLE);
  if (!page) return oom(addr);
  clear_user_highpage(m, page);
  const pteval_t entry =
      pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
  page_add_new_anon_rmap(m, page, vma->anon_vma);
  slot.publish(entry);  // set_pte_at(), after the zeroing it orders
  update_mmu_cache(mm->pgd, addr, slot, entry);
  add_mm_counter(mm, MM_ANONPAGES, 1);
  return {};
}

FaultResult do_shared_fault(MmStruct* mm, VmArea* vma, uint64_t addr, Access access) {
  Machine& m = *mm->machine;
  ShmemObject* obj = vma->shmem;
  const uint64_t pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
  Page* page;
  {
    std::lock_guard<std::mutex> g(obj->lock);
    auto it = obj->pages.find(pgoff);
    if (it != obj->pages.end()) {
      page = it->second;
    } else {
      page = alloc_page(m, GFP_HIGHUSER_MOVABLE | __GFP_ZERO);
      if (!page) return oom(addr);
      page->mapping = obj;  // the page cache's reference is the allocation's
      page->index = pgoff;
      obj->pages.emplace(pgoff, page);
    }
    get_page(page);
    page->mapcount.fetch_add(1, std::memory_order_relaxed);
  }
  pteval_t entry = pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) | _PAGE_ACCESSED;
  if (access == Access::kWrite) entry |= _PAGE_DIRTY;
  if (!pte_set(mm->pgd, addr, entry)) {
    page->mapcount.fetch_sub(1, std::memory_order_relaxed);
    put_page(m, page);
    return oom(addr);
  }
  add_mm_counter(mm, MM_SHMEMPAGES, 1);
  return {};
}

FaultResult do_wp_page(MmStruct* mm, VmArea* vma, uint64_t addr, pteval_t pte) {
  Machine& m = *mm->machine;
  const uint64_t pfn = pte_pfn(pte);
  const bool zero = (pte & _PAGE_SPECIAL) || pfn == m.page_to_pfn(zero_page(m));
  if (vma->shmem) {
    // wp_page_shared(): a shared page only needs its write bit.
    pte_set_flags_atomic(mm->pgd, addr, _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED);
    flush_tlb_page(mm->pgd, addr);
    return {};
  }
  Page* old = zero ? nullptr : m.pfn_to_page(pfn);
  if (old) {
    // Another address space may be dropping its mapping and reference
    // meanwhile; both are atomic and fall, so a stale read only copies.
    if (old->mapcount.load(std::memory_order_acquire) == 1 && old->ref_count() == 1) {
      // wp_page_reuse(): ours alone; make it writable in place.
      pte_set_flags_atomic(mm->pgd, addr, _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED);
      flush_tlb_page(mm->pgd, addr);
      m.count_event(VmEvent::PGREUSE);
      return {};
    }
  }
  // wp_page_copy().
  anon_vma_prepare(mm, vma);
  Page* page = alloc_page(m, GFP_HIGHUSER_MOVABLE | (zero ? __GFP_ZERO : 0));
  if (!page) return oom(addr);
  if (old) std::memcpy(m.phys_window(m.page_to_pfn(page)), m.phys_window(pfn), PAGE_SIZE);
  page_add_new_anon_rmap(m, page, vma->anon_vma);
  const pteval_t entry =
      pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
  // ptep_clear_flush() then set_pte_at(): no CPU may keep the old page.
  pte_clear(mm->pgd, addr);
  flush_tlb_page(mm->pgd, addr);
  pte_set(mm->pgd, addr, entry);  // the table exists: cannot fail
  if (old) {
    if (page_remove_rmap(m, old)) anon_stat(m, old, -1);
    put_page(m, old);
  } else
    add_mm_counter(mm, MM_ANONPAGES, 1);
  return {};
}

}  // namespace

FaultResult handle_fault_locked(MmStruct* mm, uint64_t addr, Access access) {
  Machine& m = *mm->machine;
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
  if (!pte_present(pte)) {
    r = vma->shmem ? do_shared_fault(mm, vma, page_addr, access)
                   : do_anonymous_page(mm, vma, page_addr, access, slot);
  } else if (access == Access::kWrite && !pte_write(pte)) {
    r = do_wp_page(mm, vma, page_addr, pte);
  } else {
    // Spurious: the entry allows it now (a stale TLB entry faulted).
    pte_set_flags_atomic(mm->pgd, page_addr,
                         _PAGE_ACCESSED | (access == Access::kWrite ? _PAGE_DIRTY : 0));
    flush_tlb_local(m);
  }
  if (r.ok()) mm->min_flt.fetch_add(1, std::memory_order_relaxed);
  return r;
}

}  // namespace mm_internal

FaultResult handle_mm_fault(MmStruct* mm, uint64_t addr, Access access) {
  std::lock_guard<std::mutex> g(mm->mmap_lock);
  return mm_internal::handle_fault_locked(mm, addr, access);
}

}  // namespace mmkit
