// zswap: a compressed cache in front of the swap areas (mm/zswap.c).
//
// A page that reclaim writes to a swap slot (swap_writepage) is offered to
// zswap first. If zswap takes it, the page is compressed (lz4 or zstd) into
// the pool and the file is not written; a page whose words are all equal is
// kept as that one value (same_filled_pages). When the slot is read
// (swap-in, readahead, swapoff), the page comes from the pool and the entry
// is freed at once (Linux 6.9's exclusive load: the page is dirtied, so it
// is stored again if reclaimed). Freeing the slot frees its entry.
//
// The pool's memory is the machine's own: compressed objects live in pages
// taken from the buddy allocator without reclaim (zswap_pool.cc, a small
// zsmalloc), entries in the "zswap_entry" slab cache. Past max_pool_percent
// of RAM the pool refuses stores (pool_limit_hit) and writes its oldest
// entries back to their slots (written_back_pages, vmstat zswpwb) until it is
// below accept_threshold_percent of its maximum; until then every store is
// refused (the hysteresis of zswap_check_limits()).
//
// Statistics are the names of Linux's /sys/kernel/debug/zswap.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "phys/machine.h"
#include "swap/swap_entry.h"

namespace mmkit {

enum class ZswapCompressor : uint8_t { kLz4, kZstd };
std::string_view zswap_compressor_name(ZswapCompressor c);

struct ZswapStats {
  uint64_t pool_limit_hit = 0;
  uint64_t reject_reclaim_fail = 0;
  uint64_t reject_alloc_fail = 0;
  uint64_t reject_kmemcache_fail = 0;
  uint64_t reject_compress_fail = 0;
  uint64_t reject_compress_poor = 0;
  uint64_t written_back_pages = 0;
  uint64_t duplicate_entry = 0;
  uint64_t pool_total_size = 0;  // bytes of the pool's pages
  uint64_t stored_pages = 0;     // entries, same-filled ones included
  uint64_t same_filled_pages = 0;
};

// The statistics (all zero before the swap layer starts).
ZswapStats zswap_stats(const Machine& m);
// The statistics as (name, value) in the order of Linux's debugfs directory
// listing (alphabetical).
std::vector<std::pair<std::string_view, uint64_t>> zswap_stat_fields(const Machine& m);
// Pages of the pool (meminfo's Zswap) and pages stored (Zswapped).
uint64_t zswap_pool_pages(const Machine& m);
uint64_t zswap_stored_pages(const Machine& m);

// The module parameters at run time (/sys/module/zswap/parameters/*).
// Disabling stops stores; entries already stored stay loadable.
bool zswap_enabled(const Machine& m);
void zswap_set_enabled(Machine& m, bool on);
void zswap_set_compressor(Machine& m, ZswapCompressor c);
void zswap_set_max_pool_percent(Machine& m, unsigned percent);
void zswap_set_accept_threshold_percent(Machine& m, unsigned percent);

// Compresses one page with `c` into dst (dst_cap bytes); the compressed
// length, or 0 when the compressor fails or the output does not fit.
size_t zswap_compress(ZswapCompressor c, const void* src, void* dst, size_t dst_cap);
// Decompresses `len` bytes into one page at dst. False unless exactly a page
// came out.
bool zswap_decompress(ZswapCompressor c, const void* src, size_t len, void* dst);

// Proves zswap's invariants: every stored entry is in its slot's word of an
// area in use, stored_pages and same_filled_pages count the entries, the LRU
// holds exactly the compressed entries, each compressed entry's object is an
// allocated object of a pool class big enough for it, and the pool's page
// count equals the pages of its zspages. It holds every area and tree lock,
// so it may run while CPUs and kswapd swap.
// "" or the first violation.
std::string zswap_check(Machine& m);

// --- the swap layer's hooks (swap_cache.cc, swapfile.cc) -------------------------
// zswap_store(): the page (locked, in the swap cache, its slot in
// private_) is stored; true when zswap took it. Refused (false), any older
// entry of the slot goes, since the file is about to hold newer data.
bool zswap_store(Machine& m, Page* page);
// zswap_load(): the slot's page from the pool into `page` (locked, in the
// swap cache); 1 when loaded (the entry is freed and the page dirtied), 0
// when zswap has no entry for the slot, -EIO when it cannot be decompressed.
int zswap_load(Machine& m, SwpEntry e, Page* page);

}  // namespace mmkit
