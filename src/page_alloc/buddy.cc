// The buddy lists: split (expand), merge (__free_one_page), smallest-fit
// removal, migrate-type fallback with pageblock claiming, and the high-atomic
// reserve. Follows mm/page_alloc.c as of Linux 6.10+, where a free block is
// always on the list of its pageblock's migrate type.
//
// Invariants (checked by check.cc):
//   a free block of order k starts at a pfn aligned to 2^k, has PG_buddy and
//   private == k, and sits on free_area[k].free_list[mt] with mt the type of
//   its pageblock; its buddy (pfn ^ 2^k) is not a free block of order k
//   unless their pageblocks may not merge; zone.free_pages == sum of 2^k.
// Locking: everything here runs under zone.lock.
#include <algorithm>

#include "base/bitops.h"
#include "page_alloc/internal.h"

namespace mmkit {

namespace {

// Fallback order for each migrate type (fallbacks[] in mm/page_alloc.c).
constexpr unsigned kFallbacks[MIGRATE_PCPTYPES][2] = {
    {MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE},    // UNMOVABLE
    {MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE},  // MOVABLE
    {MIGRATE_UNMOVABLE, MIGRATE_MOVABLE},      // RECLAIMABLE
};

Machine& mach(Zone& z) {
  return *z.machine;
}

void add_free_pages(Zone& z, int64_t n) {
  z.free_pages.store(z.free_pages.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void set_buddy_order(Page* p, unsigned order) {
  p->private_ = order;
  p->set(PG_buddy);
}

// Keeps FreeArea::nonempty in step with the lists.
void update_nonempty(FreeArea& area) {
  uint32_t mask = 0;
  for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt)
    mask |= uint32_t{!area.free_list[mt].empty()} << mt;
  area.nonempty.store(mask, std::memory_order_relaxed);
}

// Free-page reporting: PG_reported marks a free block the host holds none
// of; zone.unreported_pages counts the blocks of at least the reporting
// order without it (what a report would hand back).
bool reporting_tracks(const Zone& z, unsigned order) {
  const unsigned ro = z.machine->page_reporting_order;
  return ro && order >= ro;
}

// The list operations below leave zone.free_pages to their callers, which
// add up a whole split or merge and account it once (the sum is the same
// under zone.lock, where nobody else writes it). `reported`: the host holds
// none of the block's memory.
void add_to_free_list(Page* p, Zone& z, unsigned order, unsigned mt, bool tail, bool reported) {
  if (reported)
    p->set(PG_reported);
  else if (reporting_tracks(z, order))
    z.unreported_pages += uint64_t{1} << order;
  FreeArea& area = z.free_area[order];
  ListHead& list = area.free_list[mt];
  if (list.empty())
    area.nonempty.store(area.nonempty.load(std::memory_order_relaxed) | 1u << mt,
                        std::memory_order_relaxed);
  if (tail)
    list.add_tail(&p->lru);
  else
    list.add(&p->lru);
  area.nr_free++;
}

// Unlinks a free block of `order` from free_list[mt] (its pageblock's type);
// returns whether it was reported.
bool del_page_from_free_list(Page* p, Zone& z, unsigned order, unsigned mt) {
  FreeArea& area = z.free_area[order];
  ListHead* next = p->lru.next;
  ListHead* prev = p->lru.prev;
  if (next == prev)  // the only entry: both point at the list head
    area.nonempty.store(area.nonempty.load(std::memory_order_relaxed) & ~(1u << mt),
                        std::memory_order_relaxed);
  next->prev = prev;
  prev->next = next;
  // Leaving the free lists also ends a free-page report (__ClearPageReported).
  const uint64_t flags = p->flags.load(std::memory_order_relaxed);
  p->flags.store(flags & ~(uint64_t{1} << PG_buddy | uint64_t{1} << PG_reported),
                 std::memory_order_relaxed);
  p->private_ = 0;
  area.nr_free--;
  const bool reported = flags >> PG_reported & 1;
  if (!reported && reporting_tracks(z, order)) z.unreported_pages -= uint64_t{1} << order;
  return reported;
}

void move_to_free_list(Page* p, Zone& z, unsigned order, unsigned new_mt) {
  ListHead::del(&p->lru);
  z.free_area[order].free_list[new_mt].add_tail(&p->lru);
  update_nonempty(z.free_area[order]);
}

Page* first_free(Zone& z, unsigned order, unsigned mt) {
  ListHead& l = z.free_area[order].free_list[mt];
  return l.empty() ? nullptr : container_of(l.next, &Page::lru);
}

void change_pageblock_range(Machine& m, uint64_t pfn, unsigned order, unsigned mt) {
  const uint64_t n = std::max<uint64_t>(uint64_t{1} << order, m.pageblock_nr_pages());
  for (uint64_t i = 0; i < n; i += m.pageblock_nr_pages()) m.set_pageblock_migratetype(pfn + i, mt);
}

// page_is_buddy(): the page at `buddy_pfn` heads a free block of `order` in the same zone.
bool page_is_buddy(Zone& z, Page* buddy, uint64_t buddy_pfn, unsigned order) {
  return buddy->test(PG_buddy) && buddy_order(buddy) == order && mach(z).pfn_zone(buddy_pfn) == &z;
}

// expand(): split a block of order `high` down to `low`, freeing the upper
// halves. The halves of a reported block stay reported (the host still holds
// none of them), so allocating a page does not make megabytes look unreported.
void expand(Zone& z, Page* page, unsigned low, unsigned high, unsigned mt, bool reported) {
  uint64_t size = uint64_t{1} << high;
  add_free_pages(z, static_cast<int64_t>(size - (uint64_t{1} << low)));
  while (high > low) {
    --high;
    size >>= 1;
    set_buddy_order(&page[size], high);
    add_to_free_list(&page[size], z, high, mt, false, reported);
  }
  z.unreported_low = std::min(z.unreported_low, z.unreported_pages);
}

// buddy_merge_likely(): the block about to be listed would merge with its
// buddy one order up if that buddy came free; then list it at the tail so it
// is less likely to be allocated before that happens.
bool buddy_merge_likely(Zone& z, uint64_t pfn, unsigned order) {
  if (order >= MAX_PAGE_ORDER - 1) return false;
  const uint64_t higher = pfn & ~(uint64_t{1} << order);
  const uint64_t higher_buddy = higher ^ (uint64_t{1} << (order + 1));
  return page_is_buddy(z, mach(z).pfn_to_page(higher_buddy), higher_buddy, order + 1);
}

// Scans a pageblock: free pages in it and allocated movable ones.
// Returns false when the block is not wholly inside the zone.
bool prep_move_freepages_block(Zone& z, uint64_t pfn, uint64_t* start, int* free, int* movable) {
  Machine& m = mach(z);
  const uint64_t s = align_down(pfn, m.pageblock_nr_pages()), e = s + m.pageblock_nr_pages();
  if (s < z.zone_start_pfn || e > z.end_pfn()) return false;
  *start = s;
  *free = *movable = 0;
  for (uint64_t p = s; p < e;) {
    Page* page = m.pfn_to_page(p);
    if (page->test(PG_buddy)) {
      const unsigned o = buddy_order(page);
      *free += 1 << o;
      p += uint64_t{1} << o;
      continue;
    }
    if (page->test(PG_lru)) ++*movable;
    ++p;
  }
  return true;
}

// __move_freepages_block(): every free block in the pageblock changes list,
// and the pageblock changes type. Returns the pages moved.
int move_freepages_block(Zone& z, uint64_t start, unsigned new_mt) {
  Machine& m = mach(z);
  int moved = 0;
  for (uint64_t p = start, e = start + m.pageblock_nr_pages(); p < e;) {
    Page* page = m.pfn_to_page(p);
    if (!page->test(PG_buddy)) {
      ++p;
      continue;
    }
    const unsigned o = buddy_order(page);
    move_to_free_list(page, z, o, new_mt);
    moved += 1 << o;
    p += uint64_t{1} << o;
  }
  m.set_pageblock_migratetype(start, new_mt);
  return moved;
}

// can_steal_fallback(): may an allocation of `start_mt` claim a whole block?
bool can_steal_fallback(Machine& m, unsigned order, unsigned start_mt) {
  return order >= m.pageblock_order() / 2 || start_mt == MIGRATE_RECLAIMABLE ||
         start_mt == MIGRATE_UNMOVABLE || !m.mobility_grouping;
}

int find_suitable_fallback(Zone& z, unsigned order, unsigned mt, bool* can_steal) {
  if (z.free_area[order].nr_free == 0) return -1;
  *can_steal = false;
  for (unsigned fb : kFallbacks[mt]) {
    if (z.free_area[order].free_list[fb].empty()) continue;
    *can_steal = can_steal_fallback(mach(z), order, mt);
    return static_cast<int>(fb);
  }
  return -1;
}

// steal_suitable_fallback(): take `page` (order `current`, on the list of
// `block_mt`) for an allocation of `order` and `start_mt`; claim its whole
// pageblock when enough of it is free or compatible.
Page* steal_suitable_fallback(Zone& z, Page* page, unsigned current, unsigned order,
                              unsigned start_mt, bool whole_block) {
  Machine& m = mach(z);
  const uint64_t pfn = m.page_to_pfn(page);
  const unsigned block_mt = m.get_pageblock_migratetype(pfn);
  if (block_mt == MIGRATE_HIGHATOMIC || !whole_block) {
    const bool reported = take_free_block(page, z, current, block_mt);
    expand(z, page, order, current, block_mt, reported);
    return page;
  }
  if (current >= m.pageblock_order()) {  // take ownership of whole blocks
    const bool reported = take_free_block(page, z, current, block_mt);
    change_pageblock_range(m, pfn, current, start_mt);
    expand(z, page, order, current, start_mt, reported);
    return page;
  }
  uint64_t start;
  int free, movable;
  if (prep_move_freepages_block(z, pfn, &start, &free, &movable)) {
    // Pages compatible with the request: for movable ones the movable pages
    // found; for the others, the non-movable pages of a movable block.
    int alike = 0;
    if (start_mt == MIGRATE_MOVABLE)
      alike = movable;
    else if (block_mt == MIGRATE_MOVABLE)
      alike = static_cast<int>(m.pageblock_nr_pages()) - (free + movable);
    if (free + alike >= (1 << (m.pageblock_order() - 1)) || !m.mobility_grouping) {
      move_freepages_block(z, start, start_mt);
      return __rmqueue_smallest(z, order, start_mt);
    }
  }
  const bool reported = take_free_block(page, z, current, block_mt);
  expand(z, page, order, current, block_mt, reported);
  return page;
}

// __rmqueue_fallback(): the largest block of a fallback type, or, for a
// movable request that may not claim, the smallest (less fragmentation).
Page* __rmqueue_fallback(Zone& z, unsigned order, unsigned start_mt) {
  bool can_steal = false;
  int fb = -1;
  int current = MAX_PAGE_ORDER;
  for (; current >= static_cast<int>(order); --current) {
    fb = find_suitable_fallback(z, current, start_mt, &can_steal);
    if (fb == -1) continue;
    if (!can_steal && start_mt == MIGRATE_MOVABLE && current > static_cast<int>(order)) {
      for (current = order; current <= static_cast<int>(MAX_PAGE_ORDER); ++current) {
        fb = find_suitable_fallback(z, current, start_mt, &can_steal);
        if (fb != -1) break;
      }
    }
    break;
  }
  if (fb == -1) return nullptr;
  Page* page = first_free(z, current, fb);
  return steal_suitable_fallback(z, page, current, order, start_mt, can_steal);
}

}  // namespace

bool take_free_block(Page* p, Zone& z, unsigned order, unsigned mt) {
  const bool reported = del_page_from_free_list(p, z, order, mt);
  add_free_pages(z, -(int64_t{1} << order));
  return reported;
}

void __free_one_page(Zone& z, Page* page, uint64_t pfn, unsigned order, unsigned mt, Fpi fpi) {
  Machine& m = mach(z);
  // Merging leaves the zone's free pages up by exactly the block freed.
  add_free_pages(z, int64_t{1} << order);
  const unsigned pb_order = m.pageblock_order();
  // The merged block is reported when every piece of it was.
  bool reported = fpi == Fpi::kReported;
  while (order < MAX_PAGE_ORDER) {
    const uint64_t buddy_pfn = pfn ^ (uint64_t{1} << order);
    Page* buddy = page + (static_cast<int64_t>(buddy_pfn) - static_cast<int64_t>(pfn));
    unsigned buddy_mt = mt;
    if (order < pb_order) {
      // Below pageblock order the buddy shares the pageblock: same zone,
      // same migrate type (page_is_buddy() without the zone lookup).
      if (!buddy->test(PG_buddy) || buddy_order(buddy) != order) break;
    } else {
      if (!page_is_buddy(z, buddy, buddy_pfn, order)) break;
      // Blocks without fallbacks (highatomic, isolate) merge only with their own kind.
      buddy_mt = m.get_pageblock_migratetype(buddy_pfn);
      if (buddy_mt != mt && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(buddy_mt)))
        break;
      if (buddy_mt != mt) change_pageblock_range(m, buddy_pfn, order, mt);
    }
    reported &= del_page_from_free_list(buddy, z, order, buddy_mt);
    const uint64_t combined = buddy_pfn & pfn;
    page += static_cast<int64_t>(combined) - static_cast<int64_t>(pfn);
    pfn = combined;
    ++order;
  }
  set_buddy_order(page, order);
  const bool tail = fpi != Fpi::kNone || buddy_merge_likely(z, pfn, order);
  add_to_free_list(page, z, order, mt, tail, reported);
  // page_reporting_notify_free(): enough memory in blocks big enough to hand
  // back. Linux delays its report by two seconds instead; a threshold keeps
  // a program that frees and reallocates the same megabytes from handing
  // them back and faulting them in again, with no timer.
  if (!reported && reporting_tracks(z, order) && z.unreported_pages >= m.page_reporting_threshold)
    m.page_reporting_requested.store(true, std::memory_order_relaxed);
}

Page* __rmqueue_smallest(Zone& z, unsigned order, unsigned mt) {
  for (unsigned current = order; current < NR_PAGE_ORDERS; ++current) {
    Page* page = first_free(z, current, mt);
    if (!page) continue;
    const bool reported = take_free_block(page, z, current, mt);
    expand(z, page, order, current, mt, reported);
    return page;
  }
  return nullptr;
}

Page* __rmqueue(Zone& z, unsigned order, unsigned mt, unsigned alloc_flags) {
  if (Page* page = __rmqueue_smallest(z, order, mt)) return page;
  return __rmqueue_fallback(z, order, mt);
}

int rmqueue_bulk(Zone& z, unsigned order, int count, ListHead* list, unsigned mt,
                 unsigned alloc_flags) {
  SpinGuard g(z.lock);
  int i = 0;
  for (; i < count; ++i) {
    Page* page = __rmqueue(z, order, mt, alloc_flags);
    if (!page) break;
    list->add_tail(&page->lru);
  }
  return i;
}

Page* rmqueue_buddy(Zone& z, CpuState* cpu, unsigned order, unsigned mt, unsigned alloc_flags) {
  SpinGuard g(z.lock);
  Page* page = nullptr;
  if (alloc_flags & ALLOC_HIGHATOMIC) page = __rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC);
  if (!page) {
    page = __rmqueue(z, order, mt, alloc_flags);
    // Failing an atomic (or OOM) allocation now is worse than failing a
    // high-order atomic one later: let it into the high-atomic reserve.
    if (!page && (alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK)))
      page = __rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC);
  }
  if (page) {
    const unsigned ev = static_cast<unsigned>(VmEvent::PGALLOC_DMA) + static_cast<unsigned>(z.kind);
    (cpu ? cpu->events[ev] : z.locked_events[ev]).add(int64_t{1} << order);
  }
  return page;
}

