// /proc/zoneinfo: every zone of every node, populated or not, as Linux 6.1's
// mm/vmstat.c zoneinfo_show_print() prints it:
//
//   Node 0, zone    DMA32
//     per-node stats                      (first populated zone of a node only)
//         nr_inactive_anon 0
//         ...
//     pages free     475587
//           boost    0
//           min      5738
//           low      7172
//           high     8606
//           spanned  1044480
//           present  782288
//           managed  475587
//           cma      0
//           protection: (0, 0, 1438, 1438)
//         nr_free_pages 475587             (zone_stat_item, then numa_stat_item)
//         ...
//     pagesets
//       cpu: 0
//                 count: 0
//                 high:  0
//                 batch: 1
//     vm stats threshold: 24
//     node_unreclaimable:  0
//     start_pfn:           4096
//
// An unpopulated zone stops after its protection line. 6.1 has no "promo"
// watermark line and no high_min/high_max pageset lines (both came later).
// Counters mmkit does not keep yet print 0.
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "base/bitops.h"
#include "procfs/internal.h"
#include "procfs/procfs.h"

namespace mmkit {
namespace procfs_internal {

int stat_threshold(const Machine& m, const Zone& z) {
  const uint64_t mem = z.managed() >> (27 - PAGE_SHIFT);  // in 128 MiB units
  const int threshold = 2 * fls(m.nr_cpus()) * (1 + fls(mem));
  return std::min(125, threshold);
}

}  // namespace procfs_internal

namespace {

// The numbers of one zone, read under zone->lock.
struct ZoneSnapshot {
  uint64_t free = 0;
  uint64_t wmark[NR_WMARK] = {};
  uint64_t lowmem_reserve[MAX_NR_ZONES] = {};
  uint64_t managed = 0;
};

ZoneSnapshot snapshot(const Zone& z) {
  ZoneSnapshot s;
  SpinGuard g(const_cast<SpinLock&>(z.lock));
  s.free = static_cast<uint64_t>(std::max<int64_t>(z.nr_free(), 0));
  std::copy(std::begin(z.watermark), std::end(z.watermark), s.wmark);
  std::copy(std::begin(z.lowmem_reserve), std::end(z.lowmem_reserve), s.lowmem_reserve);
  s.managed = z.managed();
  return s;
}

bool is_zone_first_populated(const Node& n, const Zone& z) {
  for (unsigned i = 0; i < n.nr_zones; ++i)
    if (n.zones[i].populated()) return &n.zones[i] == &z;
  return false;
}

void print_zone(fmt::memory_buffer& out, const Machine& m, const Node& n, const Zone& z) {
  namespace pi = procfs_internal;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "Node {}, zone {:>8}", n.id, z.name);
  if (is_zone_first_populated(n, z)) {
    fmt::format_to(it, "\n  per-node stats");
    for (std::string_view name : pi::node_stat_names(m))
      fmt::format_to(it, "\n      {:<12} {}", name, pi::node_stat_value(n, name));
  }
  const ZoneSnapshot s = snapshot(z);
  fmt::format_to(it,
                 "\n  pages free     {}"
                 "\n        boost    {}"
                 "\n        min      {}"
                 "\n        low      {}"
                 "\n        high     {}"
                 "\n        spanned  {}"
                 "\n        present  {}"
                 "\n        managed  {}"
                 "\n        cma      {}",
                 s.free, 0, s.wmark[WMARK_MIN], s.wmark[WMARK_LOW], s.wmark[WMARK_HIGH],
                 z.spanned_pages, z.present(), s.managed, 0);
  fmt::format_to(it, "\n        protection: ({}", s.lowmem_reserve[0]);
  for (unsigned i = 1; i < MAX_NR_ZONES; ++i) fmt::format_to(it, ", {}", s.lowmem_reserve[i]);
  out.push_back(')');

  if (!z.populated()) {  // "If unpopulated, no other information is useful"
    out.push_back('\n');
    return;
  }

  for (std::string_view name : pi::kZoneStatNames)
    fmt::format_to(it, "\n      {:<12} {}", name, name == "nr_free_pages" ? s.free : 0);
  if (pi::has_numa(m))
    for (std::string_view name : pi::kNumaStatNames)
      fmt::format_to(it, "\n      {:<12} {}", name, 0);

  fmt::format_to(it, "\n  pagesets");
  const int threshold = pi::stat_threshold(m, z);
  for (unsigned cpu = 0; cpu < m.nr_cpus(); ++cpu) {
    int count = 0, high = 0, batch = 0;
    if (z.pcp) {
      const PerCpuPages& pcp = z.pcp[cpu];
      count = pcp.count.load(std::memory_order_relaxed);
      high = pcp.high.load(std::memory_order_relaxed);
      batch = pcp.batch.load(std::memory_order_relaxed);
    }
    fmt::format_to(it,
                   "\n    cpu: {}"
                   "\n              count: {}"
                   "\n              high:  {}"
                   "\n              batch: {}",
                   cpu, count, high, batch);
    fmt::format_to(it, "\n  vm stats threshold: {}", threshold);
  }
  fmt::format_to(it,
                 "\n  node_unreclaimable:  {}"
                 "\n  start_pfn:           {}",
                 0, z.zone_start_pfn);
  out.push_back('\n');
}

}  // namespace

std::string render_zoneinfo(const Machine& m) {
  fmt::memory_buffer out;
  for (unsigned nid = 0; nid < m.nr_nodes(); ++nid) {
    const Node& n = m.node(static_cast<int>(nid));
    for (unsigned i = 0; i < n.nr_zones; ++i) print_zone(out, m, n, n.zones[i]);
  }
  return fmt::to_string(out);
}

}  // namespace mmkit
