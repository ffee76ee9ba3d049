// check(mm): the address space's invariants, as equations over its VMAs,
// its page tables and every other address space of the machine.
//
//   VMAs: vm_start < vm_end, page aligned, sorted and disjoint, each keyed
//         by its vm_end, map_count = the number of VMAs, below TASK_SIZE
//   entries: every present entry lies inside a VMA; a writable entry only
//         in a VM_WRITE VMA; a user entry only in an accessible VMA; the
//         zero page never writable
//   RSS: MM_ANONPAGES = normal entries in private VMAs, MM_SHMEMPAGES =
//         entries in shared ones
//   mapcount: each page this mm maps is mapped by exactly page->mapcount
//         entries over all address spaces of the machine
//   page tables: vm/pgtable.h's check (nr_tables = tables reachable, ...)
//   swap: MM_SWAPENTS = swap entries in this mm's tables, each inside a VMA;
//         every slot's swap_map count = the entries for it over all address
//         spaces and shmem indexes (swap_check_counts), SWAP_HAS_CACHE only
//         with a cached page
#include <fmt/format.h>

#include <algorithm>
#include <thread>
#include <unordered_map>
#include <vector>

#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/process.h"
#include "vm/rmap.h"

namespace mmkit {
namespace {

// Every address space's mmap lock at once, for one snapshot of them all.
// Blocking on one while holding another would order the locks against
// dup_mm's (parent, then child) and could deadlock with a fork; instead
// only the first is waited for, with nothing held, and the others are
// tried; when one is busy all are dropped and the busy one goes first next
// time (std::lock's back-off). With every mmap lock held no fault runs, so
// the page-table locks, which only reclaim's try-locks take besides, are
// then had one by one: reclaim changes nothing while the snapshot is
// looked at.
class AllMmapLocks {
 public:
  explicit AllMmapLocks(std::vector<MmStruct*> mms) : mms_(std::move(mms)) {
    size_t first = 0;
    for (;;) {
      mms_[first]->mmap_lock.lock();
      size_t busy = mms_.size();
      for (size_t i = 0; i < mms_.size() && busy == mms_.size(); ++i)
        if (i != first && !mms_[i]->mmap_lock.try_lock()) busy = i;
      if (busy == mms_.size()) {
        // Tried, not waited for: dup_mm holds a parent's and then a
        // child's, an order this loop cannot follow for every pair.
        for (MmStruct* mm : mms_)
          while (!mm->page_table_lock.try_lock()) std::this_thread::yield();
        return;
      }
      for (size_t i = 0; i < busy; ++i)
        if (i != first) mms_[i]->mmap_lock.unlock();
      mms_[first]->mmap_lock.unlock();
      first = busy;
      std::this_thread::yield();
    }
  }
  ~AllMmapLocks() {
    for (MmStruct* mm : mms_) {
      mm->page_table_lock.unlock();
      mm->mmap_lock.unlock();
    }
  }
  AllMmapLocks(const AllMmapLocks&) = delete;
  AllMmapLocks& operator=(const AllMmapLocks&) = delete;

