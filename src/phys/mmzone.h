// Nodes and zones: Linux's pglist_data and struct zone (include/linux/mmzone.h).
//
// A Zone owns a contiguous pfn range of one node. It carries the buddy
// allocator's free lists (free_area[order].free_list[migratetype]), the
// per-CPU page lists, the watermarks and lowmem_reserve. The algorithms over
// these fields live in page_alloc; phys only lays them out and fills the
// sizes at boot.
//
// Locking: zone->lock guards free_area, pageblock migrate types and
// nr_reserved_highatomic. free_pages is written under zone->lock and read
// without it (watermark checks tolerate a stale value, as Linux's do). A
// PerCpuPages is touched only by the thread bound to its CPU, or by a drainer
// that has taken the CPU over (see cpu.h).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "base/counter.h"
#include "base/list.h"
#include "base/spinlock.h"
#include "phys/config.h"
#include "phys/page.h"
#include "phys/vmstat_items.h"

namespace mmkit {

inline constexpr unsigned MAX_PAGE_ORDER = 10;
inline constexpr unsigned NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;
inline constexpr unsigned MAX_ORDER_NR_PAGES = 1u << MAX_PAGE_ORDER;
inline constexpr unsigned PAGE_ALLOC_COSTLY_ORDER = 3;
inline constexpr unsigned SWAP_CLUSTER_MAX = 32;
inline constexpr int MAX_RECLAIM_RETRIES = 16;  // mm/internal.h
inline constexpr unsigned MAX_NR_ZONES = kMaxZonesPerNode;

enum MigrateType : unsigned {
  MIGRATE_UNMOVABLE,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_PCPTYPES,  // the number of types on the per-CPU lists
  MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES,
  MIGRATE_CMA,
  MIGRATE_ISOLATE,
  MIGRATE_TYPES
};
inline constexpr std::array<std::string_view, MIGRATE_TYPES> kMigrateTypeNames = {
    "Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"};

// Zone kinds. A machine's zones are a per-arch subset in index order:
// x86_64: DMA, DMA32, Normal, Movable; i386: DMA, Normal, HighMem, Movable.
enum class ZoneKind : uint8_t { DMA, DMA32, NORMAL, HIGHMEM, MOVABLE };
inline constexpr std::array<std::string_view, 5> kZoneKindNames = {"DMA", "DMA32", "Normal",
                                                                   "HighMem", "Movable"};

enum Watermark : unsigned { WMARK_MIN, WMARK_LOW, WMARK_HIGH, NR_WMARK };

inline constexpr unsigned NR_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1);
constexpr unsigned order_to_pindex(unsigned mt, unsigned order) {
  return MIGRATE_PCPTYPES * order + mt;
}
constexpr unsigned pindex_to_order(unsigned pindex) {
  return pindex / MIGRATE_PCPTYPES;
}

struct FreeArea {
  ListHead free_list[MIGRATE_TYPES];
  uint64_t nr_free = 0;  // blocks of this order, all types (zone.lock)
  // Bit mt set while free_list[mt] is non-empty: written under zone.lock,
  // read without it by watermark checks (which tolerate a stale answer).
  std::atomic<uint32_t> nonempty{0};
  bool has(unsigned mt) const { return nonempty.load(std::memory_order_relaxed) >> mt & 1; }
};

// Per-CPU page lists for one zone (struct per_cpu_pages). Written only by the
// owning CPU context; count/high/batch are atomics so views can read them.
struct alignas(64) PerCpuPages {
  std::atomic<int> count{0};  // pages (not blocks) on all lists
  std::atomic<int> high{0};
  std::atomic<int> batch{1};
  int free_factor = 0;  // doubles the bulk-free size while freeing without allocating
  std::atomic<bool> drain_request{false};
  ListHead lists[NR_PCP_LISTS];
};

class Machine;

struct Zone {
  // Identity.
  Machine* machine = nullptr;
  int node = 0;
  unsigned idx = 0;  // zone index within the node
  ZoneKind kind = ZoneKind::NORMAL;
  std::string_view name;

