// Order-0 page allocation: one alloc_pages(GFP_KERNEL, 0) + free_pages pair
// per iteration.
//
//   page_alloc/order0_pcp        bound to CPU 0: the per-CPU list fast path
//   page_alloc/order0_nopcp      unbound thread: every pair takes zone->lock
//   page_alloc/order0_pcp_<N>GiB the pcp pair on a smaller or larger machine
//                                (the cost must not grow with RAM)
//
// The page is not touched: the pair is compared with the peers' aligned
// 4 KiB malloc/free pairs, which do not touch theirs either. Counters show
// which path ran: pcp_pages (pages on the per-CPU lists afterwards) is
// non-zero for the pcp variants; pcp_delta (its change over the run) is
// zero for nopcp, which must leave the per-CPU lists alone.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "page_alloc/gfp.h"
#include "page_alloc/page_alloc.h"
#include "phys/cpu.h"
#include "phys/machine.h"

namespace mmkit_bench {

mmkit::Machine* bench_machine(uint64_t gib, std::string* err);

namespace {

uint64_t pcp_pages(mmkit::Machine& m) {
  uint64_t n = 0;
  m.for_each_zone([&](const mmkit::Zone& z) {
    if (z.populated()) n += mmkit::zone_pcp_pages(z);
  });
  return n;
}

// The timed loop, shared by the bound and unbound variants.
void order0_pairs(benchmark::State& state, mmkit::Machine& m) {
  for (auto _ : state) {
    mmkit::Page* p = mmkit::alloc_pages(m, mmkit::GFP_KERNEL, 0);
    if (p == nullptr) {
      state.SkipWithError("alloc_pages(GFP_KERNEL, 0) failed");
      break;
    }
    benchmark::DoNotOptimize(p);
    mmkit::free_pages(m, p, 0);
  }
}

}  // namespace

void BM_order0_pcp(benchmark::State& state, uint64_t gib) {
  std::string err;
  mmkit::Machine* m = bench_machine(gib, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());
  order0_pairs(state, *m);
  state.counters["pcp_pages"] = static_cast<double>(pcp_pages(*m));
}

void BM_order0_nopcp(benchmark::State& state) {
  std::string err;
  mmkit::Machine* m = bench_machine(4, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  if (mmkit::this_cpu(*m) != nullptr) return state.SkipWithError("thread is bound to a CPU");
  const uint64_t before = pcp_pages(*m);
  order0_pairs(state, *m);
  state.counters["pcp_delta"] = static_cast<double>(pcp_pages(*m)) - static_cast<double>(before);
}

}  // namespace mmkit_bench
