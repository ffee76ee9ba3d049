// Page tables stored in page frames, and the operations memory.c performs on
// ranges of them (arch/x86/include/asm/pgtable*.h, mm/memory.c, mm/mprotect.c,
// mm/mremap.c, mm/pgtable-generic.c).
//
// A PageTable is one address space's tree (mm->pgd): every table is a zeroed
// page from the buddy allocator, counted in the node's NR_PAGETABLE and in
// the table's own nr_tables (VmPTE). Entries have the hardware's layout:
//   x86-64, 4 or 5 levels (LA57): 64-bit entries, 512 per table, frame in
//     bits 12..51, PRESENT 0, RW 1, USER 2, PWT 3, PCD 4, ACCESSED 5,
//     DIRTY 6, PSE 7, GLOBAL 8, software 9..11, NX 63
//     (arch/x86/include/asm/pgtable_types.h);
//   i386 (non-PAE), 2 levels: 32-bit entries, 1024 per table, frame in bits
//     12..31, the same low flag bits, no NX.
// The interface speaks 64-bit entry values for both formats; an i386 entry
// is widened on load and narrowed on store (NX dropped).
//
// Locking: the caller holds the address space's mmap lock for writing
// around every function here that changes entries, except pte_set_flags_atomic
// (the MMU's accessed/dirty update, which races with it by design, as the
// hardware's does). Walkers (the MMU) read entries with atomic loads and may
// run concurrently on other CPUs; a table page is freed only after every
// CPU that may be walking or caching it has flushed (see tlb.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "page_alloc/gfp.h"
#include "phys/machine.h"

