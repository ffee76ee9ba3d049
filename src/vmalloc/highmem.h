// High memory on i386 machines (mm/highmem.c, include/linux/highmem.h,
// arch/x86/include/asm/highmem.h).
//
// Pages above 896 MiB are outside the direct map (Machine::page_address()
// is null for them). To touch one, the kernel maps it for a while:
//
//   kmap(m, page) / kunmap(m, page)     a permanent slot among LAST_PKMAP
//       (1024) at PKMAP_BASE; may sleep: when every slot is in use the
//       caller waits until one is released. pkmap_count[] follows Linux: 0
//       free, 1 mapped but unused (reclaimed lazily: flush_all_zero_pkmaps()
//       clears them when the search wraps), n > 1 in use by n - 1 callers.
//       A page kmapped twice shares its slot.
//   kmap_atomic(m, page) / kunmap_atomic(m, addr)   a fixmap slot of the
//       calling thread's bound CPU (KM_MAX_IDX = 16 per CPU), used as a
//       stack; never sleeps. Unmap in the reverse order of mapping.
//       kmap_local_page / kunmap_local are the same calls.
//
// For a low page (and on x86_64, which has no high memory) both return
// page_address() and their unmaps do nothing. The address returned is a host
// address the caller can read and write (the frame is mapped from the RAM
// memfd at the slot's place in the window); vmalloc_kva() gives its kernel
// virtual address.
//
// Misuse warns through Machine::warn and does not crash: kunmap of a page
// that is not kmapped, kmap_atomic with no CPU bound or with all 16 slots in
// use (null returned; Linux BUG()s), kunmap_atomic of an address that is not
// the CPU's most recent slot.
//
// Locking: kmap_lock (a mutex, with pkmap_map_wait as its condition
// variable) guards pkmap_count and the page-to-slot table; the pte lock is
// taken inside it. kmap_atomic touches only its CPU's stack and the pte lock.
#pragma once

#include "phys/machine.h"

namespace mmkit {

// PageHighMem(): outside the direct map.
inline bool PageHighMem(const Machine& m, const Page* page) {
  return m.page_to_pfn(page) >= m.direct_map_pfns();
}

void* kmap(Machine& m, Page* page);
void kunmap(Machine& m, Page* page);
void* kmap_atomic(Machine& m, Page* page);
void kunmap_atomic(Machine& m, void* addr);
inline void* kmap_local_page(Machine& m, Page* page) {
  return kmap_atomic(m, page);
}
inline void kunmap_local(Machine& m, void* addr) {
  kunmap_atomic(m, addr);
}

// kmap_flush_unused(): clears every slot that is mapped but unused (count
// 1) now, instead of at the next wrap. Until then such a slot keeps its
// page mapped even after the page is freed, as in Linux; call this before
// proving the kernel page table's invariants after freeing kmapped pages.
void kmap_flush_unused(Machine& m);

// page_address() for a high page: its pkmap address while kmapped, else null.
void* kmap_page_address(Machine& m, const Page* page);

// For tests and views: slots with pkmap_count != 0, and threads waiting in
// kmap for a slot.
unsigned pkmap_slots_in_use(Machine& m);
unsigned pkmap_waiters(Machine& m);

}  // namespace mmkit
