// SLUB's allocation and free paths (mm/slub.c, Linux 6.1's frozen-slab design).
//
// Fast paths (kmem_cache_alloc / kmem_cache_free, in slab_api.cc) pop and
// push the bound CPU's private freelist. When it runs dry, ___slab_alloc()
// here refills it: first the rest of the active slab's own freelist (remote
// frees collected there), then the CPU's partial slabs, then the node's
// partial list (taking a few more slabs for the CPU while it holds the lock),
// then a new slab from the page allocator. A free that is not to the CPU's
// active slab is __slab_free(): one compare-and-swap on the slab's word, and
// list work only when the slab goes from full to partial (it is frozen onto
// the freeing CPU's partial list) or from partial to empty (node list_lock).
#include <fmt/format.h>

#include <cstring>

#include "base/bitops.h"
#include "page_alloc/page_alloc.h"
#include "slab/kmem_cache.h"
#include "slab/slab_debug.h"

namespace mmkit {

namespace {

inline void* word_head(char* base, uint32_t head) {
  return head ? base + head - 1 : nullptr;
}
inline uint32_t head_of(char* base, void* obj) {
  return obj ? static_cast<uint32_t>(static_cast<char*>(obj) - base + 1) : 0;
}
inline int slab_nid(const Machine& m, const Page* slab) {
  return m.page_zone(slab)->node;
}

void add_partial(KmemCacheNode* n, Page* slab, bool tail) REQUIRES(n->list_lock) {
  n->nr_partial++;
  if (tail)
    n->partial.add_tail(&slab->lru);
  else
    n->partial.add(&slab->lru);
}

void remove_partial(KmemCacheNode* n, Page* slab) REQUIRES(n->list_lock) {
  ListHead::del(&slab->lru);
  n->nr_partial--;
}

NodeStat slab_stat(const KmemCache* s) {
  return (s->flags & SLAB_RECLAIM_ACCOUNT) ? NodeStat::NR_SLAB_RECLAIMABLE
                                           : NodeStat::NR_SLAB_UNRECLAIMABLE;
}

// allocate_slab(): pages for a new slab (falling back to the minimum order),
// its free objects chained in address order. Returns the slab frozen and
// fully in use, and its freelist through *freelist.
// With `lazy` (a plain cache going to a CPU) the free pointers stay
// unwritten and *lazy_end gets the end of the objects: the CPU hands them
// out in order (KmemCacheCpu::bump), as Linux's would pop a freelist built
// in address order, without touching each object twice.
Page* allocate_slab(KmemCache* s, KmemCacheCpu* c, gfp_t gfp, int node, void** freelist,
                    char** lazy_end = nullptr) {
  Machine& m = *s->machine;
  const gfp_t flags =
      (gfp & ~(__GFP_ZERO | __GFP_HIGHMEM | __GFP_MOVABLE | __GFP_COLD)) | s->allocflags;
  unsigned order = s->order, objects = s->objects;
  Page* slab = nullptr;
  if (order > s->min_order)
    slab = alloc_pages(m, (flags | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL, order, node);
  if (!slab) {
    order = s->min_order;
    objects = s->min_objects;
    slab = alloc_pages(m, flags, order, node);
    if (!slab) return nullptr;
  }
  slab->set(PG_slab);
  slab->mapping = s;
  set_slab_next(slab, nullptr);
  char* base = slab_base(m, slab);
  unsigned colour = 0;
  if ((s->flags & SLAB_COLOUR) && s->colour_slack && c) {
    colour = c->colour_next;
    c->colour_next = colour + kCacheLine > s->colour_slack ? 0 : colour + kCacheLine;
  }
  slab->mapcount.store(static_cast<int32_t>(colour),
                       std::memory_order_relaxed);  // the slab's colour
  char* first = base + colour + s->red_left_pad;
  if (lazy_end && c && !s->debug() && !s->ctor) {
    *lazy_end = first + static_cast<size_t>(objects) * s->size;
  } else if (!s->debug() && !s->ctor && !s->fp_hardened) {
    // The common case as a tight loop: the cache's fields stay in registers.
    const size_t stride = s->size, offset = s->offset;
    char* obj = first;
    for (unsigned i = 1; i < objects; ++i, obj += stride)
      *reinterpret_cast<void**>(obj + offset) = obj + stride;
    *reinterpret_cast<void**>(obj + offset) = nullptr;
  } else {
    for (unsigned i = 0; i < objects; ++i) {
      char* obj = first + static_cast<size_t>(i) * s->size;
      setup_object_debug(s, obj);
      if (s->ctor) s->ctor(obj);
      set_freepointer(s, obj, i + 1 < objects ? obj + s->size : nullptr);
    }
  }
  slab_word(slab).store(SlabWord{0, objects, objects, true}.pack(), std::memory_order_relaxed);
  KmemCacheNode* n = s->node[slab_nid(m, slab)].get();
  n->account_slab(1, objects);
  m.node(slab_nid(m, slab)).stat[static_cast<unsigned>(slab_stat(s))].add(int64_t{1} << order);
  *freelist = first;
  return slab;
}

void discard_slab(KmemCache* s, Page* slab) {
  Machine& m = *s->machine;
  const SlabWord w = SlabWord::unpack(slab_word(slab).load(std::memory_order_relaxed));
  const unsigned order = slab->compound_order();
  const int nid = slab_nid(m, slab);
  KmemCacheNode* n = s->node[nid].get();
  n->account_slab(-1, -static_cast<int64_t>(w.objects));
  m.node(nid).stat[static_cast<unsigned>(slab_stat(s))].add(-(int64_t{1} << order));
  slab->clear(PG_slab);
  slab->mapping = nullptr;
  slab->index = 0;
  slab->private_ = 0;
  slab->mapcount.store(0, std::memory_order_relaxed);
  free_pages(m, slab, order);
}

// Counts a chain of free objects and finds its last one.
unsigned chain_length(const KmemCache* s, void* head, void** tail) {
  unsigned n = 0;
  for (void* p = head; p; p = get_freepointer_checked(s, nullptr, p)) {
    ++n;
    *tail = p;
  }
  return n;
}

// deactivate_slab(): a CPU gives its active slab back, with the objects
// still on its private freelist; the slab goes to the node's partial list,
// stays off lists when full, or is freed when empty and the node has enough.
void deactivate_slab(KmemCache* s, Page* slab, void* freelist) {
  Machine& m = *s->machine;
  char* base = slab_base(m, slab);
  void* tail = nullptr;
  const unsigned nr = chain_length(s, freelist, &tail);
  KmemCacheNode* n = s->node[slab_nid(m, slab)].get();
  n->list_lock.lock();
  std::atomic<uint64_t>& word = slab_word(slab);
  SlabWord nw;
  for (uint64_t old = word.load(std::memory_order_acquire);;) {
    const SlabWord ow = SlabWord::unpack(old);
    nw = ow;
    if (freelist) {
      set_freepointer(s, tail, word_head(base, ow.head));
      nw.head = head_of(base, freelist);
    }
    nw.inuse -= nr;
    nw.frozen = false;
    if (word.compare_exchange_weak(old, nw.pack(), std::memory_order_acq_rel)) break;
  }
  if (nw.inuse == 0 && n->nr_partial >= s->min_partial) {
    n->list_lock.unlock();
    discard_slab(s, slab);
    return;
  }
  if (nw.head) add_partial(n, slab, freelist != nullptr);
  n->list_lock.unlock();
}

// __unfreeze_partials(): a chain of a CPU's partial slabs back to their nodes.
void unfreeze_partials(KmemCache* s, Page* chain) {
  Machine& m = *s->machine;
  while (chain) {
    Page* slab = chain;
    chain = slab_next(slab);
    set_slab_next(slab, nullptr);
    KmemCacheNode* n = s->node[slab_nid(m, slab)].get();
    n->list_lock.lock();
    std::atomic<uint64_t>& word = slab_word(slab);
    SlabWord nw;
    for (uint64_t old = word.load(std::memory_order_acquire);;) {
      nw = SlabWord::unpack(old);
      nw.frozen = false;
      if (word.compare_exchange_weak(old, nw.pack(), std::memory_order_acq_rel)) break;
    }
    if (nw.inuse == 0 && n->nr_partial >= s->min_partial) {
      n->list_lock.unlock();
      discard_slab(s, slab);
      continue;
    }
    add_partial(n, slab, true);
    n->list_lock.unlock();
  }
}

// put_cpu_partial(): a slab just frozen by a free joins this CPU's partial
// slabs; when the CPU already holds cpu_partial_slabs, those go back first.
void put_cpu_partial(KmemCache* s, KmemCacheCpu* c, Page* slab) {
  Page* to_unfreeze = nullptr;
  if (c->partial_slabs >= s->cpu_partial_slabs) {
    to_unfreeze = c->partial;
    c->partial = nullptr;
    c->partial_slabs = 0;
  }
  set_slab_next(slab, c->partial);
  c->partial = slab;
  c->partial_slabs++;
  if (to_unfreeze) unfreeze_partials(s, to_unfreeze);
}

// get_freelist(): takes a frozen slab's whole freelist for its CPU; a slab
// with nothing free is unfrozen (it is full and on no list).
void* get_freelist(KmemCache* s, Page* slab) {
  char* base = slab_base(*s->machine, slab);
  std::atomic<uint64_t>& word = slab_word(slab);
  for (uint64_t old = word.load(std::memory_order_acquire);;) {
    const SlabWord ow = SlabWord::unpack(old);
    SlabWord nw = ow;
    nw.head = 0;
    nw.inuse = ow.objects;
    nw.frozen = ow.head != 0;
    if (word.compare_exchange_weak(old, nw.pack(), std::memory_order_acq_rel))
      return word_head(base, ow.head);
  }
}

// acquire_slab(): freeze a partial slab for this CPU (under list_lock),
// taking its freelist when `take` (the slab becomes the active one).
void* acquire_slab(KmemCache* s, KmemCacheNode* n, Page* slab, bool take) REQUIRES(n->list_lock) {
  char* base = slab_base(*s->machine, slab);
  std::atomic<uint64_t>& word = slab_word(slab);
  void* freelist;
  for (uint64_t old = word.load(std::memory_order_acquire);;) {
    const SlabWord ow = SlabWord::unpack(old);
    SlabWord nw = ow;
    nw.frozen = true;
    if (take) {
      nw.head = 0;
      nw.inuse = ow.objects;
    }
    freelist = word_head(base, ow.head);
    if (word.compare_exchange_weak(old, nw.pack(), std::memory_order_acq_rel)) break;
  }
  remove_partial(n, slab);
  return freelist;
}

// get_partial_node(): a partial slab of node `nid` for the CPU, and up to
// half of cpu_partial_slabs more onto its partial list (none for a cache
// with sheaves, which refill from slabs as Linux 6.18's do).
void* get_partial_node(KmemCache* s, int nid, KmemCacheCpu* c, Page** out) {
  KmemCacheNode* n = s->node[nid].get();
  void* object = nullptr;
  unsigned taken = 0;
  SpinGuard g(n->list_lock);
  for (ListHead* p = n->partial.next; p != &n->partial;) {
    Page* slab = container_of(p, &Page::lru);
    p = p->next;
    if (!object) {
      object = acquire_slab(s, n, slab, true);
      *out = slab;
    } else {
      acquire_slab(s, n, slab, false);
      set_slab_next(slab, c->partial);
      c->partial = slab;
      c->partial_slabs++;
      ++taken;
    }
    // A cache with sheaves takes the one slab: the sheaf is the CPU's
    // reserve, and slabs stocked on a CPU that allocates less than it frees
    // (a consumer of another thread's blocks) only hold memory others could
    // have used (producer_consumer's peak RSS 19.5 -> 15.5 MiB).
    if (!c || !s->has_cpu_partial() || (s->flags & SLAB_HAS_SHEAVES) ||
        taken > s->cpu_partial_slabs / 2)
      break;
  }
  return object;
}

// The first non-null take(nid) over the requested node, else (when any
// node will do) the others in zonelist order: get_partial()'s walk, with
// get_any_partial() for the rest.
template <class Take>
void* partial_from_nodes(Machine& m, int node, int local, gfp_t gfp, Take&& take) {
  const int first = node == NUMA_NO_NODE ? local : node;
  if (void* obj = take(first)) return obj;
  if (node != NUMA_NO_NODE || (gfp & __GFP_THISNODE)) return nullptr;
  int last = first;
  for (Zone* const* zp = m.node(first).zonelist_fallback; *zp; ++zp) {
    if ((*zp)->node == last || (*zp)->node == first) continue;
    last = (*zp)->node;
    if (void* obj = take(last)) return obj;
  }
  return nullptr;
}

// get_partial(): a partial slab for the CPU (get_partial_node) from the
// nodes the request may use.
void* get_partial(KmemCache* s, int node, int local, gfp_t gfp, KmemCacheCpu* c, Page** out) {
  return partial_from_nodes(*s->machine, node, local, gfp,
                            [&](int nid) { return get_partial_node(s, nid, c, out); });
}

// alloc_single_from_partial() (Linux 6.2) for a caller bound to no CPU, up
// to `n` objects: they come off the first partial slab of node `nid` under
// list_lock, with no slab frozen and no freelist walked past them. Objects
// leave an unfrozen slab only here, under the lock, so the chain from the
// head is stable; frees push concurrently (the CAS retries), and a free with
// list work takes the lock first. A take that fills the slab takes it off
// the list before its CAS, so that no free can find it full and unfrozen
// while it is still listed.
unsigned alloc_from_partial(KmemCache* s, int nid, void** out, unsigned n) {
  KmemCacheNode* kn = s->node[nid].get();
  SpinGuard g(kn->list_lock);
  if (kn->partial.empty()) return 0;
  Page* slab = container_of(kn->partial.next, &Page::lru);
  char* base = slab_base(*s->machine, slab);
  std::atomic<uint64_t>& word = slab_word(slab);
  bool listed = true;
  for (uint64_t old = word.load(std::memory_order_acquire);;) {
    const SlabWord ow = SlabWord::unpack(old);
    unsigned taken = 0;
    void* next = word_head(base, ow.head);
    while (taken < n && next) {
      out[taken++] = next;
      next = get_freepointer_checked(s, slab, next);
    }
    SlabWord nw = ow;
    nw.head = head_of(base, next);
    nw.inuse += taken;
    if (listed == !nw.head) {  // full after this take: off the list first; else back on
      if (listed)
        remove_partial(kn, slab);
      else
        add_partial(kn, slab, false);
      listed = !listed;
    }
    if (word.compare_exchange_weak(old, nw.pack(), std::memory_order_acq_rel)) return taken;
  }
}

// Linux's has_cpu_slab(), which flush_all tests before it flushes a CPU:
// here it also spares the write, so the per-CPU copies of the CPUs that
// never ran a cache stay untouched (zero pages of the host) through a
// flush_all (kmem_cache_set_cpu_partial flushes every CPU of every cache).
bool has_cpu_slab(const KmemCacheCpu* c) {
  return c->slab || c->partial || c->sheaf_size || c->defer_slab || c->bump != c->bump_end;
}

void flush_cpu_slab(KmemCache* s, KmemCacheCpu* c) {
  if (!has_cpu_slab(c)) return;
  // The sheaf first: its objects may belong to the active slab.
  Machine& m = *s->machine;
  for (unsigned i = 0; i < c->sheaf_size; ++i) {
    void* obj = c->sheaf[i];
    slab_free_slow(s, nullptr, m.virt_to_page(obj)->head(), obj, obj, 1);
  }
  c->sheaf_size = 0;
  flush_deferred_frees(s, nullptr, c);
  cpu_slab_materialize(s, c);
  if (c->slab) deactivate_slab(s, c->slab, c->freelist);
  c->slab = nullptr;
  c->freelist = nullptr;
  Page* chain = c->partial;
  c->partial = nullptr;
  c->partial_slabs = 0;
  unfreeze_partials(s, chain);
}

void slab_out_of_memory(KmemCache* s, gfp_t gfp, int node) {
  std::string msg = fmt::format(
      "SLUB: Unable to allocate memory on node {}, gfp={:#x}({})\n  cache: {}, object size: {}, "
      "buffer size: {}, default order: {}, min order: {}\n",
      node, gfp, format_gfp(gfp), s->name, s->object_size, s->size, s->order, s->min_order);
  for (unsigned i = 0; i < s->node.size(); ++i) {
    KmemCacheNode* n = s->node[i].get();
    const int64_t slabs = n->nr_slabs(), objs = n->total_objects();
    msg += fmt::format("  node {}: slabs: {}, objs: {}, free: {}\n", i, slabs, objs,
                       count_partial_free(s, static_cast<int>(i)));
  }
  s->machine->warn(msg);
}

}  // namespace

void* slab_alloc_slow(KmemCache* s, CpuState* cpu, gfp_t gfp, int node) {
  Machine& m = *s->machine;
  KmemCacheCpu* c = cpu ? &s->cpu_slab[cpu->id] : nullptr;
  const int local = cpu ? cpu->node : 0;
  void* freelist = nullptr;
  Page* slab = nullptr;

  if (!c) {
    // A thread bound to no CPU has no per-CPU slab: one object from a
    // partial slab, or a new slab whose other objects go to the node list.
    const auto take_one = [&](int nid) -> void* {
      void* obj;
      return alloc_from_partial(s, nid, &obj, 1) ? obj : nullptr;
    };
    if (void* obj = partial_from_nodes(m, node, local, gfp, take_one)) return obj;
    slab = allocate_slab(s, nullptr, gfp, node, &freelist);
    if (!slab) {
      if (!(gfp & __GFP_NOWARN)) slab_out_of_memory(s, gfp, node);
      return nullptr;
    }
    KmemCacheCpu tmp;
    tmp.slab = slab;
    tmp.freelist = get_freepointer_checked(s, slab, freelist);
    flush_cpu_slab(s, &tmp);
    return freelist;
  }

  // Frees this CPU held back go to their slab first: it may be the one to
  // refill from.
  if (c->defer_slab) flush_deferred_frees(s, cpu, c);
  // The fast path declined with unwritten objects left (__GFP_ZERO, a node
  // request, fault injection): chain them, so what follows sees one list.
  cpu_slab_materialize(s, c);
  for (;;) {
    slab = c->slab;
    if (slab && node != NUMA_NO_NODE && slab_nid(m, slab) != node) {
      deactivate_slab(s, slab, c->freelist);
      c->slab = nullptr;
      c->freelist = nullptr;
      slab = nullptr;
    }
    if (slab) {
      if (c->freelist) {  // the fast path declined (debug, __GFP_ZERO): use it here
        freelist = c->freelist;
        break;
      }
      freelist = get_freelist(s, slab);  // objects freed remotely meanwhile
      if (freelist) break;
      c->slab = nullptr;  // full: it was unfrozen and sits on no list
    }
    if (c->partial && node == NUMA_NO_NODE) {
      slab = c->partial;
      c->partial = slab_next(slab);
      c->partial_slabs--;
      set_slab_next(slab, nullptr);
      c->slab = slab;
      c->freelist = nullptr;
      continue;
    }
    freelist = get_partial(s, node, local, gfp, c, &slab);
    if (freelist) {
      c->slab = slab;
      break;
    }
    char* lazy_end = nullptr;
    slab = allocate_slab(s, c, gfp, node, &freelist, &lazy_end);
    if (!slab) {
      if (!(gfp & __GFP_NOWARN)) slab_out_of_memory(s, gfp, node == NUMA_NO_NODE ? local : node);
      return nullptr;
    }
    c->slab = slab;
    if (lazy_end) {
      c->freelist = nullptr;
      c->bump = static_cast<char*>(freelist) + s->size;
      c->bump_end = lazy_end;
      return freelist;
    }
    break;
  }
  c->freelist = get_freepointer_checked(s, slab, freelist);
  return freelist;
}

unsigned kmem_cache_alloc_from_partial(KmemCache* s, int nid, void** out, unsigned n) {
  if (s->debug() || n == 0 || nid < 0 || static_cast<unsigned>(nid) >= s->machine->nr_nodes())
    return 0;
  return alloc_from_partial(s, nid, out, n);
}

void slab_free_slow(KmemCache* s, CpuState* cpu, Page* slab, void* head, void* tail, unsigned cnt) {
  Machine& m = *s->machine;
  char* base = slab_base(m, slab);
  const bool cpu_partial = s->has_cpu_partial() && cpu;
  KmemCacheNode* n = nullptr;
  std::atomic<uint64_t>& word = slab_word(slab);
  SlabWord ow, nw;
  bool locked = false;
  for (uint64_t old = word.load(std::memory_order_acquire);;) {
    if (locked) {
      n->list_lock.unlock();
      locked = false;
    }
    ow = SlabWord::unpack(old);
    set_freepointer(s, tail, word_head(base, ow.head));
    nw = ow;
    nw.head = head_of(base, head);
    nw.inuse -= cnt;
    if ((!nw.inuse || !ow.head) && !ow.frozen) {
      if (cpu_partial && !ow.head) {
        nw.frozen = true;  // full -> partial: the freeing CPU takes it
      } else {
        n = s->node[slab_nid(m, slab)].get();
        n->list_lock.lock();
        locked = true;
      }
    }
    if (word.compare_exchange_weak(old, nw.pack(), std::memory_order_acq_rel)) break;
  }
  if (!locked) {
    if (!ow.frozen && nw.frozen) put_cpu_partial(s, &s->cpu_slab[cpu->id], slab);
    return;
  }
  if (!nw.inuse && n->nr_partial >= s->min_partial) {
    if (ow.head) remove_partial(n, slab);  // it was partial; a full slab is on no list
    n->list_lock.unlock();
    discard_slab(s, slab);
    return;
  }
  if (!ow.head) add_partial(n, slab, true);  // full -> partial
  n->list_lock.unlock();
}

void cpu_slab_materialize(KmemCache* s, KmemCacheCpu* c) {
  if (c->bump == c->bump_end) return;
  void* head = c->freelist;
  for (char* obj = c->bump_end; obj != c->bump;) {
    obj -= s->size;
    set_freepointer(s, obj, head);
    head = obj;
  }
  c->freelist = head;
  c->bump = c->bump_end = nullptr;
}

void flush_deferred_frees(KmemCache* s, CpuState* cpu, KmemCacheCpu* c) {
  Page* slab = c->defer_slab;
  if (!slab) return;
  c->defer_slab = nullptr;
  slab_free_slow(s, cpu, slab, c->defer_head, c->defer_tail, c->defer_count);
  c->defer_head = c->defer_tail = nullptr;
  c->defer_count = 0;
}

void slab_free_cpu(KmemCache* s, CpuState* cpu, KmemCacheCpu* c, Page* slab, void* obj) {
  if (cpu_slab_push(s, *c, slab, obj)) return;
  if (slab == c->slab || slab == c->defer_slab)
    slab_report(s, "double free detected", obj);  // it heads that list already
  else
    slab_free_defer(s, cpu, slab, obj);
}

// The older half of the sheaf goes the way a free that missed it would
// (slab_free_cpu); the newer half moves down.
void sheaf_flush(KmemCache* s, CpuState* cpu, KmemCacheCpu* c) {
  Machine& m = *s->machine;
  const unsigned n = std::max(c->sheaf_size / 2, 1u);
  for (unsigned i = 0; i < n; ++i)
    slab_free_cpu(s, cpu, c, m.virt_to_page(c->sheaf[i])->head(), c->sheaf[i]);
  std::copy(c->sheaf + n, c->sheaf + c->sheaf_size, c->sheaf);
  c->sheaf_size -= n;
}

void slab_free_defer(KmemCache* s, CpuState* cpu, Page* slab, void* obj) {
  KmemCacheCpu* c = &s->cpu_slab[cpu->id];
  flush_deferred_frees(s, cpu, c);
  set_freepointer(s, obj, nullptr);
  c->defer_slab = slab;
  c->defer_head = c->defer_tail = obj;
  c->defer_count = 1;
}

void slub_cpu_dead(Machine& m, CpuState* cpu) {
  SlabState& st = slab_state(m);
  std::lock_guard<std::mutex> g(st.slab_mutex);
  for (KmemCache* s : st.caches) flush_cpu_slab(s, &s->cpu_slab[cpu->id]);
}

bool flush_all(KmemCache* s) {
  Machine& m = *s->machine;
  CpuState* self = this_cpu(m);
  bool all = true;
  for (unsigned i = 0; i < m.nr_cpus(); ++i) {
    CpuState& cpu = m.cpu(static_cast<int>(i));
    KmemCacheCpu* c = &s->cpu_slab[i];
    if (&cpu == self) {
      flush_cpu_slab(s, c);
      continue;
    }
    uint64_t expected = 0;
    if (cpu.owner.compare_exchange_strong(expected, kDrainerToken, std::memory_order_acquire)) {
      flush_cpu_slab(s, c);
      cpu.owner.store(0, std::memory_order_release);
    } else {
      all = false;  // bound to another thread: its slabs stay with it
    }
  }
  return all;
}

void shrink_node_partials(KmemCache* s) {
  for (auto& np : s->node) {
    KmemCacheNode* n = np.get();
    ListHead discard;
    discard.init();
    {
      SpinGuard g(n->list_lock);
      for (ListHead* p = n->partial.next; p != &n->partial;) {
        Page* slab = container_of(p, &Page::lru);
        p = p->next;
        if (SlabWord::unpack(slab_word(slab).load(std::memory_order_acquire)).inuse == 0) {
          remove_partial(n, slab);
          discard.add(&slab->lru);
        }
      }
    }
    while (!discard.empty()) {
      Page* slab = container_of(discard.next, &Page::lru);
      ListHead::del(&slab->lru);
      discard_slab(s, slab);
    }
  }
}

uint64_t count_partial_free(KmemCache* s, int node) {
  KmemCacheNode* n = s->node[node].get();
  uint64_t free = 0;
  SpinGuard g(n->list_lock);
  for (ListHead* p = n->partial.next; p != &n->partial; p = p->next) {
    const SlabWord w = SlabWord::unpack(slab_word(container_of(p, &Page::lru)).load());
    free += w.objects - w.inuse;
  }
  return free;
}

void free_kmem_cache_nodes(KmemCache* s) {
  s->node.clear();
}

}  // namespace mmkit
