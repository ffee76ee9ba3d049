// zswap (mm/zswap.c): the compressors round-trip; reclaim with zswap on
// stores pages compressed or as one value, and every byte reads back, with
// lz4 and with zstd; incompressible pages go to the file; a full pool writes
// its oldest entries back and refuses stores until it is below the accept
// threshold; a failed writeback loses nothing; swapoff brings zswap'd pages
// back; the views print the statistics; a memory cgroup is charged for its
// entries and held to its memory.zswap.max. zswap_check() after every step.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support/swap_settle.h"
#include "memcg/lru.h"
#include "memcg/memcg_state.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "swap/zswap.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

enum class Kind { kSame, kText, kRandom };

// Page i's contents: same-filled (every word one value), compressible
// (half the words random, about 2:1) or incompressible (random).
Kind kind_of(uint64_t i) {
  return static_cast<Kind>(i % 3);
}

void fill_page(uint64_t i, uint64_t version, uint64_t* w) {
  const uint64_t seed = i * 0x9e3779b97f4a7c15ull ^ version << 40;
  switch (kind_of(i)) {
    case Kind::kSame:
      for (size_t k = 0; k < PAGE_SIZE / 8; ++k) w[k] = seed;
      break;
    case Kind::kText: {
      // Half the words random, half one value: about 2:1.
      std::mt19937_64 rng(seed);
      for (size_t k = 0; k < PAGE_SIZE / 8; ++k) w[k] = k % 2 ? seed : rng();
      break;
    }
    case Kind::kRandom: {
      std::mt19937_64 rng(seed);
      for (size_t k = 0; k < PAGE_SIZE / 8; ++k) w[k] = rng();
      break;
    }
  }
}

