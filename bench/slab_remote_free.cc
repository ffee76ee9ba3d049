// slab/remote_free: 64-byte objects allocated on one CPU, freed on another.
//
// The benchmark thread binds CPU 0 of the slab machine and allocates from a
// 64-byte SLAB_NO_MERGE cache; alloc_loops.h's run_remote_free hands the
// objects in batches of 64 through its SPSC ring to a thread bound to CPU 1,
// which kmem_cache_frees them (the same harness as peer/<lib>/remote_free
// and, with pages, page_alloc/two_cpu_remote_free). None of the objects is
// on CPU 1's active slab, so every free is __slab_free: one
// compare-and-swap on the slab's word; a slab going from full to partial is
// frozen onto CPU 1's partial list, which, never allocated from, overflows
// to the node's partial list (list_lock) where CPU 0's refills find it. CPU
// 0's fast path mostly pops its private freelist and refills it by taking
// the remotely freed objects of its active slab with one compare-and-swap.
//
// The two threads are pinned to two different host CPUs, so the objects and
// slab words really move between caches. One iteration is one object; the
// time is real time (registered with UseRealTime); consumer_cpu_ns is the
// freeing thread's CPU time per object (spinning on an empty ring included).
#include <benchmark/benchmark.h>

#include <string>

#include "alloc_loops.h"
#include "page_alloc/gfp.h"
#include "phys/cpu.h"
#include "phys/machine.h"
#include "slab/slab.h"

namespace mmkit_bench {

mmkit::Machine* slab_machine(std::string* err);
mmkit::KmemCache* slab_bench_cache(mmkit::Machine& m, const std::string& name, unsigned size,
                                   mmkit::slab_flags_t flags);

void BM_slab_remote_free(benchmark::State& state) {
  std::string err;
  mmkit::Machine* m = slab_machine(&err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  mmkit::KmemCache* s = slab_bench_cache(*m, "bench_remote_64", 64, mmkit::SLAB_NO_MERGE);
  if (s == nullptr) return state.SkipWithError("kmem_cache_create failed");
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());
  run_remote_free(
      state, [s] { return mmkit::kmem_cache_alloc(s, mmkit::GFP_KERNEL); },
      [s](void* p) { mmkit::kmem_cache_free(s, p); },
      [m](auto&& body) -> std::string {
        auto cpu1 = mmkit::CpuScope::bind(*m, 1);
        if (!cpu1.ok()) return "bind CPU 1: " + cpu1.error().message;
        body();
        return "";
      });
}

}  // namespace mmkit_bench
