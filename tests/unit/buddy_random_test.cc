// Randomised alloc_pages/free_pages sequences over a small 2-node machine,
// with check() after every step.
//
// The buddy allocator's invariants (check.cc) must hold after any sequence
// of allocations and frees of mixed orders and GFP flags, bound to a CPU
// (per-CPU lists) or not, with drains in between. Each block is tagged page
// by page while it is allocated and the tags are verified before it is freed,
// so a block handed out twice, or written by the allocator while in use, is
// caught; a frame map catches overlapping blocks at once. Each returned
// block must obey its GFP zone modifier, __GFP_THISNODE and order alignment,
// and __GFP_ZERO blocks must read zero. At the end everything is freed and
// the free page count must return to its boot value.
//
// The near-OOM tests allocate until failure and check that a failure only
// happens when every usable zone is at or below the watermark the request
// may use (Linux's __zone_watermark_ok, worked out here independently).
//
// Seeds: each test prints its seed (SCOPED_TRACE, and as the "seed" test
// property). MMKIT_SEED=<n> replays one seed; MMKIT_SEED=random picks one;
// MMKIT_RANDOM_STEPS=<n> makes the random sequences longer.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::vector<uint64_t> seeds(std::vector<uint64_t> defaults) {
  const char* env = std::getenv("MMKIT_SEED");
  if (!env || !*env) return defaults;
  if (std::string(env) == "random") return {std::random_device{}()};
  return {std::strtoull(env, nullptr, 0)};
}

// MMKIT_RANDOM_STEPS=<n> runs longer sequences (a soak); the default keeps
// the test quick under ASan, where check() after every step dominates.
int random_steps(int dflt) {
  const char* env = std::getenv("MMKIT_RANDOM_STEPS");
  return env && *env ? std::atoi(env) : dflt;
}

std::string seed_note(uint64_t seed) {
  return "seed " + std::to_string(seed) + " (replay: MMKIT_SEED=" + std::to_string(seed) + ")";
}

NodeConfig node_of(uint64_t mem) {
  NodeConfig n;
  n.memory = mem;
  return n;
}

// 2 nodes x 16 MiB, 2 CPUs (cpu 0 on node 0, cpu 1 on node 1).
// Node 0: DMA [0, 4096); node 1: DMA32 [4096, 8192). Small, so that check()
// after every step stays cheap (also under ASan).
MachineConfig small_two_node() {
  MachineConfig c;
  c.cpus = 2;
  c.nodes.push_back(node_of(16 * kMiB));
  c.nodes.push_back(node_of(16 * kMiB));
  return c;
}

// 2 nodes x 32 MiB, 2 CPUs, for the near-OOM tests (which check less often):
// node 0: DMA [0, 4096), DMA32 [4096, 8192); node 1: DMA32 [8192, 16384).
// Node 0 has DMA below DMA32, so DMA holds a lowmem_reserve against it.
MachineConfig near_oom_machine() {
  MachineConfig c;
  c.cpus = 2;
  c.nodes.push_back(node_of(32 * kMiB));
  c.nodes.push_back(node_of(32 * kMiB));
  return c;
}

// The highest zone index a request may use, from the zone modifiers alone
// (Linux's GFP_ZONE_TABLE with OPT_ZONE_DMA32 / OPT_ZONE_HIGHMEM folded).
unsigned allowed_zone_idx(Arch a, gfp_t gfp) {
  const gfp_t z = gfp & (__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM | __GFP_MOVABLE);
  if (z & __GFP_DMA) return 0;
  if (z & __GFP_DMA32) return 1;  // i386: DMA32 means Normal, also index 1
  if ((z & (__GFP_HIGHMEM | __GFP_MOVABLE)) == (__GFP_HIGHMEM | __GFP_MOVABLE)) return 3;
  if (z & __GFP_HIGHMEM) return 2;  // x86_64: Normal; i386: HighMem
  return a == Arch::x86_64 ? 2 : 1;
}

struct Block {
  Page* page;
  uint64_t pfn;
  unsigned order;
  gfp_t gfp;
  uint64_t tag;
};

// Allocates and frees through mmkit, keeping a frame map and per-page tags.
class Harness {
 public:
  explicit Harness(Machine& m) : m_(m), owned_(m.max_pfn(), false) {
    set_warn_sink(m_, [this](const std::string& s) { warnings_.push_back(s); });
  }

  Machine& m() { return m_; }
  std::vector<Block>& live() { return live_; }
  uint64_t live_pages() const { return live_pages_; }
  std::vector<std::string>& warnings() { return warnings_; }

