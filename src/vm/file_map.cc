// File mappings (mm/mmap.c, mm/memory.c do_read_fault, do_cow_fault,
// do_shared_fault, wp_page_shared; mm/rmap.c's file side; mm/truncate.c
// unmap_mapping_range; mm/msync.c): mmap of an open file, its faults, the
// reverse map of file pages through the inode's i_mmap, and the hooks the
// page cache calls to unmap or clean a file's pages.
//
//   not present, read (or exec)     -> the page-cache page (filemap_fault),
//                                      read-only
//   not present, write, private     -> a copy of it in a new anonymous page
//   not present, write, shared      -> the page-cache page, writable, dirty
//   present, write, shared          -> made writable and dirty
//                                      (page_mkwrite)
//   present, write, private         -> do_wp_page copies it, as any COW
//   past the file's end             -> SIGBUS
//
// A shared writable mapping maps pages read-only until written
// (vma_page_prot), and writeback write-protects a mapped page again before
// it writes it (folio_mkclean): every write through a mapping dirties its
// page, so fsync and msync see it.
//
// Locking: a fault holds the mmap lock, then the page's lock, then the
// page-table lock. The reverse map holds an inode's i_mmap lock and
// try-locks each address space's page-table lock, as the anonymous walk
// does. Truncate zaps under the i_mmap lock and each page-table lock
// (try-locked, retried), so it comes before or after a fault's install,
// and truncates the page cache between two such passes.
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "vm/fault_around.h"
#include "vm/mm.h"
#include "vm/process.h"
#include "vm/process_state.h"
#include "vm/rmap.h"

