// The two locks of an address space, both of this owner-aware mutex type:
//
//   mmap_lock        every change to the address space takes it (as a
//                    writer; mmkit's faults take it too, so one mm's faults
//                    are serialised);
//   page_table_lock  every change to a PTE that may map an anonymous page,
//                    and to the bounds of a VMA, is made under it as well
//                    (Linux's mm->page_table_lock, the one ptlock of a
//                    kernel without split PTE locks).
//
// Reclaim reaches address spaces from the page side and takes only the
// page-table lock, with a try-lock: a fault holds the mmap lock across its
// allocation and swap I/O but the page-table lock only around the few
// stores that install an entry, so kswapd is not shut out of a process
// that faults all the time (include/linux/mmap_lock.h, mm/memory.c's
// pte_offset_map_lock, mm/rmap.c's page_vma_mapped_walk). The owner lets a
// thread tell an address space it already holds from one it must lock.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace mmkit {

class MmLock {
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