void free_one_page(Zone& z, Page* page, uint64_t pfn, unsigned order, Fpi fpi) {
  SpinGuard g(z.lock);
  __free_one_page(z, page, pfn, order, mach(z).get_pageblock_migratetype(pfn), fpi);
}

void free_one_page_counted(Zone& z, CpuState* cpu, Page* page, uint64_t pfn, unsigned order) {
  const unsigned ev = static_cast<unsigned>(VmEvent::PGFREE);
  SpinGuard g(z.lock);
  (cpu ? cpu->events[ev] : z.locked_events[ev]).add(int64_t{1} << order);
  __free_one_page(z, page, pfn, order, mach(z).get_pageblock_migratetype(pfn), Fpi::kNone);
}

// reserve_highatomic_pageblock(): a high-order atomic allocation succeeded;
// set its pageblock aside for such allocations, up to ~1% of the zone.
void reserve_highatomic_pageblock(Zone& z, Page* page, unsigned order) {
  Machine& m = mach(z);
  const uint64_t max_managed = align_up(z.managed() / 100, m.pageblock_nr_pages());
  SpinGuard g(z.lock);
  if (z.nr_reserved_highatomic >= max_managed) return;
  const uint64_t pfn = m.page_to_pfn(page);
  const unsigned mt = m.get_pageblock_migratetype(pfn);
  if (!migratetype_is_mergeable(mt)) return;
  if (order < m.pageblock_order()) {
    uint64_t start;
    int free, movable;
    if (!prep_move_freepages_block(z, pfn, &start, &free, &movable)) return;
    move_freepages_block(z, start, MIGRATE_HIGHATOMIC);
    z.nr_reserved_highatomic += m.pageblock_nr_pages();
  } else {
    change_pageblock_range(m, pfn, order, MIGRATE_HIGHATOMIC);
    z.nr_reserved_highatomic += uint64_t{1} << order;
  }
  pcp_class_update(m, &z);
}

