// `mmsim overcommit`: the largest single anonymous private mapping a fresh
// process gets under each vm.overcommit_memory mode, and the rule of
// __vm_enough_memory (or the address-space search) that refused one page
// more.
#pragma once

#include "phys/machine.h"

namespace mmsim {

int run_overcommit(mmkit::Machine& m);

}  // namespace mmsim
