// /proc/meminfo, as Linux 6.1's fs/proc/meminfo.c meminfo_proc_show() prints
// it, followed by hugetlb_report_meminfo() (mm/hugetlb.c) and x86's
// arch_report_meminfo() (arch/x86/mm/pat/set_memory.c).
//
// Most lines come from show_val_kb(): the label as written in the source
// (colon and padding to 16 columns included), the value in kB right-aligned
// in 8 columns (seq_put_decimal_ull_width), then " kB". A few lines use their
// own seq_printf widths ("HardwareCorrupted: %5lu kB", "HugePages_Total:
// %5lu"); MeminfoField keeps each line's prefix and width as Linux prints it.
//
// Values: MemTotal is totalram_pages (managed pages), MemFree is
// NR_FREE_PAGES (pages in the buddy lists; 6.1 does not count pcp pages),
// MemAvailable is si_mem_available(): free - totalreserve_pages, plus the
// file LRU pages and the reclaimable slab and kernel memory, each less
// min(half of it, the zones' low watermarks), at least 0. Cached is
// NR_FILE_PAGES less the swap cache (which Linux counts in NR_FILE_PAGES
// too); Dirty and Writeback the nodes' NR_FILE_DIRTY and NR_WRITEBACK. SReclaimable and
// SUnreclaim are the nodes' NR_SLAB_RECLAIMABLE / NR_SLAB_UNRECLAIMABLE
// (slab pages of SLAB_RECLAIM_ACCOUNT caches and of the others), Slab their
// sum, KReclaimable SReclaimable plus NR_KERNEL_MISC_RECLAIMABLE. High/Low
// lines appear on i386 (CONFIG_HIGHMEM) only. CommitLimit and Committed_AS
// are mm/util.c's vm_commit_limit() and vm_memory_committed(); AnonPages and
// PageTables the nodes' NR_ANON_PAGES and NR_PAGETABLE; SwapTotal and
// SwapFree the configured swap size before the swap layer starts, then the
// areas'; Zswap and Zswapped zswap's pool pages and stored pages.
// VmallocTotal is VMALLOC_END - VMALLOC_START of the area mmkit manages
// (vmalloc/layout.h: on x86_64 the configured size less one byte, as Linux's
// VMALLOC_END is inclusive), and VmallocUsed vmalloc_nr_pages() (6.1: pages
// vmalloc holds, vmap's not counted). Everything mmkit does not model yet
// prints 0.
#include <fmt/format.h>

#include <algorithm>

#include "page_alloc/page_alloc.h"
#include "procfs/internal.h"
#include "procfs/procfs.h"
#include "swap/swap.h"
#include "swap/zswap.h"
#include "vm/overcommit.h"
#include "vmalloc/layout.h"
#include "vmalloc/vmalloc.h"

