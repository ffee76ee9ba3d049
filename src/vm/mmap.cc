// mmap, munmap and brk for anonymous memory (mm/mmap.c: do_mmap,
// mmap_region, get_unmapped_area, do_vmi_munmap, the brk syscall and
// do_brk_flags; mm/gup.c's mm_populate for MAP_POPULATE).
//
// Errors follow Linux: EINVAL for a zero length, a bad MAP_TYPE or an
// unaligned MAP_FIXED address; ENOMEM for a length that wraps or exceeds
// TASK_SIZE, no room, too many mappings (vm.max_map_count), RLIMIT_AS or
// RLIMIT_DATA (may_expand_vm), or a failed commit charge; EEXIST when
// MAP_FIXED_NOREPLACE meets a mapping; EPERM for MAP_FIXED below
// mmap_min_addr; EBADF for a file mapping (no files yet). mmap checks in
// Linux's order: the length, the map count, the address (get_unmapped_area),
// the rlimits, the commit charge. brk's order: RLIMIT_DATA on the heap's
// bytes (check_data_rlimit), TASK_SIZE (check_brk_limits), the mapping
// above, the rlimits on the pages (may_expand_vm), the map count, the charge.
//
// get_unmapped_area walks the gaps between VMAs top-down from a cached start
// (free_area_cache, as Linux 2.6-3.7 did; see MmStruct): a run of mmaps
// costs O(log n) each; a request longer than every gap seen above the cache
// walks from the top, O(n). Linux 3.8+ keeps the largest gap of each tree
// node's subtree instead (rb_subtree_gap, now the maple tree's gaps).
#include <fcntl.h>

#include <algorithm>

#include "memcg/lru.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process_state.h"
#include "vm/rlimit.h"

