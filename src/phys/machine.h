// Machine: one booted computer — RAM, NUMA nodes, zones, page descriptors, CPUs.
//
// Machine::create() does what Linux's early boot does for memory (memblock
// and free_area_init): it maps the RAM, lays nodes and zones over the pfn
// space, marks holes and reserved ranges, reserves the pages Linux would spend
// on the descriptor array, and logs it all like dmesg. It does not hand memory
// to an allocator: page_alloc's boot does that (page_alloc/boot.h), so the
// machine a caller gets from there is ready to allocate.
//
// RAM is one memfd mapped once: pfn N is the page at byte N * PAGE_SIZE of it,
// page_address() is an add (null for i386 high memory, which is outside the
// direct map). The descriptor array covers every pfn up to the end of RAM
// rounded up to a MAX_ORDER block, so a buddy pfn is always a valid index.
// There is no global state: tests boot as many machines as they like.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/fault_inject.h"
#include "base/result.h"
#include "phys/config.h"
#include "phys/cpu.h"
#include "phys/mmzone.h"
#include "phys/page.h"
#include "phys/ram.h"
#include "phys/reclaim_ops.h"

namespace mmkit {

inline constexpr int NUMA_NO_NODE = -1;

// Per-machine state of a layer above phys (the slab allocator's caches, ...).
// phys keeps the slot; the layer defines the type and creates it on first use.
class LayerState {
 public:
  virtual ~LayerState() = default;
};
// kProcess: the vm layer's processes, pid allocator and overcommit counters.
// States are destroyed in reverse order: kswapd stops (kReclaim) before the
// address spaces go (kProcess), which drop their swap entries (kSwap) and
// charges (kMemcg) on the way; the page cache (kFilemap) goes after the
// processes that had its files open.
enum class Layer : unsigned {
  kSlab,
  kMemcg,
  kSwap,
  kFilemap,
  kVm,
  kVmalloc,
  kProcess,
  kReclaim,
  kCount
};

class Machine {
 public:
  // Validates `cfg`, maps RAM and lays out the machine. Errors name the field.
  static Result<std::unique_ptr<Machine>> create(const MachineConfig& cfg);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  const MachineConfig& config() const { return cfg_; }
  Arch arch() const { return cfg_.arch; }
  unsigned nr_nodes() const { return static_cast<unsigned>(nodes_.size()); }
  Node& node(int nid) { return *nodes_[nid]; }
  const Node& node(int nid) const { return *nodes_[nid]; }
  // One past the zone's last online frame: frames beyond the node's online
  // end (memory hotplug) have struct pages nobody has written.
  uint64_t online_end_pfn(const Zone& z) const {
    return std::min(z.end_pfn(), nodes_[z.node]->online_end_pfn.load(std::memory_order_acquire));
  }
  unsigned nr_cpus() const { return nr_cpus_; }
  CpuState& cpu(int id) { return cpus_[id]; }
  const CpuState& cpu(int id) const { return cpus_[id]; }
  // Zone kinds of this arch by zone index (4 entries).
  const ZoneKind* zone_kinds() const;
  // Index of a zone kind on this arch, mapping absent kinds as Linux's
  // OPT_ZONE_* do (DMA32 on i386 and HIGHMEM on x86_64 mean Normal).
  unsigned zone_index(ZoneKind k) const;

