// mmsim as a user runs it: the subcommands print what they promise, and bad
// input (a broken config, an unknown view, a bad flag) gets one line on
// stderr and exit status 2, never a crash.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace {

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

CliRun mmsim(const std::string& args) {
  // One file per call and process: ctest runs tests in parallel processes.
  static int calls = 0;
  const std::string err_file = ::testing::TempDir() + "mmsim_err_" + std::to_string(getpid()) +
                               "_" + std::to_string(++calls) + ".txt";
  const std::string cmd = std::string(MMSIM_PATH) + " " + args + " 2>" + err_file;
  CliRun r{};
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  return r;
}

std::string write_config(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + std::to_string(getpid()) + "_" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(MmsimCli, BootPrintsZoneRangesAndZonelists) {
  CliRun r = mmsim("boot");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Zone ranges:"), std::string::npos);
  EXPECT_NE(r.out.find("  DMA      [mem 0x0000000000000000-0x0000000000ffffff]"),
            std::string::npos);
  EXPECT_NE(r.out.find("Built 2 zonelists, mobility grouping on.  Total pages: "),
            std::string::npos);
}

TEST(MmsimCli, DmesgStampsTheBootLogAndTheSwaponLine) {
  const std::string cfg =
      write_config("dmesg.toml", "cpus = 2\nswap = \"16MiB\"\n[[node]]\nmemory = \"64MiB\"\n");
  CliRun r = mmsim("dmesg --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("[    0.000000] Zone ranges:\n", 0), 0u) << r.out;
  // printk's "[%5lu.%06lu] " before mm/swapfile.c's swapon line.
  const std::regex swapon(R"((^|\n)\[ +\d+\.\d{6}\] Adding 16380k swap on \S+\.  Priority:-2 )");
  EXPECT_TRUE(std::regex_search(r.out, swapon)) << r.out;
  CliRun bad = mmsim("dmesg --config /nonexistent/machine.toml");
  EXPECT_EQ(bad.status, 2);
  EXPECT_TRUE(bad.out.empty());
  EXPECT_NE(bad.err.find("/nonexistent/machine.toml"), std::string::npos) << bad.err;
}

TEST(MmsimCli, BuddyinfoLinesHaveElevenOrders) {
  CliRun r = mmsim("proc buddyinfo");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::regex line(R"(^Node \d+, zone +\S+( +\d+){11} *$)");
  size_t lines = 0, start = 0;
  for (size_t nl; (nl = r.out.find('\n', start)) != std::string::npos; start = nl + 1, ++lines)
    EXPECT_TRUE(std::regex_match(r.out.substr(start, nl - start), line))
        << r.out.substr(start, nl - start);
  EXPECT_EQ(lines, 3u);  // DMA and DMA32 of node 0, DMA32 of node 1
}

TEST(MmsimCli, ProcSlabinfoListsTheKmallocCaches) {
  CliRun r = mmsim("proc slabinfo");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("slabinfo - version: 2.1\n# name            <active_objs> ", 0), 0u)
      << r.out.substr(0, 200);
  const std::regex kmalloc64(
      R"((^|\n)kmalloc-64 +0 +0 +64 +\d+ +1 : tunables +0 +0 +0 : slabdata +0 +0 +0\n)");
  EXPECT_TRUE(std::regex_search(r.out, kmalloc64)) << r.out;
}

TEST(MmsimCli, ProcWithConfigAndJson) {
  const std::string cfg =
      write_config("i386.toml", "arch = \"i386\"\n[[node]]\nmemory = \"2GiB\"\n");
  CliRun r = mmsim("proc meminfo --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("HighTotal:"), std::string::npos);
  CliRun j = mmsim("proc buddyinfo --json --config " + cfg);
  ASSERT_EQ(j.status, 0) << j.err;
  EXPECT_EQ(j.out.front(), '{');
  EXPECT_NE(j.out.find("\"HighMem\""), std::string::npos);
}

// `mmsim proc zswap`: debugfs's statistics, one line each; a bad [zswap]
// key is refused with its file and line.
TEST(MmsimCli, ProcZswapPrintsTheStatistics) {
  const std::string cfg = write_config(
      "zswap.toml",
      "swap = \"16MiB\"\n[zswap]\nenabled = true\ncompressor = \"zstd\"\n[[node]]\nmemory = "
      "\"64MiB\"\n");
  CliRun r = mmsim("proc zswap --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex(R"(^(\w+ \d+\n){11}$)"))) << r.out;
  EXPECT_EQ(r.out.rfind("duplicate_entry 0\npool_limit_hit 0\npool_total_size 0\n", 0), 0u)
      << r.out;
  const std::string bad = write_config(
      "bad_zswap.toml", "[zswap]\nmax_pool_percent = 200\n[[node]]\nmemory = \"64MiB\"\n");
  CliRun b = mmsim("proc zswap --config " + bad);
  EXPECT_EQ(b.status, 2);
  EXPECT_TRUE(std::regex_match(
      b.err, std::regex("^.*bad_zswap.toml:2: zswap\\.max_pool_percent: 200 is out of range "
                        "\\(0\\.\\.100\\)\n$")))
      << b.err;
}

TEST(MmsimCli, DemoRunsAndReturnsAllMemory) {
  CliRun r = mmsim("demo --ops 3000 --seed 7");
  ASSERT_EQ(r.status, 0) << r.err;
  const size_t before = r.out.find("== buddyinfo before ==");
  const size_t after = r.out.find("== buddyinfo after");
  ASSERT_NE(before, std::string::npos);
  ASSERT_NE(after, std::string::npos);
  // All blocks freed and drained: as many free pages after as before (the
  // blocks may differ: a pageblock reserved for high-order atomic requests
  // keeps its type and does not merge with its movable buddy, as in Linux).
  auto free_pages_in = [](const std::string& view) {
    uint64_t pages = 0;
    std::istringstream in(view);
    for (std::string line; std::getline(in, line) && line.rfind("Node ", 0) == 0;) {
      std::istringstream fields(line.substr(line.find("zone") + 4));
      std::string zone;
      fields >> zone;
      uint64_t n;
      for (unsigned order = 0; fields >> n; ++order) pages += n << order;
    }
    return pages;
  };
  const uint64_t pages_before = free_pages_in(r.out.substr(r.out.find('\n', before) + 1));
  EXPECT_GT(pages_before, 1000000u);
  EXPECT_EQ(free_pages_in(r.out.substr(r.out.find('\n', after) + 1)), pages_before);
  EXPECT_NE(r.out.find("pgfree"), std::string::npos);
  // The slab side: the demo caches' rows at the peak and after.
  const size_t slab_peak = r.out.find("== slabinfo at the peak");
  const size_t slab_after = r.out.find("== slabinfo after");
  ASSERT_NE(slab_peak, std::string::npos);
  ASSERT_NE(slab_after, std::string::npos);
  const std::regex row(R"(\n(demo_inode|demo_dentry) +(\d+) +(\d+) +(640|192) )");
  std::smatch match;
  const std::string peak = r.out.substr(slab_peak, slab_after - slab_peak);
  ASSERT_TRUE(std::regex_search(peak, match, row)) << peak;
  EXPECT_GT(std::stoull(match[3]), 0u) << match[0];  // slabs held at the peak
  const std::string slabs_after = r.out.substr(slab_after);
  EXPECT_NE(slabs_after.find("\ndemo_inode             0      0    640"), std::string::npos)
      << slabs_after;
  EXPECT_NE(slabs_after.find("\ndemo_dentry            0      0    192"), std::string::npos)
      << slabs_after;
  // The process part: the forked child's maps and status after its COW writes.
  const size_t maps = r.out.find("== /proc/2/maps ==\n");
  ASSERT_NE(maps, std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out.substr(maps),
      std::regex(R"(\n555555559000-555555569000 rw-p 00000000 00:00 0 +\[heap\]\n)")));
  EXPECT_TRUE(std::regex_search(
      r.out.substr(maps),
      std::regex(R"(\n7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 +\[stack\]\n)")));
  EXPECT_NE(r.out.find("\nPPid:\t1\n"), std::string::npos);
  EXPECT_NE(r.out.find("\nVmRSS:\t    1088 kB\n"), std::string::npos);
}

// A demo whose process the machine will not spawn says why (status 1).
TEST(MmsimCli, DemoThatCannotSpawnSaysWhy) {
  const std::string machine = write_config(
      "demo_no_commit.toml",
      "cpus = 2\novercommit_memory = 2\novercommit_kbytes = 1\n[[node]]\nmemory = \"32MiB\"\n");
  const CliRun r = mmsim("demo --config " + machine);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot spawn the demo process: Cannot allocate memory (its stack and "
                       "page tables: the machine's overcommit policy and CommitLimit"),
            std::string::npos)
      << r.err;
}

TEST(MmsimCli, OvercommitTableHasEachModesLimit) {
  const std::string cfg = write_config(
      "oc.toml", "swap = \"64MiB\"\nadmin_reserve_kbytes = 0\n[[node]]\nmemory = \"256MiB\"\n");
  CliRun r = mmsim("overcommit --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  std::smatch mt;
  const std::regex mode0(
      R"(\n(\d+) kB +(\d+) kB +0 \(heuristic\) +(\d+) kB +pages > totalram \+ swap\n)");
  ASSERT_TRUE(std::regex_search(r.out, mt, mode0)) << r.out;
  const uint64_t ram_kb = std::stoull(mt[1]);
  // The swap area: 64 MiB less its header page, as SwapTotal counts it.
  const uint64_t swap_kb = std::stoull(mt[2]);
  EXPECT_EQ(swap_kb, 65536u - 4);
  EXPECT_EQ(std::stoull(mt[3]), ram_kb + swap_kb);  // a single request up to RAM + swap
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(1 \(always\) +\d+ kB +address space)")))
      << r.out;
  // Mode 2: CommitLimit (RAM / 2 + swap) less the stack already committed
  // (132 kB), the user reserve (33 pages of total_vm / 32 = 1 page) and
  // one page (committed must stay below the limit); no admin reserve here.
  const std::regex mode2(R"(2 \(never\) +(\d+) kB +Committed_AS >= CommitLimit - reserves\n)");
  ASSERT_TRUE(std::regex_search(r.out, mt, mode2)) << r.out;
  EXPECT_EQ(std::stoull(mt[1]), ram_kb / 8 * 4 + swap_kb - 132 - 4 - 4);
}

struct BadInput {
  const char* name;
  std::string args;
  std::string expected_err_regex;
};

TEST(MmsimCli, LayoutOfAnI386Machine) {
  const std::string cfg =
      write_config("layout_i386.toml", "arch = \"i386\"\ncpus = 2\n[[node]]\nmemory = \"2GiB\"\n");
  CliRun r = mmsim("layout --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("3G/1G split"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    user    : 0x00000000 - 0xc0000000   (   3 GB)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    lowmem  : 0xc0000000 - 0xf8000000   ( 896 MB)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    hole    : 0xf8000000 - 0xf8800000   (   8 MB)"), std::string::npos);
  EXPECT_NE(r.out.find("    vmalloc : 0xf8800000 - 0xff7fe000   ( 111 MB)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    pkmap   : 0xff800000 - 0xffc00000   (   4 MB)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    fixmap  : 0xfffde000 - 0xfffff000   ( 132 kB)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("highmem 1152 MB"), std::string::npos) << r.out;
}

TEST(MmsimCli, ProcVmallocinfoIsEmptyOnAFreshMachine) {
  CliRun r = mmsim("proc vmallocinfo");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");  // nothing has used vmalloc yet
  EXPECT_EQ(r.err, "");
}

TEST(MmsimCli, LayoutOfAnX86_64Machine) {
  const std::string cfg =
      write_config("layout_x86.toml", "vmalloc = \"1GiB\"\n[[node]]\nmemory = \"4GiB\"\n");
  CliRun r = mmsim("layout --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("4-level paging"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    direct  : 0xffff888000000000 - 0xffff888100000000   (   4 GB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    vmalloc : 0xffffc90000000000 - 0xffffc90040000000   (   1 GB)"),
            std::string::npos)
      << r.out;
  // 4 GiB of 4 KiB frames, 64 bytes each: 64 MiB of struct page.
  EXPECT_NE(r.out.find("    vmemmap : 0xffffea0000000000 - 0xffffea0004000000   (  64 MB)"),
            std::string::npos)
      << r.out;
}

TEST(MmsimCli, LayoutWithFiveLevelPaging) {
  const std::string cfg =
      write_config("layout_la57.toml", "paging_levels = 5\n[[node]]\nmemory = \"1GiB\"\n");
  CliRun r = mmsim("layout --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("5-level paging"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    direct  : 0xff11000000000000 - 0xff11000040000000   (   1 GB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    vmalloc : 0xffa0000000000000 - 0xffa0000020000000   ( 512 MB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    vmemmap : 0xffd4000000000000 - "), std::string::npos) << r.out;
}

TEST(MmsimCli, BadInputGetsOneLineAndStatusTwo) {
  const std::string bad_size =
      write_config("bad_size.toml", "cpus = 2\n[[node]]\nmemory = \"12XB\"\n");
  const std::string bad_key =
      write_config("bad_key.toml", "cpu = 2\n[[node]]\nmemory = \"1GiB\"\n");
  const std::string bad_syntax = write_config("bad_syntax.toml", "cpus = = 2\n");
  const std::string bad_vmalloc =
      write_config("bad_vmalloc.toml", "cpus = 2\nvmalloc = 5000\n[[node]]\nmemory = \"1GiB\"\n");
  const std::string bad_mode =
      write_config("bad_mode.toml", "overcommit_memory = 5\n[[node]]\nmemory = \"64MiB\"\n");
  const std::string bad_swap =
      write_config("bad_swap.toml", "swap = 100\n[[node]]\nmemory = \"64MiB\"\n");
  // Swap areas that pass the config's checks but not swapon at boot: the
  // message names the [[swap]] table's line, and no file is left behind.
  const std::string missing_swap =
      ::testing::TempDir() + "no_such_swap_" + std::to_string(getpid());
  const std::string bad_swap_dir =
      write_config("bad_swap_dir.toml",
                   "cpus = 1\n[[swap]]\nfile = \"/nonexistent/dir/swap\"\nsize = "
                   "\"8MiB\"\n[[node]]\nmemory = \"64MiB\"\n");
  const std::string bad_swap_file =
      write_config("bad_swap_file.toml", "cpus = 1\n\n[[swap]]\nfile = \"" + missing_swap +
                                             "\"\n[[node]]\nmemory = \"64MiB\"\n");
  // The `swap = SIZE` key's area, refused at boot: its line too.
  const std::string tiny_swap =
      write_config("tiny_swap.toml", "cpus = 2\nswap = \"4KiB\"\n[[node]]\nmemory = \"64MiB\"\n");
  const BadInput cases[] = {
      {"swap key too small for an area", "boot --config " + tiny_swap,
       "^.*tiny_swap.toml:2: swap: .*: a swap area needs at least two pages .*\n$"},
      {"swap area in a missing directory", "boot --config " + bad_swap_dir,
       "^.*bad_swap_dir.toml:2: swap\\[0\\]: /nonexistent/dir/swap: No such file or directory\n$"},
      {"swap file missing, no size", "dmesg --config " + bad_swap_file,
       "^.*bad_swap_file.toml:3: swap\\[0\\]: .*no_such_swap_.*: no such file \\(give a size to "
       "create it\\)\n$"},
      {"bad size", "boot --config " + bad_size, "^.*bad_size.toml:3: node\\[0\\]\\.memory: .*\n$"},
      {"unknown key", "proc zoneinfo --config " + bad_key, "^.*bad_key.toml:1: cpu: .*\n$"},
      {"syntax", "demo --config " + bad_syntax, "^.*bad_syntax.toml:1: syntax: .*\n$"},
      {"missing file", "boot --config /nonexistent/m.toml",
       "^/nonexistent/m.toml: cannot read: .*\n$"},
      {"unknown view", "proc slabinfo2", "^mmsim: proc: unknown view \"slabinfo2\".*\n$"},
      {"layout, bad vmalloc", "layout --config " + bad_vmalloc,
       "^.*bad_vmalloc.toml:2: vmalloc: 5000 is not a multiple of 4KiB\n$"},
      {"bad overcommit mode", "overcommit --config " + bad_mode,
       "^.*bad_mode.toml:1: overcommit_memory: 5 is out of range .*\n$"},
      {"overcommit bad swap", "overcommit --config " + bad_swap,
       "^.*bad_swap.toml:1: swap: 100 is not a multiple of the page size .*\n$"},
  };
  for (const BadInput& c : cases) {
    CliRun r = mmsim(c.args);
    EXPECT_EQ(r.status, 2) << c.name << ": " << r.err;
    EXPECT_TRUE(std::regex_match(r.err, std::regex(c.expected_err_regex)))
        << c.name << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << c.name;
  }
  EXPECT_NE(access(missing_swap.c_str(), F_OK), 0) << missing_swap << " was created";
  EXPECT_EQ(mmsim("frobnicate").status, 2);
  EXPECT_EQ(mmsim("demo --ops 0").status, 2);
}

}  // namespace
