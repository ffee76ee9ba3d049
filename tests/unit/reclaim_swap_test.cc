// Reclaim and swap end to end: a process writes more than RAM, reads every
// byte back, and the pages went out to swap and came back; fork shares swap
// entries; swapoff brings everything home; injected write errors lose
// nothing; a full swap ends in the OOM killer, which spares
// oom_score_adj -1000; a memory cgroup reclaims only its own pages.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "../support/swap_settle.h"
#include "memcg/lru.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/oom.h"
#include "reclaim/reclaim.h"
#include "reclaim/reclaim_state.h"
#include "reclaim/vmscan.h"
#include "swap/swap.h"
#include "swap/swap_state.h"  // swap_set_cache_bit: a cache-only slot freed directly
#include "vm/mm.h"
#include "vm/process.h"
#include "vm/rmap.h"

namespace mmkit {
namespace {

// The tests that hold under either LRU policy run under both: the classic
// active/inactive lists and the multi-generational LRU (lru_gen = true).
bool g_lru_gen = false;
class ReclaimSwapPolicy : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { g_lru_gen = GetParam(); }
  void TearDown() override { g_lru_gen = false; }
};
INSTANTIATE_TEST_SUITE_P(Lru, ReclaimSwapPolicy, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "LruGen" : "Classic";
                         });

