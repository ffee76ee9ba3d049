// `mmsim demo`: the built-in page-allocator workload on both CPUs.
#pragma once

#include <cstdint>
#include <string>

#include "phys/machine.h"

namespace mmsim {

struct DemoOptions {
  uint64_t seed = 1;
  unsigned ops_per_cpu = 20000;
  bool json = false;
};

int run_demo(mmkit::Machine& m, const DemoOptions& opt);
// The reclaim part of the demo on its own small machine: "" or what failed.
std::string reclaim_demo(bool print);
// The page-cache part: a file written, synced, read, then pushed out by
// anonymous memory and dropped; "" or what failed.
std::string cache_demo(bool print);

}  // namespace mmsim