  // --- pfn, page and address conversions (all O(1)) -------------------------
  uint64_t max_pfn() const { return max_pfn_; }              // end of RAM
  uint64_t mem_map_pages() const { return mem_map_pages_; }  // descriptors, MAX_ORDER aligned
  Page* pfn_to_page(uint64_t pfn) const { return mem_map_ + pfn; }
  uint64_t page_to_pfn(const Page* p) const { return static_cast<uint64_t>(p - mem_map_); }
  bool pfn_valid(uint64_t pfn) const {
    return pfn < max_pfn_ && pageblocks_[pfn >> pageblock_order_].zone;
  }
  // The direct-map address of a page; null for a high-memory page.
  void* page_address(const Page* p) const {
    const uint64_t pfn = page_to_pfn(p);
    return pfn < direct_map_pfns_ ? ram_.base() + (pfn << PAGE_SHIFT) : nullptr;
  }
  Page* virt_to_page(const void* addr) const {
    return mem_map_ + ((static_cast<const char*>(addr) - ram_.base()) >> PAGE_SHIFT);
  }
  bool is_direct_mapped(const void* addr) const {
    const auto a = static_cast<const char*>(addr);
    return a >= ram_.base() && a < ram_.base() + (direct_map_pfns_ << PAGE_SHIFT);
  }
  // Host address of any pfn, high memory included: the machine's own access
  // to physical memory (clearing pages, checks). Not a kernel mapping.
  char* phys_window(uint64_t pfn) const { return ram_.base() + (pfn << PAGE_SHIFT); }
  uint64_t direct_map_pfns() const { return direct_map_pfns_; }
  // The RAM memfd: pfn N is at byte N * PAGE_SIZE. vmalloc and kmap map
  // frames a second time from it.
  int ram_fd() const { return ram_.fd(); }
  // Memory hotplug and free-page reporting reach the host through these:
  // make offline frames accessible, and hand free frames back (their
  // contents become zero).
  bool online_ram(uint64_t pfn, uint64_t nr) {
    return open_mem_map(pfn, pfn + nr) && ram_.online(pfn << PAGE_SHIFT, nr << PAGE_SHIFT);
  }
  // With anonymous RAM the descriptors of offline memory are inaccessible
  // too, as Linux's sparse vmemmap populates a section's struct pages when
  // it comes online: opens those of [start_pfn, end_pfn) (true for
  // memfd-backed RAM, whose descriptors are all open). An offline
  // descriptor read by mistake faults instead of reading zeros, and
  // mlockall() in a program under libmmkit-malloc locks only the
  // descriptors of online memory.
  bool open_mem_map(uint64_t start_pfn, uint64_t end_pfn);
  void discard_ram(uint64_t pfn, uint64_t nr) { ram_.discard(pfn << PAGE_SHIFT, nr << PAGE_SHIFT); }

  // --- zones and pageblocks ------------------------------------------------------
  // Per pageblock: its zone and migrate type (Linux's pageblock_flags). The
  // type is written under zone.lock and read without it by the free path.
  struct PageblockInfo {
    Zone* zone = nullptr;
    PerCpuPages* pcp = nullptr;  // zone->pcp, one load nearer for the free fast path
    std::atomic<uint8_t> migratetype{MIGRATE_MOVABLE};
  };
  const PageblockInfo& pageblock(uint64_t pfn) const {
    return pageblocks_[pfn >> pageblock_order_];
  }
  Zone* page_zone(const Page* p) const {
    return pageblocks_[page_to_pfn(p) >> pageblock_order_].zone;
  }
  Zone* pfn_zone(uint64_t pfn) const { return pageblocks_[pfn >> pageblock_order_].zone; }
  unsigned pageblock_order() const { return pageblock_order_; }
  // Gives the pageblocks of [start_pfn, end_pfn) to zone `z` (movable, as
  // memmap_init_range() marks them): at boot, and when hotplug onlines them.
  void init_pageblocks(uint64_t start_pfn, uint64_t end_pfn, Zone* z);
  uint64_t pageblock_nr_pages() const { return uint64_t{1} << pageblock_order_; }
  unsigned get_pageblock_migratetype(uint64_t pfn) const {
    return pageblocks_[pfn >> pageblock_order_].migratetype.load(std::memory_order_relaxed);
  }
  void set_pageblock_migratetype(uint64_t pfn, unsigned mt) {
    pageblocks_[pfn >> pageblock_order_].migratetype.store(static_cast<uint8_t>(mt),
                                                           std::memory_order_relaxed);
  }
  // page_group_by_mobility_disabled is its negation (set by page_alloc's boot).
  bool mobility_grouping = true;
  // The GFP bits gfp_migratetype() looks at: none when grouping is off
  // (every request is then unmovable, as in Linux).
  uint32_t gfp_movable_mask = 0x18;