std::unique_ptr<Machine> boot_zswap(uint64_t ram_mib, uint64_t swap_mib, bool on,
                                    const char* compressor = "lz4", unsigned max_pool = 20,
                                    unsigned cpus = 2) {
  MachineConfig c;
  c.cpus = cpus;
  c.nodes = {NodeConfig{.memory = ram_mib << 20}};
  c.swap = swap_mib << 20;
  c.zswap.enabled = on;
  c.zswap.compressor = compressor;
  c.zswap.max_pool_percent = max_pool;
  auto r = boot_with_reclaim(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

uint64_t map_anon(MmStruct* mm, uint64_t bytes) {
  const int64_t a = do_mmap(mm, 0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  EXPECT_GT(a, 0);
  return static_cast<uint64_t>(a);
}

void write_range(MmStruct* mm, uint64_t base, uint64_t first, uint64_t n, uint64_t version) {
  std::vector<uint64_t> buf(PAGE_SIZE / 8);
  for (uint64_t i = first; i < first + n; ++i) {
    fill_page(i, version, buf.data());
    ASSERT_TRUE(access_write(mm, base + i * PAGE_SIZE, buf.data(), PAGE_SIZE).ok()) << i;
  }
}

// Pages [first, first + n) that do not read back as written.
uint64_t bad_pages(MmStruct* mm, uint64_t base, uint64_t first, uint64_t n, uint64_t version) {
  std::vector<uint64_t> want(PAGE_SIZE / 8), got(PAGE_SIZE / 8);
  uint64_t bad = 0;
  for (uint64_t i = first; i < first + n; ++i) {
    fill_page(i, version, want.data());
    if (!access_read(mm, base + i * PAGE_SIZE, got.data(), PAGE_SIZE).ok() || want != got) {
      if (!bad) ADD_FAILURE() << "page " << i << " does not read back";
      ++bad;
    }
  }
  return bad;
}

void expect_checks(Machine& m, MmStruct* mm) {
  lru_add_drain_all(m);
  EXPECT_EQ(zswap_check(m), "");
  EXPECT_EQ(swap_check(m), "");
  EXPECT_EQ(lru_check(m), "");
  if (mm) {
    EXPECT_EQ(check(mm), "");
  }
}

TEST(Zswap, CompressorsRoundTripAndRandomPagesDoNotShrink) {
  std::vector<uint64_t> page(PAGE_SIZE / 8), back(PAGE_SIZE / 8);
  std::vector<char> buf(2 * PAGE_SIZE);
  for (ZswapCompressor c : {ZswapCompressor::kLz4, ZswapCompressor::kZstd}) {
    for (uint64_t i = 0; i < 3; ++i) {
      fill_page(i, 1, page.data());
      const size_t len = zswap_compress(c, page.data(), buf.data(), buf.size());
      ASSERT_GT(len, 0u) << zswap_compressor_name(c);
      if (kind_of(i) == Kind::kRandom)
        EXPECT_GE(len, PAGE_SIZE) << zswap_compressor_name(c);
      else
        EXPECT_LT(len, PAGE_SIZE * 3 / 4) << zswap_compressor_name(c);
      ASSERT_TRUE(zswap_decompress(c, buf.data(), len, back.data()));
      EXPECT_EQ(page, back);
      // A truncated stream is refused, not half-decoded.
      if (len > 8) {
        EXPECT_FALSE(zswap_decompress(c, buf.data(), len - 8, back.data()));
      }
    }
  }
}

class ZswapReclaim : public testing::TestWithParam<const char*> {};

// Twice RAM of mixed pages: the same-filled ones are stored as a value, the
// compressible ones compressed, the random ones refused as poor and written
// to the file; all read back, and the loads free their entries.
TEST_P(ZswapReclaim, MixedPagesTwiceRamReadBack) {
  auto m = boot_zswap(32, 128, true, GetParam());
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "big", &p), 0);
  const uint64_t pages = (64ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 1);
  expect_checks(*m, p->mm);
  ZswapStats s = zswap_stats(*m);
  EXPECT_GT(s.stored_pages, 0u);
  EXPECT_GT(s.same_filled_pages, 0u);
  EXPECT_GT(s.reject_compress_poor, 0u);
  EXPECT_GT(s.pool_total_size, 0u);
  EXPECT_EQ(s.reject_compress_fail, 0u);
  EXPECT_GT(m->sum_event(VmEvent::ZSWPOUT), 0);
  EXPECT_GT(m->sum_event(VmEvent::PSWPOUT), 0);  // the random pages
  // The pool holds compressed pages in fewer pages than they had.
  EXPECT_LT(s.pool_total_size / PAGE_SIZE, s.stored_pages - s.same_filled_pages);
  EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 1), 0u);
  EXPECT_GT(m->sum_event(VmEvent::ZSWPIN), 0);
  expect_checks(*m, p->mm);
  // Rewritten and read again: stores of the same slots after loads.
  write_range(p->mm, a, 0, pages, 2);
  EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 2), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
  test::drop_swap_cache_only_slots(*m);
  EXPECT_EQ(swap_free_pages(*m), swap_total_pages(*m));
  s = zswap_stats(*m);
  EXPECT_EQ(s.stored_pages, 0u);
  EXPECT_EQ(s.same_filled_pages, 0u);
  EXPECT_EQ(s.pool_total_size, 0u);
  EXPECT_EQ(zswap_check(*m), "");
}

// Fork shares swap entries with zswap on; the child's writes are its own.
TEST_P(ZswapReclaim, ForkAndCowWithZswap) {
  auto m = boot_zswap(24, 128, true, GetParam());
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "parent", &p), 0);
  const uint64_t pages = (32ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 1);
  Process* c;
  ASSERT_EQ(fork_process(p, &c), 0);
  expect_checks(*m, p->mm);
  write_range(c->mm, a, 0, pages / 2, 2);
  EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 1), 0u);
  EXPECT_EQ(bad_pages(c->mm, a, 0, pages / 2, 2), 0u);
  EXPECT_EQ(bad_pages(c->mm, a, pages / 2, pages - pages / 2, 1), 0u);
  expect_checks(*m, c->mm);
  exit_process(c);
  exit_process(p);
  test::drop_swap_cache_only_slots(*m);
  EXPECT_EQ(zswap_stats(*m).stored_pages, 0u);
  EXPECT_EQ(zswap_check(*m), "");
}

