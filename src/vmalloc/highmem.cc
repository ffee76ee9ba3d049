// kmap/kunmap over the pkmap slots and kmap_atomic over the fixmap
// (mm/highmem.c kmap_high, map_new_virtual, flush_all_zero_pkmaps,
// kunmap_high, __kmap_local_pfn_prot, kunmap_local_indexed).
#include "vmalloc/highmem.h"

#include <fmt/format.h>

#include "vm/mmu.h"
#include "vmalloc/state.h"

namespace mmkit {
namespace {

// kmap_prot / PAGE_KERNEL: the kernel's own read-write, global mapping.
constexpr pteval_t kKmapProt = PAGE_KERNEL;

// Sets or clears one kernel pte and the host alias behind it.
void set_slot(VmallocState& st, uint64_t kva, Page* page) {
  Machine& m = st.machine;
  const uint64_t pfn = m.page_to_pfn(page);
  {
    SpinGuard g(st.pte_lock);
    pte_set(*st.kernel_pt, kva, pfn_pte(pfn, kKmapProt));  // the table exists (state.cc)
  }
  st.window.map(kva, m.ram_fd(), pfn, 1, true);
}

void clear_slot(VmallocState& st, uint64_t kva) {
  {
    SpinGuard g(st.pte_lock);
    pte_clear(*st.kernel_pt, kva);
  }
  st.window.unmap(kva, PAGE_SIZE);
}

// flush_all_zero_pkmaps(): every slot mapped but unused becomes free.
void flush_all_zero_pkmaps(VmallocState& st) {
  PkmapState& pk = st.pkmap;
  bool need_flush = false;
  for (unsigned i = 0; i < LAST_PKMAP; ++i) {
    if (pk.count[i] != 1) continue;
    pk.count[i] = 0;
    clear_slot(st, st.layout.pkmap_addr(i));
    pk.slot_of.erase(pk.page[i]);
    pk.page[i] = nullptr;
    need_flush = true;
  }
  if (need_flush)
    flush_tlb_range(*st.kernel_pt, st.layout.pkmap_addr(0), st.layout.pkmap_addr(LAST_PKMAP));
}

// map_new_virtual(): a free slot for `page`, waiting for one if needed.
// Returns the slot (the page may have been mapped by another thread while
// this one slept: then its slot).
unsigned map_new_virtual(VmallocState& st, std::unique_lock<std::mutex>& lock, Page* page) {
  PkmapState& pk = st.pkmap;
  for (;;) {
    unsigned count = LAST_PKMAP;
    for (;;) {
      pk.last_pkmap_nr = (pk.last_pkmap_nr + 1) & (LAST_PKMAP - 1);
      if (pk.last_pkmap_nr == 0) {
        flush_all_zero_pkmaps(st);
        count = LAST_PKMAP;
      }
      if (pk.count[pk.last_pkmap_nr] == 0) {
        const unsigned nr = pk.last_pkmap_nr;
        set_slot(st, st.layout.pkmap_addr(nr), page);
        pk.count[nr] = 1;
        pk.page[nr] = page;
        pk.slot_of.emplace(page, nr);
        return nr;
      }
      if (--count) continue;
      break;  // every slot is in use: sleep on pkmap_map_wait
    }
    ++pk.waiters;
    pk.wait.wait(lock);
    --pk.waiters;
    // Somebody else might have mapped it while we slept.
    if (auto it = pk.slot_of.find(page); it != pk.slot_of.end()) return it->second;
  }
}

VmallocState* highmem_state(Machine& m) {
  VmallocState& st = vmalloc_state(m);
  if (st.ok()) return &st;
  m.warn("kmap: no kernel virtual window: " + st.window_error + "\n");
  return nullptr;
}

}  // namespace

void* kmap(Machine& m, Page* page) {
  if (!PageHighMem(m, page)) return m.page_address(page);
  VmallocState* st = highmem_state(m);
  if (!st) return nullptr;
  PkmapState& pk = st->pkmap;
  std::unique_lock<std::mutex> lock(pk.lock);
  auto it = pk.slot_of.find(page);
  const unsigned nr = it != pk.slot_of.end() ? it->second : map_new_virtual(*st, lock, page);
  ++pk.count[nr];
  return st->window.host(st->layout.pkmap_addr(nr));
}

void kunmap(Machine& m, Page* page) {
  if (!PageHighMem(m, page)) return;
  if (VmallocState* st = vmalloc_state_if_any(m)) {
    PkmapState& pk = st->pkmap;
    std::lock_guard<std::mutex> g(pk.lock);
    auto it = pk.slot_of.find(page);
    if (it != pk.slot_of.end() && pk.count[it->second] >= 2) {
      // A count back at 1 frees nothing yet, but a waiter's next search
      // may flush it: wake them (kunmap_high's need_wakeup).
      if (--pk.count[it->second] == 1 && pk.waiters) pk.wait.notify_all();
      return;
    }
  }
  m.warn(fmt::format("kunmap: pfn {:#x} is not kmapped\n", m.page_to_pfn(page)));
}

void kmap_flush_unused(Machine& m) {
  VmallocState* st = vmalloc_state_if_any(m);
  if (!st) return;
  std::lock_guard<std::mutex> g(st->pkmap.lock);
  flush_all_zero_pkmaps(*st);
}

void* kmap_page_address(Machine& m, const Page* page) {
  if (!PageHighMem(m, page)) return m.page_address(page);
  VmallocState* st = vmalloc_state_if_any(m);
  if (!st) return nullptr;
  std::lock_guard<std::mutex> g(st->pkmap.lock);
  auto it = st->pkmap.slot_of.find(page);
  return it == st->pkmap.slot_of.end() ? nullptr
                                       : st->window.host(st->layout.pkmap_addr(it->second));
}

void* kmap_atomic(Machine& m, Page* page) {
  if (!PageHighMem(m, page)) return m.page_address(page);
  CpuState* cpu = this_cpu(m);
  if (!cpu) {
    m.warn(fmt::format("kmap_atomic: pfn {:#x}: no CPU bound (the slots are per-CPU)\n",
                       m.page_to_pfn(page)));
    return nullptr;
  }
  VmallocState* st = highmem_state(m);
  if (!st) return nullptr;
  KmapAtomicCpu& k = st->kmap_atomic_cpus[cpu->id];
  if (k.idx >= KM_MAX_IDX) {  // kmap_local_idx_push(): BUG_ON(idx >= KM_MAX_IDX)
    m.warn(fmt::format("kmap_atomic: cpu {}: all {} slots in use\n", cpu->id, KM_MAX_IDX));
    return nullptr;
  }
  const unsigned idx = k.idx++;
  // arch_kmap_local_map_idx(): idx + KM_MAX_IDX * smp_processor_id()
  const uint64_t kva =
      st->layout.fix_to_virt(st->layout.fix_kmap_begin + idx + KM_MAX_IDX * cpu->id);
  k.page[idx] = page;
  set_slot(*st, kva, page);
  return st->window.host(kva);
}

void kunmap_atomic(Machine& m, void* addr) {
  if (!addr || m.is_direct_mapped(addr)) return;  // a low page: nothing was mapped
  CpuState* cpu = this_cpu(m);
  VmallocState* st = vmalloc_state_if_any(m);
  if (!cpu || !st || !st->window.contains(addr)) {
    m.warn(fmt::format("kunmap_atomic: {} is not a kmap_atomic address of this CPU\n", addr));
    return;
  }
  KmapAtomicCpu& k = st->kmap_atomic_cpus[cpu->id];
  const uint64_t kva = st->window.kva(addr) & ~(PAGE_SIZE - 1);
  const uint64_t top =
      k.idx ? st->layout.fix_to_virt(st->layout.fix_kmap_begin + k.idx - 1 + KM_MAX_IDX * cpu->id)
            : 0;
  if (!k.idx || kva != top) {  // WARN_ON_ONCE(addr != __fix_to_virt(FIX_KMAP_BEGIN + idx))
    m.warn(fmt::format("kunmap_atomic: cpu {}: {:#x} is not the last slot mapped ({:#x})\n",
                       cpu->id, kva, top));
    return;
  }
  clear_slot(*st, kva);
  flush_tlb_page(*st->kernel_pt, kva);
  k.page[--k.idx] = nullptr;
}

unsigned pkmap_slots_in_use(Machine& m) {
  VmallocState* st = vmalloc_state_if_any(m);
  if (!st) return 0;
  std::lock_guard<std::mutex> g(st->pkmap.lock);
  unsigned n = 0;
  for (int c : st->pkmap.count) n += c != 0;
  return n;
}

unsigned pkmap_waiters(Machine& m) {
  VmallocState* st = vmalloc_state_if_any(m);
  if (!st) return 0;
  std::lock_guard<std::mutex> g(st->pkmap.lock);
  return st->pkmap.waiters;
}

}  // namespace mmkit
