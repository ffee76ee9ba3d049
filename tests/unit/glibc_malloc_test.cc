// mmsim's glibc-like malloc (tools/mmsim/glibc_malloc.h) against a
// simulated process: the chunk sizes of request2size, the heap grown by brk
// in M_TOP_PAD steps, large requests mmapped with glibc's overhead, the
// 1 MiB mmapped heap when brk fails, M_MMAP_MAX, PTRDIFF_MAX and systrim.
#include <gtest/gtest.h>

#include "glibc_malloc.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"

#include "../support/boot.h"

namespace mmsim {
namespace {

using namespace mmkit;
using Syscall = GlibcMalloc::Syscall;

constexpr uint64_t kKiB = 1ull << 10, kMiB = 1ull << 20;

struct Fixture {
  std::unique_ptr<Machine> m;
  Process* p = nullptr;
  explicit Fixture(Arch arch = Arch::x86_64) {
    MachineConfig c = test::one_node(64, 1, arch);
    c.overcommit_memory = OVERCOMMIT_ALWAYS;
    m = test::boot_or_fail(c);
    EXPECT_EQ(spawn(*m, "malloc", &p), 0);
  }
  ~Fixture() {
    if (p) exit_process(p);
  }
  MmStruct* mm() const { return p->mm; }
};

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

TEST(GlibcMalloc, Request2SizeAsGlibc) {
  Fixture f;
  GlibcMalloc g(f.mm(), GlibcParams::for_mode(PagingMode::kX86_64_4Level));
  EXPECT_EQ(g.request2size(0), 32u);   // MINSIZE
  EXPECT_EQ(g.request2size(24), 32u);  // 24 + SIZE_SZ fits 32
  EXPECT_EQ(g.request2size(25), 48u);
  EXPECT_EQ(g.request2size(100), 112u);
  const GlibcParams i386 = GlibcParams::for_mode(PagingMode::kI386);
  EXPECT_EQ(i386.size_sz, 4u);
  EXPECT_EQ(i386.minsize, 16u);
  GlibcMalloc g32(f.mm(), i386);
  EXPECT_EQ(g32.request2size(0), 16u);
  EXPECT_EQ(g32.request2size(12), 16u);
  EXPECT_EQ(g32.request2size(13), 32u);
}

TEST(GlibcMalloc, SmallRequestsGrowTheHeapInTopPadSteps) {
  Fixture f;
  GlibcMalloc g(f.mm(), GlibcParams::for_mode(PagingMode::kX86_64_4Level));
  const uint64_t start = f.mm()->start_brk;
  GlibcMalloc::Chunk a, b, c;
  ASSERT_TRUE(g.malloc(100, &a));
  // nb 112 + M_TOP_PAD 128 KiB + MINSIZE 32, rounded to pages: 0x21000.
  ASSERT_EQ(g.last_syscalls().size(), 1u);
  EXPECT_EQ(g.last_syscalls()[0].kind, Syscall::kBrk);
  EXPECT_EQ(g.last_syscalls()[0].arg, start + 0x21000);
  EXPECT_EQ(f.mm()->brk, start + 0x21000);
  EXPECT_EQ(a.chunk, start);
  EXPECT_EQ(a.mem, start + 16);
  EXPECT_FALSE(a.mmapped);
  // The top chunk serves what it can without a system call.
  ASSERT_TRUE(g.malloc(100 * kKiB, &b));
  EXPECT_TRUE(g.last_syscalls().empty());
  EXPECT_EQ(b.chunk, start + 112);
  // When it cannot, the heap grows by what is missing, M_TOP_PAD more.
  const uint64_t top = 0x21000 - 112 - b.size;
  ASSERT_TRUE(g.malloc(100 * kKiB, &c));
  ASSERT_EQ(g.last_syscalls().size(), 1u);
  EXPECT_EQ(g.last_syscalls()[0].arg,
            start + 0x21000 + align_up(b.size + 128 * kKiB + 32 - top, 4096));
  EXPECT_EQ(c.chunk, b.chunk + b.size);
  EXPECT_EQ(g.brk_bytes(), f.mm()->brk - start);
  EXPECT_EQ(check(f.mm()), "");
}

TEST(GlibcMalloc, LargeRequestsAreMmappedWithTheChunkOverhead) {
  Fixture f;
  GlibcMalloc g(f.mm(), GlibcParams::for_mode(PagingMode::kX86_64_4Level));
  const uint64_t vm_before = f.mm()->total_vm;
  GlibcMalloc::Chunk a, b;
  // 1 MiB of user bytes need a 16-byte header: one page more.
  ASSERT_TRUE(g.malloc(1 * kMiB, &a));
  ASSERT_EQ(g.last_syscalls().size(), 1u);
  EXPECT_EQ(g.last_syscalls()[0].kind, Syscall::kMmap);
  EXPECT_EQ(g.last_syscalls()[0].arg, 1 * kMiB + 4096);
  EXPECT_TRUE(a.mmapped);
  EXPECT_EQ(a.mem, a.chunk + 16);
  // 24 bytes less fit exactly.
  ASSERT_TRUE(g.malloc(1 * kMiB - 24, &b));
  EXPECT_EQ(g.last_syscalls()[0].arg, 1 * kMiB);
  EXPECT_EQ(g.n_mmaps(), 2u);
  g.free(a);
  g.free(b);
  EXPECT_EQ(g.n_mmaps(), 0u);
  EXPECT_EQ(f.mm()->total_vm, vm_before);
  // The threshold is on the chunk size: 128 KiB - 8 already is mmapped.
  GlibcMalloc::Chunk t;
  ASSERT_TRUE(g.malloc(128 * kKiB - 8, &t));
  EXPECT_TRUE(t.mmapped);
  ASSERT_TRUE(g.malloc(128 * kKiB - 24, &t));
  EXPECT_FALSE(t.mmapped);
}

TEST(GlibcMalloc, FailedBrkFallsBackToAMegabyteOfMmappedHeap) {
  Fixture f;
  const uint64_t start = f.mm()->start_brk;
  // Something mapped 64 KiB above the break: the heap cannot grow.
  ASSERT_EQ(
      do_mmap(f.mm(), start + 64 * kKiB, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED),
      static_cast<int64_t>(start + 64 * kKiB));
  GlibcMalloc g(f.mm(), GlibcParams::for_mode(PagingMode::kX86_64_4Level));
  GlibcMalloc::Chunk a, b;
  ASSERT_TRUE(g.malloc(100, &a));
  ASSERT_EQ(g.last_syscalls().size(), 2u);
  EXPECT_EQ(g.last_syscalls()[0].kind, Syscall::kBrk);
  EXPECT_FALSE(g.last_syscalls()[0].ok);
  EXPECT_EQ(g.last_syscalls()[1].kind, Syscall::kMmap);
  EXPECT_EQ(g.last_syscalls()[1].arg, 1 * kMiB);  // MMAP_AS_MORECORE_SIZE
  EXPECT_TRUE(g.last_syscalls()[1].ok);
  EXPECT_FALSE(a.mmapped);  // a heap chunk, in mmapped heap
  EXPECT_EQ(g.morecore_mmap_bytes(), 1 * kMiB);
  EXPECT_EQ(g.n_mmaps(), 0u);  // not an mmapped chunk
  ASSERT_TRUE(g.malloc(100, &b));
  EXPECT_TRUE(g.last_syscalls().empty());
  EXPECT_EQ(b.chunk, a.chunk + a.size);
  // Past the megabyte the heap is non-contiguous: brk is tried again for a
  // whole request (its top chunk is not counted), then another mmap.
  GlibcMalloc::Chunk c;
  ASSERT_TRUE(g.malloc(120 * kKiB, &c));
  ASSERT_TRUE(g.malloc(120 * kKiB, &c));
  ASSERT_TRUE(g.malloc(120 * kKiB, &c));
  bool grew = false;
  for (int i = 0; i < 10 && !grew; ++i) {
    ASSERT_TRUE(g.malloc(120 * kKiB, &c));
    if (g.last_syscalls().empty()) continue;
    grew = true;
    ASSERT_EQ(g.last_syscalls().size(), 2u);
    EXPECT_EQ(g.last_syscalls()[1].kind, Syscall::kMmap);
    EXPECT_EQ(g.last_syscalls()[1].arg, 1 * kMiB);
    EXPECT_EQ(g.last_syscalls()[0].kind, Syscall::kBrk);
    EXPECT_EQ(g.last_syscalls()[0].arg,
              start + align_up(g.request2size(120 * kKiB) + 128 * kKiB + 32, 4096));
  }
  EXPECT_TRUE(grew);
}

TEST(GlibcMalloc, PastMmapMaxLargeRequestsComeFromTheHeap) {
  Fixture f;
  GlibcParams p = GlibcParams::for_mode(PagingMode::kX86_64_4Level);
  p.n_mmaps_max = 1;
  GlibcMalloc g(f.mm(), p);
  GlibcMalloc::Chunk a, b;
  ASSERT_TRUE(g.malloc(1 * kMiB, &a));
  EXPECT_TRUE(a.mmapped);
  ASSERT_TRUE(g.malloc(1 * kMiB, &b));
  EXPECT_FALSE(b.mmapped);
  ASSERT_EQ(g.last_syscalls().size(), 1u);
  EXPECT_EQ(g.last_syscalls()[0].kind, Syscall::kBrk);
}

TEST(GlibcMalloc, I386RefusesRequestsAbovePtrdiffMax) {
  Fixture f(Arch::i386);
  GlibcMalloc g(f.mm(), GlibcParams::for_mode(f.mm()->layout.mode));
  GlibcMalloc::Chunk a;
  EXPECT_FALSE(g.malloc(1ull << 31, &a));
  EXPECT_TRUE(g.rejected_ptrdiff_max());
  EXPECT_TRUE(g.last_syscalls().empty());
  // An i386 mmapped chunk reserves room to align its user bytes to 16.
  ASSERT_TRUE(g.malloc(1 * kMiB - 24, &a));
  EXPECT_EQ(g.last_syscalls()[0].arg, 1 * kMiB + 4096);
  EXPECT_EQ(a.mem % 16, 0u);
}

TEST(GlibcMalloc, FreeingTheTopChunkTrimsTheHeap) {
  Fixture f;
  GlibcParams p = GlibcParams::for_mode(PagingMode::kX86_64_4Level);
  p.mmap_threshold = 4 * kMiB;  // so that 1 MiB comes from the heap
  GlibcMalloc g(f.mm(), p);
  const uint64_t start = f.mm()->start_brk;
  GlibcMalloc::Chunk a;
  ASSERT_TRUE(g.malloc(1 * kMiB, &a));
  EXPECT_EQ(f.mm()->brk, start + align_up(g.request2size(1 * kMiB) + 128 * kKiB + 32, 4096));
  g.free(a);
  // systrim keeps M_TOP_PAD (and MINSIZE) and gives the rest back.
  EXPECT_EQ(f.mm()->brk, start + 0x21000);
  EXPECT_EQ(g.brk_bytes(), 0x21000u);
  EXPECT_EQ(check(f.mm()), "");
}

}  // namespace
}  // namespace mmsim
