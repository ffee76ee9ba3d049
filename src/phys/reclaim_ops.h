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

class ReclaimOps {
 public:
  virtual ~ReclaimOps() = default;
  // wakeup_kswapd(): an allocation found `zone` below its low watermark.
  virtual void wakeup_kswapd(Machine& m, Zone& zone, gfp_t gfp, unsigned order,
                             unsigned highest_zoneidx);
  // try_to_free_pages(): direct reclaim on behalf of an allocation; returns
  // the number of pages freed.
  virtual uint64_t try_to_free_pages(Machine& m, gfp_t gfp, unsigned order, int nid) { return 0; }
};

}  // namespace mmkit