INSTANTIATE_TEST_SUITE_P(Compressors, ZswapReclaim, testing::Values("lz4", "zstd"));

// The same workload with zswap off: nothing is stored, everything goes to
// the file, and it reads back the same.
TEST(Zswap, OffStoresNothingAndReadsBackTheSame) {
  auto m = boot_zswap(32, 128, false);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "big", &p), 0);
  const uint64_t pages = (64ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 1);
  EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 1), 0u);
  EXPECT_EQ(zswap_stats(*m).stored_pages, 0u);
  EXPECT_EQ(m->sum_event(VmEvent::ZSWPOUT), 0);
  EXPECT_GT(m->sum_event(VmEvent::PSWPOUT), 0);
  expect_checks(*m, p->mm);
  exit_process(p);
}

// A pool limited to 2% of RAM fills: stores are refused (pool_limit_hit),
// the oldest entries are written back to the file (written_back_pages,
// zswpwb) and the pool stays near its limit; every page reads back.
TEST(Zswap, FullPoolWritesBackItsOldestEntries) {
  auto m = boot_zswap(32, 128, true, "lz4", 2);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "big", &p), 0);
  const uint64_t pages = (64ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 1);
  expect_checks(*m, p->mm);
  const ZswapStats s = zswap_stats(*m);
  const uint64_t max_pages = m->totalram_pages() * 2 / 100;
  EXPECT_GT(s.pool_limit_hit, 0u);
  EXPECT_GT(s.written_back_pages, 0u);
  EXPECT_EQ(static_cast<int64_t>(s.written_back_pages), m->sum_event(VmEvent::ZSWPWB));
  // A store may add at most one zspage (4 pages) past the limit.
  EXPECT_LE(s.pool_total_size / PAGE_SIZE, max_pages + 4);
  EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 1), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
  test::drop_swap_cache_only_slots(*m);
  EXPECT_EQ(zswap_stats(*m).stored_pages, 0u);
  EXPECT_EQ(zswap_check(*m), "");
}

// Writeback whose writes fail keeps its entries (reject_reclaim_fail):
// nothing is lost.
TEST(Zswap, FailedWritebackLosesNothing) {
  auto m = boot_zswap(32, 128, true, "lz4", 2);
  ASSERT_TRUE(m);
  FaultConfig fc;
  fc.probability = 50;
  fc.times = 400;
  swap_write_fault(*m).configure(fc);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "big", &p), 0);
  const uint64_t pages = (64ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 1);
  expect_checks(*m, p->mm);
  EXPECT_GT(swap_write_fault(*m).failures(), 0);
  // The pool wrote back; which writes the injected failures hit (the pool's
  // writeback or reclaim's own) depends on timing.
  EXPECT_GT(zswap_stats(*m).written_back_pages + zswap_stats(*m).reject_reclaim_fail, 0u);
  EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 1), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
}

// swapoff brings the pages zswap holds back as well as the file's.
TEST(Zswap, SwapoffBringsZswapPagesBack) {
  auto m = boot_zswap(64, 256, true);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const uint64_t pages = (96ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 3);
  ASSERT_GT(zswap_stats(*m).stored_pages, 0u);
  const uint64_t gone = pages - pages / 4;
  ASSERT_EQ(do_munmap(p->mm, a, gone * PAGE_SIZE), 0);
  expect_checks(*m, p->mm);
  const auto areas = swap_areas(*m);
  ASSERT_EQ(areas.size(), 1u);
  EXPECT_EQ(swapoff(*m, areas[0].path), 0);
  EXPECT_EQ(zswap_stats(*m).stored_pages, 0u);
  EXPECT_EQ(zswap_stats(*m).pool_total_size, 0u);
  EXPECT_EQ(bad_pages(p->mm, a, gone, pages - gone, 3), 0u);
  EXPECT_EQ(zswap_check(*m), "");
  exit_process(p);
}