  // --- sysctls (vm.*) ------------------------------------------------------------
  uint64_t min_free_kbytes = 0;
  uint64_t user_min_free_kbytes = 0;  // 0: not set by the user
  unsigned watermark_scale_factor = 10;
  unsigned lowmem_reserve_ratio[MAX_NR_ZONES] = {};
  unsigned percpu_pagelist_high_fraction = 0;
  unsigned swappiness = 60;   // vm.swappiness
  unsigned page_cluster = 3;  // vm.page-cluster: swap readahead of 2^n pages
  unsigned panic_on_oom = 0;
  bool oom_kill_allocating_task = false;
  // vm.dirty_* (mm/page-writeback.c): a _bytes value of 0 means its ratio.
  unsigned dirty_ratio = 20;
  unsigned dirty_background_ratio = 10;
  uint64_t dirty_bytes = 0;
  uint64_t dirty_background_bytes = 0;
  unsigned dirty_expire_centisecs = 3000;
  unsigned dirty_writeback_centisecs = 500;
  // fault_around_bytes (mm/memory.c): the window a read fault on a file
  // mapping maps around itself; PAGE_SIZE maps the faulting page alone.
  uint64_t fault_around_bytes = 65536;

  // Free-page reporting (mm/page_reporting.c): once a zone's free blocks of
  // at least this order hold page_reporting_threshold pages the host still
  // has, a free asks for a report (page_reporting_process() in page_alloc
  // hands such blocks back). 0: off; set both with page_reporting_register().
  unsigned page_reporting_order = 0;
  uint64_t page_reporting_threshold = 0;
  std::atomic<bool> page_reporting_requested{false};

  // --- fault injection, reclaim hooks, counters ------------------------------------
  FaultAttr fail_page_alloc;
  FailPageAllocConfig fail_page_alloc_cfg;
  FaultAttr failslab;  // should_failslab(): the slab allocator's fault injection
  FailSlabConfig failslab_cfg;
  // Called by the page allocator when a page that is on an LRU list or
  // charged to a memory cgroup (PG_lru, PG_memcg) loses its last reference,
  // before the free-time checks: the memcg layer takes it off its list and
  // uncharges it (Linux's __folio_put: lruvec_del_folio, mem_cgroup_uncharge).
  void (*page_release)(Machine& m, Page* page) = nullptr;
  ReclaimOps* reclaim() const { return reclaim_; }
  void set_reclaim(ReclaimOps* ops) { reclaim_ = ops ? ops : &stub_reclaim_; }
  // Adds to an event counter of the calling thread's CPU (or the shared one).
  void count_event(VmEvent e, int64_t n = 1) { count_event(this_cpu(*this), e, n); }
  // The same when the caller already knows its CpuState (the fast paths).
  void count_event(CpuState* cpu, VmEvent e, int64_t n = 1) {
    if (cpu)
      cpu->events[static_cast<unsigned>(e)].add(n);
    else
      unbound_events_[static_cast<unsigned>(e)].add(n);
  }
  int64_t sum_event(VmEvent e) const;

  // --- totals -------------------------------------------------------------------------
  uint64_t totalram_pages() const;                             // managed pages, all zones
  uint64_t totalhigh_pages() const;                            // managed pages of HIGHMEM zones
  uint64_t reserved_pages() const { return reserved_pages_; }  // present but not managed
  // Pfn ranges [first, second) the buddy allocator never gets: holes, reserved
  // ranges, the memmap, the tail past RAM. Sorted and merged (memblock.reserved).
  const std::vector<std::pair<uint64_t, uint64_t>>& unavailable() const { return unavailable_; }

  // Where warnings (allocation failures, bad pages) go; default: stderr.
  std::function<void(const std::string&)> warn_sink;
  void warn(const std::string& text) const;
  SharedCounter bad_pages;  // pages withheld after a failed free-time check

  // Node statistics (per-node vmstat items), e.g. slab pages.
  int64_t node_stat_sum(NodeStat item) const;
  // mod_node_page_state(): `n` added to `item` of the node `page` is on.
  void mod_node_page_state(const Page* page, NodeStat item, int64_t n) {
    node(page_zone(page)->node).stat[static_cast<unsigned>(item)].add(n);
  }

