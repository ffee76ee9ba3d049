// Memory hotplug, free-page reporting and alloc_pages_exact on small
// machines: onlining grows a node's present and managed pages a block at a
// time and hands the block to the buddy allocator; reporting hands free
// blocks back to the host and allocation takes them again; an exact run
// holds exactly its frames. The allocator's check() holds after each step,
// and neither it nor slab_check() touches the offline part of mem_map.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "phys/config_toml.h"
#include "slab/slab.h"

namespace mmkit {
namespace {

MachineConfig hotplug_config(uint64_t memory, uint64_t online) {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = memory}};
  c.nodes[0].online = online;
  c.ram_anonymous = true;
  return c;
}

TEST(MemoryHotplug, OnlineGrowsTheNodeABlockAtATime) {
  auto r = boot(hotplug_config(64ull << 20, 16ull << 20));
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  const uint64_t managed0 = m.totalram_pages();
  const uint64_t free0 = nr_free_pages(m);
  EXPECT_EQ(m.node(0).node_present_pages.load(), 4096u);  // 16 MiB online
  // 8 MiB blocks: 16 -> 24 MiB.
  EXPECT_EQ(online_memory_block(m, 0, 8ull << 20), 2048u);
  EXPECT_EQ(m.totalram_pages(), managed0 + 2048);
  EXPECT_EQ(nr_free_pages(m), free0 + 2048);
  EXPECT_EQ(m.node(0).node_present_pages.load(), 6144u);
  EXPECT_EQ(check(m), "");
  // The rest, block by block, then nothing is left.
  uint64_t added = 0;
  while (uint64_t n = online_memory_block(m, 0, 8ull << 20)) added += n;
  EXPECT_EQ(added, 16384u - 6144u);
  EXPECT_EQ(online_memory_block(m, 0), 0u);
  EXPECT_EQ(check(m), "");
  // Every onlined frame is usable: allocate all free memory in MAX_ORDER
  // blocks and write to each.
  std::vector<Page*> blocks;
  while (Page* p = alloc_pages(m, GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, MAX_PAGE_ORDER)) {
    static_cast<char*>(m.page_address(p))[PAGE_SIZE * 7] = 1;
    blocks.push_back(p);
  }
  EXPECT_GT(blocks.size(), 10u);
  for (Page* p : blocks) free_pages(m, p, MAX_PAGE_ORDER);
  EXPECT_EQ(check(m), "");
}

// The protection of the host mapping that holds `p`, as /proc/self/maps
// gives it ("rw-p", "---p"), or "" when none does.
std::string protection_at(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (!f) return "";
  char line[512];
  std::string found;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) {
      found = perms;
      break;
    }
  }
  std::fclose(f);
  return found;
}

// Offline memory, and its struct pages, are inaccessible in the host until
// their block comes online (sparse vmemmap): a stray read faults instead of
// reading zeros, and mlockall() in a program under the malloc heap locks
// none of it.
TEST(MemoryHotplug, OfflineFramesAndTheirDescriptorsAreInaccessible) {
  auto r = boot(hotplug_config(64ull << 20, 16ull << 20));
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  const uint64_t first_offline = 16ull << 20 >> PAGE_SHIFT;
  EXPECT_EQ(protection_at(m.phys_window(first_offline - 1)), "rw-p");
  EXPECT_EQ(protection_at(m.pfn_to_page(first_offline - 1)), "rw-p");
  EXPECT_EQ(protection_at(m.phys_window(first_offline)), "---p");
  EXPECT_EQ(protection_at(m.pfn_to_page(first_offline + 64)), "---p");
  EXPECT_EQ(protection_at(m.pfn_to_page(m.max_pfn() - 1)), "---p");
  ASSERT_EQ(online_memory_block(m, 0, 8ull << 20), 2048u);
  EXPECT_EQ(protection_at(m.phys_window(first_offline)), "rw-p");
  EXPECT_EQ(protection_at(m.pfn_to_page(first_offline + 2047)), "rw-p");
  EXPECT_EQ(protection_at(m.phys_window(first_offline + 2048)), "---p");
  EXPECT_EQ(check(m), "");
}

uint64_t resident_bytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  const int n = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<uint64_t>(resident) * 4096 : 0;
}