  // Allocates; on success checks the block and tags it. Returns null on
  // failure (the caller judges whether failing was allowed).
  Page* alloc(gfp_t gfp, unsigned order, int nid) {
    const size_t warns_before = warnings_.size();
    Page* p = alloc_pages(m_, gfp, order, nid);
    if (!p) {
      if (gfp & __GFP_NOWARN) {
        EXPECT_EQ(warnings_.size(), warns_before) << "a __GFP_NOWARN failure printed a report";
      } else {
        EXPECT_GT(warnings_.size(), warns_before) << "a failure printed no report";
        if (warnings_.size() > warns_before) {
          EXPECT_NE(
              warnings_.back().find("page allocation failure: order:" + std::to_string(order)),
              std::string::npos)
              << warnings_.back();
        }
      }
      return nullptr;
    }
    EXPECT_EQ(warnings_.size(), warns_before) << "a successful allocation warned";
    const uint64_t pfn = m_.page_to_pfn(p);
    const uint64_t n = uint64_t{1} << order;
    EXPECT_EQ(pfn & (n - 1), 0u) << "pfn " << pfn << " not aligned to order " << order;
    EXPECT_LE(pfn + n, m_.max_pfn());
    const Zone* z = m_.pfn_zone(pfn);
    EXPECT_NE(z, nullptr);
    if (!z) return p;
    EXPECT_LE(z->idx, allowed_zone_idx(m_.arch(), gfp))
        << "gfp " << format_gfp(gfp) << " got zone " << z->name;
    EXPECT_EQ(m_.pfn_zone(pfn + n - 1), z) << "block straddles zones";
    if ((gfp & __GFP_THISNODE) && nid != NUMA_NO_NODE) {
      EXPECT_EQ(z->node, nid);
    }
    EXPECT_EQ(p->ref_count(), 1);
    for (uint64_t i = 0; i < n; ++i) {
      EXPECT_FALSE(owned_[pfn + i]) << "pfn " << pfn + i << " handed out twice";
      EXPECT_FALSE(m_.pfn_to_page(pfn + i)->test(PG_buddy))
          << "allocated pfn " << pfn + i << " has PG_buddy";
      owned_[pfn + i] = true;
    }
    if (gfp & __GFP_ZERO) {
      const auto* w = reinterpret_cast<const uint64_t*>(m_.phys_window(pfn));
      uint64_t acc = 0;
      for (uint64_t i = 0; i < (n * PAGE_SIZE) / 8; ++i) acc |= w[i];
      EXPECT_EQ(acc, 0u) << "__GFP_ZERO block at pfn " << pfn << " order " << order << " not zero";
    }
    if ((gfp & __GFP_COMP) && order > 0) {
      EXPECT_TRUE(p->test(PG_head));
      EXPECT_EQ(p->compound_order(), order);
      for (uint64_t i = 1; i < n; ++i) {
        EXPECT_TRUE(p[i].is_tail());
        if (p[i].head() != p) {
          ADD_FAILURE() << "tail " << i << " of compound pfn " << pfn << " has the wrong head";
          break;
        }
      }
    } else {
      EXPECT_FALSE(p->test(PG_head));
    }
    Block b{p, pfn, order, gfp, ++next_tag_};
    write_tags(b);
    live_.push_back(b);
    live_pages_ += n;
    return p;
  }

  // Frees live block `i` (swap-remove), after verifying its tags.
  void free(size_t i, bool via_tail) {
    Block b = live_[i];
    live_[i] = live_.back();
    live_.pop_back();
    verify_tags(b);
    const uint64_t n = uint64_t{1} << b.order;
    for (uint64_t k = 0; k < n; ++k) owned_[b.pfn + k] = false;
    live_pages_ -= n;
    const size_t warns_before = warnings_.size();
    if ((b.gfp & __GFP_COMP) && b.order > 0 && via_tail)
      put_page(m_, b.page + (n - 1));  // a tail reference frees the compound page
    else
      free_pages(m_, b.page, b.order);
    EXPECT_EQ(warnings_.size(), warns_before)
        << "freeing a live block warned: " << (warnings_.empty() ? "" : warnings_.back());
  }

  void free_all() {
    while (!live_.empty()) free(live_.size() - 1, false);
  }

  const std::vector<uint8_t>& owned() const { return owned_; }

