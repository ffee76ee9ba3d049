// mmap and munmap in a crowded address space.
//
//   vm/mmap_munmap_10k_vmas  a one-page hintless mmap and its munmap, in a
//                            process holding 10,000 one-page VMAs that
//                            cannot merge (alternating protections): the
//                            top-down search starts at free_area_cache
//                            instead of walking every VMA
//
// The host peer (peers_vm.cc) does the same with the host's mmap.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/process.h"

#include "bench_process.h"

namespace mmkit_bench {

using namespace mmkit;

Machine* fork_machine();  // vm_fork.cc

void BM_vm_mmap_munmap_many_vmas(benchmark::State& state, int nr_vmas) {
  BenchProcess p(state, fork_machine());
  if (!p.ok()) return;
  MmStruct* mm = p.get()->mm;
  constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
  for (int i = 0; i < nr_vmas; ++i)
    if (do_mmap(mm, 0, PAGE_SIZE, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE, kAnon) < 0)
      return state.SkipWithError("cannot build the VMAs");
  for (auto _ : state) {
    const int64_t a = do_mmap(mm, 0, PAGE_SIZE, PROT_READ | PROT_EXEC, kAnon);
    if (a < 0 || do_munmap(mm, static_cast<uint64_t>(a), PAGE_SIZE) != 0) {
      state.SkipWithError("mmap/munmap failed");
      break;
    }
  }
  state.counters["vmas"] = mm->map_count;
}

}  // namespace mmkit_bench
