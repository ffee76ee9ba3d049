// malloc's paths over the heap's machine (heap.h): the size-class fast
// paths, page runs, big blocks, and realloc/memalign/usable_size on top.
//
// The fast paths are SLUB's (slab_alloc_fast, slab_free_fast) with the
// per-thread lookups folded away: a thread keeps a pointer to its CPU's
// KmemCacheCpu of every class, so malloc pops that CPU freelist after one
// table load, and free finds the slab from the page descriptor as kfree
// does. Everything else runs inside the core (MallocCoreScope).
//
// A page run's first frame is tagged in `private_` with the run's length
// (kRunTag | pages), which free() and malloc_usable_size() read; a frame of
// the direct map that is neither a slab nor a tagged run head is not a
// block's start, and freeing it is reported.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "malloc/big_block.h"
#include "malloc/early_alloc.h"
#include "malloc/heap.h"
#include "malloc/heap_internal.h"
#include "page_alloc/page_alloc.h"
#include "slab/slab_debug.h"

namespace mmkit {

namespace {

constexpr uint64_t kRunTag = uint64_t{0x6d6d6b6974} << 24;  // "mmkit" above the page count
constexpr uint64_t kRunTagMask = ~uint64_t{0xffffff};
constexpr size_t kMaxRun = size_t{MAX_ORDER_NR_PAGES} << PAGE_SHIFT;  // 4 MiB
constexpr gfp_t kHeapGfp = GFP_KERNEL | __GFP_NOWARN;
// Page runs are a program's data, as Linux's user pages are: movable, so
// they gather in pageblocks of their own, away from the slabs, and free
// whole pageblocks when they go.
constexpr gfp_t kRunGfp = kHeapGfp | __GFP_MOVABLE;

void* fail_enomem() {
  errno = ENOMEM;
  return nullptr;
}

// The heap's machine is up and the thread bound if it can be; false when
// the caller must use the early allocator (inside the core, or boot not done).
bool heap_enter(ThreadCtx& t) {
  if (t.in_core) return false;
  if (!heap_ready() && !heap_boot()) return false;
  if (!t.cpu && !t.exited) heap_bind_thread(t);
  return true;
}

void* run_alloc(size_t size) {
  const uint64_t pages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
  Machine& m = *g_heap.m;
  Page* page;
  {
    MallocCoreScope core;
    page = alloc_pages_exact_page(m, pages, kRunGfp);
  }
  if (!page) return fail_enomem();
  page->private_ = kRunTag | pages;
  return m.page_address(page);
}

// An order-aligned run for memalign: the block of 2^order frames holds the
// run at its start, aligned to the block.
void* run_alloc_aligned(size_t size, size_t align) {
  const uint64_t pages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
  const uint64_t span = std::max<uint64_t>(pages, align >> PAGE_SHIFT);
  Machine& m = *g_heap.m;
  Page* page;
  {
    MallocCoreScope core;
    // The block for `span` frames is aligned to its size, hence to `align`.
    page = alloc_pages_exact_page(m, std::bit_ceil(span), kRunGfp);
    if (page && pages < std::bit_ceil(span))
      free_pages_exact_page(m, page + pages, std::bit_ceil(span) - pages);
  }
  if (!page) return fail_enomem();
  page->private_ = kRunTag | pages;
  return m.page_address(page);
}

// The tagged run head of `p`, or null when `p` does not start a run.
Page* run_head(Page* page) {
  return (page->private_ & kRunTagMask) == kRunTag ? page : nullptr;
}
uint64_t run_pages(const Page* head) {
  return head->private_ & ~kRunTagMask;
}

void run_free(Page* head) {
  const uint64_t pages = run_pages(head);
  head->private_ = 0;
  {
    MallocCoreScope core;
    free_pages_exact_page(*g_heap.m, head, pages);
  }
  heap_maybe_report();
}

Page* direct_map_page(const void* p) {
  const uintptr_t off = reinterpret_cast<uintptr_t>(p) - g_heap.ram_base;
  return off < g_heap.direct_bytes ? g_heap.mem_map + (off >> PAGE_SHIFT) : nullptr;
}

// --- the magazine of a thread bound to no CPU ---------------------------------------------
constexpr unsigned kMagClasses = ThreadMagazine::kClasses;
constexpr unsigned kMagSlots = ThreadMagazine::kSlots;

// The thread's magazine, made on first use; null once it is exiting (or
// when no page could be mapped for it).
ThreadMagazine* magazine_get(ThreadCtx& t) {
  if (t.mag || t.exited) return t.mag;
  auto* mag = static_cast<ThreadMagazine*>(big_alloc(sizeof(ThreadMagazine), PAGE_SIZE, true));
  if (!mag) return nullptr;
  t.mag = mag;
  pthread_setspecific(g_heap.exit_key, reinterpret_cast<void*>(1));  // drained at exit
  return mag;
}

// A block of class `c` for a thread bound to no CPU: the magazine's newest,
// else half a magazine's worth off a partial slab in one round trip of the
// node's lock (kept for the next allocations), else null.
void* magazine_pop(ThreadCtx& t, unsigned c) {
  if (c >= kMagClasses || !g_heap.fast[c]) return nullptr;
  ThreadMagazine* mag = magazine_get(t);
  if (!mag) return nullptr;
  if (mag->count[c]) return mag->slot[c][--mag->count[c]];
  unsigned got;
  {
    MallocCoreScope core;
    got = kmem_cache_alloc_from_partial(g_heap.caches[c], 0, mag->slot[c], kMagSlots / 2);
  }
  if (!got) return nullptr;
  mag->count[c] = static_cast<uint8_t>(got - 1);
  return mag->slot[c][got - 1];
}

// Frees the class's `n` oldest blocks to their slabs (the CPU-less path).
void magazine_flush(ThreadMagazine* mag, unsigned c, unsigned n) {
  KmemCache* s = g_heap.caches[c];
  {
    MallocCoreScope core;
    for (unsigned i = 0; i < n; ++i) {
      void* obj = mag->slot[c][i];
      slab_free_fast(s, nullptr, direct_map_page(obj)->head(), obj);
    }
  }
  mag->count[c] = static_cast<uint8_t>(mag->count[c] - n);
  std::memmove(mag->slot[c], mag->slot[c] + n, mag->count[c] * sizeof(void*));
}

// Keeps a free of class `c`'s block; false when the thread cannot (it is
// exiting, or no magazine could be made).
bool magazine_push(ThreadCtx& t, unsigned c, void* obj) {
  ThreadMagazine* mag = magazine_get(t);
  if (!mag) return false;
  unsigned n = mag->count[c];
  // The block freed last freed again: reported as a CPU's sheaf reports it
  // (SLUB's report; the heap's warn sink aborts).
  if (n && mag->slot[c][n - 1] == obj) {
    {
      MallocCoreScope core;
      slab_report(g_heap.caches[c], "double free detected", obj);
    }
    heap_fatal("free(): double free detected", obj);
  }
  if (n == kMagSlots) {
    magazine_flush(mag, c, kMagSlots / 2);
    n = mag->count[c];
  }
  mag->slot[c][n] = obj;
  mag->count[c] = static_cast<uint8_t>(n + 1);
  return true;
}

// The slab object path when the fast one does not apply.
void* slab_alloc_slowpath(ThreadCtx& t, unsigned c) {
  void* obj;
  {
    MallocCoreScope core;
    obj = slab_alloc_fast(*g_heap.m, g_heap.caches[c], t.cpu, kHeapGfp, NUMA_NO_NODE);
  }
  return obj ? obj : fail_enomem();
}

// Big blocks need nothing of the machine (their own mappings, their own
// lock), so they are served before and while the heap boots, and inside it.
void* big_malloc(size_t size, bool zero) {
  void* p = big_alloc(size, PAGE_SIZE, zero);
  return p ? p : fail_enomem();
}

[[gnu::noinline]] void* malloc_slow(size_t size, const void* caller) {
  if (size > kMaxRun) return big_malloc(size, false);
  ThreadCtx& t = tls_heap;
  if (!heap_enter(t)) {
    // Booting, or the heap could not boot: the early allocator, and host
    // mappings when it is full (it may be 1 MiB under a tight RLIMIT_AS).
    if (void* p = early_alloc(size ? size : 1)) return p;
    return t.in_core ? fail_enomem() : big_malloc(size ? size : 1, false);
  }
  if (size <= kMallocMaxSmall) {
    const unsigned c = malloc_size_class(size ? size : 1);
    if (!t.cpu)
      if (void* obj = magazine_pop(t, c)) return obj;
    if (g_heap.debug) slab_set_track_caller(caller);  // the owner track's call site
    void* obj = slab_alloc_slowpath(t, c);
    // MMKIT_DEBUG with red zones: the bytes past the size asked for are a
    // red zone too (SLUB's kmalloc redzone), so a write one byte past the
    // block is caught whatever the class's rounding.
    if (obj && g_heap.debug) kmem_cache_set_orig_size(g_heap.caches[c], obj, size ? size : 1);
    return obj;
  }
  return run_alloc(size);
}

[[gnu::noinline]] void free_slow(void* p, const void* caller) {
  if (!p) return;
  if (Page* page = direct_map_page(p)) {
    Page* head = page->head();
    if (head->test(PG_slab)) {
      ThreadCtx& t = tls_heap;
      KmemCache* s = slab_cache(head);
      // Not an object's start (a pointer into a block, or past the slab's
      // objects): glibc's "free(): invalid pointer", before it reaches a
      // freelist and a later malloc hands out overlapping memory.
      if (!check_valid_pointer(s, head, p)) heap_fatal("free(): invalid pointer", p);
      // A thread bound to no CPU keeps what heap_free's fast path would
      // have put on its CPU's lists.
      if (!t.cpu && !t.in_core) {
        const unsigned c = malloc_size_class(s->object_size);
        if (c < kMagClasses && g_heap.caches[c] == s && g_heap.fast[c] && magazine_push(t, c, p))
          return;
      }
      if (g_heap.debug) slab_set_track_caller(caller);
      {
        MallocCoreScope core;
        slab_free_fast(s, t.in_core > 1 ? nullptr : t.cpu, head, p);
      }
      heap_maybe_report();
      return;
    }
    if (Page* run = run_head(page); run && g_heap.m->page_address(run) == p) {
      run_free(run);
      return;
    }
    heap_fatal("free(): invalid pointer", p);
  }
  if (early_owns(p)) {
    early_free(p);
    return;
  }
  if (big_owns(p)) {
    big_free(p);
    heap_reporter_kick();
    return;
  }
  heap_fatal("free(): invalid pointer", p);
}

}  // namespace

void heap_magazine_release(ThreadCtx& t) {
  ThreadMagazine* mag = t.mag;
  if (!mag) return;
  for (unsigned c = 0; c < kMagClasses; ++c)
    if (mag->count[c]) magazine_flush(mag, c, mag->count[c]);
  t.mag = nullptr;
  big_free(mag);
}

void* heap_malloc(size_t size, const void* caller) {
  if (size - 1 < kMallocMaxSmall) [[likely]] {
    const unsigned c = malloc_size_class(size);
    ThreadCtx& t = tls_heap;
    KmemCacheCpu* cc = t.slab[c];
    if (cc && !t.in_core) [[likely]] {
      if (void* obj = cpu_sheaf_pop(*cc)) [[likely]]
        return obj;
      if (void* obj = cpu_slab_pop(g_heap.caches[c], *cc)) [[likely]]
        return obj;
    }
  }
  return malloc_slow(size, caller);
}

void heap_free(void* p, const void* caller) {
  const uintptr_t off = reinterpret_cast<uintptr_t>(p) - g_heap.ram_base;
  if (off < g_heap.direct_bytes) [[likely]] {
    Page* head = (g_heap.mem_map + (off >> PAGE_SHIFT))->head();
    ThreadCtx& t = tls_heap;
    if (head->test(PG_slab) && t.cpu && !t.in_core) [[likely]] {
      // Only an object's start goes the fast way: a pointer into a block
      // (aligned or not) or past the slab's objects takes the slow path,
      // which reports it, before a later malloc hands out overlapping
      // blocks. A multiply and two compares (slab_offset_is_object).
      KmemCache* s = slab_cache(head);
      const uint64_t in_slab = off - (static_cast<uint64_t>(head - g_heap.mem_map) << PAGE_SHIFT);
      const unsigned objects =
          SlabWord::unpack(slab_word(head).load(std::memory_order_relaxed)).objects;
      if (slab_offset_is_object(s, in_slab, objects) && slab_free_try_fast(s, *t.cpu, head, p))
          [[likely]]
        return;
    }
  }
  free_slow(p, caller);
}

void heap_free_sized(void* p, size_t, const void* caller) {
  heap_free(p, caller);
}

size_t heap_usable_size(const void* p) {
  if (!p) return 0;
  if (Page* page = direct_map_page(p)) {
    Page* head = page->head();
    if (head->test(PG_slab)) {
      const KmemCache* s = slab_cache(head);
      // Under MMKIT_DEBUG the size asked for: the rest is red zone.
      return g_heap.debug ? kmem_cache_orig_size(s, p) : s->object_size;
    }
    if (Page* run = run_head(page)) return run_pages(run) << PAGE_SHIFT;
    return 0;
  }
  if (early_owns(p)) return early_usable_size(p);
  if (big_owns(p)) return big_usable_size(p);
  return 0;
}

void* heap_calloc(size_t n, size_t size, const void* caller) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) return fail_enomem();
  // A big block clears only the cached pages it reuses.
  if (bytes > kMaxRun) return big_malloc(bytes, true);
  void* p = heap_malloc(bytes, caller);
  if (p) std::memset(p, 0, bytes);
  return p;
}