 private:
  void write_tags(const Block& b) {
    for (uint64_t i = 0; i < (uint64_t{1} << b.order); ++i) {
      char* page = m_.phys_window(b.pfn + i);
      const uint64_t t = b.tag << 16 | i;
      std::memcpy(page, &t, 8);
      const uint64_t u = ~t;
      std::memcpy(page + PAGE_SIZE - 8, &u, 8);
    }
  }
  void verify_tags(const Block& b) {
    for (uint64_t i = 0; i < (uint64_t{1} << b.order); ++i) {
      const char* page = m_.phys_window(b.pfn + i);
      uint64_t t, u;
      std::memcpy(&t, page, 8);
      std::memcpy(&u, page + PAGE_SIZE - 8, 8);
      if (t != (b.tag << 16 | i) || u != ~(b.tag << 16 | i)) {
        ADD_FAILURE() << "block pfn " << b.pfn << " order " << b.order << " page " << i
                      << " was overwritten while allocated";
        return;
      }
    }
  }

  Machine& m_;
  std::vector<uint8_t> owned_;
  std::vector<Block> live_;
  uint64_t live_pages_ = 0;
  uint64_t next_tag_ = 0;
  std::vector<std::string> warnings_;
};

std::string fmt_zone(const Zone& z) {
  return "node " + std::to_string(z.node) + " " + std::string(z.name) + ": free " +
         std::to_string(z.nr_free()) + " min " + std::to_string(z.min_wmark()) + " low " +
         std::to_string(z.low_wmark()) + " highatomic " + std::to_string(z.nr_reserved_highatomic);
}

uint64_t total_pcp_pages(Machine& m) {
  uint64_t n = 0;
  m.for_each_zone([&](const Zone& z) { n += z.populated() ? zone_pcp_pages(z) : 0; });
  return n;
}

void run_random_sequence(uint64_t seed, int steps) {
  SCOPED_TRACE(seed_note(seed));
  auto booted = boot(small_two_node());
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  ASSERT_EQ(check(m), "");
  const uint64_t boot_free = nr_free_pages(m);
  Harness h(m);
  std::mt19937_64 rng(seed);
  std::optional<CpuScope> scope;  // unbound, cpu 0 or cpu 1
  const uint64_t budget = m.totalram_pages() * 6 / 10;

  static constexpr gfp_t kBases[] = {GFP_KERNEL,
                                     GFP_ATOMIC,
                                     GFP_HIGHUSER_MOVABLE,
                                     GFP_KERNEL | GFP_DMA,
                                     GFP_KERNEL | GFP_DMA32,
                                     GFP_KERNEL | __GFP_RECLAIMABLE,
                                     GFP_NOWAIT,
                                     GFP_ATOMIC | GFP_DMA};
  int allocs = 0, failures = 0, frees = 0;
  for (int step = 0; step < steps; ++step) {
    const unsigned r = rng() % 100;
    std::string what;
    if (r < 3) {
      if (rng() & 1) {
        drain_local_pages(m);
        what = "drain_local_pages";
      } else {
        const unsigned drained = drain_all_pages(m);
        EXPECT_EQ(drained, m.nr_cpus()) << "single thread: every CPU is free to drain";
        what = "drain_all_pages";
      }
    } else if (r < 6) {
      scope.reset();
      const unsigned to = rng() % 3;
      if (to < 2) {
        auto s = CpuScope::bind(m, static_cast<int>(to));
        ASSERT_TRUE(s.ok()) << s.error().message;
        scope.emplace(std::move(s.value()));
      }
      what = to < 2 ? "bind cpu " + std::to_string(to) : std::string("unbind");
    } else if (!h.live().empty() && (r < 50 || h.live_pages() > budget)) {
      const size_t i = rng() % h.live().size();
      what = "free order " + std::to_string(h.live()[i].order);
      h.free(i, rng() & 1);
      ++frees;
    } else {
      const unsigned u = rng() % 16;
      const unsigned order = u < 8 ? 0 : u < 12 ? 1 + rng() % 3 : 4 + rng() % 7;
      gfp_t gfp = kBases[rng() % std::size(kBases)];
      if (rng() % 4 == 0) gfp |= __GFP_ZERO;
      if (rng() % 3 == 0) gfp |= __GFP_COMP;
      if (rng() % 2 == 0) gfp |= __GFP_NOWARN;
      if (rng() % 8 == 0) gfp |= __GFP_COLD;
      int nid = NUMA_NO_NODE;
      if (rng() % 5 == 0) {
        gfp |= __GFP_THISNODE;
        nid = static_cast<int>(rng() % 2);
      } else if (rng() % 4 == 0) {
        nid = static_cast<int>(rng() % 2);
      }
      what = "alloc order " + std::to_string(order) + " " + format_gfp(gfp) + " nid " +
             std::to_string(nid);
      ++allocs;
      if (!h.alloc(gfp, order, nid)) ++failures;
    }
    const std::string err = check(m);
    ASSERT_EQ(err, "") << "after step " << step << ": " << what;
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "stopping at step " << step << ": " << what;
      return;
    }
  }
  EXPECT_GT(allocs - failures, allocs / 2) << "most allocations should succeed";
  EXPECT_GT(frees, 0);

  scope.reset();
  h.free_all();
  ASSERT_EQ(check(m), "");
  EXPECT_EQ(drain_all_pages(m), m.nr_cpus());
  EXPECT_EQ(total_pcp_pages(m), 0u);
  EXPECT_EQ(nr_free_pages(m), boot_free);
  EXPECT_EQ(check(m), "");
  EXPECT_EQ(m.bad_pages.get(), 0);
  for (const std::string& w : h.warnings()) {
    EXPECT_EQ(w.find("Bad page"), std::string::npos) << w;
  }
}

