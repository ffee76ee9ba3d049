// fragmentation: what a phase change leaves behind.
//
// Phase 1 allocates a million small objects (16-256 bytes), as a program
// loading a data set does, then frees 90% of them in random order, keeping
// a scattered 10% (the survivors pin pages and size-class runs all over the
// heap). Phase 2 is a long-running steady state on different sizes
// (320 bytes to 4 KiB): it fills up to half of what phase 1 freed, then
// replaces objects at random. An allocator that can put phase-2 objects into
// the memory phase 1 freed (coalescing, or returning whole free pages and
// runs to the kernel and reusing them) ends near the phase-1 footprint; one
// that cannot ends with both. The program prints its own RSS at the end of
// phase 2 ("metric rss_after_phase_kb"), and the bytes then live
// ("metric live_after_phase_kb"), beside the process's peak RSS that the
// runner records.
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "mbench.h"

namespace {

constexpr double kPhase1Objects = 1'000'000;  // at scale 1
constexpr double kPhase2Steps = 1'500'000;    // replacements at scale 1
constexpr unsigned kKeepPercent = 10;

struct Obj {
  void* p = nullptr;
  size_t size = 0;
  uint64_t tag = 0;
};

Obj Make(size_t size, uint64_t tag) {
  Obj o{std::malloc(size), size, tag};
  if (!o.p) std::abort();
  mbench::Stamp(o.p, o.size, o.tag, 16);
  return o;
}

uint64_t Drop(Obj& o) {
  uint64_t s = mbench::Check(o.p, o.size, o.tag, 16);
  std::free(o.p);
  o.p = nullptr;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  mbench::Args args = mbench::ParseArgs(argc, argv, 6);
  mbench::Rng rng(args.seed);
  uint64_t sum = 0, tag = 0;

  // Phase 1: load, then drop 90% at random.
  std::vector<Obj> small(mbench::Scaled(kPhase1Objects, args.scale));
  for (Obj& o : small) o = Make(rng.Range(16, 256), ++tag);
  std::vector<size_t> order(small.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
  size_t freed_bytes = 0, kept_bytes = 0;
  size_t nfree = order.size() - order.size() * kKeepPercent / 100;
  for (size_t i = 0; i < nfree; ++i) {
    freed_bytes += small[order[i]].size;
    sum += Drop(small[order[i]]);
  }
  for (const Obj& o : small) kept_bytes += o.p ? o.size : 0;

  // Phase 2: different sizes, up to half the freed bytes, then steady churn.
  std::vector<Obj> big;
  size_t big_bytes = 0;
  while (big_bytes < freed_bytes / 2) {
    big.push_back(Make(rng.Range(320, 4096), ++tag));
    big_bytes += big.back().size;
  }
  size_t steps = mbench::Scaled(kPhase2Steps, args.scale);
  for (size_t i = 0; i < steps; ++i) {
    Obj& o = big[rng.Below(big.size())];
    big_bytes -= o.size;
    sum += Drop(o);
    o = Make(rng.Range(320, 4096), ++tag);
    big_bytes += o.size;
  }
  long rss_kb = mbench::RssKb();
  size_t live_kb = (kept_bytes + big_bytes) / 1024;

  for (Obj& o : small) sum += o.p ? Drop(o) : 0;
  for (Obj& o : big) sum += Drop(o);
  mbench::PrintChecksum(mbench::Mix(mbench::Mix(sum, tag), live_kb));
  mbench::PrintMetric("rss_after_phase_kb", rss_kb);
  mbench::PrintMetric("live_after_phase_kb", static_cast<long>(live_kb));
  return 0;
}
