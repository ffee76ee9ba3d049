// Fault-around (mm/memory.c do_fault_around, mm/filemap.c
// filemap_map_pages, next_uptodate_page): before a read fault on a file
// mapping reads its page, the pages of the file that are already in the
// page cache around it are mapped in one go, as Linux's do_read_fault()
// calls ->map_pages() first. A program walking a cached file then takes
// one fault per window instead of one per page.
//
// The window (do_fault_around, Linux 6.1):
//
//   nr_pages = fault_around_bytes >> PAGE_SHIFT
//   address  = max(addr & ~(nr_pages * PAGE_SIZE - 1), vm_start)
//   start    = pgoff(addr) - ((addr - address) >> PAGE_SHIFT)
//   end      = min(the last entry of addr's page table,
//                  the VMA's last page, start + nr_pages - 1)
//
// A page is mapped only if it is cached (not a shadow entry), uptodate,
// not a readahead marker (the real fault must see it, to read ahead),
// can be locked at once, still belongs to the file, lies below i_size, and
// its entry is empty. It is mapped with the VMA's protection and never
// writable: a private mapping copies on the write fault, and a shared
// writable one maps read-only until a write dirties the page
// (writenotify). The entry is young, as x86's protection_map makes it
// (arch_wants_old_prefaulted_pte() is false there). Each mapped page
// takes a reference, a mapcount (NR_FILE_MAPPED on its first) and an
// MM_FILEPAGES (or MM_SHMEMPAGES) count, as do_set_pte() does. Write faults do not fault
// around (do_cow_fault, do_shared_fault).
//
// Locking: the caller holds the mmap lock. The pages are looked up under
// the i_pages lock with a reference each; then each is try-locked and
// installed under the page-table lock (page lock before page-table lock,
// as every fault).
#include "vm/fault_around.h"

#include <algorithm>
#include <bit>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/workingset.h"
#include "page_alloc/page_alloc.h"
#include "vm/mm.h"

namespace mmkit {
namespace mm_internal {

bool do_fault_around(MmStruct* mm, VmArea* vma, uint64_t addr) {
  Machine& m = *mm->machine;
  const uint64_t ptrs_per_pte = uint64_t{1} << paging_format(mm->pgd.mode).index_bits;
  // The config allows only a power of two up to a page table's span; a
  // value set on the machine since is taken as fault_around_bytes_set()
  // would store it (rounded down, at most PTRS_PER_PTE pages).
  const uint64_t nr_pages =
      std::bit_floor(std::min<uint64_t>(m.fault_around_bytes >> PAGE_SHIFT, ptrs_per_pte));
  if (nr_pages <= 1 || !vma->vm_file) return false;
  const uint64_t mask = ~(nr_pages * PAGE_SIZE - 1);
  const uint64_t address = std::max(addr & mask, vma->vm_start);
  const uint64_t off = ((addr - address) >> PAGE_SHIFT) & (ptrs_per_pte - 1);
  const uint64_t pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
  const uint64_t start_pgoff = pgoff - off;
  const uint64_t table_end =
      start_pgoff - ((address >> PAGE_SHIFT) & (ptrs_per_pte - 1)) + ptrs_per_pte - 1;
  const uint64_t end_pgoff =
      std::min({table_end, vma->vm_pgoff + vma->pages() - 1, start_pgoff + nr_pages - 1});

  Inode& inode = *vma->vm_file;
  AddressSpace& as = inode.i_data;
  // Pages wholly past the end of the file are not mapped (SIGBUS is the
  // real fault's to give).
  const uint64_t max_idx =
      (inode.i_size.load(std::memory_order_acquire) + PAGE_SIZE - 1) >> PAGE_SHIFT;
  std::vector<Page*> pages;
  {
    SpinGuard g(as.i_pages_lock);
    for (uint64_t index = start_pgoff; const uintptr_t v = as.i_pages.find(&index, end_pgoff);
         ++index) {
      Page* page = reinterpret_cast<Page*>(v);
      if (!is_shadow(v) && page->test(PG_uptodate) && !page->test(PG_readahead)) {
        get_page(page);  // the cache's reference keeps it above zero
        pages.push_back(page);
      }
      if (index == end_pgoff) break;
    }
  }
  bool mapped_fault = false;
  unsigned mapped = 0;
  for (Page* page : pages) {
    const uint64_t index = page->index;
    if (!trylock_page(page)) {
      put_page(m, page);
      continue;
    }
    if (page->mapping_once() != &as || !page->test(PG_uptodate) || index >= max_idx ||
        index < start_pgoff || index > end_pgoff) {
      unlock_page(page);
      put_page(m, page);
      continue;
    }
    const uint64_t at = vma->vm_start + ((index - vma->vm_pgoff) << PAGE_SHIFT);
    bool installed = false;
    {
      std::lock_guard pt(mm->page_table_lock);
      if (pte_get(mm->pgd, at) == 0 &&
          pte_set(mm->pgd, at,
                  (pfn_pte(m.page_to_pfn(page), vma->vm_page_prot) & ~_PAGE_RW) | _PAGE_ACCESSED)) {
        page_add_file_rmap(m, page);
        installed = true;
      }
    }
    unlock_page(page);
    if (!installed) {
      put_page(m, page);
      continue;
    }
    add_mm_counter(mm, mm_counter_file(page), 1);  // our reference is now the mapping's
    if (at == addr) mapped_fault = true;
    ++mapped;
  }
  // filemap_map_pages(): each page found in the cache and mapped counts as
  // a hit against the file's mmap misses.
  if (mapped) {
    const unsigned miss = inode.mmap_miss.load(std::memory_order_relaxed);
    inode.mmap_miss.store(miss - std::min(miss, mapped), std::memory_order_relaxed);
  }
  return mapped_fault;
}

}  // namespace mm_internal
}  // namespace mmkit