// A machine of 8 GiB with 64 MiB online has 128 MiB of struct pages for
// the offline part; the checks must not fault them in.
TEST(MemoryHotplug, ChecksLeaveOfflineDescriptorsUntouched) {
  auto r = boot(hotplug_config(8ull << 30, 64ull << 20));
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = **r;
  const uint64_t before = resident_bytes();
  ASSERT_GT(before, 0u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(check(m), "");
    EXPECT_EQ(slab_check(m), "");
  }
  EXPECT_LT(resident_bytes(), before + (8ull << 20));
  // Onlined memory is checked as before.
  EXPECT_GT(online_memory_block(m, 0), 0u);
  EXPECT_EQ(check(m), "");
  EXPECT_EQ(slab_check(m), "");
}

TEST(MemoryHotplug, BadOnlineSizesAreRejected) {
  MachineConfig c = hotplug_config(64ull << 20, 5ull << 20);
  EXPECT_NE(validate(c).find("node[0].online"), std::string::npos) << validate(c);
  c.nodes[0].online = 128ull << 20;
  EXPECT_NE(validate(c).find("node[0].online"), std::string::npos);
  c.nodes[0].online = 16ull << 20;
  c.nodes[0].holes = {MemRange{.start = 32ull << 20, .size = 4ull << 20}};
  EXPECT_NE(validate(c).find("lies beyond the node's online memory"), std::string::npos);
}

