// mprotect (mm/mprotect.c: do_mprotect_pkey, mprotect_fixup).
//
// The range is walked VMA by VMA; each piece is split off, given its new
// flags and protection (change_protection rewrites the present entries),
// and merged back with its neighbours where the flags now agree. A hole
// stops the walk with ENOMEM after the VMAs before it were changed, as in
// Linux. A range turning into data must fit RLIMIT_DATA (may_expand_vm).
// Accounting (6.3+): making a private, unaccounted range writable
// charges it; making an accounted anonymous range that never had a page
// read-only gives the charge back.
//
// Private writable VMAs keep read-only entries (PAGE_COPY): the first write
// after mprotect goes through do_wp_page, which reuses an exclusive page.
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/rlimit.h"

namespace mmkit {
namespace {

using namespace mm_internal;

int mprotect_fixup(MmStruct* mm, VmArea* vma, uint64_t start, uint64_t end, vm_flags_t newflags) {
  const vm_flags_t oldflags = vma->vm_flags;
  if (newflags == oldflags) return 0;
  const int64_t nrpages = static_cast<int64_t>((end - start) >> PAGE_SHIFT);
  int64_t charged = 0;
  if (newflags & VM_WRITE) {
    // Check space limits when the area turns into data.
    if (!may_expand_vm(mm, newflags, static_cast<uint64_t>(nrpages)) &&
        may_expand_vm(mm, oldflags, static_cast<uint64_t>(nrpages)))
      return -ENOMEM;
    if (!(oldflags & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE))) {
      charged = nrpages;
      if (vm_enough_memory_mm(mm, charged)) return -ENOMEM;
      newflags |= VM_ACCOUNT;
    }
  } else if ((oldflags & VM_ACCOUNT) && !(oldflags & VM_SHARED) && !vma->anon_vma) {
    newflags &= ~VM_ACCOUNT;
  }
  if (newflags == oldflags) return 0;
  if (vma->vm_start < start) {
    if (!split_vma(mm, vma, start, true)) {
      if (charged) vm_unacct_memory(*mm->machine, charged);
      return -ENOMEM;
    }
  }
  if (vma->vm_end > end) {
    if (!split_vma(mm, vma, end, false)) {
      if (charged) vm_unacct_memory(*mm->machine, charged);
      return -ENOMEM;
    }
  }
  vma->vm_flags = newflags;
  vma->vm_page_prot = vma_page_prot(*mm->machine, vma);
  change_protection(mm->pgd, start, end, vma->vm_page_prot);
  if ((oldflags & VM_ACCOUNT) && !(newflags & VM_ACCOUNT)) vm_unacct_memory(*mm->machine, nrpages);
  vm_stat_account(mm, oldflags, -nrpages);
  vm_stat_account(mm, newflags, nrpages);
  vma_merge_neighbours(mm, vma);
  return 0;
}

}  // namespace

int do_mprotect(MmStruct* mm, uint64_t start, uint64_t len, int prot) {
  if (start & (PAGE_SIZE - 1)) return -EINVAL;
  if (!len) return 0;
  len = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  uint64_t end = start + len;
  if (end <= start) return -ENOMEM;
  const int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~grows;
  if (grows == (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) return -EINVAL;

  MmWriteGuard g(mm);
  VmArea* vma = find_vma(mm, start);
  if (!vma) return -ENOMEM;
  if (grows & PROT_GROWSDOWN) {
    if (vma->vm_start >= end) return -ENOMEM;
    start = vma->vm_start;
    if (!(vma->vm_flags & VM_GROWSDOWN)) return -EINVAL;
  } else {
    if (vma->vm_start > start) return -ENOMEM;
    if (grows & PROT_GROWSUP) return -EINVAL;  // no VM_GROWSUP on x86
  }
  vm_flags_t vm_prot = 0;
  if (prot & PROT_READ) vm_prot |= VM_READ;
  if (prot & PROT_WRITE) vm_prot |= VM_WRITE;
  if (prot & PROT_EXEC) vm_prot |= VM_EXEC;
  uint64_t nstart = start;
  for (;;) {
    const vm_flags_t newflags = vm_prot | (vma->vm_flags & ~VM_ACCESS_FLAGS);
    // newflags >> 4 shifts VM_MAY% into the place of VM_%.
    if ((newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS) return -EACCES;
    const uint64_t tmp = std::min(vma->vm_end, end);
    if (int err = mprotect_fixup(mm, vma, nstart, tmp, newflags); err) return err;
    nstart = tmp;
    if (nstart >= end) return 0;
    vma = find_vma(mm, nstart);
    if (!vma || vma->vm_start > nstart) return -ENOMEM;
  }
}

}  // namespace mmkit
