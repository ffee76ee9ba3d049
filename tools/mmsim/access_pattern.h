// The page sequences of `mmsim run`'s patterns, deterministic for a seed:
//
//   seq      every pass sweeps pages 0..n-1 in order
//   loop     one endless sweep that wraps around, each process of a job
//            starting at its own offset (process i of P at page i*n/P), so
//            processes that share pages do not march in lockstep
//   random   every pass visits each page once, in a fresh random order per
//            pass and process (fio's random map)
//   zipf:T   independent draws, rank r with probability proportional to
//            1/r^T; ranks map to pages through a fixed random permutation
//            (the same for every process of a job), so the hot pages are
//            spread over the region instead of packed at its start
//
// Permutations are bijections computed on the fly (no table per page); the
// Zipf sampler is rejection-inversion (Hörmann and Derflinger, 1996), O(1)
// set-up and O(1) expected time per draw for any T > 0, T = 1 included.
#pragma once

#include <cstdint>

#include "run_jobs.h"

namespace mmsim {

// splitmix64: small, fast and good enough to drive access decisions.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t s_;
};

// A pseudo-random bijection of [0, n) chosen by `key`: mixing rounds that
// are bijective on the next power of two, walking the cycle until the value
// falls inside [0, n) (fewer than two steps on average).
class PagePermutation {
 public:
  PagePermutation(uint64_t n, uint64_t key);
  uint64_t operator()(uint64_t i) const;

 private:
  uint64_t round(uint64_t x) const;
  uint64_t n_, mask_, k0_, k1_;
  unsigned shift_;
};

// Zipf over ranks 1..n with exponent theta > 0.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double theta);
  uint64_t operator()(Rng& rng) const;  // a rank in 1..n

 private:
  double h(double x) const;
  double h_integral(double x) const;
  double h_integral_inverse(double x) const;
  uint64_t n_;
  double theta_, h_integral_x1_, h_integral_n_, s_;
};

// The pages one process of a job visits, in order.
class AccessStream {
 public:
  // `pages` > 0; `index` of `nprocs` processes of job number `job`.
  AccessStream(const JobSpec& spec, uint64_t pages, uint64_t seed, uint64_t job, unsigned index,
               unsigned nprocs);
  uint64_t next();  // the next page index, in [0, pages)

 private:
  Pattern pattern_;
  uint64_t pages_, seed_, i_ = 0, pass_ = 0, start_ = 0;
  PagePermutation perm_;
  ZipfSampler zipf_;
  Rng rng_;
};

}  // namespace mmsim
