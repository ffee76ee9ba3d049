// /proc/<pid>/smaps_rollup, as Linux 6.1's fs/proc/task_mmu.c
// show_smaps_rollup() prints it: a header line spanning the first VMA's
// start to the last one's end with flags "---p" and the name [rollup],
// then __show_smap()'s counters in kB (labels padded to 16 columns, values
// right-aligned in 8).
//
// Each present entry of a normal page counts as smaps_account() and
// smaps_page_accumulate() count it: Rss the page; Pss the page divided by
// its mapcount; Shared_* when the mapcount is 2 or more, Private_*
// otherwise, *_Dirty when the entry or the page is dirty; Referenced when
// the entry is young or the page PG_referenced; Anonymous for anonymous
// pages (PageAnon: private anonymous memory and the copies a write made
// in a private file mapping). Pss goes to Pss_Anon for anonymous pages,
// Pss_Shmem for shmem, and Pss_File for page-cache pages, whose Rss is
// Shared_* when another mapping maps them too, else Private_*. The zero
// page is not a normal page and counts nowhere. A swap entry counts in Swap,
// and in SwapPss divided by the entries that share its slot (swp_swapcount).
// A shmem mapping's pages in swap are entries of the shmem inode, not of
// the page tables: smap_gather_stats() adds shmem_swap_usage() to Swap (not
// SwapPss) for a shared or read-only mapping, and for a private writable
// one counts only the indexes its page table leaves empty (a present or
// swapped entry there is the process's own copy).
#include <fmt/format.h>

#include <vector>

#include "filemap/filemap.h"
#include "procfs/procfs.h"
#include "swap/swap.h"
#include "vm/process.h"
#include "vm/rmap.h"

