// Workingset detection (mm/workingset.c): what reclaim leaves behind in
// the swap cache or the page cache when it evicts a page, and what a
// swap-in or a page-cache miss makes of it.
//
// Each lruvec counts its nonresident_age: one tick per page evicted from it
// and per page a refault activates. An evicted page leaves a shadow entry in
// its swap-cache slot holding the age at eviction (with its memcg, node and
// PG_workingset). When the page is read back, the refault distance (the age
// now less the age then) is how many pages were evicted or activated while
// it was out: had the memory that the active lists hold been free for it, it
// would not have been evicted if the distance is at most that size, so it
// comes back on the active list (workingset_activate), and counts as a
// restore when it was part of the workingset before (PG_workingset). Pages
// of a one-time scan never refault, so they no longer push such pages out.
//
//   shadow layout (a uintptr_t with bit 0 set, as Linux's xa_mk_value):
//     bit 0 tag, bit 1 PG_workingset, bits 2-17 memcg id, bits 18-23 node,
//     bits 24-63 the eviction age (modulo 2^40)
//
// Not modelled: the shadow-node shrinker (shadows live in the swap cache's
// flat array, one word per slot, and in the page cache's index until the
// file is truncated or evicted, so none is ever reclaimed and
// workingset_nodereclaim stays 0).
#pragma once

#include <cstdint>

#include "phys/machine.h"

namespace mmkit {

inline constexpr bool is_shadow(uintptr_t v) {
  return v & 1;
}

// workingset_eviction(): ages the page's lruvec and returns the shadow that
// its swap-cache slot keeps.
uintptr_t workingset_eviction(Machine& m, Page* page);
// workingset_refault(): `page` (charged, not yet on an LRU list; anonymous
// or file by PG_swapbacked) was read back into a slot that held `shadow`; counts the refault and,
// when the refault distance is within the workingset, sets PG_active (and PG_workingset for a
// restore). `swap_available`: free swap exists, so the active anon list competes for the memory
// (workingset_test_recent).
void workingset_refault(Machine& m, Page* page, uintptr_t shadow, bool swap_available);

}  // namespace mmkit
