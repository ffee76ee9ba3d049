// vmalloc, vzalloc, vmalloc_node, vmap and their undoing: data through the
// host pointer over scattered frames, the guard page, /proc/vmallocinfo and
// meminfo, every page back after vfree, each misuse warned about, and a
// randomised sequence checked against a model of the area's address space.
#include "vmalloc/vmalloc.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "vm/mmu.h"
#include "vm/pgtable.h"
#include "vmalloc/layout.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

MachineConfig x86_config(uint64_t mib, unsigned nodes = 1) {
  MachineConfig cfg;
  cfg.arch = Arch::x86_64;
  cfg.cpus = 2;
  for (unsigned i = 0; i < nodes; ++i) {
    NodeConfig n;
    n.memory = mib * kMiB;
    cfg.nodes.push_back(n);
  }
  return cfg;
}

MachineConfig i386_config(uint64_t mib) {
  MachineConfig cfg = x86_config(mib);
  cfg.arch = Arch::i386;
  return cfg;
}

struct Booted {
  std::unique_ptr<Machine> m;
  std::string warnings;
};

Booted boot_machine(const MachineConfig& cfg) {
  Booted b;
  auto r = boot(cfg);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return b;
  b.m = std::move(r.value());
  return b;
}

// Routes the machine's warnings into `sink`.
void capture(Machine& m, std::string& sink) {
  m.warn_sink = [&sink](const std::string& s) { sink += s; };
}

// nr_free_pages after giving every per-CPU list back.
uint64_t free_pages_drained(Machine& m) {
  drain_all_pages(m);
  return nr_free_pages(m);
}

TEST(Vmalloc, LargeBufferOverScatteredFramesReadsBackThroughTheDirectMap) {
  auto b = boot_machine(x86_config(256));
  Machine& m = *b.m;
  // Scatter the free frames: take 4096 pages and give every other one back.
  std::vector<Page*> held;
  for (int i = 0; i < 4096; ++i) held.push_back(alloc_page(m, GFP_KERNEL));
  for (size_t i = 0; i < held.size(); i += 2) free_page(m, held[i]);

  constexpr uint64_t kSize = 6 * kMiB;
  auto* p = static_cast<unsigned char*>(vmalloc(m, kSize));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(is_vmalloc_addr(m, p));
  EXPECT_TRUE(is_vmalloc_addr(m, p + kSize - 1));
  const KernelLayout l = kernel_layout(m);
  const uint64_t kva = vmalloc_kva(m, p);
  EXPECT_GE(kva, l.vmalloc_start);
  EXPECT_LT(kva + kSize, l.vmalloc_end);
  EXPECT_EQ(kva_to_host(m, kva), p);

  // One memcpy-able buffer: a pattern that runs across every page boundary.
  std::vector<unsigned char> pattern(kSize);
  std::mt19937 rng(7);
  for (auto& c : pattern) c = static_cast<unsigned char>(rng());
  std::memcpy(p, pattern.data(), kSize);

  unsigned discontinuities = 0;
  uint64_t prev_pfn = 0;
  for (uint64_t off = 0; off < kSize; off += PAGE_SIZE) {
    Page* page = vmalloc_to_page(m, p + off);
    ASSERT_NE(page, nullptr);
    const uint64_t pfn = m.page_to_pfn(page);
    if (off && pfn != prev_pfn + 1) ++discontinuities;
    prev_pfn = pfn;
    // The frame's own address (direct map, or the machine's window for a
    // high page) shows what was written through the vmalloc pointer.
    const void* direct = m.page_address(page) ? m.page_address(page) : m.phys_window(pfn);
    ASSERT_EQ(std::memcmp(direct, pattern.data() + off, PAGE_SIZE), 0) << "offset " << off;
    const pteval_t pte = pte_get(kernel_page_table(m), kva + off);
    EXPECT_EQ(pte_pfn(pte), pfn);
    EXPECT_EQ(pte & PAGE_KERNEL, PAGE_KERNEL);
  }
  EXPECT_GT(discontinuities, 0u) << "the frames should be scattered";
  EXPECT_EQ(pte_get(kernel_page_table(m), kva + kSize), 0u) << "guard page must not be mapped";
  EXPECT_EQ(vmalloc_check(m), "");
  vfree(m, p);
  for (size_t i = 1; i < held.size(); i += 2) free_page(m, held[i]);
  EXPECT_EQ(check(m), "");
}

