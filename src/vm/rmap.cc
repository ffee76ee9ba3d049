// The reverse map: the anon_vma registry, rmap_walk, folio_referenced,
// try_to_unmap, swap entries in PTEs, and swapoff's walk (mm/rmap.c,
// mm/swapfile.c unuse_mm). See rmap.h.
#include "vm/rmap.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "filemap/filemap.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap.h"
#include "vm/process.h"
#include "vm/process_state.h"

namespace mmkit {
namespace mm_internal {
thread_local MmStruct* tls_fault_mm = nullptr;
}  // namespace mm_internal

namespace {

// Reclaim never waits for an address space: one whose page-table lock is
// taken is skipped (rmap.h). The lock is held for a few stores by a fault,
// longer only by munmap, mprotect, mremap, fork and exit.
bool lock_for_reclaim(MmStruct* mm) {
  return mm->page_table_lock.try_lock();
}

void register_vma(ProcessState& st, VmArea* vma, uint64_t id) {
  st.anon_vma_vmas[id].insert(vma);
}

// Visits each VMA that may map `page`, with its mm's page-table lock held,
// and the present PTE there if it maps the page. The rmap lock keeps the
// VMAs alive (they leave the registry before they are freed), the
// page-table lock their bounds and the tables under them.
template <class Fn>
void rmap_walk(Machine& m, Page* page, RmapResult& r, Fn&& fn) {
  const auto mapping = reinterpret_cast<uintptr_t>(page->mapping_once());
  if (!(mapping & PAGE_MAPPING_ANON)) return;
  ProcessState& st = process_state(m);
  const uint64_t pfn = m.page_to_pfn(page);
  std::lock_guard<std::mutex> g(st.rmap_lock);
  auto it = st.anon_vma_vmas.find(mapping >> 2);
  if (it == st.anon_vma_vmas.end()) return;
  for (VmArea* vma : it->second) {
    MmStruct* mm = vma->vm_mm;
    if (mm->oom_killed.load(std::memory_order_relaxed)) continue;  // the reaper has it
    if (mm->page_table_lock.held_by_me() || !lock_for_reclaim(mm)) {
      r.busy = true;
      continue;
    }
    if (page->index >= vma->vm_pgoff) {
      const uint64_t addr = vma->vm_start + ((page->index - vma->vm_pgoff) << PAGE_SHIFT);
      if (addr < vma->vm_end) {
        const pteval_t v = pte_get(mm->pgd, addr);
        if (pte_present(v) && pte_pfn(v) == pfn && !(v & _PAGE_SPECIAL)) {
          ++r.mapped;
          fn(mm, vma, addr, v);
        }
      }
    }
    mm->page_table_lock.unlock();
  }
}

}  // namespace

void anon_vma_link(VmArea* vma) {
  if (vma->avc.empty()) return;
  ProcessState& st = *vma->vm_mm->state;
  std::lock_guard<std::mutex> g(st.rmap_lock);
  for (uint64_t id : vma->avc) register_vma(st, vma, id);
}

void anon_vma_unlink(VmArea* vma) {
  if (vma->avc.empty()) return;
  ProcessState& st = *vma->vm_mm->state;
  std::lock_guard<std::mutex> g(st.rmap_lock);
  for (uint64_t id : vma->avc) {
    auto it = st.anon_vma_vmas.find(id);
    if (it == st.anon_vma_vmas.end()) continue;
    it->second.erase(vma);
    if (it->second.empty()) st.anon_vma_vmas.erase(it);
  }
}

void anon_vma_assign(VmArea* vma, uint64_t id) {
  ProcessState& st = *vma->vm_mm->state;
  std::lock_guard<std::mutex> g(st.rmap_lock);
  vma->anon_vma = id;
  if (std::find(vma->avc.begin(), vma->avc.end(), id) == vma->avc.end()) vma->avc.push_back(id);
  register_vma(st, vma, id);
}

void anon_vma_inherit(VmArea* dst, const VmArea* src) {
  ProcessState& st = *dst->vm_mm->state;
  std::lock_guard<std::mutex> g(st.rmap_lock);
  if (!dst->anon_vma) dst->anon_vma = src->anon_vma;
  for (uint64_t id : src->avc)
    if (std::find(dst->avc.begin(), dst->avc.end(), id) == dst->avc.end()) {
      dst->avc.push_back(id);
      register_vma(st, dst, id);
    }
}

pteval_t swp_entry_to_pte(PagingMode mode, SwpEntry e) {
  return mode == PagingMode::kI386 ? swp_entry_to_pte_32(e) : swp_entry_to_pte_64(e);
}

SwpEntry pte_to_swp_entry(PagingMode mode, pteval_t pte) {
  return mode == PagingMode::kI386 ? pte_to_swp_entry_32(pte) : pte_to_swp_entry_64(pte);
}

RmapResult folio_referenced(Machine& m, Page* page) {
  if (page_is_file_cache(page)) return file_folio_referenced(m, page);
  RmapResult r;
  rmap_walk(m, page, r, [&](MmStruct* mm, VmArea*, uint64_t addr, pteval_t v) {
    if (!(v & _PAGE_ACCESSED)) return;
    // ptep_test_and_clear_young(): x86 flushes nothing here; a translation
    // the TLB still holds hides references until the caller's batch flush
    // (young_cpus, docs/reclaim.md).
    if (pte_clear_flags_atomic(mm->pgd, addr, _PAGE_ACCESSED)) {
      ++r.done;
      r.young_cpus |= mm->pgd.cpumask.load(std::memory_order_relaxed);
    }
  });
  return r;
}

RmapResult try_to_unmap(Machine& m, Page* page) {
  if (page_is_file_cache(page)) return file_try_to_unmap(m, page);
  RmapResult r;
  const SwpEntry entry{page->private_once()};
  void* const mapping = page->mapping_once();
  rmap_walk(m, page, r, [&](MmStruct* mm, VmArea*, uint64_t addr, pteval_t) {
    if (!swap_duplicate(m, entry)) return;
    // ptep_clear_flush(): no CPU may write through the old translation once
    // the data is on its way out.
    const pteval_t old = pte_clear(mm->pgd, addr);
    flush_tlb_page(mm->pgd, addr);
    if (old & _PAGE_DIRTY) page->set_atomic(PG_dirty);
    pte_set(mm->pgd, addr, swp_entry_to_pte(mm->pgd.mode, entry));
    if (page_remove_rmap(m, page)) m.mod_node_page_state(page, NodeStat::NR_ANON_PAGES, -1);
    mm_internal::add_mm_counter(mm, MM_ANONPAGES, -1);
    mm_internal::add_mm_counter(mm, MM_SWAPENTS, 1);
    put_page(m, page);  // the mapping's reference
    ++r.done;
  });
  // The swap cache keeps the page filed under its anon_vma, so a later
  // swap-in from another branch of the family maps it where rmap finds it.
  if (page->test(PG_swapcache) && !page->mapping_once()) page->set_mapping_once(mapping);
  return r;
}

namespace {

// unuse_mm(): every swap entry of `type` in mm's page tables comes back.
int unuse_mm(Machine& m, MmStruct* mm, unsigned type) {
  std::lock_guard g(mm->mmap_lock);
  for (auto& [end, vma] : mm->mm_mt) {
    if (vma->vm_file && (vma->vm_flags & VM_SHARED)) continue;  // no swap entries
    std::vector<uint64_t> addrs;
    walk_range_all(mm->pgd, vma->vm_start, vma->vm_end, [&](uint64_t addr, pteval_t v) {
      if (is_swap_pte(v) && swp_type(pte_to_swp_entry(mm->pgd.mode, v)) == type)
        addrs.push_back(addr);
    });
    for (uint64_t addr : addrs) {
      const pteval_t v = pte_get(mm->pgd, addr);
      if (!is_swap_pte(v)) continue;
      const FaultResult fr = mm_internal::do_swap_page(mm, vma, addr, Access::kRead, v);
      if (!fr.ok()) return -ENOMEM;
    }
  }
  return 0;
}

}  // namespace

void register_swap_unuse(Machine& m) {
  set_swap_unuse(m, [](Machine& mm, unsigned type) {
    for (MmStruct* as : machine_mms(mm))
      if (int rc = unuse_mm(mm, as, type)) return rc;
    return shmem_unuse(mm, type);  // and what shmem files hold in swap
  });
}

}  // namespace mmkit
