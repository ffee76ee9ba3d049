// `mmsim malloc-limit`: how much can malloc allocate on Linux, and why?
// For vm.overcommit_memory 0, 1 and 2 in turn, a freshly spawned process
// runs a glibc-like malloc (glibc_malloc.h) until it returns NULL, and the
// command prints what it got (the total, the largest single allocation,
// the number of allocations) and the Linux rule that stopped it
// (malloc_limit_rules.h). With --touch every page obtained is also written,
// so memory itself (and, once they exist, reclaim, swap and the OOM
// killer) has its say.
#pragma once

#include "phys/machine.h"

namespace mmsim {

struct MallocLimitOptions {
  bool touch = false;
  bool json = false;
};

// 0, or kExitBadInput (2) with one line on stderr when --touch is asked of
// a machine too large to touch for real.
int run_malloc_limit(mmkit::Machine& m, const MallocLimitOptions& opt);

}  // namespace mmsim
