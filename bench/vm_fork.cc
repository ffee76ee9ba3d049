// fork and munmap of a large address space.
//
//   vm/fork_1GiB    fork of a process with 1 GiB of private anonymous memory
//                   written (262144 pages): dup_mmap copies and
//                   write-protects every entry; the child then exits at
//                   once (zap, free the tables), as the host peer's child
//                   does
//   vm/munmap_1GiB  munmap of 1 GiB written just before (untimed): every
//                   entry zapped, every page freed, the tables freed
//
// The machine has 4 GiB (2 nodes of 2 GiB); the benchmarks run on CPU 0.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <mutex>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/process.h"

#include "bench_process.h"

namespace mmkit_bench {
namespace {

using namespace mmkit;

constexpr uint64_t kGiB = 1ull << 30;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

}  // namespace

// The vm benchmarks' 4 GiB machine (vm_mmap.cc uses it too).
Machine* fork_machine() {
  static std::mutex mu;
  static std::unique_ptr<Machine> m;
  std::lock_guard<std::mutex> g(mu);
  if (!m) {
    auto r = boot(default_demo_config());
    if (!r.ok()) return nullptr;
    m = std::move(r.value());
  }
  return m.get();
}

void BM_vm_fork_1GiB(benchmark::State& state) {
  BenchProcess p(state, fork_machine());
  if (!p.ok()) return;
  MmStruct* mm = p.get()->mm;
  if (do_mmap(mm, 0, kGiB, kRW, kAnon | MAP_POPULATE) < 0 ||
      mm->get_mm_counter(MM_ANONPAGES) != kGiB / PAGE_SIZE)
    return state.SkipWithError("cannot populate 1 GiB");
  for (auto _ : state) {
    Process* child = nullptr;
    if (fork_process(p.get(), &child) != 0) {
      state.SkipWithError("fork failed");
      break;
    }
    exit_process(child);
  }
}

void BM_vm_munmap_1GiB(benchmark::State& state) {
  BenchProcess p(state, fork_machine());
  if (!p.ok()) return;
  MmStruct* mm = p.get()->mm;
  for (auto _ : state) {
    state.PauseTiming();
    const int64_t a = do_mmap(mm, 0, kGiB, kRW, kAnon | MAP_POPULATE);
    state.ResumeTiming();
    if (a < 0 || do_munmap(mm, a, kGiB) != 0) {
      state.SkipWithError("mmap/munmap failed");
      break;
    }
  }
}

}  // namespace mmkit_bench
