// The patterns' page sequences (see access_pattern.h).
#include "access_pattern.h"

#include <cmath>

namespace mmsim {
namespace {

uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// log1p(x)/x and expm1(x)/x, accurate near 0 (Apache Commons' helper1/2).
double helper1(double x) {
  return std::fabs(x) > 1e-8 ? std::log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}
double helper2(double x) {
  return std::fabs(x) > 1e-8 ? std::expm1(x) / x
                             : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}

}  // namespace

PagePermutation::PagePermutation(uint64_t n, uint64_t key) : n_(n ? n : 1) {
  unsigned bits = 1;
  while (bits < 64 && (uint64_t{1} << bits) < n_) ++bits;
  mask_ = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  shift_ = bits / 2 + 1;
  k0_ = mix(key) | 1;  // odd: multiplication is a bijection mod 2^bits
  k1_ = mix(key + 1);
}

uint64_t PagePermutation::round(uint64_t x) const {
  // Each step is a bijection of [0, 2^bits): odd multiply, add, and an
  // xorshift that stays inside the mask.
  for (int r = 0; r < 3; ++r) {
    x = (x * k0_ + k1_) & mask_;
    x ^= x >> shift_;
  }
  return x;
}

uint64_t PagePermutation::operator()(uint64_t i) const {
  uint64_t x = round(i);
  while (x >= n_) x = round(x);
  return x;
}

ZipfSampler::ZipfSampler(uint64_t n, double theta) : n_(n ? n : 1), theta_(theta) {
  h_integral_x1_ = h_integral(1.5) - 1;
  h_integral_n_ = h_integral(static_cast<double>(n_) + 0.5);
  s_ = 2 - h_integral_inverse(h_integral(2.5) - h(2));
}

double ZipfSampler::h(double x) const {
  return std::exp(-theta_ * std::log(x));
}

double ZipfSampler::h_integral(double x) const {
  const double log_x = std::log(x);
  return helper2((1 - theta_) * log_x) * log_x;
}

double ZipfSampler::h_integral_inverse(double x) const {
  double t = x * (1 - theta_);
  if (t < -1) t = -1;  // rounding at the edge of the domain
  return std::exp(helper1(t) * x);
}

uint64_t ZipfSampler::operator()(Rng& rng) const {
  if (theta_ <= 0) return 1 + rng.next() % n_;
  for (;;) {
    const double u = h_integral_n_ + rng.uniform() * (h_integral_x1_ - h_integral_n_);
    const double x = h_integral_inverse(u);
    double k = std::floor(x + 0.5);
    if (k < 1) k = 1;
    if (k > static_cast<double>(n_)) k = static_cast<double>(n_);
    if (k - x <= s_ || u >= h_integral(k + 0.5) - h(k)) return static_cast<uint64_t>(k);
  }
}

AccessStream::AccessStream(const JobSpec& spec, uint64_t pages, uint64_t seed, uint64_t job,
                           unsigned index, unsigned nprocs)
    : pattern_(spec.pattern),
      pages_(pages ? pages : 1),
      seed_(mix(seed ^ mix(job + 0x100)) ^ mix(index + 0x200)),
      // zipf: one ranking per job (seed, job); random: replaced every pass.
      perm_(pages_, mix(seed ^ mix(job + 0x300))),
      zipf_(pages_, spec.pattern == Pattern::kZipf ? spec.zipf_theta : 1),
      rng_(seed_) {
  if (pattern_ == Pattern::kLoop && nprocs > 0)
    start_ = static_cast<uint64_t>(static_cast<unsigned __int128>(pages_) * index / nprocs);
  if (pattern_ == Pattern::kRandom) perm_ = PagePermutation(pages_, mix(seed_ ^ pass_));
}

uint64_t AccessStream::next() {
  uint64_t page = 0;
  switch (pattern_) {
    case Pattern::kSeq:
      page = i_;
      break;
    case Pattern::kLoop:
      page = (start_ + i_) % pages_;
      break;
    case Pattern::kRandom:
      page = perm_(i_);
      break;
    case Pattern::kZipf:
      return perm_(zipf_(rng_) - 1);
  }
  if (++i_ == pages_) {
    i_ = 0;
    ++pass_;
    if (pattern_ == Pattern::kRandom) perm_ = PagePermutation(pages_, mix(seed_ ^ pass_));
  }
  return page;
}

}  // namespace mmsim
