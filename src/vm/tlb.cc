// TLB flushes: the local CPU's entries directly, every other CPU in the
// tree's cpumask through a shootdown (arch/x86/mm/tlb.c's
// flush_tlb_mm_range and native_flush_tlb_multi, without interrupts).
//
// A shootdown asks each target for a full flush (flush_req += one) and then
// waits for the targets that are inside an access (access_seq odd) to leave
// it. A target outside an access flushes lazily at its next translate(),
// before it looks at any entry; an unbound CPU does so when a thread binds
// it. Both sides pair a seq_cst write with a seq_cst read of the other
// side's word (a Dekker handshake): either the shooter sees the access, or
// the access sees the request. docs/pgtable.md has the argument in full.
#include <fmt/format.h>

#include <thread>

#include "vm/mmu.h"
#include "vm/vm_state.h"

namespace mmkit {
namespace {

// tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c): above 33 pages a
// range flush empties the matching entries by a scan instead.
constexpr uint64_t kSinglePageFlushCeiling = 33;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Invalidates the calling CPU's entries of `pt` in linear [lo, hi).
void local_flush(Tlb& t, const PageTable& pt, uint64_t lo, uint64_t hi) {
  const PagingFormat& f = paging_format(pt.mode);
  if ((hi - lo) >> PAGE_SHIFT <= kSinglePageFlushCeiling) {
    for (uint64_t lin = lo; lin < hi; lin += PAGE_SIZE) {
      TlbEntry& e = t.entries[(lin >> PAGE_SHIFT) & (kTlbEntries - 1)];
      if (static_cast<uint32_t>(e.ctx) == pt.asid && to_linear(f, e.tag & ~(PAGE_SIZE - 1)) == lin)
        e = TlbEntry{};
    }
    return;
  }
  for (TlbEntry& e : t.entries) {
    if (static_cast<uint32_t>(e.ctx) != pt.asid) continue;
    const uint64_t lin = to_linear(f, e.tag & ~(PAGE_SIZE - 1));
    if (lin >= lo && lin < hi) e = TlbEntry{};
  }
}

void wait_for_access_end(const Tlb& t) {
  const uint64_t s = t.access_seq.load(std::memory_order_seq_cst);
  if (!(s & 1)) return;
  for (unsigned i = 0; t.access_seq.load(std::memory_order_acquire) == s; ++i) {
    if (i < 128)
      cpu_relax();
    else
      std::this_thread::yield();
  }
}

// Asks every other CPU that may cache or walk `pt` to flush, and returns
// when none of them can still use what it cached. The caller has changed
// the entries (with seq_cst atomics) before.
void shootdown(VmState& vs, uint64_t mask, int self) {
  Machine& m = vs.machine;
  if (!mask) return;
  // CPUs from 63 up share the mask's last bit.
  auto targeted = [&](unsigned c) {
    return static_cast<int>(c) != self && (mask >> std::min(c, 63u) & 1);
  };
  if (self >= 0 && vs.tlbs[self].access_depth && !vs.tlbs[self].warned_nested_flush) {
    vs.tlbs[self].warned_nested_flush = true;
    m.warn(fmt::format("BUG: TLB shootdown from inside an mmu access on cpu {} (may deadlock)\n",
                       self));
  }
  uint64_t sent = 0;
  for (unsigned c = 0; c < m.nr_cpus(); ++c) {
    if (!targeted(c)) continue;
    vs.tlbs[c].flush_req.fetch_add(kTlbFlushUnit, std::memory_order_seq_cst);
    ++sent;
  }
  if (self >= 0) vs.tlbs[self].shootdowns.add(static_cast<int64_t>(sent));
  for (unsigned c = 0; c < m.nr_cpus(); ++c)
    if (targeted(c)) wait_for_access_end(vs.tlbs[c]);
}

int self_cpu(const Machine& m) {
  const CpuState* c = this_cpu(m);
  return c ? c->id : -1;
}

}  // namespace

void tlb_flush_all(Tlb& t) {
  for (TlbEntry& e : t.entries) e = TlbEntry{};
  t.flushes.add(1);
}

void tlb_flush_pending(Tlb& t) {
  const uint64_t req = t.flush_req.load(std::memory_order_seq_cst);
  if (req == t.flush_seen) return;
  tlb_flush_all(t);
  t.flush_seen = req;
}

// Flushes linear [lo, hi) of `pt` everywhere (used by the range operations).
void flush_tlb_linear(PageTable& pt, uint64_t lo, uint64_t hi) {
  if (lo >= hi) return;
  VmState& vs = vm_state(*pt.machine);
  const int self = self_cpu(*pt.machine);
  if (self >= 0) local_flush(vs.tlbs[self], pt, lo, hi);
  shootdown(vs, pt.cpumask.load(std::memory_order_seq_cst), self);
}

void flush_tlb_range(PageTable& pt, uint64_t start, uint64_t end) {
  if (!pt.pgd) return;
  const PagingFormat& f = paging_format(pt.mode);
  start &= ~(PAGE_SIZE - 1);
  if (start == end) return;
  const uint64_t last = end - 1;
  if (!addr_canonical(pt.mode, start) || !addr_canonical(pt.mode, last) || start > last) {
    vm_warn(*pt.machine, "flush_tlb_range",
            fmt::format("[{:#x}, {:#x}) is not a canonical range; flushing the whole tree", start,
                        end));
    flush_tlb_mm(pt);
    return;
  }
  flush_tlb_linear(pt, to_linear(f, start), to_linear(f, last | (PAGE_SIZE - 1)) + 1);
}

void flush_tlb_page(PageTable& pt, uint64_t addr) {
  if (!pt.pgd) return;
  if (!addr_canonical(pt.mode, addr)) return;  // never cached
  const uint64_t lin = to_linear(paging_format(pt.mode), addr & ~(PAGE_SIZE - 1));
  flush_tlb_linear(pt, lin, lin + PAGE_SIZE);
}

void flush_tlb_mm(PageTable& pt) {
  if (!pt.machine) return;
  flush_tlb_linear(pt, 0, va_span(paging_format(pt.mode)));
}

void flush_tlb_local(Machine& m) {
  if (const CpuState* c = this_cpu(m)) tlb_flush_all(vm_state(m).tlbs[c->id]);
}

void flush_tlb_cpus(Machine& m, uint64_t cpus) {
  if (!cpus) return;
  VmState& vs = vm_state(m);
  const int self = self_cpu(m);
  if (self >= 0 && (cpus >> std::min(self, 63) & 1)) tlb_flush_all(vs.tlbs[self]);
  shootdown(vs, cpus, self);
}

TlbStats tlb_stats(Machine& m, int cpu) {
  TlbStats s;
  if (cpu < 0 || static_cast<unsigned>(cpu) >= m.nr_cpus()) return s;
  const Tlb& t = vm_state(m).tlbs[cpu];
  s.misses = static_cast<uint64_t>(t.misses.get());
  s.flushes = static_cast<uint64_t>(t.flushes.get());
  s.shootdowns = static_cast<uint64_t>(t.shootdowns.get());
  return s;
}

}  // namespace mmkit