std::unique_ptr<Machine> boot_small(uint64_t ram_mib, uint64_t swap_mib, unsigned cpus = 2) {
  MachineConfig c;
  c.cpus = cpus;
  c.lru_gen = g_lru_gen;
  c.nodes = {NodeConfig{.memory = ram_mib << 20}};
  c.swap = swap_mib << 20;
  auto r = boot_with_reclaim(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

// A process spawned into group `cg`.
Process* spawn_in_group(Machine& m, MemCgroup* cg, const char* name) {
  Process* p = nullptr;
  EXPECT_EQ(spawn(m, name, &p), 0);
  if (p) p->mm->memcg = cg;
  return p;
}

// A memory cgroup control file that holds one number (memory.current, ...).
uint64_t memcg_value(const MemCgroup* cg, const char* file) {
  std::string text;
  EXPECT_TRUE(mem_cgroup_read(cg, file, &text)) << file;
  return text.empty() ? 0 : std::stoull(text);
}

// A private anonymous read-write mapping of `bytes`, its address.
uint64_t map_anon(MmStruct* mm, uint64_t bytes) {
  const int64_t a = do_mmap(mm, 0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  EXPECT_GT(a, 0);
  return static_cast<uint64_t>(a);
}

// A process in a new memory cgroup `name` limited to max_bytes.
Process* spawn_in_group(Machine& m, const char* name, uint64_t max_bytes) {
  MemCgroup* cg = mem_cgroup_create(m, name, max_bytes);
  EXPECT_TRUE(cg);
  Process* p = nullptr;
  EXPECT_EQ(spawn(m, name, &p), 0);
  if (p) p->mm->memcg = cg;
  return p;
}

uint64_t pattern(uint64_t page, uint64_t version) {
  return (page * 0x9e3779b97f4a7c15ull) ^ (version << 48) ^ 0x5a5a;
}

// Writes page i with its pattern, then calls after_each(i) (a check that
// must hold after every page; the writing stops at its first fatal failure).
void write_pages(MmStruct* mm, uint64_t base, uint64_t pages, uint64_t version,
                 const std::function<void(uint64_t)>& after_each = {}) {
  for (uint64_t i = 0; i < pages; ++i) {
    uint64_t buf[PAGE_SIZE / 8];
    for (auto& w : buf) w = pattern(i, version);
    const FaultResult r = access_write(mm, base + i * PAGE_SIZE, buf, PAGE_SIZE);
    ASSERT_TRUE(r.ok()) << "page " << i << ": status " << static_cast<int>(r.status) << " "
                        << r.reason;
    if (after_each) after_each(i);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// Page i of the range is page first + i of the mapping the patterns name.
uint64_t verify_pages(MmStruct* mm, uint64_t base, uint64_t pages, uint64_t version,
                      uint64_t first = 0) {
  uint64_t bad = 0;
  for (uint64_t i = first; i < first + pages; ++i) {
    uint64_t buf[PAGE_SIZE / 8];
    const FaultResult r = access_read(mm, base + (i - first) * PAGE_SIZE, buf, PAGE_SIZE);
    if (!r.ok()) {
      if (!bad) ADD_FAILURE() << "page " << i << " unreadable: " << r.reason;
      ++bad;
      continue;
    }
    for (auto w : buf)
      if (w != pattern(i, version)) {
        if (!bad) ADD_FAILURE() << "page " << i << " reads " << std::hex << w;
        ++bad;
        break;
      }
  }
  return bad;
}

void expect_checks(Machine& m, MmStruct* mm) {
  lru_add_drain_all(m);
  EXPECT_EQ(lru_check(m), "");
  EXPECT_EQ(swap_check(m), "");
  if (mm) {
    EXPECT_EQ(check(mm), "");
  }
}

// After the last exit every slot is free, once the copies only the swap
// cache holds are dropped (reclaim had such a page locked when its last
// entry went; it would free the slot at its next scan of the page).
void expect_every_slot_free(Machine& m) {
  test::drop_swap_cache_only_slots(m);
  EXPECT_EQ(swap_free_pages(m), swap_total_pages(m));
  EXPECT_EQ(swap_check(m), "");
}

TEST_P(ReclaimSwapPolicy, WorkingSetTwiceRamReadsBackAfterSwap) {
  auto m = boot_small(32, 128);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "big", &p), 0);
  const uint64_t pages = (64ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  ASSERT_GT(a, 0u);
  write_pages(p->mm, a, pages, 1);
  EXPECT_GT(m->sum_event(VmEvent::PSWPOUT), 0);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 1), 0u);
  EXPECT_GT(m->sum_event(VmEvent::PSWPIN), 0);
  EXPECT_GT(m->sum_event(VmEvent::PGMAJFAULT), 0);
  expect_checks(*m, p->mm);
  exit_process(p);
  expect_every_slot_free(*m);
  EXPECT_EQ(swap_check(*m), "");
}

// The slot allocator (free and nonfull cluster stacks) reaches every slot,
// the rest of cluster 0 beside the header included, and gives back exactly
// the slots freed in scattered clusters once the area is full.
TEST(ReclaimSwap, SlotAllocatorReachesEverySlotAndReusesFreedOnes) {
  auto m = boot_small(32, 3);  // 768 slots: the header and 767, in 3 clusters
  ASSERT_TRUE(m);
  const uint64_t total = swap_total_pages(*m);
  ASSERT_EQ(total, 767u);
  std::vector<SwpEntry> got;
  for (SwpEntry e = get_swap_page(*m, 0); e.val; e = get_swap_page(*m, 0)) got.push_back(e);
  ASSERT_EQ(got.size(), total);
  std::vector<uint64_t> offsets;
  for (SwpEntry e : got) offsets.push_back(swp_offset(e));
  std::sort(offsets.begin(), offsets.end());
  for (uint64_t i = 0; i < offsets.size(); ++i) ASSERT_EQ(offsets[i], i + 1);  // 1..767, each once
  EXPECT_EQ(swap_free_pages(*m), 0u);
  ASSERT_EQ(swap_check(*m), "");
  // Free every seventh slot (spread over all three clusters), then refill.
  std::vector<uint64_t> freed;
  for (size_t i = 0; i < got.size(); i += 7) {
    ASSERT_EQ(swap_set_cache_bit(*m, got[i], false), 0);
    freed.push_back(swp_offset(got[i]));
  }
  ASSERT_EQ(swap_check(*m), "");
  EXPECT_EQ(swap_free_pages(*m), freed.size());
  std::vector<uint64_t> again;
  for (SwpEntry e = get_swap_page(*m, 0); e.val; e = get_swap_page(*m, 0))
    again.push_back(swp_offset(e));
  std::sort(freed.begin(), freed.end());
  std::sort(again.begin(), again.end());
  EXPECT_EQ(again, freed);
  ASSERT_EQ(swap_check(*m), "");
  for (uint64_t off = 1; off <= total; ++off) swap_set_cache_bit(*m, swp_entry(0, off), false);
  EXPECT_EQ(swap_free_pages(*m), total);
  ASSERT_EQ(swap_check(*m), "");
}

// Areas of one priority take turns, a cluster (SWAPFILE_CLUSTER slots) at a time, as
// Linux requeues an area behind its equals; a higher priority is used
// alone while it has room.
TEST(ReclaimSwap, EqualPrioritiesTakeTurnsHigherFirst) {
  auto m = boot_small(32, 0);
  ASSERT_TRUE(m);
  std::string err;
  unsigned a = 0, b = 0, hi = 0;
  ASSERT_EQ(swapon(*m, SwapOptions{.path = "", .size = 8ull << 20, .priority = 5}, &err, &a), 0)
      << err;
  ASSERT_EQ(swapon(*m, SwapOptions{.path = "", .size = 8ull << 20, .priority = 5}, &err, &b), 0)
      << err;
  std::vector<SwpEntry> got;
  unsigned per_type[MAX_SWAPFILES] = {};
  for (uint64_t i = 0; i < 4 * SWAPFILE_CLUSTER; ++i) {
    const SwpEntry e = get_swap_page(*m, 0);
    ASSERT_NE(e.val, 0u);
    ++per_type[swp_type(e)];
    got.push_back(e);
  }
  EXPECT_EQ(per_type[a], 2 * SWAPFILE_CLUSTER);
  EXPECT_EQ(per_type[b], 2 * SWAPFILE_CLUSTER);
  ASSERT_EQ(swapon(*m, SwapOptions{.path = "", .size = 4ull << 20, .priority = 7}, &err, &hi), 0)
      << err;
  for (int i = 0; i < 100; ++i) {
    const SwpEntry e = get_swap_page(*m, 0);
    ASSERT_NE(e.val, 0u);
    EXPECT_EQ(swp_type(e), hi);
    got.push_back(e);
  }
  for (SwpEntry e : got) ASSERT_EQ(swap_set_cache_bit(*m, e, false), 0);
  EXPECT_EQ(swap_check(*m), "");
}

TEST(ReclaimSwap, SwapEntryEncodingsRoundTrip) {
  for (unsigned type : {0u, 1u, 17u, 31u})
    for (uint64_t off : {1ull, 2ull, 255ull, 123456ull, (1ull << 23) - 1}) {
      const SwpEntry e = swp_entry(type, off);
      const pteval_t p64 = swp_entry_to_pte(PagingMode::kX86_64_4Level, e);
      EXPECT_FALSE(pte_present(p64));
      EXPECT_EQ(p64 >> 59, type);
      EXPECT_EQ(pte_to_swp_entry(PagingMode::kX86_64_4Level, p64), e);
      const pteval_t p32 = swp_entry_to_pte(PagingMode::kI386, e);
      EXPECT_FALSE(pte_present(p32));
      EXPECT_LT(p32, 1ull << 32);
      EXPECT_EQ(pte_to_swp_entry(PagingMode::kI386, p32), e);
    }
  // x86-64: type 1, offset 1 is ~1 << 14 >> 5 | 1 << 59 (pgtable_64.h).
  EXPECT_EQ(swp_entry_to_pte_64(swp_entry(1, 1)), (~1ull << 14 >> 5) | 1ull << 59);
  // i386: type in bits 1..5, offset from bit 9.
  EXPECT_EQ(swp_entry_to_pte_32(swp_entry(3, 5)), (3u << 1) | (5u << 9));
}

TEST_P(ReclaimSwapPolicy, ForkSharesSwapEntriesAndCowHolds) {
  auto m = boot_small(24, 128);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "parent", &p), 0);
  const uint64_t pages = (32ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 1);
  Process* c;
  ASSERT_EQ(fork_process(p, &c), 0);
  expect_checks(*m, p->mm);
  write_pages(c->mm, a, pages / 2, 2);  // the child's own copy of the first half
  EXPECT_EQ(verify_pages(p->mm, a, pages, 1), 0u);
  EXPECT_EQ(verify_pages(c->mm, a, pages / 2, 2), 0u);
  EXPECT_EQ(verify_pages(c->mm, a + pages / 2 * PAGE_SIZE, pages - pages / 2, 1, pages / 2), 0u);
  expect_checks(*m, c->mm);
  exit_process(c);
  exit_process(p);
  expect_every_slot_free(*m);
}

