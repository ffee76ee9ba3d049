// Shared helpers of the whole-program malloc workloads (mbench_*): argument
// parsing, a deterministic random generator, checksums, and the two hooks
// the runner (run_suite.py) relies on:
//
//   - every workload prints "checksum <hex>" computed only from values the
//     program itself chose and read back from its blocks, never from
//     addresses, so the line is the same under every malloc;
//   - with MBENCH_SHOW_MAPS=1 in the environment a workload prints the
//     lines of /proc/self/maps that name a shared object and exits, so the
//     runner can see that LD_PRELOAD really put the allocator in.
//
// Workloads take [SCALE [SEED]] (some also a thread count or two after
// them): SCALE (default 1) multiplies the amount of work, SEED (default per
// workload) picks the random sequence.
#pragma once

#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <string>

namespace mbench {

struct Args {
  double scale = 1.0;
  uint64_t seed = 0;
};

// Prints the shared objects mapped into this process and exits, when the
// runner asks for it (MBENCH_SHOW_MAPS=1).
inline void MaybeShowMaps() {
  const char* v = std::getenv("MBENCH_SHOW_MAPS");
  if (!v || std::strcmp(v, "1") != 0) return;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find(".so") != std::string::npos) std::printf("%s\n", line.c_str());
  }
  std::exit(0);
}

// A whole-number argument after SEED (a thread count, say): its name for
// the usage line, and its value, the default until ParseArgs replaces it.
struct Count {
  const char* name;
  int value;
};

// Parses [SCALE [SEED [COUNT...]]]; exits with a usage line on anything else.
inline Args ParseArgs(int argc, char** argv, uint64_t default_seed, std::span<Count> counts = {}) {
  MaybeShowMaps();
  Args a;
  a.seed = default_seed;
  bool ok = argc <= 3 + static_cast<int>(counts.size());
  char* end = nullptr;
  if (ok && argc > 1) {
    a.scale = std::strtod(argv[1], &end);
    ok = *end == '\0' && a.scale > 0 && std::isfinite(a.scale);
  }
  if (ok && argc > 2) {
    a.seed = std::strtoull(argv[2], &end, 0);
    ok = *end == '\0';
  }
  for (int i = 3; ok && i < argc; ++i) {
    long v = std::strtol(argv[i], &end, 10);
    ok = *end == '\0' && v >= 1 && v <= 1024;
    counts[i - 3].value = static_cast<int>(v);
  }
  if (!ok) {
    std::string usage = "usage: " + std::string(argv[0]) + " [SCALE [SEED";
    for (const Count& c : counts) usage += " [" + std::string(c.name);
    usage += std::string(counts.size() + 2, ']');
    std::fprintf(stderr, "%s\n", usage.c_str());
    std::exit(2);
  }
  return a;
}

// n * scale, at least 1.
inline size_t Scaled(double n, double scale) {
  long long v = std::llround(n * scale);
  return v < 1 ? 1 : static_cast<size_t>(v);
}

// xoshiro256** seeded through splitmix64: fast, and the same sequence on
// every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n > 0.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }
  // True with probability percent / 100.
  bool Percent(unsigned percent) { return Below(100) < percent; }
  // Log-uniform in [lo, hi]: as many sizes in each power-of-two band.
  uint64_t LogRange(uint64_t lo, uint64_t hi) {
    double l = std::log(static_cast<double>(lo));
    double h = std::log(static_cast<double>(hi) + 1);
    double u = static_cast<double>(Next() >> 11) * 0x1.0p-53;
    uint64_t v = static_cast<uint64_t>(std::exp(l + (h - l) * u));
    return v < lo ? lo : (v > hi ? hi : v);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Order-dependent hash combine.
inline uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

// A well-spread value for v, for order-independent sums.
inline uint64_t Spread(uint64_t v) {
  v ^= v >> 33;
  v *= 0xff51afd7ed558ccdULL;
  v ^= v >> 33;
  v *= 0xc4ceb9fe1a85ec53ULL;
  return v ^ (v >> 33);
}

// Writes a recognisable pattern derived from `tag` into the first `head`
// bytes and the last byte of a block of `size` (>= 1) bytes.
inline void Stamp(void* p, size_t size, uint64_t tag, size_t head = 64) {
  auto* b = static_cast<unsigned char*>(p);
  size_t n = size - 1 < head ? size - 1 : head;
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(tag + i * 131);
  b[size - 1] = static_cast<unsigned char>(tag >> 8);
}

// Reads back what Stamp wrote; aborts if the block was corrupted (an
// allocator that hands out overlapping blocks is caught here).
inline uint64_t Check(const void* p, size_t size, uint64_t tag, size_t head = 64) {
  auto* b = static_cast<const unsigned char*>(p);
  size_t n = size - 1 < head ? size - 1 : head;
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != static_cast<unsigned char>(tag + i * 131)) {
      std::fprintf(stderr, "block corrupted (size %zu, byte %zu)\n", size, i);
      std::abort();
    }
    sum += b[i];
  }
  if (b[size - 1] != static_cast<unsigned char>(tag >> 8)) {
    std::fprintf(stderr, "block corrupted (size %zu, last byte)\n", size);
    std::abort();
  }
  return sum + b[size - 1] * 7 + size;
}

// The process's resident set now, in KiB (/proc/self/statm).
inline long RssKb() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
  std::fclose(f);
  return pages_resident < 0 ? -1 : pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

inline void PrintChecksum(uint64_t h) {
  std::printf("checksum %016" PRIx64 "\n", h);
}

// A named number the runner records beside time and peak RSS; not part of
// the checksum (it may differ between allocators).
inline void PrintMetric(const char* name, long value) {
  std::printf("metric %s %ld\n", name, value);
}

}  // namespace mbench