namespace mmkit {

using pteval_t = uint64_t;

// Entry bits (arch/x86/include/asm/pgtable_types.h).
inline constexpr pteval_t _PAGE_PRESENT = pteval_t{1} << 0;
inline constexpr pteval_t _PAGE_RW = pteval_t{1} << 1;
inline constexpr pteval_t _PAGE_USER = pteval_t{1} << 2;
inline constexpr pteval_t _PAGE_PWT = pteval_t{1} << 3;
inline constexpr pteval_t _PAGE_PCD = pteval_t{1} << 4;
inline constexpr pteval_t _PAGE_ACCESSED = pteval_t{1} << 5;
inline constexpr pteval_t _PAGE_DIRTY = pteval_t{1} << 6;
inline constexpr pteval_t _PAGE_PSE = pteval_t{1} << 7;
inline constexpr pteval_t _PAGE_GLOBAL = pteval_t{1} << 8;
inline constexpr pteval_t _PAGE_SOFTW1 = pteval_t{1}
                                         << 9;  // _PAGE_SPECIAL: no struct page refcount
inline constexpr pteval_t _PAGE_SPECIAL = _PAGE_SOFTW1;
inline constexpr pteval_t _PAGE_NX = pteval_t{1} << 63;
inline constexpr pteval_t PTE_PFN_MASK = 0x000ffffffffff000ull;  // bits 12..51
inline constexpr pteval_t PTE_FLAGS_MASK = ~PTE_PFN_MASK;

inline constexpr uint64_t pte_pfn(pteval_t v) {
  return (v & PTE_PFN_MASK) >> 12;
}
inline constexpr pteval_t pfn_pte(uint64_t pfn, pteval_t prot) {
  return (pfn << 12 & PTE_PFN_MASK) | (prot & PTE_FLAGS_MASK);
}
inline constexpr bool pte_present(pteval_t v) {
  return v & _PAGE_PRESENT;
}
inline constexpr bool pte_write(pteval_t v) {
  return v & _PAGE_RW;
}

// Anonymous pages (include/linux/page-flags.h PAGE_MAPPING_ANON, mm/rmap.c
// folio_add_new_anon_rmap): page->mapping holds the anon_vma with its low bit
// set, so the rmap code tells anonymous pages from the shared objects'
// (whose mapping is the object, an aligned pointer). mmkit's anon_vma is an
// id, kept above PAGE_MAPPING_FLAGS. The mark goes when the last mapping
// does (zap_range, COW), since the allocator refuses to free a page that
// still has a mapping.
inline constexpr uintptr_t PAGE_MAPPING_ANON = 0x1;
inline constexpr uintptr_t PAGE_MAPPING_FLAGS = 0x3;
inline bool PageAnon(const Page* page) {
  return reinterpret_cast<uintptr_t>(page->mapping_once()) & PAGE_MAPPING_ANON;
}
// page_add_new_anon_rmap(): a fresh anonymous page's first mapping
// (mapcount 1, the anonymous mark, NR_ANON_PAGES of its node).
void page_add_new_anon_rmap(Machine& m, Page* page, uint64_t anon_vma);
// page_remove_rmap() of one mapping of a page: drops its mapcount; when that
// was the last mapping of an anonymous page, takes the mark off and returns
// true (the caller then moves its node's NR_ANON_PAGES, or lets zap_range do
// it). Exactly one caller sees the last mapping go, whatever the races.
bool page_remove_rmap(Machine& m, Page* page);

enum class PagingMode : uint8_t {
  kX86_64_4Level,  // 48-bit virtual addresses, PGD bits 39..47
  kX86_64_5Level,  // LA57: 57-bit virtual addresses, PGD bits 48..56
  kI386,           // 32-bit, two levels, 4 KiB pages
};

// Entry values of tables that point at tables (arch/x86/include/asm/pgtable_types.h:
// _PAGE_TABLE for the user part of a tree, _KERNPG_TABLE for the kernel's).
inline constexpr pteval_t _PAGE_TABLE =
    _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
inline constexpr pteval_t _KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;

// The geometry of a paging mode (arch/x86/include/asm/pgtable_64_types.h,
// pgtable-2level_types.h). Level 0 is the top (the PGD).
struct PagingFormat {
  unsigned levels;        // 4, 5 or 2
  unsigned entry_shift;   // log2 of the entry size: 3 (64-bit) or 2 (32-bit)
  unsigned index_bits;    // 9 (512 entries a table) or 10 (1024)
  unsigned va_bits;       // 48, 57 or 32
  unsigned shift[5];      // lowest address bit of each level's index, top first
  unsigned kernel_index;  // first top-level index of the kernel half (KERNEL_PGD_BOUNDARY)
};
// arch/x86/include/asm/pgtable_64_types.h (PGDIR_SHIFT 39 or 48, P4D_SHIFT 39,
// PUD_SHIFT 30, PMD_SHIFT 21, PTRS_PER_* 512) and pgtable-2level_types.h
// (PGDIR_SHIFT 22, PTRS_PER_PGD/PTE 1024). KERNEL_PGD_BOUNDARY is
// pgd_index(PAGE_OFFSET): 256 on x86-64 (the upper half), 768 on i386.
inline constexpr PagingFormat kPagingFormats[] = {
    {4, 3, 9, 48, {39, 30, 21, 12, 0}, 256},
    {5, 3, 9, 57, {48, 39, 30, 21, 12}, 256},
    {2, 2, 10, 32, {22, 12, 0, 0, 0}, 768},
};

inline const PagingFormat& paging_format(PagingMode mode) {
  return kPagingFormats[static_cast<unsigned>(mode)];
}
// The machine's mode: i386 machines page with two levels, x86_64 machines
// with the config's paging_levels (4 unless set to 5).
PagingMode paging_mode(const Machine& m);
// x86-64: bits 63..va_bits-1 all equal (a sign extension); i386: below 4 GiB.
bool addr_canonical(PagingMode mode, uint64_t addr);
// The kernel half: on x86-64 the upper canonical half, on i386 from PAGE_OFFSET
// (0xC0000000). User trees share the kernel's top-level entries there.
bool addr_kernel_half(PagingMode mode, uint64_t addr);
// The vmalloc area of x86-64 (VMALLOC_START .. VMALLOC_END + 1): its top-level
// entries are populated when the kernel tree is created, as Linux's
// preallocate_vmalloc_pages() does (arch/x86/mm/init_64.c).
inline constexpr uint64_t VMALLOC_START_L4 = 0xffffc90000000000ull;  // __VMALLOC_BASE_L4
inline constexpr uint64_t VMALLOC_SIZE_L4 = 32ull << 40;             // VMALLOC_SIZE_TB_L4
inline constexpr uint64_t VMALLOC_START_L5 = 0xffa0000000000000ull;  // __VMALLOC_BASE_L5
inline constexpr uint64_t VMALLOC_SIZE_L5 = 12800ull << 40;          // VMALLOC_SIZE_TB_L5

struct PageTable {
  Machine* machine = nullptr;
  PagingMode mode = PagingMode::kX86_64_4Level;
  Page* pgd = nullptr;                 // the top-level table's frame
  uint32_t asid = 0;                   // tags this tree's TLB entries; unique per machine
  std::atomic<uint64_t> nr_tables{0};  // table pages, the top level included (VmPTE)
  std::atomic<uint64_t> cpumask{0};    // CPUs that may hold its translations (mm_cpumask)
};

// pgd_alloc(): a fresh tree with an empty top level (for a user address
// space on x86-64, the kernel half is shared with init_mm as Linux's
// clone_pgd_range does, so kernel mappings made later are seen by all).
// False when the top-level frame cannot be allocated.
bool pgd_alloc(Machine& m, PagingMode mode, PageTable& pt);
// Frees the top level. Every lower table must have been freed (free_pgtables).
void pgd_free(PageTable& pt);

// The kernel's tree (swapper_pg_dir / init_mm.pgd) of a machine, created on
// first use with the machine's paging mode. vmalloc, pkmap and fixmap
// mappings live here.
PageTable& kernel_page_table(Machine& m);

// The shared zero page (ZERO_PAGE(0)): mapped read-only by read faults on
// anonymous memory; never refcounted through page tables.
Page* zero_page(Machine& m);

// The value of the last-level entry for `addr`, or 0 when none (no table, or
// an empty entry).
pteval_t pte_get(const PageTable& pt, uint64_t addr);
// set_pte_at(): installs `val` at `addr`, allocating missing tables with
// `gfp` (GFP_KERNEL | __GFP_ZERO semantics). False when a table page cannot
// be allocated. Does not touch the mapped page's refcount or mapcount: the
// caller does (page_add_*_rmap), as in Linux. Does not flush the TLB: an
// entry that was not present cannot be cached.
bool pte_set(PageTable& pt, uint64_t addr, pteval_t val, gfp_t gfp = GFP_KERNEL);
// ptep_get_and_clear(): clears the entry and returns its old value
// (accessed/dirty bits the MMU set included). The caller flushes.
pteval_t pte_clear(PageTable& pt, uint64_t addr);
// Atomically ORs `bits` into a present entry (the MMU's accessed/dirty
// update); false when the entry is no longer present.
bool pte_set_flags_atomic(PageTable& pt, uint64_t addr, pteval_t bits);

// The reverse: clears `bits` of a present entry (ptep_test_and_clear_young);
// true when they were set and are now clear.
bool pte_clear_flags_atomic(PageTable& pt, uint64_t addr, pteval_t bits);

// zap_page_range(): clears every entry in [start, end); for each normal page
// mapped (not _PAGE_SPECIAL, not the zero page) drops its mapcount and the
// mapping's reference (put_page), and transfers a dirty bit to the page
// (PG_dirty). Flushes the range from every CPU's TLB before any page is
// freed. Returns the number of normal pages unmapped (the caller adjusts
// its RSS counters).
uint64_t zap_range(PageTable& pt, uint64_t start, uint64_t end);

// free_pgtables() / free_pgd_range(): frees the tables that map only
// addresses inside [start, end), never one that also covers addresses
// outside [floor, ceiling) (a neighbouring VMA's). Entries in the range must
// already be clear (zap_range first).
void free_pgtables(PageTable& pt, uint64_t start, uint64_t end, uint64_t floor, uint64_t ceiling);

// change_protection(): for every present entry in [start, end) keeps the
// frame and the accessed/dirty/special bits and replaces RW/USER/NX with
// those of `newprot`; flushes the range. Returns the number of entries
// changed.
uint64_t change_protection(PageTable& pt, uint64_t start, uint64_t end, pteval_t newprot);

// copy_page_range() for fork: copies every entry of [start, end) from `src`
// to `dst`, allocating dst's tables. For a private writable mapping (`cow`)
// each present writable entry is write-protected in both trees (and src's
// range flushed); every normal page mapped gets one more mapcount and one
// more reference. False when a table cannot be allocated (dst keeps what
// was copied; the caller unwinds with zap_range + free_pgtables).
bool copy_range(PageTable& dst, PageTable& src, uint64_t start, uint64_t end, bool cow);

// move_page_tables() for mremap: moves the entries of [old_addr,
// old_addr + len) to new_addr, allocating tables as needed; flushes the old
// range. False when a table cannot be allocated (nothing moved past the
// entries already moved; the return says how far: see move_range_done).
bool move_range(PageTable& pt, uint64_t old_addr, uint64_t new_addr, uint64_t len);

// Visits every present entry in [start, end): fn(addr, value). For check(),
// /proc/<pid>/smaps_rollup and tests.
void walk_range(const PageTable& pt, uint64_t start, uint64_t end,
                const std::function<void(uint64_t addr, pteval_t val)>& fn);

// The same over every non-zero entry, present or not (swap entries too).
void walk_range_all(const PageTable& pt, uint64_t start, uint64_t end,
                    const std::function<void(uint64_t addr, pteval_t val)>& fn);

// check(): proves the tree's invariants (nr_tables equals the tables
// reachable; every present entry's frame is inside RAM and allocated; no
// table frame is free). Returns "" or the first violation.
std::string check(const PageTable& pt);

// "" when [start, end) is a range the range operations above accept on `pt`,
// else the reason they refuse it: both ends page aligned, start <= end, the
// range canonical and inside one half (end 0 means the top of the address
// space; end may be the first non-canonical address after the lower half),
// and, for a user tree, outside the shared kernel half. The operations warn
// with that reason (Machine::warn) and do nothing when it is not "".
std::string pgtable_range_error(const PageTable& pt, uint64_t start, uint64_t end);

// How many bytes from old_addr the calling thread's last move_range() moved
// (len when it succeeded).
uint64_t move_range_done();

// The same as zap_range and copy_range, calling `nonpresent(addr, value)` for
// each non-present, non-zero entry (a swap entry) met in the range: before
// it is cleared (zap_range: free the swap slot) or copied (copy_range:
// swap_duplicate, as copy_nonpresent_pte does). Without it such entries are
// cleared or copied silently.
using NonPresentFn = std::function<void(uint64_t addr, pteval_t val)>;
uint64_t zap_range(PageTable& pt, uint64_t start, uint64_t end, const NonPresentFn& nonpresent);
bool copy_range(PageTable& dst, PageTable& src, uint64_t start, uint64_t end, bool cow,
                const NonPresentFn& nonpresent);

}  // namespace mmkit
