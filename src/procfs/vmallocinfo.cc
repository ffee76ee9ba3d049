// /proc/vmallocinfo, as Linux 6.1's mm/vmalloc.c s_show() prints it: one
// line per live area in address order,
//   "0x%pK-0x%pK %7ld" start, end (guard page included) and size,
//   " %pS"              the caller,
//   " pages=%d"         when the area holds pages (vmalloc, VM_MAP_PUT_PAGES),
//   " vmalloc" / " vmap" / " ioremap" / " user"   from the flags,
//   " N%u=%u"           pages per node (show_numa_info(), CONFIG_NUMA only:
//                       the x86_64 machines).
// %pK prints the address zero-padded to the pointer width (16 digits, or 8
// on i386), as with kptr_restrict off. The caller is the function's name
// without Linux's +offset/size (mmkit has no symbol table). Areas being
// set up are shown without pages, as Linux skips VM_UNINITIALIZED ones.
// Not modelled: lazily freed ("unpurged vm_area") and vm_map_ram areas, and
// the " vpages" mark (mmkit's page arrays are not vmalloc'd).
#include <fmt/format.h>

#include "procfs/internal.h"
#include "procfs/procfs.h"
#include "vmalloc/vmalloc.h"

namespace mmkit {

std::string render_vmallocinfo(const Machine& m) {
  const int width = m.arch() == Arch::i386 ? 8 : 16;
  fmt::memory_buffer out;
  auto put = [&](fmt::string_view f, auto&&... args) {
    fmt::vformat_to(std::back_inserter(out), f, fmt::make_format_args(args...));
  };
  for (const VmallocArea& a : vmalloc_areas(m)) {
    put("0x{:0{}x}-0x{:0{}x} {:7}", a.addr, width, a.addr + a.size, width, a.size);
    if (!a.caller.empty()) put(" {}", a.caller);
    if (a.nr_pages) put(" pages={}", a.nr_pages);
    if (a.flags & VM_IOREMAP) put(" ioremap");
    if (a.flags & VM_ALLOC) put(" vmalloc");
    if (a.flags & VM_MAP) put(" vmap");
    if (a.flags & VM_USERMAP) put(" user");
    if (procfs_internal::has_numa(m))
      for (size_t nid = 0; nid < a.node_pages.size(); ++nid)
        if (a.node_pages[nid]) put(" N{}={}", nid, a.node_pages[nid]);
    put("\n");
  }
  return fmt::to_string(out);
}

}  // namespace mmkit
