// The software MMU's page walk: what the hardware does on a TLB miss
// (Intel SDM vol. 3, 4.6 access rights and 4.8 accessed and dirty flags;
// Linux's side is arch/x86/mm/fault.c's error codes).
//
// The walk reads each level's entry with an atomic load and collects the
// rights: writable and user only if every level says so, executable unless
// any level sets NX (i386 has no NX). A refused access changes nothing.
// An allowed one sets ACCESSED on every level that lacks it and DIRTY on
// the last for a write, each with a compare-and-swap against the value the
// walk read, so a bit is never set in an entry that was cleared or changed
// meanwhile (the walk then starts again), as the hardware's locked update.
//
// Before walking, a bound CPU sets its bit in the tree's cpumask (as
// switch_mm sets mm_cpumask before loading CR3) and marks itself inside an
// access, so a concurrent free_pgtables or zap_range waits for the walk.
#include "vm/mmu.h"

#include "vm/vm_state.h"

namespace mmkit {
namespace {

struct Walk {
  pteval_t val[5];
  char* entry[5];
  bool rw = true, user = true, nx = false;
};

enum class WalkResult { kOk, kNotPresent, kRetry };

WalkResult walk(const PageTable& pt, const PagingFormat& f, uint64_t lin, Walk* w) {
  const Machine& m = *pt.machine;
  const bool wide = f.entry_shift == 3;
  uint64_t table = m.page_to_pfn(pt.pgd);
  for (unsigned l = 0; l < f.levels; ++l) {
    EntryRef e = table_entry(m, f, table, table_index(f, l, lin));
    const pteval_t v = e.load();
    if (!pte_present(v)) return WalkResult::kNotPresent;
    // A frame outside RAM can only be a torn read of a table being freed
    // under an unbound walker; treat it as absent.
    if (pte_pfn(v) >= m.max_pfn()) return WalkResult::kNotPresent;
    w->val[l] = v;
    w->entry[l] = e.ptr();
    w->rw = w->rw && (v & _PAGE_RW);
    w->user = w->user && (v & _PAGE_USER);
    w->nx = w->nx || (wide && (v & _PAGE_NX));
    table = pte_pfn(v);
  }
  return WalkResult::kOk;
}

bool allowed(const Walk& w, Access access, bool user) {
  if (user && !w.user) return false;
  if (access == Access::kWrite) return w.rw;
  if (access == Access::kExec) return !w.nx;
  return true;
}

// Which accesses the TLB may serve from this walk without walking again.
uint32_t allow_mask(const Walk& w, bool dirty) {
  uint32_t a = tlb_allow_bit(static_cast<unsigned>(Access::kRead), false);
  if (w.rw && dirty) a |= tlb_allow_bit(static_cast<unsigned>(Access::kWrite), false);
  if (!w.nx) a |= tlb_allow_bit(static_cast<unsigned>(Access::kExec), false);
  if (w.user) a |= a << 1;  // the same rights from user mode
  return a;
}

// Sets ACCESSED on every level and `last_bits` on the last; false when an
// entry changed under the walk.
bool set_accessed_dirty(const PagingFormat& f, Walk* w, pteval_t last_bits) {
  const bool wide = f.entry_shift == 3;
  for (unsigned l = 0; l < f.levels; ++l) {
    const pteval_t want = l + 1 == f.levels ? last_bits : _PAGE_ACCESSED;
    if ((w->val[l] & want) == want) continue;
    pteval_t expected = w->val[l];
    if (!EntryRef(w->entry[l], wide).cas(expected, expected | want)) return false;
    w->val[l] |= want;
  }
  return true;
}

// The bound CPU's side of a fill, before the entry is read: the tree's
// cpumask bit (as switch_mm sets it before loading CR3), then the access,
// then the flush requests it must honour. Returns the fill's context.
uint64_t tlb_fill_begin(PageTable& pt, const CpuState& cpu, Tlb& t) {
  const uint64_t bit = uint64_t{1} << std::min(cpu.id, 63);
  if (!(pt.cpumask.load(std::memory_order_relaxed) & bit))
    pt.cpumask.fetch_or(bit, std::memory_order_seq_cst);
  tlb_access_enter(t);
  // After entering the access: a request that this load misses waits for
  // the access to end (the entry filled then is stale, and its generation
  // says so).
  tlb_flush_pending(t);
  return tlb_ctx(pt.asid, t.flush_seen);
}

void tlb_fill(Tlb& t, uint64_t vaddr, uint64_t ctx, const Walk& w, pteval_t pte, char* page) {
  TlbEntry& e = t.entries[(vaddr >> PAGE_SHIFT) & (kTlbEntries - 1)];
  e.tag = (vaddr & ~(PAGE_SIZE - 1)) | allow_mask(w, pte & _PAGE_DIRTY);
  e.ctx = ctx;
  e.host = page;
  e.pte = pte;
}

}  // namespace

void update_mmu_cache(PageTable& pt, uint64_t vaddr, EntryRef slot, pteval_t pte) {
  CpuState* cpu = pt.machine ? this_cpu(*pt.machine) : nullptr;
  if (!cpu || !(pte & _PAGE_ACCESSED)) return;
  Tlb& t = *cpu->tlb;
  const uint64_t ctx = tlb_fill_begin(pt, *cpu, t);
  // Read inside the access: a change after this load flushes the entry.
  if (slot.load() == pte) {
    Walk w;
    w.rw = pte & _PAGE_RW;
    w.user = pte & _PAGE_USER;
    w.nx = paging_format(pt.mode).entry_shift == 3 && (pte & _PAGE_NX);
    tlb_fill(t, vaddr, ctx, w, pte, pt.machine->phys_window(pte_pfn(pte)));
  }
  tlb_access_exit(t);
}

Translation translate_slow(PageTable& pt, uint64_t vaddr, Access access, bool user) {
  if (!pt.pgd) return Translation{nullptr, 0, TranslateFault::kNotPresent};
  if (!addr_canonical(pt.mode, vaddr))
    return Translation{nullptr, 0, TranslateFault::kNonCanonical};
  Machine& m = *pt.machine;
  const PagingFormat& f = paging_format(pt.mode);
  Tlb* t = nullptr;
  uint64_t ctx = 0;
  if (CpuState* cpu = this_cpu(m)) {
    t = cpu->tlb;
    ctx = tlb_fill_begin(pt, *cpu, *t);
    t->misses.add(1);
  }
  const uint64_t lin = to_linear(f, vaddr);
  Translation r{nullptr, 0, TranslateFault::kNotPresent};
  for (;;) {
    Walk w;
    if (walk(pt, f, lin, &w) == WalkResult::kNotPresent) break;
    const unsigned last = f.levels - 1;
    if (!allowed(w, access, user)) {
      r = Translation{nullptr, w.val[last], TranslateFault::kProtection};
      break;
    }
    const pteval_t bits = _PAGE_ACCESSED | (access == Access::kWrite ? _PAGE_DIRTY : 0);
    if (!set_accessed_dirty(f, &w, bits)) continue;
    const pteval_t pte = w.val[last];
    char* page = m.phys_window(pte_pfn(pte));
    r = Translation{page + (vaddr & (PAGE_SIZE - 1)), pte, TranslateFault::kNone};
    if (t) tlb_fill(*t, vaddr, ctx, w, pte, page);
    break;
  }
  if (t) tlb_access_exit(*t);
  return r;
}

}  // namespace mmkit
