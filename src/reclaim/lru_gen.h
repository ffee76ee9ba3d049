// Aging and eviction of the multi-generational LRU (Linux 6.1+ mm/vmscan.c
// try_to_inc_max_seq, evict_folios, lru_gen_shrink_lruvec,
// lru_gen_age_node). The lists and the PID controller are memcg/lru_gen.h's.
//
//   aging     walks the page tables of the machine's address spaces, clears
//             the accessed bit of each young page of the lruvec and moves
//             the page to the youngest generation; then max_seq++
//   eviction  takes pages from the tail of the oldest generation of the
//             type the controller picks (anon or file, by swappiness and
//             the first tiers' refault rates); pages of a protected tier
//             move up a generation, the rest get the same per-page work as
//             the classic lists (vmscan_internal::shrink_one); rejected
//             ones come back in the youngest generation
//   min_ttl   kswapd OOM-kills when no lruvec of its node has a generation
//             older than lru_gen_min_ttl_ms, rather than thrash
//
// Lock order: the process table's lock (try-lock), an mm's mmap and page
// table locks (try-locks), then lru_lock; the walk collects young pages
// with a reference and moves them after it, under lru_lock.
#pragma once

#include <cstdint>

#include "reclaim/vmscan.h"

namespace mmkit {

// shrink_lruvec() under lru_gen: ages when only MIN_NR_GENS generations of
// the types it may evict are left, evicts in batches until the scan count
// (the evictable pages >> priority) is spent or enough is reclaimed.
void lru_gen_shrink_lruvec(Machine& m, Lruvec& lv, ScanControl& sc);
// try_to_inc_max_seq(): the walk and the new generation. Returns the young
// pages found.
uint64_t lru_gen_age_lruvec(Machine& m, Lruvec& lv);
// evict_folios(): one batch of at most `nr` pages. Returns pages scanned
// (0: nothing was evictable).
uint64_t lru_gen_evict(Machine& m, Lruvec& lv, ScanControl& sc, uint64_t nr);
// lru_gen_age_node()'s verdict: min_ttl is set and no lruvec of node `nid`
// holds pages in a generation born min_ttl ago or earlier.
bool lru_gen_min_ttl_exhausted(Machine& m, int nid);

}  // namespace mmkit
