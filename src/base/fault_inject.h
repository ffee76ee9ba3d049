// Fault injection after Linux's lib/fault-inject.c (`fail_page_alloc`,
// `failslab`): a FaultAttr fails a call with `probability` percent, only on
// every `interval`-th call, at most `times` times (-1: no limit), after
// `space` bytes have gone through. Each attribute has its own seeded random
// stream so a failing run replays.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/spinlock.h"

namespace mmkit {

struct FaultConfig {
  unsigned probability = 0;  // percent, 0..100; 0 disables
  unsigned interval = 1;
  int64_t times = 1;  // Linux's default; -1 means unlimited
  int64_t space = 0;
  uint64_t seed = 1;
};

class FaultAttr {
 public:
  void configure(const FaultConfig& c);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // should_fail_ex(): true when this call is to fail.
  bool should_fail(int64_t size);
  int64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> enabled_{false};
  std::atomic<int64_t> failures_{0};
  SpinLock lock_;
  FaultConfig cfg_ GUARDED_BY(lock_);
  uint64_t count_ GUARDED_BY(lock_) = 0;
  uint64_t rng_ GUARDED_BY(lock_) = 1;
};

}  // namespace mmkit
