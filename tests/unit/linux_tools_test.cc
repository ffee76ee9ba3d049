// Linux's own tools read our views: procps 4.0.2's `free -k` and `vmstat -s`
// run in a private mount namespace where the rendered meminfo and vmstat are
// bind-mounted over /proc/meminfo and /proc/vmstat (fs/proc/meminfo.c and
// mm/vmstat.c formats; procps's library parses both by name), and
// util-linux's `swapon --show` reads our /proc/swaps (mm/swapfile.c).
//
// Needs root or CAP_SYS_ADMIN for `unshare -m` and `mount --bind`; the tests
// skip with a message where the namespace cannot be made.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../support/proc_tools.h"
#include "filemap/filemap.h"
#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

using test::CommandResult;
using test::run;
using test::TempFile;

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

std::map<std::string, uint64_t> parse_meminfo(const std::string& text) {
  std::map<std::string, uint64_t> fields;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    fields[line.substr(0, colon)] = std::stoull(line.substr(colon + 1));
  }
  return fields;
}

std::map<std::string, uint64_t> parse_vmstat(const std::string& text) {
  std::map<std::string, uint64_t> fields;
  std::istringstream in(text);
  for (std::string name; in >> name;) in >> fields[name];
  return fields;
}

// The numbers of the first line of `text` that starts with `label`.
std::vector<uint64_t> numbers_after(const std::string& text, const std::string& label) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(label, 0) != 0) continue;
    std::istringstream fields(line.substr(label.size()));
    std::vector<uint64_t> v;
    for (uint64_t n; fields >> n;) v.push_back(n);
    return v;
  }
  return {};
}

// `vmstat -s` prints "%13lu K total memory" style lines: the number before `what`.
bool vmstat_s_value(const std::string& text, const std::string& what, uint64_t* value) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto pos = line.find(what);
    if (pos == std::string::npos || pos + what.size() != line.size()) continue;
    *value = std::stoull(line.substr(0, pos));
    return true;
  }
  return false;
}

class LinuxToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::tools_unavailable("free vmstat"); !why.empty())
      GTEST_SKIP() << why;
  }

  // Runs `tools` with meminfo and vmstat bind-mounted over /proc's.
  CommandResult with_views(const std::string& meminfo_path, const std::string& vmstat_path,
                           const std::string& tools) {
    return run("unshare -m sh -c " +
               quote("mount --bind " + meminfo_path + " /proc/meminfo && mount --bind " +
                     vmstat_path + " /proc/vmstat && " + tools));
  }
};

TEST_F(LinuxToolsTest, FreeAndVmstatReadOurViews) {
  MachineConfig cfg;
  cfg.arch = Arch::x86_64;
  cfg.cpus = 2;
  NodeConfig n;
  n.memory = 768 * kMiB;
  cfg.nodes.push_back(n);
  auto booted = boot(cfg);
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = *booted.value();
  // Hold some memory so MemFree differs from MemTotal by more than the reserves.
  std::vector<Page*> held;
  for (int i = 0; i < 32; ++i) held.push_back(alloc_pages(m, GFP_KERNEL, 4));

  const std::string meminfo = render_meminfo(m);
  const std::string vmstat = render_vmstat(m);
  const auto mi = parse_meminfo(meminfo);
  TempFile f1("mmkit_meminfo", meminfo), f2("mmkit_vmstat", vmstat);
  ASSERT_FALSE(f1.path().empty());
  ASSERT_FALSE(f2.path().empty());

  const CommandResult probe = with_views(f1.path(), f2.path(), "true");
  if (probe.status != 0) GTEST_SKIP() << "cannot bind-mount over /proc: " << probe.output;

  const CommandResult r = with_views(f1.path(), f2.path(), "free -k && echo --- && vmstat -s");
  ASSERT_EQ(r.status, 0) << r.output;

  // procps 4.0.2: "Mem:" total used free shared buff/cache available.
  const auto mem = numbers_after(r.output, "Mem:");
  ASSERT_EQ(mem.size(), 6u) << r.output;
  EXPECT_EQ(mem[0], mi.at("MemTotal")) << r.output;
  EXPECT_EQ(mem[2], mi.at("MemFree")) << r.output;
  EXPECT_EQ(mem[5], mi.at("MemAvailable")) << r.output;
  // procps 4 computes "used" as MemTotal - MemAvailable.
  EXPECT_EQ(mem[1], mi.at("MemTotal") - mi.at("MemAvailable")) << r.output;

  uint64_t total = 0, free = 0;
  ASSERT_TRUE(vmstat_s_value(r.output, " K total memory", &total)) << r.output;
  ASSERT_TRUE(vmstat_s_value(r.output, " K free memory", &free)) << r.output;
  EXPECT_EQ(total, mi.at("MemTotal"));
  EXPECT_EQ(free, mi.at("MemFree"));

  for (Page* p : held)
    if (p) free_pages(m, p, 4);
}

