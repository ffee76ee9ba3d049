// kernel_layout(): the formulas of pgtable_32_areas.h, fixmap.h and
// pgtable_64_types.h applied to one machine (see layout.h).
#include "vmalloc/layout.h"

#include "vm/pgtable.h"

namespace mmkit {

KernelLayout kernel_layout(const Machine& m) {
  KernelLayout l;
  l.arch = m.arch();
  const uint64_t lowmem = m.direct_map_pfns() << PAGE_SHIFT;
  if (m.arch() == Arch::x86_64) {
    const bool l5 = paging_mode(m) == PagingMode::kX86_64_5Level;
    l.paging_levels = l5 ? 5 : 4;
    l.page_offset = l5 ? PAGE_OFFSET_X86_64_L5 : PAGE_OFFSET_X86_64_L4;
    l.high_memory = l.page_offset + lowmem;
    l.vmemmap_base = l5 ? VMEMMAP_BASE_X86_64_L5 : VMEMMAP_BASE_X86_64_L4;
    l.vmalloc_start = l5 ? VMALLOC_BASE_X86_64_L5 : VMALLOC_BASE_X86_64_L4;
    const uint64_t size =
        m.config().vmalloc_size ? m.config().vmalloc_size : kDefaultVmallocSizeX86_64;
    l.vmalloc_end = l.vmalloc_start + size - 1;  // VMALLOC_START + VMALLOC_SIZE - 1
    l.window_start = l.vmalloc_start;
    l.window_end = l.vmalloc_start + size;
    return l;
  }
  // fixmap.h: FIX_HOLE, then FIX_KMAP_BEGIN .. FIX_KMAP_END (KM_MAX_IDX per CPU).
  l.fix_kmap_begin = 1;
  l.fix_kmap_end = l.fix_kmap_begin + KM_MAX_IDX * m.nr_cpus() - 1;
  const uint64_t end_of_fixed = l.fix_kmap_end + 1;
  l.fixaddr_top = FIXADDR_TOP_I386;
  l.fixaddr_start = FIXADDR_TOP_I386 - (end_of_fixed << PAGE_SHIFT);  // FIXADDR_TOP - FIXADDR_SIZE
  l.pkmap_base = (l.fixaddr_start - PAGE_SIZE * (LAST_PKMAP + 1)) & ~(PMD_SIZE_I386 - 1);
  l.paging_levels = 2;
  l.page_offset = PAGE_OFFSET_I386;
  l.high_memory = PAGE_OFFSET_I386 + lowmem;
  l.vmalloc_start = l.high_memory + VMALLOC_OFFSET;
  l.vmalloc_end = l.pkmap_base - 2 * PAGE_SIZE;
  l.window_start = l.vmalloc_start;
  l.window_end = uint64_t{1} << 32;
  return l;
}

}  // namespace mmkit