namespace mmkit {
namespace mm_internal {
namespace {

FaultResult fault_error(uint64_t addr, int err) {
  if (err == -ENOMEM) return {FaultStatus::kOom, 0, addr, "out of memory"};
  return {FaultStatus::kSigbus, BUS_ADRERR, addr,
          err == -EFAULT ? "access past the end of the mapped file" : "I/O error reading the file"};
}

uint64_t file_pgoff(const VmArea* vma, uint64_t addr) {
  return vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
}

// Visits each VMA of the page's file that covers its index, with that
// mm's page-table lock held, and the PTE there if it maps the page.
template <class Fn>
void file_rmap_walk(Machine& m, Page* page, RmapResult& r, Fn&& fn) {
  if (!page_is_file_cache(page)) return;
  auto* as = static_cast<AddressSpace*>(page->mapping_once());
  if (!as) return;
  const uint64_t pfn = m.page_to_pfn(page);
  std::lock_guard<std::mutex> g(as->i_mmap_lock);
  for (void* p : as->i_mmap) {
    auto* vma = static_cast<VmArea*>(p);
    MmStruct* mm = vma->vm_mm;
    if (mm->oom_killed.load(std::memory_order_relaxed)) continue;
    if (mm->page_table_lock.held_by_me() || !mm->page_table_lock.try_lock()) {
      r.busy = true;
      continue;
    }
    if (page->index >= vma->vm_pgoff && page->index - vma->vm_pgoff < vma->pages()) {
      const uint64_t addr = vma->vm_start + ((page->index - vma->vm_pgoff) << PAGE_SHIFT);
      const pteval_t v = pte_get(mm->pgd, addr);
      if (pte_present(v) && pte_pfn(v) == pfn && !(v & _PAGE_SPECIAL)) {
        ++r.mapped;
        fn(mm, addr, v);
      }
    }
    mm->page_table_lock.unlock();
  }
}

// unmap_mapping_range() from index `first` on, in every VMA of the file.
// Each address space's page-table lock is try-locked under the i_mmap
// lock (vma_link takes them the other way round); a busy one is retried
// until every VMA has been zapped.
void unmap_mapping(Machine& m, AddressSpace& as, uint64_t first) {
  (void)m;
  for (;;) {
    bool busy = false;
    {
      std::lock_guard<std::mutex> g(as.i_mmap_lock);
      for (void* p : as.i_mmap) {
        auto* vma = static_cast<VmArea*>(p);
        if (first >= vma->vm_pgoff + vma->pages()) continue;
        MmStruct* mm = vma->vm_mm;
        if (!mm->page_table_lock.try_lock()) {
          busy = true;
          continue;
        }
        const uint64_t from = first <= vma->vm_pgoff
                                  ? vma->vm_start
                                  : vma->vm_start + ((first - vma->vm_pgoff) << PAGE_SHIFT);
        if (from < vma->vm_end) zap_vma_range(mm, vma, from, vma->vm_end);
        mm->page_table_lock.unlock();
      }
    }
    if (!busy) return;
    std::this_thread::yield();
  }
}

// folio_mkclean(): every PTE mapping the page loses its write and dirty
// bits (a dirty one dirties the page); false when a table was busy.
bool page_mkclean(Machine& m, Page* page) {
  RmapResult r;
  file_rmap_walk(m, page, r, [&](MmStruct* mm, uint64_t addr, pteval_t v) {
    if (!(v & (_PAGE_RW | _PAGE_DIRTY))) return;
    pte_clear_flags_atomic(mm->pgd, addr, _PAGE_RW | _PAGE_DIRTY);
    flush_tlb_page(mm->pgd, addr);
  });
  return !r.busy;
}

}  // namespace

void page_add_file_rmap(Machine& m, Page* page) {
  if (page->mapcount.fetch_add(1, std::memory_order_acq_rel) == 0)
    mod_lruvec_page_state(m, page, NodeStat::NR_FILE_MAPPED, 1);
}

FaultResult do_file_fault(MmStruct* mm, VmArea* vma, uint64_t addr, Access access) {
  if (access != Access::kWrite && do_fault_around(mm, vma, addr)) return {};  // do_read_fault
  Machine& m = *mm->machine;
  bool major = false;
  int err = 0;
  Page* page = filemap_fault(m, *vma->vm_file, file_pgoff(vma, addr), mm->memcg, &major, &err);
  if (!page) return fault_error(addr, err);
  FaultResult r;
  r.major = major;
  const bool shared = vma->vm_flags & VM_SHARED;
  if (access == Access::kWrite && !shared) {
    // do_cow_fault(): the write goes to a private copy.
    unlock_page(page);
    Page* copy = nullptr;
    if (vma->anon_vma == 0)
      anon_vma_assign(vma, mm->state->next_anon_vma.fetch_add(1, std::memory_order_relaxed));
    copy = alloc_page(m, GFP_HIGHUSER_MOVABLE);
    if (copy && mem_cgroup_charge(m, copy, mm->memcg) != 0) {
      put_page(m, copy);
      copy = nullptr;
    }
    if (!copy) {
      put_page(m, page);
      return mm->oom_killed.load() ? FaultResult{FaultStatus::kKilled, 0, addr, "killed"}
                                   : fault_error(addr, -ENOMEM);
    }
    copy->set_atomic(PG_swapbacked);
    std::memcpy(m.phys_window(m.page_to_pfn(copy)), m.phys_window(m.page_to_pfn(page)), PAGE_SIZE);
    put_page(m, page);
    const pteval_t entry =
        pfn_pte(m.page_to_pfn(copy), vma->vm_page_prot) | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED;
    {
      std::lock_guard pt(mm->page_table_lock);
      if (pte_get(mm->pgd, addr) != 0) {  // filled meanwhile: retry
        put_page(m, copy);
        return r;
      }
      page_add_new_anon_rmap(m, copy, anon_vma_root(vma));
      copy->index = file_pgoff(vma, addr);
      pte_set(mm->pgd, addr, entry);
    }
    add_mm_counter(mm, MM_ANONPAGES, 1);
    lru_cache_add(m, copy);
    return r;
  }
  // do_read_fault() / do_shared_fault(): the page-cache page itself; our
  // reference becomes the mapping's.
  pteval_t entry = pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) | _PAGE_ACCESSED;
  if (access == Access::kWrite) {
    r.dirtied = filemap_dirty_mapped(m, page);  // page_mkwrite
    entry |= _PAGE_RW | _PAGE_DIRTY;
  }
  {
    std::lock_guard pt(mm->page_table_lock);
    if (pte_get(mm->pgd, addr) != 0) {
      unlock_page(page);
      put_page(m, page);
      return r;
    }
    page_add_file_rmap(m, page);
    if (!pte_set(mm->pgd, addr, entry)) {
      page_remove_rmap(m, page);
      unlock_page(page);
      put_page(m, page);
      return fault_error(addr, -ENOMEM);
    }
  }
  add_mm_counter(mm, mm_counter_file(page), 1);
  unlock_page(page);
  return r;
}

FaultResult do_file_wp_page(MmStruct* mm, VmArea* vma, uint64_t addr, pteval_t pte) {
  Machine& m = *mm->machine;
  Page* page = m.pfn_to_page(pte_pfn(pte));
  {
    std::lock_guard pt(mm->page_table_lock);
    if (!pte_present(pte_get(mm->pgd, addr)) || pte_pfn(pte_get(mm->pgd, addr)) != pte_pfn(pte))
      return {};
    get_page(page);
  }
  // wp_page_shared(): the page is dirtied under its lock (writeback holds
  // it while it cleans the PTEs and writes), then the entry made writable.
  FaultResult r;
  lock_page(page);
  if (page->mapping_once() == &vma->vm_file->i_data) {
    r.dirtied = filemap_dirty_mapped(m, page);
    std::lock_guard pt(mm->page_table_lock);
    const pteval_t now = pte_get(mm->pgd, addr);
    if (pte_present(now) && pte_pfn(now) == pte_pfn(pte)) {
      pte_set_flags_atomic(mm->pgd, addr, _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED);
      flush_tlb_page(mm->pgd, addr);
    }
  }
  unlock_page(page);
  put_page(m, page);
  return r;
}

}  // namespace mm_internal

