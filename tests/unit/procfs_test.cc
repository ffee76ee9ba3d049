// procfs views: the text matches Linux 6.1's formats line by line and the
// numbers match the machine's own fields (mm/vmstat.c, fs/proc/meminfo.c).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

std::unique_ptr<Machine> boot_or_die(const MachineConfig& cfg) {
  return test::boot_or_fail(cfg);
}

// x86_64, 2 CPUs, one node of `mib` MiB.
MachineConfig x86_64_config(uint64_t mib, unsigned cpus = 2) {
  MachineConfig cfg;
  cfg.arch = Arch::x86_64;
  cfg.cpus = cpus;
  NodeConfig n;
  n.memory = mib * kMiB;
  cfg.nodes.push_back(n);
  return cfg;
}

// x86_64, 2 nodes: node 0 below 4 GiB (DMA, DMA32), node 1 above (DMA32, Normal).
MachineConfig two_node_config() {
  MachineConfig cfg;
  cfg.arch = Arch::x86_64;
  cfg.cpus = 2;
  NodeConfig n0, n1;
  n0.memory = 3072 * kMiB;
  n1.memory = 2048 * kMiB;
  cfg.nodes = {n0, n1};
  return cfg;
}

MachineConfig i386_config() {
  MachineConfig cfg;
  cfg.arch = Arch::i386;
  cfg.cpus = 2;
  NodeConfig n;
  n.memory = 2048 * kMiB;
  cfg.nodes.push_back(n);
  return cfg;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "Name:   123 kB" -> {Name: 123}.
std::map<std::string, uint64_t> parse_meminfo(const std::string& text) {
  std::map<std::string, uint64_t> fields;
  for (const std::string& line : lines_of(text)) {
    const auto colon = line.find(':');
    fields[line.substr(0, colon)] = std::stoull(line.substr(colon + 1));
  }
  return fields;
}

// "name 123" -> {name: 123}, keeping the order in `order` when given.
std::map<std::string, uint64_t> parse_vmstat(const std::string& text,
                                             std::vector<std::string>* order = nullptr) {
  std::map<std::string, uint64_t> fields;
  for (const std::string& line : lines_of(text)) {
    const auto space = line.find(' ');
    const std::string name = line.substr(0, space);
    fields[name] = std::stoull(line.substr(space + 1));
    if (order) order->push_back(name);
  }
  return fields;
}

uint64_t pgalloc_total(const std::map<std::string, uint64_t>& vm) {
  uint64_t n = 0;
  for (const auto& [name, v] : vm)
    if (name.rfind("pgalloc_", 0) == 0) n += v;
  return n;
}

// Brackets and braces balance outside strings, strings close, and the text
// is one value (an object).
bool json_is_balanced(const std::string& s) {
  std::vector<char> stack;
  bool in_string = false, escaped = false;
  for (const char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      else if (static_cast<unsigned char>(c) < 0x20)
        return false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
        stack.push_back('}');
        break;
      case '[':
        stack.push_back(']');
        break;
      case '}':
      case ']':
        if (stack.empty() || stack.back() != c) return false;
        stack.pop_back();
        break;
      default:
        break;
    }
  }
  return !in_string && stack.empty() && !s.empty() && s.front() == '{';
}

TEST(ProcfsTest, BuddyinfoLinesMatchLinuxFormat) {
  auto m = boot_or_die(two_node_config());
  ASSERT_TRUE(m);
  const std::string text = render_buddyinfo(*m);
  const std::regex line_re(R"(^Node \d+, zone +\S+( +\d+){11} *$)");
  const auto lines = lines_of(text);
  unsigned populated = 0;
  m->for_each_zone([&](const Zone& z) { populated += z.populated(); });
  ASSERT_EQ(lines.size(), populated);
  for (const std::string& line : lines) EXPECT_TRUE(std::regex_match(line, line_re)) << line;
  // The zone name is right-aligned in 8 columns, each count in 6 plus a space.
  EXPECT_EQ(lines[0].substr(0, 21), "Node 0, zone      DMA");
  EXPECT_EQ(lines[0].size(), 21 + 1 + 11 * 7u);
}