// A machine that has swapped: `free -k` shows our swap, `vmstat -s` our
// swap totals and pswpin/pswpout, `swapon --show` our area, each to the kB.
TEST_F(LinuxToolsTest, FreeVmstatAndSwaponReadOurSwap) {
  if (const std::string why = test::tools_unavailable("swapon"); !why.empty()) GTEST_SKIP() << why;
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = {NodeConfig{.memory = 32 * kMiB}};
  cfg.swap = 64 * kMiB;
  auto booted = boot_with_reclaim(cfg);
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = *booted.value();
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "writer", &p), 0);
  constexpr uint64_t kBytes = 48 * kMiB;
  const int64_t base =
      do_mmap(p->mm, 0, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_GT(base, 0);
  for (uint64_t off = 0; off < kBytes; off += PAGE_SIZE) {
    const uint64_t word = off;
    ASSERT_TRUE(access_write(p->mm, static_cast<uint64_t>(base) + off, &word, sizeof word).ok());
  }
  // 16 MiB at least went out: reading everything back brings some in.
  for (uint64_t off = 0; off < kBytes; off += PAGE_SIZE) {
    uint64_t word = 0;
    ASSERT_TRUE(access_read(p->mm, static_cast<uint64_t>(base) + off, &word, sizeof word).ok());
    ASSERT_EQ(word, off);
  }
  ASSERT_GT(m.sum_event(VmEvent::PSWPOUT), 0u);
  ASSERT_GT(m.sum_event(VmEvent::PSWPIN), 0u);

  const std::string meminfo = render_meminfo(m), vmstat = render_vmstat(m), swaps = render_swaps(m);
  const auto mi = parse_meminfo(meminfo);
  ASSERT_GT(mi.at("SwapTotal"), mi.at("SwapFree"));
  TempFile f1("mmkit_meminfo", meminfo), f2("mmkit_vmstat", vmstat), f3("mmkit_swaps", swaps);
  ASSERT_FALSE(f3.path().empty());
  const std::string mounts = "mount --bind " + f1.path() + " /proc/meminfo && mount --bind " +
                             f2.path() + " /proc/vmstat && mount --bind " + f3.path() +
                             " /proc/swaps && ";
  const CommandResult probe = run("unshare -m sh -c " + quote(mounts + "true"));
  if (probe.status != 0) GTEST_SKIP() << "cannot bind-mount over /proc: " << probe.output;
  const CommandResult r =
      run("unshare -m sh -c " +
          quote(mounts + "free -k && echo --- && vmstat -s && echo --- && "
                         "swapon --show=NAME,TYPE,SIZE,USED,PRIO --bytes --noheadings"));
  ASSERT_EQ(r.status, 0) << r.output;

  // procps 4.0.2: "Swap:" total used free.
  const auto swap = numbers_after(r.output, "Swap:");
  ASSERT_EQ(swap.size(), 3u) << r.output;
  EXPECT_EQ(swap[0], mi.at("SwapTotal")) << r.output;
  EXPECT_EQ(swap[1], mi.at("SwapTotal") - mi.at("SwapFree")) << r.output;
  EXPECT_EQ(swap[2], mi.at("SwapFree")) << r.output;

  uint64_t total = 0, free = 0, in = 0, out = 0;
  ASSERT_TRUE(vmstat_s_value(r.output, " K total swap", &total)) << r.output;
  ASSERT_TRUE(vmstat_s_value(r.output, " K free swap", &free)) << r.output;
  ASSERT_TRUE(vmstat_s_value(r.output, " pages swapped in", &in)) << r.output;
  ASSERT_TRUE(vmstat_s_value(r.output, " pages swapped out", &out)) << r.output;
  EXPECT_EQ(total, mi.at("SwapTotal"));
  EXPECT_EQ(free, mi.at("SwapFree"));
  // kswapd may still run: the views are one snapshot, the tools read it.
  const auto vm = parse_vmstat(vmstat);
  EXPECT_EQ(in, vm.at("pswpin"));
  EXPECT_EQ(out, vm.at("pswpout"));
  EXPECT_GT(out, 0u);

  // swapon --show: the area's name, "file", its size and use in bytes (from
  // /proc/swaps' kB columns) and its priority.
  std::istringstream ours(swaps.substr(swaps.find('\n') + 1));
  std::string our_name, our_type;
  uint64_t our_kb = 0, our_used_kb = 0;
  int our_prio = 0;
  ASSERT_TRUE(ours >> our_name >> our_type >> our_kb >> our_used_kb >> our_prio) << swaps;
  const std::vector<SwapAreaInfo> areas = swap_areas(m);
  ASSERT_EQ(areas.size(), 1u);
  EXPECT_EQ(our_name, areas[0].path);
  EXPECT_EQ(our_kb, areas[0].pages * PAGE_SIZE / 1024);
  EXPECT_GT(our_used_kb, 0u);
  const std::string row = r.output.substr(r.output.rfind("---\n") + 4);
  std::istringstream fields(row);
  std::string name, type;
  uint64_t size = 0, used = 0;
  int prio = 0;
  ASSERT_TRUE(fields >> name >> type >> size >> used >> prio) << r.output;
  EXPECT_EQ(name, our_name);
  EXPECT_EQ(type, "file");
  EXPECT_EQ(size, our_kb * 1024);
  EXPECT_EQ(used, our_used_kb * 1024);
  EXPECT_EQ(prio, our_prio);
  exit_process(p);
}

