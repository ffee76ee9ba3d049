// A radix tree from a 64-bit index to a word, after Linux's xarray
// (lib/xarray.c, include/linux/xarray.h): what an address_space's i_pages is.
//
// Each node has 64 slots (XA_CHUNK_SHIFT 6) and covers 6 more bits of the
// index than the nodes below it; the tree is as tall as its largest index
// needs, grows a level at the top when a store goes past it and shrinks
// again when the top has only slot 0 left. A page cache's entries are dense
// runs of indices, so a lookup is a few dependent loads and a scan of a
// range reads consecutive slots, where an ordered map allocates a node per
// entry and chases a pointer per level of a deep tree.
//
// An entry is any non-zero word (0 is an empty slot): the page cache stores
// Page pointers and value entries (bit 0 set: shadows, swap entries). The
// tree does no locking; its user holds a lock (i_pages_lock) around every
// call. Nodes come from the host's allocator, as the map's did.
#pragma once

#include <cstdint>
#include <string>

namespace mmkit {

class XArray {
 public:
  static constexpr unsigned kChunkShift = 6;  // XA_CHUNK_SHIFT
  static constexpr unsigned kChunkSize = 1u << kChunkShift;

  XArray() = default;
  ~XArray();
  XArray(const XArray&) = delete;
  XArray& operator=(const XArray&) = delete;

  // xa_load: the entry at `index`, 0 if none.
  uintptr_t load(uint64_t index) const;
  // xa_store: puts `entry` at `index` and returns what was there (0: none).
  // Storing 0 erases.
  uintptr_t store(uint64_t index, uintptr_t entry);
  // xa_erase: empties the slot and returns what was there.
  uintptr_t erase(uint64_t index);
  // xa_find: the first entry at an index in [*index, last], with *index
  // set to it; 0 (and *index unchanged) if there is none.
  uintptr_t find(uint64_t* index, uint64_t last) const;

  uint64_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  void clear();

  // Calls f(index, entry) for every entry, in index order. `f` must not
  // change the tree.
  template <class F>
  void for_each(F&& f) const {
    uint64_t i = 0;
    while (const uintptr_t v = find(&i, ~uint64_t{0})) {
      f(i, v);
      if (++i == 0) break;
    }
  }

  // The tree's invariants: each node's count and parent links, shifts one
  // chunk apart, no empty node, a top that could not be shorter, and the
  // entries counted. Empty string if they hold.
  std::string check() const;

 private:
  struct Node {
    uint8_t shift;   // bits of the index below this node's slots
    uint8_t offset;  // this node's slot in its parent
    uint8_t count;   // non-empty slots
    Node* parent;
    uintptr_t slots[kChunkSize];
  };

  static uint64_t max_index(unsigned shift) {
    return shift + kChunkShift >= 64 ? ~uint64_t{0} : (uint64_t{kChunkSize} << shift) - 1;
  }
  static Node* new_node(unsigned shift, Node* parent, unsigned offset);
  static void free_tree(Node* node);
  Node* leaf_for(uint64_t index) const;
  std::string check_node(const Node* node, uint64_t* entries) const;

  Node* head_ = nullptr;
  uint64_t count_ = 0;
};

}  // namespace mmkit
