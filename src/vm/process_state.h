// The vm layer's per-machine state (Layer::kProcess): the VMA cache, the
// process table and pid allocator, the list of live address spaces (Linux's
// mmlist), the overcommit counters and vm.max_map_count. Created on first
// use.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "phys/machine.h"
#include "slab/slab.h"
#include "vm/overcommit.h"
#include "vm/process.h"

namespace mmkit {

struct ProcessState : LayerState {
  explicit ProcessState(Machine& machine);
  ~ProcessState() override;

  Machine& m;
  KmemCache* vm_area_cachep = nullptr;
  OvercommitSysctls sysctls;
  uint64_t total_swap_pages = 0;
  int max_map_count = DEFAULT_MAX_MAP_COUNT;  // vm.max_map_count (rlimit.h)
  std::atomic<int64_t> vm_committed_as{0};
  std::atomic<uint64_t> next_anon_vma{1};

  // The reverse map of anonymous pages: anon_vma id -> the linked VMAs
  // chained to it. Taken after an mmap lock when VMAs change; reclaim holds
  // it while it try-locks mmap locks (rmap.h).
  std::mutex rmap_lock;
  std::unordered_map<uint64_t, std::set<VmArea*>> anon_vma_vmas;

  std::mutex lock;  // guards everything below
  std::map<int, std::unique_ptr<Process>> tasks;
  int last_pid = 0;
  std::set<MmStruct*> mms;
};

ProcessState& process_state(Machine& m);
// The state when it exists, else null (for const readers such as meminfo).
const ProcessState* process_state_if(const Machine& m);

}  // namespace mmkit
