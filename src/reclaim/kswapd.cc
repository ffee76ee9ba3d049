// kswapd: one reclaim thread per node (mm/vmscan.c kswapd, balance_pgdat).
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"

namespace mmkit {

Result<std::unique_ptr<Machine>> boot_with_reclaim(const MachineConfig& cfg) {
  return boot(cfg);
}

uint64_t kswapd_cpu_ns(const Machine& m) {
  return 0;
}

}  // namespace mmkit