TEST(BuddyRandom, MixedOrdersAndFlags) {
  for (uint64_t seed : seeds({1, 2})) {
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
    run_random_sequence(seed, random_steps(400));
    if (HasFatalFailure()) return;
  }
}

// --- near OOM ---------------------------------------------------------------------

// Linux's __zone_watermark_ok() for the MIN watermark, written out here:
// `alloc_flags` reductions as in mm/page_alloc.c.
bool min_wmark_passes(Machine& m, const Zone& z, unsigned order, unsigned highest, bool high,
                      bool non_block) {
  int64_t min = static_cast<int64_t>(z.min_wmark());
  int64_t free = z.nr_free() - ((int64_t{1} << order) - 1);
  const bool reserves = high || non_block;
  if (!reserves) free -= static_cast<int64_t>(z.nr_reserved_highatomic);
  if (high) {
    min -= min / 2;
    if (non_block) min -= min / 4;
  }
  if (free <= min + static_cast<int64_t>(z.lowmem_reserve[highest])) return false;
  if (order == 0) return true;
  bool block = false;
  walk_free_blocks(m, [&](const Zone& bz, uint64_t, unsigned o, unsigned mt) {
    if (&bz == &z && o >= order &&
        (mt < MIGRATE_PCPTYPES || (non_block && mt == MIGRATE_HIGHATOMIC)))
      block = true;
  });
  return block;
}

// The zones a request from `nid` may use: the node's fallback zonelist up to
// the allowed index.
std::vector<const Zone*> usable_zones(Machine& m, int nid, unsigned highest) {
  std::vector<const Zone*> out;
  for (Zone* const* zp = m.node(nid).zonelist_fallback; *zp; ++zp)
    if ((*zp)->idx <= highest) out.push_back(*zp);
  return out;
}

