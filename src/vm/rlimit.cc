// may_expand_vm() and check_data_rlimit() (mm/mmap.c, include/linux/mm.h),
// and the machine's vm.max_map_count. See rlimit.h for where they apply.
#include "vm/rlimit.h"

#include <cerrno>

#include "vm/mm.h"
#include "vm/process_state.h"

namespace mmkit {

const char* rlimit_rule_name(RlimitRule r) {
  switch (r) {
    case RlimitRule::kNone:
      return "none";
    case RlimitRule::kAs:
      return "total_vm > RLIMIT_AS";
    case RlimitRule::kData:
      return "data_vm > RLIMIT_DATA";
  }
  return "?";
}

bool may_expand_vm(const MmStruct* mm, vm_flags_t flags, uint64_t npages, RlimitRule* why) {
  if (why) *why = RlimitRule::kNone;
  // rlimit >> PAGE_SHIFT: a limit that is not page aligned rounds down.
  if (mm->total_vm + npages > mm->rlimit_as >> PAGE_SHIFT) {
    if (why) *why = RlimitRule::kAs;
    return false;
  }
  if (is_data_mapping(flags) && mm->data_vm + npages > mm->rlimit_data >> PAGE_SHIFT) {
    // Linux warns once here ("VmData ... exceed data ulimit") and fails
    // unless booted with ignore_rlimit_data.
    if (why) *why = RlimitRule::kData;
    return false;
  }
  return true;
}

int check_data_rlimit(uint64_t rlim, uint64_t new_brk, uint64_t start, uint64_t end_data,
                      uint64_t start_data) {
  if (rlim < kRlimInfinity && (new_brk - start) + (end_data - start_data) > rlim) return -ENOSPC;
  return 0;
}

int& sysctl_max_map_count(Machine& m) {
  return process_state(m).max_map_count;
}

}  // namespace mmkit