RmapResult file_folio_referenced(Machine& m, Page* page) {
  RmapResult r;
  mm_internal::file_rmap_walk(m, page, r, [&](MmStruct* mm, uint64_t addr, pteval_t v) {
    if ((v & _PAGE_ACCESSED) && pte_clear_flags_atomic(mm->pgd, addr, _PAGE_ACCESSED)) {
      ++r.done;
      r.young_cpus |= mm->pgd.cpumask.load(std::memory_order_relaxed);
    }
  });
  return r;
}

RmapResult file_try_to_unmap(Machine& m, Page* page) {
  RmapResult r;
  mm_internal::file_rmap_walk(m, page, r, [&](MmStruct* mm, uint64_t addr, pteval_t) {
    const pteval_t old = pte_clear(mm->pgd, addr);
    flush_tlb_page(mm->pgd, addr);
    if (old & _PAGE_DIRTY) filemap_dirty_mapped(m, page);
    page_remove_rmap(m, page);
    mm_internal::add_mm_counter(mm, mm_internal::mm_counter_file(page), -1);
    put_page(m, page);  // the mapping's reference
    ++r.done;
  });
  return r;
}

int64_t do_mmap_fd(MmStruct* mm, FileTable& ft, uint64_t addr, uint64_t len, int prot, int flags,
                   int fd, uint64_t offset) {
  if (flags & MAP_ANONYMOUS) return do_mmap(mm, addr, len, prot, flags);
  if (offset & (PAGE_SIZE - 1)) return -EINVAL;
  Machine& m = *mm->machine;
  int f_flags = 0;
  Inode* inode = fget_inode(m, ft, fd, &f_flags);
  if (!inode) return -EBADF;
  const int acc = f_flags & O_ACCMODE;
  int64_t r;
  if (acc == O_WRONLY) {
    r = -EACCES;  // a mapping must be readable
  } else if ((flags & MAP_TYPE) != MAP_PRIVATE && (prot & PROT_WRITE) && acc != O_RDWR) {
    r = -EACCES;
  } else {
    set_mapping_ops(m, mm_internal::unmap_mapping, mm_internal::page_mkclean);
    r = mm_internal::mmap_region(mm, addr, len, prot, flags, inode, f_flags, offset >> PAGE_SHIFT);
  }
  inode_put(m, inode);
  return r;
}

int do_msync(MmStruct* mm, uint64_t start, uint64_t len, int flags) {
  if ((start & (PAGE_SIZE - 1)) || (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) ||
      ((flags & MS_ASYNC) && (flags & MS_SYNC)))
    return -EINVAL;
  len = (len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
  const uint64_t end = start + len;
  if (end < start) return -ENOMEM;
  struct Range {
    Inode* inode;
    uint64_t first, last;
  };
  std::vector<Range> ranges;
  bool unmapped = false;
  Machine& m = *mm->machine;
  {
    std::lock_guard g(mm->mmap_lock);
    uint64_t at = start;
    while (at < end) {
      VmArea* vma = find_vma(mm, at);
      if (!vma || vma->vm_start >= end) {
        unmapped = true;
        break;
      }
      if (vma->vm_start > at) unmapped = true;
      const uint64_t lo = std::max(at, vma->vm_start), hi = std::min(end, vma->vm_end);
      if (vma->vm_file && (vma->vm_flags & VM_SHARED) && (flags & MS_SYNC)) {
        inode_get(m, vma->vm_file);
        ranges.push_back(
            {vma->vm_file, mm_internal::file_pgoff(vma, lo), mm_internal::file_pgoff(vma, hi - 1)});
      }
      at = hi;
    }
  }
  int err = 0;
  for (const Range& rg : ranges) {
    if (const int e = filemap_write_range(m, *rg.inode, rg.first, rg.last); e && !err) err = e;
    inode_put(m, rg.inode);
  }
  if (err) return err;
  return unmapped ? -ENOMEM : 0;
}

}  // namespace mmkit
