// The /proc views of a machine, as Linux 6.1 prints them (Debian 12's kernel).
//
//   render_buddyinfo      /proc/buddyinfo     mm/vmstat.c frag_show_print
//   render_pagetypeinfo   /proc/pagetypeinfo  mm/vmstat.c pagetypeinfo_show*
//   render_zoneinfo       /proc/zoneinfo      mm/vmstat.c zoneinfo_show_print
//   render_meminfo        /proc/meminfo       fs/proc/meminfo.c meminfo_proc_show
//   render_vmstat         /proc/vmstat        mm/vmstat.c vmstat_text, vmstat_show
//   render_slabinfo       /proc/slabinfo      mm/slab_common.c cache_show (version 2.1)
//   render_vmallocinfo    /proc/vmallocinfo   mm/vmalloc.c s_show
//   render_json           all of the above as one JSON object, for tools
//
// The text is byte for byte what a 6.1 kernel built with Debian 12's config
// prints for the same numbers, so Linux's own tools (procps `free`,
// `vmstat -s`, `slabtop -o`) read it. Where mmkit has no counter yet (page
// cache, swap), the field is printed as 0, as Linux prints a counter nothing
// has touched. mmkit has no ZONE_DEVICE, so the views are those of that config
// without CONFIG_ZONE_DEVICE (no "Device" zone, no *_device events).
//
// Locking: like Linux's walk_zones_in_node(), each zone's numbers are read
// under zone->lock (a snapshot; formatting happens after the lock is
// dropped). Per-CPU list sizes and counters are atomics, read without it.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "phys/machine.h"
#include "slab/slab.h"

namespace mmkit {

std::string render_buddyinfo(const Machine& m);
std::string render_pagetypeinfo(Machine& m);
std::string render_zoneinfo(const Machine& m);
std::string render_meminfo(const Machine& m);
std::string render_vmstat(const Machine& m);
// Starts the machine's slab layer (its kmalloc caches) if nothing has yet.
std::string render_slabinfo(Machine& m);
// Empty until something has used vmalloc, vmap or kmap on the machine.
std::string render_vmallocinfo(const Machine& m);
// /proc/swaps, /proc/<pid>/oom_score and oom_score_adj, and dmesg (the boot
// log and the kernel log after it).
std::string render_swaps(const Machine& m);
std::string render_pid_oom_score(Machine& m, int pid);
std::string render_pid_oom_score_adj(Machine& m, int pid);
std::string render_dmesg(const Machine& m);
// zswap's statistics (/sys/kernel/debug/zswap): one "name value" line per
// file of that directory, in its alphabetical order.
std::string render_zswap(const Machine& m);

// Per-process views (fs/proc/array.c, fs/proc/task_mmu.c), "" when no
// process has that pid:
//   render_pid_status        /proc/<pid>/status        proc_pid_status + task_mem
//   render_pid_maps          /proc/<pid>/maps          show_map_vma
//   render_pid_smaps_rollup  /proc/<pid>/smaps_rollup  show_smaps_rollup
std::string render_pid_status(Machine& m, int pid);
std::string render_pid_maps(Machine& m, int pid);
std::string render_pid_smaps_rollup(Machine& m, int pid);

// The view called `name` ("buddyinfo", "meminfo", ..., or "<pid>/maps",
// "<pid>/status", "<pid>/smaps_rollup"), or "" for an unknown name or pid.
std::string render_view(Machine& m, std::string_view name);
// The names render_view knows, in /proc's alphabetical order.
std::vector<std::string_view> view_names();

// {"buddyinfo": [...], "pagetypeinfo": {...}, "zoneinfo": [...],
//  "meminfo": {...}, "vmstat": {...}, "slabinfo": [...], "zswap": {...}}: see json.cc
// for the schema.
std::string render_json(Machine& m);

// --- the structured forms the text and JSON views share -----------------------

// One /proc/meminfo line: `prefix` is Linux's label as printed (colon and
// padding included, e.g. "MemTotal:       "), then the value right-aligned in
// `width` columns, then " kB" when `kb`.
struct MeminfoField {
  std::string_view prefix;
  unsigned width = 8;
  bool kb = true;
  uint64_t value = 0;  // kB when `kb`, else a count
  std::string_view name() const { return prefix.substr(0, prefix.find(':')); }
};
std::vector<MeminfoField> meminfo_fields(const Machine& m);

// One /proc/vmstat line. `with_private` appends mmkit's own events (those
// from kFirstPrivateVmEvent on), which the text view leaves out.
struct VmstatField {
  std::string_view name;
  uint64_t value = 0;
};
std::vector<VmstatField> vmstat_fields(const Machine& m, bool with_private = false);

// One /proc/slabinfo row: get_slabinfo()'s numbers and the names merged into
// the cache (which the text does not show). Rows come newest cache first, as
// Linux walks slab_caches (create_cache() list_add()s at the head), so the
// kmalloc caches come last, kmalloc-8k first among them. SLUB has no
// tunables and no shared arrays: limit, batchcount, sharedfactor and
// sharedavail are always 0. The walk holds slab_mutex, as Linux's does.
struct SlabinfoRow {
  SlabInfo info;
  std::vector<std::string> aliases;
};
std::vector<SlabinfoRow> slabinfo_rows(Machine& m);

namespace procfs_internal {
// show_vma_header_prefix() for /proc/<pid>/maps and smaps_rollup: one line,
// the name (if any) padded to Linux's column.
void vma_header(fmt::memory_buffer& out, const Machine& m, uint64_t start, uint64_t end,
                uint64_t vm_flags, uint64_t pgoff, unsigned major, unsigned minor, uint64_t ino,
                std::string_view name);
}  // namespace procfs_internal

}  // namespace mmkit
