// Per-CPU page lists (struct per_cpu_pages, mm/page_alloc.c).
//
// Each zone keeps, per CPU, one list per (order 0..3, migrate type). A freed
// page is hot: it goes to the head, and the next allocation takes it back
// from there while it is still in the CPU's cache; a cold request
// (__GFP_COLD) takes from the tail. Lists refill from the buddy allocator
// `batch` blocks at a time under zone.lock, and when a CPU holds `high`
// pages it returns a batch (doubling while it keeps freeing without
// allocating: free_factor) from the tails, round-robin across the lists.
//
// Only the thread bound to the CPU touches its lists, so the alloc/free fast
// paths take no lock and no atomic read-modify-write. Another thread drains
// a CPU only after taking it over (CpuState::owner), or asks the owner to do
// so at its next free (drain_request).
#include <algorithm>

#include "page_alloc/internal.h"

namespace mmkit {

namespace {

void pcp_count_add(PerCpuPages& pcp, int n) {
  pcp.count.store(pcp.count.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// nr_pcp_free(): how many pages to return when the list reached `high`.
int nr_pcp_free(PerCpuPages& pcp, int high, int batch) {
  if (high < batch) return 1;
  const int min_nr_free = batch, max_nr_free = high - batch;
  batch <<= pcp.free_factor;
  if (batch < max_nr_free) pcp.free_factor++;
  return std::clamp(batch, min_nr_free, max_nr_free);
}

// free_pcppages_bulk(): return `count` pages to the buddy lists, oldest
// first, starting with list `pindex`.
void free_pcppages_bulk(Zone& z, int count, PerCpuPages& pcp, int pindex) {
  Machine& m = *z.machine;
  count = std::min(count, pcp.count.load(std::memory_order_relaxed));
  SpinGuard g(z.lock);
  --pindex;
  while (count > 0) {
    ListHead* list;
    do {
      if (++pindex > static_cast<int>(NR_PCP_LISTS) - 1) pindex = 0;
      list = &pcp.lists[pindex];
    } while (list->empty());
    const unsigned order = pindex_to_order(pindex);
    const int nr = 1 << order;
    do {
      Page* page = container_of(list->prev, &Page::lru);
      ListHead::del(&page->lru);
      count -= nr;
      pcp_count_add(pcp, -nr);
      const uint64_t pfn = m.page_to_pfn(page);
      __free_one_page(z, page, pfn, order, m.get_pageblock_migratetype(pfn), Fpi::kNone);
    } while (count > 0 && !list->empty());
  }
}

}  // namespace

Page* rmqueue_pcplist(Zone& z, CpuState& cpu, unsigned order, unsigned mt, unsigned alloc_flags,
                      bool cold) {
  PerCpuPages& pcp = z.pcp[cpu.id];
  pcp.free_factor >>= 1;
  ListHead* list = &pcp.lists[order_to_pindex(mt, order)];
  if (list->empty()) [[unlikely]] {
    int batch = pcp.batch.load(std::memory_order_relaxed);
    // Scale by order only when batch says pages may be kept here (a batch
    // of 1 is a small zone's: one block at a time).
    if (batch > 1) batch = std::max(batch >> order, 2);
    const int got = rmqueue_bulk(z, order, batch, list, mt, alloc_flags);
    if (!got) return nullptr;
    pcp_count_add(pcp, got << order);
  }
  Page* page = container_of(cold ? list->prev : list->next, &Page::lru);
  ListHead::del(&page->lru);
  pcp_count_add(pcp, -(1 << order));
  return page;
}

void free_unref_page(Zone& z, CpuState& cpu, Page* page, uint64_t pfn, unsigned order) {
  unsigned mt = z.machine->get_pageblock_migratetype(pfn);
  if (mt >= MIGRATE_PCPTYPES) [[unlikely]] {
    if (mt == MIGRATE_ISOLATE) {
      free_one_page(z, page, pfn, order, Fpi::kNone);
      return;
    }
    mt = MIGRATE_MOVABLE;  // high-atomic pages ride the movable list
  }
  free_unref_page_commit(z, z.pcp[cpu.id], page, mt, order);
}

void pcp_overflow(Zone& z, PerCpuPages& pcp, unsigned pindex) {
  if (pcp.drain_request.load(std::memory_order_relaxed)) {
    pcp.drain_request.store(false, std::memory_order_relaxed);
    drain_pages_zone(z, pcp);
    return;
  }
  const int high = pcp.high.load(std::memory_order_relaxed);
  free_pcppages_bulk(z, nr_pcp_free(pcp, high, pcp.batch.load(std::memory_order_relaxed)), pcp,
                     pindex);
}

void drain_pages_zone(Zone& z, PerCpuPages& pcp) {
  while (pcp.count.load(std::memory_order_relaxed) > 0)
    free_pcppages_bulk(z, pcp.count.load(std::memory_order_relaxed), pcp, 0);
}

void drain_local_pages(Machine& m) {
  CpuState* cpu = this_cpu(m);
  if (!cpu) return;
  m.for_each_zone([&](Zone& z) {
    if (z.populated()) drain_pages_zone(z, z.pcp[cpu->id]);
  });
}

unsigned drain_all_pages(Machine& m) {
  unsigned drained = 0;
  CpuState* self = this_cpu(m);
  for (unsigned c = 0; c < m.nr_cpus(); ++c) {
    CpuState& cpu = m.cpu(static_cast<int>(c));
    if (&cpu == self) {
      drain_local_pages(m);
      ++drained;
      continue;
    }
    uint64_t expected = 0;
    if (cpu.owner.compare_exchange_strong(expected, kDrainerToken, std::memory_order_acquire)) {
      m.for_each_zone([&](Zone& z) {
        if (z.populated()) drain_pages_zone(z, z.pcp[c]);
      });
      cpu.owner.store(0, std::memory_order_release);
      ++drained;
    } else {
      // Bound elsewhere: its owner drains at its next free (queued per-CPU work).
      m.for_each_zone([&](Zone& z) {
        if (z.populated() && z.pcp[c].count.load(std::memory_order_relaxed))
          z.pcp[c].drain_request.store(true, std::memory_order_relaxed);
      });
    }
  }
  return drained;
}

uint64_t zone_pcp_pages(const Zone& z) {
  uint64_t n = 0;
  for (unsigned c = 0; c < z.machine->nr_cpus(); ++c)
    n += static_cast<uint64_t>(z.pcp[c].count.load(std::memory_order_relaxed));
  return n;
}

}  // namespace mmkit
