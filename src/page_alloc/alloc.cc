// alloc_pages() and free_pages(): the fast path (get_page_from_freelist at
// the LOW watermark, pcp lists for orders 0..3), page preparation (zeroing,
// compound pages), free-time checks, and the slow path: wake kswapd, retry at
// MIN with the atomic/__GFP_HIGH reductions, direct reclaim, drain, retry or
// fail with Linux's allocation-failure report (mm/page_alloc.c).
#include <fmt/format.h>

#include <cstring>
#include <thread>

#include "page_alloc/internal.h"

namespace mmkit {

namespace {

// gfp_zone() resolved to this arch's zone index (OPT_ZONE_DMA32/HIGHMEM fold to Normal).
constexpr int8_t kZoneIdx[2][5] = {
    /* x86_64: DMA DMA32 NORMAL HIGHMEM MOVABLE */ {0, 1, 2, 2, 3},
    /* i386 */ {0, 1, 1, 2, 3},
};

VmEvent pgalloc_event(ZoneKind k) {
  return static_cast<VmEvent>(static_cast<unsigned>(VmEvent::PGALLOC_DMA) +
                              static_cast<unsigned>(k));
}

struct AllocContext {
  Zone* const* zonelist;
  unsigned highest_zoneidx;
  unsigned migratetype;
  int nid;
};

// zone_watermark_fast(): the order-0 check inline, the rest in __zone_watermark_ok.
inline bool zone_watermark_fast(const Zone& z, unsigned order, uint64_t mark, unsigned highest,
                                unsigned alloc_flags) {
  const int64_t free = z.nr_free();
  if (order == 0) {
    int64_t reserved =
        alloc_flags & ALLOC_RESERVES ? 0 : static_cast<int64_t>(z.nr_reserved_highatomic);
    const int64_t usable = free - std::min(free, reserved);
    if (usable > static_cast<int64_t>(mark + z.lowmem_reserve[highest])) return true;
  }
  return zone_watermark_ok(z, order, mark, highest, alloc_flags);
}

void clear_pages(Machine& m, Page* page, unsigned order) {
  std::memset(m.phys_window(m.page_to_pfn(page)), 0, PAGE_SIZE << order);
}

void prep_compound_page(Page* page, unsigned order) {
  page->flags.store(page->flags.load(std::memory_order_relaxed) | (uint64_t{1} << PG_head) |
                        (uint64_t{order} << kPageOrderShift),
                    std::memory_order_relaxed);
  const uintptr_t head = reinterpret_cast<uintptr_t>(page) | 1;
  for (unsigned i = 1; i < (1u << order); ++i) page[i].compound_head = head;
}

inline void prep_new_page(Machine& m, Page* page, unsigned order, gfp_t gfp) {
  page->refcount.store(1, std::memory_order_relaxed);
  if ((gfp & __GFP_ZERO) || (order && (gfp & __GFP_COMP))) prep_new_page_extra(m, page, order, gfp);
}

// rmqueue(): the pcp lists for their orders on a bound CPU, else the buddy
// lists; each counts PGALLOC_<zone> (rmqueue_buddy under zone.lock).
inline Page* rmqueue(Zone& z, CpuState* cpu, unsigned order, gfp_t gfp, unsigned alloc_flags,
                     unsigned mt) {
  // A failed pcp refill still tries the buddy lists (rmqueue()).
  if (order <= PAGE_ALLOC_COSTLY_ORDER && cpu) [[likely]]
    if (Page* page = rmqueue_pcplist(z, *cpu, order, mt, alloc_flags, gfp & __GFP_COLD)) {
      cpu->events[static_cast<unsigned>(pgalloc_event(z.kind))].add(int64_t{1} << order);
      return page;
    }
  return rmqueue_buddy(z, cpu, order, mt, alloc_flags);
}

// get_page_from_freelist(): the first zone of the zonelist that passes its
// watermark and has a block.
Page* get_page_from_freelist(Machine& m, CpuState* cpu, gfp_t gfp, unsigned order,
                             unsigned alloc_flags, const AllocContext& ac) {
  for (Zone* const* zp = ac.zonelist; *zp; ++zp) {
    Zone& z = **zp;
    if (z.idx > ac.highest_zoneidx) continue;
    if (!(alloc_flags & ALLOC_NO_WATERMARKS)) {
      const uint64_t mark = z.watermark[alloc_flags & ALLOC_WMARK_MASK];
      if (!zone_watermark_fast(z, order, mark, ac.highest_zoneidx, alloc_flags)) continue;
    }
    Page* page = rmqueue(z, cpu, order, gfp, alloc_flags, ac.migratetype);
    if (!page) continue;
    prep_new_page(m, page, order, gfp);
    if (order && (alloc_flags & ALLOC_HIGHATOMIC)) [[unlikely]]
      reserve_highatomic_pageblock(z, page, order);
    return page;
  }
  return nullptr;
}

// gfp_to_alloc_flags(): what the slow path may dig into.
unsigned gfp_to_alloc_flags(gfp_t gfp, unsigned order) {
  unsigned flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;
  flags |= gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM);
  if (!(gfp & __GFP_DIRECT_RECLAIM)) {
    if (!(gfp & __GFP_NOMEMALLOC)) {
      flags |= ALLOC_NON_BLOCK;
      if (order > 0) flags |= ALLOC_HIGHATOMIC;
    }
    if (flags & ALLOC_MIN_RESERVE) flags &= ~ALLOC_CPUSET;
  }
  return flags;
}

// wake_all_kswapds(): wake each node's kswapd unless one of its usable zones
// is already above its high watermark (pgdat_balanced()).
void wake_all_kswapds(Machine& m, gfp_t gfp, unsigned order, const AllocContext& ac) {
  int last_node = -1;
  for (Zone* const* zp = ac.zonelist; *zp; ++zp) {
    Zone& z = **zp;
    if (z.idx > ac.highest_zoneidx || z.node == last_node) continue;
    last_node = z.node;
    bool balanced = false;
    Node& n = m.node(z.node);
    for (unsigned i = 0; i <= ac.highest_zoneidx; ++i) {
      const Zone& nz = n.zones[i];
      if (nz.populated() && zone_watermark_ok(nz, order, nz.high_wmark(), ac.highest_zoneidx, 0))
        balanced = true;
    }
    if (!balanced) m.reclaim()->wakeup_kswapd(m, z, gfp, order, ac.highest_zoneidx);
  }
}

// should_fail_alloc_page(): fail_page_alloc's filters, then the attribute.
bool should_fail_alloc_page(Machine& m, gfp_t gfp, unsigned order) {
  const FailPageAllocConfig& c = m.fail_page_alloc_cfg;
  if (order < c.min_order || (gfp & __GFP_NOFAIL)) return false;
  if (c.ignore_gfp_highmem && (gfp & __GFP_HIGHMEM)) return false;
  if (c.ignore_gfp_wait && (gfp & __GFP_DIRECT_RECLAIM)) return false;
  return m.fail_page_alloc.should_fail(int64_t{1} << order);
}

// warn_alloc(): the report Linux prints when an allocation fails.
void warn_alloc(Machine& m, gfp_t gfp, unsigned order, const AllocContext& ac) {
  std::string s = fmt::format(
      "mmkit: page allocation failure: order:{}, mode:{:#x}({}), nodemask=(null)\nMem-Info:\n",
      order, gfp, format_gfp(gfp));
  m.for_each_zone([&](const Zone& z) {
    if (!z.populated()) return;
    s += fmt::format(
        "Node {} {} free:{}kB boost:0kB min:{}kB low:{}kB high:{}kB reserved_highatomic:{}KB "
        "present:{}kB managed:{}kB free_pcp:{}kB\nlowmem_reserve[]:",
        z.node, z.name, z.nr_free() * 4, z.min_wmark() * 4, z.low_wmark() * 4, z.high_wmark() * 4,
        z.nr_reserved_highatomic * 4, z.present() * 4, z.managed() * 4, zone_pcp_pages(z) * 4);
    for (unsigned i = 0; i < MAX_NR_ZONES; ++i) s += fmt::format(" {}", z.lowmem_reserve[i]);
    s += '\n';
  });
  m.for_each_zone([&](const Zone& cz) {
    if (!cz.populated()) return;
    Zone& z = const_cast<Zone&>(cz);
    s += fmt::format("Node {} {}: ", z.node, z.name);
    uint64_t total = 0;
    SpinGuard g(z.lock);
    for (unsigned o = 0; o < NR_PAGE_ORDERS; ++o) {
      std::string types;
      for (unsigned t = 0; t < MIGRATE_TYPES; ++t)
        if (!z.free_area[o].free_list[t].empty()) types += "UMEHCI"[t];
      s += fmt::format("{}*{}kB ", z.free_area[o].nr_free, 4u << o);
      if (!types.empty()) s += fmt::format("({}) ", types);
      total += z.free_area[o].nr_free << o;
    }
    s += fmt::format("= {}kB\n", total * 4);
  });
  m.warn(s);
}

Page* alloc_pages_slowpath(Machine& m, CpuState* cpu, gfp_t gfp, unsigned order,
                           const AllocContext& ac) {
  m.count_event(VmEvent::ALLOC_SLOWPATH);
  const bool costly = order > PAGE_ALLOC_COSTLY_ORDER;
  unsigned alloc_flags = gfp_to_alloc_flags(gfp, order);
  unsigned no_progress_loops = 0;
  bool drained = false;
  Page* page;

  if (alloc_flags & ALLOC_KSWAPD) wake_all_kswapds(m, gfp, order, ac);
  if ((page = get_page_from_freelist(m, cpu, gfp, order, alloc_flags, ac))) return page;
  if (!(gfp & __GFP_DIRECT_RECLAIM)) goto nopage;

  for (;;) {
    if (alloc_flags & ALLOC_KSWAPD) wake_all_kswapds(m, gfp, order, ac);
    // __alloc_pages_direct_reclaim(): reclaim, then try again; on failure,
    // release the high-atomic reserve and the per-CPU lists once.
    m.count_event(static_cast<VmEvent>(static_cast<unsigned>(VmEvent::ALLOCSTALL_DMA) +
                                       static_cast<unsigned>(m.zone_kinds()[ac.highest_zoneidx])));
    const uint64_t progress = m.reclaim()->try_to_free_pages(m, gfp, order, ac.nid);
    if ((page = get_page_from_freelist(m, cpu, gfp, order, alloc_flags, ac))) return page;
    if (!drained) {
      unreserve_highatomic_pageblock(m, ac.zonelist, ac.highest_zoneidx, ac.migratetype, false);
      drain_all_pages(m);
      drained = true;
      if ((page = get_page_from_freelist(m, cpu, gfp, order, alloc_flags, ac))) return page;
    }
    if (gfp & __GFP_NORETRY) break;
    if (costly && !(gfp & __GFP_RETRY_MAYFAIL)) break;
    // should_reclaim_retry(): keep going while reclaim makes progress, at
    // most MAX_RECLAIM_RETRIES rounds without any.
    if (m.reclaim()->current_is_oom_victim(m)) break;
    no_progress_loops = progress ? 0 : no_progress_loops + 1;
    if (!progress && !m.reclaim()->retries_without_progress()) break;
    if (no_progress_loops > MAX_RECLAIM_RETRIES) {
      // __alloc_pages_may_oom(): the OOM killer for orders it may help
      // (not costly ones, not __GFP_NORETRY, as Linux's).
      if (order <= PAGE_ALLOC_COSTLY_ORDER && !(gfp & __GFP_NORETRY) &&
          m.reclaim()->out_of_memory(m, gfp, order)) {
        no_progress_loops = 0;
        if ((page = get_page_from_freelist(m, cpu, gfp, order, alloc_flags, ac))) return page;
        continue;
      }
      unreserve_highatomic_pageblock(m, ac.zonelist, ac.highest_zoneidx, ac.migratetype, true);
      break;
    }
  }

nopage:
  if (gfp & __GFP_NOFAIL) {
    // Never fails: dig into every reserve, then wait for memory to come back.
    for (unsigned tries = 0;; ++tries) {
      if ((page = get_page_from_freelist(m, cpu, gfp, order, ALLOC_NO_WATERMARKS, ac))) return page;
      if (tries == 0 && !(gfp & __GFP_NOWARN)) warn_alloc(m, gfp, order, ac);
      drain_all_pages(m);
      m.reclaim()->try_to_free_pages(m, gfp, order, ac.nid);
      std::this_thread::yield();
    }
  }
  m.count_event(VmEvent::ALLOC_FAIL);
  if (!(gfp & __GFP_NOWARN)) warn_alloc(m, gfp, order, ac);
  return nullptr;
}

inline bool free_pages_prepare(Machine& m, Page* page, unsigned order) {
  uint64_t flags = page->flags.load(std::memory_order_relaxed);
  if ((flags & kReleaseAtFree) && m.page_release) [[unlikely]] {
    m.page_release(m, page);
    flags = page->flags.load(std::memory_order_relaxed);
  }
  if ((flags & kCheckAtFree) || page->mapping || page->mapcount.load(std::memory_order_relaxed) ||
      page->is_tail()) [[unlikely]] {
    bad_page(m, page,
             page->is_tail()                 ? "freeing a tail page"
             : flags & (1ull << PG_reserved) ? "PAGE_FLAGS_CHECK_AT_FREE flag(s) set (reserved)"
             : page->mapping                 ? "non-NULL mapping"
             : page->mapcount.load()         ? "nonzero mapcount"
                                             : "PAGE_FLAGS_CHECK_AT_FREE flag(s) set");
    if (!page->is_tail()) page->set(PG_bad);  // withheld: never handed out or freed again
    return false;
  }
  if (flags & (uint64_t{1} << PG_head)) {
    const unsigned corder = static_cast<unsigned>(flags >> kPageOrderShift);
    if (corder != order) [[unlikely]] {
      bad_page(m, page, "compound page freed with the wrong order");
      page->set(PG_bad);
      return false;
    }
    for (unsigned i = 1; i < (1u << order); ++i) page[i].compound_head = 0;
  }
  // PAGE_FLAGS_CHECK_AT_PREP: every flag goes with the page's last user
  // (PG_uptodate, PG_referenced, ... of a page freed off the LRU too).
  page->flags.store(0, std::memory_order_relaxed);
  page->private_ = 0;
  return true;
}

void free_the_page(Machine& m, Page* page, unsigned order) {
  if (!free_pages_prepare(m, page, order)) [[unlikely]]
    return;
  const uint64_t pfn = m.page_to_pfn(page);
  Zone& z = *m.pfn_zone(pfn);
  CpuState* cpu = this_cpu(m);
  if (order <= PAGE_ALLOC_COSTLY_ORDER && cpu) [[likely]] {
    cpu->events[static_cast<unsigned>(VmEvent::PGFREE)].add(int64_t{1} << order);
    free_unref_page(z, *cpu, page, pfn, order);
  } else {
    free_one_page_counted(z, cpu, page, pfn, order);
  }
}

}  // namespace

