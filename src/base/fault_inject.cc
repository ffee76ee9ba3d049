// lib/fault-inject.c's should_fail_ex(), over a per-attribute xorshift stream.
#include "base/fault_inject.h"

namespace mmkit {

void FaultAttr::configure(const FaultConfig& c) {
  SpinGuard g(lock_);
  cfg_ = c;
  count_ = 0;
  rng_ = c.seed ? c.seed : 0x9e3779b97f4a7c15ull;
  enabled_.store(c.probability > 0 && c.times != 0, std::memory_order_relaxed);
}

bool FaultAttr::should_fail(int64_t size) {
  if (!enabled()) return false;
  SpinGuard g(lock_);
  if (cfg_.times == 0) return false;
  if (cfg_.space > size) {
    cfg_.space -= size;
    return false;
  }
  if (cfg_.interval > 1 && ++count_ % cfg_.interval) return false;
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  if (cfg_.probability <= rng_ % 100) return false;
  if (cfg_.times > 0 && --cfg_.times == 0) enabled_.store(false, std::memory_order_relaxed);
  failures_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace mmkit
