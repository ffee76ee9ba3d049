// A stand-in for the page tables and the MMU (vm/pgtable.h, vm/mmu.h) until
// the real ones land: the address-space code above needs only their
// contract, which this file keeps in the simplest way that is still honest
// about memory.
//
// Each PageTable's entries live in an ordered map from page address to entry
// value, hung off the top-level frame (pgd->private_). Every 2 MiB of address
// space that holds an entry owns one real zeroed frame standing in for its
// last-level table, so NR_PAGETABLE, nr_tables (VmPTE) and the free-page
// count move as they would with real tables. There is no TLB: a flush is a
// no-op and translate() always walks. One mutex per tree serialises the
// map (writers hold the mmap lock anyway; translate() may run beside them).
#include <map>
#include <memory>
#include <mutex>

#include "page_alloc/page_alloc.h"
#include "vm/mmu.h"
#include "vm/pgtable.h"

namespace mmkit {
namespace {

constexpr unsigned kTableShift = 21;  // one last-level table maps 2 MiB

struct StubTree {
  std::mutex lock;
  std::map<uint64_t, pteval_t> ptes;  // page address -> entry
  std::map<uint64_t, Page*> tables;   // addr >> kTableShift -> table frame
};

struct StubVmState : LayerState {
  Machine* m = nullptr;
  Page* zero = nullptr;
  PageTable kernel;
  std::mutex lock;
  uint32_t next_asid = 1;
  ~StubVmState() override {
    if (kernel.pgd) pgd_free(kernel);
    if (zero) free_page(*m, zero);
  }
};

StubVmState& vm_state(Machine& m) {
  if (LayerState* st = m.layer_state(Layer::kVm)) return *static_cast<StubVmState*>(st);
  auto st = std::make_unique<StubVmState>();
  st->m = &m;
  return *static_cast<StubVmState*>(m.install_layer_state(Layer::kVm, std::move(st)));
}

StubTree& tree(const PageTable& pt) {
  return *reinterpret_cast<StubTree*>(pt.pgd->private_);
}

void node_pagetable_add(Machine& m, Page* p, int64_t n) {
  m.node(m.page_zone(p)->node).stat[static_cast<unsigned>(NodeStat::NR_PAGETABLE)].add(n);
}

Page* table_alloc(PageTable& pt, gfp_t gfp) {
  Page* p = alloc_page(*pt.machine, gfp | __GFP_ZERO);
  if (!p) return nullptr;
  node_pagetable_add(*pt.machine, p, 1);
  pt.nr_tables.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void table_free(PageTable& pt, Page* p) {
  node_pagetable_add(*pt.machine, p, -1);
  pt.nr_tables.fetch_sub(1, std::memory_order_relaxed);
  free_page(*pt.machine, p);
}

bool is_normal(Machine& m, pteval_t v) {
  return pte_present(v) && !(v & _PAGE_SPECIAL) && pte_pfn(v) != m.page_to_pfn(zero_page(m));
}

// Drops the mapping's mapcount and reference (page_remove_rmap + put_page).
void release_mapped(Machine& m, pteval_t v) {
  Page* p = m.pfn_to_page(pte_pfn(v));
  p->mapcount.fetch_sub(1, std::memory_order_relaxed);
  put_page(m, p);
}

}  // namespace

bool pgd_alloc(Machine& m, PagingMode mode, PageTable& pt) {
  pt.machine = &m;
  pt.mode = mode;
  Page* p = alloc_page(m, GFP_KERNEL | __GFP_ZERO);
  if (!p) return false;
  node_pagetable_add(m, p, 1);
  pt.nr_tables.store(1, std::memory_order_relaxed);
  p->private_ = reinterpret_cast<uint64_t>(new StubTree);
  pt.pgd = p;
  StubVmState& st = vm_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  pt.asid = st.next_asid++;
  return true;
}

void pgd_free(PageTable& pt) {
  if (!pt.pgd) return;
  StubTree* t = &tree(pt);
  for (auto& [idx, table] : t->tables) table_free(pt, table);
  delete t;
  pt.pgd->private_ = 0;
  node_pagetable_add(*pt.machine, pt.pgd, -1);
  pt.nr_tables.fetch_sub(1, std::memory_order_relaxed);
  free_page(*pt.machine, pt.pgd);
  pt.pgd = nullptr;
}

PageTable& kernel_page_table(Machine& m) {
  StubVmState& st = vm_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  if (!st.kernel.pgd) {
    st.kernel.machine = &m;
    Page* p = alloc_page(m, GFP_KERNEL | __GFP_ZERO);
    if (p) {
      node_pagetable_add(m, p, 1);
      st.kernel.nr_tables.store(1);
      p->private_ = reinterpret_cast<uint64_t>(new StubTree);
      st.kernel.pgd = p;
    }
  }
  return st.kernel;
}

Page* zero_page(Machine& m) {
  StubVmState& st = vm_state(m);
  if (Page* z = st.zero) return z;
  std::lock_guard<std::mutex> g(st.lock);
  if (!st.zero) st.zero = alloc_page(m, GFP_KERNEL | __GFP_ZERO);
  return st.zero;
}

pteval_t pte_get(const PageTable& pt, uint64_t addr) {
  StubTree& t = tree(pt);
  std::lock_guard<std::mutex> g(t.lock);
  auto it = t.ptes.find(addr & ~(PAGE_SIZE - 1));
  return it == t.ptes.end() ? 0 : it->second;
}

bool pte_set(PageTable& pt, uint64_t addr, pteval_t val, gfp_t gfp) {
  StubTree& t = tree(pt);
  std::lock_guard<std::mutex> g(t.lock);
  const uint64_t idx = addr >> kTableShift;
  if (!t.tables.count(idx)) {
    Page* table = table_alloc(pt, gfp);
    if (!table) return false;
    t.tables[idx] = table;
  }
  t.ptes[addr & ~(PAGE_SIZE - 1)] = val;
  return true;
}

pteval_t pte_clear(PageTable& pt, uint64_t addr) {
  StubTree& t = tree(pt);
  std::lock_guard<std::mutex> g(t.lock);
  auto it = t.ptes.find(addr & ~(PAGE_SIZE - 1));
  if (it == t.ptes.end()) return 0;
  const pteval_t v = it->second;
  t.ptes.erase(it);
  return v;
}

bool pte_set_flags_atomic(PageTable& pt, uint64_t addr, pteval_t bits) {
  StubTree& t = tree(pt);
  std::lock_guard<std::mutex> g(t.lock);
  auto it = t.ptes.find(addr & ~(PAGE_SIZE - 1));
  if (it == t.ptes.end() || !pte_present(it->second)) return false;
  it->second |= bits;
  return true;
}

uint64_t zap_range(PageTable& pt, uint64_t start, uint64_t end) {
  Machine& m = *pt.machine;
  std::vector<pteval_t> gone;
  {
    StubTree& t = tree(pt);
    std::lock_guard<std::mutex> g(t.lock);
    auto it = t.ptes.lower_bound(start);
    while (it != t.ptes.end() && it->first < end) {
      gone.push_back(it->second);
      it = t.ptes.erase(it);
    }
  }
  uint64_t normal = 0;
  for (pteval_t v : gone) {
    if (!is_normal(m, v)) continue;
    if (v & _PAGE_DIRTY) m.pfn_to_page(pte_pfn(v))->set(PG_dirty);
    release_mapped(m, v);
    ++normal;
  }
  return normal;
}

void free_pgtables(PageTable& pt, uint64_t start, uint64_t end, uint64_t floor, uint64_t ceiling) {
  StubTree& t = tree(pt);
  std::vector<Page*> freed;
  {
    std::lock_guard<std::mutex> g(t.lock);
    auto it = t.tables.lower_bound(start >> kTableShift);
    while (it != t.tables.end() && (it->first << kTableShift) < end) {
      const uint64_t base = it->first << kTableShift;
      const uint64_t top = base + (uint64_t{1} << kTableShift);
      auto e = t.ptes.lower_bound(base);
      const bool empty = e == t.ptes.end() || e->first >= top;
      if (empty && base >= floor && (ceiling == 0 || top <= ceiling)) {
        freed.push_back(it->second);
        it = t.tables.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Page* p : freed) table_free(pt, p);
}

uint64_t change_protection(PageTable& pt, uint64_t start, uint64_t end, pteval_t newprot) {
  StubTree& t = tree(pt);
  std::lock_guard<std::mutex> g(t.lock);
  constexpr pteval_t kProt = _PAGE_RW | _PAGE_USER | _PAGE_NX;
  uint64_t n = 0;
  for (auto it = t.ptes.lower_bound(start); it != t.ptes.end() && it->first < end; ++it) {
    if (!pte_present(it->second)) continue;
    it->second = (it->second & ~kProt) | (newprot & kProt);
    ++n;
  }
  return n;
}

bool copy_range(PageTable& dst, PageTable& src, uint64_t start, uint64_t end, bool cow) {
  Machine& m = *src.machine;
  std::vector<std::pair<uint64_t, pteval_t>> entries;
  {
    StubTree& t = tree(src);
    std::lock_guard<std::mutex> g(t.lock);
    for (auto it = t.ptes.lower_bound(start); it != t.ptes.end() && it->first < end; ++it) {
      if (cow && pte_write(it->second)) it->second &= ~_PAGE_RW;
      entries.push_back(*it);
    }
  }
  for (auto [addr, v] : entries) {
    if (!pte_set(dst, addr, v, GFP_KERNEL)) return false;
    if (is_normal(m, v)) {
      Page* p = m.pfn_to_page(pte_pfn(v));
      p->mapcount.fetch_add(1, std::memory_order_relaxed);
      get_page(p);
    }
  }
  return true;
}

bool move_range(PageTable& pt, uint64_t old_addr, uint64_t new_addr, uint64_t len) {
  std::vector<std::pair<uint64_t, pteval_t>> entries;
  {
    StubTree& t = tree(pt);
    std::lock_guard<std::mutex> g(t.lock);
    for (auto it = t.ptes.lower_bound(old_addr); it != t.ptes.end() && it->first < old_addr + len;
         ++it)
      entries.push_back(*it);
  }
  for (auto [addr, v] : entries) {
    if (!pte_set(pt, addr - old_addr + new_addr, v, GFP_KERNEL)) return false;
    pte_clear(pt, addr);
  }
  return true;
}

void walk_range(const PageTable& pt, uint64_t start, uint64_t end,
                const std::function<void(uint64_t addr, pteval_t val)>& fn) {
  std::vector<std::pair<uint64_t, pteval_t>> entries;
  {
    StubTree& t = tree(pt);
    std::lock_guard<std::mutex> g(t.lock);
    for (auto it = t.ptes.lower_bound(start); it != t.ptes.end() && it->first < end; ++it)
      if (pte_present(it->second)) entries.push_back(*it);
  }
  for (auto [addr, v] : entries) fn(addr, v);
}

std::string check(const PageTable& pt) {
  StubTree& t = tree(pt);
  std::lock_guard<std::mutex> g(t.lock);
  if (pt.nr_tables.load() != t.tables.size() + 1)
    return "nr_tables " + std::to_string(pt.nr_tables.load()) + " but " +
           std::to_string(t.tables.size() + 1) + " tables reachable";
  for (auto [addr, v] : t.ptes) {
    if (!pte_present(v)) continue;
    if (!t.tables.count(addr >> kTableShift)) return "entry without a table";
    const uint64_t pfn = pte_pfn(v);
    if (pfn >= pt.machine->max_pfn()) return "entry points outside RAM";
    if (pt.machine->pfn_to_page(pfn)->ref_count() <= 0) return "entry maps a free frame";
  }
  return "";
}

Translation translate(PageTable& pt, uint64_t vaddr, Access access, bool user) {
  Translation tr;
  StubTree& t = tree(pt);
  std::lock_guard<std::mutex> g(t.lock);
  auto it = t.ptes.find(vaddr & ~(PAGE_SIZE - 1));
  if (it == t.ptes.end() || !pte_present(it->second)) return tr;
  pteval_t& v = it->second;
  tr.pte = v;
  if ((user && !(v & _PAGE_USER)) || (access == Access::kWrite && !(v & _PAGE_RW)) ||
      (access == Access::kExec && (v & _PAGE_NX))) {
    tr.fault = TranslateFault::kProtection;
    return tr;
  }
  v |= _PAGE_ACCESSED | (access == Access::kWrite ? _PAGE_DIRTY : 0);
  tr.pte = v;
  tr.fault = TranslateFault::kNone;
  tr.host = pt.machine->phys_window(pte_pfn(v)) + (vaddr & (PAGE_SIZE - 1));
  return tr;
}

void flush_tlb_range(PageTable&, uint64_t, uint64_t) {}
void flush_tlb_page(PageTable&, uint64_t) {}
void flush_tlb_mm(PageTable&) {}
void flush_tlb_local(Machine&) {}
TlbStats tlb_stats(Machine&, int) {
  return {};
}

}  // namespace mmkit
