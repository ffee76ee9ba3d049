// The reclaim layer's per-machine state (Layer::kReclaim): one kswapd thread
// per node, the ReclaimOps the page allocator calls, and the OOM killer's
// bookkeeping. Internal to src/reclaim.
#pragma once

#include <time.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "phys/machine.h"

namespace mmkit {

struct Kswapd {
  int nid = 0;
  std::thread thread;
  std::mutex lock;
  std::condition_variable wait;  // pgdat->kswapd_wait
  bool wake = false;
  clockid_t clock{};             // the thread's CPU clock (set before any reader)
  std::atomic<int> failures{0};  // kswapd_failures
};

class MachineReclaimOps;

struct ReclaimState final : LayerState {
  explicit ReclaimState(Machine& m);
  ~ReclaimState() override;  // stops kswapd

  Machine& m;
  std::unique_ptr<MachineReclaimOps> ops;
  std::vector<std::unique_ptr<Kswapd>> kswapd;
  std::atomic<bool> stopping{false};
  std::mutex oom_lock;  // one OOM kill at a time (oom_lock)
};

ReclaimState* reclaim_state_if(const Machine& m);
void kswapd_run(ReclaimState& st, Kswapd& k);
void wakeup_kswapd_node(ReclaimState& st, int nid);
uint64_t direct_reclaim(Machine& m, gfp_t gfp, unsigned order, int nid);
bool oom_kill_global(Machine& m, gfp_t gfp, unsigned order);
bool oom_kill_memcg(Machine& m, MemCgroup* cg);
bool current_oom_victim();

}  // namespace mmkit