namespace mmkit {
namespace procfs_internal {

uint64_t free_highmem_pages(const Machine& m) {
  uint64_t n = 0;
  m.for_each_zone([&](const Zone& z) {
    if (z.kind == ZoneKind::HIGHMEM) n += static_cast<uint64_t>(std::max<int64_t>(z.nr_free(), 0));
  });
  return n;
}

}  // namespace procfs_internal

namespace {

constexpr uint64_t K(uint64_t pages) {
  return pages << (PAGE_SHIFT - 10);
}

// global_node_page_state(): the nodes' sum, never below 0.
uint64_t node_pages(const Machine& m, NodeStat item) {
  return static_cast<uint64_t>(std::max<int64_t>(m.node_stat_sum(item), 0));
}

// si_mem_available() (mm/page_alloc.c in 6.1).
uint64_t si_mem_available(const Machine& m, uint64_t freeram) {
  uint64_t wmark_low = 0;
  m.for_each_zone([&](const Zone& z) { wmark_low += z.low_wmark(); });
  int64_t available = static_cast<int64_t>(freeram) - static_cast<int64_t>(totalreserve_pages(m));
  // Not all of the page cache can be freed: what reclaim would leave to
  // keep the system working is taken as the low watermarks.
  uint64_t pagecache =
      node_pages(m, NodeStat::NR_ACTIVE_FILE) + node_pages(m, NodeStat::NR_INACTIVE_FILE);
  pagecache -= std::min(pagecache / 2, wmark_low);
  available += static_cast<int64_t>(pagecache);
  uint64_t reclaimable = node_pages(m, NodeStat::NR_SLAB_RECLAIMABLE) +
                         node_pages(m, NodeStat::NR_KERNEL_MISC_RECLAIMABLE);
  reclaimable -= std::min(reclaimable / 2, wmark_low);
  available += static_cast<int64_t>(reclaimable);
  return available < 0 ? 0 : static_cast<uint64_t>(available);
}

}  // namespace

std::vector<MeminfoField> meminfo_fields(const Machine& m) {
  namespace pi = procfs_internal;
  const uint64_t totalram = m.totalram_pages();
  const uint64_t freeram = nr_free_pages(m);
  const uint64_t available = si_mem_available(m, freeram);
  const uint64_t sreclaimable = node_pages(m, NodeStat::NR_SLAB_RECLAIMABLE);
  const uint64_t sunreclaim = node_pages(m, NodeStat::NR_SLAB_UNRECLAIMABLE);
  const bool i386 = m.arch() == Arch::i386;

  std::vector<MeminfoField> f;
  auto kb = [&](std::string_view prefix, uint64_t pages) {
    f.push_back({prefix, 8, true, K(pages)});
  };
  auto raw = [&](std::string_view prefix, unsigned width, bool is_kb, uint64_t v) {
    f.push_back({prefix, width, is_kb, v});
  };

  kb("MemTotal:       ", totalram);
  kb("MemFree:        ", freeram);
  kb("MemAvailable:   ", available);
  kb("Buffers:        ", 0);
  const uint64_t file_pages = node_pages(m, NodeStat::NR_FILE_PAGES);
  const uint64_t swapcache = node_pages(m, NodeStat::NR_SWAPCACHE);
  kb("Cached:         ", file_pages > swapcache ? file_pages - swapcache : 0);
  const uint64_t lru[5] = {
      node_pages(m, NodeStat::NR_INACTIVE_ANON), node_pages(m, NodeStat::NR_ACTIVE_ANON),
      node_pages(m, NodeStat::NR_INACTIVE_FILE), node_pages(m, NodeStat::NR_ACTIVE_FILE),
      node_pages(m, NodeStat::NR_UNEVICTABLE)};
  kb("SwapCached:     ", node_pages(m, NodeStat::NR_SWAPCACHE));
  kb("Active:         ", lru[1] + lru[3]);
  kb("Inactive:       ", lru[0] + lru[2]);
  kb("Active(anon):   ", lru[1]);
  kb("Inactive(anon): ", lru[0]);
  kb("Active(file):   ", lru[3]);
  kb("Inactive(file): ", lru[2]);
  kb("Unevictable:    ", lru[4]);
  kb("Mlocked:        ", 0);
  if (i386) {  // CONFIG_HIGHMEM
    const uint64_t totalhigh = m.totalhigh_pages();
    const uint64_t freehigh = pi::free_highmem_pages(m);
    kb("HighTotal:      ", totalhigh);
    kb("HighFree:       ", freehigh);
    kb("LowTotal:       ", totalram - totalhigh);
    kb("LowFree:        ", freeram > freehigh ? freeram - freehigh : 0);
  }
  // The swap areas; before any swapon (a plain boot), the config's size, unused.
  kb("SwapTotal:      ", total_swap_pages(m));
  kb("SwapFree:       ", swap_layer_active(m) ? swap_free_pages(m) : total_swap_pages(m));
  // CONFIG_ZSWAP: the pool's pages and the pages stored in it.
  kb("Zswap:          ", zswap_pool_pages(m));
  kb("Zswapped:       ", zswap_stored_pages(m));
  kb("Dirty:          ", node_pages(m, NodeStat::NR_FILE_DIRTY));
  kb("Writeback:      ", node_pages(m, NodeStat::NR_WRITEBACK));
  kb("AnonPages:      ", node_pages(m, NodeStat::NR_ANON_PAGES));
  kb("Mapped:         ", node_pages(m, NodeStat::NR_FILE_MAPPED));
  kb("Shmem:          ", node_pages(m, NodeStat::NR_SHMEM));
  kb("KReclaimable:   ", sreclaimable + node_pages(m, NodeStat::NR_KERNEL_MISC_RECLAIMABLE));
  kb("Slab:           ", sreclaimable + sunreclaim);
  kb("SReclaimable:   ", sreclaimable);
  kb("SUnreclaim:     ", sunreclaim);
  raw("KernelStack:    ", 8, true, 0);
  kb("PageTables:     ", node_pages(m, NodeStat::NR_PAGETABLE));
  kb("SecPageTables:  ", 0);
  kb("NFS_Unstable:   ", 0);
  kb("Bounce:         ", 0);
  kb("WritebackTmp:   ", 0);
  kb("CommitLimit:    ", vm_commit_limit(m));
  kb("Committed_AS:   ", vm_memory_committed(m));
  raw("VmallocTotal:   ", 8, true, kernel_layout(m).vmalloc_total() >> 10);
  kb("VmallocUsed:    ", vmalloc_nr_pages(m));
  kb("VmallocChunk:   ", 0);
  kb("Percpu:         ", 0);
  raw("HardwareCorrupted: ", 5, true, 0);  // CONFIG_MEMORY_FAILURE
  kb("AnonHugePages:  ", 0);               // CONFIG_TRANSPARENT_HUGEPAGE
  kb("ShmemHugePages: ", 0);
  kb("ShmemPmdMapped: ", 0);
  kb("FileHugePages:  ", 0);
  kb("FilePmdMapped:  ", 0);
  kb("CmaTotal:       ", 0);  // CONFIG_CMA
  kb("CmaFree:        ", 0);
  // hugetlb_report_meminfo(): the default hstate is 2 MiB (PMD) on x86_64 and PAE.
  raw("HugePages_Total:   ", 5, false, 0);
  raw("HugePages_Free:    ", 5, false, 0);
  raw("HugePages_Rsvd:    ", 5, false, 0);
  raw("HugePages_Surp:    ", 5, false, 0);
  raw("Hugepagesize:   ", 8, true, 2048);
  raw("Hugetlb:        ", 8, true, 0);
  // arch_report_meminfo(): DirectMap2M on x86_64 and PAE; 1G with gbpages (x86_64).
  raw("DirectMap4k:    ", 8, true, 0);
  raw("DirectMap2M:    ", 8, true, 0);
  if (!i386) raw("DirectMap1G:    ", 8, true, 0);
  return f;
}

std::string render_meminfo(const Machine& m) {
  fmt::memory_buffer out;
  for (const MeminfoField& f : meminfo_fields(m))
    fmt::format_to(std::back_inserter(out), "{}{:>{}}{}\n", f.prefix, f.value, f.width,
                   f.kb ? " kB" : "");
  return fmt::to_string(out);
}

}  // namespace mmkit
