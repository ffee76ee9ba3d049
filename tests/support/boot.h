// Test machines: a config for the common shapes, and a boot that fails the
// calling test with the reason (and returns null) instead of dereferencing
// a failed Result.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "page_alloc/page_alloc.h"

namespace mmkit::test {

// One node of `mib` MiB.
inline MachineConfig one_node(uint64_t mib, unsigned cpus = 2, Arch arch = Arch::x86_64) {
  MachineConfig c;
  c.arch = arch;
  c.cpus = cpus;
  c.nodes = {NodeConfig{.memory = mib << 20}};
  return c;
}

inline std::unique_ptr<Machine> boot_or_fail(const MachineConfig& c) {
  auto r = boot(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

}  // namespace mmkit::test
