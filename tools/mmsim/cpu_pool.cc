// The CPU pool (see cpu_pool.h): a free list and a FIFO of waiters, each
// with its own condition variable, so a release wakes exactly the next
// waiter (no thundering herd with hundreds of workers).
#include "cpu_pool.h"

#include <thread>

namespace mmsim {

CpuPool::CpuPool(mmkit::Machine& m) : m_(m) {
  for (unsigned c = 0; c < m.nr_cpus(); ++c) free_.push_back(static_cast<int>(c));
}

int CpuPool::take() {
  std::unique_lock<std::mutex> g(lock_);
  if (waiters_.empty() && !free_.empty()) {
    const int cpu = free_.front();
    free_.pop_front();
    return cpu;
  }
  Waiter w;
  waiters_.push_back(&w);
  w.cv.wait(g, [&] { return w.cpu >= 0; });
  return w.cpu;
}

void CpuPool::give(int cpu) {
  std::lock_guard<std::mutex> g(lock_);
  if (waiters_.empty()) {
    free_.push_back(cpu);
    return;
  }
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->cpu = cpu;
  w->cv.notify_one();
}

bool CpuPool::acquire(std::optional<mmkit::CpuScope>* scope, std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    const int cpu = take();
    auto bound = mmkit::CpuScope::bind(m_, cpu);
    if (bound.ok()) {
      scope->emplace(std::move(bound.value()));
      return true;
    }
    // Held outside the pool for now: let the next waiter try, then retry.
    give(cpu);
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void CpuPool::release(std::optional<mmkit::CpuScope>& scope) {
  if (!scope) return;
  const int cpu = scope->id();
  scope.reset();  // unbind before another thread may bind
  give(cpu);
}

}  // namespace mmsim
