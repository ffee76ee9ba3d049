// `mmsim demo`: boots the default machine (2 CPUs, 2 nodes, 4 GiB) and runs a
// short workload on both CPUs at once: each CPU thread allocates blocks of
// mixed orders with mixed GFP flags (kernel, atomic, user movable, DMA32,
// reclaimable, zeroed, compound), keeps up to a few thousand live, and frees
// them in random order. It prints buddyinfo before, at the peak and after,
// then the counters. The seed makes a run repeatable.
#include "demo.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"

namespace mmsim {

namespace {

using namespace mmkit;

struct Block {
  Page* page;
  unsigned order;
};

constexpr gfp_t kGfpMix[] = {GFP_KERNEL,
                             GFP_DMA,
                             GFP_KERNEL | __GFP_ZERO,
                             GFP_ATOMIC,
                             GFP_HIGHUSER_MOVABLE,
                             GFP_HIGHUSER_MOVABLE,
                             GFP_USER,
                             GFP_DMA32,
                             GFP_KERNEL | __GFP_RECLAIMABLE,
                             GFP_KERNEL | __GFP_COMP,
                             GFP_NOWAIT};

unsigned pick_order(std::mt19937_64& rng) {
  const unsigned r = rng() % 100;
  if (r < 70) return 0;
  if (r < 85) return 1 + rng() % 3;  // pcp orders
  if (r < 97) return 4 + rng() % 4;
  return 8 + rng() % 3;  // up to MAX_PAGE_ORDER
}

void cpu_workload(Machine& m, int cpu, const DemoOptions& opt, std::vector<Block>* live,
                  std::atomic<int>* at_peak, uint64_t* failures) {
  auto scope = CpuScope::bind(m, cpu);
  if (!scope) return;
  std::mt19937_64 rng(opt.seed * 1000003 + cpu);
  const size_t max_live = 4000;
  for (unsigned i = 0; i < opt.ops_per_cpu; ++i) {
    if (live->size() < max_live && (live->empty() || rng() % 3 != 0)) {
      const unsigned order = pick_order(rng);
      const gfp_t gfp = kGfpMix[rng() % std::size(kGfpMix)] | __GFP_NOWARN;
      if (Page* p = alloc_pages(m, gfp, order))
        live->push_back({p, order});
      else
        ++*failures;
    } else {
      const size_t k = rng() % live->size();
      std::swap((*live)[k], live->back());
      free_pages(m, live->back().page, live->back().order);
      live->pop_back();
    }
  }
  // Hold the live set until both CPUs are done, so the peak view shows it.
  at_peak->fetch_add(1);
  while (at_peak->load() < 3) std::this_thread::yield();
  std::shuffle(live->begin(), live->end(), rng);
  for (const Block& b : *live) free_pages(m, b.page, b.order);
  live->clear();
  drain_local_pages(m);
}

}  // namespace

int run_demo(Machine& m, const DemoOptions& opt) {
  if (opt.json)
    fmt::print("{{\"before\":{},", render_json(m));
  else
    fmt::print("== buddyinfo before ==\n{}\n", render_buddyinfo(m));

  std::vector<Block> live[2];
  uint64_t failures[2] = {0, 0};
  std::atomic<int> at_peak{0};
  std::vector<std::thread> cpus;
  const int ncpu = std::min<int>(2, static_cast<int>(m.nr_cpus()));
  for (int c = 0; c < ncpu; ++c)
    cpus.emplace_back(cpu_workload, std::ref(m), c, std::cref(opt), &live[c], &at_peak,
                      &failures[c]);
  while (at_peak.load() < ncpu) std::this_thread::yield();
  const std::string peak = opt.json ? render_json(m) : render_buddyinfo(m);
  at_peak.store(3);
  for (auto& t : cpus) t.join();
  drain_all_pages(m);

  if (opt.json) {
    fmt::print("\"peak\":{},\"after\":{}}}\n", peak, render_json(m));
  } else {
    fmt::print("== buddyinfo at the peak (live blocks held on both CPUs) ==\n{}\n", peak);
    fmt::print("== buddyinfo after (all freed, per-CPU lists drained) ==\n{}\n",
               render_buddyinfo(m));
    fmt::print("== counters ==\n");
    for (VmEvent e : {VmEvent::PGALLOC_DMA, VmEvent::PGALLOC_DMA32, VmEvent::PGALLOC_NORMAL,
                      VmEvent::PGALLOC_MOVABLE, VmEvent::PGFREE, VmEvent::ALLOCSTALL_NORMAL,
                      VmEvent::ALLOC_SLOWPATH, VmEvent::ALLOC_FAIL, VmEvent::KSWAPD_WAKEUP})
      fmt::print("{:<24} {}\n", kVmEventNames[static_cast<unsigned>(e)], m.sum_event(e));
    fmt::print("{:<24} {}\n", "failed (NOWARN) allocs", failures[0] + failures[1]);
  }
  if (std::string err = check(m); !err.empty()) {
    fmt::print(stderr, "mmsim: invariant violated after the demo: {}\n", err);
    return 1;
  }
  return 0;
}

}  // namespace mmsim