TEST(VmallocDeathTest, WriteOnePastTheEndHitsTheGuardPage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto b = boot_machine(x86_config(64));
  Machine& m = *b.m;
  constexpr uint64_t kSize = 3 * PAGE_SIZE;
  auto* p = static_cast<volatile char*>(vmalloc(m, kSize));
  ASSERT_NE(p, nullptr);
  p[kSize - 1] = 1;  // the last byte is fine
  EXPECT_EQ(p[kSize - 1], 1);
  EXPECT_DEATH({ p[kSize] = 1; }, "");
  vfree(m, const_cast<char*>(p));
}

TEST(Vmalloc, VmallocinfoAndMeminfoShowTheArea) {
  auto b = boot_machine(x86_config(128));
  Machine& m = *b.m;
  EXPECT_EQ(render_vmallocinfo(m), "");
  void* p = vmalloc(m, 5 * PAGE_SIZE + 1);  // rounds up to 6 pages
  ASSERT_NE(p, nullptr);
  const uint64_t kva = vmalloc_kva(m, p);
  const std::string expect = fmt::format("0x{:016x}-0x{:016x}   28672 ", kva, kva + 7 * PAGE_SIZE);
  const std::string text = render_vmallocinfo(m);
  EXPECT_EQ(text.rfind(expect, 0), 0u) << text;
  EXPECT_NE(
      text.find("Vmalloc_VmallocinfoAndMeminfoShowTheArea_Test::TestBody pages=6 vmalloc N0=6\n"),
      std::string::npos)
      << text;
  EXPECT_NE(render_view(m, "meminfo").find(fmt::format("VmallocUsed:    {:>8} kB\n", 24)),
            std::string::npos);
  vfree(m, p);
  EXPECT_EQ(render_vmallocinfo(m), "");
  EXPECT_NE(render_view(m, "meminfo").find(fmt::format("VmallocUsed:    {:>8} kB\n", 0)),
            std::string::npos);
}

TEST(Vmalloc, VfreeReturnsEveryPage) {
  auto b = boot_machine(x86_config(128));
  Machine& m = *b.m;
  PageTable& kpt = kernel_page_table(m);
  const uint64_t tables_before = kpt.nr_tables.load();
  const uint64_t before = free_pages_drained(m);
  std::vector<void*> areas;
  for (uint64_t size : {uint64_t{1}, PAGE_SIZE, 3 * PAGE_SIZE + 5, 2 * kMiB, 64 * PAGE_SIZE})
    areas.push_back(vmalloc(m, size));
  for (void* a : areas) ASSERT_NE(a, nullptr);
  EXPECT_LT(free_pages_drained(m), before);
  EXPECT_EQ(vmalloc_check(m), "");
  for (void* a : areas) vfree(m, a);
  // The kernel page tables vmalloc grew stay (as Linux's do); all else is back.
  const uint64_t tables_grown = kpt.nr_tables.load() - tables_before;
  EXPECT_EQ(free_pages_drained(m) + tables_grown, before);
  EXPECT_EQ(vmalloc_nr_pages(m), 0u);
  EXPECT_EQ(check(m), "");
  EXPECT_EQ(check(kpt), "");
  EXPECT_EQ(vmalloc_check(m), "");
}

TEST(Vmalloc, VzallocZeroesRecycledPages) {
  auto b = boot_machine(x86_config(64));
  Machine& m = *b.m;
  void* dirty = vmalloc(m, 32 * PAGE_SIZE);
  ASSERT_NE(dirty, nullptr);
  std::memset(dirty, 0xaa, 32 * PAGE_SIZE);
  vfree(m, dirty);
  auto* z = static_cast<unsigned char*>(vzalloc(m, 32 * PAGE_SIZE));
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(std::all_of(z, z + 32 * PAGE_SIZE, [](unsigned char c) { return c == 0; }));
  vfree(m, z);
}

TEST(Vmalloc, VmallocNodeTakesPagesFromThatNode) {
  auto b = boot_machine(x86_config(256, 2));
  Machine& m = *b.m;
  void* p = vmalloc_node(m, 16 * PAGE_SIZE, 1);
  ASSERT_NE(p, nullptr);
  for (unsigned i = 0; i < 16; ++i)
    EXPECT_EQ(m.page_zone(vmalloc_to_page(m, static_cast<char*>(p) + i * PAGE_SIZE))->node, 1);
  EXPECT_NE(render_vmallocinfo(m).find(" pages=16 vmalloc N1=16\n"), std::string::npos);
  vfree(m, p);
  std::string w;
  capture(m, w);
  EXPECT_EQ(vmalloc_node(m, PAGE_SIZE, 5), nullptr);
  EXPECT_NE(w.find("node 5 does not exist"), std::string::npos) << w;
}

