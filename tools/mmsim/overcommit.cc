// `mmsim overcommit`: for modes 0, 1 and 2 in turn, a freshly spawned
// process (execve's stack and nothing else) binary-searches the largest
// mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) that succeeds, then
// asks which rule refuses one page more: mode 0's single-request limit
// (totalram + swap), mode 2's CommitLimit less the admin and user reserves,
// or, when the commit check would pass (mode 1 always), the address space
// itself (no gap that large below TASK_SIZE) or the rlimit or map count
// that do_mmap checks before the charge (malloc_limit_rules.h). The other
// sysctls are the machine's (its config's overcommit_ratio, reserves and
// swap).
#include "overcommit.h"

#include <fmt/format.h>

#include "malloc_limit_rules.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"

namespace mmsim {
namespace {

using namespace mmkit;

constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

bool mmap_fits(MmStruct* mm, uint64_t pages) {
  const int64_t a = do_mmap(mm, 0, pages << PAGE_SHIFT, kRW, kAnon);
  if (a < 0) return false;
  do_munmap(mm, static_cast<uint64_t>(a), pages << PAGE_SHIFT);
  return true;
}

struct Row {
  unsigned mode;
  uint64_t largest_pages;
  std::string rule;
};

Row probe(Machine& m, unsigned mode) {
  overcommit_sysctls(m).overcommit_memory = mode;
  Process* p = nullptr;
  if (spawn(m, "overcommit", &p) != 0) return {mode, 0, "cannot spawn a process"};
  MmStruct* mm = p->mm;
  uint64_t lo = 0, hi = mm->layout.task_size >> PAGE_SHIFT;  // lo fits, hi does not
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    (mmap_fits(mm, mid) ? lo : hi) = mid;
  }
  OvercommitRule why = OvercommitRule::kNone;
  std::string rule;
  if (vm_enough_memory(m, mm, static_cast<int64_t>(lo + 1), mm->cap_sys_admin, &why) == 0) {
    vm_unacct_memory(m, static_cast<int64_t>(lo + 1));
    // Not the commit check: the address space, or a limit that comes
    // before the charge in do_mmap (RLIMIT_AS, RLIMIT_DATA, max_map_count).
    switch (why_mmap_refused(mm, (lo + 1) << PAGE_SHIFT)) {
      case LimitRule::kRlimitAs:
        rule = "RLIMIT_AS (may_expand_vm)";
        break;
      case LimitRule::kRlimitData:
        rule = "RLIMIT_DATA (may_expand_vm)";
        break;
      case LimitRule::kMapCount:
        rule = "vm.max_map_count";
        break;
      default:
        rule = "address space (no free gap that large)";
    }
  } else {
    rule = overcommit_rule_name(why);
  }
  exit_process(p);
  return {mode, lo, rule};
}

std::string kb(uint64_t pages) {
  return fmt::format("{} kB", pages << (PAGE_SHIFT - 10));
}

}  // namespace

int run_overcommit(Machine& m) {
  const unsigned configured = overcommit_sysctls(m).overcommit_memory;
  static constexpr const char* kNames[] = {"0 (heuristic)", "1 (always)", "2 (never)"};
  const std::string ram = kb(m.totalram_pages()), swap = kb(total_swap_pages(m));
  fmt::print("{:<14} {:<12} {:<14} {:<22} {}\n", "RAM", "swap", "mode", "largest mmap", "rule");
  for (unsigned mode = 0; mode < 3; ++mode) {
    const Row r = probe(m, mode);
    fmt::print("{:<14} {:<12} {:<14} {:<22} {}\n", ram, swap, kNames[mode], kb(r.largest_pages),
               r.rule);
  }
  overcommit_sysctls(m).overcommit_memory = configured;
  fmt::print("\nCommitLimit {} (overcommit_ratio {}%{}), admin reserve {} kB, user reserve {} kB\n",
             kb(vm_commit_limit(m)), overcommit_sysctls(m).overcommit_ratio,
             overcommit_sysctls(m).overcommit_kbytes ? ", overridden by overcommit_kbytes" : "",
             overcommit_sysctls(m).admin_reserve_kbytes, overcommit_sysctls(m).user_reserve_kbytes);
  return 0;
}

}  // namespace mmsim
