// Page reclaim's entry points for front ends (mm/vmscan.c, mm/oom_kill.c).
//
//   boot_with_reclaim(cfg)  boot() and then what mm_core_init and the
//                           initcalls add for reclaim: the swap areas of the
//                           config, the reclaim ops of the page allocator
//                           and one kswapd thread per node
//   kswapd_cpu_ns(m)        CPU time the machine's kswapd threads have used
#pragma once

#include <cstdint>
#include <memory>

#include "base/result.h"
#include "phys/machine.h"

namespace mmkit {

Result<std::unique_ptr<Machine>> boot_with_reclaim(const MachineConfig& cfg);
uint64_t kswapd_cpu_ns(const Machine& m);

}  // namespace mmkit
