// MachineConfig: everything a Machine is booted from, as plain values.
//
// It is filled either by the TOML parser (config_toml.h) or directly in code
// (tests build many small machines). validate() is the single place where a
// config is judged; the TOML parser adds the file and line to its message.
// Sizes are in bytes; ranges inside a node are relative to the node's start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/fault_inject.h"

namespace mmkit {

enum class Arch { x86_64, i386 };

struct MemRange {
  uint64_t start = 0;  // bytes from the node's first address
  uint64_t size = 0;
};

struct NodeConfig {
  uint64_t memory = 0;             // the node's span in bytes (holes included)
  std::vector<MemRange> holes;     // not present: spanned but not present
  std::vector<MemRange> reserved;  // present but never given to the buddy allocator
  std::vector<int> distance;       // SLIT row; empty: 10 local, 20 remote
  std::optional<unsigned> cpus;    // CPUs on this node; default: spread evenly
  // Memory hotplug: the bytes of the node online at boot, from its start;
  // the rest is offline until online_memory_block() brings it in (Linux's
  // memory blocks, mm/memory_hotplug.c). Unset: the whole node is online.
  std::optional<uint64_t> online;
};

struct FailPageAllocConfig {
  FaultConfig fault;
  unsigned min_order = 1;       // Linux's fail_page_alloc defaults
  bool ignore_gfp_wait = true;  // ignore allocations that may direct-reclaim
  bool ignore_gfp_highmem = true;
};

struct FailSlabConfig {
  FaultConfig fault;
  bool ignore_gfp_wait = true;  // Linux's failslab default
};

// One [[swap]] area: a host file (created if missing; "" for a temporary
// file removed when the machine goes), its size, its priority (unset: the
// next of -2, -3, ... in swapon order, as Linux numbers them).
struct SwapAreaConfig {
  std::string file;
  uint64_t size = 0;  // bytes; 0: the existing file's size
  std::optional<int> priority;
  uint32_t line = 0;  // the [[swap]] table's line in the config file (0: unknown)
};

// [zswap]: the compressed cache in front of swap (mm/zswap.c's module
// parameters, with Linux's defaults: off, lz4, 20% of RAM, accept again
// below 90% of that).
struct ZswapConfig {
  bool enabled = false;
  std::string compressor = "lz4";  // "lz4" or "zstd"
  unsigned max_pool_percent = 20;
  unsigned accept_threshold_percent = 90;
};

inline constexpr int kMaxNumNodes = 64;
inline constexpr int kMaxCpus = 256;
inline constexpr int kMaxZonesPerNode = 4;  // MAX_NR_ZONES on both arches
// RLIM_INFINITY (include/uapi/asm-generic/resource.h): no limit. Not spelled
// RLIM_INFINITY, which <sys/resource.h> defines as a macro.
inline constexpr uint64_t kRlimInfinity = ~uint64_t{0};
// sysctl vm.max_map_count's default (include/linux/mm.h DEFAULT_MAX_MAP_COUNT).
inline constexpr unsigned kDefaultMaxMapCount = 65530;

struct MachineConfig {
  Arch arch = Arch::x86_64;
  unsigned cpus = 1;
  std::optional<uint64_t> min_free_kbytes;  // unset: computed as Linux does
  unsigned watermark_scale_factor = 10;
  // sysctl vm.lowmem_reserve_ratio, one per zone index of the arch.
  std::vector<unsigned> lowmem_reserve_ratio;  // empty: Linux's defaults
  unsigned percpu_pagelist_high_fraction = 0;
  uint64_t movablecore = 0;  // bytes for ZONE_MOVABLE, 0: none
  std::vector<NodeConfig> nodes;
  FailPageAllocConfig fail_page_alloc;
  FailSlabConfig failslab;
  // Linux's slub_debug= boot parameter: flag letters (F sanity checks, Z red
  // zones, P poisoning, U user tracking, H hardened free pointers, - none)
  // then optionally ",cache,cache*". Empty: no debugging.
  std::string slub_debug;
  // Linux's CONFIG_SLAB_FREELIST_HARDENED: every slab cache stores its free
  // pointers encoded (the SLAB_FREELIST_HARDENED flag does it for one cache).
  bool slab_freelist_hardened = false;
  // Linux's slub_max_order= boot parameter: the highest slab order SLUB
  // picks for a cache (PAGE_ALLOC_COSTLY_ORDER by default). Not a TOML key:
  // the malloc front end raises it for its big size classes.
  unsigned slub_max_order = 3;
  // Linux's slub_min_objects= boot parameter: the objects calculate_order()
  // aims a slab to hold. 0: 4 * (fls(nr_cpus) + 1), as Linux. Not a TOML
  // key: the malloc front end keeps its slab sizes as its CPUs grow.
  unsigned slub_min_objects = 0;
  // Linux's vmalloc= boot parameter: the size of the vmalloc area (x86_64
  // only; it is reserved in the host's address space). 0: mmkit's default.
  uint64_t vmalloc_size = 0;
  // Overcommit sysctls (vm.overcommit_*, vm.*_reserve_kbytes; mm/util.c,
  // mm/mmap.c). Unset reserves are computed at boot as Linux's
  // init_user_reserve()/init_admin_reserve() do; overcommit_ratio and
  // overcommit_kbytes exclude each other, as their sysctl handlers make them.
  unsigned overcommit_memory = 0;            // 0 heuristic, 1 always, 2 never
  std::optional<unsigned> overcommit_ratio;  // unset: 50
  uint64_t overcommit_kbytes = 0;            // 0: use the ratio
  std::optional<uint64_t> user_reserve_kbytes;
  std::optional<uint64_t> admin_reserve_kbytes;
  // `swap = SIZE`: one temporary swap area of that size (booted with
  // reclaim); a plain boot() counts it in CommitLimit and SwapTotal only.
  uint64_t swap = 0;
  uint32_t swap_line = 0;  // the `swap` key's line in the config file (0: unknown)
  // [[swap]] areas (booted with reclaim).
  std::vector<SwapAreaConfig> swap_areas;
  ZswapConfig zswap;
  // Writeback sysctls (vm.dirty_*; mm/page-writeback.c). A _bytes form and
  // its ratio exclude each other, as their sysctl handlers make them; unset
  // ratios are Linux's defaults 20 and 10.
  std::optional<unsigned> dirty_ratio;
  std::optional<unsigned> dirty_background_ratio;
  uint64_t dirty_bytes = 0;             // 0: use the ratio
  uint64_t dirty_background_bytes = 0;  // 0: use the ratio
  unsigned dirty_expire_centisecs = 3000;
  unsigned dirty_writeback_centisecs = 500;
  // fault_around_bytes (mm/memory.c, debugfs): a read fault on a file
  // mapping also maps the cached pages around it in a window of this many
  // bytes. A power of two from PAGE_SIZE (off) to a page table's span.
  uint64_t fault_around_bytes = 65536;
  // [fs] root: the host directory holding the machine's files (it must
  // exist); "": a private temporary directory, removed with the machine.
  std::string fs_root;
  // Reclaim and OOM sysctls (vm.swappiness 0..200, vm.page-cluster 0..31,
  // vm.panic_on_oom 0..2, vm.oom_kill_allocating_task).
  unsigned swappiness = 60;
  unsigned page_cluster = 3;
  unsigned panic_on_oom = 0;
  bool oom_kill_allocating_task = false;
  // The multi-generational LRU (/sys/kernel/mm/lru_gen/enabled, chosen at
  // boot): reclaim ages and evicts by generations instead of the active and
  // inactive lists. min_ttl_ms (lru_gen/min_ttl_ms, 0: off): kswapd OOM-kills
  // rather than evict a working set younger than this.
  bool lru_gen = false;
  unsigned lru_gen_min_ttl_ms = 0;
  // x86_64 paging depth: 4 (48-bit virtual addresses) or 5 (LA57, 57-bit),
  // as CONFIG_X86_5LEVEL with the CPU's la57 feature. Unset: 4. i386 always
  // pages with two levels (no PAE) and rejects the key.
  std::optional<unsigned> paging_levels;
  // Every process's RLIMIT_AS and RLIMIT_DATA in bytes (soft and hard limit
  // alike, as a shell's `ulimit -v` / `ulimit -d` set both), kRlimInfinity
  // for "unlimited". The vm layer checks them where Linux does: mm/mmap.c
  // may_expand_vm() for mmap, brk, mremap and stack growth, and the brk
  // syscall's check_data_rlimit().
  uint64_t rlimit_as = kRlimInfinity;
  uint64_t rlimit_data = kRlimInfinity;
  // sysctl vm.max_map_count: how many VMAs a process may have (mm/mmap.c's
  // map_count checks in do_mmap, brk, __split_vma and mremap).
  unsigned max_map_count = kDefaultMaxMapCount;
  // RAM as private anonymous memory instead of a memfd (the malloc front
  // end's heap): a forked child gets a copy, as of any heap, and offline
  // memory is inaccessible (PROT_NONE) until it is onlined. Such a machine
  // has no ram_fd(), so nothing may map its frames twice (vmalloc, kmap).
  // Not a TOML key: only code boots such machines.
  bool ram_anonymous = false;
};

// Checks every field; returns "" when the config can boot, else one message
// of the form "field: what is wrong" (field as in the TOML schema, e.g.
// "node[1].holes[0].start").
std::string validate(const MachineConfig& c);

// The default machine of `mmsim demo`: x86_64, 2 CPUs, 2 nodes of 2 GiB.
MachineConfig default_demo_config();

}  // namespace mmkit
