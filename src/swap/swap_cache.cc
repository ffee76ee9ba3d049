// The swap cache and swap-in readahead (mm/swap_state.c), and the I/O of
// swap pages (mm/page_io.c). See swap.h.
#include <fmt/format.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "memcg/lru.h"
#include "memcg/memcontrol.h"
#include "memcg/workingset.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap_state.h"
#include "swap/zswap.h"

namespace mmkit {
namespace {

// Linux counts swap-cache pages in NR_FILE_PAGES too (add_to_swap_cache);
// meminfo's Cached subtracts them.
void swapcache_stat(Machine& m, Page* page, int64_t n) {
  Node& node = m.node(m.page_zone(page)->node);
  node.stat[static_cast<unsigned>(NodeStat::NR_SWAPCACHE)].add(n);
  node.stat[static_cast<unsigned>(NodeStat::NR_FILE_PAGES)].add(n);
  page_memcg(m, page)->nr_swapcached.fetch_add(n, std::memory_order_relaxed);
}

// Inserts a page whose slot has SWAP_HAS_CACHE into the cache; returns the
// shadow entry it replaces, or 0.
uintptr_t cache_insert(Machine& m, SwapInfo& si, Page* page, SwpEntry e) {
  get_page(page);  // the cache's reference
  page->set_private_once(e.val);
  page->set_atomic(PG_swapcache);
  const uintptr_t old = si.cache[swp_offset(e)].exchange(reinterpret_cast<uintptr_t>(page),
                                                         std::memory_order_acq_rel);
  swapcache_stat(m, page, 1);
  return is_shadow(old) ? old : 0;
}

// A page just read into a slot that held `shadow`: a refault, perhaps of a
// page still in the workingset (made active before it joins its list).
void note_refault(Machine& m, Page* page, uintptr_t shadow) {
  if (shadow) workingset_refault(m, page, shadow, swap_free_pages(m) > 0);
}

void lock_page(Page* page) {
  while (page->test_and_set(PG_locked)) std::this_thread::yield();
}
void unlock_page(Page* page) {
  page->clear_atomic(PG_locked);
}

// swap_read_folio(): a slot's data into a locked swap-cache page, from
// zswap when it holds the slot (zswpin, counted there), else from the file
// (pswpin, pgpgin). 0 or -EIO.
int swap_read_page(Machine& m, SwapInfo& si, SwpEntry e, Page* page) {
  const int z = zswap_load(m, e, page);
  if (z != 0) return z > 0 ? 0 : z;
  const int io = swap_read_slot(si, swp_offset(e), m.phys_window(m.page_to_pfn(page)));
  if (io == 0) {
    m.count_event(VmEvent::PSWPIN);
    m.count_event(VmEvent::PGPGIN, PAGE_SIZE / 1024);
  }
  return io;
}

}  // namespace

Page* lookup_swap_cache(Machine& m, SwpEntry e) {
  SwapInfo* si = swap_info(m, e);
  if (!si) return nullptr;
  std::atomic<uintptr_t>& slot = si->cache[swp_offset(e)];
  for (;;) {
    const uintptr_t v = slot.load(std::memory_order_acquire);
    if (!v || is_shadow(v)) return nullptr;
    Page* page = reinterpret_cast<Page*>(v);
    if (!page->try_get()) {  // being freed: its removal is on the way
      std::this_thread::yield();
      continue;
    }
    if (slot.load(std::memory_order_acquire) == v && page->test(PG_swapcache) &&
        page->private_once() == e.val)
      return page;
    put_page(m, page);
  }
}

bool add_to_swap(Machine& m, Page* page, uint16_t memcg_id) {
  const SwpEntry e = get_swap_page(m, memcg_id);
  if (!e.val) return false;
  // The page's contents are the data (an anonymous page is uptodate from
  // its fault on); the slot holds nothing yet, so the page is dirty.
  page->set_atomic(PG_uptodate);
  cache_insert(m, *swap_info(m, e), page, e);  // a fresh slot: no shadow
  page->set_atomic(PG_dirty);
  return true;
}

void delete_from_swap_cache(Machine& m, Page* page, uintptr_t shadow) {
  const SwpEntry e{page->private_once()};
  SwapInfo* si = swap_info(m, e);
  if (!si || !page->test(PG_swapcache)) return;
  // The shadow stays only while the slot is in use: swap_set_cache_bit
  // below frees a slot nobody refers to, and its shadow with it.
  si->cache[swp_offset(e)].store(shadow, std::memory_order_release);
  page->clear_atomic(PG_swapcache);
  page->set_private_once(0);
  swapcache_stat(m, page, -1);
  swap_set_cache_bit(m, e, false);
  put_page(m, page);  // the cache's reference
}

bool folio_free_swap(Machine& m, Page* page) {
  if (!page->test(PG_swapcache) || page->test(PG_writeback)) return false;
  if (swap_count(m, SwpEntry{page->private_once()}) != 0) return false;
  delete_from_swap_cache(m, page);
  return true;
}

void free_swap_and_cache(Machine& m, SwpEntry e) {
  swap_free(m, e);
  if (swap_count(m, e) != 0) return;
  Page* page = lookup_swap_cache(m, e);
  if (!page) return;
  if (!page->test_and_set(PG_locked)) {  // busy pages are left to reclaim
    if (page->mapcount.load(std::memory_order_acquire) == 0) folio_free_swap(m, page);
    unlock_page(page);
  }
  put_page(m, page);
}

uint64_t try_to_reclaim_swap_cache(Machine& m) {
  SwapState* st = swap_state_if(m);
  const std::vector<SwapInfo*>* v = st ? st->avail.load(std::memory_order_acquire) : nullptr;
  if (!v) return 0;
  uint64_t freed = 0;
  std::vector<uint64_t> only_cached;
  for (SwapInfo* si : *v) {
    only_cached.clear();
    {
      std::lock_guard<std::mutex> g(si->lock);
      for (uint64_t off = 1; off < si->max; ++off)
        if (si->swap_map[off] == SWAP_HAS_CACHE) only_cached.push_back(off);
    }
    for (uint64_t off : only_cached) {
      Page* page = lookup_swap_cache(m, swp_entry(si->type, off));
      if (!page) continue;  // on its way in or out: its owner finishes
      if (!page->test_and_set(PG_locked)) {
        if (page->mapcount.load(std::memory_order_acquire) == 0 && folio_free_swap(m, page))
          ++freed;
        unlock_page(page);
      }
      put_page(m, page);
    }
  }
  return freed;
}

namespace {

// swapin_nr_pages() (mm/swap_state.c): the readahead window. It grows with
// the readahead pages that faults found in the cache since the last read
// (hits + 2, rounded up to a power of two from 4), stays at one page when
// nothing was used and the fault is not next to the last one, never
// exceeds 2^page_cluster and never shrinks below half the last window.
uint64_t swapin_nr_pages(Machine& m, uint64_t offset) {
  const unsigned max_pages = 1u << m.page_cluster;
  if (max_pages <= 1) return 1;
  SwapState& st = swap_state(m);
  const unsigned hits = st.ra_hits.exchange(0, std::memory_order_relaxed);
  const uint64_t prev = st.ra_prev_offset.load(std::memory_order_relaxed);
  unsigned pages = hits + 2;
  if (pages == 2) {
    if (offset != prev + 1 && offset != prev - 1) pages = 1;
  } else {
    unsigned roundup = 4;
    while (roundup < pages) roundup <<= 1;
    pages = roundup;
  }
  pages = std::min(pages, max_pages);
  pages = std::max(pages, st.ra_last_pages.load(std::memory_order_relaxed) / 2);
  if (!hits) st.ra_prev_offset.store(offset, std::memory_order_relaxed);
  st.ra_last_pages.store(pages, std::memory_order_relaxed);
  return pages;
}

}  // namespace

int swap_read_slot(SwapInfo& si, uint64_t offset, void* buf) {
  const ssize_t n = pread(si.fd, buf, PAGE_SIZE, static_cast<off_t>(offset << PAGE_SHIFT));
  return n == static_cast<ssize_t>(PAGE_SIZE) ? 0 : -EIO;
}

int swap_writepage(Machine& m, Page* page) {
  const SwpEntry e{page->private_once()};
  SwapInfo* si = swap_info(m, e);
  if (!si) return -EIO;
  SwapState& st = swap_state(m);
  page->set_atomic(PG_writeback);
  page->clear_atomic(PG_dirty);
  // zswap first: a page it takes is not written to the file (zswpout).
  if (zswap_store(m, page)) {
    page->clear_atomic(PG_writeback);
    return 0;
  }
  // A group that keeps its pages off the swap file (memory.zswap.writeback
  // 0): refused by zswap, the page stays dirty in memory.
  if (!mem_cgroup_zswap_writeback_enabled(m, swap_cgroup_id(m, e))) {
    page->set_atomic(PG_dirty);
    page->clear_atomic(PG_writeback);
    return -EAGAIN;
  }
  bool ok = !(st.write_fault.enabled() && st.write_fault.should_fail(PAGE_SIZE));
  if (ok) {
    const ssize_t n = pwrite(si->fd, m.phys_window(m.page_to_pfn(page)), PAGE_SIZE,
                             static_cast<off_t>(swp_offset(e) << PAGE_SHIFT));
    ok = n == static_cast<ssize_t>(PAGE_SIZE);
  }
  if (!ok) {
    // end_swap_bio_write()'s error path: the page stays dirty in memory.
    page->set_atomic(PG_dirty);
    page->clear_atomic(PG_writeback);
    m.printk(fmt::format("Write-error on swap-device ({}:{}:{})", 0, si->type, swp_offset(e)));
    return -EIO;
  }
  page->clear_atomic(PG_writeback);
  m.count_event(VmEvent::PSWPOUT);
  m.count_event(VmEvent::PGPGOUT, PAGE_SIZE / 1024);
  return 0;
}

int swap_writeback_slot(Machine& m, SwpEntry e, const std::function<bool(void* dst)>& fill,
                        const std::function<void()>& written) {
  SwapInfo* si = swap_info(m, e);
  if (!si) return -ENOENT;
  // __read_swap_cache_async() without reclaim: the pool is being emptied
  // because memory is short, and this may run inside reclaim.
  Page* page = alloc_page(m, (GFP_HIGHUSER_MOVABLE & ~__GFP_DIRECT_RECLAIM) | __GFP_NOWARN);
  if (!page) return -ENOMEM;
  if (const int rc = swap_set_cache_bit(m, e, true); rc != 0) {
    put_page(m, page);
    return rc;
  }
  // From here the slot is ours: no load, store or free of it can run.
  lock_page(page);
  page->set_atomic(PG_swapbacked);
  const uintptr_t shadow = cache_insert(m, *si, page, e);
  char* data = m.phys_window(m.page_to_pfn(page));
  int err = 0;
  if (!fill(data)) {
    err = -ENOENT;
  } else {
    page->set_atomic(PG_uptodate);
    page->set_atomic(PG_writeback);
    SwapState& st = swap_state(m);
    bool ok = !(st.write_fault.enabled() && st.write_fault.should_fail(PAGE_SIZE));
    if (ok)
      ok = pwrite(si->fd, data, PAGE_SIZE, static_cast<off_t>(swp_offset(e) << PAGE_SHIFT)) ==
           static_cast<ssize_t>(PAGE_SIZE);
    page->clear_atomic(PG_writeback);
    if (ok) {
      written();
      m.count_event(VmEvent::PSWPOUT);
      m.count_event(VmEvent::PGPGOUT, PAGE_SIZE / 1024);
    } else {
      m.printk(fmt::format("Write-error on swap-device ({}:{}:{})", 0, si->type, swp_offset(e)));
      err = -EIO;
    }
  }
  // The page leaves the cache (a fault that found it meanwhile sees it gone
  // and looks again); the slot's shadow entry, if it had one, goes back.
  delete_from_swap_cache(m, page, shadow);
  unlock_page(page);
  put_page(m, page);
  return err;
}

Page* swapin_readahead(Machine& m, SwpEntry e, bool readahead, const SwapChargeFn& charge,
                       bool* major) {
  *major = false;
  SwapInfo* si = swap_info(m, e);
  if (!si) return nullptr;
  // The aligned window of 2^page_cluster slots around the entry
  // (swap_cluster_readahead); the target first, so its fault never waits
  // for a neighbour's read.
  const uint64_t off = swp_offset(e);
  const uint64_t win = readahead ? swapin_nr_pages(m, off) : 1;
  uint64_t start = off & ~(win - 1), end = start + win;
  if (start == 0) start = 1;
  if (end > si->max) end = si->max;
  Page* target = nullptr;
  for (unsigned pass = 0; pass < 2; ++pass) {
    for (uint64_t o = pass ? start : off; pass ? o < end : o == off; ++o) {
      if (pass && o == off) continue;
      const SwpEntry oe = swp_entry(si->type, o);
      if (!pass) {
        // The target: in the cache already (another fault, reclaim under
        // way, readahead), or read now.
        for (;;) {
          if (Page* page = lookup_swap_cache(m, oe)) {
            lock_page(page);  // a read in flight finishes first
            unlock_page(page);
            if (!page->test(PG_uptodate)) {
              put_page(m, page);
              return nullptr;
            }
            // A readahead page put to use: the next window may grow.
            if (page->test(PG_readahead) && page->test_and_clear(PG_readahead))
              swap_state(m).ra_hits.fetch_add(1, std::memory_order_relaxed);
            target = page;
            break;
          }
          Page* page = alloc_page(m, GFP_HIGHUSER_MOVABLE);
          if (!page) return nullptr;
          const int rc = swap_set_cache_bit(m, oe, true);
          if (rc == -EEXIST) {  // another thread is bringing it in
            put_page(m, page);
            std::this_thread::yield();
            continue;
          }
          if (rc == -ENOENT) {  // the slot went away: the caller looks again
            put_page(m, page);
            return nullptr;
          }
          if (!charge(page, oe, false)) {
            swap_set_cache_bit(m, oe, false);
            put_page(m, page);
            return nullptr;
          }
          lock_page(page);
          page->set_atomic(PG_swapbacked);
          const uintptr_t shadow = cache_insert(m, *si, page, oe);
          const int io = swap_read_page(m, *si, oe, page);
          if (io == 0) {
            page->set_atomic(PG_uptodate);
            note_refault(m, page, shadow);
          }
          unlock_page(page);
          lru_cache_add(m, page);
          if (io != 0) {
            delete_from_swap_cache(m, page);
            put_page(m, page);
            return nullptr;
          }
          *major = true;
          target = page;
          break;
        }
        continue;
      }
      // A neighbour: only slots in use and not cached, without reclaim.
      if (!target || !*major) return target;  // no readahead unless the target was read
      Page* page = alloc_page(m, (GFP_HIGHUSER_MOVABLE & ~__GFP_DIRECT_RECLAIM) | __GFP_NOWARN);
      if (!page) break;
      if (swap_set_cache_bit(m, oe, true) != 0) {
        put_page(m, page);
        continue;
      }
      if (!charge(page, oe, true)) {
        swap_set_cache_bit(m, oe, false);
        put_page(m, page);
        break;
      }
      lock_page(page);
      page->set_atomic(PG_swapbacked);
      page->set_atomic(PG_readahead);
      const uintptr_t shadow = cache_insert(m, *si, page, oe);
      const int io = swap_read_page(m, *si, oe, page);
      if (io == 0) {
        page->set_atomic(PG_uptodate);
        note_refault(m, page, shadow);
      }
      unlock_page(page);
      lru_cache_add(m, page);
      if (io != 0) delete_from_swap_cache(m, page);
      put_page(m, page);  // the cache and the batch keep it
    }
  }
  return target;
}

}  // namespace mmkit
