// The software MMU: address translation through a PageTable, as the
// hardware's page walker does it, with a per-CPU TLB in front
// (arch/x86/mm/tlb.c for the flush rules).
//
// translate() walks the levels, checks the access against every level's
// RW/USER/NX bits, sets ACCESSED on each level and DIRTY on the last one for
// a write (atomically, as the hardware does), and caches the result in the
// calling CPU's TLB. A TLB hit does not walk; a write that hits an entry
// cached before the page was dirty walks once to set DIRTY, as the hardware
// re-walks. A thread with no bound CPU walks every time.
//
// Flushes follow Linux: the range or page after munmap, mprotect and a COW
// break, the whole tree at exit, and other CPUs' TLBs through a shootdown
// that returns only when no CPU can still reach the old translation.
#pragma once

#include <cstdint>

#include "phys/cpu.h"
#include "vm/pgtable.h"
#include "vm/tlb.h"
#include "vm/vm_state.h"

namespace mmkit {

enum class Access : uint8_t { kRead, kWrite, kExec };

// Why a translation failed (the page-fault error code's meaning).
enum class TranslateFault : uint8_t {
  kNone,
  kNotPresent,    // no table or no entry: a not-present fault (demand paging)
  kProtection,    // present but the access is not allowed (write to RO, NX, no USER)
  kNonCanonical,  // outside the mode's virtual address width: a #GP, not a fault
};

struct Translation {
  char* host = nullptr;  // host address of the byte at vaddr (null on a fault)
  pteval_t pte = 0;      // the last-level entry used (0 on a not-present fault)
  TranslateFault fault = TranslateFault::kNotPresent;
  bool ok() const { return fault == TranslateFault::kNone; }
};

// The walk behind translate(): checks the access, sets accessed/dirty, fills
// the calling CPU's TLB (mmu.cc). Callers use translate().
Translation translate_slow(PageTable& pt, uint64_t vaddr, Access access, bool user);

// Translates one address for `access` from user mode (`user`: USER must be
// set on every level) or kernel mode (no SMEP/SMAP: USER is not required;
// CR0.WP is set: a kernel write needs RW).
//
// The TLB-hit path is inline: the entry's tag against the page and the
// access, its context against the tree's asid and the CPU's flush
// generation (one load of a line the CPU owns, written only by shooters),
// the offset added.
inline Translation translate(PageTable& pt, uint64_t vaddr, Access access, bool user = true) {
  // this_cpu(), knowing that a binding of this machine has a CPU.
  if (tls_cpu.machine == pt.machine && pt.machine) [[likely]] {
    Tlb& t = *tls_cpu.cpu->tlb;  // set: pt's machine has its vm layer
    const uint64_t bit = tlb_allow_bit(static_cast<unsigned>(access), user);
    const TlbEntry& e = t.entries[(vaddr >> PAGE_SHIFT) & (kTlbEntries - 1)];
    const uint64_t page = vaddr & ~(PAGE_SIZE - 1);
    if ((e.tag & ~(kTlbAllowMask & ~bit)) == (page | bit) &&
        e.ctx == tlb_ctx(pt.asid, t.flush_req.load(std::memory_order_seq_cst))) [[likely]] {
      return Translation{e.host + (vaddr & (PAGE_SIZE - 1)), e.pte, TranslateFault::kNone};
    }
  }
  return translate_slow(pt, vaddr, access, user);
}

// update_mmu_cache(): called by the fault handler, with the mmap lock held,
// after it made the not-present entry `slot` for `vaddr` of user tree `pt`
// present as `pte`. Preloads the calling CPU's TLB with it, as architectures
// with software-loaded TLBs do (MIPS, PowerPC's hash table; x86's is empty,
// its hardware walks again), so the access the fault interrupted hits
// instead of walking the tree a second time. The upper levels of a user
// tree grant every right (_PAGE_TABLE), so the entry's own bits are the
// translation's. Nothing is cached when the entry changed meanwhile or the
// thread has no CPU.
void update_mmu_cache(PageTable& pt, uint64_t vaddr, EntryRef slot, pteval_t pte);

// An access: the span in which a caller translates and then uses the host
// addresses it got (copies bytes), like an RCU read side. A flush on another
// CPU that races with it returns only after the access ends, so a page freed
// after a flush is never touched through an older translation. Accesses
// nest. Inside one: no sleeping, no mmap lock, no page-table changes and no
// flushes (a flush waiting for an access that waits for it deadlocks). A
// thread with no bound CPU has no accesses: its translations are safe only
// under the caller's locks. See docs/pgtable.md.
inline void mmu_access_begin(Machine& m) {
  if (CpuState* cpu = this_cpu(m)) {
    if (!cpu->tlb) [[unlikely]]
      vm_state(m);  // starts the vm layer, which sets every CPU's tlb
    tlb_access_enter(*cpu->tlb);
  }
}
inline void mmu_access_end(Machine& m) {
  if (CpuState* cpu = this_cpu(m)) tlb_access_exit(*cpu->tlb);
}

// Flushes, on every CPU that may hold them (pt.cpumask): translations of
// [start, end) (flush_tlb_range), of one page, or all of pt's (flush_tlb_mm).
// Returns when no CPU can use a flushed translation any more.
void flush_tlb_range(PageTable& pt, uint64_t start, uint64_t end);
void flush_tlb_page(PageTable& pt, uint64_t addr);
void flush_tlb_mm(PageTable& pt);
// The calling CPU's whole TLB (a CR3 write without PCID).
void flush_tlb_local(Machine& m);
// Every TLB of the CPUs in `cpus` (a PageTable::cpumask value), whole, as
// x86's arch_tlbbatch_flush() flushes after a batch of reclaim's unmaps.
// Reclaim calls it after a batch of folio_referenced() calls, so a hot
// page whose young bit it cleared is seen young again at the next look.
void flush_tlb_cpus(Machine& m, uint64_t cpus);

// Per-CPU TLB statistics, for tests and benchmarks: misses of translate()
// (walks on a bound CPU; every other translate() of the CPU hit), flushes of
// the whole TLB (local or on request), shootdowns this CPU sent (one per
// other CPU asked to flush).
struct TlbStats {
  uint64_t misses = 0, flushes = 0, shootdowns = 0;
};
TlbStats tlb_stats(Machine& m, int cpu);

}  // namespace mmkit
