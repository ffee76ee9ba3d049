// zswap: the compressed cache in front of swap (mm/zswap.c). See zswap.h.
//
// Entries. A stored slot's entry sits in its area's tree (SwapInfo::zswap,
// one word a slot) and holds the compressor, the compressed length and the
// pool handle, or, for a same-filled page (length 0), the repeated word.
// Entries come from the "zswap_entry" slab cache; compressed entries are on
// the pool's LRU, newest at the head, which writeback takes from the tail.
//
// Who may touch a slot's entry. Every store, load and writeback of a slot
// runs with the slot's SWAP_HAS_CACHE held by the caller (the page in the
// swap cache, or the page writeback puts there), and an entry is freed with
// its slot only when no cache bit is held (slot_freed). So the operations on
// one slot never race with one another; the tree locks make each change
// (the slot's word, the counters, the LRU, the pool object) one step for
// zswap_check and for the statistics.
//
// Limits (zswap_check_limits(), zswap_max_pages(), zswap_accept_thr_pages()):
//   max_pages = totalram_pages * max_pool_percent / 100
//   accept    = max_pages * accept_threshold_percent / 100
// A store that finds the pool at max_pages or more counts pool_limit_hit and
// marks the pool full; while full, stores are refused, and the refused store
// writes back entries from the LRU's tail (Linux's shrink_worker, done here
// by the storing thread, one at a time) until the pool is at accept or below
// or 16 writebacks failed (MAX_RECLAIM_RETRIES), each failure counted in
// reject_reclaim_fail. The pool shrinks only as zspages empty.
//
// Lock order: si->lock (slot_freed), then a tree lock, then the LRU lock,
// then a pool class lock. Writeback takes the LRU lock alone, then claims
// the slot (si->lock), then the tree lock.
#include "swap/zswap.h"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_set>

#include "memcg/memcg_state.h"
#include "slab/slab.h"
#include "swap/swap_state.h"
#include "swap/zswap_pool.h"

namespace mmkit {

struct ZswapEntry {
  SwpEntry swpentry;
  uint32_t length = 0;  // compressed bytes; 0: same-filled, `value` holds the word
  ZswapCompressor compressor = ZswapCompressor::kLz4;
  uint16_t memcg_id = 0;  // the slot's swap_cgroup when stored (the objcg)
  ZsHandle handle;
  uint64_t value = 0;
  ZswapEntry* lru_prev = nullptr;  // on the LRU while length != 0 (lru_lock)
  ZswapEntry* lru_next = nullptr;
};

struct ZswapState {
  explicit ZswapState(Machine& machine) : m(machine), pool(machine) {
    lru.lru_prev = lru.lru_next = &lru;
  }

  Machine& m;
  std::atomic<bool> enabled{false};
  std::atomic<ZswapCompressor> compressor{ZswapCompressor::kLz4};
  std::atomic<unsigned> max_pool_percent{20};
  std::atomic<unsigned> accept_threshold_percent{90};
  ZsPool pool;
  std::once_flag cache_once;
  std::atomic<KmemCache*> entry_cache{nullptr};

  std::mutex lru_lock;
  ZswapEntry lru;  // the list head (newest after it, oldest before it)

  std::atomic<bool> reached_full{false};  // zswap_pool_reached_full
  std::atomic<bool> shrinking{false};     // one writeback run at a time

