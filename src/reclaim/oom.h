// The OOM killer's scores (mm/oom_kill.c, fs/proc/base.c).
//
//   oom_badness(p, totalpages)  RSS + swap entries + page-table pages, plus
//                               oom_score_adj * totalpages / 1000; LONG_MIN
//                               for a task that must not be picked (adj
//                               -1000, or already a victim)
//   oom_score(p)                /proc/<pid>/oom_score: (1000 + badness *
//                               1000 / totalpages) * 2 / 3
#pragma once

#include <cstdint>

#include "vm/process.h"

namespace mmkit {

int64_t oom_badness(Process* p, uint64_t totalpages);
uint64_t oom_score(Process* p);

}  // namespace mmkit
