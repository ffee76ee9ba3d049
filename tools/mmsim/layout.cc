// render_layout(): one line per region, "name : start - end (size)" with
// exclusive ends, in the style of the "virtual kernel memory layout" block
// Linux's i386 mem_init() printed (arch/x86/mm/init_32.c), and for x86_64
// the regions of Documentation/arch/x86/x86_64/mm.rst for 4- or 5-level
// paging (no KASLR, so the bases are the documented ones). Where mmkit's region is smaller than
// Linux's (the direct map holds only this machine's RAM, the vmalloc area is the configured size)
// the line says so.
#include "layout.h"

#include <fmt/format.h>

#include "vmalloc/layout.h"

namespace mmsim {
namespace {

// "4096 kB", "111 MB", "128 TB": the largest unit that leaves a whole number
// of at least 1 (rounded down).
std::string size_text(uint64_t bytes) {
  static constexpr struct {
    uint64_t unit;
    const char* name;
  } kUnits[] = {{uint64_t{1} << 40, "TB"}, {uint64_t{1} << 30, "GB"}, {uint64_t{1} << 20, "MB"}};
  for (const auto& u : kUnits)
    if (bytes >= u.unit && (bytes % u.unit == 0 || bytes >= 16 * u.unit))
      return fmt::format("{:4} {}", bytes / u.unit, u.name);
  return fmt::format("{:4} kB", bytes >> 10);
}

void row(fmt::memory_buffer& out, int width, std::string_view name, uint64_t start, uint64_t end,
         std::string_view note = "") {
  fmt::format_to(std::back_inserter(out), "    {:<8}: 0x{:0{}x} - 0x{:0{}x}   ({}){}{}\n", name,
                 start, width, end, width, size_text(end - start), note.empty() ? "" : "   ", note);
}

}  // namespace

std::string render_layout(const mmkit::Machine& m) {
  using namespace mmkit;
  const KernelLayout l = kernel_layout(m);
  fmt::memory_buffer out;
  auto put = [&](fmt::string_view f, auto&&... args) {
    fmt::vformat_to(std::back_inserter(out), f, fmt::make_format_args(args...));
  };
  const uint64_t ram = m.max_pfn() << PAGE_SHIFT;
  if (m.arch() == Arch::i386) {
    put("virtual kernel memory layout (i386, 3G/1G split, 2-level paging, {} CPUs):\n",
        m.nr_cpus());
    row(out, 8, "user", 0, l.page_offset, "TASK_SIZE = PAGE_OFFSET");
    row(out, 8, "lowmem", l.page_offset, l.high_memory, "direct map, PAGE_OFFSET .. high_memory");
    row(out, 8, "hole", l.high_memory, l.vmalloc_start, "VMALLOC_OFFSET");
    row(out, 8, "vmalloc", l.vmalloc_start, l.vmalloc_end, "VMALLOC_START .. VMALLOC_END");
    row(out, 8, "pkmap", l.pkmap_base, l.pkmap_addr(LAST_PKMAP),
        fmt::format("PKMAP_BASE, LAST_PKMAP {}", LAST_PKMAP));
    row(out, 8, "fixmap", l.fixaddr_start, l.fixaddr_top,
        fmt::format("FIXADDR_START .. FIXADDR_TOP, KM_MAX_IDX {} x {} CPUs", KM_MAX_IDX,
                    m.nr_cpus()));
    const uint64_t low = m.direct_map_pfns() << PAGE_SHIFT;
    put("high_memory = 0x{:08x}; lowmem {}, highmem {}{}\n", l.high_memory, size_text(low),
        size_text(ram - low), ram > low ? " (mapped by kmap and kmap_atomic only)" : "");
    return fmt::to_string(out);
  }
  const bool l5 = l.paging_levels == 5;
  put("virtual kernel memory layout (x86_64, {}-level paging, {} CPUs):\n", l.paging_levels,
      m.nr_cpus());
  row(out, 16, "user", 0, l5 ? 0x00fffffffffff000 : 0x00007ffffffff000, "TASK_SIZE_MAX");
  row(out, 16, "direct", l.page_offset, l.high_memory,
      fmt::format("page_offset_base: this machine's RAM (Linux reserves {})",
                  l5 ? "32 PB" : "64 TB"));
  row(out, 16, "vmalloc", l.vmalloc_start, l.window_end,
      fmt::format("vmalloc_base: the configured size (Linux's is {})", l5 ? "12800 TB" : "32 TB"));
  row(out, 16, "vmemmap", l.vmemmap_base, l.vmemmap_base + m.mem_map_pages() * sizeof(Page),
      fmt::format("vmemmap_base: struct page array (Linux reserves {})", l5 ? "0.5 PB" : "1 TB"));
  row(out, 16, "cpu_area", 0xfffffe0000000000, 0xfffffe8000000000, "cpu_entry_area");
  row(out, 16, "text", 0xffffffff80000000, 0xffffffffa0000000, "__START_KERNEL_map");
  row(out, 16, "modules", 0xffffffffa0000000, 0xffffffffff000000, "MODULES_VADDR");
  row(out, 16, "vsyscall", 0xffffffffff600000, 0xffffffffff601000, "legacy vsyscall page");
  return fmt::to_string(out);
}

}  // namespace mmsim
