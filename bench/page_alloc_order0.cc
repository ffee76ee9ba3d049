// Order-0 page allocation: one alloc_pages(GFP_KERNEL, 0) + free_pages pair
// per iteration.
//
//   page_alloc/order0_pcp           bound to CPU 0: the per-CPU list fast path
//   page_alloc/order0_pcp_<N>GiB    the same on a smaller or larger machine
//                                   (the cost must not grow with RAM)
//   page_alloc/order0_nopcp         unbound thread: every pair takes zone->lock
//                                   on the buddy lists directly
//   page_alloc/order0_nopcp_nomerge diagnostic: the same, with the freed page's
//                                   buddy held, so no split and no merge
//   page_alloc/zone_lock_pair       diagnostic: zone->lock taken and dropped
//                                   twice, the unbound pair's locking alone
//
// Without per-CPU lists the cost depends on how coalesced the zone is: an
// order-0 pair on a zone whose free memory sits in order-10 blocks splits one
// block ten times (expand) and merges it back ten times (__free_one_page),
// exactly as Linux would. Pages other benchmarks leave on per-CPU lists break
// up the shared machine's blocks and shorten that, so order0_nopcp runs on
// its own 4 GiB machine that no CPU ever binds: it measures the fully
// coalesced case, whatever ran before it. order0_nopcp_nomerge (a third
// machine) holds one page of a buddy pair and cycles the other: zone->lock
// and one list operation each way, which is the lock path's floor.
//
// The page is not touched: the pair is compared with the peers' aligned
// 4 KiB malloc/free pairs, which do not touch theirs either. Counters show
// which path ran: pcp_pages (pages on all per-CPU lists afterwards) is
// non-zero for the pcp variants; pcp_delta (its change over the run) is zero
// for the unbound ones; same_page is the share of nomerge pairs that got the
// held page's buddy back (1: no split, no merge).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "page_alloc/gfp.h"
#include "page_alloc/page_alloc.h"
#include "phys/cpu.h"
#include "phys/machine.h"

namespace mmkit_bench {

mmkit::Machine* bench_machine(uint64_t gib, int instance, std::string* err);

namespace {

constexpr int kSharedMachine = 0;
constexpr int kNopcpMachine = 1;
constexpr int kNomergeMachine = 2;

uint64_t pcp_pages(mmkit::Machine& m) {
  uint64_t n = 0;
  m.for_each_zone([&](const mmkit::Zone& z) {
    if (z.populated()) n += mmkit::zone_pcp_pages(z);
  });
  return n;
}

// The timed loop, shared by all variants; returns the pairs that got `want`.
int64_t order0_pairs(benchmark::State& state, mmkit::Machine& m,
                     const mmkit::Page* want = nullptr) {
  int64_t hits = 0;
  for (auto _ : state) {
    mmkit::Page* p = mmkit::alloc_pages(m, mmkit::GFP_KERNEL, 0);
    if (p == nullptr) {
      state.SkipWithError("alloc_pages(GFP_KERNEL, 0) failed");
      break;
    }
    benchmark::DoNotOptimize(p);
    hits += p == want;
    mmkit::free_pages(m, p, 0);
  }
  return hits;
}

// Allocates order-0 pages until two are buddies (pfn and pfn ^ 1), frees all
// but one of those two, and returns the one kept; null if none paired up.
mmkit::Page* hold_one_buddy(mmkit::Machine& m, mmkit::Page** freed) {
  std::vector<mmkit::Page*> pages;
  mmkit::Page* keep = nullptr;
  for (int i = 0; i < 256 && keep == nullptr; ++i) {
    mmkit::Page* p = mmkit::alloc_pages(m, mmkit::GFP_KERNEL, 0);
    if (p == nullptr) break;
    for (mmkit::Page* q : pages)
      if ((m.page_to_pfn(q) ^ 1) == m.page_to_pfn(p)) {
        keep = p;
        *freed = q;
      }
    if (keep == nullptr) pages.push_back(p);
  }
  for (mmkit::Page* q : pages) mmkit::free_pages(m, q, 0);  // *freed among them
  return keep;
}

}  // namespace

void BM_order0_pcp(benchmark::State& state, uint64_t gib) {
  std::string err;
  mmkit::Machine* m = bench_machine(gib, kSharedMachine, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());
  order0_pairs(state, *m);
  state.counters["pcp_pages"] = static_cast<double>(pcp_pages(*m));
}

void BM_order0_nopcp(benchmark::State& state) {
  std::string err;
  mmkit::Machine* m = bench_machine(4, kNopcpMachine, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  if (mmkit::this_cpu(*m) != nullptr) return state.SkipWithError("thread is bound to a CPU");
  const uint64_t before = pcp_pages(*m);
  order0_pairs(state, *m);
  state.counters["pcp_delta"] = static_cast<double>(pcp_pages(*m)) - static_cast<double>(before);
}

void BM_order0_nopcp_nomerge(benchmark::State& state) {
  std::string err;
  mmkit::Machine* m = bench_machine(4, kNomergeMachine, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  if (mmkit::this_cpu(*m) != nullptr) return state.SkipWithError("thread is bound to a CPU");
  mmkit::Page* freed = nullptr;
  mmkit::Page* keep = hold_one_buddy(*m, &freed);
  if (keep == nullptr) return state.SkipWithError("no buddy pair among 256 order-0 pages");
  const uint64_t before = pcp_pages(*m);
  const int64_t hits = order0_pairs(state, *m, freed);
  state.counters["pcp_delta"] = static_cast<double>(pcp_pages(*m)) - static_cast<double>(before);
  if (state.iterations() > 0)
    state.counters["same_page"] =
        static_cast<double>(hits) / static_cast<double>(state.iterations());
  mmkit::free_pages(*m, keep, 0);  // the zone coalesces again for the next call
}

void BM_zone_lock_pair(benchmark::State& state) {
  std::string err;
  mmkit::Machine* m = bench_machine(4, kNopcpMachine, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  mmkit::Zone& z = *m->pfn_zone(m->max_pfn() - 1);
  for (auto _ : state) {
    z.lock.lock();  // the allocation's rmqueue_buddy()
    benchmark::ClobberMemory();
    z.lock.unlock();
    z.lock.lock();  // the free's free_one_page()
    benchmark::ClobberMemory();
    z.lock.unlock();
  }
}

}  // namespace mmkit_bench
