// Watermarks, lowmem_reserve and per-CPU list sizes (mm/page_alloc.c:
// calculate_min_free_kbytes, __setup_per_zone_wmarks,
// setup_per_zone_lowmem_reserve, zone_batchsize, zone_highsize).
//
//   min_free_kbytes = clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144)
//   lowmem zone:  min = pages_min * managed / lowmem_pages
//   high/movable: min = clamp(managed / 1024, SWAP_CLUSTER_MAX, 128)
//   gap = max(min_share / 4, managed * watermark_scale_factor / 10000)
//   low = min + gap, high = low + gap
//   lowmem_reserve[j] of zone i = sum(managed of zones i+1..j) / ratio[i]
//   batch = rounddown_pow_of_two(b + b/2) - 1, b = min(managed >> 10, 256) / 4
//   high  = max(low / CPUs on the node, 4 * batch)
#include <algorithm>

#include "base/bitops.h"
#include "page_alloc/internal.h"

namespace mmkit {

namespace {

bool is_lowmem(const Zone& z) {
  return z.kind != ZoneKind::HIGHMEM && z.kind != ZoneKind::MOVABLE;
}

}  // namespace

uint64_t calculate_min_free_kbytes(const Machine& m) {
  if (m.user_min_free_kbytes) return m.user_min_free_kbytes;
  // nr_free_buffer_pages(): managed minus high watermark over the zones
  // GFP_USER may use (everything up to Normal).
  uint64_t pages = 0;
  m.for_each_zone([&](const Zone& z) {
    if (z.idx <= m.zone_index(ZoneKind::NORMAL) && z.managed() > z.high_wmark())
      pages += z.managed() - z.high_wmark();
  });
  const uint64_t lowmem_kbytes = pages * (PAGE_SIZE >> 10);
  return std::clamp<uint64_t>(int_sqrt(lowmem_kbytes * 16), 128, 262144);
}

void setup_per_zone_wmarks(Machine& m) {
  const uint64_t pages_min = m.min_free_kbytes >> (PAGE_SHIFT - 10);
  uint64_t lowmem_pages = 0;
  m.for_each_zone([&](const Zone& z) { lowmem_pages += is_lowmem(z) ? z.managed() : 0; });
  m.for_each_zone([&](Zone& z) {
    SpinGuard g(z.lock);
    const uint64_t managed = z.managed();
    uint64_t tmp = lowmem_pages ? pages_min * managed / lowmem_pages : 0;
    if (!is_lowmem(z)) {
      // __GFP_HIGH and PF_MEMALLOC allocations rarely need highmem or
      // movable pages: cap their minimum, but not the kswapd gaps below.
      z.watermark[WMARK_MIN] = std::clamp<uint64_t>(managed / 1024, SWAP_CLUSTER_MAX, 128);
    } else {
      z.watermark[WMARK_MIN] = tmp;
    }
    tmp = std::max(tmp >> 2, mult_frac(managed, m.watermark_scale_factor, 10000));
    z.watermark[WMARK_LOW] = z.watermark[WMARK_MIN] + tmp;
    z.watermark[WMARK_HIGH] = z.watermark[WMARK_LOW] + tmp;
  });
  zone_pcp_update(m);
  pcp_class_update(m);
}

void pcp_class_update(Machine& m, const Zone* only) {
  for (unsigned c = 0; c < m.nr_cpus(); ++c)
    for (PcpClass& cls : m.cpu(static_cast<int>(c)).pcp_class) {
      if (!cls.zone || (only && cls.zone != only)) continue;
      const Zone& z = *cls.zone;
      const uint64_t above =
          z.low_wmark() + z.lowmem_reserve[cls.highest] + z.nr_reserved_highatomic;
      cls.free_above.store(static_cast<int64_t>(above), std::memory_order_relaxed);
    }
}

void setup_per_zone_lowmem_reserve(Machine& m) {
  for (unsigned n = 0; n < m.nr_nodes(); ++n) {
    Node& node = m.node(static_cast<int>(n));
    for (unsigned i = 0; i < MAX_NR_ZONES; ++i) {
      Zone& z = node.zones[i];
      const unsigned ratio = m.lowmem_reserve_ratio[i];
      const bool clear = !ratio || !z.managed();
      uint64_t managed = 0;
      z.lowmem_reserve[i] = 0;
      for (unsigned j = i + 1; j < MAX_NR_ZONES; ++j) {
        managed += node.zones[j].managed();
        z.lowmem_reserve[j] = clear ? 0 : managed / ratio;
      }
    }
  }
  pcp_class_update(m);
}

int zone_batchsize(const Zone& z) {
  int batch = static_cast<int>(std::min<uint64_t>(z.managed() >> 10, (1u << 20) / PAGE_SIZE));
  batch /= 4;  // effectively *= 4 below
  if (batch < 1) batch = 1;
  // A 2^n - 1 batch avoids two CPUs splitting the page colours between them.
  batch = static_cast<int>(rounddown_pow_of_two(batch + batch / 2)) - 1;
  return batch;
}

int zone_highsize(const Machine& m, const Zone& z, int batch) {
  const uint64_t total = m.percpu_pagelist_high_fraction
                             ? z.managed() / m.percpu_pagelist_high_fraction
                             : z.low_wmark();
  uint64_t cpus = m.node(z.node).cpus.size();
  if (!cpus) cpus = m.nr_cpus();
  return std::max(static_cast<int>(total / cpus), batch << 2);
}

void zone_pcp_update(Machine& m) {
  m.for_each_zone([&](Zone& z) {
    const int batch = std::max(1, zone_batchsize(z));
    const int high = zone_highsize(m, z, batch);
    for (unsigned c = 0; c < m.nr_cpus(); ++c) {
      z.pcp[c].batch.store(batch, std::memory_order_relaxed);
      z.pcp[c].high.store(high, std::memory_order_relaxed);
    }
  });
}

uint64_t totalreserve_pages(const Machine& m) {
  uint64_t total = 0;
  for (unsigned nid = 0; nid < m.nr_nodes(); ++nid) {
    const Node& n = m.node(static_cast<int>(nid));
    for (unsigned i = 0; i < n.nr_zones; ++i) {
      const Zone& z = n.zones[i];
      uint64_t max = 0;
      for (unsigned j = i; j < MAX_NR_ZONES; ++j) max = std::max(max, z.lowmem_reserve[j]);
      max += z.high_wmark();
      total += std::min(max, z.managed());
    }
  }
  return total;
}

}  // namespace mmkit
