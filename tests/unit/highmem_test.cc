// High memory on an i386 machine: the 3G/1G layout worked out by hand,
// HighTotal/LowTotal in meminfo, kmap's permanent slots (shared slots,
// waiting when all 1024 are taken, lazy flushing), kmap_atomic's per-CPU
// stack, and every misuse warned about.
#include "vmalloc/highmem.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "vm/mmu.h"
#include "vm/pgtable.h"
#include "vmalloc/layout.h"
#include "vmalloc/vmalloc.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

std::unique_ptr<Machine> boot_i386(uint64_t mib, unsigned cpus = 2) {
  return test::boot_or_fail(test::one_node(mib, cpus, Arch::i386));
}

std::map<std::string, uint64_t> meminfo(Machine& m) {
  std::map<std::string, uint64_t> f;
  std::istringstream in(render_meminfo(m));
  for (std::string line; std::getline(in, line);) {
    const size_t colon = line.find(':');
    f[line.substr(0, colon)] = std::stoull(line.substr(colon + 1));
  }
  return f;
}

Page* high_page(Machine& m) {
  Page* p = alloc_page(m, GFP_HIGHUSER);
  EXPECT_NE(p, nullptr);
  EXPECT_TRUE(p && PageHighMem(m, p));
  return p;
}

TEST(Highmem, I386LayoutOfA2GiBTwoCpuMachine) {
  auto m = boot_i386(2048);
  const KernelLayout l = kernel_layout(*m);
  EXPECT_EQ(l.page_offset, 0xC0000000u);
  EXPECT_EQ(l.high_memory, 0xC0000000u + 896 * kMiB);  // 0xF8000000
  EXPECT_EQ(l.vmalloc_start, 0xF8800000u);             // + VMALLOC_OFFSET
  // Fixmap: a hole page at FIXADDR_TOP, then 16 kmap slots for each of 2 CPUs.
  EXPECT_EQ(l.fixaddr_top, 0xfffff000u);
  EXPECT_EQ(l.fix_kmap_begin, 1u);
  EXPECT_EQ(l.fix_kmap_end, 32u);
  EXPECT_EQ(l.fixaddr_start, 0xfffff000u - 33 * 4096);  // 0xfffde000
  // (0xfffde000 - 1025 pages) rounded down to 4 MiB.
  EXPECT_EQ(l.pkmap_base, 0xff800000u);
  EXPECT_EQ(l.vmalloc_end, 0xff7fe000u);  // PKMAP_BASE - 2 pages
  EXPECT_EQ(l.pkmap_addr(LAST_PKMAP), 0xffc00000u);
  EXPECT_EQ(l.fix_to_virt(l.fix_kmap_begin), 0xffffe000u);
  EXPECT_EQ(l.window_end, uint64_t{1} << 32);

  // A smaller machine: high_memory follows the end of RAM.
  auto small = boot_i386(512);
  EXPECT_EQ(kernel_layout(*small).vmalloc_start, 0xC0000000u + 520 * kMiB);
}

// 64 GiB with PAE: the memmap is 16M frames * 32 bytes = 512 MiB, taken
// from the 896 MiB of lowmem, which keeps 384 MiB (with 64-byte descriptors
// it would all be gone).
TEST(Highmem, A64GiBPaeMachineKeepsLowmemAfterItsMemmap) {
  auto m = boot_i386(64 * 1024);
  ASSERT_TRUE(m);
  const auto mi = meminfo(*m);
  EXPECT_EQ(mi.at("LowTotal"), (896u - 512) * 1024);
  EXPECT_EQ(mi.at("HighTotal"), (64u * 1024 - 896) * 1024);
}

TEST(Highmem, MeminfoOfA2GiBI386MachineByHand) {
  auto m = boot_i386(2048);
  const auto mi = meminfo(*m);
  // ZONE_HIGHMEM is 896 MiB .. 2 GiB: 1152 MiB, nothing reserved in it.
  EXPECT_EQ(mi.at("HighTotal"), 1152u * 1024);
  // Low memory: 896 MiB less the memmap, 2 GiB / 4 KiB * 32 bytes (a 32-bit
  // struct page) = 16 MiB.
  EXPECT_EQ(mi.at("LowTotal"), (896u - 16) * 1024);
  EXPECT_EQ(mi.at("MemTotal"), mi.at("HighTotal") + mi.at("LowTotal"));
  EXPECT_EQ(mi.at("HighFree") + mi.at("LowFree"), mi.at("MemFree"));
  EXPECT_EQ(mi.at("VmallocTotal"), (0xff7fe000u - 0xf8800000u) / 1024);
  // HighFree drops by what a high allocation takes.
  const uint64_t high_free = mi.at("HighFree");
  std::vector<Page*> pages;
  for (int i = 0; i < 1024; ++i) pages.push_back(alloc_page(*m, GFP_HIGHUSER));
  drain_all_pages(*m);
  EXPECT_LE(meminfo(*m).at("HighFree") + 4096, high_free);
  for (Page* p : pages) free_page(*m, p);
}

