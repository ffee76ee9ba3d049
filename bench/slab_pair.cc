// The slab allocator's fast paths, on CPU 0 of the slab benchmarks' machine.
//
//   slab/cache_pair/<SIZE>    kmem_cache_alloc + kmem_cache_free per
//                             iteration, on a cache of SIZE bytes created
//                             with SLAB_NO_MERGE (so it is nobody's alias)
//   slab/kmalloc_pair/<SIZE>  kmalloc(SIZE, GFP_KERNEL) + kfree per iteration
//                             (the kmalloc caches, 8 .. 8192)
//   slab/batch/<SIZE>         kBatchObjects (10,000) kmem_cache_alloc, then
//                             as many kmem_cache_free, on another
//                             SLAB_NO_MERGE cache; time per object
//
// The loops are alloc_loops.h's, which the malloc peers (peers_malloc.cc)
// run too. The benchmark thread binds CPU 0, so the pairs stay on the
// lock-free per-CPU freelist; the batch runs through the refill and
// free slow paths (new slabs from the page allocator, partial lists, empty
// slabs going back) as 10,000 objects span many slabs.
//
// The slab benchmarks share one 4 GiB, 2-CPU machine of their own
// (slab_machine(), instance kSlabMachine of machines.cc), so the slabs they
// hold do not reshape the page_alloc benchmarks' zone. Caches are created on
// first use and kept for the life of the process (Google Benchmark calls a
// benchmark function several times). Counters: objs_per_slab and
// slab_order of the cache measured.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "alloc_loops.h"
#include "page_alloc/gfp.h"
#include "phys/cpu.h"
#include "phys/machine.h"
#include "slab/slab.h"

namespace mmkit_bench {

mmkit::Machine* bench_machine(uint64_t gib, int instance, std::string* err);

namespace {
constexpr int kSlabMachine = 3;  // 0..2 are the page_alloc benchmarks'
}  // namespace

mmkit::Machine* slab_machine(std::string* err) {
  return bench_machine(4, kSlabMachine, err);
}

// The cache `name` of `size` bytes with `flags` on `m`, created on first use.
mmkit::KmemCache* slab_bench_cache(mmkit::Machine& m, const std::string& name, unsigned size,
                                   mmkit::slab_flags_t flags) {
  static std::mutex mu;
  static std::map<std::pair<mmkit::Machine*, std::string>, mmkit::KmemCache*> caches;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, fresh] = caches.try_emplace({&m, name}, nullptr);
  if (fresh) it->second = mmkit::kmem_cache_create(m, name, size, 0, flags);
  return it->second;
}

namespace {

void cache_counters(benchmark::State& state, mmkit::KmemCache* s) {
  const mmkit::SlabInfo info = mmkit::get_slabinfo(s);
  state.counters["objs_per_slab"] = info.objperslab;
  state.counters["slab_order"] = __builtin_ctz(info.pagesperslab);
}

// Binds CPU 0 and runs `body(m)`; skips with the reason when it cannot.
template <class Body>
void on_cpu0(benchmark::State& state, Body body) {
  std::string err;
  mmkit::Machine* m = slab_machine(&err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());
  body(*m);
}

}  // namespace

void BM_slab_cache_pair(benchmark::State& state, unsigned size) {
  on_cpu0(state, [&](mmkit::Machine& m) {
    mmkit::KmemCache* s =
        slab_bench_cache(m, "bench_pair_" + std::to_string(size), size, mmkit::SLAB_NO_MERGE);
    if (s == nullptr) return state.SkipWithError("kmem_cache_create failed");
    run_pairs(
        state, [s] { return mmkit::kmem_cache_alloc(s, mmkit::GFP_KERNEL); },
        [s](void* p) { mmkit::kmem_cache_free(s, p); });
    cache_counters(state, s);
  });
}

void BM_slab_kmalloc_pair(benchmark::State& state, unsigned size) {
  on_cpu0(state, [&](mmkit::Machine& m) {
    run_pairs(
        state, [&m, size] { return mmkit::kmalloc(m, size, mmkit::GFP_KERNEL); },
        [&m](void* p) { mmkit::kfree(m, p); });
    cache_counters(state, mmkit::kmalloc_cache(m, size));
  });
}

void BM_slab_batch(benchmark::State& state, unsigned size) {
  on_cpu0(state, [&](mmkit::Machine& m) {
    mmkit::KmemCache* s =
        slab_bench_cache(m, "bench_batch_" + std::to_string(size), size, mmkit::SLAB_NO_MERGE);
    if (s == nullptr) return state.SkipWithError("kmem_cache_create failed");
    run_batch(
        state, [s] { return mmkit::kmem_cache_alloc(s, mmkit::GFP_KERNEL); },
        [s](void* p) { mmkit::kmem_cache_free(s, p); });
    cache_counters(state, s);
  });
}

}  // namespace mmkit_bench
