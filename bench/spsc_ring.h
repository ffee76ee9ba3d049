// A bounded single-producer single-consumer ring of pointers for the
// remote-free benchmarks. Each side caches the other side's index and
// re-reads it only when the cached value says full / empty.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>

template <class T>
class SpscBatchRing {
 public:
  static constexpr size_t kRingSize = 1024;  // a power of two

  // Producer: pushes all `n` items, waiting while the ring is full.
  void push(T const* items, size_t n) {
    size_t tail = tail_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < n; ++i, ++tail) {
      for (unsigned spins = 0; tail - head_cache_ >= kRingSize; ++spins) {
        head_cache_ = head_.load(std::memory_order_acquire);
        if (spins > 64) std::this_thread::yield();
      }
      slots_[tail & (kRingSize - 1)] = items[i];
    }
    tail_.store(tail, std::memory_order_release);
  }
  // Consumer: up to `max` items into `out`; 0 when the ring is empty.
  size_t pop(T* out, size_t max) {
    size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) return 0;
    }
    size_t n = 0;
    for (; n < max && head != tail_cache_; ++n, ++head) out[n] = slots_[head & (kRingSize - 1)];
    head_.store(head, std::memory_order_release);
    return n;
  }

 private:
  T slots_[kRingSize] = {};
  alignas(64) std::atomic<size_t> tail_{0};  // written by the producer
  size_t head_cache_ = 0;                    // producer's view of head_
  alignas(64) std::atomic<size_t> head_{0};  // written by the consumer
  size_t tail_cache_ = 0;                    // consumer's view of tail_
};