TEST(Vmalloc, VmapMapsTheCallersPagesAndLeavesThem) {
  auto b = boot_machine(i386_config(1024));  // high pages too
  Machine& m = *b.m;
  Page* pages[4];
  for (int i = 0; i < 4; ++i) {
    pages[i] = alloc_page(m, i % 2 ? GFP_HIGHUSER : GFP_KERNEL);
    ASSERT_NE(pages[i], nullptr);
    std::memset(m.phys_window(m.page_to_pfn(pages[i])), 'a' + i, PAGE_SIZE);
  }
  auto* p = static_cast<char*>(vmap(m, pages, 4, VM_MAP, PAGE_KERNEL));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(p[i * PAGE_SIZE], 'a' + i);
    EXPECT_EQ(p[i * PAGE_SIZE + PAGE_SIZE - 1], 'a' + i);
    EXPECT_EQ(vmalloc_to_page(m, p + i * PAGE_SIZE), pages[i]);
  }
  const uint64_t kva = vmalloc_kva(m, p);
  const std::string info = render_vmallocinfo(m);
  EXPECT_EQ(info.rfind(fmt::format("0x{:08x}-0x{:08x}   20480 ", kva, kva + 5 * PAGE_SIZE), 0), 0u)
      << info;
  EXPECT_NE(info.find(" vmap\n"), std::string::npos) << info;
  EXPECT_EQ(info.find("pages="), std::string::npos) << "vmap areas show no pages=";
  EXPECT_EQ(vmalloc_nr_pages(m), 0u);
  vunmap(m, p);
  EXPECT_EQ(vmalloc_to_page(m, p), nullptr);
  for (Page* pg : pages) {
    EXPECT_EQ(pg->ref_count(), 1) << "vunmap must leave the caller's pages";
    free_page(m, pg);
  }
  EXPECT_EQ(vmalloc_check(m), "");
  EXPECT_EQ(check(m), "");
}

