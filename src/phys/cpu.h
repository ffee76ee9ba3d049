// CPUs: a CPU is a context that one thread binds to at a time.
//
// Per-CPU data (the page allocator's pcp lists, event counters, later slab
// freelists and TLBs) is indexed by the bound CPU, so its fast paths take no
// lock and no atomic read-modify-write: exclusive ownership is established
// once, when a thread binds (CpuScope), not on every operation.
//
// Ownership protocol: CpuState::owner is 0 (free), a thread token (bound), or
// kDrainerToken (another thread is draining the CPU's lists). Binding and
// draining take the CPU with a compare-and-swap and give it back with a
// release store, so whatever one owner wrote is visible to the next.
// A thread that has bound no CPU of a machine still allocates: it takes the
// zone-locked path and counts its events in the machine's shared counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "base/counter.h"
#include "base/result.h"
#include "phys/vmstat_items.h"

namespace mmkit {

class Machine;

inline constexpr unsigned kNrVmEvents = static_cast<unsigned>(VmEvent::NR_EVENTS);
inline constexpr uint64_t kDrainerToken = ~uint64_t{0};

struct Zone;
struct PerCpuPages;
struct Tlb;

// The page allocator's view of one GFP class (gfp & 0x1f: the zone
// modifiers DMA, HIGHMEM, DMA32 and the mobility bits MOVABLE, RECLAIMABLE)
// on one CPU, laid out so that alloc_pages' fast path reads one entry:
// the first zone of the CPU's node zonelist the request may use (Linux's
// ac->preferred_zoneref; null for an invalid combination), this CPU's lists
// in it, and the LOW watermark check folded into one threshold.
struct PcpClass {
  Zone* zone = nullptr;
  PerCpuPages* pcp = nullptr;
  // The order-0 LOW watermark test of zone_watermark_fast() as one compare:
  // free_pages > watermark[LOW] + lowmem_reserve[highest] +
  // nr_reserved_highatomic. page_alloc recomputes it whenever one of those
  // changes; other CPUs' recomputations make it an atomic.
  std::atomic<int64_t> free_above{INT64_MAX};
  uint8_t highest = 0;         // gfp_zone() as a zone index
  uint16_t pgalloc_event = 0;  // PGALLOC_<zone kind>
};

struct alignas(64) CpuState {
  int id = 0;
  int node = 0;
  std::atomic<uint64_t> owner{0};
  // The vm layer's TLB of this CPU (vm/tlb.h), set when that layer starts:
  // translate()'s hit path reaches it in two loads from the thread's binding.
  Tlb* tlb = nullptr;
  PcpClass pcp_class[32];  // filled when the machine boots
  std::array<OwnedCounter, kNrVmEvents> events;
  // In a child forked while another thread had this CPU bound (a thread
  // fork does not copy): its state may have been mid-update and nothing
  // touches it again. check() allows what such an update leaves half done.
  bool torn = false;
};

struct CpuBinding {
  const Machine* machine = nullptr;
  CpuState* cpu = nullptr;
};
extern constinit thread_local CpuBinding tls_cpu __attribute__((tls_model("initial-exec")));

// The CPU the calling thread has bound on `m`, or null.
inline CpuState* this_cpu(const Machine& m) {
  return tls_cpu.machine == &m ? tls_cpu.cpu : nullptr;
}

// Binds the calling thread to one CPU of a machine for the scope's lifetime.
// A thread may hold one binding per machine stack-wise; a CPU is bound by at
// most one thread (a second binder gets an error, not a wait).
class CpuScope {
 public:
  static Result<CpuScope> bind(Machine& m, int cpu);
  CpuScope(CpuScope&& o) noexcept : cpu_(o.cpu_), prev_(o.prev_) { o.cpu_ = nullptr; }
  CpuScope& operator=(CpuScope&&) = delete;
  CpuScope(const CpuScope&) = delete;
  ~CpuScope();
  int id() const { return cpu_->id; }

 private:
  CpuScope(CpuState* c, CpuBinding prev) : cpu_(c), prev_(prev) {}
  CpuState* cpu_;
  CpuBinding prev_;
};

// A token unique to the calling thread (never 0 or kDrainerToken).
uint64_t thread_token();

}  // namespace mmkit
