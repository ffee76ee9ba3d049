// check(): proves the page allocator's invariants over a quiesced machine.
//
// For every populated zone:
//   each free block of order k on free_list[mt]: inside the zone, pfn aligned
//     to 2^k, PG_buddy with private == k, refcount 0, not reserved, and every
//     pageblock it covers is of type mt;
//   no free block has a free buddy of the same order it could have merged with;
//   no frame is in two free blocks, or both free and on a pcp list;
//   free_area[k].nr_free == blocks on its lists; zone.free_pages == sum 2^k;
//   zone.unreported_pages == the pages of free blocks of at least the
//     reporting order without PG_reported;
//   each pcp list holds blocks of its order (aligned, refcount 0, not
//     PG_buddy) and pcp.count == their pages;
//   no frame with a reference is free, and no free frame is reserved.
// Lists are walked with a step bound, so a cycle is reported, not looped on.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "page_alloc/internal.h"

namespace mmkit {

namespace {

std::string check_zone(Machine& m, Zone& z) {
  SpinGuard g(z.lock);
  // Frames past the node's online end (memory hotplug) have struct pages
  // nobody wrote: no free block may lie there, and the sweeps below stop
  // at it, so a machine whose memory is mostly offline is checked without
  // touching the rest of mem_map.
  const uint64_t start = z.zone_start_pfn;
  const uint64_t online_end = m.online_end_pfn(z);
  const uint64_t span = online_end > start ? online_end - start : 0;
  std::vector<uint8_t> free_bits(span, 0);
  const std::string where = fmt::format("node {} zone {}", z.node, z.name);
  int64_t free_total = 0;
  const unsigned ro = m.page_reporting_order;
  uint64_t unreported = 0;
  auto mark = [&](uint64_t pfn, uint64_t n, const char* what) -> std::string {
    for (uint64_t i = 0; i < n; ++i) {
      if (free_bits[pfn - start + i])
        return fmt::format("{}: pfn {:#x} is in two free places ({})", where, pfn + i, what);
      free_bits[pfn - start + i] = 1;
    }
    return "";
  };

  for (unsigned o = 0; o < NR_PAGE_ORDERS; ++o) {
    uint64_t blocks = 0;
    for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt) {
      ListHead& head = z.free_area[o].free_list[mt];
      uint64_t steps = 0;
      for (ListHead* p = head.next; p != &head; p = p->next) {
        if (++steps > span) return fmt::format("{}: free_list[{}][{}] has a cycle", where, o, mt);
        Page* page = container_of(p, &Page::lru);
        const uint64_t pfn = m.page_to_pfn(page);
        if (pfn < start || pfn + (1ull << o) > start + span)
          return fmt::format("{}: free block pfn {:#x} order {} outside the zone's online part",
                             where, pfn, o);
        if (pfn & ((1ull << o) - 1))
          return fmt::format("{}: free block pfn {:#x} not aligned to order {}", where, pfn, o);
        if (!page->test(PG_buddy) || buddy_order(page) != o)
          return fmt::format("{}: free block pfn {:#x} on order-{} list has PG_buddy={} order={}",
                             where, pfn, o, page->test(PG_buddy), buddy_order(page));
        if (page->ref_count() != 0 || page->test(PG_reserved))
          return fmt::format("{}: free block pfn {:#x} has refcount {} reserved {}", where, pfn,
                             page->ref_count(), page->test(PG_reserved));
        for (uint64_t b = pfn; b < pfn + (1ull << o); b += m.pageblock_nr_pages())
          if (m.get_pageblock_migratetype(b) != mt)
            return fmt::format("{}: free block pfn {:#x} on the {} list lies in a {} pageblock",
                               where, pfn, kMigrateTypeNames[mt],
                               kMigrateTypeNames[m.get_pageblock_migratetype(b)]);
        if (o < MAX_PAGE_ORDER) {
          const uint64_t bp = pfn ^ (1ull << o);
          Page* buddy = m.pfn_to_page(bp);
          const bool mergeable = o < m.pageblock_order() || m.get_pageblock_migratetype(bp) == mt ||
                                 (migratetype_is_mergeable(mt) &&
                                  migratetype_is_mergeable(m.get_pageblock_migratetype(bp)));
          if (z.contains(bp) && buddy->test(PG_buddy) && buddy_order(buddy) == o && mergeable)
            return fmt::format("{}: free block pfn {:#x} and its buddy {:#x} (order {}) both free",
                               where, pfn, bp, o);
        }
        if (auto e = mark(pfn, 1ull << o, "buddy"); !e.empty()) return e;
        if (ro && o >= ro && !page->test(PG_reported)) unreported += 1ull << o;
        ++blocks;
        free_total += int64_t{1} << o;
      }
    }
    uint32_t mask = 0;
    for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt)
      mask |= uint32_t{!z.free_area[o].free_list[mt].empty()} << mt;
    if (mask != z.free_area[o].nonempty.load())
      return fmt::format("{}: free_area[{}].nonempty is {:#x} but the lists say {:#x}", where, o,
                         z.free_area[o].nonempty.load(), mask);
    if (blocks != z.free_area[o].nr_free)
      return fmt::format("{}: free_area[{}].nr_free is {} but the lists hold {}", where, o,
                         z.free_area[o].nr_free, blocks);
  }
  if (free_total != z.nr_free())
    return fmt::format("{}: free_pages is {} but the lists hold {}", where, z.nr_free(),
                       free_total);
  if (unreported != z.unreported_pages)
    return fmt::format("{}: unreported_pages is {} but the lists hold {}", where,
                       z.unreported_pages, unreported);

