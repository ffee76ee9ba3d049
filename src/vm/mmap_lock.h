// mm->mmap_lock: the lock every change to an address space takes (as a
// writer; mmkit's faults take it too). A mutex that knows its owner, so that
// reclaim, which reaches address spaces from the page side, can tell an
// address space the current thread already holds (direct reclaim inside a
// fault) from one it must lock, and can give up on a busy one after a short
// wait instead of deadlocking against the lock order
// (include/linux/mmap_lock.h; mm/rmap.c's trylock of the mmap lock in
// folio_referenced's and try_to_unmap's callers).
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace mmkit {

class MmapLock {
 public:
  void lock() {
    m_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  bool try_lock() {
    if (!m_.try_lock()) return false;
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    return true;
  }
  // Polls with try_lock until the time is up (no pthread_mutex_clocklock:
  // ThreadSanitizer of GCC 12 does not see locks taken through it).
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    while (!try_lock()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }
  void unlock() {
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    m_.unlock();
  }
  // True only for the thread that holds it (the owner wrote its own id;
  // another thread's id can never read as ours).
  bool held_by_me() const {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

 private:
  std::mutex m_;
  std::atomic<std::thread::id> owner_{};
};

}  // namespace mmkit
