// big_blocks: large blocks (64 KiB to 64 MiB) allocated, touched, freed.
//
// Image buffers, I/O buffers, arrays of a numeric code: sizes log-uniform
// between 64 KiB and 64 MiB, a few live at a time, each written on every
// page (so it costs what it would in a program that uses it) and read back
// before it is freed. Here the allocator is a thin layer over mmap/munmap:
// what shows is its policy for returning memory to the kernel. Returning it
// at once (glibc above its mmap threshold) pays a page fault and zeroing
// per page on every reuse; caching it (jemalloc's dirty pages, tcmalloc's
// page heap, mimalloc's segments) saves the faults and costs peak RSS.
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "mbench.h"

namespace {

constexpr size_t kLive = 3;        // blocks live at once
constexpr double kRounds = 250;    // blocks allocated at scale 1
constexpr size_t kMin = 64 << 10;  // 64 KiB
constexpr size_t kMax = 64 << 20;  // 64 MiB

struct Block {
  unsigned char* p = nullptr;
  size_t size = 0;
  uint64_t tag = 0;
};

}  // namespace

int main(int argc, char** argv) {
  mbench::Args args = mbench::ParseArgs(argc, argv, 5);
  mbench::Rng rng(args.seed);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<Block> live(kLive);
  uint64_t sum = 0;

  auto make = [&](Block& b, uint64_t tag) {
    b.size = rng.LogRange(kMin, kMax);
    b.tag = tag;
    b.p = static_cast<unsigned char*>(std::malloc(b.size));
    if (!b.p) std::abort();
    for (size_t off = 0; off < b.size; off += page)
      b.p[off] = static_cast<unsigned char>(tag + off / page);
    b.p[b.size - 1] = static_cast<unsigned char>(tag);
  };
  auto drop = [&](Block& b) {
    uint64_t s = 0;
    for (size_t off = 0; off < b.size; off += page) {
      if (off && b.p[off] != static_cast<unsigned char>(b.tag + off / page)) {
        std::fprintf(stderr, "block corrupted at %zu of %zu\n", off, b.size);
        std::abort();
      }
      s += b.p[off];
    }
    sum = mbench::Mix(sum, s + b.p[b.size - 1] + b.size);
    std::free(b.p);
  };

  for (size_t i = 0; i < kLive; ++i) make(live[i], i);
  size_t rounds = mbench::Scaled(kRounds, args.scale);
  for (size_t i = 0; i < rounds; ++i) {
    Block& b = live[rng.Below(kLive)];
    drop(b);
    make(b, kLive + i);
  }
  for (Block& b : live) drop(b);
  mbench::PrintChecksum(mbench::Mix(sum, rounds));
  return 0;
}