// Random writes, reads and unmaps over twice RAM, zswap's checks after each
// step; the pool limit is low so writeback runs too. Prints its seed.
TEST(Zswap, RandomisedStepsKeepTheInvariants) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937_64 rng(seed);
  auto m = boot_zswap(24, 128, true, rng() % 2 ? "lz4" : "zstd", 3);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "r", &p), 0);
  const uint64_t pages = (48ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  std::vector<uint64_t> version(pages, 0);  // 0: never written (or unmapped)
  std::vector<uint64_t> buf(PAGE_SIZE / 8), want(PAGE_SIZE / 8);
  for (int step = 0; step < 12; ++step) {
    for (int k = 0; k < 2000; ++k) {
      const uint64_t i = rng() % pages;
      const unsigned op = rng() % 8;
      if (op < 5) {
        version[i] = step * 10 + 1 + rng() % 5;
        fill_page(i, version[i], buf.data());
        ASSERT_TRUE(access_write(p->mm, a + i * PAGE_SIZE, buf.data(), PAGE_SIZE).ok());
      } else if (op < 7) {
        ASSERT_TRUE(access_read(p->mm, a + i * PAGE_SIZE, buf.data(), PAGE_SIZE).ok());
        if (version[i]) {
          fill_page(i, version[i], want.data());
          ASSERT_EQ(buf, want) << "page " << i << " step " << step;
        } else {
          ASSERT_EQ(buf, std::vector<uint64_t>(PAGE_SIZE / 8, 0)) << "page " << i;
        }
      } else {
        // Drop the page (MADV_DONTNEED's effect: unmap and map again).
        ASSERT_EQ(do_munmap(p->mm, a + i * PAGE_SIZE, PAGE_SIZE), 0);
        ASSERT_EQ(do_mmap(p->mm, a + i * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED),
                  static_cast<int64_t>(a + i * PAGE_SIZE));
        version[i] = 0;
      }
    }
    expect_checks(*m, p->mm);
    if (HasFailure()) return;
  }
  EXPECT_GT(zswap_stats(*m).written_back_pages + zswap_stats(*m).pool_limit_hit, 0u);
  exit_process(p);
  test::drop_swap_cache_only_slots(*m);
  EXPECT_EQ(zswap_stats(*m).stored_pages, 0u);
  EXPECT_EQ(zswap_check(*m), "");
}