TEST_P(ReclaimSwapPolicy, SwapoffBringsEveryPageBack) {
  auto m = boot_small(64, 256);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const uint64_t pages = (96ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 3);
  const auto areas = swap_areas(*m);
  ASSERT_EQ(areas.size(), 1u);
  ASSERT_GT(areas[0].used, 0u);
  // 96 MiB cannot fit in 64 MiB of RAM: swapoff must fail and change nothing.
  EXPECT_EQ(swapoff(*m, areas[0].path), -ENOMEM);
  EXPECT_EQ(swap_areas(*m).size(), 1u);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 3), 0u);
  // With three quarters of it unmapped, the rest comes home.
  const uint64_t gone = pages - pages / 4;
  ASSERT_EQ(do_munmap(p->mm, a, gone * PAGE_SIZE), 0);
  EXPECT_EQ(swapoff(*m, areas[0].path), 0);
  EXPECT_TRUE(swap_areas(*m).empty());
  EXPECT_EQ(verify_pages(p->mm, a + gone * PAGE_SIZE, pages - gone, 3, gone), 0u);
  EXPECT_EQ(p->mm->get_mm_counter(MM_SWAPENTS), 0u);
  exit_process(p);
}

TEST_P(ReclaimSwapPolicy, WriteErrorsLoseNothing) {
  auto m = boot_small(64, 256);
  ASSERT_TRUE(m);
  FaultConfig fc;
  fc.probability = 30;
  fc.times = 300;  // 300 failed writes, spread over the run
  swap_write_fault(*m).configure(fc);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const uint64_t pages = (96ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 4);
  EXPECT_GT(swap_write_fault(*m).failures(), 0);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 4), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
}

TEST_P(ReclaimSwapPolicy, FullSwapEndsInTheOomKillerWhichSparesMinus1000) {
  auto m = boot_small(48, 32);
  ASSERT_TRUE(m);
  std::vector<std::string> log;
  auto cpu = CpuScope::bind(*m, 0);
  Process* keeper;
  ASSERT_EQ(spawn(*m, "keeper", &keeper), 0);
  keeper->oom_score_adj = -1000;
  const uint64_t small = (24ull << 20) / PAGE_SIZE;
  const uint64_t ka = map_anon(keeper->mm, small * PAGE_SIZE);
  write_pages(keeper->mm, ka, small, 5);
  Process* hog;
  ASSERT_EQ(spawn(*m, "hog", &hog), 0);
  // 256 MiB in 32 MiB mappings (each within mode 0's single-request limit).
  FaultResult r;
  for (int chunk = 0; chunk < 8 && r.ok(); ++chunk) {
    const uint64_t ha = map_anon(hog->mm, 32ull << 20);
    ASSERT_GT(ha, 0u);
    for (uint64_t off = 0; off < (32ull << 20) && r.ok(); off += PAGE_SIZE)
      r = access_touch(hog->mm, ha + off, PAGE_SIZE, Access::kWrite);
  }
  EXPECT_EQ(r.status, FaultStatus::kKilled) << r.reason << " at " << std::hex << r.addr;
  EXPECT_TRUE(hog->oom_killed.load());
  EXPECT_FALSE(keeper->oom_killed.load());
  EXPECT_EQ(m->sum_event(VmEvent::OOM_KILL), 1);
  bool line = false;
  for (const auto& l : m->kernel_log())
    if (l.find("Out of memory: Killed process " + std::to_string(hog->pid) + " (hog)") == 0)
      line = true;
  EXPECT_TRUE(line);
  if (!line)
    for (const auto& l : m->kernel_log()) ADD_FAILURE() << l;
  exit_process(hog);
  EXPECT_EQ(verify_pages(keeper->mm, ka, small, 5), 0u);
  exit_process(keeper);
}

