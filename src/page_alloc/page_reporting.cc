// Free-page reporting (mm/page_reporting.c): free blocks of at least
// page_reporting_order go back to the host, so a machine's footprint in the
// host follows what it uses (a guest's balloon-free way of returning memory).
//
// A free of such a block sets Machine::page_reporting_requested (Linux
// schedules its delayed work there); page_reporting_process() is that work,
// run by whoever owns the machine's housekeeping. For each zone with enough
// free memory above its low watermark (Linux's progress guarantee: low +
// PAGE_REPORTING_CAPACITY blocks), it isolates up to a capacity of
// unreported blocks at a time, drops the zone lock, discards their RAM in the
// host, and puts them back marked PG_reported. An allocation clears the mark
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

// One zone: returns the pages handed back.
uint64_t report_zone(Machine& m, Zone& z) {
  const unsigned min_order = m.page_reporting_order;
  const uint64_t watermark = z.low_wmark() + (uint64_t{kReportingCapacity} << min_order);
  uint64_t reported = 0;
  for (;;) {
    Isolated batch[kReportingCapacity];
    unsigned n = 0;
    {
      SpinGuard g(z.lock);
      if (static_cast<uint64_t>(std::max<int64_t>(z.nr_free(), 0)) < watermark) break;
      for (unsigned o = NR_PAGE_ORDERS; o-- > min_order && n < kReportingCapacity;) {
        for (unsigned mt = 0; mt < MIGRATE_PCPTYPES && n < kReportingCapacity; ++mt) {
          ListHead& list = z.free_area[o].free_list[mt];
          for (ListHead* p = list.next; p != &list && n < kReportingCapacity;) {
            Page* page = container_of(p, &Page::lru);
            p = p->next;
            if (page->test(PG_reported)) continue;
            batch[n++] = {page, m.page_to_pfn(page), o, mt};
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
      __free_one_page(z, b.page, b.pfn, b.order, b.mt, Fpi::kReported);
      // Merged into a bigger block: that block is reported again later.
      if (b.page->test(PG_buddy) && buddy_order(b.page) == b.order) b.page->set(PG_reported);
      reported += uint64_t{1} << b.order;
    }
  }
  return reported;
}

}  // namespace

uint64_t page_reporting_process(Machine& m) {
  if (!m.page_reporting_order) return 0;
  m.page_reporting_requested.store(false, std::memory_order_relaxed);
  uint64_t reported = 0;
  m.for_each_zone([&](Zone& z) {
    if (z.populated()) reported += report_zone(m, z);
  });
  return reported;
}

}  // namespace mmkit
