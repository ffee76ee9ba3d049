// Operations on ranges of a tree: zap_range (mm/memory.c zap_pte_range and
// the mmu_gather batch), free_pgtables (free_pgd_range's floor/ceiling
// rule), change_protection (mm/mprotect.c), copy_range (copy_page_range for
// fork), move_range (mm/mremap.c move_page_tables) and walk_range.
//
// Every operation works on linear addresses (the sign extension stripped;
// see vm_state.h), so a range that ends at the top of the address space
// (end 0) is an ordinary [lo, hi) with hi = 2^va_bits.
//
// Ordering against the MMU: entries are cleared or changed with atomic
// read-modify-writes before the flush (whose shootdown reads the CPU mask
// after them), and a page or table frame is given back only after the flush
// returned, so no CPU reaches a freed frame through a stale translation.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap.h"
#include "vm/mmu.h"
#include "vm/vm_state.h"

namespace mmkit {

// The internal, linear-address flush (tlb.cc).
void flush_tlb_linear(PageTable& pt, uint64_t lo, uint64_t hi);

namespace {

thread_local uint64_t tls_move_done = 0;

// Visits the nonzero last-level entries in [lo, hi), in address order;
// fn(lin, entry, value) returns false to stop the walk (and the visit).
template <class F>
bool for_each_leaf(const PageTable& pt, const PagingFormat& f, unsigned level, uint64_t table,
                   uint64_t base, uint64_t lo, uint64_t hi, F& fn) {
  const Machine& m = *pt.machine;
  const unsigned shift = f.shift[level];
  const uint64_t first = (lo - base) >> shift, last = (hi - 1 - base) >> shift;
  for (uint64_t i = first; i <= last; ++i) {
    EntryRef e = table_entry(m, f, table, i);
    const pteval_t v = e.load();
    if (v == 0) continue;
    const uint64_t ebase = base + (i << shift);
    if (level + 1 < f.levels) {
      if (!pte_present(v)) continue;
      const uint64_t end = ebase + (uint64_t{1} << shift);
      if (!for_each_leaf(pt, f, level + 1, pte_pfn(v), ebase, std::max(lo, ebase),
                         std::min(hi, end), fn))
        return false;
    } else if (!fn(ebase, e, v)) {
      return false;
    }
  }
  return true;
}

template <class F>
bool for_each_leaf(const PageTable& pt, uint64_t lo, uint64_t hi, F&& fn) {
  if (lo >= hi) return true;
  const PagingFormat& f = paging_format(pt.mode);
  return for_each_leaf(pt, f, 0, pt.machine->page_to_pfn(pt.pgd), 0, lo, hi, fn);
}

// Validates [start, end) and converts it to linear [*lo, *hi).
std::string range_error(const PageTable& pt, uint64_t start, uint64_t end, uint64_t* lo,
                        uint64_t* hi) {
  if (!pt.pgd) return "the tree has no top-level table (pgd_alloc first)";
  const PagingFormat& f = paging_format(pt.mode);
  if ((start | end) & (PAGE_SIZE - 1))
    return fmt::format("range [{:#x}, {:#x}) is not page aligned", start, end);
  *lo = *hi = 0;
  if (start == end) return "";
  const uint64_t last = end - 1;  // end 0: the top of the address space
  if (start > last) return fmt::format("start {:#x} > end {:#x}", start, end);
  if (!addr_canonical(pt.mode, start)) return fmt::format("start {:#x} is not canonical", start);
  if (!addr_canonical(pt.mode, last))
    return fmt::format("end {:#x} is not canonical (nor the end of the lower half)", end);
  if (addr_kernel_half(pt.mode, last) && !is_kernel_tree(pt))
    return fmt::format(
        "range [{:#x}, {:#x}) reaches the kernel half, shared with the kernel's tree", start, end);
  *lo = to_linear(f, start);
  *hi = to_linear(f, last) + 1;
  return "";
}

bool range_ok(const PageTable& pt, const char* what, uint64_t start, uint64_t end, uint64_t* lo,
              uint64_t* hi) {
  if (!pt.machine) return false;
  std::string err = range_error(pt, start, end, lo, hi);
  if (err.empty()) return true;
  vm_warn(*pt.machine, what, err);
  return false;
}

// A floor or ceiling as a linear address: one in the non-canonical hole
// means the boundary between the halves; a ceiling of 0 means the top.
uint64_t linear_bound(const PageTable& pt, uint64_t a, bool ceiling) {
  const PagingFormat& f = paging_format(pt.mode);
  if (ceiling && a == 0) return va_span(f);
  if (addr_canonical(pt.mode, a)) return to_linear(f, a);
  return f.va_bits == 32 ? va_span(f) : va_span(f) / 2;
}

bool is_normal_page(const Page* page, pteval_t v, const Page* zero) {
  return page != zero && !(v & _PAGE_SPECIAL);
}

// NR_ANON_PAGES decrements of a zap, gathered per node so a large unmap does
// not touch the shared counter once a page.
struct AnonUnmapped {
  Machine& m;
  int node = -1;
  int64_t n = 0;
  void add(Page* page) {
    const int nid = m.page_zone(page)->node;
    if (nid != node) flush();
    node = nid;
    ++n;
  }
  void flush() {
    if (n) m.node(node).stat[static_cast<unsigned>(NodeStat::NR_ANON_PAGES)].add(-n);
    n = 0;
  }
};

// Drops the mapping's counts on a page zap_range took off the tree.
void release_mapped(Machine& m, Page* page, bool dirty, AnonUnmapped& anon) {
  if (page_remove_rmap(m, page)) anon.add(page);
  // folio_mark_dirty(): a page already dirty (a forked child's copy of its
  // parent's entry) needs no locked update; a page-cache page is counted.
  if (dirty && page_is_file_cache(page)) {
    filemap_dirty_mapped(m, page);
  } else if (dirty) {
    Page* head = page->head();
    constexpr uint64_t bit = uint64_t{1} << PG_dirty;
    if (!(head->flags.load(std::memory_order_relaxed) & bit))
      head->flags.fetch_or(bit, std::memory_order_relaxed);
  }
  // free_swap_cache(): an unmapped page's copy in swap has no user left.
  if (page->test(PG_swapcache) && page->mapcount.load(std::memory_order_acquire) == 0 &&
      !page->test_and_set(PG_locked)) {
    folio_free_swap(m, page);
    page->clear_atomic(PG_locked);
  }
  put_page(m, page);
}

}  // namespace

void page_add_new_anon_rmap(Machine& m, Page* page, uint64_t anon_vma) {
  page->set_mapping_once(reinterpret_cast<void*>(anon_vma << 2 | PAGE_MAPPING_ANON));
  page->mapcount.store(1, std::memory_order_relaxed);
  m.mod_node_page_state(page, NodeStat::NR_ANON_PAGES, 1);
}

bool page_remove_rmap(Machine& m, Page* page) {
  // The mapcount's atomic decrement decides who sees the last mapping go.
  const int old = page->mapcount.fetch_sub(1, std::memory_order_acq_rel);
  if (old <= 0)
    m.warn(fmt::format("BUG: Bad page map: pfn:{:#x} mapcount:{}\n", m.page_to_pfn(page), old - 1));
  if (old != 1) return false;
  if (!PageAnon(page)) {  // a file or shmem page: NR_FILE_MAPPED (page_add_file_rmap)
    mod_lruvec_page_state(m, page, NodeStat::NR_FILE_MAPPED, -1);
    return false;
  }
  // No mapping is left to look at it; the caller's put_page publishes the
  // store to whoever frees the page.
  page->set_mapping_once(nullptr);
  return true;
}

std::string pgtable_range_error(const PageTable& pt, uint64_t start, uint64_t end) {
  uint64_t lo, hi;
  return range_error(pt, start, end, &lo, &hi);
}

uint64_t move_range_done() {
  return tls_move_done;
}

uint64_t zap_range(PageTable& pt, uint64_t start, uint64_t end) {
  return zap_range(pt, start, end, NonPresentFn());
}

uint64_t zap_range(PageTable& pt, uint64_t start, uint64_t end, const NonPresentFn& nonpresent) {
  uint64_t lo, hi;
  if (!range_ok(pt, "zap_range", start, end, &lo, &hi)) return 0;
  Machine& m = *pt.machine;
  const Page* zero = vm_state(m).zero_page;
  // The mmu_gather batch: pages wait here until the range is flushed.
  constexpr size_t kBatch = 512;
  struct Gathered {
    Page* page;
    bool dirty;
  };
  std::vector<Gathered> batch;
  batch.reserve(kBatch);
  AnonUnmapped anon{m};
  uint64_t count = 0, flush_from = lo;
  bool flush_needed = false;
  auto release = [&](uint64_t flush_to) {
    if (flush_needed) flush_tlb_linear(pt, flush_from, flush_to);
    for (const Gathered& g : batch) release_mapped(m, g.page, g.dirty, anon);
    batch.clear();
    flush_from = flush_to;
    flush_needed = false;
  };
  const PagingFormat& f = paging_format(pt.mode);
  for_each_leaf(pt, lo, hi, [&](uint64_t lin, EntryRef e, pteval_t v) {
    if (!pte_present(v) && nonpresent) nonpresent(to_canonical(f, lin), v);
    const pteval_t old = e.exchange(0);
    if (pte_present(old)) {
      flush_needed = true;
      Page* page = m.pfn_to_page(pte_pfn(old));
      if (is_normal_page(page, old, zero)) {
        batch.push_back({page, (old & _PAGE_DIRTY) != 0});
        ++count;
        if (batch.size() == kBatch) release(lin + PAGE_SIZE);
      }
    }
    return true;
  });
  release(hi);
  anon.flush();
  return count;
}

namespace {

struct PgtableFreer {
  PageTable& pt;
  const PagingFormat& f;
  uint64_t floor, ceiling;
  bool kernel;
  bool warned = false;
  std::vector<Page*> tables;

