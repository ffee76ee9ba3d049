// vmalloc, vmap and their undoing (mm/vmalloc.c: __vmalloc_node_range,
// __get_vm_area_node, vmap, remove_vm_area, __vunmap / vfree).
//
// An area goes through three steps, as in Linux: its address range is taken
// from the free space and the area is entered in the tree marked
// VM_UNINITIALIZED (under vmap_area_lock); its pages are allocated one at a
// time and mapped (no lock but the pte lock); then the mark is cleared.
// Freeing reverses it: the area leaves the tree first (so a second vfree
// finds nothing and warns), its entries are cleared and the range flushed,
// the host alias goes back to PROT_NONE, the pages are freed, and only then
// is the range returned to the free space, so nobody can be given an
// address that is still mapped.
#include "vmalloc/vmalloc.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "page_alloc/page_alloc.h"
#include "vm/mmu.h"
#include "vmalloc/state.h"

namespace mmkit {
namespace {

constexpr uint64_t page_align(uint64_t size) {
  return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

void warn(const Machine& m, gfp_t gfp, const std::string& text) {
  if (!(gfp & __GFP_NOWARN)) m.warn(text + "\n");
}

// Maps `pages` at `addr` in the kernel page table and in the host window.
// False (with nothing left mapped) when a page table cannot be allocated or
// the host refuses.
bool map_pages(VmallocState& st, uint64_t addr, const std::vector<Page*>& pages, pteval_t prot) {
  Machine& m = st.machine;
  size_t done = 0;
  {
    SpinGuard g(st.pte_lock);
    for (; done < pages.size(); ++done)
      if (!pte_set(*st.kernel_pt, addr + (done << PAGE_SHIFT),
                   pfn_pte(m.page_to_pfn(pages[done]), prot)))
        break;
  }
  bool ok = done == pages.size();
  // The host alias, one mmap per run of consecutive frames.
  for (size_t i = 0; ok && i < pages.size();) {
    const uint64_t pfn = m.page_to_pfn(pages[i]);
    size_t n = 1;
    while (i + n < pages.size() && m.page_to_pfn(pages[i + n]) == pfn + n) ++n;
    ok = st.window.map(addr + (i << PAGE_SHIFT), m.ram_fd(), pfn, n, prot & _PAGE_RW);
    i += n;
  }
  if (ok) return true;
  {
    SpinGuard g(st.pte_lock);
    for (size_t i = 0; i < done; ++i) pte_clear(*st.kernel_pt, addr + (i << PAGE_SHIFT));
  }
  flush_tlb_range(*st.kernel_pt, addr, addr + (done << PAGE_SHIFT));
  st.window.unmap(addr, pages.size() << PAGE_SHIFT);
  return false;
}

// __get_vm_area_node() + alloc_vmap_area(): reserves size (+ a guard page)
// and enters the area in the tree, VM_UNINITIALIZED.
VmStruct* get_vm_area(VmallocState& st, uint64_t size, unsigned long flags, gfp_t gfp,
                      const char* caller) {
  const uint64_t total = size + (flags & VM_NO_GUARD ? 0 : PAGE_SIZE);
  std::lock_guard<std::mutex> g(st.vmap_area_lock);
  const uint64_t addr = st.free_space.alloc(total, PAGE_SIZE);
  if (!addr) {
    warn(st.machine, gfp,
         fmt::format("vmap allocation for size {} failed: use vmalloc=<size> to increase size",
                     total));
    return nullptr;
  }
  auto vm = std::make_unique<VmStruct>();
  vm->addr = addr;
  vm->size = total;
  vm->flags = flags | VM_UNINITIALIZED;
  vm->caller = caller;
  return st.busy.emplace(addr, std::move(vm)).first->second.get();
}

// Takes an area out of the tree and gives its range back (an unwind path:
// nothing of it is mapped).
void drop_vm_area(VmallocState& st, VmStruct* vm) {
  std::lock_guard<std::mutex> g(st.vmap_area_lock);
  st.free_space.free(vm->addr, vm->size);
  st.busy.erase(vm->addr);
}

// Clears the initialisation mark and hands the pages to the area.
void finish_vm_area(VmallocState& st, VmStruct* vm, std::vector<Page*>&& pages, unsigned nr_pages) {
  std::lock_guard<std::mutex> g(st.vmap_area_lock);
  vm->pages = std::move(pages);
  vm->nr_pages = nr_pages;
  vm->flags &= ~VM_UNINITIALIZED;
}

// The state, when the machine's window could be reserved; else warns.
VmallocState* usable_state(Machine& m, gfp_t gfp) {
  VmallocState& st = vmalloc_state(m);
  if (st.ok()) return &st;
  warn(m, gfp, "vmalloc: no kernel virtual window: " + st.window_error);
  return nullptr;
}

// How vfree/vunmap name themselves in their warnings.
enum class Unmap { kVfree, kVunmap };

void remove_and_unmap(Machine& m, const void* addr, Unmap how) {
  if (!addr) return;
  const std::string_view fn = how == Unmap::kVfree ? "vfree" : "vunmap";
  VmallocState* st = vmalloc_state_if_any(m);
  const uint64_t kva = st && st->window.contains(addr) ? st->window.kva(addr) : 0;
  const uint64_t shown = kva ? kva : reinterpret_cast<uint64_t>(addr);
  if (kva & (PAGE_SIZE - 1)) {
    m.warn(fmt::format("Trying to {}() bad address ({:#x})\n", fn, shown));
    return;
  }
  std::unique_ptr<VmStruct> vm;
  {
    std::unique_lock<std::mutex> g;
    if (st) g = std::unique_lock<std::mutex>(st->vmap_area_lock);
    auto it = st && kva ? st->busy.find(kva) : decltype(st->busy.end()){};
    if (!st || !kva || it == st->busy.end() || (it->second->flags & VM_UNINITIALIZED)) {
      m.warn(fmt::format("Trying to {}() nonexistent vm area ({:#x})\n", fn, shown));
      return;
    }
    if (how == Unmap::kVunmap && (it->second->flags & VM_ALLOC)) {
      m.warn(fmt::format("Trying to vunmap() a vmalloc area ({:#x}): use vfree()\n", kva));
      return;
    }
    vm = std::move(it->second);
    st->busy.erase(it);
  }
  const uint64_t mapped = vm->pages.size() << PAGE_SHIFT;
  {
    SpinGuard g(st->pte_lock);
    for (uint64_t off = 0; off < mapped; off += PAGE_SIZE) pte_clear(*st->kernel_pt, kva + off);
  }
  flush_tlb_range(*st->kernel_pt, kva, kva + mapped);
  st->window.unmap(kva, vm->size);
  if (how == Unmap::kVfree && (vm->flags & (VM_ALLOC | VM_MAP_PUT_PAGES))) {
    for (Page* p : vm->pages) free_page(m, p);
    if (vm->flags & VM_ALLOC) st->nr_vmalloc_pages.fetch_sub(vm->pages.size());
  }
  std::lock_guard<std::mutex> g(st->vmap_area_lock);
  st->free_space.free(vm->addr, vm->size);
}

// "void ns::f(int)" -> "ns::f": the function's qualified name, as %pS
// prints a symbol (without +offset/size: mmkit has no symbol table).
std::string caller_symbol(const char* function_name) {
  std::string s = function_name;
  for (std::string_view anon : {"(anonymous namespace)", "{anonymous}"})
    for (size_t at; (at = s.find(anon)) != std::string::npos;) s.replace(at, anon.size(), "anon");
  s = s.substr(0, s.find('('));
  const size_t space = s.rfind(' ');
  return space == std::string::npos ? s : s.substr(space + 1);
}

}  // namespace

void* vmalloc_gfp(Machine& m, uint64_t size, gfp_t gfp, int nid, Caller caller) {
  if (size == 0) {  // WARN_ON_ONCE(!size)
    warn(m, gfp, "vmalloc: size 0 (WARN_ON_ONCE(!size) in __vmalloc_node_range)");
    return nullptr;
  }
  const uint64_t real_size = size;
  size = page_align(size);
  if (size < real_size || (size >> PAGE_SHIFT) > m.totalram_pages()) {
    warn(m, gfp, fmt::format("vmalloc error: size {}, exceeds total pages", real_size));
    return nullptr;
  }
  if (nid != NUMA_NO_NODE && (nid < 0 || static_cast<unsigned>(nid) >= m.nr_nodes())) {
    warn(m, gfp, fmt::format("vmalloc error: size {}, node {} does not exist", real_size, nid));
    return nullptr;
  }
  VmallocState* st = usable_state(m, gfp);
  if (!st) return nullptr;
  VmStruct* vm = get_vm_area(*st, size, VM_ALLOC, gfp, caller.function_name());
  if (!vm) {
    warn(m, gfp, fmt::format("vmalloc error: size {}, vm_struct allocation failed", real_size));
    return nullptr;
  }
  // __vmalloc_area_node(): highmem pages unless a DMA zone was asked for.
  if (!(gfp & (__GFP_DMA | __GFP_DMA32))) gfp |= __GFP_HIGHMEM;
  const uint64_t nr = size >> PAGE_SHIFT;
  std::vector<Page*> pages;
  pages.reserve(nr);
  for (uint64_t i = 0; i < nr; ++i) {
    Page* p = alloc_pages(m, gfp, 0, nid);
    if (!p) break;
    pages.push_back(p);
  }
  // Any frame will do for any page of the area: in pfn order, the runs the
  // per-CPU lists hand out (often descending) become one host mmap each.
  std::sort(pages.begin(), pages.end());
  const bool got_all = pages.size() == nr;
  if (!got_all || !map_pages(*st, vm->addr, pages, PAGE_KERNEL)) {
    warn(m, gfp,
         got_all ? fmt::format("vmalloc error: size {}, failed to map pages", real_size)
                 : fmt::format("vmalloc error: size {}, page order 0, failed to allocate pages",
                               real_size));
    for (Page* p : pages) free_page(m, p);
    drop_vm_area(*st, vm);
    return nullptr;
  }
  st->nr_vmalloc_pages.fetch_add(nr);
  const uint64_t addr = vm->addr;
  finish_vm_area(*st, vm, std::move(pages), static_cast<unsigned>(nr));
  return st->window.host(addr);
}

void* vmalloc(Machine& m, uint64_t size, Caller caller) {
  return vmalloc_gfp(m, size, GFP_KERNEL, NUMA_NO_NODE, caller);
}

void* vzalloc(Machine& m, uint64_t size, Caller caller) {
  return vmalloc_gfp(m, size, GFP_KERNEL | __GFP_ZERO, NUMA_NO_NODE, caller);
}

void* vmalloc_node(Machine& m, uint64_t size, int nid, Caller caller) {
  return vmalloc_gfp(m, size, GFP_KERNEL, nid, caller);
}

void vfree(Machine& m, const void* addr) {
  remove_and_unmap(m, addr, Unmap::kVfree);
}

void* vmap(Machine& m, Page* const* pages, unsigned count, unsigned long flags, pteval_t prot,
           Caller caller) {
  if (count == 0 || !pages) {
    m.warn(fmt::format("vmap: {} (count {})\n", pages ? "nothing to map" : "no page array", count));
    return nullptr;
  }
  if (count > m.totalram_pages()) {
    m.warn(fmt::format("vmap: count {} exceeds total pages\n", count));
    return nullptr;
  }
  if (!(prot & _PAGE_PRESENT)) {
    m.warn(fmt::format("vmap: protection {:#x} is not present\n", prot));
    return nullptr;
  }
  for (unsigned i = 0; i < count; ++i) {
    const Page* p = pages[i];
    if (!p || p < m.pfn_to_page(0) || m.page_to_pfn(p) >= m.max_pfn() ||
        !m.pfn_valid(m.page_to_pfn(p))) {
      m.warn(fmt::format("vmap: pages[{}] is not a page of this machine\n", i));
      return nullptr;
    }
  }
  VmallocState* st = usable_state(m, 0);
  if (!st) return nullptr;
  flags &= ~(VM_ALLOC | VM_UNINITIALIZED);
  VmStruct* vm =
      get_vm_area(*st, uint64_t{count} << PAGE_SHIFT, flags | VM_MAP, 0, caller.function_name());
  if (!vm) return nullptr;
  std::vector<Page*> v(pages, pages + count);
  if (!map_pages(*st, vm->addr, v, prot)) {
    m.warn(fmt::format("vmap: failed to map {} pages\n", count));
    drop_vm_area(*st, vm);
    return nullptr;
  }
  const uint64_t addr = vm->addr;
  finish_vm_area(*st, vm, std::move(v), flags & VM_MAP_PUT_PAGES ? count : 0);
  return st->window.host(addr);
}

void vunmap(Machine& m, const void* addr) {
  remove_and_unmap(m, addr, Unmap::kVunmap);
}

uint64_t vmalloc_kva(Machine& m, const void* addr) {
  VmallocState* st = vmalloc_state_if_any(m);
  return st && st->ok() && st->window.contains(addr) ? st->window.kva(addr) : 0;
}

void* kva_to_host(Machine& m, uint64_t kva) {
  VmallocState* st = vmalloc_state_if_any(m);
  return st && st->ok() && st->window.contains_kva(kva) ? st->window.host(kva) : nullptr;
}

bool is_vmalloc_addr(Machine& m, const void* addr) {
  const uint64_t kva = vmalloc_kva(m, addr);
  const VmallocState* st = vmalloc_state_if_any(m);
  return kva && kva >= st->layout.vmalloc_start && kva < st->layout.vmalloc_end;
}

Page* vmalloc_to_page(Machine& m, const void* addr) {
  const uint64_t kva = vmalloc_kva(m, addr);
  if (!kva) return nullptr;
  const pteval_t v = pte_get(*vmalloc_state(m).kernel_pt, kva);
  if (!pte_present(v)) return nullptr;
  return m.pfn_to_page(pte_pfn(v));
}

uint64_t vmalloc_nr_pages(const Machine& m) {
  const VmallocState* st = vmalloc_state_if_any(m);
  return st ? st->nr_vmalloc_pages.load(std::memory_order_relaxed) : 0;
}

std::vector<VmallocArea> vmalloc_areas(const Machine& m) {
  std::vector<VmallocArea> out;
  VmallocState* st = vmalloc_state_if_any(m);
  if (!st) return out;
  std::lock_guard<std::mutex> g(st->vmap_area_lock);
  for (const auto& [addr, vm] : st->busy) {
    VmallocArea a;
    a.addr = addr;
    a.size = vm->size;
    a.flags = vm->flags;
    a.caller = caller_symbol(vm->caller);
    a.nr_pages = vm->nr_pages;
    if (!(vm->flags & VM_UNINITIALIZED) && vm->nr_pages) {
      a.node_pages.assign(m.nr_nodes(), 0);
      for (unsigned i = 0; i < vm->nr_pages; ++i) ++a.node_pages[m.page_zone(vm->pages[i])->node];
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::string vmalloc_check(Machine& m) {
  VmallocState* st = vmalloc_state_if_any(m);
  if (!st) return "";
  std::lock_guard<std::mutex> g(st->vmap_area_lock);
  if (std::string e = st->free_space.check(); !e.empty()) return e;
  // Busy areas and free blocks tile [VMALLOC_START, VMALLOC_END) exactly.
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  st->free_space.for_each_free([&](uint64_t s, uint64_t e) { spans.emplace_back(s, e); });
  uint64_t vmalloc_pages = 0;
  for (const auto& [addr, vm] : st->busy) {
    spans.emplace_back(addr, addr + vm->size);
    if (vm->flags & VM_UNINITIALIZED) continue;
    if (vm->flags & VM_ALLOC) vmalloc_pages += vm->pages.size();
    if (vm->pages.size() << PAGE_SHIFT != vm->mapped_size())
      return fmt::format("area {:#x}: {} pages for {} bytes", addr, vm->pages.size(),
                         vm->mapped_size());
    for (size_t i = 0; i < vm->pages.size(); ++i) {
      const uint64_t va = addr + (i << PAGE_SHIFT);
      const pteval_t v = pte_get(*st->kernel_pt, va);
      const uint64_t pfn = m.page_to_pfn(vm->pages[i]);
      if (!pte_present(v) || pte_pfn(v) != pfn)
        return fmt::format("area {:#x}: pte of {:#x} is {:#x}, expected pfn {:#x}", addr, va, v,
                           pfn);
      if (std::memcmp(st->window.host(va), m.phys_window(pfn), 64) != 0)
        return fmt::format("area {:#x}: host alias of {:#x} does not show pfn {:#x}", addr, va,
                           pfn);
    }
    if (!(vm->flags & VM_NO_GUARD) &&
        pte_present(pte_get(*st->kernel_pt, addr + vm->size - PAGE_SIZE)))
      return fmt::format("area {:#x}: guard page is mapped", addr);
  }
  std::sort(spans.begin(), spans.end());
  uint64_t at = st->layout.vmalloc_start;
  for (const auto& [s, e] : spans) {
    if (s != at)
      return fmt::format("vmalloc space: {:#x} expected at {:#x} (gap or overlap)", s, at);
    at = e;
  }
  if (at != st->layout.vmalloc_end)
    return fmt::format("vmalloc space ends at {:#x}, not VMALLOC_END {:#x}", at,
                       st->layout.vmalloc_end);
  if (vmalloc_pages != st->nr_vmalloc_pages.load())
    return fmt::format("nr_vmalloc_pages {} but areas hold {}", st->nr_vmalloc_pages.load(),
                       vmalloc_pages);
  return "";
}

}  // namespace mmkit
