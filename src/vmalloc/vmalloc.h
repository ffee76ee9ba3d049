// vmalloc: virtually contiguous kernel memory over scattered page frames
// (mm/vmalloc.c, include/linux/vmalloc.h).
//
//   vmalloc(m, size)            pages from the buddy allocator one at a time
//   vzalloc / vmalloc_node      (GFP_KERNEL | __GFP_HIGHMEM), mapped in the
//                               kernel page table and in the host
//   vfree(m, addr)              unmaps, flushes, frees the pages
//   vmap(m, pages, n, flags, prot) / vunmap   map caller's pages
//   vmalloc_to_page, is_vmalloc_addr
//
// What they return: the host address of the area, which a C++ caller can
// read and write across page boundaries as one buffer (the frames behind it
// are mapped from the RAM memfd in order). The kernel virtual address of the
// same byte is vmalloc_kva(m, ptr); kva_to_host() goes back. Both are a
// constant offset apart within the machine's window (layout.h).
//
// Each area is followed by a guard page (size + PAGE_SIZE of address space,
// unless VM_NO_GUARD): not present in the kernel page table and PROT_NONE in
// the host, so a write one byte past the end faults.
//
// Errors return null and print Linux's warning through Machine::warn: a
// zero or larger-than-RAM size, an exhausted area ("vmap allocation for
// size N failed"), no pages. vfree/vunmap of an address that is not the
// start of a live area ("Trying to vfree() nonexistent vm area") warn and
// do nothing; vfree(nullptr) does nothing, as in Linux.
//
// Locking: vmap_area_lock (a mutex: vmalloc may sleep) guards the area tree
// and free space; kernel page-table writes take the layer's pte lock. Pages
// are allocated and freed outside both.
#pragma once

#include <cstdint>
#include <source_location>
#include <string>
#include <vector>
#include <version>

#include "page_alloc/gfp.h"
#include "phys/machine.h"
#include "vm/pgtable.h"

namespace mmkit {

// vm_struct flags (include/linux/vmalloc.h).
inline constexpr unsigned long VM_IOREMAP = 0x1;
inline constexpr unsigned long VM_ALLOC = 0x2;
inline constexpr unsigned long VM_MAP = 0x4;
inline constexpr unsigned long VM_USERMAP = 0x8;
inline constexpr unsigned long VM_NO_GUARD = 0x40;
inline constexpr unsigned long VM_MAP_PUT_PAGES = 0x200;

// PAGE_KERNEL (arch/x86/include/asm/pgtable_types.h __PAGE_KERNEL):
// present, writable, accessed, dirty, global, not executable.
inline constexpr pteval_t PAGE_KERNEL =
    _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL | _PAGE_NX;
inline constexpr pteval_t PAGE_KERNEL_RO = PAGE_KERNEL & ~_PAGE_RW;

// Who asked for an area, for /proc/vmallocinfo (Linux prints the caller's
// return address as a symbol). std::source_location where the compiler has
// it; else the function's name alone (clang before 15 lacks the builtin
// libstdc++'s source_location needs).
#ifdef __cpp_lib_source_location
using Caller = std::source_location;
#else
struct Caller {
  const char* name = "";
  static constexpr Caller current(const char* fn = __builtin_FUNCTION()) { return {fn}; }
  constexpr const char* function_name() const { return name; }
};
#endif

void* vmalloc(Machine& m, uint64_t size, Caller caller = Caller::current());
void* vzalloc(Machine& m, uint64_t size, Caller caller = Caller::current());
void* vmalloc_node(Machine& m, uint64_t size, int nid, Caller caller = Caller::current());
// __vmalloc_node(): any gfp (zone modifiers DMA/DMA32 keep it out of highmem).
void* vmalloc_gfp(Machine& m, uint64_t size, gfp_t gfp, int nid, Caller caller = Caller::current());
void vfree(Machine& m, const void* addr);

// Maps `count` pages contiguously with `prot` (must include _PAGE_PRESENT).
// The pages stay the caller's: vunmap does not free them (unless
// VM_MAP_PUT_PAGES, when vfree/vunmap drop one reference each).
void* vmap(Machine& m, Page* const* pages, unsigned count, unsigned long flags, pteval_t prot,
           Caller caller = Caller::current());
void vunmap(Machine& m, const void* addr);

// The page mapped at a vmalloc address (by walking the kernel page table),
// or null.
Page* vmalloc_to_page(Machine& m, const void* addr);
// VMALLOC_START <= kva < VMALLOC_END.
bool is_vmalloc_addr(Machine& m, const void* addr);

// The kernel virtual address of a host address in the machine's window
// (vmalloc, and on i386 pkmap and fixmap too), or 0 outside it; and back
// (null outside).
uint64_t vmalloc_kva(Machine& m, const void* addr);
void* kva_to_host(Machine& m, uint64_t kva);

// Pages vmalloc holds (nr_vmalloc_pages: meminfo's VmallocUsed).
uint64_t vmalloc_nr_pages(const Machine& m);

// One live area, as /proc/vmallocinfo shows it.
struct VmallocArea {
  uint64_t addr = 0;  // kernel virtual
  uint64_t size = 0;  // guard page included
  unsigned long flags = 0;
  std::string caller;  // the function that created it
  unsigned nr_pages = 0;
  std::vector<unsigned> node_pages;  // pages per node (N0=..)
};
// Live areas by address (the walk takes vmap_area_lock). Empty when the
// layer has not been used.
std::vector<VmallocArea> vmalloc_areas(const Machine& m);

// Proves the layer's invariants: areas and free space are disjoint and
// cover the area exactly, every page of an area is present in the kernel
// page table with its frame, guard pages are not. "" or the first violation.
std::string vmalloc_check(Machine& m);

}  // namespace mmkit
