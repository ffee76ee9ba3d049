// Higher-order page allocation: one alloc_pages(GFP_KERNEL, N) + free_pages
// pair per iteration on CPU 0 of the shared 4 GiB machine, N = 1..10.
//
// Orders 1..3 (up to PAGE_ALLOC_COSTLY_ORDER) are served from the per-CPU
// lists like order 0; orders 4..10 bypass them and take zone->lock, then
// split a larger buddy block on allocation and merge it back on free. The
// block is not touched. The counter `pages` is 2^N, for reading the time
// per page off the time per pair.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "page_alloc/gfp.h"
#include "page_alloc/page_alloc.h"
#include "phys/cpu.h"
#include "phys/machine.h"

namespace mmkit_bench {

mmkit::Machine* bench_machine(uint64_t gib, int instance, std::string* err);

void BM_orderN(benchmark::State& state, unsigned order) {
  std::string err;
  mmkit::Machine* m = bench_machine(4, 0, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());
  for (auto _ : state) {
    mmkit::Page* p = mmkit::alloc_pages(*m, mmkit::GFP_KERNEL, order);
    if (p == nullptr) {
      state.SkipWithError("alloc_pages(GFP_KERNEL, order) failed");
      break;
    }
    benchmark::DoNotOptimize(p);
    mmkit::free_pages(*m, p, order);
  }
  state.counters["pages"] = static_cast<double>(1u << order);
}

}  // namespace mmkit_bench
