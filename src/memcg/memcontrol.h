// Memory cgroups, cgroup v2's memory controller (mm/memcontrol.c).
//
// A group counts the pages charged to it (memory.current) against its limit
// (memory.max) and keeps its own lruvec per node, so reclaim on its behalf
// walks only its own lists. Pages are charged when a fault or a swap-in
// brings them in and uncharged when they are freed. Every machine has a root
// group, which holds every page not charged to another group and has no
// limit. Groups are flat under the root (one level, as `mmsim run` jobs use
// them).
//
//   root_mem_cgroup(m)              the root group
//   mem_cgroup_create(m, name, max) mkdir + memory.max (bytes; kMemMax: "max")
//   mem_cgroup_set_high(cg, high)   memory.high
//   mem_cgroup_set_swap_max(cg, max) memory.swap.max
//   mem_cgroup_set_zswap_max(cg, max) memory.zswap.max
//   mem_cgroup_set_zswap_writeback(cg, on) memory.zswap.writeback
//   mem_cgroup_read(cg, file)       a control file's text: memory.current,
//                                   memory.peak, memory.max, memory.events,
//                                   memory.swap.current, memory.swap.max,
//                                   memory.swap.events, memory.zswap.current,
//                                   memory.zswap.max, memory.zswap.writeback,
//                                   memory.stat
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "phys/machine.h"

