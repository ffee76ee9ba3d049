// alloc_pages_exact() and free_pages_exact() (mm/page_alloc.c): a run of
// exactly the pages a size needs, carved from the smallest buddy block that
// holds it, so a 20 KiB request holds 5 frames, not 8.
//
// The block is allocated without __GFP_COMP: only its first frame carries a
// reference. Linux splits it (split_page) and frees the unused frames one by
// one; mmkit frees them in the largest aligned power-of-two pieces instead,
// which the buddy allocator merges the same way, in log2(n) calls rather
// than n. free_pages_exact() gives a run back the same way.
#include <algorithm>
#include <bit>

#include "page_alloc/internal.h"

namespace mmkit {

namespace {

// Frees `n` frames from `page` in maximal pieces aligned to their size.
void free_frames(Machine& m, Page* page, uint64_t n) {
  uint64_t pfn = m.page_to_pfn(page);
  while (n) {
    unsigned order =
        std::min<unsigned>(MAX_PAGE_ORDER, static_cast<unsigned>(std::countr_zero(pfn)));
    while ((uint64_t{1} << order) > n) --order;
    Page* piece = m.pfn_to_page(pfn);
    piece->refcount.store(1, std::memory_order_relaxed);
    free_pages(m, piece, order);
    pfn += uint64_t{1} << order;
    n -= uint64_t{1} << order;
  }
}

}  // namespace

Page* alloc_pages_exact_page(Machine& m, uint64_t nr_pages, gfp_t gfp) {
  if (nr_pages == 0 || nr_pages > MAX_ORDER_NR_PAGES || (gfp & __GFP_COMP)) return nullptr;
  const unsigned order = static_cast<unsigned>(std::bit_width(nr_pages - 1));
  Page* page = alloc_pages(m, gfp, order);
  if (page) free_frames(m, page + nr_pages, (uint64_t{1} << order) - nr_pages);
  return page;
}

void free_pages_exact_page(Machine& m, Page* page, uint64_t nr_pages) {
  free_frames(m, page, nr_pages);
}

void* alloc_pages_exact(Machine& m, size_t size, gfp_t gfp) {
  Page* page = alloc_pages_exact_page(m, (size + PAGE_SIZE - 1) >> PAGE_SHIFT, gfp);
  return page ? m.page_address(page) : nullptr;
}

void free_pages_exact(Machine& m, void* virt, size_t size) {
  if (virt) free_pages_exact_page(m, m.virt_to_page(virt), (size + PAGE_SIZE - 1) >> PAGE_SHIFT);
}

}  // namespace mmkit
