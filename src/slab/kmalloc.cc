// The kmalloc family (mm/slab_common.c, include/linux/slab.h): size classes
// 8, 16, 32, 64, 96, 128, 192, 256, ... 8192 served by kmalloc caches;
// larger sizes go straight to the page allocator as compound pages, which
// kfree recognises by the missing PG_slab.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/bitops.h"
#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab_debug.h"

namespace mmkit {

namespace {

unsigned kmalloc_size(unsigned index) {
  return index == 1 ? 96 : index == 2 ? 192 : 1u << index;
}

std::string kmalloc_name(unsigned size) {
  return size >= 1024 ? fmt::format("kmalloc-{}k", size >> 10) : fmt::format("kmalloc-{}", size);
}

unsigned get_order(size_t size) {
  return size <= PAGE_SIZE ? 0 : static_cast<unsigned>(fls((size - 1) >> PAGE_SHIFT));
}

void* kmalloc_large(Machine& m, size_t size, gfp_t gfp, int node) {
  const unsigned order = get_order(size);
  if (order > MAX_PAGE_ORDER) {
    if (!(gfp & __GFP_NOWARN))
      m.warn(fmt::format("WARNING: kmalloc: {} bytes is above the largest block ({} bytes)\n", size,
                         PAGE_SIZE << MAX_PAGE_ORDER));
    return nullptr;
  }
  Page* page = alloc_pages(m, (gfp | __GFP_COMP) & ~__GFP_HIGHMEM, order, node);
  return page ? m.page_address(page) : nullptr;
}

}  // namespace

SlabState& slab_state_init(Machine& m) {
  return *static_cast<SlabState*>(m.ensure_layer_state(Layer::kSlab, [&m] {
    auto st = std::make_unique<SlabState>(m.nr_cpus());
    for (unsigned i = 1; i < std::size(st->kmalloc_caches); ++i) {
      auto* s = new KmemCache();
      s->machine = &m;
      s->object_size = kmalloc_size(i);
      s->name = kmalloc_name(s->object_size);
      s->align = 8;  // ARCH_KMALLOC_MINALIGN
      kmem_cache_open(s, st->percpu);
      st->kmalloc_caches[i] = s;
    }
    // Creation order of create_kmalloc_caches(): by size.
    for (unsigned size :
         {8u, 16u, 32u, 64u, 96u, 128u, 192u, 256u, 512u, 1024u, 2048u, 4096u, 8192u})
      st->caches.push_back(st->kmalloc_caches[kmalloc_index(size)]);
    // slub_debug= before the caches can be reached: no object is handed
    // out by a cache that is laid out anew for its debug metadata.
    if (!m.config().slub_debug.empty()) apply_slub_debug_param(m, *st);
    return st;
  }));
}

KmemCache* kmalloc_cache(Machine& m, size_t size) {
  if (size == 0 || size > KMALLOC_MAX_CACHE_SIZE) return nullptr;
  return slab_state(m).kmalloc_caches[kmalloc_index(size)];
}

void* kmalloc_special(Machine& m, size_t size, gfp_t gfp, int node) {
  if (size == 0) return ZERO_SIZE_PTR;
  void* p = kmalloc_large(m, size, gfp, node);
  if (p && (gfp & __GFP_ZERO)) std::memset(p, 0, size);
  return p;
}

void* kmalloc_first(Machine& m, size_t size, gfp_t gfp, int node) {
  SlabState& st = slab_state_init(m);
  return slab_alloc_fast(m, st.kmalloc_caches[kmalloc_index(size)], this_cpu(m), gfp, node);
}

void* kcalloc(Machine& m, size_t n, size_t size, gfp_t gfp) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) return nullptr;
  return kmalloc(m, bytes, gfp | __GFP_ZERO);
}

// kfree of what is not a slab object: a large kmalloc, or a bad pointer.
void kfree_special(Machine& m, const void* p) {
  if (ZERO_OR_NULL_PTR(p)) return;
  void* obj = const_cast<void*>(p);
  if (!m.is_direct_mapped(obj)) {
    m.warn(fmt::format("BUG: kfree: {} is not a kmalloc pointer (outside the direct map)\n", p));
    return;
  }
  Page* page = m.virt_to_page(obj);
  Page* head = page->head();
  if (page != head || m.page_address(head) != obj || !head->ref_count()) {
    m.warn(fmt::format("BUG: kfree: {} is not the start of a kmalloc allocation\n", p));
    return;
  }
  free_pages(m, head, head->compound_order());
}

size_t ksize(Machine& m, const void* p) {
  if (ZERO_OR_NULL_PTR(p)) return 0;
  Page* head = m.virt_to_page(p)->head();
  if (head->test(PG_slab)) return slab_cache(head)->object_size;
  return PAGE_SIZE << head->compound_order();
}

void* krealloc(Machine& m, const void* p, size_t new_size, gfp_t gfp) {
  if (new_size == 0) {
    kfree(m, p);
    return ZERO_SIZE_PTR;
  }
  const size_t old = ksize(m, p);
  if (old >= new_size) {
    if (gfp & __GFP_ZERO)
      std::memset(static_cast<char*>(const_cast<void*>(p)) + new_size, 0, old - new_size);
    return const_cast<void*>(p);
  }
  void* q = kmalloc(m, new_size, gfp);
  if (!q) return nullptr;
  if (old) std::memcpy(q, p, old);
  kfree(m, p);
  return q;
}

}  // namespace mmkit