  // Counters changed under a tree lock (stored, same_filled) or on their own.
  std::atomic<uint64_t> stored{0}, same_filled{0};
  std::atomic<uint64_t> pool_limit_hit{0}, reject_reclaim_fail{0}, reject_alloc_fail{0},
      reject_kmemcache_fail{0}, reject_compress_fail{0}, reject_compress_poor{0}, written_back{0},
      duplicate_entry{0};
};

void ZswapStateDeleter::operator()(ZswapState* z) const {
  delete z;
}

namespace {

// zswap_store()'s allocations: no reclaim (this runs inside it), no
// warning, and no dipping into the reserves (__GFP_NOMEMALLOC: a refused
// store costs only a write to the file, so the pool has no claim on the
// memory kept for atomic allocations, and its blocks of 2 and 4 pages
// reserve no highatomic pageblocks); the pool's pages from any zone.
constexpr gfp_t kPoolGfp =
    GFP_NOWAIT | __GFP_NORETRY | __GFP_NOWARN | __GFP_NOMEMALLOC | __GFP_HIGHMEM;
constexpr gfp_t kEntryGfp = GFP_NOWAIT | __GFP_NOWARN | __GFP_NOMEMALLOC;

ZswapState* zswap_of(const Machine& m) {
  SwapState* st = swap_state_if(m);
  return st ? st->zswap.get() : nullptr;
}

std::mutex& tree_lock(SwapInfo& si, uint64_t off) {
  return si.zswap_locks[off >> kZswapTreeShift];
}

void ensure_entry_cache(ZswapState& z) {
  std::call_once(z.cache_once, [&] {
    z.entry_cache.store(
        kmem_cache_create(z.m, "zswap_entry", sizeof(ZswapEntry), alignof(ZswapEntry), 0),
        std::memory_order_release);
  });
}

uint64_t max_pages(const ZswapState& z) {
  return z.m.totalram_pages() * z.max_pool_percent.load(std::memory_order_relaxed) / 100;
}
uint64_t accept_thr_pages(const ZswapState& z) {
  return max_pages(z) * z.accept_threshold_percent.load(std::memory_order_relaxed) / 100;
}

// zswap_check_limits(): true while stores must be refused.
bool check_limits(ZswapState& z) {
  const uint64_t cur = z.pool.pages();
  if (cur >= max_pages(z)) {
    z.pool_limit_hit.fetch_add(1, std::memory_order_relaxed);
    z.reached_full.store(true, std::memory_order_relaxed);
  } else if (z.reached_full.load(std::memory_order_relaxed) && cur <= accept_thr_pages(z)) {
    z.reached_full.store(false, std::memory_order_relaxed);
  }
  return z.reached_full.load(std::memory_order_relaxed);
}

// zswap_is_page_same_filled(): every word of the page equal.
bool same_filled(const char* src, uint64_t* value) {
  uint64_t first;
  std::memcpy(&first, src, sizeof(first));
  for (size_t i = sizeof(first); i < PAGE_SIZE; i += sizeof(first)) {
    uint64_t w;
    std::memcpy(&w, src + i, sizeof(w));
    if (w != first) return false;
  }
  *value = first;
  return true;
}

void lru_add(ZswapState& z, ZswapEntry* e) {
  std::lock_guard<std::mutex> g(z.lru_lock);
  e->lru_prev = &z.lru;
  e->lru_next = z.lru.lru_next;
  z.lru.lru_next->lru_prev = e;
  z.lru.lru_next = e;
}

void lru_del(ZswapState& z, ZswapEntry* e) {
  std::lock_guard<std::mutex> g(z.lru_lock);
  e->lru_prev->lru_next = e->lru_next;
  e->lru_next->lru_prev = e->lru_prev;
  e->lru_prev = e->lru_next = nullptr;
}

// zswap_entry_free(): under the slot's tree lock, once the entry has left
// the tree.
void entry_free(ZswapState& z, ZswapEntry* e) {
  mem_cgroup_zswap_charge(z.m, e->memcg_id, -static_cast<int64_t>(e->length), -1);
  if (e->length) {
    lru_del(z, e);
    z.pool.free(e->handle);
  } else {
    z.same_filled.fetch_sub(1, std::memory_order_relaxed);
  }
  z.stored.fetch_sub(1, std::memory_order_relaxed);
  e->~ZswapEntry();
  kmem_cache_free(z.entry_cache.load(std::memory_order_acquire), e);
}

// The entry's page into dst; false when it cannot be decompressed.
bool entry_to_page(ZswapState& z, const ZswapEntry* e, char* dst) {
  if (!e->length) {
    for (size_t i = 0; i < PAGE_SIZE; i += sizeof(e->value))
      std::memcpy(dst + i, &e->value, sizeof(e->value));
    return true;
  }
  return zswap_decompress(e->compressor, z.pool.map(e->handle), e->length, dst);
}

// Drops the slot's entry, if any (the stale copy a refused store leaves).
void invalidate_slot(ZswapState& z, SwapInfo& si, uint64_t off) {
  if (!si.zswap[off].load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> g(tree_lock(si, off));
  if (ZswapEntry* e = si.zswap[off].exchange(nullptr, std::memory_order_relaxed)) entry_free(z, e);
}

// zswap_writeback_entry() for the LRU's oldest entry: 0, or why not.
int writeback_oldest(ZswapState& z) {
  SwpEntry e;
  bool writeback_off;
  {
    std::lock_guard<std::mutex> g(z.lru_lock);
    ZswapEntry* oldest = z.lru.lru_prev;
    if (oldest == &z.lru) return -ENOENT;
    e = oldest->swpentry;
    writeback_off = !mem_cgroup_zswap_writeback_enabled(z.m, oldest->memcg_id);
    // Rotated to the head: if it cannot go now, the next try takes another.
    oldest->lru_prev->lru_next = &z.lru;
    z.lru.lru_prev = oldest->lru_prev;
    oldest->lru_prev = &z.lru;
    oldest->lru_next = z.lru.lru_next;
    z.lru.lru_next->lru_prev = oldest;
    z.lru.lru_next = oldest;
  }
  // Its group keeps its pages off the file (shrink_memcg's -ENOENT).
  if (writeback_off) return -ENOENT;
  // The entry may have been loaded or freed since: once the slot is ours,
  // whatever entry the slot holds now is the one written.
  const uint64_t off = swp_offset(e);
  return swap_writeback_slot(
      z.m, e,
      [&](void* dst) {
        SwapInfo* si = swap_info(z.m, e);
        std::lock_guard<std::mutex> g(tree_lock(*si, off));
        const ZswapEntry* entry = si->zswap[off].load(std::memory_order_relaxed);
        return entry && entry_to_page(z, entry, static_cast<char*>(dst));
      },
      [&] {
        SwapInfo* si = swap_info(z.m, e);
        std::lock_guard<std::mutex> g(tree_lock(*si, off));
        if (ZswapEntry* entry = si->zswap[off].exchange(nullptr, std::memory_order_relaxed)) {
          mem_cgroup_count_zswap(z.m, entry->memcg_id, MemcgZswapEvent::kWriteback);
          entry_free(z, entry);
          z.written_back.fetch_add(1, std::memory_order_relaxed);
          z.m.count_event(VmEvent::ZSWPWB);
        }
      });
}

// shrink_worker(): writes back from the LRU until the pool is at or below
// the accept threshold.
void shrink(ZswapState& z) {
  if (z.shrinking.exchange(true, std::memory_order_acquire)) return;
  unsigned failures = 0;
  while (z.pool.pages() > accept_thr_pages(z)) {
    const int rc = writeback_oldest(z);
    if (rc == 0) continue;
    z.reject_reclaim_fail.fetch_add(1, std::memory_order_relaxed);
    if (++failures == MAX_RECLAIM_RETRIES) break;
    std::lock_guard<std::mutex> g(z.lru_lock);
    if (z.lru.lru_next == &z.lru) break;  // nothing left to write
  }
  z.shrinking.store(false, std::memory_order_release);
}

}  // namespace

ZswapState* zswap_create(Machine& m) {
  auto* z = new ZswapState(m);
  const ZswapConfig& c = m.config().zswap;
  z->enabled.store(c.enabled);
  z->compressor.store(c.compressor == "zstd" ? ZswapCompressor::kZstd : ZswapCompressor::kLz4);
  z->max_pool_percent.store(c.max_pool_percent);
  z->accept_threshold_percent.store(c.accept_threshold_percent);
  return z;
}

void zswap_swapon(SwapState& st, SwapInfo& si) {
  si.zswap = std::make_unique<std::atomic<ZswapEntry*>[]>(si.max);
  si.zswap_locks = std::make_unique<std::mutex[]>((si.max >> kZswapTreeShift) + 1);
  if (st.zswap->enabled.load()) ensure_entry_cache(*st.zswap);
}

void zswap_invalidate(SwapState& st, SwapInfo& si, uint64_t offset) {
  invalidate_slot(*st.zswap, si, offset);
}

bool zswap_store(Machine& m, Page* page) {
  ZswapState* zp = zswap_of(m);
  const SwpEntry swp{page->private_once()};
  SwapInfo* si = swap_info(m, swp);
  if (!zp || !si) return false;
  ZswapState& z = *zp;
  const uint64_t off = swp_offset(swp);
  // A refused store leaves the file to hold the data: an older entry of the
  // slot is stale now (zswap_store's check_old).
  auto reject = [&] {
    invalidate_slot(z, *si, off);
    return false;
  };
  if (!z.enabled.load(std::memory_order_relaxed)) return reject();
  // The group the slot is charged to (swap_cgroup) owns the entry; at its
  // memory.zswap.max the page goes to the file.
  const uint16_t memcg_id = swap_cgroup_id(m, swp);
  if (!mem_cgroup_may_zswap(m, memcg_id)) return reject();
  if (check_limits(z)) {
    shrink(z);
    return reject();
  }
  ensure_entry_cache(z);
  KmemCache* cache = z.entry_cache.load(std::memory_order_acquire);
  const char* src = m.phys_window(m.page_to_pfn(page));
  uint64_t value = 0;
  const bool same = same_filled(src, &value);
  const ZswapCompressor comp = z.compressor.load(std::memory_order_relaxed);
  // Twice a page, as Linux's per-CPU buffer, so an expanding page still
  // compresses and is refused as poor rather than failed.
  thread_local std::array<char, 2 * PAGE_SIZE> buf;
  size_t len = 0;
  if (!same) {
    len = zswap_compress(comp, src, buf.data(), buf.size());
    if (len == 0) {
      z.reject_compress_fail.fetch_add(1, std::memory_order_relaxed);
      return reject();
    }
    if (len >= PAGE_SIZE) {
      z.reject_compress_poor.fetch_add(1, std::memory_order_relaxed);
      return reject();
    }
  }
  std::unique_lock<std::mutex> g(tree_lock(*si, off));
  void* mem = cache ? kmem_cache_alloc(cache, kEntryGfp) : nullptr;
  if (!mem) {
    z.reject_kmemcache_fail.fetch_add(1, std::memory_order_relaxed);
    g.unlock();
    return reject();
  }
  auto* e = new (mem) ZswapEntry;
  e->swpentry = swp;
  e->compressor = comp;
  e->memcg_id = memcg_id;
  if (same) {
    e->value = value;
  } else {
    e->handle = z.pool.malloc(len, kPoolGfp);
    if (!e->handle) {
      z.reject_alloc_fail.fetch_add(1, std::memory_order_relaxed);
      e->~ZswapEntry();
      kmem_cache_free(cache, e);
      g.unlock();
      return reject();
    }
    e->length = static_cast<uint32_t>(len);
    std::memcpy(z.pool.map(e->handle), buf.data(), len);
  }
  if (ZswapEntry* old = si->zswap[off].exchange(e, std::memory_order_relaxed)) {
    z.duplicate_entry.fetch_add(1, std::memory_order_relaxed);
    entry_free(z, old);
  }
  z.stored.fetch_add(1, std::memory_order_relaxed);
  if (same)
    z.same_filled.fetch_add(1, std::memory_order_relaxed);
  else
    lru_add(z, e);
  mem_cgroup_zswap_charge(m, memcg_id, e->length, 1);
  g.unlock();
  m.count_event(VmEvent::ZSWPOUT);
  mem_cgroup_count_zswap(m, memcg_id, MemcgZswapEvent::kOut);
  return true;
}

int zswap_load(Machine& m, SwpEntry swp, Page* page) {
  ZswapState* zp = zswap_of(m);
  SwapInfo* si = swap_info(m, swp);
  if (!zp || !si) return 0;
  const uint64_t off = swp_offset(swp);
  // The caller holds the slot: an empty word stays empty.
  if (!si->zswap[off].load(std::memory_order_relaxed)) return 0;
  bool ok;
  uint16_t memcg_id;
  {
    std::lock_guard<std::mutex> g(tree_lock(*si, off));
    ZswapEntry* e = si->zswap[off].exchange(nullptr, std::memory_order_relaxed);
    if (!e) return 0;
    memcg_id = e->memcg_id;
    ok = entry_to_page(*zp, e, m.phys_window(m.page_to_pfn(page)));
    entry_free(*zp, e);  // the exclusive load: the page is the only copy now
  }
  if (!ok) {
    m.warn(fmt::format("zswap: decompression failed for swap entry {:#x}\n", swp.val));
    return -EIO;
  }
  page->set_atomic(PG_dirty);
  m.count_event(VmEvent::ZSWPIN);
  mem_cgroup_count_zswap(m, memcg_id, MemcgZswapEvent::kIn);
  return 1;
}

ZswapStats zswap_stats(const Machine& m) {
  ZswapStats s;
  const ZswapState* z = zswap_of(m);
  if (!z) return s;
  s.pool_limit_hit = z->pool_limit_hit.load();
  s.reject_reclaim_fail = z->reject_reclaim_fail.load();
  s.reject_alloc_fail = z->reject_alloc_fail.load();
  s.reject_kmemcache_fail = z->reject_kmemcache_fail.load();
  s.reject_compress_fail = z->reject_compress_fail.load();
  s.reject_compress_poor = z->reject_compress_poor.load();
  s.written_back_pages = z->written_back.load();
  s.duplicate_entry = z->duplicate_entry.load();
  s.pool_total_size = z->pool.pages() * PAGE_SIZE;
  s.stored_pages = z->stored.load();
  s.same_filled_pages = z->same_filled.load();
  return s;
}

std::vector<std::pair<std::string_view, uint64_t>> zswap_stat_fields(const Machine& m) {
  const ZswapStats s = zswap_stats(m);
  return {{"duplicate_entry", s.duplicate_entry},
          {"pool_limit_hit", s.pool_limit_hit},
          {"pool_total_size", s.pool_total_size},
          {"reject_alloc_fail", s.reject_alloc_fail},
          {"reject_compress_fail", s.reject_compress_fail},
          {"reject_compress_poor", s.reject_compress_poor},
          {"reject_kmemcache_fail", s.reject_kmemcache_fail},
          {"reject_reclaim_fail", s.reject_reclaim_fail},
          {"same_filled_pages", s.same_filled_pages},
          {"stored_pages", s.stored_pages},
          {"written_back_pages", s.written_back_pages}};
}

uint64_t zswap_pool_pages(const Machine& m) {
  const ZswapState* z = zswap_of(m);
  return z ? z->pool.pages() : 0;
}
uint64_t zswap_stored_pages(const Machine& m) {
  const ZswapState* z = zswap_of(m);
  return z ? z->stored.load(std::memory_order_relaxed) : 0;
}

bool zswap_enabled(const Machine& m) {
  const ZswapState* z = zswap_of(m);
  return z ? z->enabled.load() : m.config().zswap.enabled;
}
void zswap_set_enabled(Machine& m, bool on) {
  ZswapState& z = *swap_state(m).zswap;
  if (on) ensure_entry_cache(z);
  z.enabled.store(on);
}
void zswap_set_compressor(Machine& m, ZswapCompressor c) {
  swap_state(m).zswap->compressor.store(c);
}
void zswap_set_max_pool_percent(Machine& m, unsigned percent) {
  swap_state(m).zswap->max_pool_percent.store(percent);
}
void zswap_set_accept_threshold_percent(Machine& m, unsigned percent) {
  swap_state(m).zswap->accept_threshold_percent.store(std::min(percent, 100u));
}

std::string zswap_check(Machine& m) {
  SwapState* st = swap_state_if(m);
  if (!st) return "";
  ZswapState& z = *st->zswap;
  std::lock_guard<std::mutex> sg(st->swap_lock);
  std::vector<SwapInfo*> areas;
  for (const auto& slot : st->info)
    if (SwapInfo* si = slot.load(std::memory_order_acquire)) areas.push_back(si);
  // Areas, then every tree, then the LRU: no store, load, free or
  // writeback can change an entry or the pool meanwhile (the pool's class
  // locks are taken one at a time by its check).
  std::vector<std::unique_lock<std::mutex>> held;
  for (SwapInfo* si : areas) held.emplace_back(si->lock);
  for (SwapInfo* si : areas)
    for (uint64_t t = 0; t <= si->max >> kZswapTreeShift; ++t)
      held.emplace_back(si->zswap_locks[t]);
  std::lock_guard<std::mutex> lg(z.lru_lock);
  uint64_t stored = 0, same = 0;
  std::vector<std::pair<int64_t, int64_t>> by_group(kMaxMemCgroups);  // bytes, entries
  std::unordered_set<const ZswapEntry*> compressed;
  std::vector<std::pair<ZsHandle, size_t>> objects;
  for (SwapInfo* si : areas) {
    for (uint64_t off = 1; off < si->max; ++off) {
      const ZswapEntry* e = si->zswap[off].load(std::memory_order_relaxed);
      if (!e) continue;
      ++stored;
      if (e->swpentry != swp_entry(si->type, off))
        return fmt::format("zswap: {} slot {}: the entry names {:#x}", si->path, off,
                           e->swpentry.val);
      if (!si->swap_map[off])
        return fmt::format("zswap: {} slot {}: an entry for a free slot", si->path, off);
      by_group[e->memcg_id].first += e->length;
      ++by_group[e->memcg_id].second;
      if (!e->length) {
        ++same;
        continue;
      }
      if (e->length >= PAGE_SIZE)
        return fmt::format("zswap: {} slot {}: a {}-byte entry", si->path, off, e->length);
      compressed.insert(e);
      objects.emplace_back(e->handle, e->length);
    }
  }
  if (stored != z.stored.load())
    return fmt::format("zswap: {} entries in the trees, stored_pages {}", stored, z.stored.load());
  if (same != z.same_filled.load())
    return fmt::format("zswap: {} same-filled entries, same_filled_pages {}", same,
                       z.same_filled.load());
  uint64_t on_lru = 0;
  for (const ZswapEntry* e = z.lru.lru_next; e != &z.lru; e = e->lru_next) {
    if (e->lru_next->lru_prev != e) return "zswap: the LRU's links disagree";
    if (!compressed.count(e)) return "zswap: an LRU entry is in no tree";
    if (++on_lru > compressed.size()) return "zswap: the LRU is longer than the compressed entries";
  }
  if (on_lru != compressed.size())
    return fmt::format("zswap: {} compressed entries, {} on the LRU", compressed.size(), on_lru);
  // Each group's memory.zswap.current and zswapped are its entries', and
  // memory.current holds their bytes in whole pages.
  if (MemcgState* ms = memcg_state_if(m)) {
    for (unsigned id = 1; id < kMaxMemCgroups; ++id) {
      MemCgroup* cg = ms->group(static_cast<uint16_t>(id));
      if (!cg) continue;
      const auto [bytes, entries] = by_group[id];
      SpinGuard g(cg->zswap_lock);
      if (cg->zswap_bytes.load() != bytes || cg->nr_zswapped.load() != entries)
        return fmt::format("zswap: group {} counts {} bytes in {} entries, its entries {} in {}",
                           mem_cgroup_name(cg), cg->zswap_bytes.load(), cg->nr_zswapped.load(),
                           bytes, entries);
      if (cg->zswap_charged != (bytes + static_cast<int64_t>(PAGE_SIZE) - 1) >> PAGE_SHIFT)
        return fmt::format("zswap: group {} has {} pages charged for {} bytes", mem_cgroup_name(cg),
                           cg->zswap_charged, bytes);
    }
  }
  return z.pool.check(objects);
}

}  // namespace mmkit
