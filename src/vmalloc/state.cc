// vmalloc_state(): builds the layer's per-machine state on first use: the
// layout, the host window over it, the free vmap space, and on i386 the
// page tables of the pkmap and fixmap windows (permanent_kmaps_init() and
// the fixmap's page_table_range_init(): made at boot, so kmap_atomic never
// allocates). The tables are made once, before the state is published.
#include "vmalloc/state.h"

#include <fmt/format.h>

#include "vm/mmu.h"

namespace mmkit {

VmallocState::VmallocState(Machine& m) : machine(m), layout(kernel_layout(m)) {
  kernel_pt = &kernel_page_table(m);
  window_error = window.reserve(layout.window_start, layout.window_end);
  free_space.init(layout.vmalloc_start, layout.vmalloc_end);
  kmap_atomic_cpus = std::make_unique<KmapAtomicCpu[]>(m.nr_cpus());
}

void VmallocState::populate_kmap_tables() {
  if (machine.arch() != Arch::i386 || !ok()) return;
  // One table covers 4 MiB on i386: touch every table of pkmap and fixmap.
  SpinGuard g(pte_lock);
  auto populate = [&](uint64_t start, uint64_t end) {
    for (uint64_t a = start & ~(PMD_SIZE_I386 - 1); a < end; a += PMD_SIZE_I386) {
      const uint64_t at = a < start ? start : a;
      if (!pte_set(*kernel_pt, at, 0)) window_error = "cannot allocate the kmap page tables";
    }
  };
  populate(layout.pkmap_base, layout.pkmap_addr(LAST_PKMAP));
  populate(layout.fixaddr_start + PAGE_SIZE, layout.window_end);
}

VmallocState& vmalloc_state(Machine& m) {
  return *static_cast<VmallocState*>(m.ensure_layer_state(Layer::kVmalloc, [&m] {
    auto st = std::make_unique<VmallocState>(m);
    st->populate_kmap_tables();
    return st;
  }));
}

}  // namespace mmkit