// meminfo's Zswap and Zswapped, vmstat's zswpin/zswpout/zswpwb in Linux's
// order, and the debugfs view.
TEST(Zswap, ViewsShowTheStatistics) {
  auto m = boot_zswap(32, 128, true);
  ASSERT_TRUE(m);
  {
    const std::string vmstat = render_vmstat(*m);
    const size_t in = vmstat.find("\nzswpin 0\n"), out = vmstat.find("\nzswpout 0\n"),
                 wb = vmstat.find("\nzswpwb 0\n");
    ASSERT_NE(in, std::string::npos);
    ASSERT_NE(out, std::string::npos);
    ASSERT_NE(wb, std::string::npos);
    EXPECT_LT(in, out);
    EXPECT_LT(out, wb);
  }
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "big", &p), 0);
  const uint64_t pages = (48ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 1);
  // kswapd may still be at work: take the numbers and the views until they
  // agree (they are read at slightly different times).
  bool agreed = false;
  ZswapStats s;
  std::string meminfo, view;
  for (int attempt = 0; attempt < 200 && !agreed; ++attempt) {
    s = zswap_stats(*m);
    meminfo = render_meminfo(*m);
    view = render_view(*m, "zswap");
    agreed =
        meminfo.find(fmt::format("Zswap:          {:>8} kB\n", s.pool_total_size / 1024)) !=
            std::string::npos &&
        meminfo.find(fmt::format("Zswapped:       {:>8} kB\n", s.stored_pages * 4)) !=
            std::string::npos &&
        view.find(fmt::format("\nstored_pages {}\n", s.stored_pages)) != std::string::npos &&
        view.find(fmt::format("\npool_total_size {}\n", s.pool_total_size)) != std::string::npos;
    if (!agreed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(agreed) << meminfo << view;
  EXPECT_GT(s.stored_pages, 0u);
  EXPECT_LT(meminfo.find("SwapFree:"), meminfo.find("Zswap:"));
  EXPECT_EQ(view.substr(0, view.find('\n')), "duplicate_entry 0");
  EXPECT_EQ(std::count(view.begin(), view.end(), '\n'), 11);
  const std::string json = render_json(*m);
  EXPECT_NE(json.find("\"zswap\":{\"duplicate_entry\":"), std::string::npos);
  exit_process(p);
}

// Disabled at run time, zswap stores nothing more but its entries still load.
TEST(Zswap, DisablingKeepsStoredEntriesLoadable) {
  auto m = boot_zswap(32, 128, true);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const uint64_t pages = (48ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_range(p->mm, a, 0, pages, 1);
  ASSERT_GT(zswap_stats(*m).stored_pages, 0u);
  zswap_set_enabled(*m, false);
  // A store kswapd began before the switch may still finish: take the
  // count once it has stood still for 20 ms.
  int64_t out = m->sum_event(VmEvent::ZSWPOUT);
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int64_t now = m->sum_event(VmEvent::ZSWPOUT);
    if (now == out) break;
    out = now;
  }
  EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 1), 0u);
  EXPECT_EQ(m->sum_event(VmEvent::ZSWPOUT), out);
  expect_checks(*m, p->mm);
  exit_process(p);
}

// A 32 MiB machine with zswap on, CPU 0 bound, an 8 MiB group "g" (set up
// by the test before write()), and a process in it that writes `mib` MiB
// of mixed pages (fill_page's version 1).
class ZswapMemcg : public ::testing::Test {
 protected:
  void SetUp() override {
    m = boot_zswap(32, 128, true);
    ASSERT_TRUE(m);
    cpu.emplace(CpuScope::bind(*m, 0));
    cg = mem_cgroup_create(*m, "g", 8ull << 20);
    ASSERT_NE(cg, nullptr);
  }
  void write(uint64_t mib) {
    ASSERT_EQ(spawn(*m, "p", &p), 0);
    p->mm->memcg = cg;
    pages = (mib << 20) / PAGE_SIZE;
    a = map_anon(p->mm, pages * PAGE_SIZE);
    write_range(p->mm, a, 0, pages, 1);
    expect_checks(*m, p->mm);
  }
  // Every page reads back; the checks hold; the process exits.
  void read_back_and_exit() {
    EXPECT_EQ(bad_pages(p->mm, a, 0, pages, 1), 0u);
    expect_checks(*m, p->mm);
    exit_process(p);
  }
  std::string read(const char* file) {
    std::string text;
    EXPECT_TRUE(mem_cgroup_read(cg, file, &text)) << file;
    return text;
  }

  std::unique_ptr<Machine> m;
  std::optional<Result<CpuScope>> cpu;
  MemCgroup* cg = nullptr;
  Process* p = nullptr;
  uint64_t pages = 0, a = 0;
};

