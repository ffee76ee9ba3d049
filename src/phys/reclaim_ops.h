// The page allocator's way up to reclaim.
//
// Linux's slow path calls into mm/vmscan.c (wake kswapd, direct reclaim,
// shrinkers), which sits above it. mmkit keeps the dependency pointing down:
// phys owns this interface, every Machine starts with the stub below (which
// records kswapd wakeups and reclaims nothing), and the reclaim layer installs
// its implementation when the machine boots.
#pragma once

#include <cstdint>

namespace mmkit {

using gfp_t = uint32_t;
class Machine;
struct Zone;

// Set while a thread does work that must fail rather than kill (swapoff's
// try_to_unuse): its allocations never invoke the OOM killer.
inline thread_local bool tls_no_oom_kill = false;

class ReclaimOps {
 public:
  virtual ~ReclaimOps() = default;
  // wakeup_kswapd(): an allocation found `zone` below its low watermark.
  virtual void wakeup_kswapd(Machine& m, Zone& zone, gfp_t gfp, unsigned order,
                             unsigned highest_zoneidx);
  // try_to_free_pages(): direct reclaim on behalf of an allocation; returns
  // the number of pages freed.
  virtual uint64_t try_to_free_pages(Machine& m, gfp_t gfp, unsigned order, int nid) { return 0; }
  // out_of_memory(): reclaim made no progress for an allocation that may
  // not fail quietly; true when the OOM killer freed (or is freeing) memory,
  // so the allocation is worth retrying.
  virtual bool out_of_memory(Machine& m, gfp_t gfp, unsigned order) { return false; }
  // Whether the slow path keeps retrying when reclaim frees nothing (up to
  // MAX_RECLAIM_RETRIES rounds, then the OOM killer), as Linux's
  // should_reclaim_retry(); without a reclaim layer it gives up at once.
  virtual bool retries_without_progress() const { return false; }
  // The calling thread works for an OOM victim: its allocations give up at
  // once, so it can exit and free what it holds (tsk_is_oom_victim).
  virtual bool current_is_oom_victim(Machine& m) { return false; }
};

}  // namespace mmkit