// A victim whose memory is shmem keeps it after the kill (shared mappings
// are not reaped; its pages go when it exits): the reaper marks it
// MMF_OOM_SKIP, and the next OOM in the group kills another task at once
// instead of waiting for one that cannot free anything (a one-CPU machine
// waited a second per kill for a victim that needed that CPU to exit).
TEST(ReclaimSwap, AReapedShmemVictimIsNotWaitedFor) {
  auto m = boot_small(32, 0);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  MemCgroup* cg = mem_cgroup_create(*m, "g", 128 * PAGE_SIZE);
  ASSERT_NE(cg, nullptr);
  Process* a = spawn_in_group(*m, cg, "a");
  Process* b = spawn_in_group(*m, cg, "b");
  for (Process* p : {a, b}) {
    const int64_t at =
        do_mmap(p->mm, 0, 48 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    ASSERT_GT(at, 0);
    ASSERT_TRUE(
        access_touch(p->mm, static_cast<uint64_t>(at), 48 * PAGE_SIZE, Access::kWrite).ok());
  }
  ASSERT_TRUE(oom_kill_memcg(*m, cg));
  EXPECT_EQ(m->sum_event(VmEvent::OOM_KILL), 1);
  Process* victim = a->oom_killed.load() ? a : b;
  ASSERT_TRUE(victim->oom_killed.load());
  EXPECT_TRUE(victim->mm->oom_skip.load());
  EXPECT_GT(victim->mm->get_mm_counter(MM_SHMEMPAGES), 0u);  // still there
  ASSERT_TRUE(oom_kill_memcg(*m, cg));
  EXPECT_EQ(m->sum_event(VmEvent::OOM_KILL), 2);
  EXPECT_TRUE(a->oom_killed.load() && b->oom_killed.load());
  exit_process(a);
  exit_process(b);
}

TEST_P(ReclaimSwapPolicy, MemcgAtMaxReclaimsOnlyItsOwnPages) {
  auto m = boot_small(256, 256);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* other;
  ASSERT_EQ(spawn(*m, "other", &other), 0);
  const uint64_t opages = (32ull << 20) / PAGE_SIZE;
  const uint64_t oa = map_anon(other->mm, opages * PAGE_SIZE);
  write_pages(other->mm, oa, opages, 6);
  MemCgroup* cg = mem_cgroup_create(*m, "job", 16ull << 20);
  ASSERT_TRUE(cg);
  Process* p = spawn_in_group(*m, cg, "limited");
  ASSERT_TRUE(p);
  const uint64_t pages = (64ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 7);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 7), 0u);
  EXPECT_LE(memcg_value(cg, "memory.peak"), 16ull << 20);
  EXPECT_GT(memcg_value(cg, "memory.swap.current"), 0u);
  // Pages read back from swap keep their copy in the swap cache (swap is
  // far from half full): the group's memory.stat counts them, the root's
  // has none.
  auto swapcached = [](const MemCgroup* g) {
    std::string text;
    EXPECT_TRUE(mem_cgroup_read(g, "memory.stat", &text));
    const size_t at = text.find("\nswapcached ");
    return at == std::string::npos ? ~uint64_t{0} : std::stoull(text.substr(at + 12));
  };
  EXPECT_GT(swapcached(cg), 0u);
  EXPECT_LE(swapcached(cg), memcg_value(cg, "memory.current"));
  EXPECT_EQ(swapcached(root_mem_cgroup(*m)), 0u);
  // The other process and the root kept every page in memory.
  EXPECT_EQ(other->mm->get_mm_counter(MM_SWAPENTS), 0u);
  EXPECT_EQ(other->mm->get_mm_counter(MM_ANONPAGES), opages);
  expect_checks(*m, p->mm);
  exit_process(p);
  exit_process(other);
}