  // A higher layer's state, or null before its first use.
  LayerState* layer_state(Layer l) const {
    return layer_state_[static_cast<unsigned>(l)].load(std::memory_order_acquire);
  }
  // The layer's state, built by `make` on first use. Construction runs once,
  // under the layer's own lock: a state's constructor may publish itself to
  // shared machine structures (the vm layer hangs each CPU's TLB on it), so
  // two first users must not both build one and drop the loser. A layer's
  // constructor may build a lower layer's state, never its own or a higher.
  template <class Make>
  LayerState* ensure_layer_state(Layer l, Make&& make) {
    if (LayerState* st = layer_state(l)) return st;
    std::lock_guard<std::mutex> g(layer_init_lock_[static_cast<unsigned>(l)]);
    if (LayerState* st = layer_state(l)) return st;
    std::unique_ptr<LayerState> st = make();
    layer_state_[static_cast<unsigned>(l)].store(st.get(), std::memory_order_release);
    return st.release();
  }

  // The kernel log after boot (swapon, OOM reports, ...): printk appends a
  // line (or several), kernel_log() copies them out. dmesg is boot_log()
  // followed by kernel_log(); dmesg_lines() is that, each line stamped
  // with the seconds since boot as dmesg prints them ("[    1.234567] ").
  void printk(const std::string& text);
  std::vector<std::string> kernel_log() const;
  std::vector<std::string> dmesg_lines() const;

  // The kernel log's lock, for a fork handler that must hold every lock
  // across fork() (the malloc front end's pthread_atfork).
  std::mutex& log_mutex() const { return log_lock_; }

  // Each line as Linux's dmesg would print it at boot.
  std::vector<std::string>& boot_log() { return boot_log_; }
  const std::vector<std::string>& boot_log() const { return boot_log_; }

  // Visits each zone (populated or not) in node, then zone-index order.
  template <class F>
  void for_each_zone(F&& f) {
    for (auto& n : nodes_)
      for (unsigned i = 0; i < n->nr_zones; ++i) f(n->zones[i]);
  }
  template <class F>
  void for_each_zone(F&& f) const {
    for (auto& n : nodes_)
      for (unsigned i = 0; i < n->nr_zones; ++i) f(static_cast<const Zone&>(n->zones[i]));
  }

 private:
  explicit Machine(const MachineConfig& cfg);
  Result<bool> layout();
  uint64_t reserve_range(uint64_t start_pfn, uint64_t end_pfn);

  MachineConfig cfg_;
  RamBacking ram_;
  std::vector<std::unique_ptr<Node>> nodes_;
  unsigned nr_cpus_ = 0;
  CpuState* cpus_ = nullptr;
  Page* mem_map_ = nullptr;
  uint64_t mem_map_pages_ = 0;
  uint64_t max_pfn_ = 0;
  uint64_t direct_map_pfns_ = 0;
  unsigned pageblock_order_ = 9;
  // One entry per pageblock of mem_map, in an unreserved mapping: only the
  // entries of present memory are ever written (init_pageblocks), so a
  // machine whose memory is mostly offline costs nothing for the rest.
  PageblockInfo* pageblocks_ = nullptr;
  uint64_t pageblocks_bytes_ = 0;
  uint64_t reserved_pages_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> unavailable_;
  std::vector<PerCpuPages*> pcp_storage_;
  std::array<SharedCounter, kNrVmEvents> unbound_events_;
  ReclaimOps stub_reclaim_;
  ReclaimOps* reclaim_ = &stub_reclaim_;
  std::vector<std::string> boot_log_;
  mutable std::mutex log_lock_;
  std::vector<std::string> log_;
  std::vector<uint64_t> log_ns_;  // each log_ line's time since boot
  uint64_t boot_ns_ = 0;          // CLOCK_MONOTONIC at construction
  std::atomic<LayerState*> layer_state_[static_cast<unsigned>(Layer::kCount)] = {};
  std::mutex layer_init_lock_[static_cast<unsigned>(Layer::kCount)];
};

}  // namespace mmkit
