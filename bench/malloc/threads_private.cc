// threads_private: N threads (default 4), each allocating and freeing only
// its own blocks.
//
// Models a thread-pool server where each request is handled by one thread:
// every thread runs its own churn over a private working set, with bursts
// (allocate 64 objects, then free them in reverse, as a request's
// temporaries are) between single replacements. Nothing is shared, so an
// allocator that scales pays no contention at all; what shows is the
// thread-cache / per-CPU design, lock traffic on shared arenas, and false
// sharing between the threads' small blocks. With more threads than cores
// (the default on a 2-core machine), it also shows what preemption in the
// middle of an allocation costs.
//
//   mbench_threads_private [SCALE [SEED [THREADS]]]
#include <cstdlib>
#include <thread>
#include <vector>

#include "mbench.h"

namespace {

constexpr size_t kSlotsPerThread = 8'000;
constexpr double kStepsPerThread = 1'500'000;  // at scale 1
constexpr size_t kBurst = 64;

size_t PickSize(mbench::Rng& rng) {
  unsigned r = static_cast<unsigned>(rng.Below(100));
  if (r < 70) return rng.Range(16, 128);
  if (r < 97) return rng.Range(129, 1024);
  return rng.LogRange(1025, 16 * 1024);
}

struct Block {
  void* p = nullptr;
  size_t size = 0;
  uint64_t tag = 0;
};

// One thread's work; returns its checksum.
uint64_t Worker(uint64_t seed, size_t steps) {
  mbench::Rng rng(seed);
  std::vector<Block> live(kSlotsPerThread);
  uint64_t tag = 0, sum = 0;
  auto make = [&](Block& b) {
    b.size = PickSize(rng);
    b.tag = ++tag;
    b.p = std::malloc(b.size);
    if (!b.p) std::abort();
    mbench::Stamp(b.p, b.size, b.tag, 16);
  };
  auto drop = [&](Block& b) {
    sum += mbench::Check(b.p, b.size, b.tag, 16);
    std::free(b.p);
  };
  for (Block& b : live) make(b);
  Block burst[kBurst];
  for (size_t i = 0; i < steps; ++i) {
    if (i % 256 == 0) {  // a request's temporaries, freed last-in first-out
      for (Block& b : burst) make(b);
      for (size_t j = kBurst; j-- > 0;) drop(burst[j]);
    }
    Block& b = live[rng.Below(kSlotsPerThread)];
    drop(b);
    make(b);
  }
  for (Block& b : live) drop(b);
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  mbench::Count counts[] = {{"THREADS", 4}};
  mbench::Args args = mbench::ParseArgs(argc, argv, 2, counts);
  int nthreads = counts[0].value;
  size_t steps = mbench::Scaled(kStepsPerThread, args.scale);

  std::vector<uint64_t> sums(nthreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] { sums[t] = Worker(args.seed * 1000 + t, steps); });
  }
  for (auto& th : threads) th.join();

  uint64_t h = mbench::Mix(nthreads, steps);
  for (uint64_t s : sums) h = mbench::Mix(h, s);
  mbench::PrintChecksum(h);
  return 0;
}
