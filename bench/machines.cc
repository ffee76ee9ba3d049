// Booted machines shared by the page_alloc benchmarks.
//
// Booting is what boot.cc measures; the allocation benchmarks must not pay
// for it, and Google Benchmark calls each benchmark function several times
// (to size the iteration count, then once per repetition). So each machine
// size is booted once, on first use, and kept for the life of the process.
// Every machine here is x86_64 with 2 CPUs and one node; only RAM varies.
// `instance` separates machines of the same size whose free lists must not
// be shaped by other benchmarks (order0_nopcp wants a zone nobody else has
// fragmented with per-CPU lists): instance 0 is the shared one.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "page_alloc/page_alloc.h"
#include "phys/config.h"
#include "phys/machine.h"

namespace mmkit_bench {

mmkit::MachineConfig bench_config(uint64_t gib) {
  mmkit::MachineConfig c;
  c.arch = mmkit::Arch::x86_64;
  c.cpus = 2;
  c.nodes.resize(1);
  c.nodes[0].memory = gib << 30;
  return c;
}

// Machine `instance` of `gib` GiB, or null with the boot error in *err.
mmkit::Machine* bench_machine(uint64_t gib, int instance, std::string* err) {
  static std::mutex mu;
  static std::map<std::pair<uint64_t, int>, std::unique_ptr<mmkit::Machine>> machines;
  std::lock_guard<std::mutex> lock(mu);
  const std::pair<uint64_t, int> key{gib, instance};
  auto it = machines.find(key);
  if (it != machines.end()) return it->second.get();
  auto r = mmkit::boot(bench_config(gib));
  if (!r.ok()) {
    *err = "boot " + std::to_string(gib) + " GiB: " + r.error().message;
    return nullptr;
  }
  return machines.emplace(key, std::move(r.value())).first->second.get();
}

}  // namespace mmkit_bench
