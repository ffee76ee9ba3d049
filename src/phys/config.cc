// validate() and default_demo_config(): the one place a MachineConfig is judged.
//
// Every rule a booting Machine relies on is checked here, so that the boot
// code can assume a sane config and the TOML parser only has to deal with
// syntax and types. The rules follow Linux where Linux has one (SLIT
// distances, sysctl bounds, MAX_ORDER-sized node spans, the i386 PAE limit);
// each failure is one message "field: what is wrong" with the field spelled
// as in the TOML schema, so the parser can point at the offending line.
#include "phys/config.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

namespace mmkit {
namespace {

constexpr uint64_t kPageSize = 4096;
constexpr unsigned MAX_SLAB_ORDER = 10;          // MAX_PAGE_ORDER
constexpr uint64_t kMaxOrderBytes = 4ull << 20;  // one MAX_ORDER block: 1024 pages
constexpr uint64_t kKiB = 1ull << 10;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kTiB = 1ull << 40;
constexpr uint64_t kMaxMemI386 = 64 * kGiB;    // 36-bit physical addresses with PAE
constexpr uint64_t kMaxMemX86_64 = 64 * kTiB;  // what this library is sized for
constexpr int kLocalDistance = 10;             // LOCAL_DISTANCE
constexpr int kMaxRemoteDistance = 254;        // 255 would be "unreachable"
constexpr unsigned kMaxFailOrder = 10;         // MAX_ORDER

// "2GiB", "64MiB", "12KiB" when exact, else plain bytes ("4097").
std::string format_size(uint64_t bytes) {
  static constexpr struct {
    uint64_t unit;
    const char* suffix;
  } kUnits[] = {{kTiB, "TiB"}, {kGiB, "GiB"}, {1ull << 20, "MiB"}, {kKiB, "KiB"}};
  if (bytes == 0) return "0";
  for (const auto& u : kUnits) {
    if (bytes % u.unit == 0) return std::to_string(bytes / u.unit) + u.suffix;
  }
  return std::to_string(bytes);
}

std::string range_name(int node, const char* kind, size_t i) {
  return "node[" + std::to_string(node) + "]." + kind + "[" + std::to_string(i) + "]";
}

bool overlaps(const MemRange& a, const MemRange& b) {
  // Both ranges are known to lie inside the node, so the ends cannot overflow.
  return a.start < b.start + b.size && b.start < a.start + a.size;
}

// Checks one hole or reserved range of a node; `kind` is "holes" or "reserved".
std::string check_range(int node, const char* kind, size_t i, const MemRange& r, uint64_t memory) {
  const std::string name = range_name(node, kind, i);
  const char* what = std::string(kind) == "holes" ? "hole" : "reserved range";
  if (r.size == 0) return name + ".size: must be > 0";
  if (r.start % kPageSize) {
    return name + ".start: " + std::to_string(r.start) +
           " is not a multiple of the page size (4096)";
  }
  if (r.size % kPageSize) {
    return name + ".size: " + std::to_string(r.size) + " is not a multiple of the page size (4096)";
  }
  if (r.start >= memory || r.size > memory - r.start) {
    return name + ".start: " + what + " extends past the node's memory (" + format_size(memory) +
           ")";
  }
  return "";
}

std::string check_node(const MachineConfig& c, int n) {
  const NodeConfig& node = c.nodes[n];
  const std::string name = "node[" + std::to_string(n) + "]";
  if (node.memory == 0) return name + ".memory: must be > 0";
  if (node.memory % kMaxOrderBytes) {
    return name + ".memory: " + format_size(node.memory) +
           " is not a multiple of 4MiB (the MAX_ORDER block size)";
  }

  uint64_t hole_bytes = 0;
  for (size_t i = 0; i < node.holes.size(); ++i) {
    if (auto e = check_range(n, "holes", i, node.holes[i], node.memory); !e.empty()) return e;
    for (size_t j = 0; j < i; ++j) {
      if (overlaps(node.holes[i], node.holes[j])) {
        return range_name(n, "holes", i) + ": overlaps " + range_name(n, "holes", j);
      }
    }
    hole_bytes += node.holes[i].size;  // disjoint and inside the node: no overflow
  }
  if (!node.holes.empty() && hole_bytes == node.memory) {
    return name + ".holes: the holes cover all of the node's memory";
  }

  for (size_t i = 0; i < node.reserved.size(); ++i) {
    if (auto e = check_range(n, "reserved", i, node.reserved[i], node.memory); !e.empty()) {
      return e;
    }
    for (size_t j = 0; j < node.holes.size(); ++j) {
      if (overlaps(node.reserved[i], node.holes[j])) {
        return range_name(n, "reserved", i) + ": overlaps " + range_name(n, "holes", j);
      }
    }
  }

  if (node.online) {
    const uint64_t on = *node.online;
    if (on == 0 || on % kMaxOrderBytes || on > node.memory) {
      return name + ".online: " + format_size(on) +
             " must be a non-zero multiple of 4MiB no larger than the node's memory";
    }
    if (c.movablecore) return name + ".online: memory hotplug does not combine with movablecore";
    for (size_t i = 0; i < node.holes.size(); ++i)
      if (node.holes[i].start + node.holes[i].size > on)
        return range_name(n, "holes", i) + ": lies beyond the node's online memory";
    for (size_t i = 0; i < node.reserved.size(); ++i)
      if (node.reserved[i].start + node.reserved[i].size > on)
        return range_name(n, "reserved", i) + ": lies beyond the node's online memory";
  }

  if (!node.distance.empty()) {
    if (node.distance.size() != c.nodes.size()) {
      return name + ".distance: " + std::to_string(node.distance.size()) + " entries for " +
             std::to_string(c.nodes.size()) + " node(s); give one distance per node";
    }
    for (size_t i = 0; i < node.distance.size(); ++i) {
      const int d = node.distance[i];
      const std::string field = name + ".distance[" + std::to_string(i) + "]";
      if (static_cast<int>(i) == n) {
        if (d != kLocalDistance) {
          return field + ": the local distance must be 10, not " + std::to_string(d);
        }
      } else if (d <= kLocalDistance || d > kMaxRemoteDistance) {
        return field + ": remote distance " + std::to_string(d) + " is out of range (must be " +
               "11..254)";
      }
    }
  }
  return "";
}

// The overcommit sysctls and the swap size (mm/util.c's sysctl table:
// overcommit_memory is 0..2; overcommit_ratio and overcommit_kbytes are
// exclusive, each handler zeroing the other).
std::string validate_overcommit(const MachineConfig& c) {
  constexpr uint64_t kMaxKbytes = kMaxMemX86_64 / kKiB * 2;  // RAM and swap at their largest
  if (c.overcommit_memory > 2) {
    return "overcommit_memory: " + std::to_string(c.overcommit_memory) +
           " is out of range (must be 0 heuristic, 1 always or 2 never)";
  }
  if (c.overcommit_ratio && *c.overcommit_ratio > 100000) {
    return "overcommit_ratio: " + std::to_string(*c.overcommit_ratio) +
           " is out of range (must be 0..100000 percent)";
  }
  if (c.overcommit_kbytes != 0 && c.overcommit_ratio) {
    return "overcommit_kbytes: cannot be set together with overcommit_ratio (Linux keeps only "
           "one of them)";
  }
  if (c.overcommit_kbytes > kMaxKbytes) {
    return "overcommit_kbytes: " + std::to_string(c.overcommit_kbytes) + " is too large (at most " +
           std::to_string(kMaxKbytes) + ")";
  }
  for (const auto& [name, v] : {std::pair{"user_reserve_kbytes", c.user_reserve_kbytes},
                                std::pair{"admin_reserve_kbytes", c.admin_reserve_kbytes}}) {
    if (v && *v > kMaxKbytes) {
      return std::string(name) + ": " + std::to_string(*v) + " is too large (at most " +
             std::to_string(kMaxKbytes) + ")";
    }
  }
  if (c.swap % kPageSize) {
    return "swap: " + std::to_string(c.swap) + " is not a multiple of the page size (4096)";
  }
  if (c.swap > kMaxMemX86_64)
    return "swap: " + format_size(c.swap) + " is too large (at most 64TiB)";
  if (c.swap && !c.swap_areas.empty())
    return "swap: give either a size or [[swap]] areas, not both";
  for (size_t i = 0; i < c.swap_areas.size(); ++i) {
    const SwapAreaConfig& a = c.swap_areas[i];
    const std::string f = "swap[" + std::to_string(i) + "].";
    if (a.size % kPageSize)
      return f + "size: " + std::to_string(a.size) + " is not a multiple of the page size (4096)";
    if (a.size && a.size < 2 * kPageSize)
      return f + "size: " + format_size(a.size) + " is too small (a header page and a slot)";
    if (a.size > kMaxMemX86_64) return f + "size: " + format_size(a.size) + " is too large";
    if (a.file.empty() && !a.size) return f + "size: a temporary swap file needs a size";
    if (a.priority && (*a.priority < -1 || *a.priority > 32767))
      return f + "priority: " + std::to_string(*a.priority) + " is out of range (-1..32767)";
    for (size_t j = 0; j < i; ++j)
      if (!a.file.empty() && c.swap_areas[j].file == a.file)
        return f + "file: \"" + a.file + "\" is already swap[" + std::to_string(j) + "]";
  }
  if (c.swap_areas.size() > 32) return "swap: at most 32 areas (MAX_SWAPFILES)";
  if (c.swappiness > 200)
    return "swappiness: " + std::to_string(c.swappiness) + " is out of range (0..200)";
  if (c.page_cluster > 31)
    return "page_cluster: " + std::to_string(c.page_cluster) + " is out of range (0..31)";
  if (c.panic_on_oom > 2)
    return "panic_on_oom: " + std::to_string(c.panic_on_oom) + " is out of range (0..2)";
  // zswap's parameters (mm/zswap.c: the compressor must be one mmkit has;
  // accept_threshold_percent is bounded 0..100 there, and a pool above all
  // of RAM means nothing).
  if (c.zswap.compressor != "lz4" && c.zswap.compressor != "zstd")
    return "zswap.compressor: unknown compressor \"" + c.zswap.compressor +
           "\"; expected \"lz4\" or \"zstd\"";
  if (c.zswap.max_pool_percent > 100)
    return "zswap.max_pool_percent: " + std::to_string(c.zswap.max_pool_percent) +
           " is out of range (0..100)";
  if (c.zswap.accept_threshold_percent > 100)
    return "zswap.accept_threshold_percent: " + std::to_string(c.zswap.accept_threshold_percent) +
           " is out of range (0..100)";
  if (c.lru_gen_min_ttl_ms && !c.lru_gen) return "lru_gen_min_ttl_ms: needs lru_gen = true";
  return "";
}

// The per-process limits. Linux takes any RLIMIT_AS, but one below the
// initial stack (fs/exec.c setup_arg_pages: 128 KiB and a page, checked by
// may_expand_vm) lets no program start; vm.max_map_count is an int sysctl
// (kernel/sysctl.c), of which 0 would refuse every mapping but the stack.
std::string validate_limits(const MachineConfig& c) {
  constexpr uint64_t kInitialStack = 132 * kKiB;
  constexpr unsigned kIntMax = 2147483647;
  if (c.rlimit_as < kInitialStack)
    return "rlimit_as: " + format_size(c.rlimit_as) +
           " is smaller than a process's initial stack (132KiB): no program could start";
  if (c.max_map_count < 1 || c.max_map_count > kIntMax)
    return "max_map_count: " + std::to_string(c.max_map_count) + " is out of range (must be 1.." +
           std::to_string(kIntMax) + ")";
  // The writeback sysctls (kernel/sysctl.c bounds: ratios 0..100,
  // dirty_bytes at least two pages; a _bytes form and its ratio exclude
  // each other).
  if (c.dirty_ratio && *c.dirty_ratio > 100)
    return "dirty_ratio: " + std::to_string(*c.dirty_ratio) + " is out of range (0..100)";
  if (c.dirty_background_ratio && *c.dirty_background_ratio > 100)
    return "dirty_background_ratio: " + std::to_string(*c.dirty_background_ratio) +
           " is out of range (0..100)";
  if (c.dirty_ratio && c.dirty_bytes)
    return "dirty_bytes: dirty_ratio and dirty_bytes exclude each other; set one";
  if (c.dirty_background_ratio && c.dirty_background_bytes)
    return "dirty_background_bytes: dirty_background_ratio and dirty_background_bytes exclude "
           "each other; set one";
  if (c.dirty_bytes && c.dirty_bytes < 2 * 4096)
    return "dirty_bytes: " + std::to_string(c.dirty_bytes) +
           " is below the minimum of two pages (8192)";
  // fault_around_bytes (mm/memory.c fault_around_bytes_set): at most a
  // page table's span (PTRS_PER_PTE pages: 512 on x86_64, 1024 on i386),
  // and a power of two, which the debugfs setter would round down to.
  const uint64_t span = (c.arch == Arch::i386 ? 1024 : 512) * uint64_t{4096};
  if (c.fault_around_bytes < 4096 || c.fault_around_bytes > span)
    return "fault_around_bytes: " + format_size(c.fault_around_bytes) + " is out of range (4KiB.." +
           format_size(span) + ", a page table's span; 4KiB turns fault-around off)";
  if (c.fault_around_bytes & (c.fault_around_bytes - 1))
    return "fault_around_bytes: " + format_size(c.fault_around_bytes) +
           " is not a power of two (Linux would round it down to " +
           format_size(uint64_t{1} << (63 - __builtin_clzll(c.fault_around_bytes))) + ")";
  if (!c.fs_root.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(c.fs_root, ec))
      return "fs.root: \"" + c.fs_root + "\" is not a directory" +
             (ec ? " (" + ec.message() + ")" : std::string());
  }
  return "";
}

}  // namespace