// Unbound order-0 allocations: no per-CPU lists, so the end state is exact.
// GFP_KERNEL stops when every usable zone has free == min + lowmem_reserve;
// GFP_ATOMIC then goes on to min - min/2 - (min - min/2)/4 (+ reserve).
TEST(BuddyNearOom, OrderZeroStopsExactlyAtTheWatermark) {
  auto booted = boot(near_oom_machine());
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  const uint64_t boot_free = nr_free_pages(m);
  Harness h(m);
  const unsigned highest = allowed_zone_idx(m.arch(), GFP_KERNEL);
  const auto zones = usable_zones(m, 0, highest);
  ASSERT_EQ(zones.size(), 3u);  // DMA32 n0, DMA n0, DMA32 n1

  int n = 0;
  while (h.alloc(GFP_KERNEL | __GFP_NOWARN, 0, 0)) {
    if (++n % 512 == 0) {
      ASSERT_EQ(check(m), "");
    }
  }
  ASSERT_EQ(check(m), "");
  for (const Zone* z : zones) {
    SCOPED_TRACE(fmt_zone(*z));
    EXPECT_EQ(z->nr_reserved_highatomic, 0u);
    EXPECT_EQ(static_cast<uint64_t>(z->nr_free()), z->min_wmark() + z->lowmem_reserve[highest]);
    EXPECT_FALSE(min_wmark_passes(m, *z, 0, highest, false, false));
  }
  EXPECT_GT(m.node(0).kswapd_wakeups.get(), 0);
  EXPECT_GT(m.node(1).kswapd_wakeups.get(), 0);

  // GFP_ATOMIC digs into the MIN reserve: half, then a quarter of the rest.
  const int before_atomic = n;
  while (h.alloc(GFP_ATOMIC | __GFP_NOWARN, 0, 0)) ++n;
  EXPECT_GT(n, before_atomic);
  ASSERT_EQ(check(m), "");
  for (const Zone* z : zones) {
    SCOPED_TRACE(fmt_zone(*z));
    uint64_t min = z->min_wmark();
    min -= min / 2;
    min -= min / 4;
    EXPECT_EQ(static_cast<uint64_t>(z->nr_free()), min + z->lowmem_reserve[highest]);
    EXPECT_FALSE(min_wmark_passes(m, *z, 0, highest, true, true));
  }
  EXPECT_EQ(h.alloc(GFP_KERNEL | __GFP_NOWARN, 0, 1), nullptr);

  // The DMA zone still holds lowmem_reserve[Normal] pages back from requests
  // that could have used a higher zone; a GFP_DMA request (highest zone DMA,
  // lowmem_reserve[DMA] = 0) may take them, down to its own mark: GFP_KERNEL
  // is already below MIN there, GFP_ATOMIC goes on to its reduced MIN.
  const Zone& dma = m.node(0).zones[0];
  ASSERT_GT(dma.lowmem_reserve[highest], 0u);
  ASSERT_EQ(dma.lowmem_reserve[0], 0u);
  uint64_t dma_min = dma.min_wmark();
  ASSERT_LE(static_cast<uint64_t>(dma.nr_free()), dma_min);
  EXPECT_EQ(h.alloc(GFP_KERNEL | GFP_DMA | __GFP_NOWARN, 0, 0), nullptr);
  const int before_dma = n;
  while (h.alloc(GFP_ATOMIC | GFP_DMA | __GFP_NOWARN, 0, 0)) ++n;
  EXPECT_GT(n, before_dma);
  dma_min -= dma_min / 2;
  dma_min -= dma_min / 4;
  EXPECT_EQ(static_cast<uint64_t>(dma.nr_free()), dma_min) << fmt_zone(dma);
  ASSERT_EQ(check(m), "");

  h.free_all();
  EXPECT_EQ(nr_free_pages(m), boot_free);
  EXPECT_EQ(check(m), "");
}

// Bound to a CPU, mixed orders: every failure must find each usable zone
// failing the MIN check for that order (free pages or a big enough block).
TEST(BuddyNearOom, MixedOrdersFailOnlyBelowWatermarks) {
  for (uint64_t seed : seeds({7})) {
    SCOPED_TRACE(seed_note(seed));
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
    auto booted = boot(near_oom_machine());
    ASSERT_TRUE(booted.ok()) << booted.error().message;
    Machine& m = **booted;
    const uint64_t boot_free = nr_free_pages(m);
    Harness h(m);
    std::mt19937_64 rng(seed);
    {
      auto s = CpuScope::bind(m, 1);
      ASSERT_TRUE(s.ok());
      const gfp_t gfp = GFP_HIGHUSER_MOVABLE | __GFP_NOWARN;
      const unsigned highest = allowed_zone_idx(m.arch(), gfp);
      const auto zones = usable_zones(m, 1, highest);
      int consecutive_failures = 0, failures = 0, step = 0;
      while (consecutive_failures < 12) {
        const unsigned order = rng() % 4 ? static_cast<unsigned>(rng() % 11) : 0;
        if (h.alloc(gfp, order, NUMA_NO_NODE)) {
          consecutive_failures = 0;
        } else {
          ++consecutive_failures;
          ++failures;
          // The slow path drained every CPU's lists before giving up.
          EXPECT_EQ(total_pcp_pages(m), 0u);
          for (const Zone* z : zones) {
            EXPECT_FALSE(min_wmark_passes(m, *z, order, highest, false, false))
                << fmt_zone(*z) << " could have served order " << order;
          }
        }
        if (++step % 64 == 0 || consecutive_failures) {
          ASSERT_EQ(check(m), "") << "step " << step;
        }
      }
      EXPECT_GT(failures, 0);
      // Order 0 until failure: then every zone is at or below its MIN mark.
      while (h.alloc(gfp, 0, NUMA_NO_NODE)) {
      }
      for (const Zone* z : zones) {
        EXPECT_LE(static_cast<uint64_t>(z->nr_free()), z->min_wmark() + z->lowmem_reserve[highest])
            << fmt_zone(*z);
      }
      ASSERT_EQ(check(m), "");
      h.free_all();
    }
    EXPECT_EQ(drain_all_pages(m), m.nr_cpus());
    EXPECT_EQ(nr_free_pages(m), boot_free);
    EXPECT_EQ(check(m), "");
  }
}

}  // namespace
}  // namespace mmkit