namespace mmkit {
namespace mm_internal {

namespace {

uint64_t page_align(uint64_t v) {
  return (v + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

// The highest address in [low, high) where len bytes fit between the VMAs,
// keeping each GROWSDOWN VMA's guard gap; 0 if none. The walk starts with
// the gap holding `start` (or the first one below it) and goes down;
// *longest is the longest gap it passed over, within [low, high).
uint64_t unmapped_area_topdown(MmStruct* mm, uint64_t len, uint64_t low, uint64_t high,
                               uint64_t start, uint64_t* longest) {
  *longest = 0;
  if (high < low || high - low < len) return 0;
  const auto from = mm->mm_mt.upper_bound(start);  // the first VMA ending above start
  uint64_t gap_hi = from == mm->mm_mt.end() ? mm->layout.task_size : vm_start_gap(from->second);
  for (auto it = std::make_reverse_iterator(from);; ++it) {
    const bool last = it == mm->mm_mt.rend();
    const uint64_t size = gap_within(last ? 0 : it->second->vm_end, gap_hi, low, high);
    if (size >= len) return std::min(gap_hi, high) - len;
    *longest = std::max(*longest, size);
    if (last) return 0;
    gap_hi = vm_start_gap(it->second);
    if (gap_hi <= low) return 0;
  }
}

// The lowest address in [low, high) where len bytes fit; 0 if none.
uint64_t unmapped_area_bottomup(MmStruct* mm, uint64_t len, uint64_t low, uint64_t high) {
  if (high < low || high - low < len) return 0;
  uint64_t gap_lo = 0;
  for (auto& [end, vma] : mm->mm_mt) {
    if (gap_within(gap_lo, vm_start_gap(vma), low, high) >= len) return std::max(gap_lo, low);
    gap_lo = vma->vm_end;
    if (gap_lo >= high) return 0;
  }
  return gap_within(gap_lo, mm->layout.task_size, low, high) >= len ? std::max(gap_lo, low) : 0;
}

}  // namespace

int64_t get_unmapped_area(MmStruct* mm, uint64_t hint, uint64_t len) {
  const uint64_t task_size = mm->layout.task_size;
  if (len > task_size - mmap_min_addr) return -ENOMEM;
  if (hint) {
    const uint64_t addr = page_align(hint);
    VmArea* prev = nullptr;
    VmArea* vma = find_vma_prev(mm, addr, &prev);
    if (addr && task_size - len >= addr && addr >= mmap_min_addr &&
        (!vma || addr + len <= vm_start_gap(vma)) && (!prev || addr >= prev->vm_end))
      return static_cast<int64_t>(addr);
  }
  // arch_get_unmapped_area_topdown(), then the bottom-up fallback. A
  // request longer than every gap above free_area_cache starts there.
  const bool from_cache = len > mm->cached_hole_size;
  uint64_t longest = 0;
  if (uint64_t a = unmapped_area_topdown(
          mm, len, mmap_search_low(), mm->mmap_base,
          from_cache ? mm->free_area_cache : MmStruct::kNoFreeAreaCache, &longest)) {
    // Every gap wholly above `a` was passed over now or, above the cache,
    // was no longer than cached_hole_size before.
    mm->cached_hole_size = from_cache ? std::max(mm->cached_hole_size, longest) : longest;
    mm->free_area_cache = a;
    return static_cast<int64_t>(a);
  }
  if (uint64_t a =
          unmapped_area_bottomup(mm, len, mm->layout.task_unmapped_base, mm->layout.map_window))
    return static_cast<int64_t>(a);
  return -ENOMEM;
}

int munmap_locked(MmStruct* mm, uint64_t start, uint64_t end, bool uncharge) {
  // do_vmi_munmap()'s own checks (mremap's shrink reaches here directly).
  if (end < start || end > mm->layout.task_size) return -EINVAL;
  VmArea* vma = find_vma(mm, start);
  if (!vma || vma->vm_start >= end) return 0;
  // Splitting both ends of one VMA needs one more map slot.
  if (vma->vm_start < start) {
    if (end < vma->vm_end && mm->map_count >= mm->state->max_map_count) return -ENOMEM;
    if (!split_vma(mm, vma, start, true)) return -ENOMEM;
  }
  VmArea* last = find_vma(mm, end - 1);
  if (last && last->vm_start < end && last->vm_end > end)
    if (!split_vma(mm, last, end, false)) return -ENOMEM;

  VmArea* prev = nullptr;
  vma = find_vma_prev(mm, start, &prev);
  int64_t nr_accounted = 0;
  while (vma && vma->vm_start < end) {
    VmArea* next = vma_next(mm, vma);
    zap_vma_range(mm, vma, vma->vm_start, vma->vm_end);
    vm_stat_account(mm, vma->vm_flags, -static_cast<int64_t>(vma->pages()));
    if (vma->vm_flags & VM_ACCOUNT) nr_accounted += static_cast<int64_t>(vma->pages());
    vma_unlink(mm, vma);
    vm_area_free(vma);
    vma = next;
  }
  const uint64_t ceiling = vma ? vma->vm_start : pgtables_ceiling(mm);
  // unmap_region()'s lru_add_drain(): the pages just unmapped that this CPU
  // still queues for the LRU go now, not at the next batch.
  if (memcg_state_if(*mm->machine)) lru_add_drain(*mm->machine);
  free_pgtables(mm->pgd, start, end, prev ? prev->vm_end : 0, ceiling);
  if (uncharge && nr_accounted) vm_unacct_memory(*mm->machine, nr_accounted);
  return 0;
}

}  // namespace mm_internal

using namespace mm_internal;

namespace {

// mm_populate() over [start, end): write faults for private writable
// memory (to break COW now), read faults otherwise; it stops at the first
// fault that fails (out of memory), and mmap still succeeds, as in Linux.
void populate_locked(MmStruct* mm, uint64_t start, uint64_t end) {
  for (uint64_t a = start; a < end; a += PAGE_SIZE) {
    VmArea* vma = find_vma(mm, a);
    if (!vma || vma->vm_start > a) continue;
    if (!(vma->vm_flags & VM_ACCESS_FLAGS)) continue;
    const bool write = (vma->vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE;
    // __get_user_pages() gives up at the first fault it cannot resolve.
    if (!handle_fault_locked(mm, a, write ? Access::kWrite : Access::kRead).ok()) return;
  }
}

// count_vma_pages_range(): the pages of [addr, end) that VMAs map.
uint64_t count_vma_pages_range(MmStruct* mm, uint64_t addr, uint64_t end) {
  uint64_t pages = 0;
  for (VmArea* vma = find_vma(mm, addr); vma && vma->vm_start < end; vma = vma_next(mm, vma))
    pages += (std::min(end, vma->vm_end) - std::max(addr, vma->vm_start)) >> PAGE_SHIFT;
  return pages;
}

// check_brk_limits(): get_unmapped_area(NULL, addr, len, 0, MAP_FIXED)'s
// TASK_SIZE test (mmkit has no mlock, so no mlock_future_ok).
bool check_brk_limits(const MmStruct* mm, uint64_t addr, uint64_t len) {
  const uint64_t task_size = mm->layout.task_size;
  return len <= task_size && addr <= task_size - len;
}

vm_flags_t calc_vm_prot_bits(int prot) {
  vm_flags_t f = 0;
  if (prot & PROT_READ) f |= VM_READ;
  if (prot & PROT_WRITE) f |= VM_WRITE;
  if (prot & PROT_EXEC) f |= VM_EXEC;
  return f;
}

}  // namespace

int64_t do_mmap(MmStruct* mm, uint64_t addr, uint64_t len, int prot, int flags) {
  if (!(flags & MAP_ANONYMOUS)) return -EBADF;
  return mm_internal::mmap_region(mm, addr, len, prot, flags, nullptr, 0, 0);
}

int64_t mm_internal::mmap_region(MmStruct* mm, uint64_t addr, uint64_t len, int prot, int flags,
                                 Inode* file, int f_flags, uint64_t pgoff) {
  if (!len) return -EINVAL;
  const int type = flags & MAP_TYPE;
  if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_SHARED_VALIDATE) return -EINVAL;
  if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
  const uint64_t task_size = mm->layout.task_size;
  if (len > task_size) return -ENOMEM;
  len = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (!(flags & MAP_FIXED)) {
    // round_hint_to_min()
    addr &= ~(PAGE_SIZE - 1);
    if (addr && addr < mmap_min_addr) addr = mmap_min_addr;
  }

