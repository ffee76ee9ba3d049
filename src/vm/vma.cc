// VMAs: the vm_area_struct cache, the per-mm tree, split and merge, and the
// protection map (mm/mmap.c, mm/vma.c, arch/x86/mm/pgprot.c).
//
// The tree is a std::map keyed by vm_end, so find_vma(addr) (the first VMA
// ending above addr) is one upper_bound, O(log n), as the maple tree's walk.
#include <new>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/process_state.h"
#include "vm/rmap.h"

namespace mmkit {

pteval_t vm_get_page_prot(const Machine& m, vm_flags_t flags) {
  // protection_map[] (arch/x86/mm/pgprot.c): PAGE_NONE, PAGE_READONLY,
  // PAGE_COPY (private, writable later by the fault), PAGE_SHARED and their
  // _EXEC forms; every user protection has _PAGE_USER and _PAGE_ACCESSED.
  if (!(flags & VM_ACCESS_FLAGS)) return _PAGE_PRESENT | _PAGE_ACCESSED;
  pteval_t prot = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  if ((flags & VM_WRITE) && (flags & VM_SHARED)) prot |= _PAGE_RW;
  // i386 without PAE has no NX bit.
  if (!(flags & VM_EXEC) && m.arch() == Arch::x86_64) prot |= _PAGE_NX;
  return prot;
}

pteval_t vma_page_prot(const Machine& m, const VmArea* vma) {
  // shmem does no dirty accounting: its shared mappings are writable at once.
  if (vma->vm_file && !vma->vm_file->shmem && (vma->vm_flags & VM_SHARED))
    return vm_get_page_prot(m, vma->vm_flags & ~VM_SHARED);
  return vm_get_page_prot(m, vma->vm_flags);
}

VmArea* vm_area_alloc(MmStruct* mm) {
  void* mem = kmem_cache_alloc(mm->state->vm_area_cachep, GFP_KERNEL);
  if (!mem) return nullptr;
  auto* vma = new (mem) VmArea;
  vma->vm_mm = mm;
  return vma;
}

VmArea* vm_area_dup(const VmArea* orig) {
  VmArea* vma = vm_area_alloc(orig->vm_mm);
  if (!vma) return nullptr;
  *vma = *orig;
  if (vma->vm_file) inode_get(*vma->vm_mm->machine, vma->vm_file);
  return vma;
}

void vm_area_free(VmArea* vma) {
  MmStruct* mm = vma->vm_mm;
  anon_vma_unlink(vma);
  if (vma->vm_file) {
    // Out of i_mmap when freed (exit frees VMAs it never unlinks).
    {
      AddressSpace& as = vma->vm_file->i_data;
      std::lock_guard<std::mutex> g(as.i_mmap_lock);
      as.i_mmap.erase(vma);
    }
    inode_put(*mm->machine, vma->vm_file);
  }
  vma->~VmArea();
  kmem_cache_free(mm->state->vm_area_cachep, vma);
}

VmArea* find_vma(MmStruct* mm, uint64_t addr) {
  auto it = mm->mm_mt.upper_bound(addr);
  return it == mm->mm_mt.end() ? nullptr : it->second;
}

VmArea* find_vma_prev(MmStruct* mm, uint64_t addr, VmArea** prev) {
  auto it = mm->mm_mt.upper_bound(addr);
  *prev = it == mm->mm_mt.begin() ? nullptr : std::prev(it)->second;
  return it == mm->mm_mt.end() ? nullptr : it->second;
}

VmArea* vma_prev(MmStruct* mm, VmArea* vma) {
  auto it = mm->mm_mt.find(vma->vm_end);
  return it == mm->mm_mt.begin() ? nullptr : std::prev(it)->second;
}

VmArea* vma_next(MmStruct* mm, VmArea* vma) {
  auto it = mm->mm_mt.upper_bound(vma->vm_end);
  return it == mm->mm_mt.end() ? nullptr : it->second;
}

VmArea* find_vma_intersection(MmStruct* mm, uint64_t start, uint64_t end) {
  VmArea* vma = find_vma(mm, start);
  return vma && vma->vm_start < end ? vma : nullptr;
}

namespace {

// A gap reaching up to `top` grew: the search cache's start moves up to
// it, so that no gap longer than cached_hole_size lies wholly above.
void note_gap_growth(MmStruct* mm, uint64_t top) {
  if (mm->free_area_cache < top) mm->free_area_cache = top;
}

// The top of the gap above the VMA at `it`.
uint64_t gap_top_above(MmStruct* mm, std::map<uint64_t, VmArea*>::iterator it) {
  const auto next = std::next(it);
  return next == mm->mm_mt.end() ? mm->layout.task_size : mm_internal::vm_start_gap(next->second);
}

}  // namespace

void vma_link(MmStruct* mm, VmArea* vma) {
  anon_vma_link(vma);
  if (vma->vm_file) {
    AddressSpace& as = vma->vm_file->i_data;
    std::lock_guard<std::mutex> g(as.i_mmap_lock);
    as.i_mmap.insert(vma);
  }
  const auto it = mm->mm_mt.emplace(vma->vm_end, vma).first;
  ++mm->map_count;
  // A VMA put in below a stack hides the stack's guard gap from the gap
  // under it, which grows up to this VMA's start.
  const auto next = std::next(it);
  if (next != mm->mm_mt.end() && (next->second->vm_flags & VM_GROWSDOWN))
    note_gap_growth(mm, mm_internal::vm_start_gap(vma));
}

void vma_unlink(MmStruct* mm, VmArea* vma) {
  anon_vma_unlink(vma);
  const auto it = mm->mm_mt.find(vma->vm_end);
  note_gap_growth(mm, gap_top_above(mm, it));
  mm->mm_mt.erase(it);
  --mm->map_count;
}

void vma_set_end(MmStruct* mm, VmArea* vma, uint64_t end) {
  if (end < vma->vm_end) note_gap_growth(mm, gap_top_above(mm, mm->mm_mt.find(vma->vm_end)));
  auto node = mm->mm_mt.extract(vma->vm_end);
  vma->vm_end = end;
  node.key() = end;
  mm->mm_mt.insert(std::move(node));
}

VmArea* split_vma(MmStruct* mm, VmArea* vma, uint64_t addr, bool new_below) {
  if (mm->map_count >= mm->state->max_map_count) return nullptr;
  VmArea* n = vm_area_dup(vma);
  if (!n) return nullptr;
  const uint64_t delta = (addr - vma->vm_start) >> PAGE_SHIFT;
  if (new_below) {
    n->vm_end = addr;
    vma->vm_start = addr;
    vma->vm_pgoff += delta;
  } else {
    n->vm_start = addr;
    n->vm_pgoff += delta;
    vma_set_end(mm, vma, addr);
  }
  vma_link(mm, n);
  return n;
}

bool vma_can_merge(const VmArea* a, const VmArea* b) {
  return a && b && a->vm_end == b->vm_start && a->vm_flags == b->vm_flags &&
         a->vm_file == b->vm_file && a->vm_pgoff + a->pages() == b->vm_pgoff &&
         (!a->anon_vma || !b->anon_vma || a->anon_vma == b->anon_vma);
}

VmArea* vma_merge_neighbours(MmStruct* mm, VmArea* vma) {
  if (VmArea* prev = vma_prev(mm, vma); vma_can_merge(prev, vma)) {
    anon_vma_inherit(prev, vma);
    const uint64_t end = vma->vm_end;
    vma_unlink(mm, vma);
    vm_area_free(vma);
    vma_set_end(mm, prev, end);
    vma = prev;
  }
  if (VmArea* next = vma_next(mm, vma); vma_can_merge(vma, next)) {
    anon_vma_inherit(vma, next);
    const uint64_t end = next->vm_end;
    vma_unlink(mm, next);
    vm_area_free(next);
    vma_set_end(mm, vma, end);
  }
  return vma;
}

}  // namespace mmkit
