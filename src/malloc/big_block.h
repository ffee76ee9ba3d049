// Big blocks: requests above a MAX_ORDER block (4 MiB), carved from one
// reserved range of address space, the heap's vmalloc area (mm/vmalloc.c:
// free ranges kept in address order and merged, as vmap_area's free tree).
//
// A block is page aligned and preceded by one header page holding its base
// and length, so free() needs no lookup. A freed block's range stays
// resident ("dirty") for the next big allocation, which takes dirty ranges
// first, so a program that frees and allocates big buffers in turn reuses
// pages without faulting them in (or, on a virtual machine, without the
// host refilling its page tables, as happens when pages move with mremap).
// Dirty ranges are handed back to the host (MADV_DONTNEED) lazily, as
// vmalloc purges its lazily freed areas: when they exceed twice the peak
// of the live big blocks (at least lazy_max_pages(), 32 MiB per power of
// two of CPUs), or two seconds after their free (free-page reporting's delay) the
// next time the heap is used. realloc() grows in place into a free range
// after the block, or moves the pages with mremap(), which copies nothing.
// Where the area cannot be reserved (strict overcommit, an address-space
// limit), and for alignments above a page, a block is a mapping of its own.
#pragma once

#include <cstddef>
#include <string>

namespace mmkit {

// `zero`: the block must read as zero (calloc); only reused pages are cleared.
void* big_alloc(size_t size, size_t align, bool zero);
void big_free(void* p);
// Hands every freed range back to the host (malloc_trim); returns whether
// there was any.
bool big_trim();
// Hands back the ranges freed too long ago; cheap when there are none.
void big_decay();
// CLOCK_MONOTONIC_COARSE in milliseconds (a vDSO read, 4 ms steps): the
// clock of the lazy purge here and of the heap's decay of free memory.
uint64_t coarse_now_ms();
// The area's lock, for the heap's fork handlers.
void big_lock();
void big_unlock();
// Whether `p` is a big block's address (a page-aligned pointer whose header
// carries the magic); reads the page before `p`, so `p` must come from the heap.
bool big_owns(const void* p);
size_t big_usable_size(const void* p);
// Resizes in place or moves; null (block untouched) when the host refuses.
void* big_realloc(void* p, size_t size);
// Proves the area's invariants (free ranges in order, apart, within it;
// the dirty counts add up); "" when they hold.
std::string big_check();
// Blocks and their bytes in use, and the freed bytes not handed back yet.
size_t big_blocks();
size_t big_bytes();
size_t big_cached_bytes();
// Whether any freed block is kept for reuse (no lock: a hint).
bool big_has_cached();
// The most blocks and bytes live at once since the process started.
size_t big_max_blocks();
size_t big_max_bytes();

}  // namespace mmkit