  bool table_empty(uint64_t pfn) {
    for (uint64_t i = 0; i < (uint64_t{1} << f.index_bits); ++i)
      if (table_entry(*pt.machine, f, pfn, i).load() != 0) return false;
    return true;
  }

  // Frees the tables below the entries of `table` (at `level`) that cover
  // [lo, hi) and lie wholly inside [floor, ceiling).
  void level(unsigned level, uint64_t table, uint64_t base, uint64_t lo, uint64_t hi) {
    Machine& m = *pt.machine;
    const unsigned shift = f.shift[level];
    const uint64_t size = uint64_t{1} << shift;
    for (uint64_t i = (lo - base) >> shift; i <= (hi - 1 - base) >> shift; ++i) {
      EntryRef e = table_entry(m, f, table, i);
      const pteval_t v = e.load();
      if (!pte_present(v)) continue;
      const uint64_t ebase = base + (i << shift);
      const uint64_t child = pte_pfn(v);
      const bool child_holds_tables = level + 2 < f.levels;
      if (child_holds_tables)
        this->level(level + 1, child, ebase, std::max(lo, ebase), std::min(hi, ebase + size));
      // The kernel's top-level entries are shared by every tree: permanent.
      if (kernel && level == 0 && i >= f.kernel_index) continue;
      if (ebase < floor || ebase + size > ceiling) continue;
      if (!table_empty(child)) {
        if (!child_holds_tables && !warned) {
          vm_warn(m, "free_pgtables",
                  fmt::format("the table for [{:#x}, {:#x}) still has entries (zap_range "
                              "first); kept",
                              to_canonical(f, ebase), to_canonical(f, ebase + size - 1) + 1));
          warned = true;
        }
        continue;
      }
      e.store(0);
      tables.push_back(m.pfn_to_page(child));
    }
  }
};

}  // namespace

void free_pgtables(PageTable& pt, uint64_t start, uint64_t end, uint64_t floor, uint64_t ceiling) {
  uint64_t lo, hi;
  if (!range_ok(pt, "free_pgtables", start, end, &lo, &hi) || lo == hi) return;
  Machine& m = *pt.machine;
  const PagingFormat& f = paging_format(pt.mode);
  const uint64_t floor_l = linear_bound(pt, floor, false);
  const uint64_t ceil_l = linear_bound(pt, ceiling, true);
  if (floor_l > lo || ceil_l < hi) {
    vm_warn(m, "free_pgtables",
            fmt::format("[{:#x}, {:#x}) is not inside floor {:#x} and ceiling {:#x}", start, end,
                        floor, ceiling));
    return;
  }
  PgtableFreer fr{pt, f, floor_l, ceil_l, is_kernel_tree(pt)};
  fr.level(0, m.page_to_pfn(pt.pgd), 0, lo, hi);
  if (fr.tables.empty()) return;
  // Walkers on other CPUs may be inside these tables: flush (which waits for
  // them) before the frames go back (tlb_remove_table's rule).
  flush_tlb_linear(pt, lo, hi);
  for (Page* t : fr.tables) free_table(pt, t);
}

uint64_t change_protection(PageTable& pt, uint64_t start, uint64_t end, pteval_t newprot) {
  uint64_t lo, hi;
  if (!range_ok(pt, "change_protection", start, end, &lo, &hi)) return 0;
  Machine& m = *pt.machine;
  const Page* zero = vm_state(m).zero_page;
  const bool wide = paging_format(pt.mode).entry_shift == 3;
  const pteval_t mask = _PAGE_RW | _PAGE_USER | (wide ? _PAGE_NX : 0);
  uint64_t changed = 0;
  for_each_leaf(pt, lo, hi, [&](uint64_t, EntryRef e, pteval_t v) {
    for (;;) {  // the MMU may set accessed/dirty meanwhile
      if (!pte_present(v)) return true;
      pteval_t nv = (v & ~mask) | (newprot & mask);
      if (m.pfn_to_page(pte_pfn(v)) == zero) nv &= ~_PAGE_RW;  // never writable
      if (nv == v) return true;
      if (e.cas(v, nv)) {
        ++changed;
        return true;
      }
    }
  });
  if (changed) flush_tlb_linear(pt, lo, hi);
  return changed;
}

bool copy_range(PageTable& dst, PageTable& src, uint64_t start, uint64_t end, bool cow) {
  return copy_range(dst, src, start, end, cow, NonPresentFn());
}

bool copy_range(PageTable& dst, PageTable& src, uint64_t start, uint64_t end, bool cow,
                const NonPresentFn& nonpresent) {
  uint64_t lo, hi, dlo, dhi;
  if (!range_ok(src, "copy_range", start, end, &lo, &hi) ||
      !range_ok(dst, "copy_range", start, end, &dlo, &dhi))
    return false;
  Machine& m = *src.machine;
  if (&dst == &src || dst.machine != src.machine || dst.mode != src.mode) {
    vm_warn(m, "copy_range", "the destination must be another tree of the same machine and mode");
    return false;
  }
  const Page* zero = vm_state(m).zero_page;
  const bool wide = paging_format(src.mode).entry_shift == 3;
  const PagingFormat& f = paging_format(src.mode);
  // The last-level table of dst that the previous entry went to: entries of
  // the same table reuse it instead of walking dst's tree from the top.
  const unsigned table_shift = f.shift[f.levels - 1] + f.index_bits;
  uint64_t cached_region = ~uint64_t{0};
  char* cached_table = nullptr;
  bool ok = true, wrprotected = false;
  for_each_leaf(src, lo, hi, [&](uint64_t lin, EntryRef se, pteval_t v) {
    const uint64_t slot = table_index(f, f.levels - 1, lin) << f.entry_shift;
    char* dp;
    if (lin >> table_shift == cached_region) {
      dp = cached_table + slot;
    } else {
      if (!get_or_alloc_entry(dst, lin, GFP_KERNEL, &dp)) {
        ok = false;
        return false;
      }
      cached_region = lin >> table_shift;
      cached_table = dp - slot;
    }
    EntryRef de(dp, wide);
    if (de.load() != 0) {
      vm_warn(m, "copy_range",
              fmt::format("the destination already maps {:#x}",
                          to_canonical(paging_format(src.mode), lin)));
      ok = false;
      return false;
    }
    if (pte_present(v)) {
      // copy_present_pte(): a COW mapping is write-protected in both trees.
      if (cow) {
        while ((v & _PAGE_RW) && !se.cas(v, v & ~_PAGE_RW)) {
        }
        if (!pte_present(v)) return true;
        wrprotected = true;
        v &= ~_PAGE_RW;
      }
      Page* page = m.pfn_to_page(pte_pfn(v));
      if (is_normal_page(page, v, zero)) {
        page->mapcount.fetch_add(1, std::memory_order_relaxed);
        get_page(page);
      }
      v &= ~_PAGE_ACCESSED;  // pte_mkold: the child has not used it yet
    } else if (nonpresent) {
      nonpresent(to_canonical(paging_format(src.mode), lin), v);
    }
    de.publish(v);  // dst's entry was empty: nothing can have cached it
    return true;
  });
  if (wrprotected) flush_tlb_linear(src, lo, hi);
  return ok;
}

bool move_range(PageTable& pt, uint64_t old_addr, uint64_t new_addr, uint64_t len) {
  tls_move_done = 0;
  uint64_t lo, hi, nlo, nhi;
  if (!range_ok(pt, "move_range", old_addr, old_addr + len, &lo, &hi) ||
      !range_ok(pt, "move_range", new_addr, new_addr + len, &nlo, &nhi))
    return false;
  if (lo == hi) return true;
  Machine& m = *pt.machine;
  const PagingFormat& f = paging_format(pt.mode);
  if (nlo < hi && lo < nhi) {
    vm_warn(
        m, "move_range",
        fmt::format("[{:#x}, +{:#x}) and [{:#x}, +{:#x}) overlap", old_addr, len, new_addr, len));
    return false;
  }
  bool ok = true;
  uint64_t done = len;
  for_each_leaf(pt, lo, hi, [&](uint64_t lin, EntryRef oe, pteval_t) {
    char* np;
    const uint64_t nl = lin - lo + nlo;
    if (!get_or_alloc_entry(pt, nl, GFP_KERNEL, &np)) {
      ok = false;
    } else if (EntryRef(np, f.entry_shift == 3).load() != 0) {
      vm_warn(m, "move_range",
              fmt::format("the destination already maps {:#x}", to_canonical(f, nl)));
      ok = false;
    }
    if (!ok) {
      done = lin - lo;
      return false;
    }
    // The entry moves with whatever accessed/dirty bits it has by now.
    EntryRef(np, f.entry_shift == 3).store(oe.exchange(0));
    return true;
  });
  flush_tlb_linear(pt, lo, ok ? hi : lo + done);
  tls_move_done = done;
  return ok;
}

void walk_range(const PageTable& pt, uint64_t start, uint64_t end,
                const std::function<void(uint64_t addr, pteval_t val)>& fn) {
  uint64_t lo, hi;
  if (!range_ok(pt, "walk_range", start, end, &lo, &hi)) return;
  const PagingFormat& f = paging_format(pt.mode);
  for_each_leaf(pt, lo, hi, [&](uint64_t lin, EntryRef, pteval_t v) {
    if (pte_present(v)) fn(to_canonical(f, lin), v);
    return true;
  });
}

void walk_range_all(const PageTable& pt, uint64_t start, uint64_t end,
                    const std::function<void(uint64_t addr, pteval_t val)>& fn) {
  uint64_t lo, hi;
  if (!range_ok(pt, "walk_range", start, end, &lo, &hi)) return;
  const PagingFormat& f = paging_format(pt.mode);
  for_each_leaf(pt, lo, hi, [&](uint64_t lin, EntryRef, pteval_t v) {
    if (v) fn(to_canonical(f, lin), v);
    return true;
  });
}

}  // namespace mmkit
