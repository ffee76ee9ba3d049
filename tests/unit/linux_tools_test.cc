// Linux's own tools read our views: procps 4.0.2's `free -k` and `vmstat -s`
// run in a private mount namespace where the rendered meminfo and vmstat are
// bind-mounted over /proc/meminfo and /proc/vmstat (fs/proc/meminfo.c and
// mm/vmstat.c formats; procps's library parses both by name).
//
// Needs root or CAP_SYS_ADMIN for `unshare -m` and `mount --bind`; the tests
// skip with a message where the namespace cannot be made.
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
#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"

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

}  // namespace
}  // namespace mmkit
