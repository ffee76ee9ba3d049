// The pieces `mmsim run` and `mmsim replay` verify with: page permutations
// are bijections, each pattern visits the pages it promises, the Zipf
// sampler's ranks follow 1/r^theta, and a verified page access notices a
// changed byte, a stale version and a page that should be zeros.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../support/boot.h"
#include "access_pattern.h"
#include "page_access.h"
#include "page_data.h"
#include "vm/process.h"

namespace mmsim {
namespace {

JobSpec spec(Pattern p, double theta = 0) {
  JobSpec j;
  j.name = "t";
  j.pattern = p;
  j.zipf_theta = theta;
  return j;
}

TEST(MmsimPattern, PermutationIsABijection) {
  for (uint64_t n : {1u, 2u, 3u, 7u, 64u, 1000u, 4097u}) {
    PagePermutation perm(n, 42 + n);
    std::vector<bool> seen(n);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t p = perm(i);
      ASSERT_LT(p, n);
      EXPECT_FALSE(seen[p]) << "n=" << n << " i=" << i;
      seen[p] = true;
    }
  }
}

TEST(MmsimPattern, SeqAndRandomVisitEveryPageOncePerPass) {
  constexpr uint64_t n = 1000;
  for (Pattern p : {Pattern::kSeq, Pattern::kRandom}) {
    AccessStream s(spec(p), n, 1, 0, 0, 1);
    std::vector<uint64_t> first;
    for (int pass = 0; pass < 3; ++pass) {
      std::vector<int> count(n);
      std::vector<uint64_t> order;
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t page = s.next();
        ASSERT_LT(page, n);
        ++count[page];
        order.push_back(page);
      }
      for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(count[i], 1) << "page " << i;
      if (p == Pattern::kSeq) {
        EXPECT_EQ(order[0], 0u);
      }
      if (pass == 0) first = order;
      if (p == Pattern::kRandom && pass > 0) {
        EXPECT_NE(order, first);  // a fresh order each pass
      }
    }
  }
}

TEST(MmsimPattern, LoopStartsEachProcessAtItsOwnOffset) {
  AccessStream a(spec(Pattern::kLoop), 100, 1, 0, 0, 4);
  AccessStream b(spec(Pattern::kLoop), 100, 1, 0, 1, 4);
  EXPECT_EQ(a.next(), 0u);
  EXPECT_EQ(b.next(), 25u);
  for (int i = 0; i < 74; ++i) b.next();
  EXPECT_EQ(b.next(), 0u);  // wrapped around
}

TEST(MmsimPattern, ZipfRanksFollowThePowerLaw) {
  for (double theta : {0.5, 0.9, 1.0, 1.5}) {
    ZipfSampler z(1000, theta);
    Rng rng(3);
    std::vector<uint64_t> count(1001);
    constexpr int kDraws = 200000;
    for (int i = 0; i < kDraws; ++i) {
      const uint64_t r = z(rng);
      ASSERT_GE(r, 1u);
      ASSERT_LE(r, 1000u);
      ++count[r];
    }
    // P(1)/P(2) = 2^theta and P(1)/P(4) = 4^theta, within sampling noise.
    EXPECT_NEAR(static_cast<double>(count[1]) / count[2], std::pow(2, theta),
                0.1 * std::pow(2, theta))
        << theta;
    EXPECT_NEAR(static_cast<double>(count[1]) / count[4], std::pow(4, theta),
                0.15 * std::pow(4, theta))
        << theta;
  }
}

TEST(MmsimPattern, ZipfHotPagesAreSpreadAndSharedByTheJob) {
  AccessStream a(spec(Pattern::kZipf, 1.2), 4096, 9, 3, 0, 2);
  AccessStream b(spec(Pattern::kZipf, 1.2), 4096, 9, 3, 1, 2);
  std::vector<int> ca(4096), cb(4096);
  for (int i = 0; i < 50000; ++i) ++ca[a.next()], ++cb[b.next()];
  const auto hottest = [](const std::vector<int>& c) {
    return static_cast<uint64_t>(std::max_element(c.begin(), c.end()) - c.begin());
  };
  EXPECT_EQ(hottest(ca), hottest(cb));  // one ranking per job
  EXPECT_NE(hottest(ca), 0u);           // not packed at the start (for this seed)
}

TEST(MmsimPattern, PageKeysDifferAndVersionZeroIsZeros) {
  EXPECT_EQ(page_key(1, 0, 0, 5, 0), 0u);
  EXPECT_NE(page_key(1, 0, 0, 5, 1), page_key(1, 0, 0, 5, 2));
  EXPECT_NE(page_key(1, 0, 0, 5, 1), page_key(1, 0, 1, 5, 1));
  EXPECT_NE(page_key(1, 0, 0, 5, 1), page_key(2, 0, 0, 5, 1));
  EXPECT_NE(page_key(1, 0, 0, 5, 1), page_key(1, 0, 0, 6, 1));
  alignas(64) char page[kPageBytes];
  uint8_t want, got;
  fill_page(page, 0);
  EXPECT_EQ(check_page(page, 0, &want, &got), -1);
  fill_page(page, 1234);
  EXPECT_EQ(check_page(page, 1234, &want, &got), -1);
  page[4095] ^= 1;
  EXPECT_EQ(check_page(page, 1234, &want, &got), 4095);
  EXPECT_EQ(want ^ got, 1);
}

TEST(MmsimPattern, VerifiedAccessCatchesCorruption) {
  auto m = mmkit::test::boot_or_fail(mmkit::test::one_node(64));
  ASSERT_TRUE(m);
  auto cpu = mmkit::CpuScope::bind(*m, 0);
  ASSERT_TRUE(cpu.ok());
  mmkit::Process* p = nullptr;
  ASSERT_EQ(mmkit::spawn(*m, "t", &p), 0);
  const int64_t a = mmkit::do_mmap(p->mm, 0, 2 * kPageBytes, mmkit::PROT_READ | mmkit::PROT_WRITE,
                                   mmkit::MAP_PRIVATE | mmkit::MAP_ANONYMOUS);
  ASSERT_GT(a, 0);
  const uint64_t addr = static_cast<uint64_t>(a);
  EXPECT_TRUE(read_page(p->mm, addr + kPageBytes, 0).ok());  // never written: zeros
  ASSERT_TRUE(write_page(p->mm, addr, 77).ok());
  EXPECT_TRUE(read_page(p->mm, addr, 77).ok());
  EXPECT_EQ(read_page(p->mm, addr, 78).bad_offset, 0);  // a stale or foreign version
  const char poke = 0x5a;
  ASSERT_TRUE(mmkit::access_write(p->mm, addr + 100, &poke, 1).ok());
  const PageAccess r = read_page(p->mm, addr, 77);
  EXPECT_EQ(r.bad_offset, 100);
  EXPECT_EQ(r.actual, 0x5a);
  EXPECT_EQ(read_page(p->mm, addr + 2 * kPageBytes, 0).fault.status, mmkit::FaultStatus::kSigsegv);
  mmkit::exit_process(p);
}

}  // namespace
}  // namespace mmsim
