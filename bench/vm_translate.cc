// Address translation through the software MMU: one translate() per
// iteration, a read of a mapped user page, the address cycling over 64
// pages (distinct TLB sets, so a bound CPU never evicts).
//
//   vm/translate_tlb_hit       bound to CPU 0: every translation hits the
//                              CPU's TLB (the inline path); target <= 2 ns
//   vm/translate_walk_4level   an unbound thread, which has no TLB: every
//                              translation walks the four levels, checks
//                              the rights and finds ACCESSED already set
//   vm/translate_walk_5level   the same on an LA57 machine (five levels)
//
// Counters: hit_ratio is 1 - the bound CPU's TLB misses over translations
// (1 for the hit benchmark; the walks leave every CPU's counters alone).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "page_alloc/page_alloc.h"
#include "phys/cpu.h"
#include "vm/mmu.h"

namespace mmkit_bench {
namespace {

constexpr uint64_t kBase = 0x7f0000000000ull;
constexpr unsigned kPages = 64;

struct MappedMachine {
  std::unique_ptr<mmkit::Machine> m;
  mmkit::PageTable pt;
};

// A 256 MiB machine with kPages user pages mapped at kBase, made once per
// paging depth and kept for the process.
MappedMachine* mapped_machine(unsigned levels, std::string* err) {
  static std::mutex mu;
  static std::unique_ptr<MappedMachine> machines[6];
  std::lock_guard<std::mutex> lock(mu);
  if (machines[levels]) return machines[levels].get();
  mmkit::MachineConfig c;
  c.cpus = 2;
  c.nodes.resize(1);
  c.nodes[0].memory = 256ull << 20;
  if (levels == 5) c.paging_levels = 5;
  auto r = mmkit::boot(c);
  if (!r.ok()) {
    *err = r.error().message;
    return nullptr;
  }
  auto mm = std::make_unique<MappedMachine>();
  mm->m = std::move(r.value());
  mmkit::Machine& m = *mm->m;
  if (!mmkit::pgd_alloc(m, mmkit::paging_mode(m), mm->pt)) {
    *err = "pgd_alloc failed";
    return nullptr;
  }
  for (unsigned i = 0; i < kPages; ++i) {
    mmkit::Page* p = mmkit::alloc_page(m, mmkit::GFP_KERNEL | mmkit::__GFP_ZERO);
    const mmkit::pteval_t prot = mmkit::_PAGE_PRESENT | mmkit::_PAGE_RW | mmkit::_PAGE_USER |
                                 mmkit::_PAGE_ACCESSED | mmkit::_PAGE_DIRTY;
    if (!p || !mmkit::pte_set(mm->pt, kBase + i * mmkit::PAGE_SIZE,
                              mmkit::pfn_pte(m.page_to_pfn(p), prot))) {
      *err = "mapping the benchmark's pages failed";
      return nullptr;
    }
    p->mapcount.fetch_add(1);
  }
  machines[levels] = std::move(mm);
  return machines[levels].get();
}

void run_translations(benchmark::State& state, MappedMachine& mm) {
  // Page i, then page i + 1 at an offset 8 bytes further, wrapping at kPages.
  constexpr uint64_t kStride = mmkit::PAGE_SIZE + 8, kSpan = kPages * mmkit::PAGE_SIZE;
  static_assert((kSpan & (kSpan - 1)) == 0);
  uint64_t off = 0;
  for (auto _ : state) {
    const mmkit::Translation t = mmkit::translate(mm.pt, kBase + off, mmkit::Access::kRead);
    benchmark::DoNotOptimize(t.host);
    off = (off + kStride) & (kSpan - 8);
  }
  if (!mmkit::translate(mm.pt, kBase, mmkit::Access::kRead).ok())
    state.SkipWithError("translation failed");
}

}  // namespace

void BM_vm_translate_tlb_hit(benchmark::State& state) {
  std::string err;
  MappedMachine* mm = mapped_machine(4, &err);
  if (!mm) return state.SkipWithError(err.c_str());
  auto cpu = mmkit::CpuScope::bind(*mm->m, 0);
  if (!cpu.ok()) return state.SkipWithError(cpu.error().message.c_str());
  const mmkit::TlbStats before = mmkit::tlb_stats(*mm->m, 0);
  run_translations(state, *mm);
  const mmkit::TlbStats after = mmkit::tlb_stats(*mm->m, 0);
  // run_translations() translates once more after the loop.
  const double total = static_cast<double>(state.iterations() + 1);
  state.counters["hit_ratio"] = 1 - static_cast<double>(after.misses - before.misses) / total;
}

void BM_vm_translate_walk(benchmark::State& state, unsigned levels) {
  std::string err;
  MappedMachine* mm = mapped_machine(levels, &err);
  if (!mm) return state.SkipWithError(err.c_str());
  if (mmkit::this_cpu(*mm->m)) return state.SkipWithError("the walk needs an unbound thread");
  run_translations(state, *mm);
  state.counters["hit_ratio"] = 0;
}

}  // namespace mmkit_bench
