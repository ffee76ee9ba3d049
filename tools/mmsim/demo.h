// `mmsim demo`: the built-in page-allocator workload on both CPUs.
#pragma once

#include <cstdint>

#include "phys/machine.h"

namespace mmsim {

struct DemoOptions {
  uint64_t seed = 1;
  unsigned ops_per_cpu = 20000;
  bool json = false;
};

int run_demo(mmkit::Machine& m, const DemoOptions& opt);

}  // namespace mmsim
