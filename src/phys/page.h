// struct page: one 64-byte descriptor per page frame (Linux's mem_map entry).
//
// The descriptor array is allocated lazily (an anonymous mapping touched only
// where a descriptor is written), and the all-zero descriptor is a valid
// state: "not on any list, no references, no flags". So a 64 GiB machine's
// 1 GiB of descriptors costs host memory only for the heads of free blocks
// and the pages actually used.
//
// Field use by state (as in Linux):
//   free in the buddy allocator: PG_buddy, private = order, lru on free_area
//   on a per-CPU list:           lru on pcp->lists
//   allocated:                   refcount >= 1; compound heads have PG_head
//                                and the order in the flags; tails point
//                                back with compound_head = head | 1
#pragma once

#include <atomic>
#include <cstdint>

#include "base/list.h"

namespace mmkit {

inline constexpr unsigned PAGE_SHIFT = 12;
inline constexpr uint64_t PAGE_SIZE = uint64_t{1} << PAGE_SHIFT;

// Page flag bits (include/linux/page-flags.h; PG_buddy is a page type there).
enum PageFlag : unsigned {
  PG_locked = 0,
  PG_referenced = 2,
  PG_uptodate = 3,
  PG_reported = 3,  // a free block handed back to the host (page_reporting.c; buddy pages only)
  PG_dirty = 4,
  PG_lru = 5,
  PG_head = 6,
  PG_active = 7,
  PG_workingset = 8,  // was active before it was deactivated or evicted (mm/workingset.c)
  PG_swapcache = 9,   // in the swap cache; private_ holds the swap entry
  PG_reserved = 10,
  PG_private = 11,
  PG_writeback = 13,
  PG_readahead = 17,  // read ahead, not yet used (swap cache; a file's async marker)
  PG_reclaim = 17,    // reclaim wants it as soon as its writeback ends (PG_readahead's alias)
  PG_unevictable = 18,
  PG_swapbacked = 19,
  PG_buddy = 24,      // free in the buddy allocator (PageBuddy)
  PG_slab = 25,       // owned by the slab allocator (PageSlab)
  PG_bad = 26,        // failed a free-time check and was withheld from reuse (mmkit's own)
  PG_memcg = 27,      // charged to a memory cgroup (memcg_data != 0; mmkit keeps the id aside)
  PG_filecache = 28,  // in a file's page cache: mapping is its AddressSpace (mmkit's own;
                      // Linux tells by the mapping's type, shmem objects here are not files)
};
// The multi-generational LRU's fields (include/linux/page-flags-layout.h
// LRU_GEN_WIDTH, LRU_REFS_WIDTH; include/linux/mm_inline.h): gen + 1 while
// the page is on a generation list (0: it is not), and the accesses
// through file descriptors beyond PG_referenced and PG_workingset
// (folio_inc_refs), which pick the page's tier.
inline constexpr unsigned kLruGenShift = 32;
inline constexpr uint64_t kLruGenMask = uint64_t{7} << kLruGenShift;
inline constexpr unsigned kLruRefsShift = 35, kLruRefsWidth = 2;
inline constexpr uint64_t kLruRefsMask = uint64_t{3} << kLruRefsShift;
inline constexpr unsigned kPageOrderShift = 56;  // compound order of a head page
inline constexpr uint64_t kPageOrderMask = uint64_t{0xff} << kPageOrderShift;

struct Page {
  std::atomic<uint64_t> flags;
  ListHead lru;
  uintptr_t compound_head;        // tail page: head address | 1
  uint64_t private_;              // buddy: order; later: owner data
  std::atomic<int32_t> mapcount;  // page-table entries mapping it (0: unmapped)
  std::atomic<int32_t> refcount;  // _refcount
  void* mapping;                  // later: anon_vma, address_space, kmem_cache
  uint64_t index;

  bool test(PageFlag f) const { return flags.load(std::memory_order_relaxed) >> f & 1; }
  void set(PageFlag f) {
    flags.store(flags.load(std::memory_order_relaxed) | uint64_t{1} << f,
                std::memory_order_relaxed);
  }
  void clear(PageFlag f) {
    flags.store(flags.load(std::memory_order_relaxed) & ~(uint64_t{1} << f),
                std::memory_order_relaxed);
  }
  // Atomic read-modify-writes, for flags that several threads change at
  // once (PG_referenced, PG_dirty, PG_locked: Linux's set_bit/test_and_set_bit).
  bool test_and_set(PageFlag f) {
    return flags.fetch_or(uint64_t{1} << f, std::memory_order_acq_rel) >> f & 1;
  }
  bool test_and_clear(PageFlag f) {
    return flags.fetch_and(~(uint64_t{1} << f), std::memory_order_acq_rel) >> f & 1;
  }
  void set_atomic(PageFlag f) { flags.fetch_or(uint64_t{1} << f, std::memory_order_release); }
  void clear_atomic(PageFlag f) { flags.fetch_and(~(uint64_t{1} << f), std::memory_order_release); }
  // get_page_unless_zero(): a reference, unless the page is being freed.
  bool try_get() {
    int32_t r = refcount.load(std::memory_order_relaxed);
    while (r > 0)
      if (refcount.compare_exchange_weak(r, r + 1, std::memory_order_acquire)) return true;
    return false;
  }
  // mapping and private_ as the reverse map and the swap cache share them
  // across threads (READ_ONCE/WRITE_ONCE).
  void* mapping_once() const {
    return std::atomic_ref<void* const>(mapping).load(std::memory_order_acquire);
  }
  void set_mapping_once(void* v) {
    std::atomic_ref<void*>(mapping).store(v, std::memory_order_release);
  }
  uint64_t private_once() const {
    return std::atomic_ref<const uint64_t>(private_).load(std::memory_order_acquire);
  }
  void set_private_once(uint64_t v) {
    std::atomic_ref<uint64_t>(private_).store(v, std::memory_order_release);
  }
  bool is_tail() const { return compound_head & 1; }
  Page* head() { return is_tail() ? reinterpret_cast<Page*>(compound_head - 1) : this; }
  unsigned compound_order() const {
    return test(PG_head)
               ? static_cast<unsigned>(flags.load(std::memory_order_relaxed) >> kPageOrderShift)
               : 0;
  }
  int ref_count() const { return refcount.load(std::memory_order_relaxed); }
};
static_assert(sizeof(Page) == 64, "struct page is 64 bytes, as Linux's");

}  // namespace mmkit