TEST(MemoryHotplug, TomlKey) {
  auto r = parse_machine_config("[[node]]\nmemory = \"64MiB\"\nonline = \"16MiB\"\n", "x.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r->nodes[0].online, 16ull << 20);
}

TEST(PageReporting, FreeBlocksGoBackAndComeBack) {
  auto r = boot(hotplug_config(64ull << 20, 64ull << 20));
  ASSERT_TRUE(r.ok());
  Machine& m = **r;
  page_reporting_register(m, 6, 0);
  // Touch all memory, free it, report: the host gets back what is free
  // above the low watermark plus the reporting capacity.
  std::vector<Page*> blocks;
  while (Page* p = alloc_pages(m, GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, 8)) {
    std::fill_n(static_cast<char*>(m.page_address(p)), PAGE_SIZE << 8, 'x');
    blocks.push_back(p);
  }
  for (Page* p : blocks) free_pages(m, p, 8);
  EXPECT_TRUE(m.page_reporting_requested.load());
  const uint64_t reported = page_reporting_process(m);
  EXPECT_GT(reported, 8192u);  // most of the 64 MiB
  EXPECT_FALSE(m.page_reporting_requested.load());
  EXPECT_EQ(check(m), "");
  // Nothing new is free: a second pass reports nothing.
  EXPECT_EQ(page_reporting_process(m), 0u);
  // Reported memory reads as zero and is allocated again like any other.
  blocks.clear();
  uint64_t zero_pages = 0;
  while (Page* p = alloc_pages(m, GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, 8)) {
    zero_pages += static_cast<char*>(m.page_address(p))[0] == 0;
    blocks.push_back(p);
  }
  EXPECT_GT(zero_pages * 256, reported / 2);
  for (Page* p : blocks) free_pages(m, p, 8);
  EXPECT_EQ(check(m), "");
}

TEST(PageReporting, WaitsForItsThresholdAndSplitsStayReported) {
  auto r = boot(hotplug_config(64ull << 20, 64ull << 20));
  ASSERT_TRUE(r.ok());
  Machine& m = **r;
  const uint64_t threshold = (8ull << 20) >> PAGE_SHIFT;  // 8 MiB
  page_reporting_register(m, 6, threshold);
  page_reporting_process(m, true);  // the boot memory is unreported until now
  EXPECT_EQ(check(m), "");
  auto unreported = [&] {
    uint64_t n = 0;
    m.for_each_zone([&](Zone& z) { n += z.unreported_pages; });
    return n;
  };
  // Splitting a reported block leaves its other halves reported.
  std::vector<Page*> blocks;
  Page* one = alloc_pages(m, GFP_KERNEL, 0);
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(unreported(), 0u);
  // 4 MiB freed in 256 KiB blocks: below the threshold, no report asked.
  for (int i = 0; i < 16; ++i) blocks.push_back(alloc_pages(m, GFP_KERNEL, 6));
  for (Page* p : blocks) ASSERT_NE(p, nullptr);
  m.page_reporting_requested.store(false);
  for (Page* p : blocks) free_pages(m, p, 6);
  EXPECT_FALSE(m.page_reporting_requested.load());
  EXPECT_EQ(check(m), "");
  // Another 8 MiB crosses it.
  blocks.clear();
  for (int i = 0; i < 32; ++i) blocks.push_back(alloc_pages(m, GFP_KERNEL, 6));
  for (Page* p : blocks) ASSERT_NE(p, nullptr);
  for (Page* p : blocks) std::fill_n(static_cast<char*>(m.page_address(p)), PAGE_SIZE << 6, 'x');
  for (Page* p : blocks) free_pages(m, p, 6);
  EXPECT_TRUE(m.page_reporting_requested.load());
  const uint64_t before = unreported();
  EXPECT_GE(before, threshold);
  EXPECT_EQ(check(m), "");
  // A report leaves half the threshold, the memory freed last; a full one none.
  EXPECT_GE(page_reporting_process(m), before - threshold / 2);
  EXPECT_LE(unreported(), threshold / 2);
  EXPECT_GT(unreported(), 0u);
  EXPECT_EQ(check(m), "");
  EXPECT_GT(page_reporting_process(m, true), 0u);
  EXPECT_EQ(unreported(), 0u);
  EXPECT_EQ(check(m), "");
  free_pages(m, one, 0);
  drain_all_pages(m);
  EXPECT_EQ(check(m), "");
}

TEST(PageReporting, DecayHandsBackWhatStayedFreeThroughAPass) {
  auto r = boot(hotplug_config(64ull << 20, 64ull << 20));
  ASSERT_TRUE(r.ok());
  Machine& m = **r;
  page_reporting_register(m, 2, (32ull << 20) >> PAGE_SHIFT);  // a threshold never reached
  page_reporting_process(m, true);
  auto unreported = [&] {
    uint64_t n = 0;
    m.for_each_zone([&](Zone& z) { n += z.unreported_pages; });
    return n;
  };
  auto alloc_touched = [&](std::vector<Page*>& v, int n) {
    for (int i = 0; i < n; ++i) {
      Page* p = alloc_pages(m, GFP_KERNEL, 2);
      ASSERT_NE(p, nullptr);
      std::fill_n(static_cast<char*>(m.page_address(p)), PAGE_SIZE << 2, 'x');
      v.push_back(p);
    }
  };
  // 4 MiB freed in 16 KiB blocks: below the threshold, nothing is asked.
  std::vector<Page*> a, b;
  ASSERT_NO_FATAL_FAILURE(alloc_touched(a, 256));
  for (Page* p : a) free_pages(m, p, 2);
  drain_all_pages(m);
  EXPECT_FALSE(m.page_reporting_requested.load());
  const uint64_t freed = unreported();
  EXPECT_GE(freed, 1024u);
  // The first pass after the free: the low mark was taken before it, when
  // nothing was unreported, so nothing stayed free through a whole pass.
  EXPECT_EQ(page_reporting_decay(m), 0u);
  // Half of it is allocated again before the next pass: what was left
  // free all along goes back, and no more.
  ASSERT_NO_FATAL_FAILURE(alloc_touched(b, 128));
  const uint64_t low = unreported();
  const uint64_t reported = page_reporting_decay(m);
  EXPECT_GT(reported, 0u);
  EXPECT_LE(reported, low);
  EXPECT_EQ(unreported(), low - reported);
  EXPECT_EQ(check(m), "");
  // Nothing was allocated since: the rest goes at the next pass.
  page_reporting_decay(m);
  EXPECT_EQ(unreported(), 0u);
  EXPECT_EQ(check(m), "");
  for (Page* p : b) free_pages(m, p, 2);
  drain_all_pages(m);
  EXPECT_EQ(check(m), "");
}

TEST(AllocPagesExact, HoldsExactlyItsFrames) {
  auto r = boot(hotplug_config(64ull << 20, 64ull << 20));
  ASSERT_TRUE(r.ok());
  Machine& m = **r;
  const uint64_t free0 = nr_free_pages(m);
  for (uint64_t pages : {1u, 3u, 5u, 17u, 100u, 513u, 1024u}) {
    void* p = alloc_pages_exact(m, pages * PAGE_SIZE - 10, GFP_KERNEL);
    ASSERT_NE(p, nullptr) << pages;
    drain_all_pages(m);
    EXPECT_EQ(nr_free_pages(m), free0 - pages) << pages;
    EXPECT_EQ(check(m), "");
    free_pages_exact(m, p, pages * PAGE_SIZE - 10);
    drain_all_pages(m);
    EXPECT_EQ(nr_free_pages(m), free0) << pages;
  }
  EXPECT_EQ(alloc_pages_exact(m, 1025 * PAGE_SIZE, GFP_KERNEL | __GFP_NOWARN), nullptr);
  EXPECT_EQ(check(m), "");
}

}  // namespace
}  // namespace mmkit