namespace mmkit {

struct MemCgroup;
inline constexpr uint64_t kMemMax = ~uint64_t{0};  // memory.max "max"

// The least a charge over memory.max asks reclaim for, and the pages
// reclaim isolates at a time for it: Linux's SWAP_CLUSTER_MAX
// (try_charge_memcg() and try_to_free_mem_cgroup_pages() in
// mm/memcontrol.c and mm/vmscan.c) for groups of 8 MiB and more, a 64th
// of the limit below that. A departure: in a group of 64 pages, 32 at once
// is half its memory, evicted at every charge over the limit.
inline uint64_t memcg_reclaim_batch(uint64_t max_pages) {
  return std::clamp<uint64_t>(max_pages >> 6, 1, SWAP_CLUSTER_MAX);
}

MemCgroup* root_mem_cgroup(Machine& m);
// A new group under the root, or null when `name` is empty or taken.
MemCgroup* mem_cgroup_create(Machine& m, std::string_view name, uint64_t max_bytes);
// memory.max: lowering it below memory.current reclaims down to it, as a
// write to the file does.
void mem_cgroup_set_max(MemCgroup* cg, uint64_t max_bytes);
// memory.high (bytes; kMemMax: "max"), the throttle limit: a charge that
// takes the group over it still succeeds, counts a high event and reclaims
// the excess from the group's own lists at once (Linux does it on the way
// back to user space); it never calls the OOM killer. The thread then
// owes a sleep, paid by mem_cgroup_handle_over_high(). Setting it below
// memory.current reclaims down to it (memory_high_write).
void mem_cgroup_set_high(MemCgroup* cg, uint64_t high_bytes);
// mem_cgroup_handle_over_high(), called on the way back to user space (the
// end of a fault, read or write) with no lock held: when the calling thread's charges took
// group `cg` (null: the root) over memory.high since its last call, reclaim
// again, and if the group stays more than about a tenth over it while
// reclaim makes no progress (MAX_RECLAIM_RETRIES rounds), sleep the
// penalty, at most 2 s (mm/memcontrol.c). The time slept adds up in
// MemCgroup::high_throttle_ms.
void mem_cgroup_handle_over_high(Machine& m, MemCgroup* cg);
// calculate_high_delay() in milliseconds (HZ = 1000) for `nr_pages`
// charged over `high` with the group at `usage` pages: quadratic in the
// overage, ((usage - high) << 20) / high, and in proportion to nr_pages
// against MEMCG_CHARGE_BATCH (64). Not clamped.
uint64_t mem_cgroup_high_delay_ms(uint64_t usage, uint64_t high, uint64_t nr_pages);
// memory.swap.max: the swap the group's pages may hold (bytes, rounded
// down to slots; kMemMax: "max"). A group at it gets no slot
// (__mem_cgroup_try_charge_swap: the swap.events max and fail counts go
// up), so reclaim leaves its anonymous pages alone; lowering it below the
// usage takes nothing back, as swap_max_write().
void mem_cgroup_set_swap_max(MemCgroup* cg, uint64_t max_bytes);
// Charges one swap slot to group `id` (0: none, always allowed) unless
// that would take it over memory.swap.max; false, with the events
// counted, when it would.
bool mem_cgroup_try_charge_swap(Machine& m, uint16_t id);
// The group's swap usage changes by n slots (a charge that cannot fail, or
// an uncharge).
void mem_cgroup_swap_charge(Machine& m, uint16_t id, int64_t n);
// memory.swap.events fail: a charged group found no free slot anywhere.
void mem_cgroup_swap_fail(Machine& m, uint16_t id);
// The slots the group may still take below memory.swap.max (~0: no limit).
uint64_t mem_cgroup_swap_headroom(const MemCgroup* cg);
// memory.zswap.max (bytes, rounded down to pages; kMemMax: "max"). A
// group whose compressed bytes have reached it stores nothing more in
// zswap: its pages go to the swap file (obj_cgroup_may_zswap(), and
// zswap_store's reject as Linux 6.1 has it); 0 keeps it out of zswap.
void mem_cgroup_set_zswap_max(MemCgroup* cg, uint64_t max_bytes);
// memory.zswap.writeback (Linux 6.8): off, the group's pages never reach
// the swap file. A page zswap refuses stays in memory, dirty, and reclaim
// activates it (swap_writepage's AOP_WRITEPAGE_ACTIVATE), and the pool's
// writeback passes over the group's entries.
void mem_cgroup_set_zswap_writeback(MemCgroup* cg, bool on);
// mem_cgroup_zswap_writeback_enabled() for swap_cgroup id `id` (0: none,
// enabled).
bool mem_cgroup_zswap_writeback_enabled(Machine& m, uint16_t id);
// obj_cgroup_may_zswap() for the group of swap_cgroup id `id` (0: none).
bool mem_cgroup_may_zswap(Machine& m, uint16_t id);
// obj_cgroup_charge_zswap() (entries +1) and obj_cgroup_uncharge_zswap()
// (-1): a zswap entry of `bytes` compressed bytes (0: same-filled) comes or
// goes. The charge to memory.current cannot fail (zswap stores from
// reclaim, Linux's PF_MEMALLOC) and may take the group over memory.max.
void mem_cgroup_zswap_charge(Machine& m, uint16_t id, int64_t bytes, int64_t entries);
// The group's zswpin, zswpout and zswpwb events (memory.stat).
enum class MemcgZswapEvent : uint8_t { kIn, kOut, kWriteback };
void mem_cgroup_count_zswap(Machine& m, uint16_t id, MemcgZswapEvent ev);
// The group of swap_cgroup id `id`, or null (0, or no memcg layer).
MemCgroup* mem_cgroup_from_id(Machine& m, uint16_t id);
// mem_cgroup_wb_stats() (mm/memcontrol.c), in pages: what a group's dirty
// limits are computed from. headroom is the room left below memory.max
// (~0 for the root and for a group without a limit).
struct MemcgWbStats {
  uint64_t filepages = 0;  // inactive_file + active_file
  uint64_t headroom = 0;
  uint64_t dirty = 0;      // NR_FILE_DIRTY
  uint64_t writeback = 0;  // NR_WRITEBACK
};
MemcgWbStats mem_cgroup_wb_stats(const MemCgroup* cg);
// The text of a control file, as cgroupfs prints it ("" and false for an
// unknown file).
bool mem_cgroup_read(const MemCgroup* cg, std::string_view file, std::string* out);
std::string mem_cgroup_name(const MemCgroup* cg);
// Every group of the machine, the root first.
std::vector<MemCgroup*> mem_cgroups(Machine& m);

}  // namespace mmkit
