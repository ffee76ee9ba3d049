// A glibc-like malloc for one simulated process: the main arena of glibc's
// ptmalloc (malloc/malloc.c: _int_malloc's top chunk, sysmalloc,
// sysmalloc_mmap, systrim, munmap_chunk), reduced to what decides how much
// a program can allocate and which system calls it makes on the way.
//
//   request2size      chunk size nb = request + SIZE_SZ rounded up to
//                     MALLOC_ALIGNMENT (at least MINSIZE); a request above
//                     PTRDIFF_MAX fails at once (checked_request2size)
//   top chunk         a request that fits the top chunk is cut from it
//   sysmalloc, mmap   nb >= M_MMAP_THRESHOLD (128 KiB) while fewer than
//                     M_MMAP_MAX (65536) chunks are mmapped: its own
//                     mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
//                     of nb + SIZE_SZ rounded to pages; if that fails, on
//   sysmalloc, heap   grow the heap with brk by nb + M_TOP_PAD (128 KiB) +
//                     MINSIZE (less the top chunk when the heap is
//                     contiguous), rounded to pages; when brk fails, mmap at
//                     least MMAP_AS_MORECORE_SIZE (1 MiB) as a new,
//                     non-contiguous piece of heap, and from then on never
//                     assume the heap is contiguous
//   free              an mmapped chunk is munmapped; a chunk next to the
//                     top chunk joins it, and a top chunk of at least
//                     M_TRIM_THRESHOLD (128 KiB) at the break is trimmed
//                     with brk down to M_TOP_PAD (systrim)
//
// M_MMAP_THRESHOLD is fixed, as after mallopt(M_MMAP_THRESHOLD, 128 KiB):
// glibc's dynamic threshold (raised by each free of an mmapped chunk up to
// 32 MiB) would make a probing program's results depend on its frees.
// There are no bins: free() handles an mmapped chunk or the chunk just cut
// from the top (what `mmsim malloc-limit` does), and the remainder of an
// old top chunk left behind by a non-contiguous extension is not reused.
// One thread, one arena; glibc's brk(0) queries are not made.
#pragma once

#include <cstdint>
#include <vector>

#include "vm/mm.h"

namespace mmsim {

// glibc's constants for an arch (malloc/malloc.c, malloc/malloc-internal.h).
struct GlibcParams {
  uint64_t size_sz = 8;                      // SIZE_SZ: sizeof(size_t)
  uint64_t malloc_alignment = 16;            // MALLOC_ALIGNMENT (16 on i386 too since 2.26)
  uint64_t minsize = 32;                     // MINSIZE: 4 * SIZE_SZ, aligned
  uint64_t ptrdiff_max = (1ull << 63) - 1;   // PTRDIFF_MAX
  uint64_t mmap_threshold = 128 << 10;       // M_MMAP_THRESHOLD (DEFAULT_MMAP_THRESHOLD_MIN)
  uint64_t top_pad = 128 << 10;              // M_TOP_PAD (DEFAULT_TOP_PAD)
  uint64_t trim_threshold = 128 << 10;       // M_TRIM_THRESHOLD
  uint64_t mmap_as_morecore_size = 1 << 20;  // MMAP_AS_MORECORE_SIZE
  uint64_t n_mmaps_max = 65536;              // M_MMAP_MAX (DEFAULT_MMAP_MAX)
  static GlibcParams for_mode(mmkit::PagingMode mode);
};

class GlibcMalloc {
 public:
  // A system call malloc made: mmap(0, arg) or brk(arg), and what it gave.
  struct Syscall {
    enum Kind : uint8_t { kMmap, kBrk } kind;
    uint64_t arg;  // mmap: the length; brk: the break asked for
    bool ok;
  };
  // An allocated chunk: [chunk, chunk + size) holds the user's bytes at mem.
  struct Chunk {
    uint64_t mem = 0;
    uint64_t chunk = 0;
    uint64_t size = 0;  // chunksize(); an mmapped chunk: its whole mapping
    bool mmapped = false;
  };

  GlibcMalloc(mmkit::MmStruct* mm, const GlibcParams& params);

  // malloc(bytes): true with *out filled, or false (NULL, ENOMEM). Either
  // way last_syscalls() lists the system calls it made.
  bool malloc(uint64_t bytes, Chunk* out);
  void free(const Chunk& c);

  const std::vector<Syscall>& last_syscalls() const { return calls_; }
  bool rejected_ptrdiff_max() const { return rejected_ptrdiff_max_; }
  uint64_t request2size(uint64_t req) const;
  const GlibcParams& params() const { return p_; }
  uint64_t n_mmaps() const { return n_mmaps_; }
  // Heap bytes obtained with brk, and with mmap as MORECORE's stand-in.
  uint64_t brk_bytes() const { return brk_bytes_; }
  uint64_t morecore_mmap_bytes() const { return morecore_mmap_bytes_; }

 private:
  bool sysmalloc(uint64_t nb, Chunk* out);
  int64_t mmap(uint64_t len);
  // __sbrk(increment): the old break, or 0 when brk refused.
  uint64_t sbrk(int64_t increment);
  void carve_from_top(uint64_t nb, Chunk* out);

  mmkit::MmStruct* mm_;
  GlibcParams p_;
  uint64_t curbrk_;         // __curbrk: the break as glibc knows it
  uint64_t top_ = 0;        // av->top: the top chunk's address (0: none yet)
  uint64_t top_size_ = 0;   // chunksize(av->top)
  bool contiguous_ = true;  // !(av->flags & NONCONTIGUOUS_BIT)
  uint64_t n_mmaps_ = 0;    // mp_.n_mmaps
  uint64_t brk_bytes_ = 0;
  uint64_t morecore_mmap_bytes_ = 0;
  bool rejected_ptrdiff_max_ = false;
  std::vector<Syscall> calls_;
};

}  // namespace mmsim
