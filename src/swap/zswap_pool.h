// zswap's pool of compressed objects: a small zsmalloc (mm/zsmalloc.c) over
// the machine's buddy allocator. Internal to src/swap.
//
// Objects are grouped by size class (32-byte steps up to a page). A class
// carves zspages, each one block of 1, 2 or 4 pages from alloc_pages (the
// count that wastes least, as zsmalloc's get_pages_per_zspage() chooses,
// ZS_MAX_PAGES_PER_ZSPAGE = 4), into equal slots; objects may cross page
// boundaries inside a block, which the direct map makes contiguous. A
// zspage whose last object is freed goes back to the buddy allocator at
// once. The bookkeeping (free slots, counts) is host memory; the objects and
// their pages are the machine's, so the pool competes with the workload.
//
// Invariant, per class: objects allocated == sum over its zspages of inuse;
// pages() == sum over all zspages of their block size.
// Locking: one mutex per class; the buddy allocator is called under it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "page_alloc/gfp.h"
#include "phys/machine.h"

namespace mmkit {

struct ZsPage;
struct ZsClass;

struct ZsHandle {
  ZsPage* zspage = nullptr;
  uint32_t idx = 0;
  explicit operator bool() const { return zspage != nullptr; }
};

class ZsPool {
 public:
  static constexpr unsigned kClassDelta = 32;
  static constexpr unsigned kNrClasses = PAGE_SIZE / kClassDelta;

  explicit ZsPool(Machine& m);
  ~ZsPool();
  ZsPool(const ZsPool&) = delete;
  ZsPool& operator=(const ZsPool&) = delete;

  // zs_malloc(): a slot of at least `size` bytes (1..PAGE_SIZE), or a null
  // handle when a new zspage is needed and the buddy allocator has none.
  ZsHandle malloc(size_t size, gfp_t gfp);
  // zs_free().
  void free(ZsHandle h);
  // The object's bytes (zs_map_object(), always a direct pointer here).
  char* map(ZsHandle h) const;
  // The size of the class the handle's object belongs to.
  unsigned class_size(ZsHandle h) const;
  // zs_get_total_pages().
  uint64_t pages() const { return pages_.load(std::memory_order_relaxed); }

  // Checks the pool against the objects its user holds (handle, length):
  // each is allocated once in a class big enough, and the counts add up.
  // "" or the first violation. Takes each class lock in turn: the caller
  // must keep malloc and free out meanwhile (zswap holds its tree locks).
  std::string check(const std::vector<std::pair<ZsHandle, size_t>>& objects);

 private:
  Machine& m_;
  std::unique_ptr<ZsClass[]> classes_;
  std::atomic<uint64_t> pages_{0};
};

}  // namespace mmkit
