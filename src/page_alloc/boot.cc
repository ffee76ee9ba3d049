// boot(): the page allocator's half of start_kernel's memory set-up.
// memblock_free_all() hands every available frame to the buddy allocator in
// the largest aligned blocks; then init_per_zone_wmark_min() computes
// min_free_kbytes, watermarks, lowmem_reserve and the pcp sizes; the boot log
// gets Linux's "Built N zonelists" and "Memory:" lines.
#include <fmt/format.h>

#include <algorithm>

#include "base/bitops.h"
#include "page_alloc/internal.h"

namespace mmkit {

void free_pages_range(Zone& z, uint64_t start, uint64_t end, Fpi fpi) {
  Machine& m = *z.machine;
  while (start < end) {
    unsigned order =
        std::min<unsigned>(MAX_PAGE_ORDER, start ? std::countr_zero(start) : MAX_PAGE_ORDER);
    while (start + (uint64_t{1} << order) > end) --order;
    Page* page = m.pfn_to_page(start);
    __free_one_page(z, page, start, order, m.get_pageblock_migratetype(start), fpi);
    start += uint64_t{1} << order;
  }
}

namespace {

// Each CPU's first usable zone per GFP zone-modifier combination.
void build_pcp_classes(Machine& m) {
  for (unsigned c = 0; c < m.nr_cpus(); ++c) {
    CpuState& cpu = m.cpu(static_cast<int>(c));
    for (gfp_t bits = 0; bits < 32; ++bits) {
      PcpClass& cls = cpu.pcp_class[bits];
      const int kind = gfp_zone_kind(bits);
      cls.zone = nullptr;
      cls.pcp = nullptr;
      if (kind == kBadZone || (bits & GFP_MOVABLE_MASK) == GFP_MOVABLE_MASK) continue;
      const unsigned highest = m.zone_index(static_cast<ZoneKind>(kind));
      for (Zone* const* zp = m.node(cpu.node).zonelist_fallback; *zp; ++zp)
        if ((*zp)->idx <= highest) {
          cls.zone = *zp;
          cls.pcp = &(*zp)->pcp[c];
          cls.highest = static_cast<uint8_t>(highest);
          cls.pgalloc_event = static_cast<uint16_t>(static_cast<unsigned>(VmEvent::PGALLOC_DMA) +
                                                    static_cast<unsigned>((*zp)->kind));
          break;
        }
    }
  }
}

void memblock_free_all(Machine& m) {
  const auto& holes = m.unavailable();
  m.for_each_zone([&](Zone& z) {
    if (!z.populated()) return;
    SpinGuard g(z.lock);
    uint64_t cursor = z.zone_start_pfn;
    for (auto [s, e] : holes) {
      if (e <= cursor || s >= z.end_pfn()) continue;
      if (s > cursor) free_pages_range(z, cursor, std::min(s, z.end_pfn()), Fpi::kToTail);
      cursor = std::max(cursor, e);
    }
    if (cursor < z.end_pfn()) free_pages_range(z, cursor, z.end_pfn(), Fpi::kToTail);
  });
}

}  // namespace

Result<std::unique_ptr<Machine>> boot(const MachineConfig& cfg) {
  auto created = Machine::create(cfg);
  if (!created) return created.error();
  std::unique_ptr<Machine> mp = std::move(created.value());
  Machine& m = *mp;

  memblock_free_all(m);
  build_pcp_classes(m);

  // Grouping by mobility needs enough pageblocks to be worth it.
  const uint64_t total = m.totalram_pages();
  m.mobility_grouping = total >= m.pageblock_nr_pages() * MIGRATE_TYPES;
  m.gfp_movable_mask = m.mobility_grouping ? GFP_MOVABLE_MASK : 0;
  m.boot_log().push_back(fmt::format("Built {} zonelists, mobility grouping {}.  Total pages: {}",
                                     m.nr_nodes(), m.mobility_grouping ? "on" : "off", total));
  m.boot_log().push_back(fmt::format(
      "Policy zone: {}",
      kZoneKindNames[static_cast<unsigned>(
          m.arch() == Arch::i386 && m.totalhigh_pages() ? ZoneKind::HIGHMEM : ZoneKind::NORMAL)]));

  zone_pcp_update(m);  // boot pagesets: high from a zero low watermark
  m.min_free_kbytes = calculate_min_free_kbytes(m);
  setup_per_zone_wmarks(m);
  setup_per_zone_lowmem_reserve(m);

  uint64_t physpages = 0;
  m.for_each_zone([&](const Zone& z) { physpages += z.present(); });
  m.boot_log().push_back(fmt::format("Memory: {}K/{}K available ({}K reserved)",
                                     nr_free_pages(m) * 4, physpages * 4, (physpages - total) * 4));
  if (m.arch() == Arch::i386) {
    m.boot_log().push_back(fmt::format("{}MB HIGHMEM available.", m.totalhigh_pages() >> 8));
    m.boot_log().push_back(
        fmt::format("{}MB LOWMEM available.", (total - m.totalhigh_pages()) >> 8));
  }
  m.boot_log().push_back(fmt::format("min_free_kbytes: {}", m.min_free_kbytes));
  return mp;
}

}  // namespace mmkit
