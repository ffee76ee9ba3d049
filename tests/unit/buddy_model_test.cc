// Model-based test of the page allocator against a trivial reference.
//
// The reference knows only which frames are allocated (one bit per pfn,
// set on a successful alloc_pages, cleared on free_pages). After every random
// operation the test rebuilds mmkit's view from its own structures (the free
// blocks by walk_free_blocks, plus every CPU's per-CPU lists) and asserts
// that each managed frame is in exactly one of the two places, that no
// unavailable frame (hole, reserved range, memmap) is in either, and that
//   nr_free_pages + per-CPU pages + model-allocated pages == managed pages.
// A returned block must never overlap one the model holds. This pins down
// the allocator's bookkeeping independently of check()'s own invariants.
//
// The merge test frees every page of a zone one by one in random order and
// asserts the free lists come back to the boot state exactly: maximal blocks,
// as buddyinfo would show them.
//
// MMKIT_SEED=<n> replays a seed; the seed is printed with each test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

uint64_t seed_or(uint64_t dflt) {
  const char* env = std::getenv("MMKIT_SEED");
  if (!env || !*env) return dflt;
  if (std::string(env) == "random") return std::random_device{}();
  return std::strtoull(env, nullptr, 0);
}

// The reference allocator: which frames are handed out.
struct Model {
  std::vector<uint8_t> allocated;
  uint64_t pages = 0;
  struct Block {
    Page* page;
    uint64_t pfn;
    unsigned order;
  };
  std::vector<Block> blocks;

  explicit Model(uint64_t max_pfn) : allocated(max_pfn, false) {}
  bool overlaps(uint64_t pfn, unsigned order) const {
    for (uint64_t i = 0; i < (uint64_t{1} << order); ++i)
      if (allocated[pfn + i]) return true;
    return false;
  }
  void take(Page* p, uint64_t pfn, unsigned order) {
    for (uint64_t i = 0; i < (uint64_t{1} << order); ++i) allocated[pfn + i] = true;
    pages += uint64_t{1} << order;
    blocks.push_back({p, pfn, order});
  }
  Block give_back(size_t i) {
    Block b = blocks[i];
    blocks[i] = blocks.back();
    blocks.pop_back();
    for (uint64_t k = 0; k < (uint64_t{1} << b.order); ++k) allocated[b.pfn + k] = false;
    pages -= uint64_t{1} << b.order;
    return b;
  }
};

// Frames mmkit holds as free: buddy free blocks and every per-CPU list.
// Returns "" or the first inconsistency met while building the map.
std::string mmkit_free_frames(Machine& m, std::vector<uint8_t>& free) {
  free.assign(m.max_pfn(), false);
  std::string err;
  auto mark = [&](uint64_t pfn, unsigned order, const char* where) {
    for (uint64_t i = 0; i < (uint64_t{1} << order); ++i) {
      if (pfn + i >= free.size()) {
        if (err.empty()) err = std::string(where) + " block past the end of RAM";
        return;
      }
      if (free[pfn + i] && err.empty())
        err = std::string(where) + ": pfn " + std::to_string(pfn + i) + " free twice";
      free[pfn + i] = true;
    }
  };
  walk_free_blocks(
      m, [&](const Zone&, uint64_t pfn, unsigned order, unsigned) { mark(pfn, order, "buddy"); });
  m.for_each_zone([&](Zone& z) {
    if (!z.populated()) return;
    for (unsigned c = 0; c < m.nr_cpus(); ++c)
      for (unsigned pi = 0; pi < NR_PCP_LISTS; ++pi)
        for (ListHead* l = z.pcp[c].lists[pi].next; l != &z.pcp[c].lists[pi]; l = l->next)
          mark(m.page_to_pfn(container_of(l, &Page::lru)), pindex_to_order(pi), "pcp");
  });
  return err;
}

bool is_unavailable(const Machine& m, uint64_t pfn) {
  for (auto [s, e] : m.unavailable())
    if (pfn >= s && pfn < e) return true;
  return false;
}

uint64_t pcp_pages(Machine& m) {
  uint64_t n = 0;
  m.for_each_zone([&](const Zone& z) { n += z.populated() ? zone_pcp_pages(z) : 0; });
  return n;
}

