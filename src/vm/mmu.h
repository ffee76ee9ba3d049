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

#include "vm/pgtable.h"

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

// Translates one address for `access` from user mode (`user`: USER must be
// set on every level) or kernel mode.
Translation translate(PageTable& pt, uint64_t vaddr, Access access, bool user = true);

// Flushes, on every CPU that may hold them (pt.cpumask): translations of
// [start, end) (flush_tlb_range), of one page, or all of pt's (flush_tlb_mm).
// Returns when no CPU can use a flushed translation any more.
void flush_tlb_range(PageTable& pt, uint64_t start, uint64_t end);
void flush_tlb_page(PageTable& pt, uint64_t addr);
void flush_tlb_mm(PageTable& pt);
// The calling CPU's whole TLB (a CR3 write without PCID).
void flush_tlb_local(Machine& m);

// Per-CPU TLB statistics (hits, misses, flushes), for tests and benchmarks.
struct TlbStats {
  uint64_t hits = 0, misses = 0, flushes = 0, shootdowns = 0;
};
TlbStats tlb_stats(Machine& m, int cpu);

}  // namespace mmkit
