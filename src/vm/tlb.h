// The per-CPU software TLB and the state a TLB shootdown needs.
//
// Each CPU has one direct-mapped TLB of kTlbEntries entries, indexed by the
// low bits of the virtual page number and tagged with the virtual page, the
// tree's asid and the CPU's flush generation. An entry caches the host
// address of the page, the last-level entry, and which accesses the cached
// permissions allow without a walk (the allow bits, kept in the page
// offset bits of the tag): a write is allowed only when the entry was
// cached dirty, so the first write to a clean page walks and sets DIRTY, as
// the hardware re-walks.
//
// Only the thread bound to the CPU reads or writes its entries. Other CPUs
// reach a TLB through two words (docs/pgtable.md has the proof):
//   flush_req   a shooter adds kTlbFlushUnit (one, in the upper 32 bits) to
//               ask for a full flush. Every entry is tagged with the
//               flush_req it was filled under (in ctx, beside the asid), so
//               a request empties the TLB at once for
//               every later lookup without the owner doing anything; the
//               owner's next miss also clears the stale entries out;
//   access_seq  odd while the owner is inside mmu_access_begin/end (or inside
//               a page walk); a shooter whose request may have arrived during
//               such an access waits until the count moves on.
// Invariants: an empty entry is all zero; its tag has no allow bit, so no
// lookup matches it.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/counter.h"
#include "vm/pgtable.h"

namespace mmkit {

inline constexpr unsigned kTlbEntries = 512;  // a power of two

// allow bits: one per (access, mode): bit 2 * access + user.
inline constexpr uint32_t tlb_allow_bit(unsigned access, bool user) {
  return uint32_t{1} << (2 * access + (user ? 1 : 0));
}

inline constexpr uint64_t kTlbAllowMask = 0x3f;

// One flush request: flush_req counts in the upper 32 bits, so the context
// an entry is valid in, the tree's asid and the flush generation, is an OR.
inline constexpr uint64_t kTlbFlushUnit = uint64_t{1} << 32;
inline constexpr uint64_t tlb_ctx(uint32_t asid, uint64_t flush_req) {
  return asid | flush_req;
}

struct TlbEntry {
  uint64_t tag = 0;  // virtual address of the page | allow bits
  uint64_t ctx = 0;  // tlb_ctx() at fill time; 0: empty
  char* host = nullptr;
  pteval_t pte = 0;
};
static_assert(sizeof(TlbEntry) == 32);

struct alignas(64) Tlb {
  // The owner's line: the owner reads flush_req on every translate; shooters
  // write it (rarely).
  std::atomic<uint64_t> flush_req{0};
  uint64_t flush_seen = 0;
  // Like the hardware's, the TLB counts misses (walks), not hits: a counter
  // bumped on every hit is a load-add-store chain from one translation to
  // the next, which costs more than the hit itself.
  OwnedCounter misses, flushes, shootdowns;
  // Written by the owner at each access boundary, read by shooters.
  alignas(64) std::atomic<uint64_t> access_seq{0};
  unsigned access_depth = 0;  // owner only: nesting of mmu_access_begin
  bool warned_nested_flush = false;
  alignas(64) TlbEntry entries[kTlbEntries];
};

// Takes note of pending flush requests and clears the entries they made
// stale (the owner only).
void tlb_flush_pending(Tlb& t);
// Empties the whole TLB (the owner only).
void tlb_flush_all(Tlb& t);

// Enters and leaves an access on the owner's TLB (see mmu_access_begin).
inline void tlb_access_enter(Tlb& t) {
  if (t.access_depth++ == 0) t.access_seq.fetch_add(1, std::memory_order_seq_cst);
}
inline void tlb_access_exit(Tlb& t) {
  if (--t.access_depth == 0)
    t.access_seq.store(t.access_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

}  // namespace mmkit