void* heap_realloc(void* p, size_t size, const void* caller) {
  if (!p) return heap_malloc(size, caller);
  if (size == 0) {  // glibc: realloc(p, 0) frees p and returns null
    heap_free(p, caller);
    return nullptr;
  }
  const size_t have = heap_usable_size(p);
  if (have == 0) heap_fatal("realloc(): invalid pointer", p);
  if (Page* page = direct_map_page(p)) {
    Page* head = page->head();
    if (head->test(PG_slab)) {
      // In place while the class stays the same (under MMKIT_DEBUG the
      // block moves, so its red zones are checked at the free).
      if (size <= kMallocMaxSmall && !g_heap.debug &&
          malloc_class_size(malloc_size_class(size)) == have)
        return p;
    } else if (size <= kMaxRun && size > kMallocMaxSmall) {
      // A run stays in place when it still holds the size. Shrunk to half
      // or less it gives its tail frames back; a smaller shrink keeps them,
      // so that a block that shrinks a little and grows again, or grows
      // into the headroom below, does not move.
      const uint64_t pages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT, now = run_pages(page);
      if (pages <= now) {
        if (pages <= now / 2) {
          page->private_ = kRunTag | pages;
          MallocCoreScope core;
          free_pages_exact_page(*g_heap.m, page + pages, now - pages);
        }
        return p;
      }
    }
  } else if (big_owns(p) && size > kMaxRun) {
    void* q = big_realloc(p, size);
    return q ? q : fail_enomem();
  }
  // A block that grows by less than half into a page run moves into one
  // with half again the size as headroom: a buffer grown a little at a time
  // is copied a logarithmic number of times, not once per frame it gains
  // (growing a buffer by 1000 bytes to 2 MiB copied it 505 times). A
  // program that grows geometrically by itself (capacity doubling) gets
  // the size it asks for: headroom there would only hold frames.
  if (size > have && size < have + have / 2 && size > kMallocMaxSmall && size <= kMaxRun &&
      heap_ready() && !tls_heap.in_core) {
    const size_t room = std::min(kMaxRun, size + size / 2);
    if (void* q = run_alloc(room)) {
      std::memcpy(q, p, have);
      heap_free(p, caller);
      return q;
    }
  }
  void* q = heap_malloc(size, caller);
  if (!q) return nullptr;  // p is untouched, as C requires
  std::memcpy(q, p, std::min(have, size));
  heap_free(p, caller);
  return q;
}

void* heap_memalign(size_t align, size_t size, const void* caller) {
  if (align == 0 || (align & (align - 1))) {
    errno = EINVAL;
    return nullptr;
  }
  if (align <= 16) return heap_malloc(size, caller);
  ThreadCtx& t = tls_heap;
  if (!heap_enter(t)) {
    if (void* p = early_memalign(align, size)) return p;
    if (t.in_core) return fail_enomem();
    void* p = big_alloc(size ? size : 1, std::max<size_t>(align, PAGE_SIZE), false);
    return p ? p : fail_enomem();
  }
  if (size == 0) size = 1;
  if (size > (SIZE_MAX >> 2)) return fail_enomem();
  // A power-of-two class's objects are aligned to their size (unless
  // slub_debug moves them with red zones).
  const size_t pow2 = std::bit_ceil(std::max(size, align));
  if (pow2 <= kMallocMaxSmall && !g_heap.debug) return heap_malloc(pow2, caller);
  if (align <= PAGE_SIZE && size <= kMaxRun) return run_alloc(size);
  if (std::max<size_t>(size, align) <= kMaxRun) return run_alloc_aligned(size, align);
  void* p = big_alloc(size, align, false);
  return p ? p : fail_enomem();
}

}  // namespace mmkit