// Compares mmkit with the model frame by frame. `unavail` caches is_unavailable.
// One pass with plain comparisons (this runs after every step, under ASan too).
void expect_agrees(Machine& m, const Model& model, const std::vector<uint8_t>& unavail,
                   const std::string& when) {
  std::vector<uint8_t> free;
  const std::string err = mmkit_free_frames(m, free);
  ASSERT_EQ(err, "") << when;
  for (uint64_t pfn = 0; pfn < m.max_pfn(); ++pfn) {
    const bool f = free[pfn], a = model.allocated[pfn];
    if (unavail[pfn] ? !(f || a) : f != a) continue;
    if (unavail[pfn])
      FAIL() << when << ": unavailable pfn " << pfn << (f ? " is free" : " was allocated");
    FAIL() << when << ": pfn " << pfn
           << (f ? " is both free and allocated" : " is neither free nor allocated (leaked)");
  }
  ASSERT_EQ(nr_free_pages(m) + pcp_pages(m) + model.pages, m.totalram_pages()) << when;
}

// 24 MiB x86_64, 2 CPUs, with a hole and a reserved range so that
// unavailable frames sit inside zones:
//   DMA [0, 4096), DMA32 [4096, 6144) with hole pfn [4608, 4864) (1 MiB at
//   18 MiB) and reserved pfn [5632, 5635) (12 KiB at 22 MiB); memmap
//   6144 * 64 / 4096 = 96 frames at the top of DMA32.
MachineConfig model_machine() {
  MachineConfig c;
  c.cpus = 2;
  NodeConfig n;
  n.memory = 24 * kMiB;
  n.holes = {MemRange{18 * kMiB, 1 * kMiB}};
  n.reserved = {MemRange{22 * kMiB, 12 * 1024}};
  c.nodes.push_back(n);
  return c;
}

TEST(BuddyModel, RandomOpsAgreeWithReference) {
  const uint64_t seed = seed_or(11);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: MMKIT_SEED=" + std::to_string(seed) +
               ")");
  RecordProperty("seed", std::to_string(seed));
  auto booted = boot(model_machine());
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  set_warn_sink(m, [](const std::string& s) { ADD_FAILURE() << "unexpected warning: " << s; });

  std::vector<uint8_t> unavail(m.max_pfn());
  uint64_t n_unavail = 0;
  for (uint64_t pfn = 0; pfn < m.max_pfn(); ++pfn)
    n_unavail += unavail[pfn] = is_unavailable(m, pfn);
  // 256 hole frames + 3 reserved + 96 memmap.
  ASSERT_EQ(n_unavail, 256u + 3u + 96u);
  ASSERT_EQ(m.totalram_pages(), m.max_pfn() - n_unavail);

  Model model(m.max_pfn());
  expect_agrees(m, model, unavail, "at boot");
  std::mt19937_64 rng(seed);
  std::optional<CpuScope> scope;
  static constexpr gfp_t kGfp[] = {GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_RECLAIMABLE,
                                   GFP_ATOMIC, GFP_KERNEL | GFP_DMA};
  for (int step = 0; step < 800; ++step) {
    const unsigned r = rng() % 100;
    std::string what;
    if (r < 4) {
      scope.reset();
      if (rng() % 3) {
        auto s = CpuScope::bind(m, static_cast<int>(rng() % 2));
        ASSERT_TRUE(s.ok());
        scope.emplace(std::move(s.value()));
      }
      what = scope ? "bind" : "unbind";
    } else if (r < 7) {
      if (r & 1)
        drain_local_pages(m);
      else
        drain_all_pages(m);
      what = "drain";
    } else if (!model.blocks.empty() && (r < 50 || model.pages > m.totalram_pages() / 2)) {
      Model::Block b = model.give_back(rng() % model.blocks.size());
      free_pages(m, b.page, b.order);
      what = "free pfn " + std::to_string(b.pfn) + " order " + std::to_string(b.order);
    } else {
      const unsigned order =
          rng() % 3 ? static_cast<unsigned>(rng() % 4) : static_cast<unsigned>(rng() % 11);
      const gfp_t gfp = kGfp[rng() % std::size(kGfp)] | __GFP_NOWARN;
      Page* p = alloc_pages(m, gfp, order);
      what = "alloc order " + std::to_string(order) + " " + format_gfp(gfp);
      if (p) {
        const uint64_t pfn = m.page_to_pfn(p);
        ASSERT_FALSE(model.overlaps(pfn, order))
            << what << " returned pfn " << pfn << ", which overlaps an allocated block";
        model.take(p, pfn, order);
      }
    }
    expect_agrees(m, model, unavail, "step " + std::to_string(step) + " " + what);
    if (HasFatalFailure()) return;
  }
  scope.reset();
  while (!model.blocks.empty()) {
    Model::Block b = model.give_back(model.blocks.size() - 1);
    free_pages(m, b.page, b.order);
  }
  drain_all_pages(m);
  expect_agrees(m, model, unavail, "after freeing everything");
  EXPECT_EQ(pcp_pages(m), 0u);
  EXPECT_EQ(nr_free_pages(m), m.totalram_pages());
  EXPECT_EQ(check(m), "");
}

