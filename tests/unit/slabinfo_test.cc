/*
 * /proc/slabinfo (mm/slab_common.c print_slabinfo_header and cache_show,
 * version 2.1) and the slab lines of /proc/meminfo and /proc/vmstat
 * (fs/proc/meminfo.c, mm/vmstat.c, si_mem_available()): the text matches
 * Linux's printf formats byte for byte, the numbers are get_slabinfo()'s and
 * the node counters', and the caches come newest first as Linux lists them.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "slab/slab.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

constexpr const char* kHeader =
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : "
    "tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> "
    "<sharedavail>\n";

std::unique_ptr<Machine> boot_two_cpus(uint64_t mib) {
  return test::boot_or_fail(test::one_node(mib));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::map<std::string, uint64_t> parse_fields(const std::string& text, char sep) {
  std::map<std::string, uint64_t> fields;
  for (const std::string& line : lines_of(text)) {
    const auto at = line.find(sep);
    fields[line.substr(0, at)] = std::stoull(line.substr(at + 1));
  }
  return fields;
}

// The row cache_show() prints for `i`, through the C format Linux uses.
std::string linux_row(const SlabInfo& i) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu",
                i.name.c_str(), static_cast<unsigned long>(i.active_objs),
                static_cast<unsigned long>(i.num_objs), i.objsize, i.objperslab,
                static_cast<int>(i.pagesperslab), 0u, 0u, 0u,
                static_cast<unsigned long>(i.active_slabs), static_cast<unsigned long>(i.num_slabs),
                0ul);
  return buf;
}

// Runs `f(cpu)` on CPUs 0 and 1 at once, each in a thread bound to its CPU.
template <class F>
void on_both_cpus(Machine& m, F f) {
  std::vector<std::thread> threads;
  for (int cpu = 0; cpu < 2; ++cpu) {
    threads.emplace_back([&m, &f, cpu] {
      auto scope = CpuScope::bind(m, cpu);
      ASSERT_TRUE(scope.ok());
      f(cpu);
    });
  }
  for (auto& t : threads) t.join();
}

struct Held {
  KmemCache* cache;  // null: kmalloc
  void* p;
};

void release(Machine& m, std::vector<Held>& held) {
  for (const Held& h : held) {
    if (h.cache)
      kmem_cache_free(h.cache, h.p);
    else
      kfree(m, h.p);
  }
  held.clear();
}

class SlabinfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_ = boot_two_cpus(512);
    ASSERT_TRUE(m_);
    cache_ = kmem_cache_create(*m_, "mmkit_test_cache", 300, 0, 0);
    rcl_ = kmem_cache_create(*m_, "mmkit_test_rcl", 1000, 0, SLAB_RECLAIM_ACCOUNT);
    // 302 bytes round up to mmkit_test_cache's 304-byte stride: find_mergeable()
    // makes it an alias of that cache.
    alias_ = kmem_cache_create(*m_, "mmkit_test_alias", 302, 0, 0);
    ASSERT_NE(cache_, nullptr);
    ASSERT_NE(rcl_, nullptr);
    ASSERT_EQ(alias_, cache_);
  }
  void TearDown() override {
    if (!m_) return;
    for (auto& h : held_) release(*m_, h);
    for (KmemCache* s : {alias_, rcl_, cache_}) {
      if (s) {
        EXPECT_EQ(kmem_cache_destroy(s), 0);
      }
    }
  }

  // Both CPUs allocate from the test caches and kmalloc of every class; then
  // each frees a third of what the other allocated (remote frees), so some
  // slabs are partial and some objects sit on CPU freelists.
  void allocate_on_both_cpus(unsigned per_cpu) {
    const size_t sizes[] = {8, 16, 24, 64, 72, 128, 160, 256, 500, 1024, 2000, 4096, 8192};
    on_both_cpus(*m_, [&](int cpu) {
      for (unsigned i = 0; i < per_cpu; ++i) {
        held_[cpu].push_back({cache_, kmem_cache_alloc(cache_, GFP_KERNEL)});
        if (i % 2 == 0) held_[cpu].push_back({rcl_, kmem_cache_alloc(rcl_, GFP_KERNEL)});
        held_[cpu].push_back({nullptr, kmalloc(*m_, sizes[i % std::size(sizes)], GFP_KERNEL)});
      }
    });
    for (const auto& h : held_)
      for (const Held& x : h) ASSERT_NE(x.p, nullptr);
    std::vector<Held> remote[2];
    for (int cpu = 0; cpu < 2; ++cpu) {
      std::vector<Held> keep;
      for (size_t i = 0; i < held_[cpu].size(); ++i)
        (i % 3 == 0 ? remote[1 - cpu] : keep).push_back(held_[cpu][i]);
      held_[cpu] = std::move(keep);
    }
    on_both_cpus(*m_, [&](int cpu) { release(*m_, remote[cpu]); });
  }

  std::unique_ptr<Machine> m_;
  KmemCache* cache_ = nullptr;
  KmemCache* rcl_ = nullptr;
  KmemCache* alias_ = nullptr;
  std::vector<Held> held_[2];
};

TEST_F(SlabinfoTest, HeaderAndRowsAreLinuxsWithGetSlabinfosNumbers) {
  allocate_on_both_cpus(400);
  const std::string text = render_slabinfo(*m_);
  ASSERT_EQ(text.rfind(kHeader, 0), 0u) << text.substr(0, 300);
  EXPECT_EQ(render_view(*m_, "slabinfo"), text);

  const std::vector<std::string> lines = lines_of(text);
  const std::regex row_re(R"(^\S+ *( +\d+){5} : tunables +0 +0 +0 : slabdata +\d+ +\d+ +0$)");
  std::vector<std::string> names;
  for (size_t i = 2; i < lines.size(); ++i) {
    EXPECT_TRUE(std::regex_match(lines[i], row_re)) << lines[i];
    names.push_back(lines[i].substr(0, lines[i].find(' ')));
  }

  // One row per cache, newest first (Linux list_add()s new caches at the
  // head of slab_caches and walks it from there); the kmalloc caches,
  // created first and by size, come last from kmalloc-8k down.
  std::vector<KmemCache*> caches = slab_caches(*m_);
  ASSERT_EQ(names.size(), caches.size());
  std::reverse(caches.begin(), caches.end());
  for (size_t i = 0; i < caches.size(); ++i) {
    const SlabInfo info = get_slabinfo(caches[i]);
    EXPECT_EQ(names[i], info.name);
    EXPECT_EQ(lines[2 + i], linux_row(info));
  }
  ASSERT_GE(names.size(), 15u);
  EXPECT_EQ(names[0], "mmkit_test_rcl");
  EXPECT_EQ(names[1], "mmkit_test_cache");
  const std::vector<std::string> kmalloc = {
      "kmalloc-8k",  "kmalloc-4k",  "kmalloc-2k",  "kmalloc-1k", "kmalloc-512",
      "kmalloc-256", "kmalloc-192", "kmalloc-128", "kmalloc-96", "kmalloc-64",
      "kmalloc-32",  "kmalloc-16",  "kmalloc-8"};
  EXPECT_EQ(std::vector<std::string>(names.end() - 13, names.end()), kmalloc);
  // The alias has no row of its own.
  EXPECT_EQ(std::count(names.begin(), names.end(), "mmkit_test_alias"), 0);

  // The test caches' numbers, read off the text.
  for (KmemCache* s : {cache_, rcl_}) {
    const SlabInfo info = get_slabinfo(s);
    EXPECT_GT(info.num_objs, 0u) << info.name;
    EXPECT_GT(info.active_objs, 0u) << info.name;
    EXPECT_LE(info.active_objs, info.num_objs) << info.name;
    EXPECT_EQ(info.num_objs, info.num_slabs * info.objperslab) << info.name;
  }
}

TEST_F(SlabinfoTest, JsonHasTheRowsAndTheAliases) {
  allocate_on_both_cpus(100);
  const std::string json = render_json(*m_);
  const SlabInfo info = get_slabinfo(cache_);
  const std::string expected =
      "{\"name\":\"mmkit_test_cache\",\"active_objs\":" + std::to_string(info.active_objs) +
      ",\"num_objs\":" + std::to_string(info.num_objs) +
      ",\"objsize\":" + std::to_string(info.objsize) +
      ",\"objperslab\":" + std::to_string(info.objperslab) +
      ",\"pagesperslab\":" + std::to_string(info.pagesperslab) +
      ",\"limit\":0,\"batchcount\":0,\"sharedfactor\":0,\"active_slabs\":" +
      std::to_string(info.active_slabs) + ",\"num_slabs\":" + std::to_string(info.num_slabs) +
      ",\"sharedavail\":0,\"aliases\":[\"mmkit_test_alias\"]}";
  EXPECT_NE(json.find("\"slabinfo\":[{\"name\":\"mmkit_test_rcl\""), std::string::npos);
  EXPECT_NE(json.find(expected), std::string::npos) << expected;
  EXPECT_NE(json.find("{\"name\":\"kmalloc-8\","), std::string::npos);
}

TEST_F(SlabinfoTest, MeminfoAndVmstatCountSlabPages) {
  const auto mi0 = parse_fields(render_meminfo(*m_), ':');
  EXPECT_EQ(mi0.at("Slab"), mi0.at("SReclaimable") + mi0.at("SUnreclaim"));
  EXPECT_EQ(mi0.at("KReclaimable"), mi0.at("SReclaimable"));
  EXPECT_EQ(mi0.at("SReclaimable"), 0u);  // nothing allocated yet

  allocate_on_both_cpus(300);
  const auto mi1 = parse_fields(render_meminfo(*m_), ':');
  const auto vm1 = parse_fields(render_vmstat(*m_), ' ');
  EXPECT_EQ(mi1.at("Slab"), mi1.at("SReclaimable") + mi1.at("SUnreclaim"));
  EXPECT_EQ(mi1.at("KReclaimable"), mi1.at("SReclaimable"));
  EXPECT_EQ(mi1.at("SReclaimable"), m_->node_stat_sum(NodeStat::NR_SLAB_RECLAIMABLE) * 4);
  EXPECT_EQ(mi1.at("SUnreclaim"), m_->node_stat_sum(NodeStat::NR_SLAB_UNRECLAIMABLE) * 4);
  EXPECT_EQ(vm1.at("nr_slab_reclaimable") * 4, mi1.at("SReclaimable"));
  EXPECT_EQ(vm1.at("nr_slab_unreclaimable") * 4, mi1.at("SUnreclaim"));
  EXPECT_GT(mi1.at("SUnreclaim"), 0u);
  // Every slab page is one of the test caches' or a kmalloc cache's.
  uint64_t slab_pages = 0;
  for (KmemCache* s : slab_caches(*m_)) {
    const SlabInfo i = get_slabinfo(s);
    slab_pages += i.num_objs / i.objperslab * i.pagesperslab;
  }
  EXPECT_EQ(mi1.at("Slab"), slab_pages * 4);

  // Many objects of the SLAB_RECLAIM_ACCOUNT cache: SReclaimable (and Slab)
  // grow by at least their size, SUnreclaim does not move.
  const unsigned n = 20000;
  on_both_cpus(*m_, [&](int cpu) {
    for (unsigned i = 0; i < n / 2; ++i)
      held_[cpu].push_back({rcl_, kmem_cache_alloc(rcl_, GFP_KERNEL)});
  });
  for (const auto& h : held_)
    for (const Held& x : h) ASSERT_NE(x.p, nullptr);
  const auto mi2 = parse_fields(render_meminfo(*m_), ':');
  EXPECT_EQ(mi2.at("Slab"), mi2.at("SReclaimable") + mi2.at("SUnreclaim"));
  EXPECT_GE(mi2.at("SReclaimable"), mi1.at("SReclaimable") + uint64_t{n} * 1000 / 1024);
  EXPECT_EQ(mi2.at("SUnreclaim"), mi1.at("SUnreclaim"));
  EXPECT_GT(mi2.at("Slab"), mi1.at("Slab"));

  // si_mem_available(): free less the reserves plus reclaimable slab less
  // min(half of it, the low watermarks). Against the numbers before the
  // reclaimable allocations, the reserves cancel out.
  uint64_t wmark_low = 0;
  m_->for_each_zone([&](const Zone& z) { wmark_low += z.low_wmark(); });
  auto slab_term = [&](uint64_t reclaimable_kb) {
    const uint64_t pages = reclaimable_kb / 4;
    return (pages - std::min(pages / 2, wmark_low)) * 4;
  };
  ASSERT_GT(mi2.at("MemAvailable"), 0u);
  EXPECT_EQ(mi2.at("MemAvailable") - slab_term(mi2.at("SReclaimable")),
            mi1.at("MemAvailable") - slab_term(mi1.at("SReclaimable")) -
                (mi1.at("MemFree") - mi2.at("MemFree")));

  // All freed and the caches shrunk: slab memory goes back.
  for (auto& h : held_) release(*m_, h);
  for (KmemCache* s : slab_caches(*m_)) kmem_cache_shrink(s);
  const auto mi3 = parse_fields(render_meminfo(*m_), ':');
  EXPECT_EQ(mi3.at("Slab"), 0u);
  EXPECT_EQ(mi3.at("KReclaimable"), 0u);
}

}  // namespace
}  // namespace mmkit
