// The kernel's virtual address layout of a machine: where the direct map,
// the vmalloc area and (on i386) the pkmap and fixmap windows sit.
//
// i386 (arch/x86/include/asm/pgtable_32_areas.h, page_32_types.h, fixmap.h):
//   0 .. PAGE_OFFSET (0xC0000000)          user space (the 3G/1G split)
//   PAGE_OFFSET .. high_memory             the direct map of low memory
//                                          (at most 896 MiB)
//   high_memory .. + VMALLOC_OFFSET (8 MiB) a hole that catches overruns
//   VMALLOC_START .. VMALLOC_END           vmalloc; VMALLOC_END =
//                                          PKMAP_BASE - 2 pages
//   PKMAP_BASE .. + LAST_PKMAP pages       kmap's permanent slots, one
//                                          page table (PMD aligned)
//   FIXADDR_START .. FIXADDR_TOP + 1 page  the fixmap: a hole page at
//                                          FIXADDR_TOP, then KM_MAX_IDX
//                                          kmap_atomic slots per CPU downwards
// PKMAP_BASE follows the classic rule (FIXADDR_START - (LAST_PKMAP + 1)
// pages, rounded down to a PMD), which keeps MAXMEM at the 896 MiB the zones
// use; Linux 4.15+ also puts the cpu_entry_area and the LDT remap between
// pkmap and fixmap, which mmkit does not model. The fixmap holds only the
// hole and the kmap slots (no APIC, boot-time or PCIe slots).
//
// x86_64 (arch/x86/include/asm/pgtable_64_types.h, page_64_types.h): the
// vmalloc area starts where Linux's does without KASLR (0xffffc90000000000
// with 4-level paging, 0xffa0000000000000 with 5-level), but is much smaller
// than Linux's 32 TiB, because its whole length is reserved in the host's
// address space and a test runs many machines: kDefaultVmallocSizeX86_64.
// VMALLOC_END is the last byte, as Linux's is (VMALLOC_START + size - 1).
//
// The "window" is the span of kernel virtual addresses mmkit backs with a
// host reservation: vmalloc alone on x86_64; vmalloc, pkmap and fixmap
// (VMALLOC_START up to 4 GiB) on i386.
#pragma once

#include <cstdint>

#include "phys/machine.h"

namespace mmkit {

inline constexpr uint64_t PAGE_OFFSET_I386 = 0xC0000000;
// __PAGE_OFFSET_BASE_L4/L5, __VMALLOC_BASE_L4/L5, __VMEMMAP_BASE_L4/L5.
inline constexpr uint64_t PAGE_OFFSET_X86_64_L4 = 0xffff888000000000;
inline constexpr uint64_t PAGE_OFFSET_X86_64_L5 = 0xff11000000000000;
inline constexpr uint64_t VMALLOC_BASE_X86_64_L4 = 0xffffc90000000000;
inline constexpr uint64_t VMALLOC_BASE_X86_64_L5 = 0xffa0000000000000;
inline constexpr uint64_t VMEMMAP_BASE_X86_64_L4 = 0xffffea0000000000;
inline constexpr uint64_t VMEMMAP_BASE_X86_64_L5 = 0xffd4000000000000;
inline constexpr uint64_t VMALLOC_OFFSET = uint64_t{8} << 20;
inline constexpr uint64_t PMD_SIZE_I386 = uint64_t{4} << 20;  // non-PAE: one table maps 4 MiB
inline constexpr uint64_t FIXADDR_TOP_I386 = 0xfffff000;
inline constexpr unsigned LAST_PKMAP = 1024;  // non-PAE
inline constexpr unsigned KM_MAX_IDX = 16;    // kmap_atomic slots per CPU
inline constexpr uint64_t kDefaultVmallocSizeX86_64 = uint64_t{512} << 20;

struct KernelLayout {
  Arch arch = Arch::x86_64;
  unsigned paging_levels = 4;  // 2 on i386
  uint64_t vmemmap_base = 0;   // x86_64 only
  uint64_t page_offset = 0;    // start of the direct map
  uint64_t high_memory = 0;    // end of the direct map
  uint64_t vmalloc_start = 0;  // VMALLOC_START
  uint64_t vmalloc_end = 0;    // VMALLOC_END (exclusive bound for areas)
  uint64_t pkmap_base = 0;     // i386 only
  uint64_t fixaddr_start = 0;  // i386 only
  uint64_t fixaddr_top = 0;    // i386 only: __fix_to_virt(0)
  unsigned fix_kmap_begin = 0;
  unsigned fix_kmap_end = 0;
  uint64_t window_start = 0;  // host-backed kernel virtual range
  uint64_t window_end = 0;

  uint64_t vmalloc_total() const { return vmalloc_end - vmalloc_start; }
  // PKMAP_ADDR(nr), PKMAP_NR(addr)
  uint64_t pkmap_addr(unsigned nr) const { return pkmap_base + (uint64_t{nr} << PAGE_SHIFT); }
  unsigned pkmap_nr(uint64_t addr) const {
    return static_cast<unsigned>((addr - pkmap_base) >> PAGE_SHIFT);
  }
  // __fix_to_virt(idx)
  uint64_t fix_to_virt(unsigned idx) const { return fixaddr_top - (uint64_t{idx} << PAGE_SHIFT); }
};

KernelLayout kernel_layout(const Machine& m);

}  // namespace mmkit
