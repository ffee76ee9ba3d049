// slab/colour/on and slab/colour/off: when SLUB colouring (SLAB_COLOUR)
// helps.
//
// Slabs start on page boundaries, so without colouring the first object of
// every slab sits at the same offset modulo 4 KiB and maps to the same L1
// set (set index = address bits 6..11, 64 sets, on this host's 48 KiB 12-way
// L1d). A workload that keeps the first object of many slabs hot (a list
// head, a lock, a refcount in each) then has all of them competing for one
// set's ways and misses in L1 however little it touches in total. With
// SLAB_COLOUR each new slab of a CPU starts its objects one cache line
// further in (0, 64, ..., colour_slack, then 0 again), spreading those
// objects over colour_slack / 64 + 1 sets.
//
// The cache is kObjectSize = 640 bytes (ten lines, SLAB_HWCACHE_ALIGN): its
// order-1 slab holds 12 objects and leaves 512 bytes of slack, so 9 colours.
// (A 256- or 512-byte cache fills its slab exactly: nothing to colour.)
// Setup, untimed: a fresh cache (created with or without SLAB_COLOUR, and
// SLAB_NO_MERGE), on CPU 0 of the slab machine, allocates kSlabs slabs'
// worth of objects and links the first object of each slab into a cycle in
// a random order (the same for both variants), defeating the prefetchers.
// The timed loop chases that cycle: one iteration is one dependent load, so
// the time is the time per access. With kSlabs = 64 the walked lines fit in
// L1 when spread over 9 sets (64 / 9 < 12 ways) and do not when they share
// one (64 > 12); either way they fit in L2. Counters:
//   slabs    first objects walked
//   l1_sets  distinct L1 sets they map to (1 without colouring)
//   colours  distinct offsets of the first object in its slab
// Teardown frees everything and destroys the cache.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "page_alloc/gfp.h"
#include "phys/cpu.h"
#include "phys/machine.h"
#include "slab/slab.h"

namespace mmkit_bench {

mmkit::Machine* slab_machine(std::string* err);

namespace {

constexpr unsigned kObjectSize = 640;

}  // namespace

void BM_slab_colour(benchmark::State& state, bool colour, unsigned nr_slabs) {
  std::string err;
  mmkit::Machine* m = slab_machine(&err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());

  static std::atomic<unsigned> serial{0};
  const std::string name = std::string("bench_colour_") + (colour ? "on_" : "off_") +
                           std::to_string(serial.fetch_add(1, std::memory_order_relaxed));
  const mmkit::slab_flags_t flags =
      mmkit::SLAB_HWCACHE_ALIGN | mmkit::SLAB_NO_MERGE | (colour ? mmkit::SLAB_COLOUR : 0);
  mmkit::KmemCache* s = mmkit::kmem_cache_create(*m, name, kObjectSize, 0, flags);
  if (s == nullptr) return state.SkipWithError("kmem_cache_create failed");

  // kSlabs slabs' worth of objects; the lowest object of each slab is its first.
  const unsigned per_slab = mmkit::get_slabinfo(s).objperslab;
  std::vector<void*> objs;
  std::map<mmkit::Page*, char*> first;
  for (unsigned i = 0; i < nr_slabs * per_slab; ++i) {
    void* p = mmkit::kmem_cache_alloc(s, mmkit::GFP_KERNEL);
    if (p == nullptr) break;
    objs.push_back(p);
    char*& f = first[m->virt_to_page(p)->head()];
    if (f == nullptr || static_cast<char*>(p) < f) f = static_cast<char*>(p);
  }
  std::vector<char*> walk;
  std::set<uintptr_t> sets, colours;
  for (auto& [slab, obj] : first) {
    walk.push_back(obj);
    sets.insert(reinterpret_cast<uintptr_t>(obj) >> 6 & 63);
    colours.insert(static_cast<uintptr_t>(obj - static_cast<char*>(m->page_address(slab))));
  }

  if (walk.size() == nr_slabs) {
    std::vector<size_t> order(walk.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(42));
    for (size_t i = 0; i < order.size(); ++i)
      *reinterpret_cast<void**>(walk[order[i]]) = walk[order[(i + 1) % order.size()]];
    void* p = walk[order[0]];
    for (size_t i = 0; i < 4 * walk.size(); ++i) p = *static_cast<void**>(p);  // warm
    for (auto _ : state) p = *static_cast<void**>(p);
    benchmark::DoNotOptimize(p);
    state.counters["slabs"] = static_cast<double>(walk.size());
    state.counters["l1_sets"] = static_cast<double>(sets.size());
    state.counters["colours"] = static_cast<double>(colours.size());
  } else {
    state.SkipWithError("could not allocate the slabs");
  }

  for (void* p : objs) mmkit::kmem_cache_free(s, p);
  if (mmkit::kmem_cache_destroy(s) != 0) state.SkipWithError("kmem_cache_destroy failed");
}

}  // namespace mmkit_bench
