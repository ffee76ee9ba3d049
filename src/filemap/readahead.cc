// File readahead (mm/readahead.c): the on-demand window that starts small,
// grows with each sequential hit up to ra_pages, and is pushed forward
// asynchronously when a read reaches the page marked PG_readahead; and the
// reading of a window's missing pages into the page cache with one host
// preadv per run of consecutive pages.
//
// Not modelled: the block device's io_pages, and large folios.
#include <sys/uio.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <span>

#include "filemap/filemap_internal.h"
#include "memcg/lru.h"
#include "memcg/workingset.h"
#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

// get_init_ra_size(): the first window for a read of `size` pages.
uint64_t init_ra_size(uint64_t size, uint64_t max) {
  const uint64_t n = std::bit_ceil(std::max<uint64_t>(size, 1));
  if (n <= max / 32) return n * 4;
  if (n <= max / 4) return n * 2;
  return max;
}

// get_next_ra_size(): the window after one of `cur` pages.
uint64_t next_ra_size(uint64_t cur, uint64_t max) {
  if (cur < max / 16) return 4 * cur;
  if (cur <= max / 2) return 2 * cur;
  return max;
}

}  // namespace

unsigned ondemand_readahead(FileRaState& ra, uint64_t index, unsigned req, bool marker,
                            uint64_t* start, AddressSpace* as) {
  const uint64_t max = ra.ra_pages;
  uint64_t size = ra.size, async = ra.async_size;
  bool initial = false;
  if (index == 0) {
    initial = true;  // start of file
  } else if (index == ra.start + ra.size - ra.async_size || index == ra.start + ra.size) {
    // The expected index: sequential, push the window forward and ramp up.
    ra.start += ra.size;
    size = next_ra_size(ra.size, max);
    async = size;
  } else if (marker) {
    // A marker without valid state (interleaved streams): Linux asks the
    // cache where the next hole is; the window after the marker's is taken
    // as starting right after this read.
    ra.start = index + 1;
    size = next_ra_size(std::min<uint64_t>(ra.size + req, max), max);
    async = size;
  } else if (req > max) {
    initial = true;  // an oversize read
  } else {
    const uint64_t prev_index =
        ra.prev_pos == ~uint64_t{0} ? ~uint64_t{0} : ra.prev_pos >> PAGE_SHIFT;
    // try_context_readahead(): the pages cached just before this one are
    // the trace a sequential stream leaves; more of them than the request
    // make a window of their length plus the request (doubled when they
    // reach back to the file's start), marked on its first page.
    uint64_t history = 0;
    const bool sequential = prev_index != ~uint64_t{0} && index - prev_index <= 1;
    if (!sequential && as) history = index - 1 - page_cache_prev_miss(*as, index - 1, max);
    if (sequential) {
      initial = true;  // a sequential cache miss
    } else if (history > req) {
      ra.start = index;
      size = std::min((history >= index ? 2 * history : history) + req, max);
      async = 1;
    } else {
      // A standalone random read: just the request, the state untouched.
      *start = index;
      return req;
    }
  }
  if (initial) {
    ra.start = index;
    size = init_ra_size(req, max);
    async = size > req ? size - req : size;
  }
  // Would this read hit the marker it is about to set? Then merge the next
  // window into this one now.
  if (index == ra.start && size == async) {
    const uint64_t add = next_ra_size(size, max);
    if (size + add <= max) {
      async = add;
      size += add;
    } else {
      size = max;
      async = max >> 1;
    }
  }
  ra.size = static_cast<unsigned>(size);
  ra.async_size = static_cast<unsigned>(async);
  *start = ra.start;
  return ra.size;
}

// page_cache_ra_unbounded(): brings [start, start + nr) into the cache,
// clipped to i_size, skipping cached pages; the page `nr - lookahead` into
// the window gets PG_readahead. Pages are charged to `cg` and read with one
// host preadv per run of new pages.
void do_page_cache_ra(Machine& m, Inode& inode, uint64_t start, uint64_t nr, uint64_t lookahead,
                      MemCgroup* cg) {
  const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
  if (!isize) return;
  const uint64_t end_index = (isize - 1) >> PAGE_SHIFT;
  if (start > end_index) return;
  nr = std::min(nr, end_index - start + 1);
  const uint64_t mark = nr > lookahead ? start + nr - lookahead : ~uint64_t{0};
  // A run of new pages and their frames, read by one preadv; a run longer
  // than the arrays is read in pieces.
  constexpr size_t kMaxRun = 64;
  Page* run[kMaxRun];
  iovec iov[kMaxRun];
  size_t nrun = 0;
  auto submit = [&] {
    if (!nrun) return;
    const off_t off = static_cast<off_t>(run[0]->index << PAGE_SHIFT);
    ssize_t got = preadv(inode.host_fd, iov, static_cast<int>(nrun), off);
    if (got >= 0) {
      m.count_event(VmEvent::PGPGIN, static_cast<int64_t>(nrun * (PAGE_SIZE / 1024)));
      for (Page* page : std::span(run, nrun)) {
        // Past the host file's end the page is zeros (a hole, or data not
        // yet written back is impossible here: the page was not cached).
        const uint64_t have =
            got >= static_cast<ssize_t>(PAGE_SIZE) ? PAGE_SIZE : static_cast<uint64_t>(got);
        if (have < PAGE_SIZE)
          std::fill(m.phys_window(m.page_to_pfn(page)) + have,
                    m.phys_window(m.page_to_pfn(page)) + PAGE_SIZE, 0);
        got -= static_cast<ssize_t>(have);
        page->set_atomic(PG_uptodate);
      }
    }
    // A failed read leaves the pages not uptodate: a reader that needs one
    // reads it alone and sees the error.
    for (Page* page : std::span(run, nrun)) {
      unlock_page(page);
      put_page(m, page);
    }
    nrun = 0;
  };
  AddressSpace& as = inode.i_data;
  for (uint64_t index = start; index < start + nr; ++index) {
    // A look at the slot without a reference, as Linux's xa_load here: a
    // page that arrives after it makes add_to_page_cache() fail instead.
    bool cached;
    {
      SpinGuard g(as.i_pages_lock);
      const uintptr_t v = as.i_pages.load(index);
      cached = v && !is_shadow(v);
    }
    if (cached) {
      submit();
      continue;
    }
    Page* page = alloc_page(m, GFP_HIGHUSER_MOVABLE | __GFP_NORETRY | __GFP_NOWARN);
    if (!page) break;
    page->set_atomic(PG_locked);
    if (const int err = add_to_page_cache(m, inode.i_data, page, index, cg, true)) {
      page->clear_atomic(PG_locked);
      put_page(m, page);
      submit();
      if (err == -ENOMEM) break;  // the group is full: no more readahead
      continue;
    }
    if (index == mark) page->set_atomic(PG_readahead);
    if (nrun && (run[nrun - 1]->index + 1 != index || nrun == kMaxRun)) submit();
    run[nrun] = page;
    iov[nrun++] = {m.phys_window(m.page_to_pfn(page)), PAGE_SIZE};
  }
  submit();
}

}  // namespace mmkit