// memory.swap.max (mm/memcontrol.c __mem_cgroup_try_charge_swap): a group of
// 16 MiB (4096 pages) may hold 4 MiB (1024 slots) of swap. 18 MiB of
// anonymous memory fits in the two and reads back whole, with the group's
// swap at most its limit after every page; the charges that would have
// passed it count in memory.swap.events (max and fail). 24 MiB does not
// fit: reclaim leaves the group's anonymous pages alone once its swap is
// full, and the group's OOM killer ends the process instead of any slot
// going over.
TEST_P(ReclaimSwapPolicy, SwapMaxLimitsTheGroupsSwap) {
  auto m = boot_small(256, 256);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  MemCgroup* cg = mem_cgroup_create(*m, "swapcap", 16ull << 20);
  ASSERT_TRUE(cg);
  mem_cgroup_set_swap_max(cg, 4ull << 20);
  EXPECT_EQ(memcg_value(cg, "memory.swap.max"), 4ull << 20);
  Process* p = spawn_in_group(*m, cg, "fits");
  ASSERT_TRUE(p);
  const uint64_t pages = (18ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  ASSERT_NO_FATAL_FAILURE(write_pages(p->mm, a, pages, 4, [&](uint64_t i) {
    ASSERT_LE(memcg_value(cg, "memory.swap.current"), 4ull << 20) << i;
  }));
  EXPECT_EQ(verify_pages(p->mm, a, pages, 4), 0u);
  EXPECT_GT(memcg_value(cg, "memory.swap.current"), 0u);
  EXPECT_LE(memcg_value(cg, "memory.swap.current"), 4ull << 20);
  EXPECT_LE(memcg_value(cg, "memory.peak"), 16ull << 20);
  expect_checks(*m, p->mm);
  exit_process(p);
  EXPECT_EQ(memcg_value(cg, "memory.swap.current"), 0u);

  Process* q = spawn_in_group(*m, cg, "toobig");
  ASSERT_TRUE(q);
  const uint64_t big = (24ull << 20) / PAGE_SIZE;
  const uint64_t b = map_anon(q->mm, big * PAGE_SIZE);
  bool killed = false;
  for (uint64_t i = 0; i < big && !killed; ++i) {
    uint64_t buf[PAGE_SIZE / 8] = {i};
    const FaultResult r = access_write(q->mm, b + i * PAGE_SIZE, buf, PAGE_SIZE);
    killed = r.status == FaultStatus::kKilled;
    ASSERT_TRUE(killed || r.ok()) << i << ": " << r.reason;
    ASSERT_LE(memcg_value(cg, "memory.swap.current"), 4ull << 20) << i;
  }
  EXPECT_TRUE(killed);
  std::string events;
  ASSERT_TRUE(mem_cgroup_read(cg, "memory.swap.events", &events));
  unsigned long long max_events = 0, fail_events = 0;
  ASSERT_EQ(std::sscanf(events.c_str(), "high 0\nmax %llu\nfail %llu\n", &max_events, &fail_events),
            2)
      << events;
  EXPECT_GT(max_events, 0u);
  EXPECT_GE(fail_events, max_events);
  exit_process(q);
  expect_every_slot_free(*m);
}

// memory.high (mm/memcontrol.c): a group with memory.high = 8 MiB (2048
// pages) and no memory.max writes 16 MiB. Every charge over high succeeds,
// counts a high event and reclaims the excess at once, so memory.current
// stays within a reclaim batch (memcg_reclaim_batch(2048) = 32 pages) of
// high after every page; nothing is OOM-killed, and everything reads back.
// Setting memory.high lower reclaims down to it.
TEST_P(ReclaimSwapPolicy, MemoryHighReclaimsTheExcessWithoutOom) {
  auto m = boot_small(128, 256);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  MemCgroup* cg = mem_cgroup_create(*m, "throttled", kMemMax);
  ASSERT_TRUE(cg);
  mem_cgroup_set_high(cg, 8ull << 20);
  EXPECT_EQ(memcg_value(cg, "memory.high"), 8ull << 20);
  Process* p = spawn_in_group(*m, cg, "writer");
  ASSERT_TRUE(p);
  const uint64_t pages = (16ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  ASSERT_NO_FATAL_FAILURE(write_pages(p->mm, a, pages, 9, [&](uint64_t i) {
    ASSERT_LE(memcg_value(cg, "memory.current"), (8ull << 20) + 32 * PAGE_SIZE) << i;
  }));
  EXPECT_EQ(verify_pages(p->mm, a, pages, 9), 0u);
  std::string events;
  ASSERT_TRUE(mem_cgroup_read(cg, "memory.events", &events));
  unsigned long long high = 0, max = 0, oom = 0;
  ASSERT_EQ(
      std::sscanf(events.c_str(), "low 0\nhigh %llu\nmax %llu\noom %llu\n", &high, &max, &oom), 3)
      << events;
  EXPECT_GT(high, 0u);
  EXPECT_EQ(max, 0u);
  EXPECT_EQ(oom, 0u);
  EXPECT_EQ(m->sum_event(VmEvent::OOM_KILL), 0);
  EXPECT_GT(memcg_value(cg, "memory.swap.current"), 0u);
  mem_cgroup_set_high(cg, 4ull << 20);
  EXPECT_LE(memcg_value(cg, "memory.current"), 4ull << 20);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 9), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
}

// calculate_high_delay() (mm/memcontrol.c), worked out by hand for HZ =
// 1000. overage = ((usage - high) << 20) / high; the penalty in jiffies is
// overage^2 * HZ >> 20 >> 14, times nr_pages / MEMCG_CHARGE_BATCH (64):
//   usage 512, high 256: overage 1 << 20, (1 << 40) * 1000 >> 34 = 64000,
//     / 64 = 1000 ms for one page (the clamp is 2000);
//   usage 300, high 256: overage (44 << 20) / 256 = 180224, squared and
//     times 1000 = 32480690176000, >> 34 = 1890; one page 1890 / 64 = 29,
//     a batch of 64 pages 1890;
//   usage 281, high 256: overage 102400, 10485760000000 >> 34 = 610, one
//     page 9 ms: not above HZ / 100, no sleep (about a tenth over);
//   at or under high 0; high 0 counts as 1 page: usage 10 gives overage
//     9 << 20, 81 * 64000 / 64 = 81000.
// A group a trillion times over does not wrap around to a short sleep.
TEST(MemcgHighDelay, LinuxsFormula) {
  EXPECT_EQ(mem_cgroup_high_delay_ms(512, 256, 1), 1000u);
  EXPECT_EQ(mem_cgroup_high_delay_ms(300, 256, 1), 29u);
  EXPECT_EQ(mem_cgroup_high_delay_ms(300, 256, 64), 1890u);
  EXPECT_EQ(mem_cgroup_high_delay_ms(281, 256, 1), 9u);
  EXPECT_EQ(mem_cgroup_high_delay_ms(256, 256, 1), 0u);
  EXPECT_EQ(mem_cgroup_high_delay_ms(100, 256, 1), 0u);
  EXPECT_EQ(mem_cgroup_high_delay_ms(10, 0, 1), 81000u);
  EXPECT_GT(mem_cgroup_high_delay_ms(uint64_t{1} << 40, 1, 1), 2000u);
}

// Over memory.high with nothing to reclaim (no swap, anonymous pages): the
// charges still succeed, and once the group is more than a tenth over,
// each fault sleeps its penalty on the way back (mem_cgroup_handle_over_high)
// instead of being OOM-killed; everything reads back. Under the tenth, no
// fault sleeps.
TEST_P(ReclaimSwapPolicy, MemoryHighThrottlesAGroupThatCannotReclaim) {
  auto m = boot_small(64, 0);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  MemCgroup* cg = mem_cgroup_create(*m, "throttled", kMemMax);
  ASSERT_TRUE(cg);
  mem_cgroup_set_high(cg, 256 * PAGE_SIZE);
  Process* p = spawn_in_group(*m, cg, "grower");
  ASSERT_TRUE(p);
  const uint64_t a = map_anon(p->mm, 300 * PAGE_SIZE);
  // Up to 280 pages: at most 9 ms a fault, no sleep.
  ASSERT_NO_FATAL_FAILURE(write_pages(p->mm, a, 280, 3, [](uint64_t) {}));
  EXPECT_EQ(memcg_value(cg, "memory.current"), 280 * PAGE_SIZE);
  EXPECT_EQ(cg->high_throttle_ms.load(), 0u);
  // 20 more: the faults that take the group to 283..300 pages sleep 11,
  // 11, 12, 13, ... 28, 29 ms (the formula above): 343 ms in all.
  ASSERT_NO_FATAL_FAILURE(write_pages(p->mm, a, 300, 3, [](uint64_t) {}));
  EXPECT_EQ(memcg_value(cg, "memory.current"), 300 * PAGE_SIZE);
  EXPECT_EQ(cg->high_throttle_ms.load(), 343u);
  EXPECT_EQ(m->sum_event(VmEvent::OOM_KILL), 0);
  EXPECT_EQ(verify_pages(p->mm, a, 300, 3), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
}

// Lowering memory.max reclaims the group down to it at once
// (memory_max_write()), from its own pages only, and nothing is lost.
TEST_P(ReclaimSwapPolicy, LoweringMemoryMaxReclaimsDownToIt) {
  auto m = boot_small(128, 256);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  MemCgroup* cg = mem_cgroup_create(*m, "shrinking", 32ull << 20);
  ASSERT_TRUE(cg);
  Process* p = spawn_in_group(*m, cg, "limited");
  ASSERT_TRUE(p);
  const uint64_t pages = (24ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 3);
  EXPECT_EQ(m->sum_event(VmEvent::PSWPOUT), 0);
  mem_cgroup_set_max(cg, 8ull << 20);
  EXPECT_LE(memcg_value(cg, "memory.current"), 8ull << 20);
  EXPECT_GE(p->mm->get_mm_counter(MM_SWAPENTS), pages - (8ull << 20) / PAGE_SIZE);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 3), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
}

// memcg_reclaim_batch(): SWAP_CLUSTER_MAX from 2048 pages (8 MiB) up, a
// 64th of the limit below, never less than a page.
TEST(ReclaimSwap, MemcgReclaimBatchWorkedByHand) {
  EXPECT_EQ(memcg_reclaim_batch(kMemMax), 32u);
  EXPECT_EQ(memcg_reclaim_batch(4096), 32u);
  EXPECT_EQ(memcg_reclaim_batch(2048), 32u);  // 2048 >> 6 = 32
  EXPECT_EQ(memcg_reclaim_batch(1024), 16u);
  EXPECT_EQ(memcg_reclaim_batch(100), 1u);  // 100 >> 6 = 1
  EXPECT_EQ(memcg_reclaim_batch(64), 1u);
  EXPECT_EQ(memcg_reclaim_batch(16), 1u);  // 0, raised to one page
}

// In a group of 64 pages a charge over the limit evicts a page, not half
// the group: each new page past the limit costs one swap-out.
TEST(ReclaimSwap, SmallGroupEvictsOnlyWhatTheChargeNeeds) {
  auto m = boot_small(128, 256, 1);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  MemCgroup* cg = mem_cgroup_create(*m, "tiny", 64 * PAGE_SIZE);
  ASSERT_TRUE(cg);
  Process* p = spawn_in_group(*m, cg, "tiny");
  ASSERT_TRUE(p);
  const uint64_t pages = 160;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 4);
  // 96 pages past the limit: 96 swapped out, and the group still holds
  // 64 (with 32-page batches it would hold 32 to 64).
  EXPECT_EQ(m->sum_event(VmEvent::PSWPOUT), static_cast<int64_t>(pages - 64));
  EXPECT_EQ(memcg_value(cg, "memory.current"), 64 * PAGE_SIZE);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 4), 0u);
  expect_checks(*m, p->mm);
  exit_process(p);
}

