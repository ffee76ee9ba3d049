// The page patterns (see page_data.h). Word i of a page is key + i * an odd
// constant: two different keys differ in every word, and the fill and the
// check are one pass of adds and compares the compiler vectorises (the
// check ORs the differences and looks for the first only when there is one).
#include "page_data.h"

#include <cstring>
#include <initializer_list>

namespace mmsim {
namespace {

constexpr uint64_t kStep = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio, odd
constexpr unsigned kWords = kPageBytes / 8;

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t page_key(uint64_t seed, uint64_t job, uint64_t writer, uint64_t page, uint64_t version) {
  if (version == 0) return 0;
  uint64_t k = mix(seed ^ 0x6d6d73696d);
  for (uint64_t v : {job, writer, page, version}) k = mix(k ^ v) + kStep;
  return k ? k : 1;
}

void fill_page(char* dst, uint64_t key) {
  if (key == 0) {
    std::memset(dst, 0, kPageBytes);
    return;
  }
  for (unsigned i = 0; i < kWords; ++i) {
    const uint64_t w = key + i * kStep;
    std::memcpy(dst + i * 8, &w, 8);
  }
}

int check_page(const char* src, uint64_t key, uint8_t* expected, uint8_t* actual) {
  auto word = [src](unsigned i) {
    uint64_t w;
    std::memcpy(&w, src + i * 8, 8);
    return w;
  };
  const uint64_t step = key ? kStep : 0;
  uint64_t diff = 0;
  for (unsigned i = 0; i < kWords; ++i) diff |= word(i) ^ (key + i * step);
  if (diff == 0) return -1;
  for (unsigned i = 0; i < kWords; ++i) {
    const uint64_t want = key + i * step;
    const uint64_t got = word(i);
    if (got == want) continue;
    uint8_t w[8], a[8];
    std::memcpy(w, &want, 8);
    std::memcpy(a, &got, 8);
    for (unsigned b = 0; b < 8; ++b) {
      if (w[b] != a[b]) {
        *expected = w[b];
        *actual = a[b];
        return static_cast<int>(i * 8 + b);
      }
    }
  }
  return -1;
}

}  // namespace mmsim