namespace mmkit {
namespace {

constexpr unsigned PSS_SHIFT = 12;  // fs/proc/task_mmu.c

struct MemSizeStats {
  uint64_t resident = 0, shared_clean = 0, shared_dirty = 0, private_clean = 0, private_dirty = 0,
           referenced = 0, anonymous = 0;
  uint64_t swap = 0;
  uint64_t pss = 0, pss_dirty = 0, pss_anon = 0, pss_file = 0, pss_shmem = 0,
           swap_pss = 0;  // << PSS_SHIFT
};

}  // namespace

std::string render_pid_smaps_rollup(Machine& m, int pid) {
  Process* p = find_process(m, pid);
  if (!p) return "";
  MmStruct* mm = p->mm;
  MemSizeStats mss;
  fmt::memory_buffer out;
  std::lock_guard g(mm->mmap_lock);
  // Private writable shmem mappings with pages in swap: the indexes whose
  // entries are empty, looked up once the page-table lock is dropped.
  std::vector<std::pair<Inode*, uint64_t>> shmem_holes;
  std::vector<uint64_t> shmem_swapped;  // per VMA, before the page-table lock
  for (auto& [end, vma] : mm->mm_mt) {
    Inode* f = vma->vm_file;
    shmem_swapped.push_back(
        f && f->shmem
            ? shmem_swap_usage(*f, vma->vm_pgoff, (vma->vm_end - vma->vm_start) >> PAGE_SHIFT)
            : 0);
  }
  std::unique_lock pt(mm->page_table_lock);  // reclaim frees no page under the walk
  const uint64_t zero_pfn = m.page_to_pfn(zero_page(m));
  size_t nth = 0;
  for (auto& [end, vma] : mm->mm_mt) {
    std::vector<bool> filled;
    if (const uint64_t swapped = shmem_swapped[nth++]) {
      if ((vma->vm_flags & VM_WRITE) && !(vma->vm_flags & VM_SHARED))
        filled.resize((vma->vm_end - vma->vm_start) >> PAGE_SHIFT);
      else
        mss.swap += swapped << PAGE_SHIFT;
    }
    const uint64_t start = vma->vm_start;  // (a structured binding is not captured)
    walk_range_all(mm->pgd, start, vma->vm_end, [&](uint64_t addr, pteval_t v) {
      if (!filled.empty()) filled[(addr - start) >> PAGE_SHIFT] = true;
      if (is_swap_pte(v)) {  // smaps_pte_entry()'s is_swap_pte() branch
        const unsigned count = swap_count(m, pte_to_swp_entry(mm->pgd.mode, v));
        mss.swap += PAGE_SIZE;
        mss.swap_pss += count >= 2 ? (PAGE_SIZE << PSS_SHIFT) / count : PAGE_SIZE << PSS_SHIFT;
        return;
      }
      if ((v & _PAGE_SPECIAL) || pte_pfn(v) == zero_pfn) return;  // vm_normal_page() is null
      const Page* page = m.pfn_to_page(pte_pfn(v));
      const uint64_t size = PAGE_SIZE;
      const bool dirty = (v & _PAGE_DIRTY) || page->test(PG_dirty);
      const int mapcount = page->mapcount.load(std::memory_order_relaxed);
      mss.resident += size;
      const bool anon = PageAnon(page);
      if (anon) mss.anonymous += size;
      if ((v & _PAGE_ACCESSED) || page->test(PG_referenced)) mss.referenced += size;
      const uint64_t pss = mapcount >= 2 ? (size << PSS_SHIFT) / mapcount : size << PSS_SHIFT;
      if (mapcount >= 2)
        (dirty ? mss.shared_dirty : mss.shared_clean) += size;
      else
        (dirty ? mss.private_dirty : mss.private_clean) += size;
      mss.pss += pss;
      if (dirty) mss.pss_dirty += pss;
      // smaps_page_accumulate(): anonymous, shmem (swap-backed) or file.
      (anon ? mss.pss_anon : page->test(PG_swapbacked) ? mss.pss_shmem : mss.pss_file) += pss;
    });
    for (uint64_t i = 0; i < filled.size(); ++i)
      if (!filled[i]) shmem_holes.emplace_back(vma->vm_file, vma->vm_pgoff + i);
  }
  pt.unlock();
  for (auto [inode, index] : shmem_holes)  // smaps_pte_hole_lookup()
    mss.swap += shmem_partial_swap_usage(*inode, index, index + 1) << PAGE_SHIFT;
  const uint64_t first = mm->mm_mt.empty() ? 0 : mm->mm_mt.begin()->second->vm_start;
  const uint64_t last = mm->mm_mt.empty() ? 0 : mm->mm_mt.rbegin()->second->vm_end;
  procfs_internal::vma_header(out, m, first, last, 0, 0, 0, 0, 0, "[rollup]");
  auto it = std::back_inserter(out);
  auto kb = [&](const char* label, uint64_t bytes) {
    fmt::format_to(it, "{}{:>8} kB\n", label, bytes >> 10);
  };
  kb("Rss:            ", mss.resident);
  kb("Pss:            ", mss.pss >> PSS_SHIFT);
  kb("Pss_Dirty:      ", mss.pss_dirty >> PSS_SHIFT);
  kb("Pss_Anon:       ", mss.pss_anon >> PSS_SHIFT);
  kb("Pss_File:       ", mss.pss_file >> PSS_SHIFT);
  kb("Pss_Shmem:      ", mss.pss_shmem >> PSS_SHIFT);
  kb("Shared_Clean:   ", mss.shared_clean);
  kb("Shared_Dirty:   ", mss.shared_dirty);
  kb("Private_Clean:  ", mss.private_clean);
  kb("Private_Dirty:  ", mss.private_dirty);
  kb("Referenced:     ", mss.referenced);
  kb("Anonymous:      ", mss.anonymous);
  kb("LazyFree:       ", 0);
  kb("AnonHugePages:  ", 0);
  kb("ShmemPmdMapped: ", 0);
  kb("FilePmdMapped:  ", 0);
  kb("Shared_Hugetlb: ", 0);
  fmt::format_to(it, "Private_Hugetlb: {:>7} kB\n", 0);
  kb("Swap:           ", mss.swap);
  kb("SwapPss:        ", mss.swap_pss >> PSS_SHIFT);
  kb("Locked:         ", 0);
  return fmt::to_string(out);
}

}  // namespace mmkit