bool zone_watermark_ok(const Zone& z, unsigned order, uint64_t mark, unsigned highest,
                       unsigned alloc_flags) {
  int64_t min = static_cast<int64_t>(mark);
  int64_t free = z.nr_free() - ((int64_t{1} << order) - 1);
  if (!(alloc_flags & ALLOC_RESERVES)) free -= static_cast<int64_t>(z.nr_reserved_highatomic);
  if (alloc_flags & ALLOC_RESERVES) {
    if (alloc_flags & ALLOC_MIN_RESERVE) {  // __GFP_HIGH: half of the MIN reserve
      min -= min / 2;
      if (alloc_flags & ALLOC_NON_BLOCK) min -= min / 4;  // atomic: a quarter more
    }
    if (alloc_flags & ALLOC_OOM) min -= min / 2;
  }
  if (free <= min + static_cast<int64_t>(z.lowmem_reserve[highest])) return false;
  if (order == 0) return true;
  for (unsigned o = order; o < NR_PAGE_ORDERS; ++o) {
    const FreeArea& area = z.free_area[o];
    for (unsigned mt = 0; mt < MIGRATE_PCPTYPES; ++mt)
      if (area.has(mt)) return true;
    if ((alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM)) && area.has(MIGRATE_HIGHATOMIC)) return true;
  }
  return false;
}