TEST(ProcfsTest, BuddyinfoCountsAreTheFreeAreas) {
  auto m = boot_or_die(x86_64_config(512));
  ASSERT_TRUE(m);
  const auto lines = lines_of(render_buddyinfo(*m));
  unsigned row = 0;
  m->for_each_zone([&](const Zone& z) {
    if (!z.populated()) return;
    std::istringstream in(lines.at(row++).substr(22));
    for (unsigned order = 0; order < NR_PAGE_ORDERS; ++order) {
      uint64_t n = 0;
      in >> n;
      EXPECT_EQ(n, z.free_area[order].nr_free) << z.name << " order " << order;
    }
  });
}

TEST(ProcfsTest, MeminfoTotalsAndLineFormat) {
  auto m = boot_or_die(x86_64_config(1024));
  ASSERT_TRUE(m);
  const std::string text = render_meminfo(*m);
  const std::regex line_re(R"(^[A-Za-z0-9_()]+: +\d+( kB)?$)");
  for (const std::string& line : lines_of(text))
    EXPECT_TRUE(std::regex_match(line, line_re)) << line;
  const auto mi = parse_meminfo(text);
  EXPECT_EQ(mi.at("MemTotal"), m->totalram_pages() * 4);
  EXPECT_EQ(mi.at("MemFree"), nr_free_pages(*m) * 4);
  EXPECT_LE(mi.at("MemAvailable"), mi.at("MemFree"));
  EXPECT_GT(mi.at("MemAvailable"), 0u);
  EXPECT_EQ(mi.at("CommitLimit"), m->totalram_pages() * 50 / 100 * 4);
  // The 512 MiB area mmkit manages by default, less one byte (VMALLOC_END is inclusive).
  EXPECT_EQ(mi.at("VmallocTotal"), (512u * 1024 * 1024 - 1) / 1024);
  EXPECT_EQ(mi.count("HighTotal"), 0u);  // x86_64 has no CONFIG_HIGHMEM
  // show_val_kb(): a 16-column label, the value right-aligned in 8, " kB".
  const auto lines = lines_of(text);
  EXPECT_EQ(lines[0].rfind("MemTotal:       ", 0), 0u);
  EXPECT_EQ(lines[0].size(), 16 + 8 + 3u);
  EXPECT_EQ(lines[1].rfind("MemFree:        ", 0), 0u);
  EXPECT_EQ(lines[2].rfind("MemAvailable:   ", 0), 0u);
}

TEST(ProcfsTest, MeminfoOnI386ShowsHighmem) {
  auto m = boot_or_die(i386_config());
  ASSERT_TRUE(m);
  const std::string text = render_meminfo(*m);
  const std::regex line_re(R"(^[A-Za-z0-9_()]+: +\d+( kB)?$)");
  for (const std::string& line : lines_of(text))
    EXPECT_TRUE(std::regex_match(line, line_re)) << line;
  const auto mi = parse_meminfo(text);
  ASSERT_EQ(mi.count("HighTotal"), 1u);
  EXPECT_GT(mi.at("HighTotal"), 0u);
  EXPECT_EQ(mi.at("HighTotal"), m->totalhigh_pages() * 4);
  EXPECT_EQ(mi.at("LowTotal"), (m->totalram_pages() - m->totalhigh_pages()) * 4);
  EXPECT_EQ(mi.at("HighFree") + mi.at("LowFree"), mi.at("MemFree"));
  EXPECT_EQ(mi.at("MemTotal"), m->totalram_pages() * 4);
  // VMALLOC_END - VMALLOC_START with the direct map full and 2 CPUs:
  // 0xff7fe000 - 0xf8800000 (see highmem_test's layout).
  EXPECT_EQ(mi.at("VmallocTotal"), (0xff7fe000u - 0xf8800000u) / 1024);
  EXPECT_NE(text.find("HighTotal:      "), std::string::npos);
}

