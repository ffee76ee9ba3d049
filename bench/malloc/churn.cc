// churn: one thread replaces blocks of a fixed working set at random.
//
// The most common shape of allocation in real programs: a few tens of
// thousands of live objects, mostly small (8-512 bytes) with a tail of
// larger buffers (up to 64 KiB), where each step frees one random live block
// and allocates a new one of a new random size. It measures the single-thread
// fast paths (size-class lookup, free lists, per-thread caches) under a
// realistic mix rather than a malloc/free ping-pong on one size, and the
// footprint the allocator keeps for a steady working set.
#include <cstdlib>
#include <vector>

#include "mbench.h"

namespace {

constexpr size_t kSlots = 50'000;     // live blocks
constexpr double kSteps = 4'000'000;  // replacements at scale 1

size_t PickSize(mbench::Rng& rng) {
  unsigned r = static_cast<unsigned>(rng.Below(100));
  if (r < 60) return rng.Range(8, 64);     // small structs, short strings
  if (r < 90) return rng.Range(65, 256);   // medium objects
  if (r < 98) return rng.Range(257, 512);  // buffers
  return rng.LogRange(513, 64 * 1024);     // the large tail
}

struct Slot {
  void* p = nullptr;
  size_t size = 0;
  uint64_t tag = 0;
};

}  // namespace

int main(int argc, char** argv) {
  mbench::Args args = mbench::ParseArgs(argc, argv, 1);
  mbench::Rng rng(args.seed);
  std::vector<Slot> slots(kSlots);
  uint64_t sum = 0;

  auto fill = [&](Slot& s, uint64_t tag) {
    s.size = PickSize(rng);
    s.tag = tag;
    s.p = std::malloc(s.size);
    if (!s.p) std::abort();
    mbench::Stamp(s.p, s.size, s.tag, 32);
  };
  for (size_t i = 0; i < kSlots; ++i) fill(slots[i], i);

  size_t steps = mbench::Scaled(kSteps, args.scale);
  for (size_t i = 0; i < steps; ++i) {
    Slot& s = slots[rng.Below(kSlots)];
    sum += mbench::Check(s.p, s.size, s.tag, 32);
    std::free(s.p);
    fill(s, kSlots + i);
  }
  for (Slot& s : slots) {
    sum += mbench::Check(s.p, s.size, s.tag, 32);
    std::free(s.p);
  }
  mbench::PrintChecksum(mbench::Mix(sum, steps));
  return 0;
}