// The general path: any order, node, CPU binding and flags.
Page* alloc_pages_general(Machine& m, CpuState* cpu, gfp_t gfp, unsigned order, int nid) {
  const int kind = gfp_zone_kind(gfp);
  const bool both_mobility = (gfp & GFP_MOVABLE_MASK) == GFP_MOVABLE_MASK;
  if (order > MAX_PAGE_ORDER || kind == kBadZone || both_mobility) [[unlikely]] {
    if (!(gfp & __GFP_NOWARN))
      m.warn(fmt::format("WARNING: alloc_pages: {} (order:{}, mode:{:#x}({}))\n",
                         order > MAX_PAGE_ORDER ? "order above MAX_PAGE_ORDER"
                         : both_mobility        ? "__GFP_MOVABLE and __GFP_RECLAIMABLE together"
                                                : "invalid GFP zone modifiers",
                         order, gfp, format_gfp(gfp)));
    m.count_event(VmEvent::ALLOC_FAIL);
    return nullptr;
  }
  if (nid == NUMA_NO_NODE) nid = cpu ? cpu->node : 0;
  if (nid < 0 || static_cast<unsigned>(nid) >= m.nr_nodes()) [[unlikely]] {
    m.warn(fmt::format("WARNING: alloc_pages: node {} does not exist\n", nid));
    m.count_event(VmEvent::ALLOC_FAIL);
    return nullptr;
  }
  Node& node = m.node(nid);
  const AllocContext ac{(gfp & __GFP_THISNODE) ? node.zonelist_nofallback : node.zonelist_fallback,
                        static_cast<unsigned>(kZoneIdx[m.arch() == Arch::i386][kind]),
                        gfp_migratetype(gfp, m.gfp_movable_mask), nid};
  if (m.fail_page_alloc.enabled() && should_fail_alloc_page(m, gfp, order)) [[unlikely]] {
    m.count_event(VmEvent::ALLOC_FAIL);
    return nullptr;
  }
  if (Page* page = get_page_from_freelist(m, cpu, gfp, order, ALLOC_WMARK_LOW, ac)) [[likely]]
    return page;
  return alloc_pages_slowpath(m, cpu, gfp, order, ac);
}