// unreserve_highatomic_pageblock(): under memory pressure, give a reserved
// block back to `mt` (keep one block per zone unless `force`).
bool unreserve_highatomic_pageblock(Machine& m, Zone* const* zonelist, unsigned highest,
                                    unsigned mt, bool force) {
  for (Zone* const* zp = zonelist; *zp; ++zp) {
    Zone& z = **zp;
    if (z.idx > highest) continue;
    if (!force && z.nr_reserved_highatomic <= m.pageblock_nr_pages()) continue;
    SpinGuard g(z.lock);
    for (unsigned order = 0; order < NR_PAGE_ORDERS; ++order) {
      Page* page = first_free(z, order, MIGRATE_HIGHATOMIC);
      if (!page) continue;
      const uint64_t pfn = m.page_to_pfn(page);
      const uint64_t size =
          std::min<uint64_t>(std::max<uint64_t>(m.pageblock_nr_pages(), uint64_t{1} << order),
                             z.nr_reserved_highatomic);
      z.nr_reserved_highatomic -= size;
      pcp_class_update(m, &z);
      if (order < m.pageblock_order()) {
        uint64_t start;
        int free, movable;
        if (!prep_move_freepages_block(z, pfn, &start, &free, &movable)) continue;
        move_freepages_block(z, start, mt);
      } else {
        move_to_free_list(page, z, order, mt);
        change_pageblock_range(m, pfn, order, mt);
      }
      return true;
    }
  }
  return false;
}

}  // namespace mmkit
