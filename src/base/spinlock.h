// A test-and-test-and-set spinlock (Linux's spinlock_t, as zone->lock uses
// it): one atomic exchange to take it uncontended, a relaxed spin on a plain
// load while another holder has it, and a yield after a while so a
// descheduled holder on this 2-core host gets the CPU back.
#pragma once

#include <atomic>
#include <thread>

#include "base/thread_annotations.h"

namespace mmkit {

class CAPABILITY("spinlock") SpinLock {
 public:
  void lock() ACQUIRE() {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins > 64)
          std::this_thread::yield();
        else
          __builtin_ia32_pause();
      }
    }
  }
  bool try_lock() TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() RELEASE() { locked_.store(false, std::memory_order_release); }
  bool is_locked() const { return locked_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
};

class SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l) ACQUIRE(l) : l_(l) { l_.lock(); }
  ~SpinGuard() RELEASE() { l_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace mmkit