  Machine& m = *mm->machine;
  std::lock_guard g(mm->mmap_lock);
  std::unique_lock pt(mm->page_table_lock);
  // Too many mappings? (map_count may reach max_map_count + 1, as in Linux.)
  if (mm->map_count > mm->state->max_map_count) return -ENOMEM;

  vm_flags_t vm_flags = calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (flags & MAP_GROWSDOWN) vm_flags |= VM_GROWSDOWN;
  const bool shared = type != MAP_PRIVATE;
  if (shared) vm_flags |= VM_SHARED | VM_MAYSHARE;
  // A file opened without write access can be mapped shared, read-only
  // and never writable (mm/mmap.c do_mmap).
  if (file && shared && (f_flags & O_ACCMODE) == O_RDONLY) vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
  if ((flags & MAP_NORESERVE) && overcommit_sysctls(m).overcommit_memory != OVERCOMMIT_NEVER)
    vm_flags |= VM_NORESERVE;

  if (flags & MAP_FIXED) {
    if (addr > task_size - len) return -ENOMEM;
    if (addr & (PAGE_SIZE - 1)) return -EINVAL;
    if (addr < mmap_min_addr) return -EPERM;  // security_mmap_addr()
    if ((flags & MAP_FIXED_NOREPLACE) && find_vma_intersection(mm, addr, addr + len))
      return -EEXIST;
  } else {
    const int64_t a = get_unmapped_area(mm, addr, len);
    if (a < 0) return a;
    addr = static_cast<uint64_t>(a);
  }
  const uint64_t end = addr + len;

