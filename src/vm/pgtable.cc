// Trees and single entries: the paging formats, pgd_alloc/pgd_free, the
// kernel's tree and zero page, pte_get/pte_set/pte_clear, and check()
// (arch/x86/mm/pgtable.c, arch/x86/include/asm/pgtable*.h).
//
// A user tree's top level is a fresh table whose kernel half is a copy of the
// kernel tree's top-level entries (clone_pgd_range in pgd_ctor). The kernel
// tree's kernel-half top-level entries never change once made: the x86-64
// vmalloc area's are made when the kernel tree is created
// (preallocate_vmalloc_pages), any other is made under pgd_lock and copied
// into every tree on pgd_list (sync_global_pgds on x86-64, the pgd_list walk
// of 32-bit x86), so all trees see every kernel mapping.
#include <fmt/format.h>

#include <map>
#include <string>

#include "page_alloc/page_alloc.h"
#include "vm/mmu.h"
#include "vm/vm_state.h"

namespace mmkit {
namespace {

const char* mode_name(PagingMode mode) {
  switch (mode) {
    case PagingMode::kX86_64_4Level:
      return "4-level paging";
    case PagingMode::kX86_64_5Level:
      return "5-level paging";
    case PagingMode::kI386:
      return "i386 paging";
  }
  return "?";
}

// Why a single-entry operation refuses `addr`, or "".
std::string addr_error(const PageTable& pt, uint64_t addr, bool modifies) {
  if (!pt.pgd) return "the tree has no top-level table (pgd_alloc first)";
  if (!addr_canonical(pt.mode, addr))
    return fmt::format("address {:#x} is not canonical ({})", addr, mode_name(pt.mode));
  if (modifies && addr_kernel_half(pt.mode, addr) && !is_kernel_tree(pt))
    return fmt::format("address {:#x} is in the kernel half, shared with the kernel's tree", addr);
  return "";
}

// Frees the tables below a user tree's top level (pgd_free of a tree whose
// tables were not freed first); returns the frames to free after a flush.
void collect_subtree(PageTable& pt, const PagingFormat& f, unsigned level, uint64_t table_pfn,
                     std::vector<Page*>* out) {
  Machine& m = *pt.machine;
  if (level + 1 < f.levels) {
    for (uint64_t i = 0; i < (uint64_t{1} << f.index_bits); ++i) {
      const pteval_t v = table_entry(m, f, table_pfn, i).load();
      if (pte_present(v)) collect_subtree(pt, f, level + 1, pte_pfn(v), out);
    }
  }
  out->push_back(m.pfn_to_page(table_pfn));
}

}  // namespace

PagingMode paging_mode(const Machine& m) {
  if (m.arch() == Arch::i386) return PagingMode::kI386;
  return m.config().paging_levels.value_or(4) == 5 ? PagingMode::kX86_64_5Level
                                                   : PagingMode::kX86_64_4Level;
}

bool addr_canonical(PagingMode mode, uint64_t addr) {
  const PagingFormat& f = paging_format(mode);
  if (f.va_bits == 32) return addr >> 32 == 0;
  return to_canonical(f, to_linear(f, addr)) == addr;
}

bool addr_kernel_half(PagingMode mode, uint64_t addr) {
  const PagingFormat& f = paging_format(mode);
  return table_index(f, 0, to_linear(f, addr)) >= f.kernel_index;
}

bool pgd_alloc(Machine& m, PagingMode mode, PageTable& pt) {
  if (mode != paging_mode(m)) {
    vm_warn(m, "pgd_alloc",
            fmt::format("{} requested on a machine with {}", mode_name(mode),
                        mode_name(paging_mode(m))));
    return false;
  }
  if (pt.pgd) {
    vm_warn(m, "pgd_alloc", "the tree already has a top-level table");
    return false;
  }
  VmState& vs = vm_state(m);
  const PagingFormat& f = paging_format(mode);
  pt.machine = &m;
  pt.mode = mode;
  pt.cpumask.store(0, std::memory_order_relaxed);
  const uint32_t asid = vs.alloc_asid();
  if (asid == 0) {
    vm_warn(m, "pgd_alloc", "out of address-space ids");
    return false;
  }
  Page* pgd = alloc_table(pt, GFP_KERNEL);
  if (!pgd) {
    vs.free_asid(asid);
    return false;
  }
  pt.asid = asid;
  pt.pgd = pgd;
  const uint64_t kpgd = m.page_to_pfn(vs.kernel.pgd), upgd = m.page_to_pfn(pgd);
  std::lock_guard<std::mutex> g(vs.pgd_lock);
  for (uint64_t i = f.kernel_index; i < (uint64_t{1} << f.index_bits); ++i)
    table_entry(m, f, upgd, i).store(table_entry(m, f, kpgd, i).load());
  vs.pgd_list.push_back(&pt);
  return true;
}

void pgd_free(PageTable& pt) {
  if (!pt.pgd) return;
  Machine& m = *pt.machine;
  VmState& vs = vm_state(m);
  if (&pt == &vs.kernel) {
    vm_warn(m, "pgd_free", "the kernel's tree is never freed");
    return;
  }
  const PagingFormat& f = paging_format(pt.mode);
  const uint64_t pgd = m.page_to_pfn(pt.pgd);
  {
    std::lock_guard<std::mutex> g(vs.pgd_lock);
    std::erase(vs.pgd_list, &pt);
  }
  std::vector<Page*> tables;
  for (uint64_t i = 0; i < f.kernel_index; ++i) {
    EntryRef e = table_entry(m, f, pgd, i);
    const pteval_t v = e.load();
    if (!pte_present(v)) continue;
    if (tables.empty())
      vm_warn(m, "pgd_free", "lower tables still present (free_pgtables first); freeing them");
    e.store(0);
    collect_subtree(pt, f, 1, pte_pfn(v), &tables);
  }
  // No CPU may use the asid or walk the tree any more before both go.
  flush_tlb_mm(pt);
  for (Page* t : tables) free_table(pt, t);
  free_table(pt, pt.pgd);
  pt.pgd = nullptr;
  vs.free_asid(pt.asid);
  pt.asid = 0;
}

PageTable& kernel_page_table(Machine& m) {
  return vm_state(m).kernel;
}

Page* zero_page(Machine& m) {
  return vm_state(m).zero_page;
}

pteval_t pte_get(const PageTable& pt, uint64_t addr) {
  if (!pt.pgd || !addr_canonical(pt.mode, addr)) return 0;
  const char* e = find_entry(pt, to_linear(paging_format(pt.mode), addr));
  return e ? EntryRef(const_cast<char*>(e), paging_format(pt.mode).entry_shift == 3).load() : 0;
}

bool pte_set(PageTable& pt, uint64_t addr, pteval_t val, gfp_t gfp) {
  if (!pt.machine) return false;
  Machine& m = *pt.machine;
  if (std::string err = addr_error(pt, addr, true); !err.empty()) {
    vm_warn(m, "pte_set", err);
    return false;
  }
  const PagingFormat& f = paging_format(pt.mode);
  if (f.entry_shift == 2) {
    val &= ~_PAGE_NX;
    if (val >> 32) {
      vm_warn(m, "pte_set", fmt::format("entry {:#x} does not fit the 32-bit format", val));
      return false;
    }
  }
  if (pte_present(val) && !m.pfn_valid(pte_pfn(val))) {
    vm_warn(m, "pte_set", fmt::format("pfn {:#x} is not a RAM page of this machine", pte_pfn(val)));
    return false;
  }
  char* e;
  if (!get_or_alloc_entry(pt, to_linear(f, addr), gfp, &e)) return false;
  EntryRef(e, f.entry_shift == 3).store(val);
  return true;
}

pteval_t pte_clear(PageTable& pt, uint64_t addr) {
  if (!pt.machine) return 0;
  if (std::string err = addr_error(pt, addr, true); !err.empty()) {
    vm_warn(*pt.machine, "pte_clear", err);
    return 0;
  }
  const PagingFormat& f = paging_format(pt.mode);
  char* e = find_entry(pt, to_linear(f, addr));
  return e ? EntryRef(e, f.entry_shift == 3).exchange(0) : 0;
}

bool pte_set_flags_atomic(PageTable& pt, uint64_t addr, pteval_t bits) {
  if (!pt.pgd || !addr_canonical(pt.mode, addr)) return false;
  const PagingFormat& f = paging_format(pt.mode);
  if (f.entry_shift == 2) bits &= ~_PAGE_NX;
  char* p = find_entry(pt, to_linear(f, addr));
  if (!p) return false;
  EntryRef e(p, f.entry_shift == 3);
  pteval_t v = e.load();
  do {
    if (!pte_present(v)) return false;
    if ((v & bits) == bits) return true;
  } while (!e.cas(v, v | bits));
  return true;
}

bool pte_clear_flags_atomic(PageTable& pt, uint64_t addr, pteval_t bits) {
  if (!pt.pgd || !addr_canonical(pt.mode, addr)) return false;
  const PagingFormat& f = paging_format(pt.mode);
  char* p = find_entry(pt, to_linear(f, addr));
  if (!p) return false;
  EntryRef e(p, f.entry_shift == 3);
  pteval_t v = e.load();
  do {
    if (!pte_present(v) || !(v & bits)) return false;
  } while (!e.cas(v, v & ~bits));
  return true;
}

// --- check() -------------------------------------------------------------------

namespace {

struct Checker {
  const PageTable& pt;
  const Machine& m;
  const PagingFormat& f;
  const Page* zero;
  uint64_t tables = 0;
  std::map<const Page*, int> maps;  // entries of this tree per normal page
  std::string err;

