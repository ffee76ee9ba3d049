// A bounded single-producer single-consumer ring for the cross-CPU tests:
// one thread pushes, another pops; acquire/release on the indices hands
// each item over, so TSan sees the hand-off.
#pragma once

#include <atomic>
#include <cstddef>

namespace mmkit::test {

template <class T, size_t N>
class SpscRing {
 public:
  bool push(const T& it) {
    const size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == N) return false;
    buf_[t % N] = it;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  bool pop(T* it) {
    const size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return false;
    *it = buf_[h % N];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

 private:
  T buf_[N];
  std::atomic<size_t> head_{0}, tail_{0};
};

}  // namespace mmkit::test