std::string validate(const MachineConfig& c) {
  if (c.cpus < 1 || c.cpus > static_cast<unsigned>(kMaxCpus)) {
    return "cpus: " + std::to_string(c.cpus) + " is out of range (must be 1.." +
           std::to_string(kMaxCpus) + ")";
  }
  if (c.nodes.empty()) return "node: at least one [[node]] is required";
  if (c.slub_max_order > MAX_SLAB_ORDER) {
    return "slub_max_order: " + std::to_string(c.slub_max_order) + " is out of range (must be 0.." +
           std::to_string(MAX_SLAB_ORDER) + ")";
  }
  if (c.nodes.size() > static_cast<size_t>(kMaxNumNodes)) {
    return "node: " + std::to_string(c.nodes.size()) + " nodes; at most " +
           std::to_string(kMaxNumNodes) + " are supported";
  }

  const uint64_t max_mem = c.arch == Arch::i386 ? kMaxMemI386 : kMaxMemX86_64;
  uint64_t total = 0;  // saturates at max_mem + 1 so it cannot overflow
  for (int n = 0; n < static_cast<int>(c.nodes.size()); ++n) {
    if (auto e = check_node(c, n); !e.empty()) return e;
    total = std::min(total + std::min(c.nodes[n].memory, max_mem + 1), max_mem + 1);
  }
  if (total > max_mem) {
    if (c.arch == Arch::i386) {
      return "node: the nodes' memory adds up to more than i386 can address (64GiB with PAE)";
    }
    return "node: the nodes' memory adds up to more than x86_64 supports here (64TiB)";
  }

  const bool any_cpus = std::any_of(c.nodes.begin(), c.nodes.end(),
                                    [](const NodeConfig& n) { return n.cpus.has_value(); });
  if (any_cpus) {
    uint64_t sum = 0;
    for (size_t n = 0; n < c.nodes.size(); ++n) {
      if (!c.nodes[n].cpus) {
        return "node[" + std::to_string(n) +
               "].cpus: missing; when one node gives cpus, every node must";
      }
      sum += *c.nodes[n].cpus;
    }
    if (sum != c.cpus) {
      return "cpus: " + std::to_string(c.cpus) + " but the nodes' cpus add up to " +
             std::to_string(sum);
    }
  }

  if (c.min_free_kbytes) {
    const uint64_t limit = total / kKiB / 4;
    if (*c.min_free_kbytes == 0 || *c.min_free_kbytes > limit) {
      return "min_free_kbytes: " + std::to_string(*c.min_free_kbytes) +
             " is out of range (must be 1.." + std::to_string(limit) +
             ", a quarter of the memory in KiB)";
    }
  }
  if (c.watermark_scale_factor < 1 || c.watermark_scale_factor > 3000) {
    return "watermark_scale_factor: " + std::to_string(c.watermark_scale_factor) +
           " is out of range (must be 1..3000)";
  }
  if (!c.lowmem_reserve_ratio.empty()) {
    if (c.lowmem_reserve_ratio.size() != static_cast<size_t>(kMaxZonesPerNode)) {
      return "lowmem_reserve_ratio: has " + std::to_string(c.lowmem_reserve_ratio.size()) +
             " entries; it needs exactly 4, one per zone (" +
             (c.arch == Arch::i386 ? "DMA, Normal, HighMem, Movable"
                                   : "DMA, DMA32, Normal, Movable") +
             ")";
    }
    for (size_t i = 0; i < c.lowmem_reserve_ratio.size(); ++i) {
      if (c.lowmem_reserve_ratio[i] > (1u << 31)) {
        return "lowmem_reserve_ratio[" + std::to_string(i) +
               "]: " + std::to_string(c.lowmem_reserve_ratio[i]) +
               " is too large (at most 2147483648)";
      }
    }
  }
  if (c.percpu_pagelist_high_fraction != 0 && c.percpu_pagelist_high_fraction < 8) {
    return "percpu_pagelist_high_fraction: " + std::to_string(c.percpu_pagelist_high_fraction) +
           " is too small (must be 0 or at least 8)";
  }
  if (c.movablecore != 0) {
    if (c.movablecore % kMaxOrderBytes) {
      return "movablecore: " + format_size(c.movablecore) +
             " is not a multiple of 4MiB (the MAX_ORDER block size)";
    }
    if (c.movablecore >= total) {
      return "movablecore: " + format_size(c.movablecore) +
             " is not smaller than the total memory (" + format_size(total) + ")";
    }
  }

  if (c.vmalloc_size != 0) {  // Linux's vmalloc= (arch/x86/mm/pgtable_32.c parse_vmalloc)
    constexpr uint64_t kMinVmalloc = uint64_t{2} << 12;   // one page and its guard
    constexpr uint64_t kMaxVmalloc = uint64_t{32} << 40;  // x86_64's VMALLOC_SIZE_TB
    if (c.arch == Arch::i386)
      return "vmalloc: " + format_size(c.vmalloc_size) +
             ": i386's vmalloc area is fixed by the 896MiB direct map (x86_64 only)";
    if (c.vmalloc_size % 4096)
      return "vmalloc: " + format_size(c.vmalloc_size) + " is not a multiple of 4KiB";
    if (c.vmalloc_size < kMinVmalloc)
      return "vmalloc: " + format_size(c.vmalloc_size) + " is too small (at least 8KiB)";
    if (c.vmalloc_size > kMaxVmalloc)
      return "vmalloc: " + format_size(c.vmalloc_size) +
             " is larger than x86_64's vmalloc area (32TiB)";
  }
  for (const char* which : {"fail_page_alloc", "failslab"}) {
    const FaultConfig& f = which[4] == 'p' ? c.fail_page_alloc.fault : c.failslab.fault;
    const std::string w = which;
    if (f.probability > 100)
      return w + ".probability: " + std::to_string(f.probability) +
             " is out of range (must be 0..100)";
    if (f.interval < 1) return w + ".interval: must be >= 1";
    if (f.times < -1)
      return w + ".times: " + std::to_string(f.times) +
             " is out of range (must be -1 for no limit, or >= 0)";
    if (f.space < 0) return w + ".space: " + std::to_string(f.space) + " is negative";
  }
  if (!c.slub_debug.empty()) {
    const std::string letters = c.slub_debug.substr(0, c.slub_debug.find(','));
    for (char ch : letters)
      if (std::string_view("FZPUTH-").find(ch) == std::string_view::npos)
        return std::string("slub_debug: unknown flag '") + ch +
               "' (use F sanity checks, Z red zones, P poisoning, U user tracking, H hardened)";
    if (c.slub_debug.find(",,") != std::string::npos || c.slub_debug.back() == ',')
      return "slub_debug: empty cache name in \"" + c.slub_debug + "\"";
  }
  if (c.paging_levels) {
    if (c.arch == Arch::i386)
      return "paging_levels: i386 pages with two levels; the key is for x86_64 (4 or 5)";
    if (*c.paging_levels != 4 && *c.paging_levels != 5)
      return "paging_levels: " + std::to_string(*c.paging_levels) +
             " is not supported (must be 4, or 5 for LA57)";
  }
  if (auto e = validate_overcommit(c); !e.empty()) return e;
  if (auto e = validate_limits(c); !e.empty()) return e;
  const FaultConfig& f = c.fail_page_alloc.fault;
  if (f.probability > 100) {
    return "fail_page_alloc.probability: " + std::to_string(f.probability) +
           " is out of range (must be 0..100)";
  }
  if (f.interval < 1) return "fail_page_alloc.interval: must be >= 1";
  if (f.times < -1) {
    return "fail_page_alloc.times: " + std::to_string(f.times) +
           " is out of range (must be -1 for no limit, or >= 0)";
  }
  if (f.space < 0) {
    return "fail_page_alloc.space: " + std::to_string(f.space) + " is negative";
  }
  if (c.fail_page_alloc.min_order > kMaxFailOrder) {
    return "fail_page_alloc.min_order: " + std::to_string(c.fail_page_alloc.min_order) +
           " is out of range (must be 0..10)";
  }
  return "";
}

MachineConfig default_demo_config() {
  MachineConfig c;
  c.arch = Arch::x86_64;
  c.cpus = 2;
  c.nodes.resize(2);
  for (NodeConfig& n : c.nodes) n.memory = 2 * kGiB;
  return c;
}

}  // namespace mmkit
