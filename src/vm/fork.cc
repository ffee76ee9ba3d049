// fork's address-space copy (kernel/fork.c dup_mm, dup_mmap; mm/memory.c
// copy_page_range and vma_needs_copy).
//
// Every VMA is duplicated; an accounted one is charged again (the child
// commits as much as the parent). Entries are copied only where Linux
// copies them: VMAs with an anon_vma (private memory that has had a page).
// Shared mappings and untouched private ones fault in afresh in the child.
// Private mappings are copy-on-write: copy_range write-protects each
// writable entry in both trees and gives every page one more mapcount and
// reference; the child's VMAs get their own anon_vma (anon_vma_fork).
// The child's MM_ANONPAGES is the parent's: only VMAs with an anon_vma hold
// anonymous pages, and those are the ones copied.
#include <vector>

#include "page_alloc/page_alloc.h"
#include "swap/swap.h"
#include "vm/overcommit.h"
#include "vm/process.h"
#include "vm/process_state.h"
#include "vm/rmap.h"

namespace mmkit {

MmStruct* dup_mm(MmStruct* oldmm) {
  using namespace mm_internal;
  Machine& m = *oldmm->machine;
  MmStruct* mm = mm_alloc(m);
  if (!mm) return nullptr;
  // Reclaim cannot take pages from an address space whose lock a non-fault
  // path holds, and the copy holds both. So the child's tables are made
  // room for first, while the parent can still give pages up: as many as
  // the parent has, allocated (reclaiming as needed) and freed again.
  {
    std::vector<Page*> room;
    const uint64_t want = oldmm->pgd.nr_tables.load() + 4;
    for (uint64_t i = 0; i < want; ++i)
      if (Page* p = alloc_page(m, GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY)) room.push_back(p);
    for (Page* p : room) free_page(m, p);
  }
  MmWriteGuard g(oldmm);
  mm->mmap_base = oldmm->mmap_base;
  mm->start_brk = oldmm->start_brk;
  mm->brk = oldmm->brk;
  mm->start_stack = oldmm->start_stack;
  mm->cap_sys_admin = oldmm->cap_sys_admin;
  mm->memcg = oldmm->memcg;          // a child starts in its parent's cgroup
  mm->rlimit_as = oldmm->rlimit_as;  // the child inherits its parent's rlimits
  mm->rlimit_data = oldmm->rlimit_data;
  const uint64_t zero_pfn = m.page_to_pfn(zero_page(m));
  bool failed = false;
  {
    MmWriteGuard g2(mm);
    for (auto& [end, mpnt] : oldmm->mm_mt) {
      const int64_t len = static_cast<int64_t>(mpnt->pages());
      if ((mpnt->vm_flags & VM_ACCOUNT) && vm_enough_memory_mm(oldmm, len)) {
        failed = true;
        break;
      }
      VmArea* tmp = vm_area_dup(mpnt);
      if (!tmp) {
        if (mpnt->vm_flags & VM_ACCOUNT) vm_unacct_memory(m, len);
        failed = true;
        break;
      }
      tmp->vm_mm = mm;
      // anon_vma_fork(): chained to the parent's anon_vmas, with its own.
      if (tmp->anon_vma) anon_vma_assign(tmp, mm->state->next_anon_vma.fetch_add(1));
      vma_link(mm, tmp);
      vm_stat_account(mm, tmp->vm_flags, len);
      if (!mpnt->anon_vma) continue;  // vma_needs_copy()
      const bool cow = (mpnt->vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
      int64_t swapents = 0;
      const bool copied = copy_range(mm->pgd, oldmm->pgd, mpnt->vm_start, mpnt->vm_end, cow,
                                     [&](uint64_t, pteval_t v) {
                                       // copy_nonpresent_pte(): one more reference to the slot.
                                       swap_duplicate(m, pte_to_swp_entry(mm->pgd.mode, v));
                                       ++swapents;
                                     });
      if (swapents) add_mm_counter(mm, MM_SWAPENTS, swapents);
      if (copied && mpnt->vm_file) {
        // A private file mapping's page-cache pages came along too.
        const FileRss file = count_file_rss(mm, mpnt->vm_start, mpnt->vm_end);
        add_mm_counter(mm, MM_FILEPAGES, file.file);
        add_mm_counter(mm, MM_SHMEMPAGES, file.shmem);
      }
      if (!copied) {
        // A partial copy: count what arrived, so the unwinding zap balances.
        int64_t anon = 0;
        walk_range(mm->pgd, mpnt->vm_start, mpnt->vm_end, [&](uint64_t, pteval_t v) {
          if (!(v & _PAGE_SPECIAL) && pte_pfn(v) != zero_pfn) ++anon;
        });
        add_mm_counter(mm, MM_ANONPAGES, anon);
        failed = true;
        break;
      }
    }
    // Every anonymous page lies in a VMA with an anon_vma, and all of those
    // were copied: the child maps exactly the parent's anonymous pages.
    if (!failed) add_mm_counter(mm, MM_ANONPAGES, oldmm->rss_stat[MM_ANONPAGES].load());
    mm->hiwater_rss.store(mm->get_mm_rss());
  }
  if (failed) {
    mmput(mm);
    return nullptr;
  }
  return mm;
}

}  // namespace mmkit
