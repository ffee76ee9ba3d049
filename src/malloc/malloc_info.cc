// libmmkit-malloc: glibc's introspection calls over the heap (mallinfo,
// mallinfo2, malloc_stats, malloc_info), in glibc's formats.
//
// glibc describes its arenas: the memory each took from the system, the
// bytes in use, and its free chunks by size. The heap is one machine, so
// it reports one arena. Its online RAM is the system memory; what is free
// is the buddy allocator's free frames and the free slots of the size
// classes' slabs (malloc_info lists the slots by class, as glibc lists its
// bins); the rest is in use, the slabs' and page runs' overhead included.
// Big blocks are glibc's mmapped chunks. Like malloc_shim.cc, this file is
// the library's and not the core's: the core's tests keep the host's
// mallinfo.
#include <malloc.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "malloc/big_block.h"
#include "malloc/heap.h"
#include "malloc/heap_internal.h"
#include "page_alloc/page_alloc.h"
#include "phys/machine.h"

#define MMKIT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace mmkit;

namespace {

struct ClassFree {
  size_t size = 0, count = 0;  // a class's block size and its free slots
};

struct Usage {
  size_t system = 0;      // online RAM
  size_t free_pages = 0;  // bytes in the buddy allocator's free frames
  size_t free_slots = 0, free_slot_bytes = 0;
  size_t in_use = 0;
  size_t big_blocks = 0, big_bytes = 0;
  ClassFree cls[kMallocNrClasses];
};

// One pass over the heap. Other threads may allocate meanwhile: each
// number is read once, so the sums hold to within their traffic (glibc
// takes each arena's lock; a single machine has no one lock to take).
void measure(Usage& u) {
  u.big_blocks = big_blocks();
  u.big_bytes = big_bytes();
  Machine* m = heap_machine();
  if (!m) return;
  MallocCoreScope core;  // get_slabinfo() builds a string
  u.system = heap_stats().online_bytes;
  u.free_pages = std::min(static_cast<size_t>(nr_free_pages(*m)) << PAGE_SHIFT, u.system);
  for (unsigned c = 0; c < kMallocNrClasses; ++c) {
    KmemCache* s = g_heap.caches[c];
    if (!s) continue;
    // SLUB's slabinfo: the objects of CPU slabs count as active.
    const SlabInfo si = get_slabinfo(s);
    u.cls[c] = {malloc_class_size(c), static_cast<size_t>(si.num_objs - si.active_objs)};
    u.free_slots += u.cls[c].count;
    u.free_slot_bytes += u.cls[c].count * u.cls[c].size;
  }
  u.in_use = u.system - u.free_pages - std::min(u.free_slot_bytes, u.system - u.free_pages);
}

}  // namespace

MMKIT_EXPORT struct mallinfo2 mallinfo2() {
  Usage u;
  measure(u);
  struct mallinfo2 mi = {};
  mi.arena = u.system;
  mi.ordblks = u.free_slots + (u.free_pages ? 1 : 0);
  mi.hblks = u.big_blocks;
  mi.hblkhd = u.big_bytes;
  mi.uordblks = u.in_use;
  mi.fordblks = u.free_pages + u.free_slot_bytes;
  return mi;
}

// The old form, int fields: they wrap past 2 GiB, as glibc's do.
MMKIT_EXPORT struct mallinfo __libc_mallinfo() {
  const struct mallinfo2 m2 = mallinfo2();
  struct mallinfo mi = {};
  mi.arena = static_cast<int>(m2.arena);
  mi.ordblks = static_cast<int>(m2.ordblks);
  mi.hblks = static_cast<int>(m2.hblks);
  mi.hblkhd = static_cast<int>(m2.hblkhd);
  mi.uordblks = static_cast<int>(m2.uordblks);
  mi.fordblks = static_cast<int>(m2.fordblks);
  return mi;
}
MMKIT_EXPORT struct mallinfo mallinfo() {
  return __libc_mallinfo();
}

// glibc's __malloc_stats (malloc/malloc.c): per arena, then the totals with
// the mmapped chunks, on stderr. Big blocks are the mmapped chunks.
MMKIT_EXPORT void malloc_stats() {
  Usage u;
  measure(u);
  std::fprintf(stderr, "Arena 0:\n");
  std::fprintf(stderr, "system bytes     = %10u\n", static_cast<unsigned>(u.system));
  std::fprintf(stderr, "in use bytes     = %10u\n", static_cast<unsigned>(u.in_use));
  std::fprintf(stderr, "Total (incl. mmap):\n");
  std::fprintf(stderr, "system bytes     = %10u\n", static_cast<unsigned>(u.system + u.big_bytes));
  std::fprintf(stderr, "in use bytes     = %10u\n", static_cast<unsigned>(u.in_use + u.big_bytes));
  std::fprintf(stderr, "max mmap regions = %10u\n", static_cast<unsigned>(big_max_blocks()));
  std::fprintf(stderr, "max mmap bytes   = %10lu\n", static_cast<unsigned long>(big_max_bytes()));
}

// glibc's __malloc_info: options must be 0 (EINVAL returned, errno left
// alone, as glibc does). The size classes' free slots are the <size>
// elements, one per class that has any, from the size above the class
// below to the class's own; the free frames are the "unsorted" element, a
// free chunk of any size. Nothing is "fast": SLUB has no fastbins.
MMKIT_EXPORT int malloc_info(int options, FILE* fp) {
  if (options != 0) return EINVAL;
  Usage u;
  measure(u);
  std::fputs("<malloc version=\"1\">\n", fp);
  std::fprintf(fp, "<heap nr=\"0\">\n<sizes>\n");
  for (unsigned c = 0; c < kMallocNrClasses; ++c) {
    if (!u.cls[c].count) continue;
    const size_t from = c ? malloc_class_size(c - 1) + 1 : 1;
    std::fprintf(fp, "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n", from,
                 u.cls[c].size, u.cls[c].size * u.cls[c].count, u.cls[c].count);
  }
  const size_t frames = u.free_pages >> PAGE_SHIFT;
  if (frames)
    std::fprintf(fp, "  <unsorted from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n",
                 size_t{PAGE_SIZE}, u.free_pages, u.free_pages, frames);
  const size_t blocks = u.free_slots + (frames ? 1 : 0);
  const size_t avail = u.free_slot_bytes + u.free_pages;
  std::fprintf(fp,
               "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
               "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
               "<system type=\"current\" size=\"%zu\"/>\n"
               "<system type=\"max\" size=\"%zu\"/>\n"
               "<aspace type=\"total\" size=\"%zu\"/>\n"
               "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
               "</heap>\n",
               blocks, avail, u.system, u.system, u.system, u.system);
  std::fprintf(fp,
               "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
               "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
               "<total type=\"mmap\" count=\"%d\" size=\"%zu\"/>\n"
               "<system type=\"current\" size=\"%zu\"/>\n"
               "<system type=\"max\" size=\"%zu\"/>\n"
               "<aspace type=\"total\" size=\"%zu\"/>\n"
               "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
               "</malloc>\n",
               blocks, avail, static_cast<int>(u.big_blocks), u.big_bytes, u.system, u.system,
               u.system, u.system);
  return 0;
}