 private:
  std::vector<MmStruct*> mms_;
};

std::vector<MmStruct*> with(std::vector<MmStruct*> mms, MmStruct* mm) {
  if (std::find(mms.begin(), mms.end(), mm) == mms.end()) mms.push_back(mm);
  return mms;
}

}  // namespace

std::string check(MmStruct* mm) {
  Machine& m = *mm->machine;
  const std::vector<MmStruct*> mms = with(machine_mms(m), mm);
  AllMmapLocks locks(mms);
  const uint64_t zero_pfn = m.page_to_pfn(zero_page(m));
  uint64_t prev_end = 0;
  int count = 0;
  for (auto& [key, vma] : mm->mm_mt) {
    ++count;
    if (key != vma->vm_end)
      return fmt::format("VMA {:#x}-{:#x} keyed by {:#x}", vma->vm_start, vma->vm_end, key);
    if (vma->vm_start >= vma->vm_end) return fmt::format("empty VMA at {:#x}", vma->vm_start);
    if ((vma->vm_start | vma->vm_end) & (PAGE_SIZE - 1))
      return fmt::format("VMA {:#x}-{:#x} not page aligned", vma->vm_start, vma->vm_end);
    if (vma->vm_start < prev_end)
      return fmt::format("VMA {:#x}-{:#x} overlaps the one before", vma->vm_start, vma->vm_end);
    if (vma->vm_end > mm->layout.task_size)
      return fmt::format("VMA {:#x}-{:#x} beyond TASK_SIZE", vma->vm_start, vma->vm_end);
    if (vma->vm_mm != mm) return fmt::format("VMA {:#x} belongs to another mm", vma->vm_start);
    prev_end = vma->vm_end;
  }
  if (count != mm->map_count) return fmt::format("map_count {} but {} VMAs", mm->map_count, count);
  // The top-down search's cache (mmap.cc): no gap wholly at or above
  // free_area_cache is longer than cached_hole_size.
  {
    using mm_internal::gap_within;
    const uint64_t low = mm_internal::mmap_search_low(), high = mm->mmap_base;
    uint64_t gap_lo = 0;
    auto cache_error = [&](uint64_t gap_hi) -> std::string {
      if (gap_lo < mm->free_area_cache ||
          gap_within(gap_lo, gap_hi, low, high) <= mm->cached_hole_size)
        return "";
      return fmt::format("gap {:#x}-{:#x} above free_area_cache {:#x} is longer than {:#x}", gap_lo,
                         gap_hi, mm->free_area_cache, mm->cached_hole_size);
    };
    for (auto& [key, vma] : mm->mm_mt) {
      if (std::string e = cache_error(mm_internal::vm_start_gap(vma)); !e.empty()) return e;
      gap_lo = vma->vm_end;
    }
    if (std::string e = cache_error(mm->layout.task_size); !e.empty()) return e;
  }

  int64_t anon = 0, shmem = 0, file = 0;
  std::string err;
  std::unordered_map<uint64_t, int> mapped;  // pfn -> entries in this mm
  walk_range(mm->pgd, 0, mm->layout.task_size, [&](uint64_t addr, pteval_t v) {
    if (!err.empty()) return;
    VmArea* vma = find_vma(mm, addr);
    if (!vma || vma->vm_start > addr) {
      err = fmt::format("present entry at {:#x} outside every VMA", addr);
      return;
    }
    if (pte_write(v) && !(vma->vm_flags & VM_WRITE)) {
      err = fmt::format("writable entry at {:#x} in a VMA without VM_WRITE", addr);
      return;
    }
    if ((v & _PAGE_USER) && !(vma->vm_flags & VM_ACCESS_FLAGS)) {
      err = fmt::format("user entry at {:#x} in a PROT_NONE VMA", addr);
      return;
    }
    const bool zero = (v & _PAGE_SPECIAL) || pte_pfn(v) == zero_pfn;
    if (zero) {
      if (pte_write(v)) err = fmt::format("writable zero page at {:#x}", addr);
      return;
    }
    const Page* page = m.pfn_to_page(pte_pfn(v));
    if (vma->vm_file && !PageAnon(page))
      ++(mm_internal::mm_counter_file(page) == MM_SHMEMPAGES ? shmem : file);
    else
      ++anon;
    ++mapped[pte_pfn(v)];
  });
  if (!err.empty()) return err;
  if (anon != mm->rss_stat[MM_ANONPAGES].load())
    return fmt::format("MM_ANONPAGES {} but {} anonymous entries",
                       mm->rss_stat[MM_ANONPAGES].load(), anon);
  if (file != mm->rss_stat[MM_FILEPAGES].load())
    return fmt::format("MM_FILEPAGES {} but {} file entries", mm->rss_stat[MM_FILEPAGES].load(),
                       file);
  if (shmem != mm->rss_stat[MM_SHMEMPAGES].load())
    return fmt::format("MM_SHMEMPAGES {} but {} shared entries", mm->rss_stat[MM_SHMEMPAGES].load(),
                       shmem);
  if (std::string e = check(static_cast<const PageTable&>(mm->pgd)); !e.empty())
    return "page tables: " + e;

  // Count the other address spaces' entries for the pages this one maps.
  for (MmStruct* other : mms) {
    if (other == mm) continue;
    walk_range(other->pgd, 0, other->layout.task_size, [&](uint64_t, pteval_t v) {
      if (auto it = mapped.find(pte_pfn(v)); it != mapped.end()) ++it->second;
    });
  }
  for (auto [pfn, n] : mapped) {
    const int mc = m.pfn_to_page(pfn)->mapcount.load();
    if (mc != n) return fmt::format("pfn {:#x}: mapcount {} but {} entries map it", pfn, mc, n);
  }

  int64_t swapents = 0;
  walk_range_all(mm->pgd, 0, mm->layout.task_size, [&](uint64_t addr, pteval_t v) {
    if (!err.empty() || !is_swap_pte(v)) return;
    VmArea* vma = find_vma(mm, addr);
    if (!vma || vma->vm_start > addr)
      err = fmt::format("swap entry at {:#x} outside every VMA", addr);
    ++swapents;
  });
  if (!err.empty()) return err;
  if (swapents != mm->rss_stat[MM_SWAPENTS].load())
    return fmt::format("MM_SWAPENTS {} but {} swap entries", mm->rss_stat[MM_SWAPENTS].load(),
                       swapents);
  // With every mmap lock held no entry is made or dropped (faults, zaps,
  // reclaim's unmapping and swapoff all hold the address space's lock).
  // shmem's indexes hold swap references too; their changes wait while
  // the snapshot lives.
  const ShmemSwapSnapshot snap = shmem_swap_snapshot(m);
  return swap_check_counts(m, [&](const std::function<void(SwpEntry)>& visit) {
    for (MmStruct* any : mms)
      walk_range_all(any->pgd, 0, any->layout.task_size, [&](uint64_t, pteval_t v) {
        if (is_swap_pte(v)) visit(pte_to_swp_entry(any->pgd.mode, v));
      });
    for (uint64_t e : snap.entries) visit(SwpEntry{e});
  });
}

}  // namespace mmkit
