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

#include "memcg/memcontrol.h"
#include "phys/machine.h"

namespace mmkit {

inline constexpr unsigned kMaxMemCgroups = 4096;  // ids are 16 bits; 0 is "not charged"

struct MemCgroup {
  Machine* machine = nullptr;
  std::string name;  // "" for the root
  uint16_t id = 0;
  std::atomic<uint64_t> max{kMemMax};  // pages (kMemMax: no limit)
  std::atomic<int64_t> usage{0};       // pages charged (memory.current)
  std::atomic<int64_t> peak{0};        // memory.peak
  std::atomic<int64_t> swap_usage{0};  // swap slots charged (memory.swap.current)
  // memory.events
  std::atomic<uint64_t> ev_max{0}, ev_oom{0}, ev_oom_kill{0};
  bool is_root() const { return id == 1; }
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

  MemCgroup* root() const { return by_id[1].load(std::memory_order_relaxed); }
};

MemcgState& memcg_state(Machine& m);
inline MemcgState* memcg_state_if(const Machine& m) {
  return static_cast<MemcgState*>(m.layer_state(Layer::kMemcg));
}

}  // namespace mmkit