// A machine with a page cache: `free -k` shows it under buff/cache, and
// `vmstat -s` our Cached as its "buffer/cache" lines.
TEST_F(LinuxToolsTest, FreeShowsOurPageCache) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = {NodeConfig{.memory = 128 * kMiB}};
  auto booted = boot_with_reclaim(cfg);
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = *booted.value();
  FileTable ft;
  const int fd = sys_open(m, ft, "cached", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(10 * kMiB, 'c');
  ASSERT_EQ(sys_write(m, ft, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  ASSERT_EQ(sys_fsync(m, ft, fd), 0);
  const std::string meminfo = render_meminfo(m);
  const auto mi = parse_meminfo(meminfo);
  EXPECT_EQ(mi.at("Cached"), 10u * 1024);
  TempFile f1("mmkit_meminfo", meminfo), f2("mmkit_vmstat", render_vmstat(m));
  ASSERT_FALSE(f1.path().empty());
  const CommandResult probe = with_views(f1.path(), f2.path(), "true");
  if (probe.status != 0) GTEST_SKIP() << "cannot bind-mount over /proc: " << probe.output;
  const CommandResult r = with_views(f1.path(), f2.path(), "free -k && echo --- && vmstat -s");
  ASSERT_EQ(r.status, 0) << r.output;
  // procps 4: buff/cache is Buffers + Cached + SReclaimable.
  const auto mem = numbers_after(r.output, "Mem:");
  ASSERT_EQ(mem.size(), 6u) << r.output;
  EXPECT_EQ(mem[4], mi.at("Buffers") + mi.at("Cached") + mi.at("SReclaimable")) << r.output;
  EXPECT_GE(mem[4], 10u * 1024) << r.output;
  EXPECT_EQ(mem[5], mi.at("MemAvailable")) << r.output;
  uint64_t swap_cache = 0;
  ASSERT_TRUE(vmstat_s_value(r.output, " K swap cache", &swap_cache)) << r.output;
  EXPECT_EQ(swap_cache, mi.at("Cached") + mi.at("SReclaimable")) << r.output;
  sys_close(m, ft, fd);
}

}  // namespace
}  // namespace mmkit