  // Size (pages). spanned: the range; present: minus holes; managed: minus
  // reserved ranges, i.e. what the buddy allocator was given.
  uint64_t zone_start_pfn = 0;
  uint64_t spanned_pages = 0;
  // present grows when memory hotplug onlines a block (under zone.lock);
  // readers load it without the lock.
  std::atomic<uint64_t> present_pages{0};
  std::atomic<uint64_t> managed_pages{0};
  uint64_t reserved_at_boot = 0;  // present frames withheld at boot (reserved ranges, memmap)

  // Watermarks and reserves (mm/page_alloc.c: __setup_per_zone_wmarks).
  uint64_t watermark[NR_WMARK] = {};
  uint64_t lowmem_reserve[MAX_NR_ZONES] = {};
  uint64_t nr_reserved_highatomic = 0;

  // Buddy allocator.
  alignas(64) SpinLock lock;
  FreeArea free_area[NR_PAGE_ORDERS];
  std::atomic<int64_t> free_pages{0};  // NR_FREE_PAGES: pages in free_area
  // Free-page reporting: pages in free blocks of at least the machine's
  // page_reporting_order that the host still holds (no PG_reported).
  uint64_t unreported_pages = 0;
  // The fewest unreported_pages an allocation left since the last decay
  // pass (page_reporting_decay): blocks that much stayed free all along.
  uint64_t unreported_low = 0;
  // Events of threads bound to no CPU (their PGALLOC and PGFREE), counted
  // under zone.lock, which they hold anyway, instead of with a locked add on
  // the machine's shared counters. Machine::sum_event adds them in.
  std::array<OwnedCounter, static_cast<unsigned>(VmEvent::NR_EVENTS)> locked_events;

  // Per-CPU lists, one per CPU of the machine.
  PerCpuPages* pcp = nullptr;

  uint64_t present() const { return present_pages.load(std::memory_order_relaxed); }
  bool populated() const { return present() != 0; }
  uint64_t end_pfn() const { return zone_start_pfn + spanned_pages; }
  bool contains(uint64_t pfn) const { return pfn >= zone_start_pfn && pfn < end_pfn(); }
  uint64_t managed() const { return managed_pages.load(std::memory_order_relaxed); }
  int64_t nr_free() const { return free_pages.load(std::memory_order_relaxed); }
  uint64_t min_wmark() const { return watermark[WMARK_MIN]; }
  uint64_t low_wmark() const { return watermark[WMARK_LOW]; }
  uint64_t high_wmark() const { return watermark[WMARK_HIGH]; }
};

// pglist_data: one NUMA node.
struct Node {
  int id = 0;
  uint64_t node_start_pfn = 0;
  uint64_t node_spanned_pages = 0;
  std::atomic<uint64_t> node_present_pages{0};
  // Memory hotplug (mm/memory_hotplug.c): pfns from online_end_pfn to the
  // node's end are offline; online_memory_block() moves the boundary up
  // under hotplug_lock.
  std::atomic<uint64_t> online_end_pfn{0};
  std::mutex hotplug_lock;
  // Set when the node has offline memory at boot: its zones are in the
  // zonelists even while they have no present pages yet.
  bool hotpluggable = false;
  unsigned nr_zones = 0;  // zones defined for the arch (populated or not)
  Zone zones[MAX_NR_ZONES];
  // Zonelists (build_zonelists): fallback across nodes by distance, and the
  // node's own zones only (__GFP_THISNODE). Highest zone first per node.
  Zone* zonelist_fallback[MAX_NR_ZONES * kMaxNumNodes + 1] = {};
  Zone* zonelist_nofallback[MAX_NR_ZONES + 1] = {};
  std::vector<int> cpus;  // CPUs local to the node
  std::vector<int> distance;

  // kswapd state (reclaim registers the real thread later).
  std::atomic<int> kswapd_order{0};
  std::atomic<int> kswapd_highest_zoneidx{0};
  SharedCounter kswapd_wakeups;

  // Node statistics (NodeStat), in pages.
  std::array<SharedCounter, kNrNodeStats> stat;
};

}  // namespace mmkit
