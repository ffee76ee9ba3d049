// Why the kernel refused one of malloc's system calls: the Linux rule that
// said no, found by asking the vm layer's own checks again, in the order
// mm/mmap.c makes them, right after the refusal (a refused call changes
// nothing, so the answer is the one the call got).
//
//   mmap(0, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)  do_mmap:
//     TASK_SIZE, vm.max_map_count, get_unmapped_area (the address space),
//     may_expand_vm (RLIMIT_AS, RLIMIT_DATA), __vm_enough_memory
//   brk(addr) growing the heap                                     brk:
//     check_data_rlimit (RLIMIT_DATA), check_brk_limits (TASK_SIZE), the
//     mapping above, may_expand_vm, vm.max_map_count, __vm_enough_memory
//
// Each rule has a short id (for --json) and a sentence naming the Linux
// function that applies it.
#pragma once

#include <cstdint>
#include <string>

#include "vm/mm.h"

namespace mmsim {

enum class LimitRule : uint8_t {
  kNone,
  kPtrdiffMax,       // glibc: a request above PTRDIFF_MAX (no system call)
  kTaskSize,         // longer than the user address space
  kAddressSpace,     // no gap that large (get_unmapped_area)
  kHeapCollision,    // brk would run into the mapping above the heap
  kMapCount,         // map_count > vm.max_map_count
  kRlimitAs,         // may_expand_vm: total_vm
  kRlimitData,       // may_expand_vm: data_vm
  kRlimitDataBrk,    // brk's check_data_rlimit: brk - start_brk
  kOvercommitGuess,  // mode 0: one request > totalram + swap
  kCommitLimit,      // mode 2: Committed_AS + request >= CommitLimit - reserves
  kOom,              // --touch: a write fault found no page
  kOomKilled,        // --touch: the OOM killer chose this process
  kBudget,           // mmsim's own bound on a run's allocations
  kUnknown,
};

LimitRule why_mmap_refused(mmkit::MmStruct* mm, uint64_t len);
LimitRule why_brk_refused(mmkit::MmStruct* mm, uint64_t brk);

// "address_space", "commit_limit", ... for --json.
const char* limit_rule_id(LimitRule r);
// The rule in one sentence, with this address space's numbers and the
// Linux source that applies it.
std::string limit_rule_text(LimitRule r, mmkit::MmStruct* mm);

// "4 GiB", "1.50 MiB", "127.99 TiB", "100 B": the largest binary unit it
// reaches; exact, or with two decimals cut (not rounded).
std::string human_bytes(uint64_t bytes);
// TASK_SIZE as Linux sizes it: "128 TiB less a page" (x86-64's
// 0x7ffffffff000), "3 GiB" (i386).
std::string task_size_text(uint64_t task_size);

}  // namespace mmsim
