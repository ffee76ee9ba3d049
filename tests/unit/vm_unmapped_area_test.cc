// get_unmapped_area's search cache (free_area_cache, cached_hole_size)
// against a plain walk over every gap: after seeded random sequences of
// hintless and fixed mmaps (stacks with guard gaps among them), munmaps,
// mprotects and mremaps, every hintless mmap lands exactly where the
// highest fitting gap below mmap_base is, and check() (which proves the
// cache's invariant) holds after every step. Then the case the cache is
// for: tens of thousands of VMAs that cannot merge, laid out top-down.
#include <gtest/gtest.h>

#include <random>

#include "page_alloc/page_alloc.h"
#include "vm/mm.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

// The highest address below mmap_base where len bytes fit, by walking every
// gap from the top (what the search did before it had a cache); 0 if none.
uint64_t highest_fit(MmStruct* mm, uint64_t len) {
  const uint64_t low = mm_internal::mmap_search_low(), high = mm->mmap_base;
  uint64_t gap_hi = mm->layout.task_size;
  for (auto it = mm->mm_mt.rbegin();; ++it) {
    const bool last = it == mm->mm_mt.rend();
    if (mm_internal::gap_within(last ? 0 : it->second->vm_end, gap_hi, low, high) >= len)
      return std::min(gap_hi, high) - len;
    if (last) return 0;
    gap_hi = mm_internal::vm_start_gap(it->second);
  }
}

class UnmappedArea : public ::testing::TestWithParam<uint32_t> {};

TEST_P(UnmappedArea, CachedSearchFindsTheHighestFittingGap) {
  auto m = test::boot_or_fail(test::one_node(64));
  ASSERT_TRUE(m);
  MmStruct* mm = mm_alloc(*m);
  ASSERT_NE(mm, nullptr);
  std::mt19937_64 rng(GetParam());
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  // Fixed mappings and unmaps fall in the 64 MiB below mmap_base and the
  // 8 MiB above it, where hintless mmaps do not go.
  const uint64_t arena_lo = mm->mmap_base - (64ull << 20), arena_pages = (72ull << 20) / kPage;
  auto arena_addr = [&] { return arena_lo + pick(arena_pages) * kPage; };
  unsigned searched = 0;
  for (unsigned step = 0; step < 3000; ++step) {
    const uint64_t len = (1 + pick(pick(4) ? 8 : 256)) * kPage;
    const int prot = pick(2) ? PROT_READ : PROT_READ | PROT_WRITE;
    const uint64_t op = pick(8);
    switch (op) {
      case 0:
      case 1:
      case 2: {  // hintless: the cached search must agree with the full walk
        const uint64_t want = highest_fit(mm, len);
        const int64_t got = do_mmap(mm, 0, len, prot, kAnon);
        if (want) {
          ASSERT_EQ(got, static_cast<int64_t>(want)) << "step " << step << " len " << len;
          ++searched;
        }
        break;
      }
      case 3:  // fixed, sometimes a stack with its guard gap below it
        do_mmap(mm, arena_addr(), len, prot, kAnon | MAP_FIXED | (pick(4) ? 0 : MAP_GROWSDOWN));
        break;
      case 4:
      case 5:
        do_munmap(mm, arena_addr(), len);
        break;
      case 6:
        do_mprotect(mm, arena_addr(), len, prot);
        break;
      case 7: {  // resize a mapping in place or move it
        VmArea* vma = find_vma(mm, arena_addr());
        if (vma && !(vma->vm_flags & VM_GROWSDOWN))
          do_mremap(mm, vma->vm_start, vma->vm_end - vma->vm_start, len, MREMAP_MAYMOVE);
        break;
      }
    }
    ASSERT_EQ(check(mm), "") << "step " << step << " op " << op;
  }
  EXPECT_GT(searched, 500u);  // the comparison above really ran
  mmput(mm);
  EXPECT_EQ(check(*m), "");
}

INSTANTIATE_TEST_SUITE_P(Seeds, UnmappedArea, ::testing::Values(1u, 2u, 3u, 4u));

TEST(UnmappedAreaScale, ThirtyThousandUnmergeableVmasStackDownward) {
  auto m = test::boot_or_fail(test::one_node(64));
  ASSERT_TRUE(m);
  MmStruct* mm = mm_alloc(*m);
  ASSERT_NE(mm, nullptr);
  // Alternating protections: no two neighbours merge, so each mmap adds a
  // VMA below all the others (a walk from the top would pass every one).
  constexpr int kVmas = 30000;
  uint64_t expect = mm->mmap_base;
  for (int i = 0; i < kVmas; ++i) {
    expect -= kPage;
    ASSERT_EQ(do_mmap(mm, 0, kPage, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE, kAnon),
              static_cast<int64_t>(expect))
        << i;
  }
  EXPECT_EQ(mm->map_count, kVmas);
  // A hole in the middle is found again, then the bottom is used once more.
  const uint64_t hole = mm->mmap_base - 1000 * kPage;
  ASSERT_EQ(do_munmap(mm, hole, kPage), 0);
  EXPECT_EQ(do_mmap(mm, 0, kPage, PROT_READ | PROT_EXEC, kAnon), static_cast<int64_t>(hole));
  EXPECT_EQ(do_mmap(mm, 0, 2 * kPage, PROT_READ, kAnon), static_cast<int64_t>(expect - 2 * kPage));
  EXPECT_EQ(check(mm), "");
  mmput(mm);
}

}  // namespace
}  // namespace mmkit
