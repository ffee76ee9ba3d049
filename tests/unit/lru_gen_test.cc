// The multi-generational LRU's own behaviour (lru_gen = true): aging by a
// page-table walk moves the pages found young to the youngest generation
// and leaves the others behind; eviction takes the oldest generation; the
// PID controller protects a tier that refaults more than the first, so
// eviction moves its pages up a generation instead; min_ttl_ms makes
// kswapd OOM-kill rather than evict a working set younger than it. The
// tests shared with the classic lists run under both policies in
// reclaim_swap_test.cc, vm_file_map_test.cc, shmem_test.cc and the
// concurrency tests.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "memcg/lru_gen.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/lru_gen.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/pgtable.h"
#include "vm/process.h"

namespace mmkit {
namespace {

constexpr uint64_t kPages = 64;

struct LruGenTest : ::testing::Test {
  void boot(unsigned min_ttl_ms = 0, uint64_t ram_mib = 32, uint64_t swap_mib = 32) {
    MachineConfig c;
    c.cpus = 1;
    c.nodes = {NodeConfig{.memory = ram_mib << 20}};
    c.swap = swap_mib << 20;
    c.lru_gen = true;
    c.lru_gen_min_ttl_ms = min_ttl_ms;
    c.dirty_writeback_centisecs = 0;
    auto r = boot_with_reclaim(c);
    ASSERT_TRUE(r.ok()) << r.error().message;
    m = std::move(r.value());
    ASSERT_EQ(spawn(*m, "gen", &p), 0);
    lv = &mem_cgroup_lruvec(root_mem_cgroup(*m), 0);
  }
  void TearDown() override {
    if (p) exit_process(p);
  }
  // kPages anonymous pages, each written (its first word is its index).
  // The thread is bound to no CPU, so every access walks the page table
  // and sets ACCESSED (no TLB hides a reference).
  void map_and_write() {
    const int64_t a =
        do_mmap(p->mm, 0, kPages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    ASSERT_GT(a, 0);
    base = static_cast<uint64_t>(a);
    for (uint64_t i = 0; i < kPages; ++i)
      ASSERT_TRUE(access_write(p->mm, base + i * PAGE_SIZE, &i, sizeof i).ok());
    lru_add_drain_all(*m);
  }
  void read(uint64_t first, uint64_t n) {
    for (uint64_t i = first; i < first + n; ++i) {
      uint64_t v = ~uint64_t{0};
      ASSERT_TRUE(access_read(p->mm, base + i * PAGE_SIZE, &v, sizeof v).ok());
      EXPECT_EQ(v, i);
    }
  }
  // The generation of each page of the mapping (-2: not present).
  std::vector<int> gens() {
    std::vector<int> g(kPages, -2);
    walk_range(p->mm->pgd, base, base + kPages * PAGE_SIZE, [&](uint64_t addr, pteval_t v) {
      g[(addr - base) / PAGE_SIZE] = page_lru_gen(m->pfn_to_page(pte_pfn(v)));
    });
    return g;
  }
  uint64_t max_seq() const { return lv->lrugen.max_seq.load(); }
  uint64_t min_seq(unsigned type) const { return lv->lrugen.min_seq[type].load(); }
  std::unique_ptr<Machine> m;
  Process* p = nullptr;
  Lruvec* lv = nullptr;
  uint64_t base = 0;
};

TEST_F(LruGenTest, ConfigKeysReachTheMachine) {
  boot(250);
  EXPECT_TRUE(lru_gen_enabled(*m));
  EXPECT_EQ(m->config().lru_gen_min_ttl_ms, 250u);
  EXPECT_EQ(max_seq() - min_seq(LRU_GEN_ANON) + 1, MIN_NR_GENS);
  EXPECT_EQ(lru_check(*m), "");
}

// folio_add_lru(): a page a fault adds goes to the youngest generation; a
// page added outside a fault (a write() through the page cache) goes to an
// older one, as lru_gen_add_folio() places an inactive page.
TEST_F(LruGenTest, FaultedPagesStartInTheYoungestGeneration) {
  boot();
  map_and_write();
  const unsigned youngest = lru_gen_from_seq(max_seq());
  for (int g : gens()) EXPECT_EQ(g, static_cast<int>(youngest));
  EXPECT_EQ(lv->lrugen.nr_pages[youngest][LRU_GEN_ANON], static_cast<int64_t>(kPages));
  const int fd = sys_open(*m, p->files, "written", O_CREAT | O_RDWR | O_TRUNC);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(PAGE_SIZE, 'w');
  for (uint64_t i = 0; i < kPages; ++i)
    ASSERT_EQ(sys_write(*m, p->files, fd, buf.data(), PAGE_SIZE), static_cast<int64_t>(PAGE_SIZE));
  lru_add_drain_all(*m);
  EXPECT_EQ(lv->lrugen.nr_pages[youngest][LRU_GEN_FILE], 0);
  int64_t file_pages = 0;
  for (unsigned g = 0; g < MAX_NR_GENS; ++g) file_pages += lv->lrugen.nr_pages[g][LRU_GEN_FILE];
  EXPECT_EQ(file_pages, static_cast<int64_t>(kPages));
  EXPECT_FALSE(lru_gen_in_fault());
  {
    const LruGenFaultScope outer;
    {
      const LruGenFaultScope inner;
      EXPECT_TRUE(lru_gen_in_fault());
    }
    EXPECT_TRUE(lru_gen_in_fault());  // the outer fault is still being handled
  }
  EXPECT_FALSE(lru_gen_in_fault());
  sys_close(*m, p->files, fd);
  EXPECT_EQ(lru_check(*m), "");
}

TEST_F(LruGenTest, AgingMovesYoungPagesToTheYoungestGeneration) {
  boot();
  map_and_write();
  const uint64_t seq0 = max_seq();
  // The first walk finds every page young (the faults set ACCESSED).
  EXPECT_GE(lru_gen_age_lruvec(*m, *lv), kPages);
  EXPECT_EQ(max_seq(), seq0 + 1);
  for (int g : gens()) EXPECT_EQ(g, static_cast<int>(lru_gen_from_seq(seq0)));
  // Nothing touched since: the pages stay behind in their generation.
  lru_gen_age_lruvec(*m, *lv);
  EXPECT_EQ(max_seq(), seq0 + 2);
  for (int g : gens()) EXPECT_EQ(g, static_cast<int>(lru_gen_from_seq(seq0)));
  // Half of them used again: those, and only those, move to the youngest.
  read(0, kPages / 2);
  lru_gen_age_lruvec(*m, *lv);
  EXPECT_EQ(max_seq(), seq0 + 3);
  const std::vector<int> g = gens();
  for (uint64_t i = 0; i < kPages; ++i)
    EXPECT_EQ(g[i], static_cast<int>(lru_gen_from_seq(i < kPages / 2 ? seq0 + 2 : seq0))) << i;
  // MAX_NR_GENS generations at most: the oldest was folded into the next.
  EXPECT_EQ(max_seq() - min_seq(LRU_GEN_ANON) + 1, MAX_NR_GENS);
  // The two youngest generations count as active, the rest inactive.
  EXPECT_GE(lv->size(LRU_ACTIVE_ANON), kPages / 2);
  EXPECT_GE(lv->size(LRU_INACTIVE_ANON), kPages / 2);
  EXPECT_EQ(lru_check(*m), "");
}

TEST_F(LruGenTest, EvictionTakesTheOldestGeneration) {
  boot();
  map_and_write();
  lru_gen_age_lruvec(*m, *lv);
  lru_gen_age_lruvec(*m, *lv);
  read(0, kPages / 2);
  lru_gen_age_lruvec(*m, *lv);
  // Pages kPages/2.. are in the oldest anon generation, 0..kPages/2 in
  // the youngest: one eviction pass swaps out the former only.
  ASSERT_EQ(gens()[kPages - 1], static_cast<int>(lru_gen_from_seq(min_seq(LRU_GEN_ANON))));
  const uint64_t out0 = m->sum_event(VmEvent::PSWPOUT);
  ScanControl sc;
  sc.nr_to_reclaim = kPages;
  EXPECT_GT(lru_gen_evict(*m, *lv, sc, kPages), 0u);
  EXPECT_GE(sc.nr_reclaimed, kPages / 2);
  EXPECT_GE(m->sum_event(VmEvent::PSWPOUT) - out0, kPages / 2);
  const std::vector<int> g = gens();
  for (uint64_t i = 0; i < kPages; ++i) {
    if (i < kPages / 2)
      EXPECT_GE(g[i], 0) << i;  // still present, on a generation list
    else
      EXPECT_EQ(g[i], -2) << i;  // swapped out
  }
  EXPECT_EQ(lru_check(*m), "");
  // Everything reads back.
  read(0, kPages);
  lru_add_drain_all(*m);
  EXPECT_EQ(lru_check(*m), "");
  EXPECT_EQ(swap_check(*m), "");
}

TEST_F(LruGenTest, PidControllerPicksTheTiersToProtect) {
  boot();
  LruGen& g = lv->lrugen;
  // No refaults: every tier may be evicted.
  EXPECT_EQ(lru_gen_tier_idx(*lv, LRU_GEN_FILE), MAX_NR_TIERS - 1);
  // Tier 1 refaults 90 of 100, tier 0 10 of 1000: tiers 1 and up are
  // protected (positive_ctrl_err fails from tier 1).
  g.avg_total[LRU_GEN_FILE][0] = 1000;
  g.avg_refaulted[LRU_GEN_FILE][0] = 10;
  for (unsigned t = 1; t < MAX_NR_TIERS; ++t) {
    g.avg_total[LRU_GEN_FILE][t] = 100;
    g.avg_refaulted[LRU_GEN_FILE][t] = 90;
  }
  EXPECT_EQ(lru_gen_tier_idx(*lv, LRU_GEN_FILE), 0u);
  // Fewer than MIN_LRU_BATCH (64) refaults are no evidence.
  g.avg_refaulted[LRU_GEN_FILE][1] = 63;
  EXPECT_EQ(lru_gen_tier_idx(*lv, LRU_GEN_FILE), 1u);  // tier 2 still refaults
  for (unsigned t = 1; t < MAX_NR_TIERS; ++t) g.avg_refaulted[LRU_GEN_FILE][t] = 63;
  EXPECT_EQ(lru_gen_tier_idx(*lv, LRU_GEN_FILE), MAX_NR_TIERS - 1);
  // get_type_to_scan(): file refaults little against anon's first tier,
  // so file is scanned.
  unsigned tier = 0;
  EXPECT_EQ(lru_gen_type_to_scan(*lv, 60, &tier), LRU_GEN_FILE);
  // Anon's first tier refaulting hard and file's not: file.
  g.avg_total[LRU_GEN_ANON][0] = 100;
  g.avg_refaulted[LRU_GEN_ANON][0] = 100;
  EXPECT_EQ(lru_gen_type_to_scan(*lv, 60, &tier), LRU_GEN_FILE);
  // File's first tier refaulting harder than anon's: anon.
  g.avg_refaulted[LRU_GEN_ANON][0] = 0;
  g.avg_refaulted[LRU_GEN_FILE][0] = 900;
  EXPECT_EQ(lru_gen_type_to_scan(*lv, 60, &tier), LRU_GEN_ANON);
}

TEST_F(LruGenTest, ARefaultingTierIsProtectedFromEviction) {
  boot();
  // A clean file of kPages pages; the first half read twice more (refs
  // 2: tier 2), the second half only written (tier 0).
  const int fd = sys_open(*m, p->files, "tiers", O_CREAT | O_RDWR | O_TRUNC);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(PAGE_SIZE, 'x');
  for (uint64_t i = 0; i < kPages; ++i)
    ASSERT_EQ(sys_write(*m, p->files, fd, buf.data(), PAGE_SIZE), static_cast<int64_t>(PAGE_SIZE));
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  for (int pass = 0; pass < 2; ++pass)
    for (uint64_t i = 0; i < kPages / 2; ++i)
      ASSERT_EQ(sys_pread(*m, p->files, fd, buf.data(), PAGE_SIZE, i * PAGE_SIZE),
                static_cast<int64_t>(PAGE_SIZE));
  lru_add_drain_all(*m);
  // The controller has seen tiers above 0 refault far more than tier 0.
  LruGen& g = lv->lrugen;
  g.avg_total[LRU_GEN_FILE][0] = 1000;
  g.avg_refaulted[LRU_GEN_FILE][0] = 10;
  for (unsigned t = 1; t < MAX_NR_TIERS; ++t) {
    g.avg_total[LRU_GEN_FILE][t] = 100;
    g.avg_refaulted[LRU_GEN_FILE][t] = 90;
  }
  lru_gen_age_lruvec(*m, *lv);  // a third generation: the file pages' one is evictable
  const uint64_t file0 = lv->size(LRU_INACTIVE_FILE) + lv->size(LRU_ACTIVE_FILE);
  ASSERT_GE(file0, kPages);
  const int64_t activate0 = m->node_stat_sum(NodeStat::WORKINGSET_ACTIVATE_FILE);
  const uint64_t old_seq = min_seq(LRU_GEN_FILE);
  ScanControl sc;
  sc.nr_to_reclaim = kPages;
  lru_gen_evict(*m, *lv, sc, 2 * kPages);
  // The tier-0 half went; the refaulting tier moved up a generation
  // (counted as activations; the emptied oldest generation is gone, and
  // its protected counts were folded into the controller's averages).
  EXPECT_EQ(sc.nr_reclaimed, kPages / 2);
  EXPECT_EQ(m->node_stat_sum(NodeStat::WORKINGSET_ACTIVATE_FILE) - activate0,
            static_cast<int64_t>(kPages / 2));
  EXPECT_EQ(min_seq(LRU_GEN_FILE), old_seq + 1);
  EXPECT_GT(g.avg_total[LRU_GEN_FILE][2].load(), 50u);  // (100 + 32 protected) / 2
  EXPECT_EQ(lv->size(LRU_INACTIVE_FILE) + lv->size(LRU_ACTIVE_FILE), file0 - kPages / 2);
  EXPECT_EQ(lru_check(*m), "");
  // The evicted half reads back from the file.
  for (uint64_t i = 0; i < kPages; ++i)
    ASSERT_EQ(sys_pread(*m, p->files, fd, buf.data(), PAGE_SIZE, i * PAGE_SIZE),
              static_cast<int64_t>(PAGE_SIZE));
  EXPECT_EQ(buf[0], 'x');
  sys_close(*m, p->files, fd);
  lru_add_drain_all(*m);
  EXPECT_EQ(lru_check(*m), "");
}

// lru_gen_eviction/lru_gen_refault: an evicted page read back while its
// generation is still the oldest counts as a refault of its tier.
TEST_F(LruGenTest, RefaultsWithinTheOldestGenerationAreCountedByTier) {
  boot();
  const int fd = sys_open(*m, p->files, "refault", O_CREAT | O_RDWR | O_TRUNC);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(PAGE_SIZE, 'y');
  for (uint64_t i = 0; i < kPages; ++i)
    ASSERT_EQ(sys_write(*m, p->files, fd, buf.data(), PAGE_SIZE), static_cast<int64_t>(PAGE_SIZE));
  ASSERT_EQ(sys_fsync(*m, p->files, fd), 0);
  lru_add_drain_all(*m);
  lru_gen_age_lruvec(*m, *lv);
  const uint64_t seq = min_seq(LRU_GEN_FILE);
  const int64_t refault0 = m->node_stat_sum(NodeStat::WORKINGSET_REFAULT_FILE);
  ScanControl sc;
  sc.nr_to_reclaim = kPages / 4;
  lru_gen_evict(*m, *lv, sc, kPages / 4);
  EXPECT_EQ(sc.nr_reclaimed, kPages / 4);
  EXPECT_EQ(min_seq(LRU_GEN_FILE), seq);  // the oldest generation still has pages
  EXPECT_EQ(lv->lrugen.evicted[LRU_GEN_FILE][0].load(), kPages / 4);
  for (uint64_t i = 0; i < kPages; ++i)
    ASSERT_EQ(sys_pread(*m, p->files, fd, buf.data(), PAGE_SIZE, i * PAGE_SIZE),
              static_cast<int64_t>(PAGE_SIZE));
  EXPECT_EQ(m->node_stat_sum(NodeStat::WORKINGSET_REFAULT_FILE) - refault0,
            static_cast<int64_t>(kPages / 4));
  EXPECT_EQ(lv->lrugen.refaulted[LRU_GEN_FILE][0].load(), kPages / 4);
  sys_close(*m, p->files, fd);
  lru_add_drain_all(*m);
  EXPECT_EQ(lru_check(*m), "");
}

TEST_F(LruGenTest, MinTtlProtectsAYoungWorkingSet) {
  boot(60000);
  map_and_write();
  // Every generation was born less than a minute ago.
  EXPECT_TRUE(lru_gen_min_ttl_exhausted(*m, 0));
}

TEST_F(LruGenTest, MinTtlPassedLeavesReclaimToEvict) {
  boot(1);
  map_and_write();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(lru_gen_min_ttl_exhausted(*m, 0));
}

// kswapd end to end: a process writing twice the RAM while min_ttl is a
// minute is OOM-killed (its working set is younger than min_ttl), though
// swap has room.
TEST_F(LruGenTest, MinTtlMakesKswapdOomKillInsteadOfThrashing) {
  boot(60000, 16, 64);
  const uint64_t pages = (32ull << 20) / PAGE_SIZE;
  const int64_t a =
      do_mmap(p->mm, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_GT(a, 0);
  bool killed = false;
  for (int pass = 0; pass < 4 && !killed; ++pass)
    for (uint64_t i = 0; i < pages; ++i) {
      if (!access_write(p->mm, static_cast<uint64_t>(a) + i * PAGE_SIZE, &i, sizeof i).ok()) {
        killed = true;
        break;
      }
    }
  EXPECT_TRUE(killed);
  EXPECT_GT(m->sum_event(VmEvent::OOM_KILL), 0);
}

}  // namespace
}  // namespace mmkit
