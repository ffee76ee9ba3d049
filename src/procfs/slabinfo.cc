/*
 * /proc/slabinfo, version 2.1, as Linux 6.1's mm/slab_common.c prints it
 * under SLUB (print_slabinfo_header, slab_start/slab_next, cache_show):
 *
 *   slabinfo - version: 2.1
 *   # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables
 *       <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
 *   kmalloc-8k            20     24   8192    4    8 : tunables    0    0    0 : slabdata ...
 *
 * (the header is one line). Each row is seq_printf()'s
 *   "%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu"
 * with the numbers of get_slabinfo() (mm/slub.c): objsize is the stride
 * s->size, pagesperslab 1 << the preferred order, active_objs counts objects
 * on CPU freelists as in use (SLUB only subtracts the node partial lists'
 * free objects), active_slabs equals num_slabs, and SLUB's tunables and
 * sharedavail are 0. No CONFIG_SLUB_STATS, so nothing follows the slabdata.
 *
 * Order: slab_caches is walked from its head and create_cache() (and
 * create_kmalloc_cache()) list_add() each new cache at the head, so the
 * newest cache comes first and the kmalloc caches, created at boot, come
 * last, from kmalloc-8k down to kmalloc-8 (create_kmalloc_caches() makes
 * them by size, 96 after 64 and 192 after 128). A merged cache has no row
 * of its own; its name is in its target's aliases (JSON only). mmkit has no
 * kmem_cache/kmem_cache_node boot caches, which end Linux's list.
 */
#include <fmt/format.h>

#include <algorithm>

#include "procfs/procfs.h"

namespace mmkit {

std::vector<SlabinfoRow> slabinfo_rows(Machine& m) {
  std::vector<SlabinfoRow> rows;
  for_each_slab_cache(m, [&](KmemCache* s) {
    rows.push_back({get_slabinfo(s), kmem_cache_aliases(s)});
  });
  return rows;
}

std::string render_slabinfo(Machine& m) {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  // print_slabinfo_header(). Linux prints it with the first row, so an empty
  // cache list would print nothing; a machine always has its kmalloc caches.
  fmt::format_to(it,
                 "slabinfo - version: 2.1\n"
                 "# name            <active_objs> <num_objs> <objsize> <objperslab> "
                 "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata "
                 "<active_slabs> <num_slabs> <sharedavail>\n");
  for (const SlabinfoRow& r : slabinfo_rows(m)) {
    const SlabInfo& i = r.info;
    // cache_show(): "%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u :
    // slabdata %6lu %6lu %6lu".
    fmt::format_to(it,
                   "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata "
                   "{:>6} {:>6} {:>6}\n",
                   i.name, i.active_objs, i.num_objs, i.objsize, i.objperslab, i.pagesperslab, 0, 0,
                   0, i.active_slabs, i.num_slabs, 0);
  }
  return fmt::to_string(out);
}

}  // namespace mmkit
