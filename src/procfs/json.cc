// All the /proc views of a machine as one JSON object, for tools that would
// rather not parse Linux's text. Same numbers as the text views (they share
// meminfo_fields, vmstat_fields and the pagetypeinfo snapshot); the schema:
//
//   {"buddyinfo":    [{"node": 0, "zone": "DMA", "free": [11 counts, order 0..10]}, ...],
//    "pagetypeinfo": {"pageblock_order": 9, "pages_per_block": 512,
//                     "zones": [{"node", "zone", "free": {"Unmovable": [11], ...},
//                                "blocks": {"Unmovable": n, ...}}, ...]},
//    "zoneinfo":     [{"node", "zone", "populated", "free", "min", "low", "high",
//                      "spanned", "present", "managed", "start_pfn",
//                      "protection": [MAX_NR_ZONES],
//                      "pagesets": [{"cpu", "count", "high", "batch"}, ...]}, ...],
//    "meminfo":      {"MemTotal": kB, ...}   (HugePages_* are counts, as in the text)
//    "vmstat":       {"nr_free_pages": n, ..., "mmkit_alloc_fail": n, ...},
//    "slabinfo":     [{"name", "active_objs", "num_objs", "objsize", "objperslab",
//                      "pagesperslab", "limit", "batchcount", "sharedfactor",
//                      "active_slabs", "num_slabs", "sharedavail",
//                      "aliases": [names merged into the cache]}, ...],
//    "zswap":        {"duplicate_entry": n, ..., "written_back_pages": n}}
//
// buddyinfo lists populated zones only, zoneinfo every zone (as the text
// views do); vmstat adds mmkit's private events after Linux's; slabinfo has
// the text's rows in its order (newest cache first), plus the aliases.
// Written by hand: a few lines of escaping are all it needs.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "procfs/internal.h"
#include "procfs/json_writer.h"
#include "procfs/procfs.h"
#include "swap/zswap.h"

namespace mmkit {
namespace {

void write_buddyinfo(JsonWriter& w, const Machine& m) {
  w.key("buddyinfo").begin_array();
  m.for_each_zone([&](const Zone& z) {
    if (!z.populated()) return;
    std::array<uint64_t, NR_PAGE_ORDERS> nr_free;
    {
      SpinGuard g(const_cast<SpinLock&>(z.lock));
      for (unsigned order = 0; order < NR_PAGE_ORDERS; ++order)
        nr_free[order] = z.free_area[order].nr_free;
    }
    w.begin_object().field("node", z.node).field("zone", z.name);
    w.key("free").begin_array();
    for (uint64_t n : nr_free) w.value(n);
    w.end_array().end_object();
  });
  w.end_array();
}

void write_pagetypeinfo(JsonWriter& w, Machine& m) {
  w.key("pagetypeinfo").begin_object();
  w.field("pageblock_order", m.pageblock_order()).field("pages_per_block", m.pageblock_nr_pages());
  w.key("zones").begin_array();
  for (unsigned nid = 0; nid < m.nr_nodes(); ++nid) {
    for (const auto& pz : procfs_internal::pagetype_snapshot(m, static_cast<int>(nid))) {
      w.begin_object().field("node", pz.zone->node).field("zone", pz.zone->name);
      w.key("free").begin_object();
      for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt) {
        w.key(kMigrateTypeNames[mt]).begin_array();
        for (uint64_t n : pz.free[mt]) w.value(n);
        w.end_array();
      }
      w.end_object();
      w.key("blocks").begin_object();
      for (unsigned mt = 0; mt < MIGRATE_TYPES; ++mt) w.field(kMigrateTypeNames[mt], pz.blocks[mt]);
      w.end_object().end_object();
    }
  }
  w.end_array().end_object();
}

void write_zoneinfo(JsonWriter& w, const Machine& m) {
  w.key("zoneinfo").begin_array();
  m.for_each_zone([&](const Zone& z) {
    uint64_t wmark[NR_WMARK], reserve[MAX_NR_ZONES];
    int64_t free;
    {
      SpinGuard g(const_cast<SpinLock&>(z.lock));
      std::copy(std::begin(z.watermark), std::end(z.watermark), wmark);
      std::copy(std::begin(z.lowmem_reserve), std::end(z.lowmem_reserve), reserve);
      free = std::max<int64_t>(z.nr_free(), 0);
    }
    w.begin_object()
        .field("node", z.node)
        .field("zone", z.name)
        .field("populated", z.populated())
        .field("free", free)
        .field("min", wmark[WMARK_MIN])
        .field("low", wmark[WMARK_LOW])
        .field("high", wmark[WMARK_HIGH])
        .field("spanned", z.spanned_pages)
        .field("present", z.present())
        .field("managed", z.managed())
        .field("start_pfn", z.zone_start_pfn);
    w.key("protection").begin_array();
    for (uint64_t r : reserve) w.value(r);
    w.end_array();
    w.key("pagesets").begin_array();
    if (z.populated() && z.pcp) {
      for (unsigned cpu = 0; cpu < m.nr_cpus(); ++cpu) {
        const PerCpuPages& pcp = z.pcp[cpu];
        w.begin_object()
            .field("cpu", cpu)
            .field("count", pcp.count.load(std::memory_order_relaxed))
            .field("high", pcp.high.load(std::memory_order_relaxed))
            .field("batch", pcp.batch.load(std::memory_order_relaxed))
            .end_object();
      }
    }
    w.end_array().end_object();
  });
  w.end_array();
}

void write_slabinfo(JsonWriter& w, Machine& m) {
  w.key("slabinfo").begin_array();
  for (const SlabinfoRow& r : slabinfo_rows(m)) {
    const SlabInfo& i = r.info;
    w.begin_object()
        .field("name", i.name)
        .field("active_objs", i.active_objs)
        .field("num_objs", i.num_objs)
        .field("objsize", i.objsize)
        .field("objperslab", i.objperslab)
        .field("pagesperslab", i.pagesperslab)
        .field("limit", 0)
        .field("batchcount", 0)
        .field("sharedfactor", 0)
        .field("active_slabs", i.active_slabs)
        .field("num_slabs", i.num_slabs)
        .field("sharedavail", 0);
    w.key("aliases").begin_array();
    for (const std::string& a : r.aliases) w.value(a);
    w.end_array().end_object();
  }
  w.end_array();
}

}  // namespace

std::string render_json(Machine& m) {
  JsonWriter w;
  w.begin_object();
  write_buddyinfo(w, m);
  write_pagetypeinfo(w, m);
  write_zoneinfo(w, m);
  w.key("meminfo").begin_object();
  for (const MeminfoField& f : meminfo_fields(m)) w.field(f.name(), f.value);
  w.end_object();
  w.key("vmstat").begin_object();
  for (const VmstatField& f : vmstat_fields(m, /*with_private=*/true)) w.field(f.name, f.value);
  w.end_object();
  write_slabinfo(w, m);
  w.key("zswap").begin_object();
  for (const auto& [name, value] : zswap_stat_fields(m)) w.field(name, value);
  w.end_object();
  w.end_object();
  return w.take() + "\n";
}

}  // namespace mmkit