TEST(Highmem, KmapMapsAHighPageForTheHostAndTheKernelTable) {
  auto m = boot_i386(2048);
  Page* p = high_page(*m);
  EXPECT_EQ(m->page_address(p), nullptr);
  EXPECT_EQ(kmap_page_address(*m, p), nullptr);
  auto* a = static_cast<char*>(kmap(*m, p));
  ASSERT_NE(a, nullptr);
  const KernelLayout l = kernel_layout(*m);
  const uint64_t kva = vmalloc_kva(*m, a);
  EXPECT_GE(kva, l.pkmap_base);
  EXPECT_LT(kva, l.pkmap_addr(LAST_PKMAP));
  EXPECT_EQ(pte_pfn(pte_get(kernel_page_table(*m), kva)), m->page_to_pfn(p));
  EXPECT_EQ(kmap_page_address(*m, p), a);
  std::memset(a, 0x5c, PAGE_SIZE);
  EXPECT_EQ(m->phys_window(m->page_to_pfn(p))[PAGE_SIZE - 1], 0x5c);
  // A second kmap of the same page shares the slot.
  EXPECT_EQ(kmap(*m, p), a);
  EXPECT_EQ(pkmap_slots_in_use(*m), 1u);
  kunmap(*m, p);
  kunmap(*m, p);
  // Unused but still mapped (count 1) until the search wraps.
  EXPECT_EQ(pkmap_slots_in_use(*m), 1u);
  EXPECT_EQ(check(kernel_page_table(*m)), "");
  free_page(*m, p);
}

TEST(Highmem, LowPagesAndX86_64NeedNoMapping) {
  auto m = boot_i386(1024);
  Page* low = alloc_page(*m, GFP_KERNEL);
  EXPECT_FALSE(PageHighMem(*m, low));
  EXPECT_EQ(kmap(*m, low), m->page_address(low));
  kunmap(*m, low);
  auto cpu = CpuScope::bind(*m, 0);
  ASSERT_TRUE(cpu.ok());
  void* a = kmap_atomic(*m, low);
  EXPECT_EQ(a, m->page_address(low));
  kunmap_atomic(*m, a);
  free_page(*m, low);

  MachineConfig cfg;
  cfg.cpus = 1;
  cfg.nodes.push_back(NodeConfig{.memory = 64 * kMiB});
  auto x = boot(cfg);
  ASSERT_TRUE(x.ok());
  Page* p = alloc_page(**x, GFP_HIGHUSER);
  EXPECT_EQ(kmap(**x, p), (*x)->page_address(p));
  kunmap(**x, p);
  free_page(**x, p);
}

TEST(Highmem, SlotsAreReusedAfterTheSearchWraps) {
  auto m = boot_i386(2048);
  std::vector<Page*> pages;
  for (unsigned i = 0; i < 3 * LAST_PKMAP; ++i) pages.push_back(high_page(*m));
  // Map and unmap three times as many pages as there are slots, one at a
  // time: flush_all_zero_pkmaps() makes the used slots free on each wrap.
  for (unsigned i = 0; i < pages.size(); ++i) {
    auto* a = static_cast<uint32_t*>(kmap(*m, pages[i]));
    ASSERT_NE(a, nullptr) << i;
    *a = i;
    kunmap(*m, pages[i]);
  }
  EXPECT_LE(pkmap_slots_in_use(*m), LAST_PKMAP);
  for (unsigned i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(*reinterpret_cast<uint32_t*>(m->phys_window(m->page_to_pfn(pages[i]))), i);
    free_page(*m, pages[i]);
  }
  // Slots of freed pages stay mapped (count 1) until the next wrap, as in
  // Linux; kmap_flush_unused() clears them now.
  EXPECT_NE(check(kernel_page_table(*m)), "");
  kmap_flush_unused(*m);
  EXPECT_EQ(pkmap_slots_in_use(*m), 0u);
  EXPECT_EQ(check(kernel_page_table(*m)), "");
}

