// A small zsmalloc for zswap's compressed objects (mm/zsmalloc.c). See
// zswap_pool.h.
#include "swap/zswap_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "page_alloc/page_alloc.h"

namespace mmkit {

// One block of 2^order pages cut into equal slots of its class.
struct ZsPage {
  Page* first = nullptr;
  ZsClass* cls = nullptr;
  uint32_t inuse = 0;
  std::vector<uint16_t> free_slots;  // a stack of free slot numbers
  std::vector<uint8_t> used;         // per slot: 1 while allocated
  int64_t partial_pos = -1;          // index in cls->partial, -1 when full
};

struct ZsClass {
  std::mutex lock;
  unsigned size = 0;             // bytes per object
  unsigned order = 0;            // zspage = 2^order pages
  unsigned objs = 0;             // objects per zspage
  std::vector<ZsPage*> partial;  // zspages with a free slot (guarded by lock)
  std::unordered_set<ZsPage*> all;
  uint64_t objects = 0;  // allocated objects (lock)
};

namespace {

// get_pages_per_zspage(): the block of 1, 2 or 4 pages that leaves the
// smallest share unused (the smaller block on a tie).
unsigned best_order(unsigned size) {
  unsigned best = 0, best_usage = 0;
  for (unsigned order = 0; order <= 2; ++order) {
    const unsigned bytes = PAGE_SIZE << order;
    const unsigned usage = (bytes / size) * size * 100 / bytes;
    if (usage > best_usage) best = order, best_usage = usage;
  }
  return best;
}

void remove_partial(ZsClass& c, ZsPage* zp) {
  if (zp->partial_pos < 0) return;
  ZsPage* last = c.partial.back();
  c.partial[static_cast<size_t>(zp->partial_pos)] = last;
  last->partial_pos = zp->partial_pos;
  c.partial.pop_back();
  zp->partial_pos = -1;
}

void add_partial(ZsClass& c, ZsPage* zp) {
  if (zp->partial_pos >= 0) return;
  zp->partial_pos = static_cast<int64_t>(c.partial.size());
  c.partial.push_back(zp);
}

}  // namespace

ZsPool::ZsPool(Machine& m) : m_(m), classes_(std::make_unique<ZsClass[]>(kNrClasses)) {
  for (unsigned i = 0; i < kNrClasses; ++i) {
    ZsClass& c = classes_[i];
    c.size = (i + 1) * kClassDelta;
    c.order = best_order(c.size);
    c.objs = (PAGE_SIZE << c.order) / c.size;
  }
}

ZsPool::~ZsPool() {
  // The machine's pages go with the machine; only the bookkeeping is freed.
  for (unsigned i = 0; i < kNrClasses; ++i)
    for (ZsPage* zp : classes_[i].all) delete zp;
}

ZsHandle ZsPool::malloc(size_t size, gfp_t gfp) {
  if (size == 0 || size > PAGE_SIZE) return {};
  ZsClass& c = classes_[(size + kClassDelta - 1) / kClassDelta - 1];
  std::lock_guard<std::mutex> g(c.lock);
  ZsPage* zp = c.partial.empty() ? nullptr : c.partial.back();
  if (!zp) {
    Page* first = alloc_pages(m_, gfp, c.order);
    if (!first) return {};
    zp = new ZsPage;
    zp->first = first;
    zp->cls = &c;
    zp->used.assign(c.objs, 0);
    zp->free_slots.reserve(c.objs);
    for (unsigned i = c.objs; i-- > 0;) zp->free_slots.push_back(static_cast<uint16_t>(i));
    c.all.insert(zp);
    add_partial(c, zp);
    pages_.fetch_add(uint64_t{1} << c.order, std::memory_order_relaxed);
  }
  const uint16_t idx = zp->free_slots.back();
  zp->free_slots.pop_back();
  zp->used[idx] = 1;
  ++zp->inuse;
  ++c.objects;
  if (zp->free_slots.empty()) remove_partial(c, zp);
  return {zp, idx};
}

void ZsPool::free(ZsHandle h) {
  ZsPage* zp = h.zspage;
  ZsClass& c = *zp->cls;
  Page* release = nullptr;
  {
    std::lock_guard<std::mutex> g(c.lock);
    if (!zp->used[h.idx]) {
      m_.warn(fmt::format("zsmalloc: double free of object {} in a zspage of class {}\n", h.idx,
                          c.size));
      return;
    }
    zp->used[h.idx] = 0;
    zp->free_slots.push_back(static_cast<uint16_t>(h.idx));
    --zp->inuse;
    --c.objects;
    if (zp->inuse == 0) {
      remove_partial(c, zp);
      c.all.erase(zp);
      release = zp->first;
      pages_.fetch_sub(uint64_t{1} << c.order, std::memory_order_relaxed);
      delete zp;
    } else {
      add_partial(c, zp);
    }
  }
  if (release) free_pages(m_, release, c.order);
}

char* ZsPool::map(ZsHandle h) const {
  return m_.phys_window(m_.page_to_pfn(h.zspage->first)) + size_t{h.idx} * h.zspage->cls->size;
}

unsigned ZsPool::class_size(ZsHandle h) const {
  return h.zspage->cls->size;
}

std::string ZsPool::check(const std::vector<std::pair<ZsHandle, size_t>>& objects) {
  // The objects by zspage; then each class under its own lock (the caller
  // keeps malloc and free out, so one class at a time is a snapshot).
  std::unordered_map<const ZsPage*, std::vector<std::pair<uint32_t, size_t>>> by_zspage;
  for (const auto& [h, len] : objects) by_zspage[h.zspage].emplace_back(h.idx, len);
  uint64_t pages = 0, matched = 0;
  for (unsigned i = 0; i < kNrClasses; ++i) {
    ZsClass& c = classes_[i];
    std::lock_guard<std::mutex> g(c.lock);
    uint64_t objs = 0;
    for (const ZsPage* zp : c.all) {
      pages += uint64_t{1} << c.order;
      objs += zp->inuse;
      if (zp->cls != &c) return "zswap pool: a zspage names another class";
      if (zp->inuse + zp->free_slots.size() != c.objs)
        return fmt::format("zswap pool: class {}: a zspage's {} used and {} free slots are not {}",
                           c.size, zp->inuse, zp->free_slots.size(), c.objs);
      if ((zp->partial_pos >= 0) != (zp->inuse < c.objs))
        return fmt::format(
            "zswap pool: class {}: a zspage with {} of {} objects is {}on the partial list", c.size,
            zp->inuse, c.objs, zp->partial_pos >= 0 ? "" : "not ");
      const auto it = by_zspage.find(zp);
      const size_t held = it == by_zspage.end() ? 0 : it->second.size();
      if (held != zp->inuse)
        return fmt::format("zswap pool: class {}: a zspage counts {} objects, entries hold {}",
                           c.size, zp->inuse, held);
      if (it == by_zspage.end()) continue;
      ++matched;
      std::unordered_set<uint32_t> idxs;
      for (const auto& [idx, len] : it->second) {
        if (len > c.size)
          return fmt::format("zswap pool: a {}-byte object in class {}", len, c.size);
        if (idx >= c.objs || !zp->used[idx])
          return fmt::format("zswap pool: object {} of a class-{} zspage is not allocated", idx,
                             c.size);
        if (!idxs.insert(idx).second) return "zswap pool: two entries share one object";
      }
    }
    if (objs != c.objects)
      return fmt::format("zswap pool: class {}: {} objects in zspages, counted {}", c.size, objs,
                         c.objects);
  }
  if (matched != by_zspage.size())
    return "zswap pool: an entry's object is in no zspage of the pool";
  if (pages != pages_.load())
    return fmt::format("zswap pool: {} pages in zspages, pool_total_size counts {}", pages,
                       pages_.load());
  return "";
}

}  // namespace mmkit
