// XArray, the page cache's index: random stores, erases and scans checked
// against an ordered map, with XArray::check() after every step; indices
// near the top of the 64-bit space; scans that cross node boundaries and
// stop at their last index; the tree shrinking back to nothing.
#include "base/xarray.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>

namespace mmkit {
namespace {

constexpr uint64_t kMax = ~uint64_t{0};

// The model's answer to find(*index, last).
uintptr_t model_find(const std::map<uint64_t, uintptr_t>& model, uint64_t* index, uint64_t last) {
  auto it = model.lower_bound(*index);
  if (it == model.end() || it->first > last) return 0;
  *index = it->first;
  return it->second;
}

TEST(XArray, EmptyTree) {
  XArray xa;
  uint64_t i = 0;
  EXPECT_EQ(xa.load(0), 0u);
  EXPECT_EQ(xa.load(kMax), 0u);
  EXPECT_EQ(xa.find(&i, kMax), 0u);
  EXPECT_EQ(xa.erase(5), 0u);
  EXPECT_TRUE(xa.empty());
  EXPECT_EQ(xa.check(), "");
}

TEST(XArray, StoreReturnsTheOldEntryAndZeroErases) {
  XArray xa;
  EXPECT_EQ(xa.store(70, 0x1000), 0u);
  EXPECT_EQ(xa.store(70, 0x2001), 0x1000u);
  EXPECT_EQ(xa.load(70), 0x2001u);
  EXPECT_EQ(xa.size(), 1u);
  EXPECT_EQ(xa.store(70, 0), 0x2001u);
  EXPECT_TRUE(xa.empty());
  EXPECT_EQ(xa.check(), "");
}

TEST(XArray, ExtremeIndicesAndScansAcrossTheWholeSpace) {
  XArray xa;
  const uint64_t keys[] = {0, 63, 64, 4095, 4096, uint64_t{1} << 40, kMax - 64, kMax - 1, kMax};
  for (uint64_t k : keys) {
    xa.store(k, (k << 3) | 8);
    ASSERT_EQ(xa.check(), "") << k;
  }
  uint64_t i = 0, seen = 0;
  while (uintptr_t v = xa.find(&i, kMax)) {
    EXPECT_EQ(i, keys[seen]);
    EXPECT_EQ(v, (i << 3) | 8);
    ++seen;
    if (++i == 0) break;
  }
  EXPECT_EQ(seen, std::size(keys));
  // A scan ending before the next entry finds nothing and leaves *index.
  i = 4097;
  EXPECT_EQ(xa.find(&i, (uint64_t{1} << 40) - 1), 0u);
  EXPECT_EQ(i, 4097u);
  for (uint64_t k : keys) {
    EXPECT_EQ(xa.erase(k), (k << 3) | 8);
    ASSERT_EQ(xa.check(), "") << k;
  }
  EXPECT_TRUE(xa.empty());
}

TEST(XArray, ForEachVisitsInOrder) {
  XArray xa;
  std::map<uint64_t, uintptr_t> model;
  for (uint64_t k = 3; k < 100000; k += 997) {
    xa.store(k, k + 1);
    model[k] = k + 1;
  }
  auto it = model.begin();
  xa.for_each([&](uint64_t index, uintptr_t v) {
    ASSERT_NE(it, model.end());
    EXPECT_EQ(index, it->first);
    EXPECT_EQ(v, it->second);
    ++it;
  });
  EXPECT_EQ(it, model.end());
}

// Random operations against the map, in three index ranges: dense (a small
// file), sparse (a large one), and anywhere.
TEST(XArray, RandomOperationsMatchAnOrderedMap) {
  for (uint64_t span : {uint64_t{300}, uint64_t{1} << 24, kMax}) {
    std::mt19937_64 rng(span);
    XArray xa;
    std::map<uint64_t, uintptr_t> model;
    auto pick = [&] {
      // Half the time reuse a key the model has, so erases and replaces hit.
      if (!model.empty() && rng() % 2) {
        auto it = model.lower_bound(rng() % (span == kMax ? kMax : span));
        if (it != model.end()) return it->first;
      }
      return span == kMax ? rng() : rng() % span;
    };
    for (int step = 0; step < 6000; ++step) {
      const uint64_t k = pick();
      switch (rng() % 4) {
        case 0:
        case 1: {
          const uintptr_t v = (rng() | 1) & 0xffffffffff;
          auto it = model.find(k);
          const uintptr_t old = it == model.end() ? 0 : it->second;
          ASSERT_EQ(xa.store(k, v), old);
          model[k] = v;
          break;
        }
        case 2: {
          auto it = model.find(k);
          const uintptr_t old = it == model.end() ? 0 : it->second;
          ASSERT_EQ(xa.erase(k), old);
          if (it != model.end()) model.erase(it);
          break;
        }
        default: {
          const uint64_t last = rng() % 2 ? kMax : k + rng() % 5000;
          uint64_t a = k, b = k;
          ASSERT_EQ(xa.find(&a, last < k ? kMax : last),
                    model_find(model, &b, last < k ? kMax : last));
          ASSERT_EQ(a, b);
          auto at = model.find(k);
          ASSERT_EQ(xa.load(k), at == model.end() ? 0u : at->second);
        }
      }
      ASSERT_EQ(xa.size(), model.size());
      ASSERT_EQ(xa.check(), "") << "span " << span << " step " << step;
    }
    while (!model.empty()) {
      ASSERT_EQ(xa.erase(model.begin()->first), model.begin()->second);
      model.erase(model.begin());
      ASSERT_EQ(xa.check(), "");
    }
    EXPECT_TRUE(xa.empty());
  }
}

}  // namespace
}  // namespace mmkit
