// The rule behind a refused mmap or brk (mm/mmap.c do_mmap, mmap_region,
// the brk syscall and do_brk_flags; mm/util.c __vm_enough_memory). See
// malloc_limit_rules.h; src/vm/mmap.cc makes the same checks in the same
// order, and the tests of `mmsim malloc-limit` pin the rule each limit gives.
#include "malloc_limit_rules.h"

#include <fmt/format.h>

#include <mutex>

#include "vm/overcommit.h"
#include "vm/rlimit.h"

namespace mmsim {

using namespace mmkit;

namespace {

// What glibc's anonymous mmap and brk ask for (calc_vm_prot_bits and
// VM_DATA_DEFAULT_FLAGS): private, readable, writable data.
constexpr vm_flags_t kDataFlags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

uint64_t page_align(uint64_t v) {
  return (v + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

LimitRule from_rlimit(RlimitRule r) {
  return r == RlimitRule::kAs ? LimitRule::kRlimitAs : LimitRule::kRlimitData;
}

// __vm_enough_memory's verdict, without keeping the charge it makes.
LimitRule from_overcommit(MmStruct* mm, uint64_t pages) {
  Machine& m = *mm->machine;
  OvercommitRule why = OvercommitRule::kNone;
  if (vm_enough_memory(m, mm, static_cast<int64_t>(pages), mm->cap_sys_admin, &why) == 0) {
    vm_unacct_memory(m, static_cast<int64_t>(pages));
    return LimitRule::kUnknown;
  }
  return why == OvercommitRule::kGuessTotal ? LimitRule::kOvercommitGuess : LimitRule::kCommitLimit;
}

std::string limit(uint64_t bytes) {
  return bytes == kRlimInfinity ? "unlimited" : human_bytes(bytes);
}

}  // namespace

LimitRule why_mmap_refused(MmStruct* mm, uint64_t len) {
  if (len > mm->layout.task_size) return LimitRule::kTaskSize;
  len = page_align(len);
  const uint64_t pages = len >> PAGE_SHIFT;
  std::lock_guard g(mm->mmap_lock);
  if (mm->map_count > sysctl_max_map_count(*mm->machine)) return LimitRule::kMapCount;
  if (mm_internal::get_unmapped_area(mm, 0, len) < 0) return LimitRule::kAddressSpace;
  RlimitRule r = RlimitRule::kNone;
  if (!may_expand_vm(mm, kDataFlags, pages, &r)) return from_rlimit(r);
  return from_overcommit(mm, pages);
}

LimitRule why_brk_refused(MmStruct* mm, uint64_t brk) {
  std::lock_guard g(mm->mmap_lock);
  if (brk < mm->start_brk) return LimitRule::kUnknown;
  if (check_data_rlimit(mm->rlimit_data, brk, mm->start_brk, 0, 0))
    return LimitRule::kRlimitDataBrk;
  const uint64_t newbrk = page_align(brk), oldbrk = page_align(mm->brk);
  if (newbrk <= oldbrk) return LimitRule::kUnknown;  // shrinking is always allowed
  const uint64_t len = newbrk - oldbrk, task_size = mm->layout.task_size;
  if (len > task_size || oldbrk > task_size - len) return LimitRule::kTaskSize;
  if (VmArea* next = find_vma(mm, oldbrk);
      next && newbrk + PAGE_SIZE > mm_internal::vm_start_gap(next))
    return LimitRule::kHeapCollision;
  RlimitRule r = RlimitRule::kNone;
  if (!may_expand_vm(mm, kDataFlags | VM_ACCOUNT, len >> PAGE_SHIFT, &r)) return from_rlimit(r);
  if (mm->map_count > sysctl_max_map_count(*mm->machine)) return LimitRule::kMapCount;
  return from_overcommit(mm, len >> PAGE_SHIFT);
}

const char* limit_rule_id(LimitRule r) {
  switch (r) {
    case LimitRule::kNone:
      return "none";
    case LimitRule::kPtrdiffMax:
      return "ptrdiff_max";
    case LimitRule::kTaskSize:
      return "task_size";
    case LimitRule::kAddressSpace:
    case LimitRule::kHeapCollision:
      return "address_space";
    case LimitRule::kMapCount:
      return "max_map_count";
    case LimitRule::kRlimitAs:
      return "rlimit_as";
    case LimitRule::kRlimitData:
    case LimitRule::kRlimitDataBrk:
      return "rlimit_data";
    case LimitRule::kOvercommitGuess:
      return "overcommit_heuristic";
    case LimitRule::kCommitLimit:
      return "commit_limit";
    case LimitRule::kOom:
      return "oom";
    case LimitRule::kOomKilled:
      return "oom_killed";
    case LimitRule::kBudget:
      return "budget";
    case LimitRule::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::string limit_rule_text(LimitRule r, MmStruct* mm) {
  const Machine& m = *mm->machine;
  const MmLayout& l = mm->layout;
  switch (r) {
    case LimitRule::kNone:
      return "none";
    case LimitRule::kPtrdiffMax:
      return "glibc: a request above PTRDIFF_MAX fails before any system call "
             "(malloc/malloc.c checked_request2size)";
    case LimitRule::kTaskSize:
      return fmt::format(
          "TASK_SIZE: longer than the whole user address space, {} (mm/mmap.c do_mmap)",
          task_size_text(l.task_size));
    case LimitRule::kAddressSpace: {
      std::string s = fmt::format(
          "address space: no free gap that large below mmap_base {:#x}, nor bottom-up below "
          "{:#x} (TASK_SIZE {}; mm/mmap.c get_unmapped_area, arch/x86/kernel/sys_x86_64.c)",
          mm->mmap_base, l.map_window, task_size_text(l.task_size));
      if (l.task_size > l.map_window)
        s += "; the 5-level space above DEFAULT_MAP_WINDOW needs an mmap hint, which malloc "
             "never gives";
      return s;
    }
    case LimitRule::kHeapCollision:
      return "address space: the heap would run into the mapping above it (mm/mmap.c brk)";
    case LimitRule::kMapCount:
      return fmt::format(
          "vm.max_map_count: the process has {} mappings, more than max_map_count {} "
          "(mm/mmap.c do_mmap, do_brk_flags)",
          mm->map_count, sysctl_max_map_count(*mm->machine));
    case LimitRule::kRlimitAs:
      return fmt::format(
          "RLIMIT_AS: total_vm + the request > RLIMIT_AS {} (mm/mmap.c may_expand_vm)",
          limit(mm->rlimit_as));
    case LimitRule::kRlimitData:
      return fmt::format(
          "RLIMIT_DATA: data_vm + the request > RLIMIT_DATA {} (mm/mmap.c may_expand_vm)",
          limit(mm->rlimit_data));
    case LimitRule::kRlimitDataBrk:
      return fmt::format(
          "RLIMIT_DATA: brk - start_brk > RLIMIT_DATA {} (mm/mmap.c brk, check_data_rlimit)",
          limit(mm->rlimit_data));
    case LimitRule::kOvercommitGuess:
      return fmt::format(
          "overcommit heuristic (mode 0): a single request larger than totalram + swap = {} "
          "(mm/util.c __vm_enough_memory)",
          human_bytes((m.totalram_pages() + total_swap_pages(m)) << PAGE_SHIFT));
    case LimitRule::kCommitLimit:
      return fmt::format(
          "CommitLimit (mode 2): Committed_AS + the request would reach CommitLimit {} less the "
          "admin and user reserves (mm/util.c __vm_enough_memory)",
          human_bytes(vm_commit_limit(m) << PAGE_SHIFT));
    case LimitRule::kOom:
      return "out of memory: a write fault found no free page (mm/memory.c do_anonymous_page)";
    case LimitRule::kOomKilled:
      return "killed by the OOM killer while touching its memory (mm/oom_kill.c)";
    case LimitRule::kBudget:
      return "mmsim's budget of allocations per mode (a bound on the run, not a Linux rule: "
             "malloc could go on)";
    case LimitRule::kUnknown:
      return "refused, by no rule mmsim can name";
  }
  return "?";
}

std::string task_size_text(uint64_t task_size) {
  const uint64_t up = task_size + PAGE_SIZE;
  if ((up & (up - 1)) == 0) return human_bytes(up) + " less a page";
  return human_bytes(task_size);
}

std::string human_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  unsigned u = 0;
  while (u + 1 < std::size(kUnits) && bytes >= (uint64_t{1} << (10 * (u + 1)))) ++u;
  const uint64_t unit = uint64_t{1} << (10 * u);
  if (bytes % unit == 0) return fmt::format("{} {}", bytes / unit, kUnits[u]);
  // Two decimals, cut rather than rounded: 127.999 TiB is not 128 TiB.
  const uint64_t hundredths =
      static_cast<uint64_t>(static_cast<unsigned __int128>(bytes) * 100 / unit);
  return fmt::format("{}.{:02} {}", hundredths / 100, hundredths % 100, kUnits[u]);
}

}  // namespace mmsim