  for (unsigned c = 0; c < m.nr_cpus(); ++c) {
    PerCpuPages& pcp = z.pcp[c];
    int pages = 0;
    for (unsigned pi = 0; pi < NR_PCP_LISTS; ++pi) {
      const unsigned o = pindex_to_order(pi);
      uint64_t steps = 0;
      for (ListHead* p = pcp.lists[pi].next; p != &pcp.lists[pi]; p = p->next) {
        if (++steps > span) return fmt::format("{}: cpu {} pcp list {} has a cycle", where, c, pi);
        Page* page = container_of(p, &Page::lru);
        const uint64_t pfn = m.page_to_pfn(page);
        if (!z.contains(pfn) || (pfn & ((1ull << o) - 1)))
          return fmt::format("{}: cpu {} pcp page pfn {:#x} misplaced for order {}", where, c, pfn,
                             o);
        if (page->test(PG_buddy) || page->ref_count() != 0)
          return fmt::format("{}: cpu {} pcp page pfn {:#x} has PG_buddy={} refcount {}", where, c,
                             pfn, page->test(PG_buddy), page->ref_count());
        if (auto e = mark(pfn, 1ull << o, "pcp"); !e.empty()) return e;
        pages += 1 << o;
      }
    }
    if (pages != pcp.count.load(std::memory_order_relaxed) && !m.cpu(static_cast<int>(c)).torn)
      return fmt::format("{}: cpu {} pcp count is {} but its lists hold {}", where, c,
                         pcp.count.load(), pages);
  }

  // Frames in use must not be free; reserved frames must not be free (marked above).
  for (uint64_t i = 0; i < span; ++i) {
    Page* page = m.pfn_to_page(start + i);
    if (free_bits[i] && page->test(PG_reserved))
      return fmt::format("{}: reserved pfn {:#x} is free", where, start + i);
    if (!free_bits[i] && page->test(PG_buddy))
      return fmt::format("{}: pfn {:#x} has PG_buddy but is on no free list", where, start + i);
    if (free_bits[i] && page->ref_count() != 0)
      return fmt::format("{}: pfn {:#x} is free with refcount {}", where, start + i,
                         page->ref_count());
  }
  return "";
}

}  // namespace

std::string check(Machine& m) {
  std::string err;
  m.for_each_zone([&](Zone& z) {
    if (err.empty() && z.populated()) err = check_zone(m, z);
  });
  return err;
}

void walk_free_blocks(Machine& m,
                      const std::function<void(const Zone&, uint64_t, unsigned, unsigned)>& fn) {
  m.for_each_zone([&](Zone& z) {
    if (!z.populated()) return;
    SpinGuard g(z.lock);
    for (unsigned o = 0; o < NR_PAGE_ORDERS; ++o)
      for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt)
        for (ListHead* p = z.free_area[o].free_list[mt].next; p != &z.free_area[o].free_list[mt];
             p = p->next)
          fn(z, m.page_to_pfn(container_of(p, &Page::lru)), o, mt);
  });
}

}  // namespace mmkit
