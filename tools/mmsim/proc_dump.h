// `--proc DIR`: every /proc view of the machine written as a file in
// Linux's text (DIR/meminfo, DIR/vmstat, DIR/buddyinfo, ... as
// mmkit::view_names() lists them, DIR/dmesg (the kernel log as dmesg prints
// it), and DIR/<pid>/{status,maps,smaps_rollup,oom_score,oom_score_adj} for
// each live process), so Linux's own tools can read them: `free`,
// `vmstat -s` and `slabtop -o` with the files bind-mounted over /proc's.
#pragma once

#include <string>

#include "phys/machine.h"

namespace mmsim {

// Creates DIR (and its parents) if needed; "" or what went wrong, as
// "mmsim: --proc DIR: ...". Run it before a workload, to fail early.
std::string prepare_proc_dir(const std::string& dir);
// Writes the views; "" or the first file that could not be written.
std::string write_proc_views(mmkit::Machine& m, const std::string& dir);

}  // namespace mmsim
