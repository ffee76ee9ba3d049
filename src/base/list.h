// Intrusive doubly linked circular list, after Linux's include/linux/list.h.
//
// A ListHead is embedded in the object it links (a Page's lru field, say);
// container_of recovers the object. An empty list points at itself. Nothing
// here allocates, so the allocators can use it on their own fast paths.
#pragma once

#include <cstddef>

namespace mmkit {

struct ListHead {
  ListHead* next;
  ListHead* prev;

  void init() { next = prev = this; }
  bool empty() const { return next == this; }
  bool singular() const { return !empty() && next == prev; }

  // Insert `n` between two known consecutive entries.
  static void insert(ListHead* n, ListHead* prev, ListHead* next) {
    next->prev = n;
    n->next = next;
    n->prev = prev;
    prev->next = n;
  }
  void add(ListHead* n) { insert(n, this, next); }       // at the head
  void add_tail(ListHead* n) { insert(n, prev, this); }  // at the tail
  static void del(ListHead* entry) {
    entry->next->prev = entry->prev;
    entry->prev->next = entry->next;
    entry->next = entry->prev = nullptr;
  }
  // Move every entry of `other` to the head of this list; `other` is left empty.
  void splice(ListHead* other) {
    if (other->empty()) return;
    ListHead* first = other->next;
    ListHead* last = other->prev;
    first->prev = this;
    last->next = next;
    next->prev = last;
    next = first;
    other->init();
  }
  std::size_t size() const {
    std::size_t n = 0;
    for (const ListHead* p = next; p != this; p = p->next) ++n;
    return n;
  }
};

// The byte offset of `member` in T (offsetof for a pointer to member): taken
// on storage that is never constructed, which the compiler folds to a constant.
template <class T, class M>
inline std::ptrdiff_t member_offset(M T::*member) {
  alignas(T) static char storage[sizeof(T)];
  const T* obj = reinterpret_cast<const T*>(storage);
  return reinterpret_cast<const char*>(&(obj->*member)) - storage;
}

template <class T, class M>
inline T* container_of(M* ptr, M T::*member) {
  return reinterpret_cast<T*>(reinterpret_cast<char*>(ptr) - member_offset(member));
}

}  // namespace mmkit
