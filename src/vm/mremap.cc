// mremap (mm/mremap.c: the mremap syscall, mremap_to, vma_to_resize,
// vma_expandable, move_vma).
//
// Shrinking unmaps the tail. Growing extends the VMA in place when the
// space above is free (and clear of a stack's guard gap), else, with
// MREMAP_MAYMOVE, moves it: a new VMA at a fresh address (or new_addr with
// MREMAP_FIXED, unmapped first) takes the old one's flags, pgoff and
// anon_vma, the page-table entries move with move_range, and the old range
// is unmapped without giving its commit charge back (the new VMA carries
// it). Growth is checked against RLIMIT_AS/RLIMIT_DATA (may_expand_vm) and,
// for an accounted VMA, charged first. Errors: EINVAL for bad
// flags, alignment, a zero new length (or a zero old length: mmkit has no
// shared-mapping duplication) and overlapping fixed ranges; EFAULT when the
// old range is not inside one VMA; ENOMEM when there is no room.
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process_state.h"
#include "vm/rlimit.h"

namespace mmkit {
namespace {

using namespace mm_internal;

int64_t move_vma(MmStruct* mm, VmArea* vma, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                 uint64_t new_addr) {
  // Avoid failing later in munmap, which may split one VMA into three.
  if (mm->map_count >= mm->state->max_map_count - 3) return -ENOMEM;
  VmArea* nv = vm_area_dup(vma);
  if (!nv) return -ENOMEM;
  nv->vm_start = new_addr;
  nv->vm_end = new_addr + new_len;
  nv->vm_pgoff = vma->vm_pgoff + ((old_addr - vma->vm_start) >> PAGE_SHIFT);
  vma_link(mm, nv);
  if (!move_range(mm->pgd, old_addr, new_addr, old_len)) {
    // Put back whatever moved, then forget the new VMA.
    move_range(mm->pgd, new_addr, old_addr, old_len);
    free_pgtables(mm->pgd, new_addr, new_addr + new_len, new_addr, new_addr + new_len);
    vma_unlink(mm, nv);
    vm_area_free(nv);
    return -ENOMEM;
  }
  vm_stat_account(mm, nv->vm_flags, static_cast<int64_t>(new_len >> PAGE_SHIFT));
  munmap_locked(mm, old_addr, old_addr + old_len, /*uncharge=*/false);
  vma_merge_neighbours(mm, nv);
  return static_cast<int64_t>(new_addr);
}

// vma_to_resize(): the VMA holding [addr, addr + old_len), within the
// rlimits (may_expand_vm) and charged for the growth when accounted; an
// errno otherwise.
VmArea* vma_to_resize(MmStruct* mm, uint64_t addr, uint64_t old_len, uint64_t new_len, int* err) {
  VmArea* vma = find_vma(mm, addr);
  if (!vma || vma->vm_start > addr || old_len > vma->vm_end - addr) {
    *err = -EFAULT;
    return nullptr;
  }
  if (new_len > old_len && !may_expand_vm(mm, vma->vm_flags, (new_len - old_len) >> PAGE_SHIFT)) {
    *err = -ENOMEM;
    return nullptr;
  }
  if (new_len > old_len && (vma->vm_flags & VM_ACCOUNT) &&
      vm_enough_memory_mm(mm, static_cast<int64_t>((new_len - old_len) >> PAGE_SHIFT))) {
    *err = -ENOMEM;
    return nullptr;
  }
  return vma;
}

void uncharge_growth(MmStruct* mm, VmArea* vma, uint64_t old_len, uint64_t new_len) {
  if (new_len > old_len && (vma->vm_flags & VM_ACCOUNT))
    vm_unacct_memory(*mm->machine, static_cast<int64_t>((new_len - old_len) >> PAGE_SHIFT));
}

}  // namespace

int64_t do_mremap(MmStruct* mm, uint64_t addr, uint64_t old_len, uint64_t new_len, int flags,
                  uint64_t new_addr) {
  if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE)) return -EINVAL;
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) return -EINVAL;
  if (addr & (PAGE_SIZE - 1)) return -EINVAL;
  const uint64_t task_size = mm->layout.task_size;
  if (old_len > task_size || new_len > task_size) return -EINVAL;
  old_len = (old_len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  new_len = (new_len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (!new_len || !old_len) return -EINVAL;

  MmWriteGuard g(mm);
  {
    VmArea* vma = find_vma(mm, addr);
    if (!vma || vma->vm_start > addr) return -EFAULT;
  }
  if (flags & MREMAP_FIXED) {
    // mremap_to()
    if (new_addr & (PAGE_SIZE - 1)) return -EINVAL;
    if (new_addr > task_size - new_len) return -EINVAL;
    if (new_addr < mmap_min_addr) return -EPERM;
    if (addr + old_len > new_addr && new_addr + new_len > addr) return -EINVAL;
    if (int err = munmap_locked(mm, new_addr, new_addr + new_len); err) return err;
    if (old_len > new_len) {
      if (int err = munmap_locked(mm, addr + new_len, addr + old_len); err) return err;
      old_len = new_len;
    }
    int err = 0;
    VmArea* vma = vma_to_resize(mm, addr, old_len, new_len, &err);
    if (!vma) return err;
    const int64_t r = move_vma(mm, vma, addr, old_len, new_len, new_addr);
    if (r < 0) uncharge_growth(mm, vma, old_len, new_len);
    return r;
  }
  if (old_len >= new_len) {
    if (int err = munmap_locked(mm, addr + new_len, addr + old_len); err) return err;
    return static_cast<int64_t>(addr);
  }
  int err = 0;
  VmArea* vma = vma_to_resize(mm, addr, old_len, new_len, &err);
  if (!vma) return err;
  // Old range reaches the VMA's end: try to grow in place (vma_expandable).
  if (old_len == vma->vm_end - addr) {
    const uint64_t end = addr + new_len;
    VmArea* next = vma_next(mm, vma);
    if (end <= task_size && (!next || vm_start_gap(next) >= end)) {
      vm_stat_account(mm, vma->vm_flags, static_cast<int64_t>((new_len - old_len) >> PAGE_SHIFT));
      vma_set_end(mm, vma, end);
      vma_merge_neighbours(mm, vma);
      return static_cast<int64_t>(addr);
    }
  }
  int64_t r = -ENOMEM;
  if (flags & MREMAP_MAYMOVE) {
    r = get_unmapped_area(mm, 0, new_len);
    if (r >= 0) r = move_vma(mm, vma, addr, old_len, new_len, static_cast<uint64_t>(r));
  }
  if (r < 0) uncharge_growth(mm, vma, old_len, new_len);
  return r;
}

}  // namespace mmkit
