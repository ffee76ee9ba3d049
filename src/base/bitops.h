// Bit and integer helpers with Linux's names (include/linux/log2.h, bitops.h,
// lib/math/int_sqrt.c): fls, ilog2, rounddown_pow_of_two, int_sqrt, mult_frac.
#pragma once

#include <bit>
#include <cstdint>

namespace mmkit {

// fls(0) = 0, fls(1) = 1, fls(0x80000000) = 32.
constexpr int fls(uint64_t x) {
  return x ? 64 - std::countl_zero(x) : 0;
}
constexpr int ilog2(uint64_t x) {
  return fls(x) - 1;
}
constexpr uint64_t rounddown_pow_of_two(uint64_t x) {
  return x ? uint64_t{1} << ilog2(x) : 0;
}
constexpr uint64_t div_round_up(uint64_t n, uint64_t d) {
  return (n + d - 1) / d;
}
constexpr uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}
constexpr uint64_t align_down(uint64_t x, uint64_t a) {
  return x / a * a;
}

// Integer square root: the largest r with r * r <= x (lib/math/int_sqrt.c).
constexpr uint64_t int_sqrt(uint64_t x) {
  if (x < 2) return x;
  uint64_t m = uint64_t{1} << ((fls(x) - 1) & ~1);
  uint64_t y = 0;
  while (m != 0) {
    const uint64_t b = y + m;
    y >>= 1;
    if (x >= b) {
      x -= b;
      y += m;
    }
    m >>= 2;
  }
  return y;
}

// x * n / d without overflowing the intermediate (include/linux/math.h).
constexpr uint64_t mult_frac(uint64_t x, uint64_t n, uint64_t d) {
  return (x / d) * n + ((x % d) * n) / d;
}

}  // namespace mmkit
