// The reverse map of anonymous pages (mm/rmap.c), and swap entries in page
// tables.
//
// Every private VMA that has had a page owns an anon_vma (an id) and is
// chained to the anon_vmas of its ancestors across fork (avc, root first),
// as Linux's anon_vma_chain: a page made by a parent is found in every
// child that may still map it, and a page a child made is never looked for
// in the parent. A page's mapping is its anon_vma (PAGE_MAPPING_ANON), its
// index the linear page index of the VMA (vm_pgoff + offset), so each VMA
// chained to the anon_vma maps it, if at all, at one address.
//
//   rmap_walk            visits each present PTE mapping a page
//   folio_referenced     tests and clears ACCESSED in each of them, as
//                        x86's ptep_clear_flush_young does: without a
//                        shootdown; see docs/reclaim.md for the TLB
//   try_to_unmap         replaces each with the page's swap entry (TLB
//                        shootdown as munmap's), moving PTE dirty bits to
//                        the page
//
// Locking: the walk holds the rmap lock and takes each VMA's page-table lock
// with a try-lock, never a wait (the lock order is page-table lock, then
// rmap lock); an address space whose page-table lock the thread already
// holds is skipped. A fault holds only its mmap lock while it allocates
// (and so may reclaim from its own address space) and re-checks its entry
// under the page-table lock before changing it. A mapping that could not
// be locked is reported as busy.
#pragma once

#include <cstdint>
#include <functional>

#include "swap/swap_entry.h"
#include "vm/mm.h"

namespace mmkit {

// Registry upkeep (vma.cc and the fault path call these; rmap lock taken).
void anon_vma_link(VmArea* vma);
void anon_vma_unlink(VmArea* vma);
// Gives a VMA its own anon_vma (anon_vma_prepare, anon_vma_fork).
void anon_vma_assign(VmArea* vma, uint64_t id);
// A merge: `dst` takes on what `src` may map.
void anon_vma_inherit(VmArea* dst, const VmArea* src);
// The anon_vma a page mapped into `vma` is filed under when it is shared
// (its family's root), as __folio_set_anon does for a non-exclusive page.
inline uint64_t anon_vma_root(const VmArea* vma) {
  return vma->avc.empty() ? vma->anon_vma : vma->avc.front();
}

struct RmapResult {
  unsigned mapped = 0;  // PTEs found
  unsigned done = 0;    // referenced (folio_referenced) or unmapped (try_to_unmap)
  bool busy = false;    // a mapping could not be locked
  // folio_referenced: the CPUs (mm_cpumask) whose TLBs may still hold a
  // translation whose young bit it cleared; see flush_tlb_cpus().
  uint64_t young_cpus = 0;
};
// Anonymous pages through their anon_vma, page-cache pages through their
// file's i_mmap (vm/file_map.cc).
RmapResult folio_referenced(Machine& m, Page* page);
// An anonymous page must be in the swap cache (its entry in private_),
// locked; a page-cache page locked. File PTEs are cleared (a dirty one
// dirties the page), anonymous ones become swap entries.
RmapResult try_to_unmap(Machine& m, Page* page);
RmapResult file_folio_referenced(Machine& m, Page* page);
RmapResult file_try_to_unmap(Machine& m, Page* page);

// Swap entries in the machine's PTE format.
pteval_t swp_entry_to_pte(PagingMode mode, SwpEntry e);
SwpEntry pte_to_swp_entry(PagingMode mode, pteval_t pte);
inline bool is_swap_pte(pteval_t v) {
  return v && !pte_present(v);
}

// Installs the vm layer's swapoff (try_to_unuse) in the swap layer.
void register_swap_unuse(Machine& m);

namespace mm_internal {
// The address space whose fault this thread is handling, if any (the OOM
// killer's current task).
extern thread_local MmStruct* tls_fault_mm;
// do_swap_page(): brings the page of swap entry `pte` at addr back and maps
// it (the fault handler's path for a swap PTE, and swapoff's).
FaultResult do_swap_page(MmStruct* mm, VmArea* vma, uint64_t addr, Access access, pteval_t pte);
}  // namespace mm_internal

}  // namespace mmkit