  // mmap_region(): check the rlimits, clear old maps, then charge, then set
  // up the VMA. MAP_FIXED may replace mapped pages: those do not count.
  const int64_t pages = static_cast<int64_t>(len >> PAGE_SHIFT);
  if (!may_expand_vm(mm, vm_flags, static_cast<uint64_t>(pages)) &&
      !may_expand_vm(mm, vm_flags,
                     static_cast<uint64_t>(pages) - count_vma_pages_range(mm, addr, end)))
    return -ENOMEM;
  if (int err = munmap_locked(mm, addr, end); err) return err;
  // accountable_mapping(): private writable memory without VM_NORESERVE.
  if ((vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE) {
    if (vm_enough_memory_mm(mm, pages)) return -ENOMEM;
    vm_flags |= VM_ACCOUNT;
  }
  bool own_file = false;  // a shmem file made here: the setup's pin becomes the VMA's
  if (shared && !file) {
    // shmem_zero_setup(): a new shmem file, its size charged unless
    // VM_NORESERVE (shmem_acct_size; given back when the file goes).
    const bool charge = !(vm_flags & VM_NORESERVE);
    if (charge && vm_enough_memory_mm(mm, pages)) return -ENOMEM;
    file = shmem_file_setup(m, "dev/zero", len, charge ? static_cast<uint64_t>(pages) : 0,
                            charge ? &vm_unacct_memory : nullptr);
    f_flags = O_RDWR;
    pgoff = 0;
    own_file = true;
  }
  VmArea* vma = vm_area_alloc(mm);
  if (!vma) {
    if (own_file) inode_put(m, file);
    if (vm_flags & VM_ACCOUNT) vm_unacct_memory(m, pages);
    return -ENOMEM;
  }
  vma->vm_start = addr;
  vma->vm_end = end;
  vma->vm_flags = vm_flags;
  vma->vm_pgoff = file ? pgoff : addr >> PAGE_SHIFT;
  if (file) {
    vma->vm_file = file;
    vma->vm_file_flags = f_flags;
    if (!own_file) inode_get(m, file);  // the VMA's own pin; the caller drops its own
  }
  vma->vm_page_prot = vma_page_prot(m, vma);
  vma_link(mm, vma);
  if (!own_file) vma_merge_neighbours(mm, vma);
  vm_stat_account(mm, vm_flags, pages);
  if (flags & MAP_POPULATE) {
    // The faults run as the fault handler's do, under the mmap lock alone,
    // so that reclaim may take back what they bring in.
    pt.unlock();
    populate_locked(mm, addr, end);
  }
  return static_cast<int64_t>(addr);
}

int do_munmap(MmStruct* mm, uint64_t start, uint64_t len) {
  if (start & (PAGE_SIZE - 1)) return -EINVAL;
  if (!len) return -EINVAL;
  const uint64_t task_size = mm->layout.task_size;
  len = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (!len || start > task_size || len > task_size - start) return -EINVAL;
  MmWriteGuard g(mm);
  return munmap_locked(mm, start, start + len);
}

uint64_t do_brk(MmStruct* mm, uint64_t brk) {
  MmWriteGuard g(mm);
  const uint64_t origbrk = mm->brk;
  if (brk < mm->start_brk) return origbrk;
  // RLIMIT_DATA on the heap's bytes, checked before the rounding to pages
  // (and before shrinking: a break above a lowered limit cannot move).
  if (check_data_rlimit(mm->rlimit_data, brk, mm->start_brk, 0, 0)) return origbrk;
  const uint64_t newbrk = (brk + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  const uint64_t oldbrk = (mm->brk + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  if (oldbrk == newbrk) {
    mm->brk = brk;
    return brk;
  }
  if (brk <= mm->brk) {
    // Always allow shrinking brk.
    mm->brk = brk;
    if (munmap_locked(mm, newbrk, oldbrk)) {
      mm->brk = origbrk;
      return origbrk;
    }
    return brk;
  }
  if (!check_brk_limits(mm, oldbrk, newbrk - oldbrk)) return origbrk;
  // Check against existing mmap mappings (and the stack's guard gap).
  if (VmArea* next = find_vma(mm, oldbrk); next && newbrk + PAGE_SIZE > vm_start_gap(next))
    return origbrk;
  // do_brk_flags(): VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT, charged first.
  const vm_flags_t flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT;
  const uint64_t len = newbrk - oldbrk;
  if (!may_expand_vm(mm, flags, len >> PAGE_SHIFT)) return origbrk;
  if (mm->map_count > mm->state->max_map_count) return origbrk;
  if (vm_enough_memory_mm(mm, static_cast<int64_t>(len >> PAGE_SHIFT))) return origbrk;
  VmArea* prev = nullptr;
  find_vma_prev(mm, oldbrk, &prev);
  if (prev && prev->vm_end == oldbrk && prev->vm_start >= mm->start_brk &&
      prev->vm_flags == flags && !prev->vm_file) {
    vma_set_end(mm, prev, newbrk);
  } else {
    VmArea* vma = vm_area_alloc(mm);
    if (!vma) {
      vm_unacct_memory(*mm->machine, static_cast<int64_t>(len >> PAGE_SHIFT));
      return origbrk;
    }
    vma->vm_start = oldbrk;
    vma->vm_end = newbrk;
    vma->vm_flags = flags;
    vma->vm_pgoff = oldbrk >> PAGE_SHIFT;
    vma->vm_page_prot = vma_page_prot(*mm->machine, vma);
    vma_link(mm, vma);
    vma_merge_neighbours(mm, vma);
  }
  vm_stat_account(mm, flags, static_cast<int64_t>(len >> PAGE_SHIFT));
  mm->brk = brk;
  return brk;
}

}  // namespace mmkit