void prep_new_page_extra(Machine& m, Page* page, unsigned order, gfp_t gfp) {
  if (gfp & __GFP_ZERO) clear_pages(m, page, order);
  if (order && (gfp & __GFP_COMP)) prep_compound_page(page, order);
}

Page* alloc_pages_slow(Machine& m, gfp_t gfp, unsigned order, int nid) {
  return alloc_pages_general(m, this_cpu(m), gfp, order, nid);
}

void free_pages_slow(Machine& m, Page* page, unsigned order) {
  if (page->refcount.load(std::memory_order_relaxed) != 1) {
    put_page_order(m, page, order);
    return;
  }
  // The sole reference: dropped with a plain store (see free_pages()).
  page->refcount.store(0, std::memory_order_relaxed);
  free_the_page(m, page, order);
}

void put_page_order(Machine& m, Page* page, unsigned order) {
  const int old = page->refcount.fetch_sub(1, std::memory_order_acq_rel);
  if (old == 1) {
    free_the_page(m, page, order);
  } else if (old <= 0) [[unlikely]] {
    page->refcount.fetch_add(1, std::memory_order_relaxed);
    bad_page(m, page, old == 0 ? "freeing a free page (double free)" : "negative _refcount");
  } else if (!page->test(PG_head)) {
    // Another reference holds the first page; free the rest of a
    // non-compound block now (as __free_pages() does).
    while (order-- > 0) free_the_page(m, page + (1u << order), order);
  }
}