TEST(Highmem, KmapWaitsWhenEverySlotIsTakenAndWakesOnKunmap) {
  auto m = boot_i386(2048);
  std::vector<Page*> held;
  for (unsigned i = 0; i < LAST_PKMAP; ++i) {
    held.push_back(high_page(*m));
    ASSERT_NE(kmap(*m, held.back()), nullptr);
  }
  EXPECT_EQ(pkmap_slots_in_use(*m), LAST_PKMAP);
  Page* extra = high_page(*m);
  std::atomic<bool> done{false};
  void* got = nullptr;
  std::thread t([&] {
    got = kmap(*m, extra);
    static_cast<char*>(got)[0] = 'x';
    done = true;
  });
  // The thread must be asleep on pkmap_map_wait, not done.
  for (int i = 0; i < 2000 && pkmap_waiters(*m) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(pkmap_waiters(*m), 1u);
  EXPECT_FALSE(done.load());
  kunmap(*m, held[100]);
  t.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(m->phys_window(m->page_to_pfn(extra))[0], 'x');
  EXPECT_EQ(got, kmap_page_address(*m, extra));
  kunmap(*m, extra);
  for (unsigned i = 0; i < held.size(); ++i)
    if (i != 100) kunmap(*m, held[i]);
  for (Page* p : held) free_page(*m, p);
  free_page(*m, extra);
}

TEST(Highmem, KmapAtomicIsAPerCpuStack) {
  auto m = boot_i386(2048);
  Page* p[3] = {high_page(*m), high_page(*m), high_page(*m)};
  auto cpu = CpuScope::bind(*m, 1);
  ASSERT_TRUE(cpu.ok());
  const KernelLayout l = kernel_layout(*m);
  char* a[3];
  for (int i = 0; i < 3; ++i) {
    a[i] = static_cast<char*>(kmap_atomic(*m, p[i]));
    ASSERT_NE(a[i], nullptr);
    // CPU 1's slot i: __fix_to_virt(FIX_KMAP_BEGIN + i + KM_MAX_IDX * 1).
    EXPECT_EQ(vmalloc_kva(*m, a[i]), l.fix_to_virt(1 + i + 16));
    a[i][0] = static_cast<char>('A' + i);
  }
  EXPECT_EQ(vmalloc_kva(*m, a[0]), 0xfffee000u);
  PageTable& kpt = kernel_page_table(*m);
  for (int i = 2; i >= 0; --i) {
    EXPECT_EQ(m->phys_window(m->page_to_pfn(p[i]))[0], 'A' + i);
    // The MMU reaches the frame through the fixmap slot until it is unmapped.
    const Translation t = translate(kpt, l.fix_to_virt(1 + i + 16), Access::kWrite, false);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.host, m->phys_window(m->page_to_pfn(p[i])));
    kunmap_atomic(*m, a[i]);
    EXPECT_EQ(pte_get(kpt, l.fix_to_virt(1 + i + 16)), 0u);
    EXPECT_FALSE(translate(kpt, l.fix_to_virt(1 + i + 16), Access::kRead, false).ok());
  }
  for (Page* pg : p) free_page(*m, pg);
}

TEST(Highmem, MisuseWarnsAndChangesNothing) {
  auto m = boot_i386(2048);
  std::string w;
  m->warn_sink = [&w](const std::string& s) { w += s; };
  Page* p = high_page(*m);
  Page* q = high_page(*m);

  kunmap(*m, p);  // never kmapped
  EXPECT_EQ(w, fmt::format("kunmap: pfn {:#x} is not kmapped\n", m->page_to_pfn(p)));
  w.clear();

  EXPECT_EQ(kmap_atomic(*m, p), nullptr);  // no CPU bound
  EXPECT_NE(w.find("no CPU bound"), std::string::npos) << w;
  w.clear();

  auto cpu = CpuScope::bind(*m, 0);
  ASSERT_TRUE(cpu.ok());
  void* a = kmap_atomic(*m, p);
  void* b = kmap_atomic(*m, q);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  kunmap_atomic(*m, a);  // out of order: b is on top
  EXPECT_NE(w.find("is not the last slot mapped"), std::string::npos) << w;
  EXPECT_NE(pte_get(kernel_page_table(*m), vmalloc_kva(*m, a)), 0u) << "a stays mapped";
  w.clear();
  int on_stack = 0;
  kunmap_atomic(*m, &on_stack);
  EXPECT_NE(w.find("is not a kmap_atomic address"), std::string::npos) << w;
  w.clear();
  kunmap_atomic(*m, b);
  kunmap_atomic(*m, a);
  EXPECT_EQ(w, "");

  // The 17th nested kmap_atomic on one CPU.
  std::vector<void*> stack;
  for (unsigned i = 0; i < KM_MAX_IDX; ++i) stack.push_back(kmap_atomic(*m, p));
  for (void* s : stack) EXPECT_NE(s, nullptr);
  EXPECT_EQ(kmap_atomic(*m, q), nullptr);
  EXPECT_EQ(w, "kmap_atomic: cpu 0: all 16 slots in use\n");
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) kunmap_atomic(*m, *it);
  free_page(*m, p);
  free_page(*m, q);
}

}  // namespace
}  // namespace mmkit
