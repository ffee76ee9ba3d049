// Page-fault benchmarks: the cost of one fault, as a program pays it.
//
//   vm/fault_anon_zero  a write to a fresh page of a private anonymous
//                       mapping: translation miss, handle_mm_fault (VMA
//                       lookup, a zeroed GFP_HIGHUSER_MOVABLE page, the
//                       entry set), the translation retried, one byte
//                       written; on CPU 0, 64 MiB mapped at a time, so the
//                       frames it recycles are cold: a fault costs at least
//                       what zeroing a cold frame does (vm/clear_page_cold)
//   vm/fault_anon_zero_1MiB  the same with 1 MiB mapped at a time: the
//                       frames come back from the per-CPU lists still in
//                       the cache, as for a program that maps and unmaps
//                       buffers of that size
//   vm/clear_page_cold  diagnostic: clear_user_highpage's memset of a frame
//                       alone, cycling over 64 MiB of the fault benchmarks'
//                       machine as vm/fault_anon_zero does: its floor
//   vm/fault_cow        a child's first write to a page it shares with its
//                       parent after fork: do_wp_page copies the page
//
// When the mapping is used up the benchmark pauses, unmaps it (or lets the
// child exit and forks another) and carries on. One untimed pass first
// makes the machine's RAM resident in the host, so the figures are mmkit's
// work, not the host's first touch of its memory.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"
#include "vm/process.h"

#include "bench_process.h"

namespace mmkit_bench {
namespace {

using namespace mmkit;

constexpr uint64_t kPages = 16384;  // 64 MiB: vm/fault_cow, and the cold fault
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

Machine* fault_machine() {
  static std::mutex mu;
  static std::unique_ptr<Machine> m;
  std::lock_guard<std::mutex> g(mu);
  if (!m) {
    MachineConfig c;
    c.cpus = 2;
    c.nodes = {NodeConfig{.memory = 1ull << 30}};
    auto r = boot(c);
    if (!r.ok()) return nullptr;
    m = std::move(r.value());
  }
  return m.get();
}

void write_byte(MmStruct* mm, uint64_t addr) {
  char* h = user_page_begin(mm, addr, Access::kWrite);
  *h = 1;
  user_page_end(mm);
}

}  // namespace

void BM_vm_fault_anon_zero(benchmark::State& state, uint64_t window_pages) {
  BenchProcess p(state, fault_machine());
  if (!p.ok()) return;
  MmStruct* mm = p.get()->mm;
  int64_t a = 0;
  auto remap = [&] {
    if (a > 0) do_munmap(mm, a, window_pages * PAGE_SIZE);
    a = do_mmap(mm, 0, window_pages * PAGE_SIZE, kRW, kAnon);
  };
  remap();
  for (uint64_t i = 0; i < window_pages; ++i)
    write_byte(mm, a + i * PAGE_SIZE);  // host-resident RAM
  remap();
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == window_pages) {
      state.PauseTiming();
      remap();
      i = 0;
      state.ResumeTiming();
    }
    write_byte(mm, a + i++ * PAGE_SIZE);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_vm_clear_page_cold(benchmark::State& state) {
  Machine* m = fault_machine();
  if (!m) return state.SkipWithError("no machine");
  auto cpu = CpuScope::bind(*m, 0);
  Page* frames = alloc_pages(*m, GFP_HIGHUSER_MOVABLE, 10);  // 4 MiB
  if (!cpu.ok() || !frames) {
    state.SkipWithError("no machine");
    return;
  }
  // 64 MiB in 16 blocks of 4 MiB, walked frame by frame: every frame was
  // last written 64 MiB of zeroing earlier.
  constexpr unsigned kBlocks = kPages >> 10;
  char* block[kBlocks];
  Page* pages[kBlocks];
  pages[0] = frames;
  for (unsigned b = 1; b < kBlocks; ++b)
    if (!(pages[b] = alloc_pages(*m, GFP_HIGHUSER_MOVABLE, 10))) {
      for (unsigned f = 0; f < b; ++f) free_pages(*m, pages[f], 10);
      state.SkipWithError("no 64 MiB for the frames");
      return;
    }
  for (unsigned b = 0; b < kBlocks; ++b) block[b] = m->phys_window(m->page_to_pfn(pages[b]));
  uint64_t i = 0;
  for (auto _ : state) {
    char* frame = block[(i >> 10) % kBlocks] + ((i & 1023) << PAGE_SHIFT);
    std::memset(frame, 0, PAGE_SIZE);  // what clear_user_highpage does
    benchmark::ClobberMemory();
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  for (unsigned b = 0; b < kBlocks; ++b) free_pages(*m, pages[b], 10);
}

void BM_vm_fault_cow(benchmark::State& state) {
  BenchProcess p(state, fault_machine());
  if (!p.ok()) return;
  Process* parent = p.get();
  const int64_t a = do_mmap(parent->mm, 0, kPages * PAGE_SIZE, kRW, kAnon | MAP_POPULATE);
  Process* child = nullptr;
  auto refork = [&] {
    if (child) exit_process(child);
    fork_process(parent, &child);
  };
  refork();
  for (uint64_t i = 0; i < kPages; ++i) write_byte(child->mm, a + i * PAGE_SIZE);
  refork();
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kPages) {
      state.PauseTiming();
      refork();
      i = 0;
      state.ResumeTiming();
    }
    write_byte(child->mm, a + i++ * PAGE_SIZE);
  }
  state.SetItemsProcessed(state.iterations());
  exit_process(child);
}

}  // namespace mmkit_bench