// A memory cgroup owns the entries of its pages (cgroup v2's memory.zswap.*):
// their compressed bytes are memory.zswap.current, charged to
// memory.current in whole pages, and counted in memory.stat; all of it goes
// back to zero when the process exits.
TEST_F(ZswapMemcg, AGroupsEntriesAreChargedToIt) {
  write(24);  // 3x the group's limit
  const int64_t bytes = cg->zswap_bytes.load();
  EXPECT_EQ(read("memory.zswap.current"), fmt::format("{}\n", bytes));
  EXPECT_GT(bytes, 0);
  // Only this group's pages were swapped, so every entry is its own.
  EXPECT_EQ(static_cast<uint64_t>(cg->nr_zswapped.load()), zswap_stats(*m).stored_pages);
  const std::string text = read("memory.stat");
  EXPECT_NE(text.find(fmt::format("\nzswap {}\nzswapped {}\n", bytes,
                                  cg->nr_zswapped.load() * static_cast<int64_t>(PAGE_SIZE))),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(fmt::format("\nzswpout {}\n", cg->ev_zswpout.load())), std::string::npos);
  EXPECT_GE(cg->ev_zswpout.load(), static_cast<uint64_t>(cg->nr_zswapped.load()));
  read_back_and_exit();
  EXPECT_GT(cg->ev_zswpin.load(), 0u);
  test::drop_swap_cache_only_slots(*m);
  EXPECT_EQ(cg->zswap_bytes.load(), 0);
  EXPECT_EQ(cg->nr_zswapped.load(), 0);
  EXPECT_EQ(cg->usage.load(), 0);  // the entries' pages were given back too
  EXPECT_EQ(zswap_check(*m), "");
}

// memory.zswap.max at 0: the group's pages go to the swap file, never to
// zswap.
TEST_F(ZswapMemcg, ZswapMaxZeroSendsTheGroupsPagesToTheFile) {
  mem_cgroup_set_zswap_max(cg, 0);
  EXPECT_EQ(read("memory.zswap.max"), "0\n");
  write(24);
  EXPECT_LE(cg->zswap_bytes.load(), 0);
  EXPECT_EQ(cg->ev_zswpout.load(), 0u);
  // Same-filled and compressible pages went to the file too.
  EXPECT_GT(m->sum_event(VmEvent::PSWPOUT), static_cast<int64_t>(pages / 2));
  read_back_and_exit();
}

// memory.zswap.max at 16 pages: the group's compressed bytes stop one entry
// past the limit (the check is made before each store), and the rest go to
// the file.
TEST_F(ZswapMemcg, ZswapMaxStopsTheGroupsStoresAtItsLimit) {
  constexpr uint64_t kMax = 64 << 10;
  mem_cgroup_set_zswap_max(cg, kMax);
  EXPECT_EQ(read("memory.zswap.max"), fmt::format("{}\n", kMax));
  write(24);
  EXPECT_LE(cg->zswap_bytes.load(), static_cast<int64_t>(kMax + PAGE_SIZE));
  EXPECT_GT(cg->ev_zswpout.load(), 0u);
  EXPECT_GT(m->sum_event(VmEvent::PSWPOUT), static_cast<int64_t>(pages / 2));
  read_back_and_exit();
}

// memory.zswap.writeback off: zswap takes the pages it can, the rest stay
// in memory (activated, dirty), and nothing of the group reaches the file.
TEST_F(ZswapMemcg, WritebackOffKeepsTheGroupOffTheSwapFile) {
  mem_cgroup_set_zswap_writeback(cg, false);
  EXPECT_EQ(read("memory.zswap.writeback"), "0\n");
  write(12);  // a third of the pages are incompressible: 4 MiB that must stay
  EXPECT_GT(cg->ev_zswpout.load(), 0u);
  EXPECT_GT(zswap_stats(*m).reject_compress_poor, 0u);
  EXPECT_EQ(m->sum_event(VmEvent::PSWPOUT), 0);
  EXPECT_EQ(zswap_stats(*m).written_back_pages, 0u);
  EXPECT_EQ(cg->ev_oom_kill.load(), 0u);
  read_back_and_exit();
}

}  // namespace
}  // namespace mmkit
