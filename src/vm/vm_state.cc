// VmState: the kernel's tree, the zero page, asids and the per-CPU TLBs of a
// machine; and the table-frame helpers (allocation, accounting, lookup)
// shared by the page-table operations and the MMU.
#include "vm/vm_state.h"

#include <fmt/format.h>

#include <cstdlib>

#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

// Frees every table below `table_pfn` (a table at `level`) and the table
// itself; leaves (mapped pages) are not touched.
void free_subtree(PageTable& pt, const PagingFormat& f, unsigned level, uint64_t table_pfn) {
  Machine& m = *pt.machine;
  if (level + 1 < f.levels) {
    for (uint64_t i = 0; i < (uint64_t{1} << f.index_bits); ++i) {
      const pteval_t v = table_entry(m, f, table_pfn, i).load();
      if (pte_present(v)) free_subtree(pt, f, level + 1, pte_pfn(v));
    }
  }
  free_table(pt, m.pfn_to_page(table_pfn));
}

[[noreturn]] void vm_panic(Machine& m, const char* what) {
  m.warn(fmt::format("Kernel panic - not syncing: vm: cannot allocate {}\n", what));
  std::abort();
}

}  // namespace

VmState::VmState(Machine& m) : machine(m), tlbs(new Tlb[m.nr_cpus()]) {
  for (unsigned c = 0; c < m.nr_cpus(); ++c) m.cpu(static_cast<int>(c)).tlb = &tlbs[c];
  kernel.machine = &m;
  kernel.mode = paging_mode(m);
  kernel.asid = alloc_asid();
  const PagingFormat& f = paging_format(kernel.mode);
  kernel.pgd = alloc_table(kernel, GFP_KERNEL);
  if (!kernel.pgd) vm_panic(m, "the kernel page table");
  // preallocate_vmalloc_pages(): the vmalloc area's top-level entries exist
  // from the start, so user trees copy them once and never need a sync for
  // vmalloc (the 32-bit tree syncs instead; see get_or_alloc_entry).
  if (kernel.mode != PagingMode::kI386) {
    const bool l5 = kernel.mode == PagingMode::kX86_64_5Level;
    const uint64_t start = to_linear(f, l5 ? VMALLOC_START_L5 : VMALLOC_START_L4);
    const uint64_t last = start + (l5 ? VMALLOC_SIZE_L5 : VMALLOC_SIZE_L4) - 1;
    const uint64_t pgd_pfn = m.page_to_pfn(kernel.pgd);
    for (uint64_t i = table_index(f, 0, start); i <= table_index(f, 0, last); ++i) {
      Page* t = alloc_table(kernel, GFP_KERNEL);
      if (!t) vm_panic(m, "the vmalloc area's page tables");
      table_entry(m, f, pgd_pfn, i).store(pfn_pte(m.page_to_pfn(t), _KERNPG_TABLE));
    }
  }
  // ZERO_PAGE(0): one zeroed frame from low memory (mm/memory.c's zero_pfn).
  zero_page = alloc_pages(m, GFP_KERNEL | __GFP_ZERO, 0);
  if (!zero_page) vm_panic(m, "the zero page");
}

VmState::~VmState() {
  for (unsigned c = 0; c < machine.nr_cpus(); ++c) machine.cpu(static_cast<int>(c)).tlb = nullptr;
  if (kernel.pgd)
    free_subtree(kernel, paging_format(kernel.mode), 0, machine.page_to_pfn(kernel.pgd));
  if (zero_page) put_page(machine, zero_page);
}

uint32_t VmState::alloc_asid() {
  std::lock_guard<std::mutex> g(asid_lock);
  if (!free_asids.empty()) {
    const uint32_t a = free_asids.back();
    free_asids.pop_back();
    return a;
  }
  return next_asid == 0 ? 0 : next_asid++;  // 0: all 2^32 - 1 in use
}

void VmState::free_asid(uint32_t asid) {
  std::lock_guard<std::mutex> g(asid_lock);
  free_asids.push_back(asid);
}

