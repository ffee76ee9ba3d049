// boot/<N>GiB: one whole boot per iteration, mmkit::boot() and the machine's
// destruction, for a 1, 16 and 64 GiB machine (x86_64, 2 CPUs, one node).
//
// The time is boot + destroy. Counters:
//   boot_ms  mmkit::boot() alone, averaged over the iterations
//   rss_MiB  how much the host's resident set grew across boot(), read from
//            /proc/self/statm while the machine is alive (the largest over
//            the iterations: the first boot pays for what later boots may
//            find already resident, such as malloc'd heap). RAM is a sparse
//            memfd and the descriptor array is touched only where written,
//            so this is the real host cost of a machine of that size.
// The statm reads are outside the timed region.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "page_alloc/page_alloc.h"
#include "phys/config.h"
#include "phys/machine.h"

namespace mmkit_bench {

mmkit::MachineConfig bench_config(uint64_t gib);

namespace {

// Resident set size of this process in bytes (statm's second field).
uint64_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

void BM_boot(benchmark::State& state, uint64_t gib) {
  const mmkit::MachineConfig cfg = bench_config(gib);
  double boot_seconds = 0;
  uint64_t max_rss_growth = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const uint64_t before = rss_bytes();
    state.ResumeTiming();

    const auto t0 = std::chrono::steady_clock::now();
    auto r = mmkit::boot(cfg);
    boot_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.ok()) {
      state.SkipWithError(("boot: " + r.error().message).c_str());
      break;
    }

    state.PauseTiming();
    const uint64_t after = rss_bytes();
    if (after > before && after - before > max_rss_growth) max_rss_growth = after - before;
    state.ResumeTiming();

    r.value().reset();  // destroy: unmaps RAM and the descriptor array
  }
  if (state.iterations() == 0) return;
  state.counters["boot_ms"] =
      benchmark::Counter(boot_seconds * 1e3, benchmark::Counter::kAvgIterations);
  state.counters["rss_MiB"] = static_cast<double>(max_rss_growth) / (1 << 20);
}

}  // namespace mmkit_bench
