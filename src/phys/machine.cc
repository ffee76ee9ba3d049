// Machine::create(): Linux's early memory set-up (mm/memblock.c, mm/mm_init.c
// free_area_init) over a memfd: node and zone spans, holes, reserved ranges,
// the memmap reservation, CPUs, zonelists, and the dmesg-style boot log.
#include "phys/machine.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "base/bitops.h"

namespace mmkit {

constinit thread_local CpuBinding tls_cpu __attribute__((tls_model("initial-exec")));

uint64_t thread_token() {
  static thread_local const char marker = 0;
  return reinterpret_cast<uint64_t>(&marker);
}

Result<CpuScope> CpuScope::bind(Machine& m, int cpu) {
  if (cpu < 0 || static_cast<unsigned>(cpu) >= m.nr_cpus())
    return Error{fmt::format("cpu {}: no such CPU (machine has {})", cpu, m.nr_cpus())};
  if (tls_cpu.machine == &m)
    return Error{
        fmt::format("cpu {}: this thread is already bound to cpu {}", cpu, tls_cpu.cpu->id)};
  CpuState& c = m.cpu(cpu);
  const uint64_t me = thread_token();
  for (;;) {
    uint64_t expected = 0;
    if (c.owner.compare_exchange_strong(expected, me, std::memory_order_acquire)) break;
    if (expected != kDrainerToken)
      return Error{fmt::format("cpu {}: already bound to another thread", cpu)};
    __builtin_ia32_pause();  // a drainer holds it for a moment
  }
  CpuBinding prev = tls_cpu;
  tls_cpu = CpuBinding{&m, &c};
  return CpuScope(&c, prev);
}

CpuScope::~CpuScope() {
  if (!cpu_) return;
  tls_cpu = prev_;
  cpu_->owner.store(0, std::memory_order_release);
}

void ReclaimOps::wakeup_kswapd(Machine& m, Zone& zone, gfp_t, unsigned order,
                               unsigned highest_zoneidx) {
  Node& n = m.node(zone.node);
  n.kswapd_wakeups.add(1);
  int cur = n.kswapd_order.load(std::memory_order_relaxed);
  while (cur < static_cast<int>(order) &&
         !n.kswapd_order.compare_exchange_weak(cur, static_cast<int>(order))) {
  }
  n.kswapd_highest_zoneidx.store(static_cast<int>(highest_zoneidx), std::memory_order_relaxed);
  m.count_event(VmEvent::KSWAPD_WAKEUP);
}

namespace {

constexpr ZoneKind kX86_64Zones[MAX_NR_ZONES] = {ZoneKind::DMA, ZoneKind::DMA32, ZoneKind::NORMAL,
                                                 ZoneKind::MOVABLE};
constexpr ZoneKind kI386Zones[MAX_NR_ZONES] = {ZoneKind::DMA, ZoneKind::NORMAL, ZoneKind::HIGHMEM,
                                               ZoneKind::MOVABLE};
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kDmaEndPfn = (16 * kMiB) >> PAGE_SHIFT;
constexpr uint64_t kDma32EndPfn = (4096 * kMiB) >> PAGE_SHIFT;
constexpr uint64_t kLowmemEndPfn = (896 * kMiB) >> PAGE_SHIFT;  // i386 MAXMEM with the 3G/1G split
constexpr uint64_t kNoLimit = ~uint64_t{0};

// The arch's pfn limits of each zone index (MOVABLE is carved separately).
void arch_zone_limits(Arch a, uint64_t lo[MAX_NR_ZONES], uint64_t hi[MAX_NR_ZONES]) {
  if (a == Arch::x86_64) {
    const uint64_t l[] = {0, kDmaEndPfn, kDma32EndPfn, 0},
                   h[] = {kDmaEndPfn, kDma32EndPfn, kNoLimit, 0};
    std::copy(l, l + 4, lo), std::copy(h, h + 4, hi);
  } else {
    const uint64_t l[] = {0, kDmaEndPfn, kLowmemEndPfn, 0},
                   h[] = {kDmaEndPfn, kLowmemEndPfn, kNoLimit, 0};
    std::copy(l, l + 4, lo), std::copy(h, h + 4, hi);
  }
}

std::string mem_range(uint64_t start_pfn, uint64_t end_pfn) {
  return fmt::format("[mem {:#018x}-{:#018x}]", start_pfn << PAGE_SHIFT,
                     (end_pfn << PAGE_SHIFT) - 1);
}

}  // namespace

const ZoneKind* Machine::zone_kinds() const {
  return cfg_.arch == Arch::x86_64 ? kX86_64Zones : kI386Zones;
}

unsigned Machine::zone_index(ZoneKind k) const {
  const ZoneKind* kinds = zone_kinds();
  for (unsigned i = 0; i < MAX_NR_ZONES; ++i)
    if (kinds[i] == k) return i;
  return zone_index(ZoneKind::NORMAL);
}

namespace {
uint64_t monotonic_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

Machine::Machine(const MachineConfig& cfg) : cfg_(cfg), boot_ns_(monotonic_ns()) {}

void Machine::warn(const std::string& text) const {
  if (warn_sink)
    warn_sink(text);
  else
    std::fputs(text.c_str(), stderr);
}

void Machine::printk(const std::string& text) {
  const uint64_t ns = monotonic_ns() - boot_ns_;
  std::lock_guard<std::mutex> g(log_lock_);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    log_.push_back(text.substr(start, end - start));
    log_ns_.push_back(ns);
    start = end + 1;
  }
}

std::vector<std::string> Machine::dmesg_lines() const {
  // printk's prefix: "[%5lu.%06lu] " (kernel/printk/printk.c print_time).
  std::vector<std::string> out;
  for (const std::string& l : boot_log_) out.push_back("[    0.000000] " + l);
  std::lock_guard<std::mutex> g(log_lock_);
  for (size_t i = 0; i < log_.size(); ++i)
    out.push_back(fmt::format("[{:5}.{:06}] {}", log_ns_[i] / 1000000000,
                              log_ns_[i] % 1000000000 / 1000, log_[i]));
  return out;
}

std::vector<std::string> Machine::kernel_log() const {
  std::lock_guard<std::mutex> g(log_lock_);
  return log_;
}

int64_t Machine::node_stat_sum(NodeStat item) const {
  int64_t sum = 0;
  for (auto& n : nodes_) sum += n->stat[static_cast<unsigned>(item)].get();
  return sum;
}

Machine::~Machine() {
  // Higher layers first, newest first: they may still look at zones and pages.
  for (unsigned i = static_cast<unsigned>(Layer::kCount); i-- > 0;)
    delete layer_state_[i].exchange(nullptr);
  for (PerCpuPages* p : pcp_storage_) delete[] p;
  delete[] cpus_;
  if (mem_map_) munmap(mem_map_, mem_map_pages_ * sizeof(Page));
  if (pageblocks_) munmap(pageblocks_, pageblocks_bytes_);
}

void Machine::init_pageblocks(uint64_t start_pfn, uint64_t end_pfn, Zone* z) {
  for (uint64_t b = start_pfn >> pageblock_order_; b < div_round_up(end_pfn, pageblock_nr_pages());
       ++b) {
    pageblocks_[b].zone = z;
    pageblocks_[b].pcp = z->pcp;
    pageblocks_[b].migratetype.store(MIGRATE_MOVABLE, std::memory_order_relaxed);
  }
}

Result<std::unique_ptr<Machine>> Machine::create(const MachineConfig& cfg) {
  if (std::string err = validate(cfg); !err.empty()) return Error{err};
  std::unique_ptr<Machine> m(new Machine(cfg));
  if (auto r = m->layout(); !r) return r.error();
  return m;
}

bool Machine::open_mem_map(uint64_t start_pfn, uint64_t end_pfn) {
  if (!cfg_.ram_anonymous || start_pfn >= end_pfn) return true;
  static const uintptr_t host_page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t a = reinterpret_cast<uintptr_t>(mem_map_ + start_pfn) & ~(host_page - 1);
  const uintptr_t b =
      (reinterpret_cast<uintptr_t>(mem_map_ + end_pfn) + host_page - 1) & ~(host_page - 1);
  return mprotect(reinterpret_cast<void*>(a), b - a, PROT_READ | PROT_WRITE) == 0;
}

uint64_t Machine::reserve_range(uint64_t start_pfn, uint64_t end_pfn) {
  uint64_t newly = 0;
  if (start_pfn < end_pfn) unavailable_.emplace_back(start_pfn, end_pfn);
  if (!open_mem_map(start_pfn, end_pfn)) return 0;  // only at boot, with the host refusing
  for (uint64_t pfn = start_pfn; pfn < end_pfn; ++pfn) {
    if (mem_map_[pfn].test(PG_reserved)) continue;
    mem_map_[pfn].set(PG_reserved);
    ++newly;
  }
  return newly;
}

int64_t Machine::sum_event(VmEvent e) const {
  const unsigned i = static_cast<unsigned>(e);
  int64_t sum = unbound_events_[i].get();
  for (unsigned c = 0; c < nr_cpus_; ++c) sum += cpus_[c].events[i].get();
  for_each_zone([&](const Zone& z) { sum += z.locked_events[i].get(); });
  return sum;
}

uint64_t Machine::totalram_pages() const {
  uint64_t n = 0;
  for_each_zone([&](const Zone& z) { n += z.managed(); });
  return n;
}

uint64_t Machine::totalhigh_pages() const {
  uint64_t n = 0;
  for_each_zone([&](const Zone& z) { n += z.kind == ZoneKind::HIGHMEM ? z.managed() : 0; });
  return n;
}

Result<bool> Machine::layout() {
  const unsigned nr_nodes = static_cast<unsigned>(cfg_.nodes.size());
  pageblock_order_ = cfg_.arch == Arch::x86_64 ? 9 : MAX_PAGE_ORDER;

  // Nodes sit one after another in the physical address space.
  std::vector<uint64_t> node_start(nr_nodes + 1, 0);
  for (unsigned n = 0; n < nr_nodes; ++n)
    node_start[n + 1] = node_start[n] + (cfg_.nodes[n].memory >> PAGE_SHIFT);
  max_pfn_ = node_start[nr_nodes];
  mem_map_pages_ = align_up(max_pfn_, MAX_ORDER_NR_PAGES);
  direct_map_pfns_ = cfg_.arch == Arch::i386 ? std::min(max_pfn_, kLowmemEndPfn) : max_pfn_;

  if (auto r = ram_.map(max_pfn_ << PAGE_SHIFT, cfg_.ram_anonymous, 0); !r) return r.error();
  // With anonymous RAM, the descriptors of offline memory are as
  // inaccessible as its frames (open_mem_map()).
  void* mm = mmap(nullptr, mem_map_pages_ * sizeof(Page),
                  cfg_.ram_anonymous ? PROT_NONE : PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mm == MAP_FAILED) return Error{fmt::format("mem_map: mmap failed: {}", std::strerror(errno))};
  madvise(mm, mem_map_pages_ * sizeof(Page), MADV_NOHUGEPAGE);  // touch 4 KiB at a time
  mem_map_ = static_cast<Page*>(mm);
  const uint64_t nr_blocks = mem_map_pages_ >> pageblock_order_;
  // memmap_init_range() marks every pageblock movable (the default here).
  pageblocks_bytes_ = nr_blocks * sizeof(PageblockInfo);
  void* pb = mmap(nullptr, pageblocks_bytes_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (pb == MAP_FAILED)
    return Error{fmt::format("pageblock table: mmap failed: {}", std::strerror(errno))};
  pageblocks_ = static_cast<PageblockInfo*>(pb);  // zero: no zone, until init_pageblocks
  reserve_range(max_pfn_, mem_map_pages_);        // the tail past the end of RAM

  // CPUs, spread evenly over the nodes unless the config places them.
  nr_cpus_ = cfg_.cpus;
  cpus_ = new CpuState[nr_cpus_];
  for (unsigned n = 0, c = 0; n < nr_nodes; ++n) {
    nodes_.push_back(std::make_unique<Node>());
    const unsigned cnt = cfg_.nodes[n].cpus
                             ? *cfg_.nodes[n].cpus
                             : (n + 1) * nr_cpus_ / nr_nodes - n * nr_cpus_ / nr_nodes;
    for (unsigned i = 0; i < cnt; ++i, ++c) {
      cpus_[c].id = static_cast<int>(c);
      cpus_[c].node = static_cast<int>(n);
      nodes_[n]->cpus.push_back(static_cast<int>(c));
    }
  }

  // ZONE_MOVABLE (movablecore=): spread evenly over the nodes, carved from the
  // top of each node within the highest zone kind that has memory, as
  // find_zone_movable_pfns_for_nodes() does (simplified: no kernelcore=).
  uint64_t lo[MAX_NR_ZONES], hi[MAX_NR_ZONES];
  arch_zone_limits(cfg_.arch, lo, hi);
  unsigned movable_src = 0;
  for (unsigned i = 0; i < MAX_NR_ZONES - 1; ++i)
    if (max_pfn_ > lo[i]) movable_src = i;
  const uint64_t movable_per_node =
      align_up(div_round_up(cfg_.movablecore >> PAGE_SHIFT, nr_nodes), MAX_ORDER_NR_PAGES);

  boot_log_.push_back("Zone ranges:");
  for (unsigned i = 0; i < MAX_NR_ZONES - 1; ++i) {
    const std::string_view name = kZoneKindNames[static_cast<unsigned>(zone_kinds()[i])];
    const uint64_t s = lo[i], e = std::min(hi[i], max_pfn_);
    boot_log_.push_back(s < e ? fmt::format("  {:<8} {}", name, mem_range(s, e))
                              : fmt::format("  {:<8} empty", name));
  }
  boot_log_.push_back("Movable zone start for each node");
  std::vector<std::string> early_ranges{"Early memory node ranges"};

  for (unsigned n = 0; n < nr_nodes; ++n) {
    Node& node = *nodes_[n];
    const NodeConfig& nc = cfg_.nodes[n];
    node.id = static_cast<int>(n);
    node.node_start_pfn = node_start[n];
    node.node_spanned_pages = node_start[n + 1] - node_start[n];
    node.nr_zones = MAX_NR_ZONES;
    node.distance = nc.distance;
    if (node.distance.empty())
      for (unsigned j = 0; j < nr_nodes; ++j) node.distance.push_back(j == n ? 10 : 20);
    const uint64_t ns = node_start[n], ne = node_start[n + 1];
    const uint64_t online_end = nc.online ? ns + (*nc.online >> PAGE_SHIFT) : ne;
    if (!open_mem_map(ns, online_end))
      return Error{fmt::format("node[{}]: mprotect mem_map: {}", n, std::strerror(errno))};

    uint64_t movable_start = ne;
    if (movable_per_node) {
      const uint64_t floor = std::max(ns, lo[movable_src]);
      movable_start = ne > floor + movable_per_node ? ne - movable_per_node : floor;
      movable_start = align_up(movable_start, MAX_ORDER_NR_PAGES);
      if (movable_start < ne)
        boot_log_.push_back(fmt::format("  Node {}: {:#018x}", n, movable_start << PAGE_SHIFT));
    }
    for (unsigned i = 0; i < MAX_NR_ZONES; ++i) {
      Zone& z = node.zones[i];
      z.machine = this;
      z.node = static_cast<int>(n);
      z.idx = i;
      z.kind = zone_kinds()[i];
      z.name = kZoneKindNames[static_cast<unsigned>(z.kind)];
      for (auto& fa : z.free_area)
        for (auto& l : fa.free_list) l.init();
      uint64_t s, e;
      if (z.kind == ZoneKind::MOVABLE)
        s = movable_start, e = ne;
      else
        s = std::max(ns, lo[i]), e = std::min({ne, hi[i], movable_start});
      PerCpuPages* pcp = new PerCpuPages[nr_cpus_];
      for (unsigned c = 0; c < nr_cpus_; ++c)
        for (auto& l : pcp[c].lists) l.init();
      pcp_storage_.push_back(pcp);
      z.pcp = pcp;
      if (s < e) {
        z.zone_start_pfn = s;
        z.spanned_pages = e - s;
        z.present_pages = e - s;
        if (s < online_end) init_pageblocks(s, std::min(e, online_end), &z);
      }
    }

    // Holes: spanned but not present (init_unavailable_range marks them reserved).
    std::vector<MemRange> holes = nc.holes;
    std::sort(holes.begin(), holes.end(), [](auto& a, auto& b) { return a.start < b.start; });
    uint64_t cursor = ns;
    for (const MemRange& h : holes) {
      const uint64_t hs = ns + (h.start >> PAGE_SHIFT), he = hs + (h.size >> PAGE_SHIFT);
      if (hs > cursor)
        early_ranges.push_back(fmt::format("  node {:>3}: {}", n, mem_range(cursor, hs)));
      cursor = he;
      reserve_range(hs, he);  // holes are unavailable, not reserved: not counted
      for (unsigned i = 0; i < MAX_NR_ZONES; ++i) {
        Zone& z = node.zones[i];
        const uint64_t a = std::max(hs, z.zone_start_pfn), b = std::min(he, z.end_pfn());
        if (a < b) z.present_pages -= b - a;
      }
    }
    if (cursor < online_end)
      early_ranges.push_back(fmt::format("  node {:>3}: {}", n, mem_range(cursor, online_end)));

    // Hotpluggable memory past the online part: spanned, not present, and
    // inaccessible until online_memory_block() (page_alloc) brings it in.
    // Its descriptors stay untouched: nothing marks them reserved.
    node.online_end_pfn.store(online_end, std::memory_order_relaxed);
    if (online_end < ne) {
      node.hotpluggable = true;
      unavailable_.emplace_back(online_end, ne);
      for (unsigned i = 0; i < MAX_NR_ZONES; ++i) {
        Zone& z = node.zones[i];
        const uint64_t a = std::max(online_end, z.zone_start_pfn), b = std::min(ne, z.end_pfn());
        if (a < b) z.present_pages -= b - a;
      }
    }
    if (!ram_.online(ns << PAGE_SHIFT, (online_end - ns) << PAGE_SHIFT))
      return Error{fmt::format("node[{}]: mprotect RAM: {}", n, std::strerror(errno))};
    for (unsigned i = 0; i < MAX_NR_ZONES; ++i)
      node.node_present_pages += node.zones[i].present_pages;
  }

  boot_log_.insert(boot_log_.end(), early_ranges.begin(), early_ranges.end());

  // Reserved ranges, then the memmap, are present but not managed.
  for (unsigned n = 0; n < nr_nodes; ++n)
    for (const MemRange& r : cfg_.nodes[n].reserved)
      for (uint64_t pfn = node_start[n] + (r.start >> PAGE_SHIFT),
                    end = node_start[n] + ((r.start + r.size) >> PAGE_SHIFT);
           pfn < end; ++pfn)
        if (!mem_map_[pfn].test(PG_reserved)) {
          mem_map_[pfn].set(PG_reserved);
          ++pfn_zone(pfn)->reserved_at_boot;
          unavailable_.emplace_back(pfn, pfn + 1);
        }

  // The memmap: Linux spends sizeof(struct page) of RAM per page frame,
  // allocated top-down from the node's low memory (memblock_alloc): 64 bytes
  // on x86-64, 32 on i386 (include/linux/mm_types.h with 4-byte words; so a
  // 64 GiB PAE machine gives 512 MiB of its 896 MiB of lowmem to it). mmkit
  // keeps its own 64-byte descriptors in host memory but reserves the frames
  // Linux would, so managed pages come out as Linux's do.
  const uint64_t struct_page_bytes = cfg_.arch == Arch::i386 ? 32 : 64;
  for (unsigned n = 0; n < nr_nodes; ++n) {
    Node& node = *nodes_[n];
    // Hot-added memory brings its own memmap (memmap_on_memory): only the
    // memory online at boot is charged here.
    const uint64_t online_pages = node.online_end_pfn - node.node_start_pfn;
    uint64_t need = div_round_up(online_pages * struct_page_bytes, PAGE_SIZE);
    for (int nn = static_cast<int>(n); need && nn >= 0; --nn) {  // fall back to lower nodes
      for (int i = MAX_NR_ZONES - 1; need && i >= 0; --i) {
        Zone& z = nodes_[nn]->zones[i];
        if (!z.populated() || z.kind == ZoneKind::HIGHMEM || z.kind == ZoneKind::MOVABLE) continue;
        const uint64_t top = online_end_pfn(z);
        for (uint64_t pfn = top; need && pfn-- > z.zone_start_pfn;) {
          if (mem_map_[pfn].test(PG_reserved)) continue;
          mem_map_[pfn].set(PG_reserved);
          ++z.reserved_at_boot;
          unavailable_.emplace_back(pfn, pfn + 1);
          --need;
        }
      }
    }
  }

  std::sort(unavailable_.begin(), unavailable_.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (auto r : unavailable_) {
    if (!merged.empty() && r.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  }
  unavailable_ = std::move(merged);

  // Managed = present minus reserved frames, counted zone by zone.
  for (unsigned n = 0; n < nr_nodes; ++n) {
    Node& node = *nodes_[n];
    boot_log_.push_back(
        fmt::format("Initmem setup node {} {}", n,
                    mem_range(node.node_start_pfn, node.node_start_pfn + node.node_spanned_pages)));
    for (unsigned i = 0; i < MAX_NR_ZONES; ++i) {
      Zone& z = node.zones[i];
      if (!z.spanned_pages) continue;
      const uint64_t holes = z.spanned_pages - z.present_pages;
      z.managed_pages.store(z.present_pages - z.reserved_at_boot, std::memory_order_relaxed);
      reserved_pages_ += z.reserved_at_boot;
      if (holes)
        boot_log_.push_back(
            fmt::format("On node {}, zone {}: {} pages in unavailable ranges", n, z.name, holes));
    }
  }

  // Zonelists: the node's own zones highest first, then the other nodes by
  // distance (ties by id), each highest zone first: build_zonelists()'s node order.
  for (unsigned n = 0; n < nr_nodes; ++n) {
    Node& node = *nodes_[n];
    std::vector<int> order(nr_nodes);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      const bool sa = a == static_cast<int>(n), sb = b == static_cast<int>(n);
      if (sa != sb) return sa;
      return node.distance[a] < node.distance[b];
    });
    unsigned k = 0, j = 0;
    for (int other : order)
      for (int i = MAX_NR_ZONES - 1; i >= 0; --i) {
        Zone& z = nodes_[other]->zones[i];
        // A hotpluggable node's zones are listed before they have memory,
        // so onlining needs no zonelist rebuild (Linux rebuilds them).
        if (!z.populated() && !(nodes_[other]->hotpluggable && z.spanned_pages)) continue;
        node.zonelist_fallback[k++] = &z;
        if (other == static_cast<int>(n)) node.zonelist_nofallback[j++] = &z;
      }
  }

  // Sysctls.
  watermark_scale_factor = cfg_.watermark_scale_factor;
  percpu_pagelist_high_fraction = cfg_.percpu_pagelist_high_fraction;
  swappiness = cfg_.swappiness;
  page_cluster = cfg_.page_cluster;
  panic_on_oom = cfg_.panic_on_oom;
  oom_kill_allocating_task = cfg_.oom_kill_allocating_task;
  dirty_ratio = cfg_.dirty_bytes ? 0 : cfg_.dirty_ratio.value_or(20);
  dirty_background_ratio =
      cfg_.dirty_background_bytes ? 0 : cfg_.dirty_background_ratio.value_or(10);
  dirty_bytes = cfg_.dirty_bytes;
  dirty_background_bytes = cfg_.dirty_background_bytes;
  dirty_expire_centisecs = cfg_.dirty_expire_centisecs;
  dirty_writeback_centisecs = cfg_.dirty_writeback_centisecs;
  fault_around_bytes = cfg_.fault_around_bytes;
  user_min_free_kbytes = cfg_.min_free_kbytes.value_or(0);
  // sysctl_lowmem_reserve_ratio defaults (mm/page_alloc.c): DMA 256, DMA32 256,
  // Normal 32, HighMem 0, Movable 0.
  const ZoneKind* kinds = zone_kinds();
  for (unsigned i = 0; i < MAX_NR_ZONES; ++i) {
    const ZoneKind k = kinds[i];
    lowmem_reserve_ratio[i] = !cfg_.lowmem_reserve_ratio.empty() ? cfg_.lowmem_reserve_ratio[i]
                              : (k == ZoneKind::DMA || k == ZoneKind::DMA32) ? 256
                              : k == ZoneKind::NORMAL                        ? 32
                                                                             : 0;
  }
  fail_page_alloc_cfg = cfg_.fail_page_alloc;
  fail_page_alloc.configure(cfg_.fail_page_alloc.fault);
  failslab_cfg = cfg_.failslab;
  failslab.configure(cfg_.failslab.fault);
  return true;
}

}  // namespace mmkit