VmState& vm_state(Machine& m) {
  return *static_cast<VmState*>(
      m.ensure_layer_state(Layer::kVm, [&m] { return std::make_unique<VmState>(m); }));
}

Page* alloc_table(PageTable& pt, gfp_t gfp) {
  Machine& m = *pt.machine;
  // Tables come from low memory and are never movable (pte_alloc_one uses
  // GFP_PGTABLE_USER = GFP_KERNEL_ACCOUNT | __GFP_ZERO; i386 has no
  // CONFIG_HIGHPTE here).
  const gfp_t flags = (gfp & ~(__GFP_HIGHMEM | __GFP_MOVABLE | __GFP_COMP)) | __GFP_ZERO;
  Page* t = alloc_pages(m, flags, 0);
  if (!t) return nullptr;
  m.mod_node_page_state(t, NodeStat::NR_PAGETABLE, 1);
  pt.nr_tables.fetch_add(1, std::memory_order_relaxed);
  return t;
}

void free_table(PageTable& pt, Page* table) {
  Machine& m = *pt.machine;
  m.mod_node_page_state(table, NodeStat::NR_PAGETABLE, -1);
  pt.nr_tables.fetch_sub(1, std::memory_order_relaxed);
  free_page(m, table);
}

namespace {

// Copies a new top-level kernel entry into every tree sharing the kernel
// half. The caller holds vs.pgd_lock.
void sync_kernel_entry(VmState& vs, const PagingFormat& f, uint64_t idx, pteval_t v) {
  for (PageTable* u : vs.pgd_list)
    table_entry(vs.machine, f, vs.machine.page_to_pfn(u->pgd), idx).store(v);
}

}  // namespace

bool get_or_alloc_entry(PageTable& pt, uint64_t lin, gfp_t gfp, char** entry) {
  Machine& m = *pt.machine;
  const PagingFormat& f = paging_format(pt.mode);
  const bool kernel = is_kernel_tree(pt);
  const pteval_t table_prot = kernel ? _KERNPG_TABLE : _PAGE_TABLE;
  uint64_t table = m.page_to_pfn(pt.pgd);
  for (unsigned l = 0; l + 1 < f.levels; ++l) {
    const uint64_t idx = table_index(f, l, lin);
    EntryRef e = table_entry(m, f, table, idx);
    pteval_t v = e.load();
    if (!pte_present(v)) {
      Page* t = alloc_table(pt, gfp);
      if (!t) return false;
      const pteval_t nv = pfn_pte(m.page_to_pfn(t), table_prot);
      const bool shared_top = kernel && l == 0 && idx >= f.kernel_index;
      if (shared_top) {
        // The kernel's top level changes under pgd_lock, so pgd_alloc copies
        // either the old or the new entry and this loop reaches the rest.
        VmState& vs = vm_state(m);
        std::lock_guard<std::mutex> g(vs.pgd_lock);
        if (e.cas(v, nv)) {
          sync_kernel_entry(vs, f, idx, nv);
          v = nv;
        }
      } else if (e.cas(v, nv)) {
        v = nv;
      }
      if (v != nv) free_table(pt, t);  // another caller installed one first
    }
    table = pte_pfn(v);
  }
  *entry = table_entry(m, f, table, table_index(f, f.levels - 1, lin)).ptr();
  return true;
}

char* find_entry(const PageTable& pt, uint64_t lin) {
  const Machine& m = *pt.machine;
  const PagingFormat& f = paging_format(pt.mode);
  uint64_t table = m.page_to_pfn(pt.pgd);
  for (unsigned l = 0; l + 1 < f.levels; ++l) {
    const pteval_t v = table_entry(m, f, table, table_index(f, l, lin)).load();
    if (!pte_present(v)) return nullptr;
    table = pte_pfn(v);
  }
  return table_entry(m, f, table, table_index(f, f.levels - 1, lin)).ptr();
}

void vm_warn(const Machine& m, const char* what, const std::string& why) {
  m.warn(fmt::format("WARNING: {}: {}\n", what, why));
}

}  // namespace mmkit
