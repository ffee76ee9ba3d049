// Sharing the machine's CPUs among more workers than there are CPUs.
//
// A CPU is bound by one thread at a time (mmkit::CpuScope), so `mmsim run`
// hands CPUs out from a pool: a worker takes one, binds it for a batch of
// page accesses (or, when there are no more workers than CPUs, for its
// whole run) and gives it back, and a waiting worker gets it next, first
// come first served. This is a time slice, as a scheduler would give: the
// per-CPU page lists and TLB the worker used stay with the CPU for the
// next one, as they do on a real machine when a task is preempted.
//
// Binding can fail for a moment when another thread holds the CPU (a
// drain_all_pages() taking over an idle CPU's lists, or a core thread such
// as kswapd binding one); the taker then gives the CPU back and retries.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "phys/cpu.h"
#include "phys/machine.h"

namespace mmsim {

class CpuPool {
 public:
  explicit CpuPool(mmkit::Machine& m);

  // Blocks until a CPU is free, binds the calling thread to it and puts
  // the binding in the empty *scope; false when no CPU could be bound for
  // `patience` (every CPU held by threads outside the pool).
  bool acquire(std::optional<mmkit::CpuScope>* scope,
               std::chrono::milliseconds patience = std::chrono::milliseconds(10000));
  // Gives back the CPU the caller bound: ends the binding, then hands the
  // CPU to the next waiter.
  void release(std::optional<mmkit::CpuScope>& scope);

 private:
  struct Waiter {
    std::condition_variable cv;
    int cpu = -1;
  };
  int take();
  void give(int cpu);

  mmkit::Machine& m_;
  std::mutex lock_;
  std::deque<int> free_;
  std::deque<Waiter*> waiters_;
};

}  // namespace mmsim
