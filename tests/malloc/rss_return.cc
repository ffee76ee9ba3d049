// rss_return: does the allocator give memory back to the system after a peak?
// Records the resident set size (/proc/self/statm) at start, allocates 1 GiB
// in a mix of sizes (mostly 64 KiB .. 1 MiB blocks plus a few hundred MiB of
// 16 .. 512-byte objects, interleaved), touches every page, frees everything
// in a scattered order, sleeps 100 ms and reads the RSS again. Then the same
// gigabyte in big blocks (one of 512 MiB, 32 of 16 MiB), freed, and a sleep
// of 5 s with no allocator call: memory a heap keeps for reuse must go back
// while the program is idle too (glibc unmaps such blocks at once).
//
// Why: a long-running process with one allocation peak should not keep the
// peak's RSS forever. Small objects are the hard case (a slab/bin with one
// live object pins its pages); glibc itself may keep some of them, so the
// numbers are printed in any case and --report-only never fails.
//
// Usage: malloc_rss_return [--report-only]
// Exit 1 if end RSS > start RSS + kMaxRetainedMiB, or if after malloc_trim(0)
// it is above start RSS + kMaxTrimmedMiB (unless --report-only); pages freed
// with MADV_FREE (LazyFree in smaps_rollup) are not counted as retained.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "malloc_test_util.h"

namespace {

using namespace mtest;

constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kTotal = 1024 * kMiB;      // allocated at the peak
constexpr size_t kSmallTotal = 256 * kMiB;  // of which in 16 .. 512-byte objects
// What may stay resident after everything is freed: an allocator keeps some
// cached memory (per-thread caches, partial slabs, a trim threshold), but
// 64 MiB of a 1 GiB peak (6 %) is the most a drop-in malloc should hold on to.
constexpr size_t kMaxRetainedMiB = 64;
// After malloc_trim(0) the caches are given back too (glibc's trim returns
// every free page it can); what stays is metadata and small free fragments.
constexpr size_t kMaxTrimmedMiB = 24;

double rss_mib() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  const int n = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  if (n != 2) return -1;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / kMiB;
}

// Pages given back with MADV_FREE stay in the RSS until the kernel needs
// them; /proc/self/smaps_rollup counts them as LazyFree. They are free
// memory, so they do not count as retained (0 if the kernel does not say).
double lazyfree_mib() {
  FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
  if (!f) return 0;
  char line[256];
  long kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "LazyFree: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return static_cast<double>(kib) / 1024;
}

// The big-block phase: what stays resident after 1 GiB of big blocks is
// freed and the program sleeps without calling the allocator.
double big_blocks_retained(size_t page) {
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  blocks.emplace_back(nullptr, 512 * kMiB);
  for (int i = 0; i < 32; ++i) blocks.emplace_back(nullptr, 16 * kMiB);
  const double start = rss_mib();
  for (auto& [p, size] : blocks) {
    p = static_cast<unsigned char*>(std::malloc(size));
    CHECK_MSG(p != nullptr, "malloc(%zu) failed", size);
    if (p)
      for (size_t off = 0; off < size; off += page) p[off] = 0x5a;
  }
  const double peak = rss_mib();
  for (auto& [p, size] : blocks) std::free(p);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  const double retained = rss_mib() - lazyfree_mib() - start;
  std::printf(
      "rss_return: big blocks: start %.1f MiB, peak %.1f MiB, %+.1f MiB retained after a "
      "5 s sleep (limit %zu MiB)\n",
      start, peak, retained, kMaxRetainedMiB);
  return retained;
}

}  // namespace

int main(int argc, char** argv) {
  bool report_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--report-only") {
      report_only = true;
    } else {
      std::fprintf(stderr, "usage: %s [--report-only]\n", argv[0]);
      return 2;
    }
  }
  require_preload_if_expected("rss_return");
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));

  // The plan (sizes in a shuffled order) and the pointer array exist and are
  // touched before the start RSS is taken, so they do not count as retained.
  std::mt19937_64 rng(42);
  std::vector<uint32_t> sizes;
  size_t large = 0, small = 0;
  while (small < kSmallTotal) {
    const uint32_t s = 16 + static_cast<uint32_t>(rng() % (512 - 16 + 1));
    sizes.push_back(s);
    small += s;
  }
  const size_t n_small = sizes.size();
  while (small + large < kTotal) {
    const uint32_t s = 64 * 1024 + static_cast<uint32_t>(rng() % (kMiB - 64 * 1024 + 1));
    sizes.push_back(s);
    large += s;
  }
  std::shuffle(sizes.begin(), sizes.end(), rng);
  std::vector<void*> ptrs(sizes.size(), nullptr);

  const double start = rss_mib();
  const auto t0 = std::chrono::steady_clock::now();
  size_t failed = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto* p = static_cast<unsigned char*>(std::malloc(sizes[i]));
    escape(p);
    ptrs[i] = p;
    if (!p) {
      ++failed;
      continue;
    }
    if (sizes[i] <= 512) {
      std::memset(p, 0xa5, sizes[i]);
    } else {
      for (size_t off = 0; off < sizes[i]; off += page) p[off] = 0xa5;
      p[sizes[i] - 1] = 0xa5;
    }
  }
  const double peak = rss_mib();
  // Free in a scattered order: every 7th block, seven passes.
  for (size_t pass = 0; pass < 7; ++pass)
    for (size_t i = pass; i < ptrs.size(); i += 7) std::free(ptrs[i]);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const double end = rss_mib();
  const double lazy = lazyfree_mib();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  HEAP_CHECK("after freeing everything");
  malloc_trim(0);
  const double trimmed = rss_mib() - lazyfree_mib() - start;
  HEAP_CHECK("after malloc_trim");

  const double retained = end - lazy - start;
  const double big_retained = big_blocks_retained(page);
  HEAP_CHECK("after the big blocks");
  const bool ok = failed == 0 && retained <= kMaxRetainedMiB && trimmed <= kMaxTrimmedMiB &&
                  big_retained <= kMaxRetainedMiB && g_failures.load() == 0;
  std::printf(
      "rss_return: start %.1f MiB, peak %.1f MiB, end %.1f MiB of which %.1f MiB MADV_FREE'd: "
      "%+.1f MiB retained (limit %zu MiB); %zu small + %zu large blocks, 1 GiB in %.2f s; "
      "after malloc_trim(0): %+.1f MiB (limit %zu MiB)%s\n",
      start, peak, end, lazy, retained, kMaxRetainedMiB, n_small, sizes.size() - n_small, secs,
      trimmed, kMaxTrimmedMiB, failed ? " -- some allocations FAILED" : "");
  if (!ok) {
    std::printf("rss_return: %s%s\n", report_only ? "would FAIL (report only)" : "FAIL",
                failed                       ? ": allocations failed"
                : retained > kMaxRetainedMiB ? ": too much memory kept after free"
                : big_retained > kMaxRetainedMiB
                    ? ": too much memory kept after the big blocks' free and a sleep"
                    : ": too much memory kept after malloc_trim");
  }
  return ok || report_only ? 0 : 1;
}