TEST(ProcfsTest, ZoneinfoWatermarksMatchZones) {
  auto m = boot_or_die(two_node_config());
  ASSERT_TRUE(m);
  const auto lines = lines_of(render_zoneinfo(*m));
  const std::regex header_re(R"(^Node (\d+), zone +(\S+)$)");
  const Zone* z = nullptr;
  unsigned zones_seen = 0, checked = 0, per_node = 0;
  for (const std::string& line : lines) {
    std::smatch sm;
    if (std::regex_match(line, sm, header_re)) {
      const Node& n = m->node(std::stoi(sm[1]));
      z = nullptr;
      for (unsigned i = 0; i < n.nr_zones; ++i)
        if (n.zones[i].name == sm[2].str()) z = &n.zones[i];
      ASSERT_NE(z, nullptr) << line;
      ++zones_seen;
      continue;
    }
    ASSERT_NE(z, nullptr) << "line before any zone header: " << line;
    std::istringstream in(line);
    std::string key;
    in >> key;
    uint64_t v = 0;
    const std::map<std::string, uint64_t> expected = {
        {"min", z->min_wmark()},          {"low", z->low_wmark()},       {"high", z->high_wmark()},
        {"managed", z->managed()},        {"spanned", z->spanned_pages}, {"present", z->present()},
        {"start_pfn:", z->zone_start_pfn}};
    if (auto e = expected.find(key); e != expected.end() && (in >> v)) {
      EXPECT_EQ(v, e->second) << z->name << ": " << line;
      checked += key == "min" || key == "low" || key == "high";
    }
    if (line == "  per-node stats") ++per_node;
    if (key == "protection:") {
      std::string want = "        protection: (";
      for (unsigned i = 0; i < MAX_NR_ZONES; ++i)
        want += (i ? ", " : "") + std::to_string(z->lowmem_reserve[i]);
      EXPECT_EQ(line, want + ")");
    }
  }
  // Every zone of every node is listed, populated or not.
  EXPECT_EQ(zones_seen, m->nr_nodes() * MAX_NR_ZONES);
  EXPECT_EQ(checked, zones_seen * 3);
  EXPECT_EQ(per_node, m->nr_nodes());
}

TEST(ProcfsTest, ZoneinfoUnpopulatedZoneStopsAtProtection) {
  auto m = boot_or_die(x86_64_config(256));
  ASSERT_TRUE(m);
  const std::string text = render_zoneinfo(*m);
  // Normal and Movable are empty on a 256 MiB machine: their block is the
  // watermark lines and protection, then the next zone.
  const auto pos = text.find("Node 0, zone  Movable\n");
  ASSERT_NE(pos, std::string::npos);
  const std::string tail = text.substr(pos);
  EXPECT_EQ(lines_of(tail).size(), 11u) << tail;
  EXPECT_EQ(tail.find("pagesets"), std::string::npos);
  EXPECT_EQ(tail.back(), '\n');
  // A populated zone lists its pagesets, one per CPU.
  const std::string dma32 = text.substr(text.find("Node 0, zone    DMA32"));
  EXPECT_NE(dma32.find("\n  pagesets\n    cpu: 0\n              count: "), std::string::npos);
  EXPECT_NE(dma32.find("\n    cpu: 1\n"), std::string::npos);
  EXPECT_NE(dma32.find("\n  node_unreclaimable:  0\n  start_pfn:           "), std::string::npos);
  EXPECT_EQ(text.find("\n        promo "), std::string::npos);  // 6.1 has no promo line
}

