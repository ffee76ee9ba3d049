// /proc/swaps (mm/swapfile.c swap_show), /proc/<pid>/oom_score and
// oom_score_adj (fs/proc/base.c), and the kernel log as dmesg prints it.
#include <fmt/format.h>

#include "procfs/procfs.h"
#include "reclaim/oom.h"
#include "swap/swap.h"
#include "vm/process.h"

namespace mmkit {

std::string render_swaps(const Machine& m) {
  std::string s = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
  for (const SwapAreaInfo& a : swap_areas(m)) {
    const uint64_t size = a.pages * 4, used = a.used * 4;
    const size_t len = a.path.size();
    s += fmt::format("{}{:<{}}{}\t{}\t{}{}\t{}{}\n", a.path, "", len < 40 ? 40 - len : 1, "file\t",
                     size, size < 10000000 ? "\t" : "", used, used < 10000000 ? "\t" : "", a.prio);
  }
  return s;
}

std::string render_pid_oom_score(Machine& m, int pid) {
  Process* p = find_process(m, pid);
  return p ? fmt::format("{}\n", oom_score(p)) : "";
}

std::string render_pid_oom_score_adj(Machine& m, int pid) {
  Process* p = find_process(m, pid);
  return p ? fmt::format("{}\n", p->oom_score_adj) : "";
}

std::string render_dmesg(const Machine& m) {
  std::string s;
  for (const auto& l : m.dmesg_lines()) s += l + "\n";
  return s;
}

}  // namespace mmkit
