// The limits on how far an address space may grow, besides overcommit:
// RLIMIT_AS and RLIMIT_DATA (mm/mmap.c may_expand_vm; include/linux/mm.h
// check_data_rlimit for brk) and the vm.max_map_count sysctl (mm/mmap.c
// sysctl_max_map_count).
//
// Where Linux checks them, and so where mmkit does:
//   may_expand_vm       mmap (mmap_region), brk (do_brk_flags), mremap
//                       growth (vma_to_resize), stack growth
//                       (acct_stack_growth), mprotect turning a range into
//                       data (mprotect_fixup); -ENOMEM (brk: the old break)
//   check_data_rlimit   the brk syscall: the heap's bytes against RLIMIT_DATA
//   max_map_count       do_mmap and do_brk_flags refuse while map_count >
//                       max_map_count; __split_vma and munmap's split while
//                       map_count >= max_map_count; mremap's move while
//                       map_count >= max_map_count - 3
//
// The rlimits live on the MmStruct (Linux keeps them on the task's signal
// struct; mmkit's syscalls see only the mm). Soft and hard limit are one
// value, so may_expand_vm's Valgrind workaround (RLIMIT_DATA's soft limit 0
// under a larger hard limit) never applies, and mmkit has no
// ignore_rlimit_data boot option.
#pragma once

#include <cstdint>

#include "phys/config.h"
#include "phys/machine.h"
#include "vm/vma.h"

namespace mmkit {

struct MmStruct;

// Which limit may_expand_vm found exceeded.
enum class RlimitRule : uint8_t {
  kNone,
  kAs,    // total_vm + npages > RLIMIT_AS
  kData,  // a data mapping: data_vm + npages > RLIMIT_DATA
};
const char* rlimit_rule_name(RlimitRule r);

// is_data_mapping() (mm/internal.h): private, writable, not a stack.
inline bool is_data_mapping(vm_flags_t flags) {
  return (flags & (VM_WRITE | VM_SHARED | VM_GROWSDOWN)) == VM_WRITE;
}

// may_expand_vm(): whether mm may grow by npages of a VMA with `flags`.
// When not, *why (if given) says which limit. Caller holds the mmap lock.
bool may_expand_vm(const MmStruct* mm, vm_flags_t flags, uint64_t npages,
                   RlimitRule* why = nullptr);

// check_data_rlimit(): the brk syscall's own test, in bytes, before any
// page rounding: the heap (new - start) plus the ELF data segment
// (end_data - start_data; mmkit loads no ELF, so 0) above `rlim` is
// -ENOSPC (brk then returns the old break).
int check_data_rlimit(uint64_t rlim, uint64_t new_brk, uint64_t start, uint64_t end_data,
                      uint64_t start_data);

// vm.max_map_count of the machine, live (writing /proc/sys/vm/max_map_count).
int& sysctl_max_map_count(Machine& m);

}  // namespace mmkit