void get_page(Page* page) {
  page->head()->refcount.fetch_add(1, std::memory_order_relaxed);
}

void put_page(Machine& m, Page* page) {
  Page* head = page->head();
  put_page_order(m, head, head->compound_order());
}

void* get_free_pages(Machine& m, gfp_t gfp, unsigned order) {
  Page* page = alloc_pages(m, gfp & ~__GFP_HIGHMEM, order);
  return page ? m.page_address(page) : nullptr;
}

void free_pages_addr(Machine& m, void* addr, unsigned order) {
  if (!addr) return;
  if (!m.is_direct_mapped(addr)) {
    m.warn(fmt::format("BUG: free_pages: {} is not a direct-map address\n", addr));
    return;
  }
  free_pages(m, m.virt_to_page(addr), order);
}

void bad_page(Machine& m, Page* page, const char* reason) {
  const uint64_t pfn = m.page_to_pfn(page);
  m.warn(
      fmt::format("BUG: Bad page state in process mmkit  pfn:{:05x}\n"
                  "page:{} refcount:{} mapcount:{} mapping:{} index:{:#x} pfn:{:#x}\n"
                  "flags: {:#x}\npage dumped because: {}\n",
                  pfn, static_cast<void*>(page), page->ref_count(), page->mapcount.load(),
                  page->mapping, page->index, pfn, page->flags.load(), reason));
  m.bad_pages.add(1);
}

