// realloc_grow: many buffers grown step by step with realloc.
//
// Thousands of live buffers are appended to in random order, as strings,
// output buffers and vectors are in real programs. Half grow the naive way
// (realloc to exactly the new length on every append, as C code building a
// string does), half the vector way (capacity doubled when full). A buffer
// that reaches its final size (256 bytes to 256 KiB, log-uniform) is
// sometimes shrunk (realloc to a quarter, as shrink_to_fit after an erase)
// and grown again, then freed and started afresh. Because the buffers are
// interleaved, growing in place depends on what the allocator put next to
// each block; otherwise realloc copies (or, for large blocks, may remap).
// It measures realloc's in-place paths, size-class rounding slack, and the
// copying cost when it must move.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mbench.h"

namespace {

constexpr size_t kBuffers = 4'000;
constexpr double kAppends = 2'500'000;  // at scale 1

struct Buffer {
  unsigned char* p = nullptr;
  size_t len = 0;
  size_t cap = 0;
  size_t target = 0;
  uint64_t id = 0;
  bool doubling = false;
  bool shrunk = false;
};

unsigned char ByteAt(uint64_t id, size_t i) {
  return static_cast<unsigned char>(id * 7 + i);
}

void Resize(Buffer& b, size_t cap) {
  void* p = std::realloc(b.p, cap);
  if (!p) std::abort();
  b.p = static_cast<unsigned char*>(p);
  b.cap = cap;
}

// Reads three bytes back (first, middle, last) and checks them.
uint64_t Sample(const Buffer& b) {
  uint64_t sum = b.len;
  for (size_t i : {size_t{0}, b.len / 2, b.len - 1}) {
    if (b.p[i] != ByteAt(b.id, i)) {
      std::fprintf(stderr, "buffer %lu corrupted at %zu\n", static_cast<unsigned long>(b.id), i);
      std::abort();
    }
    sum = mbench::Mix(sum, b.p[i]);
  }
  return sum;
}

void Start(Buffer& b, uint64_t id, mbench::Rng& rng) {
  b = Buffer{};
  b.id = id;
  b.target = rng.LogRange(256, 256 * 1024);
  b.doubling = rng.Percent(50);
}

}  // namespace

int main(int argc, char** argv) {
  mbench::Args args = mbench::ParseArgs(argc, argv, 4);
  mbench::Rng rng(args.seed);
  std::vector<Buffer> bufs(kBuffers);
  uint64_t next_id = 0, sum = 0;
  for (Buffer& b : bufs) Start(b, next_id++, rng);

  size_t appends = mbench::Scaled(kAppends, args.scale);
  for (size_t step = 0; step < appends; ++step) {
    Buffer& b = bufs[rng.Below(kBuffers)];
    size_t add = b.doubling ? rng.Range(8, 256) : rng.Range(1, 48);
    size_t len = b.len + add;
    if (len > b.cap) Resize(b, b.doubling ? std::max<size_t>(64, std::max(len, 2 * b.cap)) : len);
    for (size_t i = b.len; i < len; ++i) b.p[i] = ByteAt(b.id, i);
    b.len = len;
    if (b.len < b.target) continue;

    sum = mbench::Mix(sum, Sample(b));
    if (!b.shrunk && rng.Percent(30)) {  // shrink to fit a quarter, grow again
      b.len /= 4;
      Resize(b, b.len);
      b.shrunk = true;
      sum = mbench::Mix(sum, Sample(b));
      continue;
    }
    std::free(b.p);
    Start(b, next_id++, rng);
  }
  for (Buffer& b : bufs) {
    if (b.len) sum = mbench::Mix(sum, Sample(b));
    std::free(b.p);
  }
  mbench::PrintChecksum(mbench::Mix(sum, next_id));
  return 0;
}
