// Free-page reporting (mm/page_reporting.c): free blocks of at least
// page_reporting_order go back to the host, so a machine's footprint in the
// host follows what it uses (a guest's balloon-free way of returning memory).
//
// A free that leaves a zone with page_reporting_threshold unreported pages
// in such blocks sets Machine::page_reporting_requested (Linux schedules its
// delayed work there); page_reporting_process() is that work, run by
// whoever owns the machine's housekeeping. For each zone with enough
// free memory above its low watermark (Linux's progress guarantee: low +
// PAGE_REPORTING_CAPACITY blocks), it isolates up to a capacity of
// unreported blocks at a time, coldest first (from the tails of the lists,
// as allocations take from the heads), until half the threshold is left
// unreported, so the memory freed last, the likeliest to be reused, stays;
// it drops the zone lock, discards their RAM in the
// host, and puts them back reported (PG_reported, unless they merged with
// a block the host still holds). An allocation clears the mark
// (del_page_from_free_list), so only blocks that stayed free are skipped
// next time.
#include "page_alloc/internal.h"

namespace mmkit {

namespace {

constexpr unsigned kReportingCapacity = 32;  // PAGE_REPORTING_CAPACITY

struct Isolated {
  Page* page;
  uint64_t pfn;
  unsigned order, mt;
};

// Reported blocks a bounded pass steps over in one list before it gives
// the list up: a decay pass runs every few milliseconds, and a list may
// hold thousands of reported blocks in front of the few it is after.
constexpr unsigned kMaxSkip = 256;

// One zone, down to `keep` unreported pages: returns the pages handed back.
uint64_t report_zone(Machine& m, Zone& z, uint64_t keep, bool bounded) {
  const unsigned min_order = m.page_reporting_order;
  const uint64_t watermark = z.low_wmark() + (uint64_t{kReportingCapacity} << min_order);
  uint64_t reported = 0;
  for (;;) {
    Isolated batch[kReportingCapacity];
    unsigned n = 0;
    {
      SpinGuard g(z.lock);
      if (z.unreported_pages <= keep ||
          static_cast<uint64_t>(std::max<int64_t>(z.nr_free(), 0)) < watermark)
        break;
      uint64_t want = z.unreported_pages - keep;
      for (unsigned o = NR_PAGE_ORDERS; o-- > min_order && n < kReportingCapacity && want;) {
        for (unsigned mt = 0; mt < MIGRATE_PCPTYPES && n < kReportingCapacity && want; ++mt) {
          ListHead& list = z.free_area[o].free_list[mt];
          unsigned skipped = 0;
          for (ListHead* p = list.prev; p != &list && n < kReportingCapacity && want;) {
            Page* page = container_of(p, &Page::lru);
            p = p->prev;
            if (page->test(PG_reported)) {
              if (bounded && ++skipped > kMaxSkip) break;
              continue;
            }
            batch[n++] = {page, m.page_to_pfn(page), o, mt};
            want -= std::min(want, uint64_t{1} << o);
          }
        }
      }
      for (unsigned i = 0; i < n; ++i)
        take_free_block(batch[i].page, z, batch[i].order, batch[i].mt);
    }
    if (!n) break;
    for (unsigned i = 0; i < n; ++i) m.discard_ram(batch[i].pfn, uint64_t{1} << batch[i].order);
    SpinGuard g(z.lock);
    for (unsigned i = 0; i < n; ++i) {
      const Isolated& b = batch[i];
      // The pageblock's type now, as page_reporting_drain() reads it: while
      // the zone lock was dropped, an allocation may have claimed the
      // pageblock of a block smaller than one (move_freepages_block).
      const unsigned mt = m.get_pageblock_migratetype(b.pfn);
      __free_one_page(z, b.page, b.pfn, b.order, mt, Fpi::kReported);
      reported += uint64_t{1} << b.order;
    }
  }
  return reported;
}

}  // namespace

void page_reporting_register(Machine& m, unsigned order, uint64_t threshold) {
  m.for_each_zone([&](Zone& z) {
    SpinGuard g(z.lock);
    uint64_t unreported = 0;
    for (unsigned o = order ? order : NR_PAGE_ORDERS; o < NR_PAGE_ORDERS; ++o)
      for (ListHead& list : z.free_area[o].free_list)
        for (ListHead* p = list.next; p != &list; p = p->next)
          if (!container_of(p, &Page::lru)->test(PG_reported)) unreported += uint64_t{1} << o;
    z.unreported_pages = unreported;
    z.unreported_low = unreported;
  });
  m.page_reporting_order = order;
  m.page_reporting_threshold = threshold;
}

uint64_t page_reporting_decay(Machine& m) {
  if (!m.page_reporting_order) return 0;
  uint64_t reported = 0;
  m.for_each_zone([&](Zone& z) {
    if (!z.populated()) return;
    uint64_t keep;
    {
      SpinGuard g(z.lock);
      // What no allocation took since the last pass: the coldest that much.
      keep = z.unreported_pages - std::min(z.unreported_low, z.unreported_pages);
    }
    reported += report_zone(m, z, keep, true);
    SpinGuard g(z.lock);
    z.unreported_low = z.unreported_pages;
  });
  return reported;
}

uint64_t page_reporting_process(Machine& m, bool everything) {
  if (!m.page_reporting_order) return 0;
  m.page_reporting_requested.store(false, std::memory_order_relaxed);
  const uint64_t keep = everything ? 0 : m.page_reporting_threshold / 2;
  uint64_t reported = 0;
  m.for_each_zone([&](Zone& z) {
    if (z.populated()) reported += report_zone(m, z, keep, !everything);
  });
  return reported;
}

}  // namespace mmkit