// Workingset detection (mm/workingset.c): every page read back from swap
// into a slot that reclaim evicted it from is a refault (its shadow entry
// was there); activations and restores are among them (a loop 1.5 times
// the limit may activate none: its refault distance exceeds the active
// list); memory.stat agrees with /proc/vmstat's counters.
TEST(ReclaimSwap, RefaultsOfEvictedPagesAreDetected) {
  auto m = boot_small(128, 256);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p = spawn_in_group(*m, "ws", 8ull << 20);
  ASSERT_TRUE(p);
  MemCgroup* cg = p->mm->memcg;
  const uint64_t pages = (12ull << 20) / PAGE_SIZE;  // 1.5 times the limit
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 3);
  auto ws = [&](NodeStat item) { return static_cast<uint64_t>(m->node_stat_sum(item)); };
  EXPECT_EQ(ws(NodeStat::WORKINGSET_REFAULT_ANON), 0u);  // nothing read back yet
  const uint64_t in0 = m->sum_event(VmEvent::PSWPIN);
  for (int pass = 0; pass < 3; ++pass) EXPECT_EQ(verify_pages(p->mm, a, pages, 3), 0u);
  const uint64_t read = m->sum_event(VmEvent::PSWPIN) - in0;
  const uint64_t refault = ws(NodeStat::WORKINGSET_REFAULT_ANON);
  const uint64_t activate = ws(NodeStat::WORKINGSET_ACTIVATE_ANON);
  const uint64_t restore = ws(NodeStat::WORKINGSET_RESTORE_ANON);
  EXPECT_GT(read, 0u);
  EXPECT_EQ(refault, read);  // each page read (readahead included) was evicted by reclaim
  EXPECT_LE(activate, refault);
  EXPECT_LE(restore, activate);
  std::string stat;
  ASSERT_TRUE(mem_cgroup_read(cg, "memory.stat", &stat));
  EXPECT_NE(stat.find(fmt::format("\nworkingset_refault_anon {}\n", refault)), std::string::npos)
      << stat;
  EXPECT_NE(stat.find(fmt::format("\nworkingset_activate_anon {}\n", activate)), std::string::npos);
  expect_checks(*m, p->mm);
  exit_process(p);
  EXPECT_EQ(swap_check(*m), "");  // the slots, and their shadows, are gone
  EXPECT_EQ(swap_free_pages(*m), swap_total_pages(*m));
}

