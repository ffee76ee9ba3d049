// __vm_enough_memory() and the commit counters (mm/util.c). See overcommit.h.
#include "vm/overcommit.h"

#include "swap/swap.h"

#include <algorithm>
#include <cerrno>

#include "vm/mm.h"
#include "vm/process_state.h"

namespace mmkit {

OvercommitSysctls& overcommit_sysctls(Machine& m) {
  return process_state(m).sysctls;
}

const char* overcommit_rule_name(OvercommitRule r) {
  switch (r) {
    case OvercommitRule::kNone:
      return "none";
    case OvercommitRule::kGuessTotal:
      return "pages > totalram + swap";
    case OvercommitRule::kCommitLimit:
      return "Committed_AS >= CommitLimit - reserves";
  }
  return "?";
}

uint64_t total_swap_pages(const Machine& m) {
  // The swap areas once the machine has any; before that (a plain boot()),
  // the config's size.
  if (swap_layer_active(m)) return swap_total_pages(m);
  const ProcessState* st = process_state_if(m);
  return st ? st->total_swap_pages : m.config().swap >> PAGE_SHIFT;
}

// vm_commit_limit(): no hugetlb pages in mmkit.
uint64_t vm_commit_limit(const Machine& m) {
  const ProcessState* st = process_state_if(m);
  const uint64_t kbytes = st ? st->sysctls.overcommit_kbytes : m.config().overcommit_kbytes;
  const uint64_t ratio =
      st ? st->sysctls.overcommit_ratio : m.config().overcommit_ratio.value_or(50);
  uint64_t allowed;
  if (kbytes)
    allowed = kbytes >> (PAGE_SHIFT - 10);
  else
    allowed = m.totalram_pages() * ratio / 100;
  return allowed + total_swap_pages(m);
}

uint64_t vm_memory_committed(const Machine& m) {
  const ProcessState* st = process_state_if(m);
  const int64_t v = st ? st->vm_committed_as.load(std::memory_order_relaxed) : 0;
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

void vm_acct_memory(Machine& m, int64_t pages) {
  process_state(m).vm_committed_as.fetch_add(pages, std::memory_order_relaxed);
}

void vm_unacct_memory(Machine& m, int64_t pages) {
  // Machine teardown: the process table may already be gone when the last
  // shmem inode gives its charge back, and there is nothing left to count.
  auto* st = const_cast<ProcessState*>(process_state_if(m));
  if (st) st->vm_committed_as.fetch_sub(pages, std::memory_order_relaxed);
}

int vm_enough_memory(Machine& m, MmStruct* mm, int64_t pages, bool cap_sys_admin,
                     OvercommitRule* why) {
  ProcessState& st = process_state(m);
  const OvercommitSysctls& s = st.sysctls;
  // vm_acct_memory() first: the check below sees this request's pages.
  const int64_t committed = st.vm_committed_as.fetch_add(pages, std::memory_order_relaxed) + pages;
  if (why) *why = OvercommitRule::kNone;
  if (s.overcommit_memory == OVERCOMMIT_ALWAYS) return 0;
  if (s.overcommit_memory == OVERCOMMIT_GUESS) {
    if (static_cast<uint64_t>(pages) <= m.totalram_pages() + total_swap_pages(m)) return 0;
    if (why) *why = OvercommitRule::kGuessTotal;
  } else {
    int64_t allowed = static_cast<int64_t>(vm_commit_limit(m));
    // Reserve some for root.
    if (!cap_sys_admin)
      allowed -= static_cast<int64_t>(s.admin_reserve_kbytes >> (PAGE_SHIFT - 10));
    // Don't let a single process grow so big a user can't recover.
    if (mm) {
      const int64_t reserve = static_cast<int64_t>(s.user_reserve_kbytes >> (PAGE_SHIFT - 10));
      allowed -= std::min(static_cast<int64_t>(mm->total_vm / 32), reserve);
    }
    // percpu_counter_read_positive(&vm_committed_as) < allowed
    if (std::max<int64_t>(committed, 0) < allowed) return 0;
    if (why) *why = OvercommitRule::kCommitLimit;
  }
  st.vm_committed_as.fetch_sub(pages, std::memory_order_relaxed);
  return -ENOMEM;
}

int vm_enough_memory_mm(MmStruct* mm, int64_t pages) {
  return vm_enough_memory(*mm->machine, mm, pages, mm->cap_sys_admin);
}

}  // namespace mmkit
