// The glibc-like malloc of `mmsim malloc-limit` (glibc malloc/malloc.c:
// _int_malloc's use_top, sysmalloc, sysmalloc_mmap, __sbrk and __brk,
// _int_free's top consolidation and systrim, munmap_chunk). See
// glibc_malloc.h for what is modelled and what is left out.
#include "glibc_malloc.h"

namespace mmsim {

using namespace mmkit;

namespace {

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

}  // namespace

GlibcParams GlibcParams::for_mode(PagingMode mode) {
  GlibcParams p;
  if (mode == PagingMode::kI386) {
    p.size_sz = 4;
    p.minsize = 16;  // MIN_CHUNK_SIZE 16, already a multiple of MALLOC_ALIGNMENT
    p.ptrdiff_max = (1ull << 31) - 1;
  }
  return p;
}

GlibcMalloc::GlibcMalloc(MmStruct* mm, const GlibcParams& params)
    : mm_(mm), p_(params), curbrk_(do_brk(mm, 0)) {}  // __brk(0): where the break is

uint64_t GlibcMalloc::request2size(uint64_t req) const {
  const uint64_t mask = p_.malloc_alignment - 1;
  if (req + p_.size_sz + mask < p_.minsize) return p_.minsize;
  return (req + p_.size_sz + mask) & ~mask;
}

int64_t GlibcMalloc::mmap(uint64_t len) {
  const int64_t a = do_mmap(mm_, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  calls_.push_back({Syscall::kMmap, len, a >= 0});
  return a;
}

uint64_t GlibcMalloc::sbrk(int64_t increment) {
  const uint64_t old = curbrk_;
  const uint64_t want = old + static_cast<uint64_t>(increment);
  // __sbrk refuses an increment that wraps the address space.
  if (increment > 0 ? want < old : old < static_cast<uint64_t>(-increment)) return 0;
  curbrk_ = do_brk(mm_, want);  // __brk: __curbrk is whatever the kernel says
  calls_.push_back({Syscall::kBrk, want, curbrk_ == want});
  return curbrk_ < want ? 0 : old;
}

void GlibcMalloc::carve_from_top(uint64_t nb, Chunk* out) {
  out->chunk = top_;
  out->size = nb;
  out->mem = top_ + 2 * p_.size_sz;  // chunk2mem: past prev_size and size
  out->mmapped = false;
  top_ += nb;
  top_size_ -= nb;
}

bool GlibcMalloc::malloc(uint64_t bytes, Chunk* out) {
  calls_.clear();
  rejected_ptrdiff_max_ = false;
  // checked_request2size(): glibc 2.30+ refuses what ptrdiff_t cannot hold.
  if (bytes > p_.ptrdiff_max) {
    rejected_ptrdiff_max_ = true;
    return false;
  }
  const uint64_t nb = request2size(bytes);
  // No bins: the top chunk serves whatever it can, keeping MINSIZE for itself.
  if (top_ && top_size_ >= nb + p_.minsize) {
    carve_from_top(nb, out);
    return true;
  }
  return sysmalloc(nb, out);
}

bool GlibcMalloc::sysmalloc(uint64_t nb, Chunk* out) {
  const uint64_t mask = p_.malloc_alignment - 1;
  if (nb >= p_.mmap_threshold && n_mmaps_ < p_.n_mmaps_max) {
    // sysmalloc_mmap(): an mmapped chunk has no next chunk to borrow its
    // size field from, so it costs SIZE_SZ more; where MALLOC_ALIGNMENT is
    // larger than the chunk header (i386), room to align the chunk too.
    const uint64_t size = p_.malloc_alignment == 2 * p_.size_sz
                              ? align_up(nb + p_.size_sz, PAGE_SIZE)
                              : align_up(nb + p_.size_sz + mask, PAGE_SIZE);
    if (size > nb) {
      const int64_t a = mmap(size);
      if (a >= 0) {
        ++n_mmaps_;
        out->chunk = static_cast<uint64_t>(a);
        out->size = size;
        // front_misalign: chunk2mem(mm) aligned up to MALLOC_ALIGNMENT.
        out->mem = align_up(out->chunk + 2 * p_.size_sz, p_.malloc_alignment);
        out->mmapped = true;
        return true;
      }
    }
  }

  // Grow the heap: enough for nb, M_TOP_PAD more and a MINSIZE top chunk.
  const uint64_t old_size = top_ ? top_size_ : 0;
  const uint64_t old_end = top_ + old_size;
  uint64_t size = nb + p_.top_pad + p_.minsize;
  if (contiguous_) size -= old_size;
  size = align_up(size, PAGE_SIZE);
  uint64_t brk = 0;
  bool from_mmap = false;
  if (size < (1ull << 63)) brk = sbrk(static_cast<int64_t>(size));  // "appears negative"
  if (brk) {
    brk_bytes_ += size;
  } else {
    // MORECORE failed: mmap a piece of heap instead, in units of at least
    // MMAP_AS_MORECORE_SIZE, ignoring M_MMAP_MAX and the threshold.
    if (contiguous_) size = align_up(size + old_size, PAGE_SIZE);
    if (size < p_.mmap_as_morecore_size) size = p_.mmap_as_morecore_size;
    if (size > nb) {
      const int64_t a = mmap(size);
      if (a >= 0) {
        brk = static_cast<uint64_t>(a);
        from_mmap = true;
        // From now on the heap is never assumed contiguous.
        contiguous_ = false;
        morecore_mmap_bytes_ += size;
      }
    }
  }
  if (brk) {
    if (top_ && brk == old_end && !from_mmap) {
      top_size_ += size;  // the break moved up: the top chunk grows in place
    } else {
      // The first heap, or a piece that does not follow the old top: it
      // becomes the top chunk. glibc frees the old top's remainder (fenced
      // off) into its bins; this model does not reuse it.
      top_ = brk;
      top_size_ = size;
    }
  }
  if (top_ && top_size_ >= nb + p_.minsize) {
    carve_from_top(nb, out);
    return true;
  }
  return false;  // __set_errno(ENOMEM)
}

void GlibcMalloc::free(const Chunk& c) {
  calls_.clear();
  if (c.mmapped) {
    // munmap_chunk()
    do_munmap(mm_, c.chunk, c.size);
    --n_mmaps_;
    return;
  }
  if (c.chunk + c.size != top_) return;  // would go to a bin: not modelled
  top_ = c.chunk;
  top_size_ += c.size;
  // systrim(M_TOP_PAD) once the top chunk reaches M_TRIM_THRESHOLD, if it
  // still ends at the break.
  if (top_size_ < p_.trim_threshold || top_ + top_size_ != curbrk_) return;
  const uint64_t top_area = top_size_ - p_.minsize - 1;
  if (top_area <= p_.top_pad) return;
  const uint64_t extra = (top_area - p_.top_pad) & ~(PAGE_SIZE - 1);
  if (!extra) return;
  const uint64_t before = curbrk_;
  sbrk(-static_cast<int64_t>(extra));
  const uint64_t released = before - curbrk_;
  top_size_ -= released;
  brk_bytes_ -= released;
}

}  // namespace mmsim