// swapin_nr_pages(): faults that walk swapped pages in order read ahead
// (the window grows to 2^page_cluster while its pages are used); faults at
// random soon read one page each, since readahead pages go unused.
TEST(ReclaimSwap, SwapReadaheadFollowsTheAccessPattern) {
  auto m = boot_small(128, 256);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p = spawn_in_group(*m, "ra", 8ull << 20);
  ASSERT_TRUE(p);
  const uint64_t pages = (32ull << 20) / PAGE_SIZE;
  const uint64_t a = map_anon(p->mm, pages * PAGE_SIZE);
  write_pages(p->mm, a, pages, 4);
  auto delta = [&](VmEvent e, uint64_t since) { return m->sum_event(e) - since; };
  uint64_t in0 = m->sum_event(VmEvent::PSWPIN), maj0 = m->sum_event(VmEvent::PGMAJFAULT);
  EXPECT_EQ(verify_pages(p->mm, a, pages, 4), 0u);
  const uint64_t seq_in = delta(VmEvent::PSWPIN, in0), seq_maj = delta(VmEvent::PGMAJFAULT, maj0);
  std::printf("sequential: %llu pages read in %llu major faults\n",
              static_cast<unsigned long long>(seq_in), static_cast<unsigned long long>(seq_maj));
  EXPECT_GT(seq_in, 2 * seq_maj);  // 8192 in 2226 here: a window of 4 or 8 per fault
  in0 = m->sum_event(VmEvent::PSWPIN);
  maj0 = m->sum_event(VmEvent::PGMAJFAULT);
  uint64_t x = 12345, bad = 0;
  for (int i = 0; i < 4000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const uint64_t page = (x >> 33) % pages;
    uint64_t w = 0;
    if (!access_read(p->mm, a + page * PAGE_SIZE, &w, sizeof w).ok() || w != pattern(page, 4))
      ++bad;
  }
  EXPECT_EQ(bad, 0u);
  const uint64_t rnd_in = delta(VmEvent::PSWPIN, in0), rnd_maj = delta(VmEvent::PGMAJFAULT, maj0);
  std::printf("random: %llu pages read in %llu major faults\n",
              static_cast<unsigned long long>(rnd_in), static_cast<unsigned long long>(rnd_maj));
  EXPECT_GT(rnd_maj, 0u);
  EXPECT_LT(rnd_in, 2 * rnd_maj);  // 3049 in 3038 here (a fixed window of 8 read 8 a fault)
  expect_checks(*m, p->mm);
  exit_process(p);
  expect_every_slot_free(*m);
}

