/*
 * Linux's own slabtop reads our /proc/slabinfo: procps 4.0.2's `slabtop -o`
 * (one screen, then exit) runs in a private mount namespace where the output
 * of render_slabinfo() is bind-mounted over /proc/slabinfo. procps's
 * library/slabinfo.c checks the "slabinfo - version: 2.1" line, skips the
 * "# name ..." line and sscanf()s each row in mm/slab_common.c cache_show()'s
 * format, so a row it cannot parse fails the whole read.
 *
 * Needs root or CAP_SYS_ADMIN for `unshare -m` and `mount --bind`; the test
 * skips with a message where the namespace cannot be made.
 */
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
#include <thread>
#include <vector>

#include "../support/proc_tools.h"
#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "slab/slab.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

using test::CommandResult;
using test::run;
using test::TempFile;

// Runs `tools` with `slabinfo_path` bind-mounted over /proc/slabinfo.
CommandResult with_slabinfo(const std::string& slabinfo_path, const std::string& tools) {
  return run("unshare -m sh -c 'mount --bind " + slabinfo_path + " /proc/slabinfo && " + tools +
             "'");
}

// One row of slabtop's table:
//   OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME
struct SlabtopRow {
  uint64_t objs = 0, active = 0;
  std::string use, obj_size;
  uint64_t slabs = 0, obj_per_slab = 0;
  std::string cache_size;
};

std::map<std::string, SlabtopRow> parse_slabtop(const std::string& out) {
  std::map<std::string, SlabtopRow> rows;
  std::istringstream in(out);
  bool table = false;
  for (std::string line; std::getline(in, line);) {
    if (!table) {
      table = line.find("OBJS ACTIVE") != std::string::npos;
      continue;
    }
    std::istringstream f(line);
    SlabtopRow r;
    std::string name;
    if (f >> r.objs >> r.active >> r.use >> r.obj_size >> r.slabs >> r.obj_per_slab >>
        r.cache_size >> name)
      rows[name] = r;
  }
  return rows;
}

// "Active / Total Objects (% used)    : 143 / 180 (79.4%)" -> {143, 180}.
bool summary(const std::string& out, const std::string& what, uint64_t* active, uint64_t* total) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.find(what) == std::string::npos) continue;
    const auto colon = line.find(':');
    unsigned long a = 0, t = 0;
    if (colon == std::string::npos || sscanf(line.c_str() + colon + 1, " %lu / %lu", &a, &t) != 2)
      return false;
    *active = a;
    *total = t;
    return true;
  }
  return false;
}

class SlabtopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::tools_unavailable("slabtop"); !why.empty())
      GTEST_SKIP() << why;
    if (access("/proc/slabinfo", F_OK) != 0)
      GTEST_SKIP() << "no /proc/slabinfo to mount over (kernel without CONFIG_SLUB_DEBUG)";
  }
};

TEST_F(SlabtopTest, ListsOurCachesWithOurNumbers) {
  MachineConfig cfg;
  cfg.arch = Arch::x86_64;
  cfg.cpus = 2;
  NodeConfig n;
  n.memory = 256 * kMiB;
  cfg.nodes.push_back(n);
  auto booted = boot(cfg);
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = *booted.value();

  KmemCache* cache = kmem_cache_create(m, "mmkit_test_cache", 300, 0, SLAB_HWCACHE_ALIGN);
  KmemCache* rcl = kmem_cache_create(m, "mmkit_test_rcl", 600, 0, SLAB_RECLAIM_ACCOUNT);
  ASSERT_NE(cache, nullptr);
  ASSERT_NE(rcl, nullptr);

  // Both CPUs allocate; every other object of CPU 0 is freed by CPU 1
  // (remote frees leave partial slabs behind).
  std::vector<void*> objs[2], kmallocs[2];
  std::vector<std::thread> threads;
  for (int cpu = 0; cpu < 2; ++cpu) {
    threads.emplace_back([&, cpu] {
      auto scope = CpuScope::bind(m, cpu);
      ASSERT_TRUE(scope.ok());
      for (int i = 0; i < 700 + 300 * cpu; ++i) {
        objs[cpu].push_back(kmem_cache_alloc(i % 3 ? cache : rcl, GFP_KERNEL));
        kmallocs[cpu].push_back(kmalloc(m, 16 + (i * 37) % 3000, GFP_KERNEL));
      }
    });
  }
  for (auto& t : threads) t.join();
  {
    std::thread remote([&] {
      auto scope = CpuScope::bind(m, 1);
      ASSERT_TRUE(scope.ok());
      for (size_t i = 0; i < objs[0].size(); i += 2) {
        kmem_cache_free(i % 3 ? cache : rcl, objs[0][i]);
        objs[0][i] = nullptr;
      }
    });
    remote.join();
  }

  const std::string text = render_slabinfo(m);
  TempFile f("mmkit_slabinfo", text);
  ASSERT_FALSE(f.path().empty());
  const CommandResult probe = with_slabinfo(f.path(), "true");
  if (probe.status != 0) GTEST_SKIP() << "cannot bind-mount over /proc/slabinfo: " << probe.output;

  const CommandResult r = with_slabinfo(f.path(), "slabtop -o");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = parse_slabtop(r.output);

  uint64_t active_objs = 0, num_objs = 0, active_caches = 0, caches = 0;
  for (const SlabinfoRow& row : slabinfo_rows(m)) {
    const SlabInfo& i = row.info;
    SCOPED_TRACE(i.name);
    ++caches;
    active_caches += i.active_objs > 0;
    active_objs += i.active_objs;
    num_objs += i.num_objs;
    const auto it = rows.find(i.name);
    ASSERT_NE(it, rows.end()) << r.output;
    const SlabtopRow& s = it->second;
    EXPECT_EQ(s.objs, i.num_objs);
    EXPECT_EQ(s.active, i.active_objs);
    EXPECT_EQ(s.slabs, i.num_slabs);
    EXPECT_EQ(s.obj_per_slab, i.objperslab);
    char size[32];
    snprintf(size, sizeof size, "%.2fK", i.objsize / 1024.0);
    EXPECT_EQ(s.obj_size, size);
    EXPECT_EQ(s.cache_size, std::to_string(i.num_slabs * i.pagesperslab * 4) + "K");
  }
  EXPECT_EQ(rows.size(), caches) << r.output;
  const SlabInfo mine = get_slabinfo(cache);
  EXPECT_GT(mine.active_objs, 0u);
  EXPECT_EQ(rows.at("mmkit_test_cache").objs, mine.num_objs);
  EXPECT_EQ(rows.at("mmkit_test_cache").active, mine.active_objs);

  uint64_t a = 0, t = 0;
  ASSERT_TRUE(summary(r.output, "Active / Total Objects", &a, &t)) << r.output;
  EXPECT_EQ(a, active_objs);
  EXPECT_EQ(t, num_objs);
  ASSERT_TRUE(summary(r.output, "Active / Total Caches", &a, &t)) << r.output;
  EXPECT_EQ(a, active_caches);
  EXPECT_EQ(t, caches);

  for (int cpu = 0; cpu < 2; ++cpu) {
    for (size_t i = 0; i < objs[cpu].size(); ++i)
      if (objs[cpu][i]) kmem_cache_free(i % 3 ? cache : rcl, objs[cpu][i]);
    for (void* p : kmallocs[cpu]) kfree(m, p);
  }
  EXPECT_EQ(kmem_cache_destroy(rcl), 0);
  EXPECT_EQ(kmem_cache_destroy(cache), 0);
}

}  // namespace
}  // namespace mmkit
