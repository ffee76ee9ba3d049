// /proc/<pid>/status, as Linux 6.1's fs/proc/array.c proc_pid_status()
// prints it, with the memory lines of fs/proc/task_mmu.c task_mem().
//
// task_mem() prints each value in kB right-aligned in 8 columns after a tab
// (seq_put_decimal_ull_width). VmPeak and VmHWM are the high-water marks
// (never below the current VmSize and VmRSS). VmPTE is mm_pgtables_bytes():
// the page-table pages below the top level (Linux does not count the pgd).
// The lines about credentials, signals and scheduling describe a process
// mmkit does not model; they print the values of a root task with no
// signals pending, so tools that parse the file find every field.
#include <fmt/format.h>

#include <algorithm>

#include "procfs/procfs.h"
#include "vm/process.h"

namespace mmkit {
namespace {

// proc_task_name() escapes with ESCAPE_SPACE | ESCAPE_SPECIAL.
std::string escaped_comm(const std::string& comm) {
  std::string out;
  for (char c : comm) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::string render_pid_status(Machine& m, int pid) {
  Process* p = find_process(m, pid);
  if (!p) return "";
  MmStruct* mm = p->mm;
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "Name:\t{}\n", escaped_comm(p->comm));
  fmt::format_to(it, "Umask:\t0022\nState:\tR (running)\n");
  fmt::format_to(it, "Tgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\nTracerPid:\t0\n", pid, pid,
                 p->ppid);
  fmt::format_to(it, "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t\n");
  fmt::format_to(it, "NStgid:\t{}\nNSpid:\t{}\nNSpgid:\t{}\nNSsid:\t{}\n", pid, pid, pid, pid);
  {
    std::lock_guard g(mm->mmap_lock);
    const uint64_t kb = PAGE_SIZE >> 10;
    const uint64_t anon = mm->get_mm_counter(MM_ANONPAGES);
    const uint64_t file = mm->get_mm_counter(MM_FILEPAGES);
    const uint64_t shmem = mm->get_mm_counter(MM_SHMEMPAGES);
    const uint64_t rss = anon + file + shmem;
    const uint64_t hiwater_rss = std::max<uint64_t>(mm->hiwater_rss.load(), rss);
    const uint64_t hiwater_vm = std::max(mm->hiwater_vm, mm->total_vm);
    const uint64_t ptes = mm->pgd.nr_tables.load(std::memory_order_relaxed);
    auto line = [&](const char* label, uint64_t kbytes) {
      fmt::format_to(it, "{}:\t{:>8} kB\n", label, kbytes);
    };
    line("VmPeak", hiwater_vm * kb);
    line("VmSize", mm->total_vm * kb);
    line("VmLck", 0);
    line("VmPin", 0);
    line("VmHWM", hiwater_rss * kb);
    line("VmRSS", rss * kb);
    line("RssAnon", anon * kb);
    line("RssFile", file * kb);
    line("RssShmem", shmem * kb);
    line("VmData", mm->data_vm * kb);
    line("VmStk", mm->stack_vm * kb);
    line("VmExe", 0);
    line("VmLib", 0);
    line("VmPTE", (ptes > 0 ? ptes - 1 : 0) * kb);
    line("VmSwap", mm->get_mm_counter(MM_SWAPENTS) * kb);
    line("HugetlbPages", 0);
  }
  fmt::format_to(it, "CoreDumping:\t0\nTHP_enabled:\t1\nThreads:\t1\n");
  fmt::format_to(it, "SigQ:\t0/0\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n");
  fmt::format_to(it, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  fmt::format_to(it, "SigCgt:\t0000000000000000\n");
  return fmt::to_string(out);
}

}  // namespace mmkit
