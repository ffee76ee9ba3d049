// Overcommit accounting (mm/util.c: __vm_enough_memory, vm_commit_limit,
// vm_memory_committed; mm/mmap.c: init_user_reserve, init_admin_reserve).
//
// vm_committed_as counts the pages a machine has promised: private writable
// mappings (VM_ACCOUNT; MAP_NORESERVE opts out in modes 0 and 1, never in
// mode 2), brk growth, stack growth and shared anonymous mappings (shmem's
// charge for its size). __vm_enough_memory() charges first and takes the
// charge back when the request fails, exactly as Linux:
//   mode 1 (always):    never fails;
//   mode 0 (heuristic): fails a single request of more than totalram + swap;
//   mode 2 (never):     fails unless committed (this request included) stays
//                       below CommitLimit - admin reserve (unless
//                       cap_sys_admin) - min(total_vm / 32, user reserve).
// CommitLimit = (totalram - hugetlb) * overcommit_ratio / 100 + swap, or
// overcommit_kbytes + swap when that is set.
#pragma once

#include <cstdint>

#include "phys/machine.h"

namespace mmkit {

struct MmStruct;

enum OvercommitMode : unsigned {
  OVERCOMMIT_GUESS = 0,
  OVERCOMMIT_ALWAYS = 1,
  OVERCOMMIT_NEVER = 2
};

// The sysctls, live (a caller may change them, as writing /proc/sys/vm/*).
struct OvercommitSysctls {
  unsigned overcommit_memory = OVERCOMMIT_GUESS;
  unsigned overcommit_ratio = 50;
  uint64_t overcommit_kbytes = 0;
  uint64_t user_reserve_kbytes = 0;
  uint64_t admin_reserve_kbytes = 0;
};
OvercommitSysctls& overcommit_sysctls(Machine& m);

// Which of __vm_enough_memory's rules refused a request.
enum class OvercommitRule : uint8_t {
  kNone,
  kGuessTotal,   // mode 0: pages > totalram + total_swap_pages
  kCommitLimit,  // mode 2: committed >= CommitLimit less the reserves
};
const char* overcommit_rule_name(OvercommitRule r);

// __vm_enough_memory(mm, pages, cap_sys_admin): 0 with the pages charged, or
// -ENOMEM with nothing charged (and *why set when given). mm may be null.
int vm_enough_memory(Machine& m, MmStruct* mm, int64_t pages, bool cap_sys_admin,
                     OvercommitRule* why = nullptr);
// security_vm_enough_memory_mm(): the same with the mm's own capability.
int vm_enough_memory_mm(MmStruct* mm, int64_t pages);
void vm_acct_memory(Machine& m, int64_t pages);
void vm_unacct_memory(Machine& m, int64_t pages);

uint64_t vm_commit_limit(const Machine& m);      // pages
uint64_t vm_memory_committed(const Machine& m);  // Committed_AS, pages
uint64_t total_swap_pages(const Machine& m);

}  // namespace mmkit