uint64_t nr_free_pages(const Machine& m) {
  uint64_t n = 0;
  m.for_each_zone(
      [&](const Zone& z) { n += static_cast<uint64_t>(std::max<int64_t>(0, z.nr_free())); });
  return n;
}

void set_warn_sink(Machine& m, std::function<void(const std::string&)> sink) {
  m.warn_sink = std::move(sink);
}

std::string format_gfp(gfp_t gfp) {
  // gfpflag_names (include/trace/events/mmflags.h): composites first, greedily.
  static constexpr std::pair<gfp_t, const char*> kNames[] = {
      {GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"},
      {GFP_HIGHUSER, "GFP_HIGHUSER"},
      {GFP_USER, "GFP_USER"},
      {GFP_KERNEL | __GFP_ACCOUNT, "GFP_KERNEL_ACCOUNT"},
      {GFP_KERNEL, "GFP_KERNEL"},
      {GFP_NOFS, "GFP_NOFS"},
      {GFP_ATOMIC, "GFP_ATOMIC"},
      {GFP_NOIO, "GFP_NOIO"},
      {GFP_NOWAIT, "GFP_NOWAIT"},
      {GFP_DMA, "GFP_DMA"},
      {__GFP_HIGHMEM, "__GFP_HIGHMEM"},
      {GFP_DMA32, "GFP_DMA32"},
      {__GFP_HIGH, "__GFP_HIGH"},
      {__GFP_IO, "__GFP_IO"},
      {__GFP_FS, "__GFP_FS"},
      {__GFP_NOWARN, "__GFP_NOWARN"},
      {__GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"},
      {__GFP_NOFAIL, "__GFP_NOFAIL"},
      {__GFP_NORETRY, "__GFP_NORETRY"},
      {__GFP_COMP, "__GFP_COMP"},
      {__GFP_ZERO, "__GFP_ZERO"},
      {__GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"},
      {__GFP_MEMALLOC, "__GFP_MEMALLOC"},
      {__GFP_HARDWALL, "__GFP_HARDWALL"},
      {__GFP_THISNODE, "__GFP_THISNODE"},
      {__GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"},
      {__GFP_MOVABLE, "__GFP_MOVABLE"},
      {__GFP_ACCOUNT, "__GFP_ACCOUNT"},
      {__GFP_RECLAIM, "__GFP_RECLAIM"},
      {__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"},
      {__GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"},
      {__GFP_COLD, "__GFP_COLD"}};
  std::string out;
  for (auto [mask, name] : kNames) {
    if ((gfp & mask) != mask) continue;
    if (!out.empty()) out += '|';
    out += name;
    gfp &= ~mask;
  }
  if (gfp) out += fmt::format("{}{:#x}", out.empty() ? "" : "|", gfp);
  return out.empty() ? "0" : out;
}

}  // namespace mmkit