TEST(ProcfsTest, VmstatPgallocGrowsWithAllocations) {
  auto m = boot_or_die(x86_64_config(512));
  ASSERT_TRUE(m);
  std::vector<std::string> order;
  const auto before = parse_vmstat(render_vmstat(*m), &order);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), "nr_free_pages");
  EXPECT_EQ(before.at("nr_free_pages"), nr_free_pages(*m));

  std::vector<Page*> pages;
  for (int i = 0; i < 64; ++i) {
    Page* p = alloc_pages(*m, GFP_KERNEL, i % 3);
    ASSERT_NE(p, nullptr);
    pages.push_back(p);
  }
  const auto after = parse_vmstat(render_vmstat(*m));
  EXPECT_GE(pgalloc_total(after), pgalloc_total(before) + 64);
  EXPECT_GT(after.at("pgalloc_dma32"), before.at("pgalloc_dma32"));
  EXPECT_EQ(after.at("nr_free_pages"), nr_free_pages(*m));
  for (size_t i = 0; i < pages.size(); ++i) free_pages(*m, pages[i], i % 3);
  const auto freed = parse_vmstat(render_vmstat(*m));
  EXPECT_GE(freed.at("pgfree"), after.at("pgfree"));
}

TEST(ProcfsTest, VmstatFollowsLinuxOrder) {
  auto m = boot_or_die(x86_64_config(256));
  ASSERT_TRUE(m);
  const std::string text = render_vmstat(*m);
  std::vector<std::string> order;
  const auto vm = parse_vmstat(text, &order);
  auto index = [&](const std::string& name) {
    return std::find(order.begin(), order.end(), name) - order.begin();
  };
  // zone items, numa items, node items, writeback thresholds, events.
  EXPECT_LT(index("nr_free_cma"), index("numa_hit"));
  EXPECT_LT(index("numa_other"), index("nr_inactive_anon"));
  EXPECT_LT(index("nr_swapcached"), index("nr_dirty_threshold"));
  EXPECT_EQ(index("nr_dirty_threshold") + 1, index("nr_dirty_background_threshold"));
  EXPECT_EQ(index("nr_dirty_background_threshold") + 1, index("pgpgin"));
  EXPECT_LT(index("pgalloc_dma"), index("pgalloc_dma32"));
  EXPECT_LT(index("oom_kill"), static_cast<long>(order.size()));
  EXPECT_EQ(order.back(), "direct_map_level3_splits");
  EXPECT_EQ(vm.count("pgalloc_high"), 0u);  // no CONFIG_HIGHMEM on x86_64
  EXPECT_GT(vm.at("nr_dirty_threshold"), vm.at("nr_dirty_background_threshold"));
  // No duplicates, and no mmkit-private names in Linux's text.
  EXPECT_EQ(vm.size(), order.size());
  EXPECT_EQ(text.find("mmkit_"), std::string::npos);
  for (const std::string& line : lines_of(text))
    EXPECT_TRUE(std::regex_match(line, std::regex(R"(^[a-z0-9_]+ \d+$)"))) << line;
}

