// The radix tree behind XArray (lib/xarray.c): descent, growth at the top,
// freeing of emptied nodes on the way back up, and the ordered scan.
#include "base/xarray.h"

#include <fmt/format.h>

namespace mmkit {

XArray::~XArray() {
  clear();
}

void XArray::clear() {
  if (head_) free_tree(head_);
  head_ = nullptr;
  count_ = 0;
}

XArray::Node* XArray::new_node(unsigned shift, Node* parent, unsigned offset) {
  Node* n = new Node{};
  n->shift = static_cast<uint8_t>(shift);
  n->offset = static_cast<uint8_t>(offset);
  n->parent = parent;
  return n;
}

void XArray::free_tree(Node* node) {
  if (node->shift > 0)
    for (uintptr_t v : node->slots)
      if (v) free_tree(reinterpret_cast<Node*>(v));
  delete node;
}

XArray::Node* XArray::leaf_for(uint64_t index) const {
  Node* node = head_;
  if (!node || index > max_index(node->shift)) return nullptr;
  while (node && node->shift > 0)
    node = reinterpret_cast<Node*>(node->slots[(index >> node->shift) & (kChunkSize - 1)]);
  return node;
}

uintptr_t XArray::load(uint64_t index) const {
  const Node* leaf = leaf_for(index);
  return leaf ? leaf->slots[index & (kChunkSize - 1)] : 0;
}

uintptr_t XArray::store(uint64_t index, uintptr_t entry) {
  if (!entry) return erase(index);
  if (!head_) {
    // The first node is as tall as this index needs, so no empty node is
    // left below a later top.
    unsigned shift = 0;
    while (index > max_index(shift)) shift += kChunkShift;
    head_ = new_node(shift, nullptr, 0);
  }
  while (index > max_index(head_->shift)) {  // xas_expand
    Node* top = new_node(head_->shift + kChunkShift, nullptr, 0);
    top->slots[0] = reinterpret_cast<uintptr_t>(head_);
    top->count = 1;
    head_->parent = top;
    head_ = top;
  }
  Node* node = head_;
  while (node->shift > 0) {
    const unsigned off = (index >> node->shift) & (kChunkSize - 1);
    if (!node->slots[off]) {
      node->slots[off] =
          reinterpret_cast<uintptr_t>(new_node(node->shift - kChunkShift, node, off));
      ++node->count;
    }
    node = reinterpret_cast<Node*>(node->slots[off]);
  }
  uintptr_t& slot = node->slots[index & (kChunkSize - 1)];
  const uintptr_t old = slot;
  slot = entry;
  if (!old) {
    ++node->count;
    ++count_;
  }
  return old;
}

uintptr_t XArray::erase(uint64_t index) {
  Node* node = leaf_for(index);
  if (!node) return 0;
  uintptr_t& slot = node->slots[index & (kChunkSize - 1)];
  const uintptr_t old = slot;
  if (!old) return 0;
  slot = 0;
  --node->count;
  --count_;
  // xas_delete_node: an emptied node leaves its parent.
  while (node->count == 0) {
    Node* parent = node->parent;
    if (parent) {
      parent->slots[node->offset] = 0;
      --parent->count;
    } else {
      head_ = nullptr;
    }
    delete node;
    if (!parent) return old;
    node = parent;
  }
  // xas_shrink: a top with only slot 0 is one level too tall.
  while (head_->shift > 0 && head_->count == 1 && head_->slots[0]) {
    Node* child = reinterpret_cast<Node*>(head_->slots[0]);
    delete head_;
    child->parent = nullptr;
    child->offset = 0;
    head_ = child;
  }
  return old;
}

uintptr_t XArray::find(uint64_t* index, uint64_t last) const {
  uint64_t i = *index;
  const Node* node = head_;
  if (!node || i > last || i > max_index(node->shift)) return 0;
  unsigned off = (i >> node->shift) & (kChunkSize - 1);
  for (;;) {
    const unsigned shift = node->shift;
    while (off < kChunkSize && !node->slots[off]) {
      ++off;
      i = ((i >> shift) + 1) << shift;  // the first index of the next slot
      if (i == 0 || i > last) return 0;
    }
    if (off == kChunkSize) {
      // Past this node: `i` is the first index of the parent's next slot.
      off = node->offset + 1u;
      node = node->parent;
      if (!node) return 0;
      continue;
    }
    const uintptr_t v = node->slots[off];
    if (shift == 0) {
      *index = i;
      return v;
    }
    node = reinterpret_cast<const Node*>(v);
    off = (i >> node->shift) & (kChunkSize - 1);
  }
}

std::string XArray::check_node(const Node* node, uint64_t* entries) const {
  unsigned used = 0;
  for (unsigned off = 0; off < kChunkSize; ++off) {
    const uintptr_t v = node->slots[off];
    if (!v) continue;
    ++used;
    if (node->shift == 0) {
      ++*entries;
      continue;
    }
    const Node* child = reinterpret_cast<const Node*>(v);
    if (child->parent != node || child->offset != off || child->shift + kChunkShift != node->shift)
      return fmt::format(
          "xarray: node at shift {} slot {}: child says parent {} offset {} shift {}", node->shift,
          off, static_cast<const void*>(child->parent), child->offset, child->shift);
    if (std::string err = check_node(child, entries); !err.empty()) return err;
  }
  if (used != node->count || used == 0)
    return fmt::format("xarray: node at shift {} counts {} slots, holds {}", node->shift,
                       node->count, used);
  return {};
}

std::string XArray::check() const {
  if (!head_)
    return count_ == 0 ? std::string{} : fmt::format("xarray: no nodes, {} entries", count_);
  if (head_->parent) return "xarray: the top node has a parent";
  if (head_->shift > 0 && head_->count == 1 && head_->slots[0])
    return fmt::format("xarray: the top node (shift {}) holds only slot 0", head_->shift);
  uint64_t entries = 0;
  if (std::string err = check_node(head_, &entries); !err.empty()) return err;
  if (entries != count_)
    return fmt::format("xarray: {} entries counted, {} found", count_, entries);
  return {};
}

}  // namespace mmkit
