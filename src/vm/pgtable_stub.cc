// A stand-in for the kernel page table until the real tables (pgtable.cc)
// land: the entries of a machine's kernel tree in an ordered map, held in
// the vm layer's slot. Only what vmalloc and kmap use is here; there are no
// table pages, so nr_tables stays 0 and no TLB exists to flush.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "vm/mmu.h"
#include "vm/pgtable.h"

namespace mmkit {
namespace {

struct StubKernelTable : LayerState {
  PageTable pt;
  std::mutex mu;
  std::map<uint64_t, pteval_t> entries;
};

StubKernelTable& stub(const Machine& m) {
  return *static_cast<StubKernelTable*>(m.layer_state(Layer::kVm));
}

}  // namespace

PageTable& kernel_page_table(Machine& m) {
  if (LayerState* s = m.layer_state(Layer::kVm)) return static_cast<StubKernelTable*>(s)->pt;
  auto st = std::make_unique<StubKernelTable>();
  st->pt.machine = &m;
  st->pt.mode = m.arch() == Arch::i386 ? PagingMode::kI386 : PagingMode::kX86_64_4Level;
  return static_cast<StubKernelTable*>(m.install_layer_state(Layer::kVm, std::move(st)))->pt;
}

pteval_t pte_get(const PageTable& pt, uint64_t addr) {
  StubKernelTable& s = stub(*pt.machine);
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.entries.find(addr >> PAGE_SHIFT);
  return it == s.entries.end() ? 0 : it->second;
}

bool pte_set(PageTable& pt, uint64_t addr, pteval_t val, gfp_t) {
  StubKernelTable& s = stub(*pt.machine);
  std::lock_guard<std::mutex> g(s.mu);
  s.entries[addr >> PAGE_SHIFT] = pt.mode == PagingMode::kI386 ? val & 0xffffffffu : val;
  return true;
}

pteval_t pte_clear(PageTable& pt, uint64_t addr) {
  StubKernelTable& s = stub(*pt.machine);
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.entries.find(addr >> PAGE_SHIFT);
  if (it == s.entries.end()) return 0;
  const pteval_t old = it->second;
  s.entries.erase(it);
  return old;
}

void walk_range(const PageTable& pt, uint64_t start, uint64_t end,
                const std::function<void(uint64_t addr, pteval_t val)>& fn) {
  StubKernelTable& s = stub(*pt.machine);
  std::map<uint64_t, pteval_t> copy;
  {
    std::lock_guard<std::mutex> g(s.mu);
    copy = s.entries;
  }
  for (auto it = copy.lower_bound(start >> PAGE_SHIFT);
       it != copy.end() && (it->first << PAGE_SHIFT) < end; ++it)
    if (pte_present(it->second)) fn(it->first << PAGE_SHIFT, it->second);
}

std::string check(const PageTable& pt) {
  const Machine& m = *pt.machine;
  std::string err;
  walk_range(pt, 0, ~uint64_t{0}, [&](uint64_t addr, pteval_t v) {
    const uint64_t pfn = pte_pfn(v);
    if (!err.empty()) return;
    if (!m.pfn_valid(pfn)) {
      err = "pte at " + std::to_string(addr) + " maps pfn " + std::to_string(pfn) + " outside RAM";
      return;
    }
    const Page* p = m.pfn_to_page(pfn);
    if (p->test(PG_buddy) || p->ref_count() <= 0)
      err = "pte at " + std::to_string(addr) + " maps free pfn " + std::to_string(pfn);
  });
  return err;
}

void flush_tlb_range(PageTable&, uint64_t, uint64_t) {}
void flush_tlb_page(PageTable&, uint64_t) {}

}  // namespace mmkit