using FreeList =
    std::vector<std::tuple<int, unsigned, uint64_t, unsigned>>;  // node, zone, pfn, order

FreeList free_blocks(Machine& m) {
  FreeList out;
  walk_free_blocks(m, [&](const Zone& z, uint64_t pfn, unsigned order, unsigned) {
    out.emplace_back(z.node, z.idx, pfn, order);
  });
  std::sort(out.begin(), out.end());
  return out;
}

// buddyinfo of one zone: free blocks per order.
std::vector<uint64_t> buddyinfo(Machine& m, const Zone& zone) {
  std::vector<uint64_t> counts(NR_PAGE_ORDERS, 0);
  walk_free_blocks(m, [&](const Zone& z, uint64_t, unsigned order, unsigned) {
    if (&z == &zone) ++counts[order];
  });
  return counts;
}

// x86_64 32 MiB, 1 CPU, min_free_kbytes 1 and watermark_scale_factor 1, so
// every watermark of the DMA zone is 0 and all of it can be allocated:
//   DMA [0, 4096): managed 4096 = four order-10 blocks at boot;
//   DMA32 [4096, 8192): memmap 8192 * 64 / 4096 = 128 frames at the top ->
//   3968 = 3 x order 10 + order 9 + order 8 + order 7.
MachineConfig merge_machine() {
  MachineConfig c;
  c.cpus = 1;
  c.min_free_kbytes = 1;
  c.watermark_scale_factor = 1;
  NodeConfig n;
  n.memory = 32 * kMiB;
  c.nodes.push_back(n);
  return c;
}

void run_merge(bool free_bound, uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) + (free_bound ? " freeing on cpu 0" : " unbound"));
  auto booted = boot(merge_machine());
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  const Zone& dma = m.node(0).zones[0];
  const Zone& dma32 = m.node(0).zones[1];
  ASSERT_EQ(dma.managed(), 4096u);
  ASSERT_EQ(dma.min_wmark(), 0u);
  ASSERT_EQ(dma.low_wmark(), 0u);
  const FreeList boot_state = free_blocks(m);
  EXPECT_EQ(buddyinfo(m, dma), (std::vector<uint64_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}));
  EXPECT_EQ(buddyinfo(m, dma32), (std::vector<uint64_t>{0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 3}));

  // Allocate every page of the DMA zone, unbound (straight from the buddy lists).
  std::vector<Page*> pages;
  std::vector<uint8_t> seen(4096, false);
  for (int i = 0; i < 4096; ++i) {
    Page* p = alloc_pages(m, GFP_KERNEL | GFP_DMA | __GFP_NOWARN, 0);
    ASSERT_NE(p, nullptr) << "page " << i;
    const uint64_t pfn = m.page_to_pfn(p);
    ASSERT_LT(pfn, 4096u);
    ASSERT_FALSE(seen[pfn]) << "pfn " << pfn << " twice";
    seen[pfn] = true;
    pages.push_back(p);
  }
  EXPECT_EQ(dma.nr_free(), 0);
  EXPECT_EQ(alloc_pages(m, GFP_KERNEL | GFP_DMA | __GFP_NOWARN, 0), nullptr);
  EXPECT_EQ(buddyinfo(m, dma), std::vector<uint64_t>(NR_PAGE_ORDERS, 0));
  ASSERT_EQ(check(m), "");

  std::mt19937_64 rng(seed);
  std::shuffle(pages.begin(), pages.end(), rng);
  {
    std::optional<CpuScope> scope;
    if (free_bound) {
      auto s = CpuScope::bind(m, 0);
      ASSERT_TRUE(s.ok());
      scope.emplace(std::move(s.value()));
    }
    for (size_t i = 0; i < pages.size(); ++i) {
      free_page(m, pages[i]);
      if (i % 256 == 255) {
        ASSERT_EQ(check(m), "") << "after " << i + 1 << " frees";
      }
    }
    drain_local_pages(m);
  }
  ASSERT_EQ(check(m), "");
  EXPECT_EQ(buddyinfo(m, dma), (std::vector<uint64_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}));
  EXPECT_EQ(free_blocks(m), boot_state);
  EXPECT_EQ(nr_free_pages(m), m.totalram_pages());
}

TEST(BuddyModel, FreeingAZoneInRandomOrderMergesBackToMaxOrder) {
  const uint64_t seed = seed_or(5);
  RecordProperty("seed", std::to_string(seed));
  run_merge(false, seed);
  if (HasFatalFailure()) return;
  run_merge(true, seed + 1);
}

}  // namespace
}  // namespace mmkit
