// The vmalloc layer's per-machine state (Layer::kVmalloc): the layout, the
// host window, the area tree and its free space, and the high-memory
// mapping state (pkmap slots, per-CPU kmap_atomic stacks). Created on first
// use by vmalloc_state(); private to src/vmalloc.
//
// Lock order: vmap_area_lock, then pkmap.lock, then pte_lock (innermost:
// held only around kernel page-table writes, never while allocating or
// sleeping; it stands for init_mm's page_table_lock).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/spinlock.h"
#include "vm/pgtable.h"
#include "vmalloc/host_window.h"
#include "vmalloc/layout.h"
#include "vmalloc/vmalloc.h"
#include "vmalloc/vmap_area.h"

namespace mmkit {

// vm_struct and its vmap_area in one.
struct VmStruct {
  uint64_t addr = 0;  // kernel virtual start
  uint64_t size = 0;  // guard page included unless VM_NO_GUARD
  unsigned long flags = 0;
  std::vector<Page*> pages;  // mapped in order
  unsigned nr_pages = 0;     // pages shown as pages= (vmalloc, VM_MAP_PUT_PAGES)
  const char* caller = "";
  uint64_t mapped_size() const { return size - (flags & VM_NO_GUARD ? 0 : PAGE_SIZE); }
};

// Set while an area's pages are being allocated and mapped (vmallocinfo
// then shows no pages for it, as Linux's show_numa_info() skips it).
inline constexpr unsigned long VM_UNINITIALIZED = 0x20;

// Permanent kernel mappings (mm/highmem.c): pkmap_count[], last_pkmap_nr,
// page_address_htable, kmap_lock and pkmap_map_wait.
struct PkmapState {
  std::mutex lock;
  std::condition_variable wait;
  int count[LAST_PKMAP] = {};   // 0 free, 1 mapped but unused, n: n-1 users
  Page* page[LAST_PKMAP] = {};  // the page slot i maps (while count >= 1)
  unsigned last_pkmap_nr = 0;
  unsigned waiters = 0;
  std::unordered_map<const Page*, unsigned> slot_of;  // page_address() for kmapped pages
};

// One CPU's kmap_atomic stack (kmap_ctrl): slots [0, idx) are in use.
struct alignas(64) KmapAtomicCpu {
  unsigned idx = 0;
  Page* page[KM_MAX_IDX] = {};
};

class VmallocState : public LayerState {
 public:
  explicit VmallocState(Machine& m);

  Machine& machine;
  KernelLayout layout;
  HostWindow window;
  std::string window_error;  // why the host reservation failed ("" when it worked)
  PageTable* kernel_pt = nullptr;

  std::mutex vmap_area_lock;
  VmapSpace free_space;                                // guarded by vmap_area_lock
  std::map<uint64_t, std::unique_ptr<VmStruct>> busy;  // by addr; vmap_area_lock
  std::atomic<uint64_t> nr_vmalloc_pages{0};

  SpinLock pte_lock;

  PkmapState pkmap;
  std::unique_ptr<KmapAtomicCpu[]> kmap_atomic_cpus;

  bool ok() const { return window_error.empty(); }
  // Makes the i386 pkmap and fixmap page tables (once, before the state is
  // published).
  void populate_kmap_tables();
};

// The machine's state, created on first use. Never null; check ok().
VmallocState& vmalloc_state(Machine& m);
// Null when the layer has not been used on `m`.
inline VmallocState* vmalloc_state_if_any(const Machine& m) {
  return static_cast<VmallocState*>(m.layer_state(Layer::kVmalloc));
}

}  // namespace mmkit
