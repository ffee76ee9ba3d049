// VmapSpace: the free part of the vmalloc area (Linux's free_vmap_area_root
// and free_vmap_area_list), and the search alloc_vmap_area() does in it.
//
// Free space is kept as disjoint, non-adjacent blocks [start, end) ordered by
// address (adjacent blocks are merged on free, as merge_or_add_vmap_area()
// does). An allocation takes the lowest address where an aligned block of
// the size fits (find_vmap_lowest_match()), then trims or splits the free
// block it came from (adjust_va_to_fit_type(): FL, LE, RE or NE fit).
// Linux augments its tree with each subtree's largest free block to find
// that address in O(log n); mmkit walks the blocks in address order, which
// gives the same address in O(n).
//
// Invariants (check()): blocks are non-empty, sorted, neither overlapping
// nor touching, and inside [start, end) of the area.
// Not thread-safe: the owner holds vmap_area_lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace mmkit {

class VmapSpace {
 public:
  void init(uint64_t start, uint64_t end);
  // The lowest `align`-aligned address where `size` bytes fit below `end`, or 0.
  uint64_t alloc(uint64_t size, uint64_t align);
  // Gives [addr, addr + size) back, merging with its neighbours.
  void free(uint64_t addr, uint64_t size);
  uint64_t free_bytes() const;
  uint64_t largest_free() const;
  void for_each_free(const std::function<void(uint64_t start, uint64_t end)>& fn) const;
  std::string check() const;

 private:
  uint64_t start_ = 0, end_ = 0;
  std::map<uint64_t, uint64_t> free_;  // start -> end
};

}  // namespace mmkit
