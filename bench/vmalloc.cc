// vmalloc and high-memory mappings, on CPU 0.
//
//   vmalloc/vmalloc_vfree/<SIZE>  vmalloc(SIZE) + vfree per iteration: an
//                                 area from the free space, SIZE / 4 KiB
//                                 order-0 pages, their ptes, the host
//                                 mmap of each run of frames; then the
//                                 reverse (pte clears, one mmap back to
//                                 PROT_NONE, the pages freed)
//   vmalloc/kmap_pair             kmap + kunmap of one high page on an i386
//                                 machine: after the first round the page
//                                 keeps its slot (count 1), so this is the
//                                 lookup and count path Linux's is
//   vmalloc/kmap_atomic_pair      kmap_atomic + kunmap_atomic of a high
//                                 page: a fixmap pte set and cleared and
//                                 the host alias mapped and unmapped (two
//                                 mmap calls) every time
//
// The x86_64 benchmark uses its own 4 GiB machine (instance kVmallocMachine
// of machines.cc); the i386 ones share a 2 GiB i386 machine booted here.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "page_alloc/page_alloc.h"
#include "phys/cpu.h"
#include "phys/machine.h"
#include "vmalloc/highmem.h"
#include "vmalloc/vmalloc.h"

namespace mmkit_bench {

mmkit::Machine* bench_machine(uint64_t gib, int instance, std::string* err);

namespace {

constexpr int kVmallocMachine = 4;  // 0..2 page_alloc's, 3 slab's

mmkit::Machine* i386_machine(std::string* err) {
  static std::mutex mu;
  static std::unique_ptr<mmkit::Machine> m;
  std::lock_guard<std::mutex> lock(mu);
  if (m) return m.get();
  mmkit::MachineConfig cfg;
  cfg.arch = mmkit::Arch::i386;
  cfg.cpus = 2;
  cfg.nodes.resize(1);
  cfg.nodes[0].memory = uint64_t{2} << 30;
  auto r = mmkit::boot(cfg);
  if (!r.ok()) {
    *err = "boot i386: " + r.error().message;
    return nullptr;
  }
  m = std::move(r.value());
  return m.get();
}

// Binds CPU 0 of `m` and runs body(m); skips with the reason when it cannot.
template <class Body>
void on_cpu0(benchmark::State& state, mmkit::Machine* m, const std::string& err, Body body) {
  if (m == nullptr) return state.SkipWithError(err.c_str());
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());
  body(*m);
}

}  // namespace

void BM_vmalloc_vfree(benchmark::State& state, uint64_t size) {
  std::string err;
  mmkit::Machine* m = bench_machine(4, kVmallocMachine, &err);
  on_cpu0(state, m, err, [&](mmkit::Machine& mm) {
    for (auto _ : state) {
      void* p = mmkit::vmalloc(mm, size);
      if (p == nullptr) return state.SkipWithError("vmalloc failed");
      benchmark::DoNotOptimize(p);
      mmkit::vfree(mm, p);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  });
}

// One map + unmap pair per iteration over a high page of the i386 machine.
template <class Map, class Unmap>
void high_page_pair(benchmark::State& state, Map map, Unmap unmap) {
  std::string err;
  mmkit::Machine* m = i386_machine(&err);
  on_cpu0(state, m, err, [&](mmkit::Machine& mm) {
    mmkit::Page* page = mmkit::alloc_page(mm, mmkit::GFP_HIGHUSER);
    if (page == nullptr || !mmkit::PageHighMem(mm, page))
      return state.SkipWithError("no high page");
    for (auto _ : state) {
      void* a = map(mm, page);
      benchmark::DoNotOptimize(a);
      unmap(mm, page, a);
    }
    mmkit::free_page(mm, page);
  });
}

void BM_kmap_pair(benchmark::State& state) {
  high_page_pair(
      state, [](mmkit::Machine& m, mmkit::Page* p) { return mmkit::kmap(m, p); },
      [](mmkit::Machine& m, mmkit::Page* p, void*) { mmkit::kunmap(m, p); });
}

void BM_kmap_atomic_pair(benchmark::State& state) {
  high_page_pair(
      state, [](mmkit::Machine& m, mmkit::Page* p) { return mmkit::kmap_atomic(m, p); },
      [](mmkit::Machine& m, mmkit::Page*, void* a) { mmkit::kunmap_atomic(m, a); });
}

}  // namespace mmkit_bench