  bool frame_ok(uint64_t pfn, const char* what, uint64_t lin) {
    if (!m.pfn_valid(pfn)) {
      err = fmt::format("{} at {:#x}: pfn {:#x} is not RAM", what, to_canonical(f, lin), pfn);
      return false;
    }
    const Page* p = const_cast<Page*>(m.pfn_to_page(pfn))->head();
    if (p->test(PG_buddy) || p->ref_count() < 1) {
      err = fmt::format("{} at {:#x}: pfn {:#x} is a free frame", what, to_canonical(f, lin), pfn);
      return false;
    }
    return true;
  }

  bool table(unsigned level, uint64_t pfn, uint64_t base) {
    ++tables;
    const uint64_t n = uint64_t{1} << f.index_bits;
    const bool user_top = level == 0 && !is_kernel_tree(pt);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t lin = base + (i << f.shift[level]);
      const pteval_t v = table_entry(m, f, pfn, i).load();
      if (user_top && i >= f.kernel_index) {
        const PageTable& k = vm_state_if(m)->kernel;
        const pteval_t kv = table_entry(m, f, m.page_to_pfn(k.pgd), i).load();
        if (v != kv) {
          err =
              fmt::format("top-level entry {} ({:#x}) differs from the kernel's ({:#x})", i, v, kv);
          return false;
        }
        continue;
      }
      if (level + 1 < f.levels) {
        if (v == 0) continue;
        if (!pte_present(v) || (v & _PAGE_PSE)) {
          err = fmt::format("level {} entry at {:#x} is not a table entry: {:#x}", level,
                            to_canonical(f, lin), v);
          return false;
        }
        if (!frame_ok(pte_pfn(v), "table", lin) || !table(level + 1, pte_pfn(v), lin)) return false;
        continue;
      }
      if (!pte_present(v)) continue;
      if (!frame_ok(pte_pfn(v), "entry", lin)) return false;
      const Page* page = m.pfn_to_page(pte_pfn(v));
      if (page == zero) {
        if (v & _PAGE_RW) {
          err = fmt::format("the zero page is mapped writable at {:#x}", to_canonical(f, lin));
          return false;
        }
      } else if (!(v & _PAGE_SPECIAL)) {
        ++maps[page];
      }
    }
    return true;
  }
};

}  // namespace

std::string check(const PageTable& pt) {
  if (!pt.pgd) return "the tree has no top-level table";
  const Machine& m = *pt.machine;
  const VmState* vs = vm_state_if(m);
  if (!vs) return "the machine has no vm state";
  Checker c{pt, m, paging_format(pt.mode), vs->zero_page};
  if (!c.frame_ok(m.page_to_pfn(pt.pgd), "top-level table", 0)) return c.err;
  if (!c.table(0, m.page_to_pfn(pt.pgd), 0)) return c.err;
  const uint64_t nr = pt.nr_tables.load(std::memory_order_relaxed);
  if (nr != c.tables)
    return fmt::format("nr_tables is {} but {} tables are reachable", nr, c.tables);
  // Kernel mappings (vmalloc, kmap) are not reverse-mapped: no mapcount.
  if (&pt == &vs->kernel) return "";
  for (const auto& [page, n] : c.maps) {
    const int mc = page->mapcount.load(std::memory_order_relaxed);
    if (mc < n)
      return fmt::format("pfn {:#x} is mapped {} times here but its mapcount is {}",
                         m.page_to_pfn(page), n, mc);
  }
  return "";
}

}  // namespace mmkit
