// slab_check(): proves SLUB's invariants over a quiesced machine.
//
// For every slab of every cache (found by walking the mem_map for PG_slab
// heads): its word's objects is the cache's (or the fallback order's)
// count; its freelist is acyclic, inside the slab, on object boundaries and
// holds objects - inuse entries; a CPU's private freelist lies in that CPU's
// active slab, disjoint from the slab's own list, and is no longer than
// inuse, with its unwritten objects (bump) whole objects of that slab; a
// CPU's deferred free chain likewise lies in its slab, disjoint
// from both, with defer_count entries; a sheaf's objects are whole objects
// of the cache on no list, each once, within their slab's inuse. Frozen slabs are exactly the CPUs'
// active and partial slabs; the node partial lists hold only unfrozen slabs with free objects, of
// their node, and nr_partial is their length; node slab and object counts match.
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "slab/kmem_cache.h"

namespace mmkit {

namespace {

std::string check_chain(KmemCache* s, Page* slab, void* head, unsigned limit,
                        std::unordered_set<void*>* seen, unsigned* count, const char* which) {
  Machine& m = *s->machine;
  char* base = slab_base(m, slab);
  const char* first = base + slab->mapcount.load() + s->red_left_pad;
  const char* end = base + (PAGE_SIZE << slab->compound_order());
  *count = 0;
  for (void* p = head; p; p = get_freepointer(s, p)) {
    const char* c = static_cast<const char*>(p);
    if (c < first || c + s->object_size > end || (c - first) % s->size)
      return fmt::format("{}: {} freelist of slab pfn {:#x} holds {} outside its objects", s->name,
                         which, m.page_to_pfn(slab), p);
    if (!seen->insert(p).second)
      return fmt::format(
          "{}: object {} twice on the freelists of slab pfn {:#x} (cycle or double free)", s->name,
          p, m.page_to_pfn(slab));
    if (++*count > limit)
      return fmt::format("{}: {} freelist of slab pfn {:#x} is longer than its objects", s->name,
                         which, m.page_to_pfn(slab));
  }
  return "";
}

std::string check_cache(KmemCache* s, const std::vector<Page*>& slabs) {
  Machine& m = *s->machine;
  bool any_torn = false;
  for (unsigned c = 0; c < m.nr_cpus(); ++c) any_torn |= m.cpu(static_cast<int>(c)).torn;
  std::unordered_map<Page*, int> cpu_owner;               // frozen slabs: active or cpu-partial
  std::unordered_multimap<Page*, int> deferring;          // slabs with a CPU's deferred frees
  std::unordered_map<Page*, std::vector<void*>> sheafed;  // the CPUs' sheaves' objects by slab
  for (unsigned c = 0; c < m.nr_cpus(); ++c) {
    KmemCacheCpu& cc = s->cpu_slab[c];
    if (cc.defer_slab) {
      if (!cc.defer_head || !cc.defer_count || !cc.defer_slab->test(PG_slab) ||
          slab_cache(cc.defer_slab) != s)
        return fmt::format("{}: cpu {} deferred free chain is corrupt", s->name, c);
      deferring.emplace(cc.defer_slab, static_cast<int>(c));
    } else if (cc.defer_head || cc.defer_count) {
      return fmt::format("{}: cpu {} has deferred frees but no slab", s->name, c);
    }
    // A sheaf is attached (in its unit, right after cc) or not yet (empty).
    const bool attached = cc.sheaf_capacity == s->sheaf_capacity && cc.sheaf_capacity &&
                          cc.sheaf == cpu_sheaf_slots(cc);
    const bool detached = !cc.sheaf_capacity && !cc.sheaf;
    if (!(attached || detached) || cc.sheaf_size > cc.sheaf_capacity)
      return fmt::format("{}: cpu {} sheaf holds {} of {} (cache: {})", s->name, c, cc.sheaf_size,
                         cc.sheaf_capacity, s->sheaf_capacity);
    for (unsigned i = 0; i < cc.sheaf_size; ++i) {
      Page* slab = m.is_direct_mapped(cc.sheaf[i]) ? m.virt_to_page(cc.sheaf[i])->head() : nullptr;
      if (!slab || !slab->test(PG_slab) || slab_cache(slab) != s)
        return fmt::format("{}: cpu {} sheaf holds {}, no object of the cache", s->name, c,
                           cc.sheaf[i]);
      sheafed[slab].push_back(cc.sheaf[i]);
    }
    if (cc.slab) cpu_owner[cc.slab] = static_cast<int>(c);
    if (!cc.slab && (cc.freelist || cc.bump != cc.bump_end))
      return fmt::format("{}: cpu {} has free objects but no slab", s->name, c);
    unsigned n = 0;
    for (Page* p = cc.partial; p; p = slab_next(p)) {
      if (++n > cc.partial_slabs || !cpu_owner.emplace(p, static_cast<int>(c)).second)
        return fmt::format("{}: cpu {} partial chain is corrupt", s->name, c);
    }
    if (n != cc.partial_slabs)
      return fmt::format("{}: cpu {} partial_slabs {} but chain holds {}", s->name, c,
                         cc.partial_slabs, n);
  }
  std::unordered_set<Page*> on_partial;
  for (unsigned nid = 0; nid < s->node.size(); ++nid) {
    KmemCacheNode* n = s->node[nid].get();
    SpinGuard g(n->list_lock);
    uint64_t len = 0;
    for (ListHead* p = n->partial.next; p != &n->partial; p = p->next) {
      Page* slab = container_of(p, &Page::lru);
      if (++len > slabs.size())
        return fmt::format("{}: node {} partial list has a cycle", s->name, nid);
      const SlabWord w = SlabWord::unpack(slab_word(slab).load());
      if (w.frozen || !w.head || slab_cache(slab) != s ||
          m.page_zone(slab)->node != static_cast<int>(nid))
        return fmt::format(
            "{}: node {} partial list holds slab pfn {:#x} frozen={} free={} of node {}", s->name,
            nid, m.page_to_pfn(slab), w.frozen, w.objects - w.inuse, m.page_zone(slab)->node);
      on_partial.insert(slab);
    }
    if (len != n->nr_partial)
      return fmt::format("{}: node {} nr_partial {} but the list holds {}", s->name, nid,
                         n->nr_partial, len);
  }
  std::vector<int64_t> nr_slabs(s->node.size()), nr_objs(s->node.size());
  for (Page* slab : slabs) {
    const SlabWord w = SlabWord::unpack(slab_word(slab).load());
    const unsigned order = slab->compound_order();
    const unsigned expect = order == s->order ? s->objects : s->min_objects;
    if (w.objects != expect || w.inuse > w.objects)
      return fmt::format("{}: slab pfn {:#x} says objects={} inuse={} (expected {} objects)",
                         s->name, m.page_to_pfn(slab), w.objects, w.inuse, expect);
    std::unordered_set<void*> seen;
    unsigned free = 0, cpu_free = 0;
    char* base = slab_base(m, slab);
    if (auto e = check_chain(s, slab, w.head ? base + w.head - 1 : nullptr, w.objects, &seen, &free,
                             "slab");
        !e.empty())
      return e;
    if (free != w.objects - w.inuse)
      return fmt::format("{}: slab pfn {:#x}: objects {} != inuse {} + free {}", s->name,
                         m.page_to_pfn(slab), w.objects, w.inuse, free);
    auto owner = cpu_owner.find(slab);
    // A torn CPU (a forked child's, CpuState::torn) may have frozen the
    // slab and not yet listed it, or unlisted it and not yet unfrozen it.
    if (w.frozen != (owner != cpu_owner.end()) && !(w.frozen && any_torn))
      return fmt::format("{}: slab pfn {:#x} frozen={} but {} CPU holds it", s->name,
                         m.page_to_pfn(slab), w.frozen, owner != cpu_owner.end() ? "a" : "no");
    if (!w.frozen && w.head && !on_partial.count(slab))
      return fmt::format("{}: unfrozen slab pfn {:#x} has free objects but is on no partial list",
                         s->name, m.page_to_pfn(slab));
    if (owner != cpu_owner.end() && s->cpu_slab[owner->second].slab == slab) {
      const KmemCacheCpu& cc = s->cpu_slab[owner->second];
      if (auto e = check_chain(s, slab, cc.freelist, w.inuse, &seen, &cpu_free, "cpu"); !e.empty())
        return e;
      // Unwritten objects: whole objects of this slab, after every listed one.
      if (cc.bump != cc.bump_end) {
        const char* first = base + slab->mapcount.load() + s->red_left_pad;
        const char* end = first + static_cast<size_t>(w.objects) * s->size;
        if (cc.bump < first || cc.bump_end > end || cc.bump > cc.bump_end ||
            (cc.bump - first) % s->size || (cc.bump_end - cc.bump) % s->size)
          return fmt::format("{}: cpu {} unwritten objects [{}, {}) outside slab pfn {:#x}",
                             s->name, owner->second, static_cast<void*>(cc.bump),
                             static_cast<void*>(cc.bump_end), m.page_to_pfn(slab));
        for (const char* p = cc.bump; p != cc.bump_end; p += s->size)
          if (seen.count(const_cast<char*>(p)))
            return fmt::format("{}: unwritten object {} of slab pfn {:#x} is also on a freelist",
                               s->name, static_cast<const void*>(p), m.page_to_pfn(slab));
        cpu_free += static_cast<unsigned>((cc.bump_end - cc.bump) / s->size);
        if (cpu_free > w.inuse)
          return fmt::format("{}: cpu {} holds {} free objects of slab pfn {:#x}, inuse {}",
                             s->name, owner->second, cpu_free, m.page_to_pfn(slab), w.inuse);
      }
    }
    auto [d, d_end] = deferring.equal_range(slab);
    unsigned held = cpu_free;
    for (; d != d_end; ++d) {
      const KmemCacheCpu& cc = s->cpu_slab[d->second];
      unsigned n = 0;
      if (auto e = check_chain(s, slab, cc.defer_head, w.inuse - held, &seen, &n, "deferred");
          !e.empty())
        return e;
      if (n != cc.defer_count)
        return fmt::format("{}: cpu {} deferred {} frees but its chain holds {}", s->name,
                           d->second, cc.defer_count, n);
      held += n;
    }
    // Sheaf objects: whole objects of the slab, on no list, counted in use.
    if (auto it = sheafed.find(slab); it != sheafed.end()) {
      const char* first = base + slab->mapcount.load() + s->red_left_pad;
      for (void* p : it->second) {
        const char* c = static_cast<const char*>(p);
        if (c < first || (c - first) % s->size || (c - first) / s->size >= w.objects)
          return fmt::format("{}: sheaf object {} is not an object of slab pfn {:#x}", s->name, p,
                             m.page_to_pfn(slab));
        if (!seen.insert(p).second)
          return fmt::format("{}: sheaf object {} of slab pfn {:#x} is free twice", s->name, p,
                             m.page_to_pfn(slab));
        if (++held > w.inuse)
          return fmt::format(
              "{}: the CPUs hold more free objects of slab pfn {:#x} than its inuse {}", s->name,
              m.page_to_pfn(slab), w.inuse);
      }
    }
    const int nid = m.page_zone(slab)->node;
    nr_slabs[nid]++;
    nr_objs[nid] += w.objects;
  }
  for (unsigned nid = 0; nid < s->node.size(); ++nid)
    if (nr_slabs[nid] != s->node[nid]->nr_slabs() || nr_objs[nid] != s->node[nid]->total_objects())
      return fmt::format("{}: node {} counts {} slabs/{} objects but holds {}/{}", s->name, nid,
                         s->node[nid]->nr_slabs(), s->node[nid]->total_objects(), nr_slabs[nid],
                         nr_objs[nid]);
  return "";
}

}  // namespace

std::string slab_check(Machine& m) {
  SlabState& st = slab_state(m);
  std::lock_guard<std::mutex> g(st.slab_mutex);
  std::unordered_map<KmemCache*, std::vector<Page*>> slabs;
  std::set<KmemCache*> known(st.caches.begin(), st.caches.end());
  std::string err;
  m.for_each_zone([&](Zone& z) {
    // Offline frames (past the node's online end) hold no slab, and their
    // struct pages are better left untouched.
    const uint64_t end = m.online_end_pfn(z);
    for (uint64_t pfn = z.zone_start_pfn; err.empty() && pfn < end; ++pfn) {
      Page* p = m.pfn_to_page(pfn);
      if (!p->test(PG_slab)) continue;
      if (p->is_tail() || !known.count(slab_cache(p)))
        err = fmt::format("pfn {:#x} has PG_slab but belongs to no cache", pfn);
      else
        slabs[slab_cache(p)].push_back(p);
    }
  });
  if (!err.empty()) return err;
  for (KmemCache* s : st.caches)
    if (auto e = check_cache(s, slabs[s]); !e.empty()) return e;
  return "";
}

}  // namespace mmkit