TEST(ProcfsTest, PagetypeinfoAgreesWithBuddyinfo) {
  auto m = boot_or_die(x86_64_config(512));
  ASSERT_TRUE(m);
  std::vector<Page*> pages;
  for (int i = 0; i < 100; ++i)
    pages.push_back(alloc_pages(*m, i % 2 ? GFP_KERNEL : GFP_HIGHUSER_MOVABLE, 0));
  const std::string text = render_pagetypeinfo(*m);
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0], "Page block order: 9");
  EXPECT_EQ(lines[1], "Pages per block:  512");
  EXPECT_EQ(lines[2], "");
  EXPECT_EQ(lines[3],
            "Free pages count per migrate type at order       0      1      2      3      4      5 "
            "     6      7      8      9     10 ");
  const std::regex free_re(R"(^Node +(\d+), zone +(\S+), type +(\S+) ((?:>?\s*\d+ ){11})$)");
  const std::regex blocks_re(R"(^Node (\d+), zone +(\S+) ((?: +\d+ ){6})$)");
  std::map<std::string, std::vector<uint64_t>> free_per_zone;
  std::map<std::string, uint64_t> blocks_per_zone;
  unsigned free_rows = 0, block_rows = 0;
  bool header_seen = false;
  for (const std::string& line : lines) {
    std::smatch sm;
    if (std::regex_match(line, sm, free_re)) {
      ++free_rows;
      auto& v = free_per_zone[sm[2]];
      v.resize(NR_PAGE_ORDERS);
      std::istringstream in(sm[4]);
      for (unsigned o = 0; o < NR_PAGE_ORDERS; ++o) {
        uint64_t n;
        in >> n;
        v[o] += n;
      }
    } else if (std::regex_match(line, sm, blocks_re)) {
      ++block_rows;
      std::istringstream in(sm[3]);
      for (unsigned t = 0; t < MIGRATE_TYPES; ++t) {
        uint64_t n;
        in >> n;
        blocks_per_zone[sm[2]] += n;
      }
    } else if (line.rfind("Number of blocks type ", 0) == 0) {
      header_seen = true;
      EXPECT_EQ(
          line,
          "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic         "
          " CMA      Isolate ");
    }
  }
  EXPECT_TRUE(header_seen);
  unsigned populated = 0;
  m->for_each_zone([&](const Zone& z) {
    if (!z.populated()) return;
    ++populated;
    for (unsigned o = 0; o < NR_PAGE_ORDERS; ++o)
      EXPECT_EQ(free_per_zone[std::string(z.name)][o], z.free_area[o].nr_free)
          << z.name << " " << o;
    EXPECT_EQ(
        blocks_per_zone[std::string(z.name)],
        (z.end_pfn() - z.zone_start_pfn + m->pageblock_nr_pages() - 1) / m->pageblock_nr_pages());
  });
  EXPECT_EQ(free_rows, populated * MIGRATE_TYPES);
  EXPECT_EQ(block_rows, populated);
  for (Page* p : pages)
    if (p) free_page(*m, p);
}

TEST(ProcfsTest, JsonIsBalancedAndNamesTheZones) {
  auto m = boot_or_die(two_node_config());
  ASSERT_TRUE(m);
  const std::string json = render_json(*m);
  EXPECT_TRUE(json_is_balanced(json)) << json.substr(0, 400);
  for (const char* key : {"\"buddyinfo\":", "\"pagetypeinfo\":", "\"zoneinfo\":", "\"meminfo\":",
                          "\"vmstat\":", "\"protection\":", "\"pagesets\":", "\"MemTotal\":"})
    EXPECT_NE(json.find(key), std::string::npos) << key;
  m->for_each_zone([&](const Zone& z) {
    EXPECT_NE(json.find("\"zone\":\"" + std::string(z.name) + "\""), std::string::npos) << z.name;
  });
  EXPECT_NE(json.find("\"MemTotal\":" + std::to_string(m->totalram_pages() * 4)),
            std::string::npos);
  EXPECT_NE(json.find("\"mmkit_alloc_fail\":"), std::string::npos);  // private events in JSON only
  EXPECT_EQ(json.find(",,"), std::string::npos);
  EXPECT_EQ(json.find(",}"), std::string::npos);
  EXPECT_EQ(json.find(",]"), std::string::npos);
  EXPECT_EQ(json.find("[,"), std::string::npos);
}

TEST(ProcfsTest, RenderViewByName) {
  auto m = boot_or_die(x86_64_config(256));
  ASSERT_TRUE(m);
  const auto names = view_names();
  EXPECT_EQ(names.size(), 9u);
  // vmallocinfo is empty until something maps a vmalloc area; swaps has its
  // header line even with no swap area; zswap prints its zeros.
  for (std::string_view name : names)
    EXPECT_EQ(render_view(*m, name).empty(), name == "vmallocinfo") << name;
  EXPECT_EQ(render_view(*m, "swaps"), "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
  EXPECT_EQ(render_view(*m, "meminfo"), render_meminfo(*m));
  EXPECT_EQ(render_view(*m, "buddyinfo"), render_buddyinfo(*m));
  EXPECT_EQ(render_view(*m, "zswap"), render_zswap(*m));
  EXPECT_EQ(render_zswap(*m).substr(0, 18), "duplicate_entry 0\n");
  EXPECT_EQ(render_view(*m, "nonesuch"), "");
  EXPECT_EQ(render_view(*m, ""), "");
}

}  // namespace
}  // namespace mmkit