TEST(Vmalloc, OnI386AreasSitBetweenVmallocStartAndEndOverHighPages) {
  auto b = boot_machine(i386_config(2048));
  Machine& m = *b.m;
  const KernelLayout l = kernel_layout(m);
  auto* p = static_cast<char*>(vmalloc(m, 64 * PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(vmalloc_kva(m, p), l.vmalloc_start) << "the first area takes the lowest address";
  unsigned high = 0;
  for (unsigned i = 0; i < 64; ++i) {
    p[i * PAGE_SIZE] = static_cast<char>(i);
    Page* pg = vmalloc_to_page(m, p + i * PAGE_SIZE);
    high += m.page_address(pg) == nullptr;
    EXPECT_EQ(*m.phys_window(m.page_to_pfn(pg)), static_cast<char>(i));
  }
  EXPECT_EQ(high, 64u) << "GFP_KERNEL | __GFP_HIGHMEM prefers ZONE_HIGHMEM";
  vfree(m, p);
}

TEST(Vmalloc, FiveLevelPagingPutsTheAreaAtLinuxsL5Base) {
  MachineConfig cfg = x86_config(64);
  cfg.paging_levels = 5;
  auto b = boot_machine(cfg);
  Machine& m = *b.m;
  auto* p = static_cast<char*>(vmalloc(m, 8 * PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(vmalloc_kva(m, p), VMALLOC_BASE_X86_64_L5);
  std::memset(p, 7, 8 * PAGE_SIZE);
  EXPECT_EQ(*m.phys_window(m.page_to_pfn(vmalloc_to_page(m, p + 5 * PAGE_SIZE))), 7);
  EXPECT_EQ(vmalloc_check(m), "");
  vfree(m, p);
  EXPECT_EQ(check(kernel_page_table(m)), "");
}

// The software MMU sees what vmalloc mapped, and nothing after vfree: the
// flush reaches the TLB entry the first translation cached.
TEST(Vmalloc, TheMmuTranslatesTheAreaUntilVfree) {
  auto b = boot_machine(x86_config(64));
  Machine& m = *b.m;
  auto cpu = CpuScope::bind(m, 0);
  ASSERT_TRUE(cpu.ok());
  PageTable& kpt = kernel_page_table(m);
  auto* p = static_cast<char*>(vmalloc(m, 4 * PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  const uint64_t kva = vmalloc_kva(m, p);
  for (unsigned i = 0; i < 4; ++i) {
    const Translation t = translate(kpt, kva + i * PAGE_SIZE + 8, Access::kWrite, false);
    ASSERT_TRUE(t.ok()) << i;
    const uint64_t pfn = m.page_to_pfn(vmalloc_to_page(m, p + i * PAGE_SIZE));
    EXPECT_EQ(t.host, m.phys_window(pfn) + 8);
    EXPECT_FALSE(translate(kpt, kva + i * PAGE_SIZE, Access::kRead, true).ok())
        << "no USER bit: user mode may not touch it";
    EXPECT_FALSE(translate(kpt, kva + i * PAGE_SIZE, Access::kExec, false).ok()) << "NX";
  }
  EXPECT_FALSE(translate(kpt, kva + 4 * PAGE_SIZE, Access::kRead, false).ok()) << "guard page";
  vfree(m, p);
  EXPECT_EQ(translate(kpt, kva, Access::kRead, false).fault, TranslateFault::kNotPresent);
}

TEST(Vmalloc, BadRequestsWarnAndReturnNull) {
  MachineConfig cfg = x86_config(64);
  cfg.vmalloc_size = 64 * PAGE_SIZE;
  auto b = boot_machine(cfg);
  Machine& m = *b.m;
  std::string w;
  capture(m, w);

  EXPECT_EQ(vmalloc(m, 0), nullptr);
  EXPECT_NE(w.find("size 0"), std::string::npos) << w;
  w.clear();
  EXPECT_EQ(vmalloc(m, 65 * kMiB), nullptr);
  EXPECT_NE(w.find("vmalloc error: size 68157440, exceeds total pages"), std::string::npos) << w;
  w.clear();
  EXPECT_EQ(vmalloc(m, ~uint64_t{0}), nullptr);
  EXPECT_NE(w.find("exceeds total pages"), std::string::npos) << w;
  w.clear();
  EXPECT_EQ(vmalloc_gfp(m, 0, GFP_KERNEL | __GFP_NOWARN, NUMA_NO_NODE), nullptr);
  EXPECT_EQ(w, "") << "__GFP_NOWARN keeps it quiet";

  // Out of virtual space: 64 pages hold 7 areas of 8 pages + guard.
  std::vector<void*> areas;
  for (int i = 0; i < 7; ++i) areas.push_back(vmalloc(m, 8 * PAGE_SIZE));
  for (void* a : areas) ASSERT_NE(a, nullptr);
  EXPECT_EQ(vmalloc(m, 8 * PAGE_SIZE), nullptr);
  EXPECT_NE(w.find("vmap allocation for size 36864 failed: use vmalloc=<size> to increase size"),
            std::string::npos)
      << w;
  EXPECT_NE(w.find("vmalloc error: size 32768, vm_struct allocation failed"), std::string::npos);
  // The area is 64 pages less one byte: 7 areas of 9 pages fill its 63 whole pages.
  EXPECT_EQ(vmalloc_check(m), "");
  for (void* a : areas) vfree(m, a);
  EXPECT_EQ(vmalloc_check(m), "");
}

TEST(Vmalloc, BadFreesWarnAndChangeNothing) {
  auto b = boot_machine(x86_config(64));
  Machine& m = *b.m;
  std::string w;
  capture(m, w);
  vfree(m, nullptr);
  EXPECT_EQ(w, "");

  char* p = static_cast<char*>(vmalloc(m, 2 * PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  const uint64_t kva = vmalloc_kva(m, p);
  int on_stack = 0;
  vfree(m, &on_stack);
  EXPECT_NE(w.find("Trying to vfree() nonexistent vm area"), std::string::npos) << w;
  w.clear();
  vfree(m, p + 1);
  EXPECT_EQ(w, fmt::format("Trying to vfree() bad address ({:#x})\n", kva + 1));
  w.clear();
  vfree(m, p + PAGE_SIZE);  // inside the area but not its start
  EXPECT_EQ(w, fmt::format("Trying to vfree() nonexistent vm area ({:#x})\n", kva + PAGE_SIZE));
  w.clear();
  vunmap(m, p);  // a vmalloc area needs vfree
  EXPECT_NE(w.find("use vfree()"), std::string::npos) << w;
  EXPECT_EQ(vmalloc_to_page(m, p) != nullptr, true) << "still mapped";
  w.clear();
  vfree(m, p);
  EXPECT_EQ(w, "");
  vfree(m, p);  // double vfree
  EXPECT_EQ(w, fmt::format("Trying to vfree() nonexistent vm area ({:#x})\n", kva));
  w.clear();
  vunmap(m, p);
  EXPECT_EQ(w, fmt::format("Trying to vunmap() nonexistent vm area ({:#x})\n", kva));
  EXPECT_EQ(vmalloc_check(m), "");
  EXPECT_EQ(check(m), "");
}

TEST(Vmalloc, BadVmapArgumentsWarnAndReturnNull) {
  auto b = boot_machine(x86_config(64));
  Machine& m = *b.m;
  std::string w;
  capture(m, w);
  Page* pg = alloc_page(m, GFP_KERNEL);
  Page* pages[2] = {pg, nullptr};
  EXPECT_EQ(vmap(m, pages, 0, VM_MAP, PAGE_KERNEL), nullptr);
  EXPECT_NE(w.find("nothing to map"), std::string::npos) << w;
  EXPECT_EQ(vmap(m, nullptr, 1, VM_MAP, PAGE_KERNEL), nullptr);
  EXPECT_NE(w.find("no page array"), std::string::npos) << w;
  EXPECT_EQ(vmap(m, pages, 1, VM_MAP, PAGE_KERNEL & ~_PAGE_PRESENT), nullptr);
  EXPECT_NE(w.find("is not present"), std::string::npos) << w;
  EXPECT_EQ(vmap(m, pages, 2, VM_MAP, PAGE_KERNEL), nullptr);
  EXPECT_NE(w.find("pages[1] is not a page of this machine"), std::string::npos) << w;
  // A read-only vmap maps, and shows the data.
  *m.phys_window(m.page_to_pfn(pg)) = 'r';
  auto* ro = static_cast<const char*>(vmap(m, pages, 1, VM_MAP, PAGE_KERNEL_RO));
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(*ro, 'r');
  EXPECT_FALSE(pte_write(pte_get(kernel_page_table(m), vmalloc_kva(m, ro))));
  vunmap(m, ro);
  free_page(m, pg);
  EXPECT_EQ(check(m), "");
}

// Random vmalloc/vfree against a model of the area: every new area must be
// at the lowest address where it and its guard page fit, no two areas (with
// guards) overlap, and each keeps its contents until freed.
TEST(Vmalloc, RandomSequenceMatchesTheLowestFitModel) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  MachineConfig cfg = x86_config(128);
  cfg.vmalloc_size = 4 * kMiB;  // small enough to fill up
  auto b = boot_machine(cfg);
  Machine& m = *b.m;
  std::string w;
  capture(m, w);
  const KernelLayout l = kernel_layout(m);
  struct Live {
    char* p;
    uint64_t kva, size, total;
    char fill;
  };
  std::vector<Live> live;
  const uint64_t tables_before = kernel_page_table(m).nr_tables.load();
  const uint64_t before = free_pages_drained(m);
  for (int op = 0; op < 600; ++op) {
    if (live.empty() || rng() % 5 < 3) {
      const uint64_t size = 1 + rng() % (64 * PAGE_SIZE);
      const uint64_t total = ((size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)) + PAGE_SIZE;
      // The model: lowest gap between live areas (sorted) that fits `total`.
      std::vector<std::pair<uint64_t, uint64_t>> busy;
      for (const Live& a : live) busy.emplace_back(a.kva, a.kva + a.total);
      std::sort(busy.begin(), busy.end());
      uint64_t expect = 0, at = l.vmalloc_start;
      for (const auto& [s, e] : busy) {
        if (s - at >= total) break;
        at = e;
      }
      if (l.vmalloc_end - at >= total) expect = at;
      char* p = static_cast<char*>(vmalloc(m, size));
      if (!expect) {
        EXPECT_EQ(p, nullptr) << "op " << op;
        continue;
      }
      ASSERT_NE(p, nullptr) << "op " << op << " " << w;
      const uint64_t kva = vmalloc_kva(m, p);
      ASSERT_EQ(kva, expect) << "op " << op;
      const char fill = static_cast<char>(rng());
      std::memset(p, fill, size);
      live.push_back({p, kva, size, total, fill});
    } else {
      const size_t i = rng() % live.size();
      const Live a = live[i];
      ASSERT_EQ(a.p[0], a.fill);
      ASSERT_EQ(a.p[a.size - 1], a.fill);
      ASSERT_EQ(std::count(a.p, a.p + a.size, a.fill), static_cast<long>(a.size)) << "op " << op;
      vfree(m, a.p);
      live.erase(live.begin() + static_cast<long>(i));
    }
    ASSERT_EQ(vmalloc_check(m), "") << "op " << op;
  }
  for (const Live& a : live) vfree(m, a.p);
  EXPECT_EQ(vmalloc_check(m), "");
  const uint64_t tables_grown = kernel_page_table(m).nr_tables.load() - tables_before;
  EXPECT_EQ(free_pages_drained(m) + tables_grown, before);
  EXPECT_EQ(check(m), "");
}

}  // namespace
}  // namespace mmkit
