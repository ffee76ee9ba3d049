// Counters that one thread writes and any thread may read.
//
// OwnedCounter is a per-CPU counter (Linux's __count_vm_event): only the CPU
// context that owns it adds, with a relaxed load and store (a plain add on
// x86, no lock prefix); readers sum the CPUs with relaxed loads. SharedCounter
// is for counts touched from any thread: one atomic add.
#pragma once

#include <atomic>
#include <cstdint>

namespace mmkit {

class OwnedCounter {
 public:
  void add(int64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  int64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class SharedCounter {
 public:
  void add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  int64_t get() const { return v_.load(std::memory_order_relaxed); }
  void set(int64_t n) { v_.store(n, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

}  // namespace mmkit