TEST(ReclaimSwap, InactiveIsLowWorkedByHand) {
  // Under 1 GiB of both lists the ratio is 1: low when inactive < active.
  EXPECT_TRUE(inactive_is_low(10, 11));
  EXPECT_FALSE(inactive_is_low(11, 11));
  // 1 GiB (262144 pages): gb = 1, ratio = int_sqrt(10) = 3.
  EXPECT_TRUE(inactive_is_low(40000, 222144));    // 120000 < 222144
  EXPECT_FALSE(inactive_is_low(131072, 131072));  // 393216 >= 131072
  // 10 GiB (2621440 pages): ratio = int_sqrt(100) = 10.
  EXPECT_TRUE(inactive_is_low(200000, 2421440));   // 2000000 < 2421440
  EXPECT_FALSE(inactive_is_low(250000, 2371440));  // 2500000 >= 2371440
}

TEST(ReclaimSwap, GetScanCountWorkedByHand) {
  ScanInput in;
  in.size[LRU_INACTIVE_ANON] = 8192;
  in.size[LRU_ACTIVE_ANON] = 4096;
  in.size[LRU_INACTIVE_FILE] = 8192;
  in.size[LRU_ACTIVE_FILE] = 4096;
  in.priority = 1;  // each list's scan is size >> 1: 4096, 2048, 4096, 2048
  uint64_t out[NR_LRU_LISTS];
  // swappiness 60, no cost yet: total = a = f = 0, T = 0; ap = 60 * 1 / 1,
  // fp = 140 * 1 / 1, denominator 200. 4096 * 60 / 200 = 1228,
  // 2048 * 60 / 200 = 614, 4096 * 140 / 200 = 2867, 2048 * 140 / 200 = 1433.
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 1228u);
  EXPECT_EQ(out[LRU_ACTIVE_ANON], 614u);
  EXPECT_EQ(out[LRU_INACTIVE_FILE], 2867u);
  EXPECT_EQ(out[LRU_ACTIVE_FILE], 1433u);
  EXPECT_EQ(out[LRU_UNEVICTABLE], 0u);
  // swappiness 200: ap = 200, fp = 0: anon only.
  in.swappiness = 200;
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 4096u);
  EXPECT_EQ(out[LRU_INACTIVE_FILE], 0u);
  // swappiness 100, anon_cost 100, file_cost 300: total 400, a 500, f 700,
  // T 1200; ap = 100 * 1201 / 501 = 239, fp = 100 * 1201 / 701 = 171,
  // denominator 410: 4096 * 239 / 410 = 2387, 4096 * 171 / 410 = 1708.
  in.swappiness = 100;
  in.anon_cost = 100;
  in.file_cost = 300;
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 2387u);
  EXPECT_EQ(out[LRU_INACTIVE_FILE], 1708u);
  // DEF_PRIORITY: 8192 >> 12 = 2 pages; 2 * 239 / 410 = 1, 2 * 171 / 410 = 0.
  in.priority = DEF_PRIORITY;
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 1u);
  EXPECT_EQ(out[LRU_INACTIVE_FILE], 0u);
  // Priority 0 with swappiness: SCAN_EQUAL, every list in full.
  in.priority = 0;
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 8192u);
  EXPECT_EQ(out[LRU_ACTIVE_ANON], 4096u);
  EXPECT_EQ(out[LRU_INACTIVE_FILE], 8192u);
  EXPECT_EQ(out[LRU_ACTIVE_FILE], 4096u);
  // Cache-trim mode: 8192 >> 1 inactive file pages at priority 1, and the
  // inactive list is not low (8192 * 1 >= 4096): file only.
  in.priority = 1;
  in.cache_trim = cache_trim_mode(8192, 4096, 1);
  EXPECT_TRUE(in.cache_trim);
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 0u);
  EXPECT_EQ(out[LRU_INACTIVE_FILE], 4096u);
  EXPECT_EQ(out[LRU_ACTIVE_FILE], 2048u);
  in.cache_trim = false;
  // Not in cache-trim mode: a low inactive list (1000 * 1 < 3000), or one
  // with nothing at this priority (100 >> 12 = 0).
  EXPECT_FALSE(cache_trim_mode(1000, 3000, 0));
  EXPECT_FALSE(cache_trim_mode(100, 0, DEF_PRIORITY));
  // No free swap: file only. No file pages: anon only, whatever swappiness.
  in.can_swap = false;
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 0u);
  EXPECT_EQ(out[LRU_INACTIVE_FILE], 4096u);
  in.can_swap = true;
  in.size[LRU_INACTIVE_FILE] = in.size[LRU_ACTIVE_FILE] = 0;
  in.swappiness = 0;
  get_scan_count(in, out);
  EXPECT_EQ(out[LRU_INACTIVE_ANON], 4096u);
  EXPECT_EQ(out[LRU_ACTIVE_ANON], 2048u);
}

}  // namespace
}  // namespace mmkit
