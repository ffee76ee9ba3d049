// The memcg layer's per-machine state (Layer::kMemcg): the groups, and the
// page-to-group map (Linux 2.6's page_cgroup array: one id per pfn, since
// mmkit's 64-byte struct page has no word left for memcg_data).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/spinlock.h"
#include "memcg/memcontrol.h"
#include "phys/machine.h"

namespace mmkit {

inline constexpr unsigned kMaxMemCgroups = 4096;  // ids are 16 bits; 0 is "not charged"

struct Lruvec;
struct MemcgReclaimOps;

// A CPU's queue of pages on their way to an LRU list (mm/swap.c's
// cpu_fbatches.lru_add; PAGEVEC_SIZE pages). Each holds a reference.
inline constexpr unsigned kLruBatchSize = 15;
struct alignas(64) LruBatch {
  SpinLock lock;
  unsigned nr = 0;
  Page* pages[kLruBatchSize];
};

struct MemCgroup {
  Machine* machine = nullptr;
  std::string name;  // "" for the root
  uint16_t id = 0;
  std::atomic<uint64_t> max{kMemMax};       // pages (kMemMax: no limit)
  std::atomic<uint64_t> high{kMemMax};      // memory.high, pages (kMemMax: none)
  std::atomic<int64_t> usage{0};            // pages charged (memory.current)
  std::atomic<int64_t> peak{0};             // memory.peak
  std::atomic<int64_t> swap_usage{0};       // swap slots charged (memory.swap.current)
  std::atomic<uint64_t> swap_max{kMemMax};  // memory.swap.max, slots (kMemMax: no limit)
  std::atomic<uint64_t> ev_swap_max{0}, ev_swap_fail{0};  // memory.swap.events
  // The group's share of NR_FILE_DIRTY and NR_WRITEBACK (memory.stat's
  // file_dirty and file_writeback; its dirty limits, mm/page-writeback.c).
  std::atomic<int64_t> nr_file_dirty{0}, nr_writeback{0};
  // Its page-cache pages that are shmem, and its file and shmem pages
  // mapped by at least one PTE (memory.stat shmem and file_mapped).
  std::atomic<int64_t> nr_shmem{0}, nr_file_mapped{0};
  // Its pages in the swap cache (memory.stat swapcached): a page is charged
  // before it enters the swap cache and uncharged after it leaves.
  std::atomic<int64_t> nr_swapcached{0};
  // zswap (memory.zswap.*): the compressed bytes of the group's entries
  // (MEMCG_ZSWAP_B, memory.zswap.current) and the entries (MEMCG_ZSWAPPED).
  // The bytes are charged to memory.current rounded up to whole pages, as
  // obj_cgroup_charge() takes pages for bytes; zswap_charged is what is
  // charged now. zswap_lock orders the three.
  SpinLock zswap_lock;
  std::atomic<int64_t> zswap_bytes{0}, nr_zswapped{0};
  int64_t zswap_charged = 0;
  std::atomic<uint64_t> zswap_max{kMemMax};  // memory.zswap.max, pages (kMemMax: no limit)
  std::atomic<bool> zswap_writeback{true};   // memory.zswap.writeback
  std::atomic<uint64_t> ev_zswpin{0}, ev_zswpout{0}, ev_zswpwb{0};  // memory.stat
  // memory.events
  std::atomic<uint64_t> ev_high{0}, ev_max{0}, ev_oom{0}, ev_oom_kill{0};
  // What its threads slept over memory.high (mem_cgroup_handle_over_high;
  // Linux shows it only as memory pressure, in memory.pressure).
  std::atomic<uint64_t> high_throttle_ms{0};
  std::vector<std::unique_ptr<Lruvec>> lruvec;  // one per node
  bool is_root() const { return id == 1; }
  MemCgroup();
  ~MemCgroup();
};

struct MemcgState final : LayerState {
  explicit MemcgState(Machine& m);
  ~MemcgState() override;

  Machine& machine;
  std::mutex lock;  // guards creation
  std::vector<std::unique_ptr<MemCgroup>> groups;
  std::atomic<MemCgroup*> by_id[kMaxMemCgroups] = {};
  // page_cgroup: the id of the group each pfn is charged to (0: none).
  std::atomic<uint16_t>* page_memcg = nullptr;
  uint64_t page_memcg_len = 0;

  // Per-CPU LRU batches; the last one is shared by threads bound to no CPU.
  std::unique_ptr<LruBatch[]> batches;
  // Set by the reclaim layer at boot (memcg reclaim and OOM).
  std::unique_ptr<MemcgReclaimOps> reclaim_ops;

  MemCgroup* root() const { return by_id[1].load(std::memory_order_relaxed); }
  MemCgroup* group(uint16_t id) const { return by_id[id].load(std::memory_order_acquire); }
  // Makes a group's lruvecs (one per node).
  void init_lruvecs(MemCgroup* cg);
};

MemcgState& memcg_state(Machine& m);
// Raises memory.peak to `now` pages if it is lower.
inline void mem_cgroup_note_peak(MemCgroup* cg, int64_t now) {
  int64_t peak = cg->peak.load(std::memory_order_relaxed);
  while (now > peak && !cg->peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
// Machine::page_release while the memcg layer exists.
void memcg_page_release(Machine& m, Page* page);
inline MemcgState* memcg_state_if(const Machine& m) {
  return static_cast<MemcgState*>(m.layer_state(Layer::kMemcg));
}

}  // namespace mmkit
