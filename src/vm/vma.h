// vm_area_struct: one contiguous range of a user address space with one set
// of permissions (include/linux/mm_types.h, include/linux/mm.h).
//
// VMAs are private anonymous memory (demand-zero, copy-on-write after
// fork), or they map a file (vm_file): a shmem file for a shared anonymous
// mapping (MAP_SHARED|MAP_ANONYMOUS gets one of its own, as Linux's
// shmem_zero_setup gives it), a memfd's, or a host file's; shared (the
// page-cache pages, written back when dirty) or private (the page-cache
// pages until a write copies one, vm/file_map.cc). They come from the machine's
// "vm_area_struct" kmem_cache, as Linux's vm_area_cachep.
//
// Invariants (check() proves them): vm_start < vm_end, both page aligned;
// the VMAs of an mm do not overlap; vm_pgoff of a private mapping starts as
// vm_start >> PAGE_SHIFT and moves with the range on a split, so two VMAs
// whose pgoffs are contiguous may merge (mm/mmap.c can_vma_merge_*).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "filemap/filemap.h"
#include "phys/machine.h"
#include "vm/pgtable.h"

namespace mmkit {

// vm_flags (include/linux/mm.h).
using vm_flags_t = uint64_t;
inline constexpr vm_flags_t VM_NONE = 0;
inline constexpr vm_flags_t VM_READ = 0x00000001;
inline constexpr vm_flags_t VM_WRITE = 0x00000002;
inline constexpr vm_flags_t VM_EXEC = 0x00000004;
inline constexpr vm_flags_t VM_SHARED = 0x00000008;
inline constexpr vm_flags_t VM_MAYREAD = 0x00000010;
inline constexpr vm_flags_t VM_MAYWRITE = 0x00000020;
inline constexpr vm_flags_t VM_MAYEXEC = 0x00000040;
inline constexpr vm_flags_t VM_MAYSHARE = 0x00000080;
inline constexpr vm_flags_t VM_GROWSDOWN = 0x00000100;
inline constexpr vm_flags_t VM_ACCOUNT = 0x00100000;
inline constexpr vm_flags_t VM_NORESERVE = 0x00200000;
inline constexpr vm_flags_t VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

struct MmStruct;

struct VmArea {
  uint64_t vm_start = 0;
  uint64_t vm_end = 0;  // first byte after
  vm_flags_t vm_flags = 0;
  uint64_t vm_pgoff = 0;  // offset in pages (anonymous: the address >> PAGE_SHIFT)
  pteval_t vm_page_prot = 0;
  MmStruct* vm_mm = nullptr;
  // A file mapping's inode, shmem's too (pinned while the VMA lives; listed in its
  // i_mmap while linked) and its open file's O_ACCMODE; vm_pgoff is then
  // the offset in the file, in pages.
  Inode* vm_file = nullptr;
  int vm_file_flags = 0;
  // anon_vma identity: 0 until the first private page is faulted in; two
  // VMAs with different non-zero ids never merge (is_mergeable_anon_vma).
  uint64_t anon_vma = 0;
  // anon_vma_chain: the anon_vmas whose pages this VMA may map, oldest
  // (the family's root) first, its own last (mm/rmap.c anon_vma_fork). The
  // machine's rmap registry lists the VMA under each while it is linked.
  std::vector<uint64_t> avc;

  uint64_t pages() const { return (vm_end - vm_start) >> PAGE_SHIFT; }
};

// vm_get_page_prot(): x86's protection_map for these flags. Private
// writable mappings get a read-only protection (the write fault or COW makes
// entries writable); VM_NONE maps present but without _PAGE_USER, so every
// user access faults (mmkit's stand-in for _PAGE_PROTNONE).
pteval_t vm_get_page_prot(const Machine& m, vm_flags_t flags);

// The entry protection of a VMA: vm_get_page_prot() of its flags, except
// that a shared writable file mapping maps pages read-only until a write
// fault dirties them (vma_wants_writenotify), so every page written
// through a mapping is PG_dirty and reaches the file.
pteval_t vma_page_prot(const Machine& m, const VmArea* vma);

// The VMA cache of the machine (created on first use).
VmArea* vm_area_alloc(MmStruct* mm);
VmArea* vm_area_dup(const VmArea* orig);
void vm_area_free(VmArea* vma);

// The tree of an mm, keyed by vm_end (mm_mt): find_vma() is one upper_bound.
// All of these need the mmap lock held.
VmArea* find_vma(MmStruct* mm, uint64_t addr);  // first VMA with vm_end > addr
VmArea* find_vma_prev(MmStruct* mm, uint64_t addr, VmArea** prev);
VmArea* vma_prev(MmStruct* mm, VmArea* vma);
VmArea* vma_next(MmStruct* mm, VmArea* vma);
// The first VMA intersecting [start, end), or null.
VmArea* find_vma_intersection(MmStruct* mm, uint64_t start, uint64_t end);
void vma_link(MmStruct* mm, VmArea* vma);
void vma_unlink(MmStruct* mm, VmArea* vma);
// Changes vm_end of a linked VMA (its tree key).
void vma_set_end(MmStruct* mm, VmArea* vma, uint64_t end);

// __split_vma(): splits at `addr` (page aligned, strictly inside); the new
// VMA is the part below (`new_below`) or above addr. Returns the new VMA,
// or null when the map count would exceed vm.max_map_count (-ENOMEM).
VmArea* split_vma(MmStruct* mm, VmArea* vma, uint64_t addr, bool new_below);
// Whether b may continue a (a directly below b): same flags, same file,
// contiguous pgoff, compatible anon_vma (mm/mmap.c).
bool vma_can_merge(const VmArea* a, const VmArea* b);
// Merges `vma` with its neighbours where vma_can_merge allows; returns the
// VMA that now covers vma's range.
VmArea* vma_merge_neighbours(MmStruct* mm, VmArea* vma);

// sysctl_max_map_count's default (include/linux/mm.h DEFAULT_MAX_MAP_COUNT);
// a machine's own value is its config's max_map_count (rlimit.h).
inline constexpr int DEFAULT_MAX_MAP_COUNT = static_cast<int>(kDefaultMaxMapCount);

}  // namespace mmkit
