// mm_struct's life: the arch layout, mm_alloc() and mmput()/exit_mmap()
// (kernel/fork.c, mm/mmap.c), and the per-mm counters (vm_stat_account,
// rss_stat, the high-water marks).
//
// Layout without address-space randomisation (arch/x86/mm/mmap.c,
// mm/util.c mmap_base()): the gap below the stack is RLIMIT_STACK plus
// stack_guard_gap, clamped to [128 MiB, 5/6 of the map window], so
// mmap_base is 128 MiB below the top of the window on both arches.
#include <algorithm>

#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process_state.h"
#include "vm/rmap.h"

namespace mmkit {

MmLayout mm_layout(const Machine& m) {
  MmLayout l{};
  l.mode = paging_mode(m);
  if (l.mode == PagingMode::kI386) {
    l.task_size = 0xC0000000ull;  // PAGE_OFFSET of the 3G/1G split
    l.map_window = l.task_size;
    l.start_brk = 0x0804c000ull;  // just above a small ELF at 0x08048000
  } else {
    // DEFAULT_MAP_WINDOW: (1 << 47) - PAGE_SIZE. With LA57 the address space
    // reaches (1 << 56) - PAGE_SIZE, but only a hint above the window (or
    // MAP_FIXED) places a mapping there, as in Linux.
    l.map_window = 0x7ffffffff000ull;
    l.task_size = l.mode == PagingMode::kX86_64_5Level ? 0x00fffffffffff000ull : l.map_window;
    l.start_brk = 0x555555559000ull;  // just above a small PIE at 0x555555554000
  }
  uint64_t gap = kStackRlimit + stack_guard_gap;
  gap = std::clamp<uint64_t>(gap, 128ull << 20, l.map_window / 6 * 5);
  l.mmap_base = (l.map_window - gap) & ~(PAGE_SIZE - 1);
  l.task_unmapped_base = (l.map_window / 3 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  l.stack_top = l.map_window;
  return l;
}

MmStruct* mm_alloc(Machine& m) {
  ProcessState& st = process_state(m);
  auto* mm = new MmStruct;
  mm->machine = &m;
  mm->state = &st;
  mm->layout = mm_layout(m);
  if (!pgd_alloc(m, mm->layout.mode, mm->pgd)) {
    delete mm;
    return nullptr;
  }
  mm->mmap_base = mm->layout.mmap_base;
  mm->start_brk = mm->brk = mm->layout.start_brk;
  mm->rlimit_as = m.config().rlimit_as;
  mm->rlimit_data = m.config().rlimit_data;
  std::lock_guard<std::mutex> g(st.lock);
  st.mms.insert(mm);
  return mm;
}

namespace mm_internal {

uint64_t vm_start_gap(const VmArea* vma) {
  if (!(vma->vm_flags & VM_GROWSDOWN)) return vma->vm_start;
  return vma->vm_start > stack_guard_gap ? vma->vm_start - stack_guard_gap : 0;
}

uint64_t pgtables_ceiling(const MmStruct* mm) {
  constexpr uint64_t kGiB = 1ull << 30;
  return (mm->layout.task_size + kGiB - 1) & ~(kGiB - 1);
}

void vm_stat_account(MmStruct* mm, vm_flags_t flags, int64_t npages) {
  mm->total_vm += npages;
  if ((flags & (VM_EXEC | VM_WRITE | VM_GROWSDOWN)) == VM_EXEC)
    mm->exec_vm += npages;
  else if (flags & VM_GROWSDOWN)
    mm->stack_vm += npages;
  else if ((flags & (VM_WRITE | VM_SHARED | VM_GROWSDOWN)) == VM_WRITE)
    mm->data_vm += npages;
  mm->hiwater_vm = std::max(mm->hiwater_vm, mm->total_vm);
}

void update_hiwater_rss(MmStruct* mm) {
  const uint64_t rss = mm->get_mm_rss();
  uint64_t old = mm->hiwater_rss.load(std::memory_order_relaxed);
  while (rss > old && !mm->hiwater_rss.compare_exchange_weak(old, rss)) {
  }
}

void add_mm_counter(MmStruct* mm, MmCounter c, int64_t n) {
  mm->rss_stat[c].fetch_add(n, std::memory_order_relaxed);
}

FileRss count_file_rss(MmStruct* mm, uint64_t start, uint64_t end) {
  Machine& m = *mm->machine;
  const uint64_t zero_pfn = m.page_to_pfn(zero_page(m));
  FileRss r;
  walk_range(mm->pgd, start, end, [&](uint64_t, pteval_t v) {
    if (v & _PAGE_SPECIAL || pte_pfn(v) == zero_pfn) return;
    const Page* page = m.pfn_to_page(pte_pfn(v));
    if (PageAnon(page)) return;
    ++(mm_counter_file(page) == MM_SHMEMPAGES ? r.shmem : r.file);
  });
  return r;
}

void zap_vma_range(MmStruct* mm, VmArea* vma, uint64_t start, uint64_t end) {
  update_hiwater_rss(mm);
  // zap_range() moves NR_ANON_PAGES itself where an anonymous page's last
  // mapping goes (page_remove_rmap); what it returns are the normal pages
  // this VMA mapped, all of one kind.
  int64_t swapents = 0;
  // A file VMA maps page-cache pages and private copies: counted apart.
  const FileRss file = vma->vm_file ? count_file_rss(mm, start, end) : FileRss{};
  const int64_t pages =
      static_cast<int64_t>(zap_range(mm->pgd, start, end, [&](uint64_t, pteval_t v) {
        free_swap_and_cache(*mm->machine, pte_to_swp_entry(mm->pgd.mode, v));
        ++swapents;
      }));
  if (file.file) add_mm_counter(mm, MM_FILEPAGES, -file.file);
  if (file.shmem) add_mm_counter(mm, MM_SHMEMPAGES, -file.shmem);
  add_mm_counter(mm, MM_ANONPAGES, -(pages - file.file - file.shmem));
  if (swapents) add_mm_counter(mm, MM_SWAPENTS, -swapents);
}

}  // namespace mm_internal

void mmput(MmStruct* mm) {
  using namespace mm_internal;
  // The last reference tears the address space down (the owner's, or the
  // OOM reaper's when the owner exited while it reaped).
  if (mm->mm_users.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  ProcessState& st = *mm->state;
  {
    MmWriteGuard g(mm);
    // exit_mmap(): unmap_vmas, free_pgtables, then the VMAs themselves.
    int64_t nr_accounted = 0;
    for (auto& [end, vma] : mm->mm_mt) {
      zap_vma_range(mm, vma, vma->vm_start, vma->vm_end);
      if (vma->vm_flags & VM_ACCOUNT) nr_accounted += static_cast<int64_t>(vma->pages());
    }
    // exit_mmap()'s lru_add_drain(): pages this CPU queued for the LRU
    // are released with the rest.
    if (memcg_state_if(*mm->machine)) lru_add_drain(*mm->machine);
    const uint64_t ceiling = pgtables_ceiling(mm);
    free_pgtables(mm->pgd, 0, ceiling, 0, ceiling);
    flush_tlb_mm(mm->pgd);
    for (auto& [end, vma] : mm->mm_mt) vm_area_free(vma);
    mm->mm_mt.clear();
    mm->map_count = 0;
    mm->free_area_cache = MmStruct::kNoFreeAreaCache;
    mm->cached_hole_size = 0;
    // Through the mm's own state: at machine teardown the machine's slot is
    // already empty, and process_state() would make a new one.
    if (nr_accounted) st.vm_committed_as.fetch_sub(nr_accounted, std::memory_order_relaxed);
    pgd_free(mm->pgd);
  }
  {
    std::lock_guard<std::mutex> g(st.lock);
    st.mms.erase(mm);
  }
  delete mm;
}

}  // namespace mmkit
