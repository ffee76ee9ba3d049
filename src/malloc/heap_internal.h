// The heap's shared state: the process-wide globals and the per-thread
// context the fast paths read (heap.cc allocates, heap_boot.cc boots the
// machine and manages threads).
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "malloc/size_class.h"
#include "phys/cpu.h"
#include "slab/slab.h"

namespace mmkit {

enum HeapState : int { kHeapCold, kHeapBooting, kHeapReady, kHeapFailed };

struct HeapGlobals {
  std::atomic<int> state{kHeapCold};
  Machine* m = nullptr;
  // The direct map, for free()'s pointer test: [ram_base, ram_base + direct_bytes).
  uintptr_t ram_base = 0;
  uintptr_t direct_bytes = 0;
  Page* mem_map = nullptr;
  KmemCache* caches[kMallocNrClasses] = {};
  // Per class: false for debug caches, which take the core's slow paths
  // for every object.
  bool fast[kMallocNrClasses] = {};
  bool debug = false;                  // MMKIT_DEBUG: every misuse report aborts
  std::atomic<bool> background{true};  // MMKIT_BACKGROUND=0: no reporting worker
  // Held through each of the worker's passes and by heap_check(), which
  // needs every other thread quiet: the worker is the heap's own.
  std::mutex reporter_pass;
  pthread_key_t exit_key = 0;
  // Bumped whenever a thread gives its CPU back: a thread that found none
  // free tries again only after that.
  std::atomic<uint64_t> unbind_epoch{0};
  std::atomic<uint64_t> reported_pages{0};
  std::atomic<uint64_t> decay_ms{0};   // when the last decay pass ran (CLOCK_MONOTONIC_COARSE)
  std::atomic<uint64_t> binds{0};      // threads ever bound to a CPU
  std::atomic<unsigned> bound_now{0};  // CPUs bound at this moment
  // The classes' per-CPU partial budgets (heap_boot.cc), under
  // cpu_partial_lock (which the fork handlers take too): a multiple of
  // SLUB's, 4 from a second thread on, 1 again for good once lowered.
  std::mutex cpu_partial_lock;
  unsigned cpu_partial_mul = 1;
  bool cpu_partial_lowered = false;
  unsigned cpu_partial_default[kMallocNrClasses] = {};  // SLUB's, read at boot
  char boot_error[160] = {};                            // why the last boot attempt failed
};
extern constinit HeapGlobals g_heap;

// The blocks of each class up to 1 KiB that a thread bound to no CPU keeps,
// as glibc's tcache keeps a thread's: its frees and its next allocations of
// the class meet here instead of at the node's lock. Made at the thread's
// first such free, emptied when it binds a CPU or exits (heap.cc).
struct ThreadMagazine {
  static constexpr unsigned kClasses = malloc_size_class(1024) + 1;
  static constexpr unsigned kSlots = 16;
  uint8_t count[kClasses];
  void* slot[kClasses][kSlots];
};

struct ThreadCtx {
  // Inside the core: this thread's allocations go to the early allocator,
  // and the fast paths, whose per-CPU state the core may be changing, are off.
  uint32_t in_core = 0;
  uint32_t report_calls = 0;  // heap_maybe_report()s; every 64th reads the clock
  bool exited = false;        // past its exit hook: runs unbound from now on
  CpuState* cpu = nullptr;
  uint64_t bind_failed_epoch = ~uint64_t{0};
  KmemCacheCpu* slab[kMallocNrClasses] = {};  // this CPU's slab of each class
  ThreadMagazine* mag = nullptr;              // while bound to no CPU
  alignas(CpuScope) unsigned char scope[sizeof(CpuScope)] = {};
};
extern constinit thread_local ThreadCtx tls_heap __attribute__((tls_model("initial-exec")));

// Marks the calling thread as inside the core for the scope's lifetime.
class MallocCoreScope {
 public:
  MallocCoreScope() { ++tls_heap.in_core; }
  ~MallocCoreScope() { --tls_heap.in_core; }
  MallocCoreScope(const MallocCoreScope&) = delete;
  MallocCoreScope& operator=(const MallocCoreScope&) = delete;
};

// heap_boot.cc: boots the machine on first use; false when that failed.
bool heap_boot();
inline bool heap_ready() {
  return g_heap.state.load(std::memory_order_acquire) == kHeapReady;
}
// Binds the calling thread to a free CPU; false when none is free.
bool heap_bind_thread(ThreadCtx& t);
// Gives the magazine's blocks back to their slabs and unmaps it (the thread
// bound a CPU, or is exiting).
void heap_magazine_release(ThreadCtx& t);
// Runs free-page reporting when a free asked for it.
void heap_maybe_report();
// heap_reporter.cc: starts the reporting worker when a free left memory
// that only time can hand back and none runs; the fork child has none.
void heap_reporter_kick();
void heap_reporter_fork_child();
// A misuse of the heap (a bad or double free): report and abort.
[[noreturn]] void heap_fatal(const char* what, const void* p);

}  // namespace mmkit
