// `mmsim malloc-limit [--touch] [--json]`: see malloc_limit.h.
//
// The schedule, for each overcommit mode in a freshly spawned process:
//
//   1. The largest single allocation: a binary search on the request size
//      between 0 (fits) and TASK_SIZE, or PTRDIFF_MAX + 1 where that is
//      smaller (i386), which cannot fit; each probe is malloc then free.
//      About 47 probes on x86-64, 32 on i386.
//   2. The fill: malloc(largest) until it returns NULL, then half that
//      size until it does, and so on down to 1 byte. Requests of
//      M_MMAP_THRESHOLD (128 KiB) and more are mmapped, one mapping each
//      (neighbours merge into one VMA); smaller ones come from the brk
//      heap, grown in M_TOP_PAD steps, or from 1 MiB mmapped heaps when
//      brk fails. Largest first: mode 1 covers x86-64's 128 TiB in a few
//      dozen mmaps, and mode 0 needs (address space) / (totalram + swap)
//      of them, 32,768 on the default machine.
//
// The run stops at the last malloc(1) that returns NULL; its refused system
// calls and the rule behind each are the answer to "why". Nothing is
// touched without --touch: no page and no page table is spent on a mapping,
// however large. A mode that reaches kBudget allocations stops there and
// says so (a tiny machine in mode 0 would otherwise need millions).
//
// --touch writes every page of each allocation as it is made (the probes of
// step 1 are not touched). A fault that cannot be served (kOom today,
// kKilled once the OOM killer exists) ends the mode: the output gives the
// bytes touched, the vmstat pswpout delta, and marked places for SwapFree
// and the OOM killer's report, with the page allocator's failure reports
// (the machine's kernel log for the run) below them. Touching is real
// memory on the host, so --touch refuses a machine of more than 8 GiB of
// RAM + swap.
#include "malloc_limit.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "glibc_malloc.h"
#include "machine_loader.h"
#include "malloc_limit_rules.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"
#include "vm/rlimit.h"

namespace mmsim {
namespace {

using namespace mmkit;

constexpr uint64_t kBudget = uint64_t{1} << 24;  // allocations per mode: about a second
constexpr uint64_t kTouchLimit = uint64_t{8} << 30;
constexpr const char* kModeNames[] = {"0 (heuristic)", "1 (always)", "2 (never)"};

// One system call of a failed malloc that the kernel refused, and why.
struct Refusal {
  GlibcMalloc::Syscall call;
  LimitRule rule;
  std::string text;
};

// A malloc that returned NULL.
struct Failure {
  uint64_t request = 0;
  std::vector<Refusal> refused;
  // The last refusal's rule: glibc's last resort said no for this reason.
  LimitRule rule = LimitRule::kNone;
  std::string text;
};

struct ModeResult {
  unsigned mode = 0;
  std::string spawn_error;
  uint64_t total = 0;  // bytes requested by the allocations that succeeded
  uint64_t largest = 0;
  uint64_t allocations = 0, mmapped = 0, from_heap = 0;
  Failure largest_failure;            // malloc(largest + 1)
  Failure last_failure;               // the last malloc that returned NULL
  LimitRule rule = LimitRule::kNone;  // what ended the run
  std::string rule_text;
  // The process at the end, as /proc/<pid>/status shows it: VmSize and
  // VmPTE (its page tables, top level excluded).
  uint64_t vm_size = 0, vm_pte = 0;
  // --touch
  uint64_t touched = 0;
  FaultResult fault;
  int64_t pswpout = 0;
  std::vector<std::string> kernel_log;
  uint64_t swap_free_kb = 0, swap_total_kb = 0;  // at the deepest point (before exit)
};

// Names the rule behind each refused call of g's last malloc. Called at
// once: the refusals changed nothing, so the checks see what the calls saw.
Failure explain(const GlibcMalloc& g, MmStruct* mm, uint64_t request) {
  Failure f;
  f.request = request;
  if (g.rejected_ptrdiff_max()) f.rule = LimitRule::kPtrdiffMax;
  for (const GlibcMalloc::Syscall& c : g.last_syscalls()) {
    if (c.ok) continue;
    const LimitRule r = c.kind == GlibcMalloc::Syscall::kMmap ? why_mmap_refused(mm, c.arg)
                                                              : why_brk_refused(mm, c.arg);
    f.refused.push_back({c, r, limit_rule_text(r, mm)});
    f.rule = r;
  }
  if (f.rule == LimitRule::kNone) f.rule = LimitRule::kUnknown;
  f.text = f.refused.empty() ? limit_rule_text(f.rule, mm) : f.refused.back().text;
  return f;
}

// Binary search for the largest request that succeeds, freeing each probe.
void find_largest(GlibcMalloc& g, MmStruct* mm, ModeResult& r) {
  uint64_t lo = 0;  // fits (nothing to allocate)
  uint64_t hi = std::min(mm->layout.task_size, g.params().ptrdiff_max + 1);  // cannot fit
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    GlibcMalloc::Chunk c;
    if (g.malloc(mid, &c)) {
      g.free(c);
      lo = mid;
    } else {
      hi = mid;
    }
  }
  r.largest = lo;
  GlibcMalloc::Chunk c;
  if (g.malloc(lo + 1, &c))
    g.free(c);  // cannot happen: hi failed just now
  else
    r.largest_failure = explain(g, mm, lo + 1);
}

// Writes every page of the chunk; false (with r.fault set) when a fault fails.
bool touch(MmStruct* mm, const GlibcMalloc::Chunk& c, ModeResult& r) {
  const FaultResult f = access_touch(mm, c.chunk, c.size, Access::kWrite);
  if (f.ok()) {
    r.touched += c.size;
    return true;
  }
  r.touched += f.addr > c.chunk ? f.addr - c.chunk : 0;
  r.fault = f;
  r.rule = f.status == FaultStatus::kKilled ? LimitRule::kOomKilled
           : f.status == FaultStatus::kOom  ? LimitRule::kOom
                                            : LimitRule::kUnknown;
  r.rule_text = limit_rule_text(r.rule, mm);
  if (r.rule == LimitRule::kUnknown) r.rule_text = f.reason;
  return false;
}

ModeResult run_mode(Machine& m, unsigned mode, const MallocLimitOptions& opt) {
  overcommit_sysctls(m).overcommit_memory = mode;
  ModeResult r;
  r.mode = mode;
  // The page allocator's reports while this mode runs: its kernel log.
  m.warn_sink = [&r](const std::string& text) {
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
      r.kernel_log.push_back(text.substr(start, nl - start));
    if (start < text.size()) r.kernel_log.push_back(text.substr(start));
  };
  const int64_t pswpout_before = m.sum_event(VmEvent::PSWPOUT);
  const size_t printk_before = m.kernel_log().size();
  Process* p = nullptr;
  if (const int err = spawn(m, "malloc-limit", &p); err != 0) {
    r.spawn_error = fmt::format("cannot spawn a process (error {})", err);
    m.warn_sink = nullptr;
    return r;
  }
  MmStruct* mm = p->mm;
  GlibcMalloc g(mm, GlibcParams::for_mode(mm->layout.mode));
  find_largest(g, mm, r);

  for (uint64_t size = r.largest; size > 0;) {
    if (r.allocations == kBudget) {
      r.rule = LimitRule::kBudget;
      r.rule_text = limit_rule_text(r.rule, mm) + fmt::format(": {} allocations", kBudget);
      break;
    }
    GlibcMalloc::Chunk c;
    if (!g.malloc(size, &c)) {
      r.last_failure = explain(g, mm, size);
      size /= 2;
      continue;
    }
    ++r.allocations;
    r.total += size;
    ++(c.mmapped ? r.mmapped : r.from_heap);
    if (opt.touch && !touch(mm, c, r)) break;
  }
  // Nothing fitted at all: the probe's malloc(1) was the last word.
  if (r.largest == 0 && r.rule == LimitRule::kNone) r.last_failure = r.largest_failure;
  if (r.rule == LimitRule::kNone) {
    r.rule = r.last_failure.rule;
    r.rule_text = r.last_failure.text;
  }
  r.pswpout = m.sum_event(VmEvent::PSWPOUT) - pswpout_before;
  r.swap_free_kb = swap_free_pages(m) * 4;
  r.swap_total_kb = swap_total_pages(m) * 4;
  // The kernel's own lines of this mode (the OOM report among them).
  const std::vector<std::string> log = m.kernel_log();
  for (size_t i = printk_before; i < log.size(); ++i) r.kernel_log.push_back(log[i]);
  r.vm_size = mm->total_vm << PAGE_SHIFT;
  r.vm_pte = (mm->pgd.nr_tables.load() - 1) << PAGE_SHIFT;
  exit_process(p);
  m.warn_sink = nullptr;
  return r;
}

std::string bytes_and_human(uint64_t b) {
  return fmt::format("{} bytes ({})", b, human_bytes(b));
}

std::string call_text(const GlibcMalloc::Syscall& c) {
  return c.kind == GlibcMalloc::Syscall::kMmap ? fmt::format("mmap({})", human_bytes(c.arg))
                                               : fmt::format("brk({:#x})", c.arg);
}

// The refused calls of the last malloc, one a line; the stopping rule
// itself is not repeated.
void print_failure(const Failure& f, const std::string& stop_text) {
  fmt::print("  last call   malloc({}) = NULL\n", f.request);
  for (const Refusal& x : f.refused)
    fmt::print("                {} refused: {}\n", call_text(x.call),
               x.text == stop_text ? "the rule that stopped it" : x.text);
}

uint64_t configured_ram(const Machine& m) {
  uint64_t ram = 0;
  for (const NodeConfig& n : m.config().nodes) ram += n.memory;
  return ram;
}

std::string rlimit_text(uint64_t v) {
  return v == kRlimInfinity ? "unlimited" : human_bytes(v);
}

void print_text(Machine& m, const std::vector<ModeResult>& results, const MallocLimitOptions& opt) {
  const MmLayout l = mm_layout(m);
  const GlibcParams gp = GlibcParams::for_mode(l.mode);
  const char* paging = l.mode == PagingMode::kI386            ? "i386 two-level paging"
                       : l.mode == PagingMode::kX86_64_5Level ? "x86_64 5-level paging"
                                                              : "x86_64 4-level paging";
  fmt::print(
      "How much can malloc allocate? A fresh process per vm.overcommit_memory mode runs a\n"
      "glibc-like malloc until it returns NULL{}.\n\n",
      opt.touch ? ", writing every page it gets" : " (nothing is touched)");
  fmt::print("machine   {}: TASK_SIZE {:#x} ({}), mmap_base {:#x}, heap at {:#x}\n", paging,
             l.task_size, task_size_text(l.task_size), l.mmap_base, l.start_brk);
  const OvercommitSysctls& s = overcommit_sysctls(m);
  fmt::print("memory    RAM {} ({} kB), swap {}, CommitLimit {} ({} kB, overcommit_{} {})\n",
             human_bytes(m.totalram_pages() << PAGE_SHIFT), m.totalram_pages() << 2,
             human_bytes(total_swap_pages(m) << PAGE_SHIFT),
             human_bytes(vm_commit_limit(m) << PAGE_SHIFT), vm_commit_limit(m) << 2,
             s.overcommit_kbytes ? "kbytes" : "ratio",
             s.overcommit_kbytes ? fmt::format("{} kB", s.overcommit_kbytes)
                                 : fmt::format("{}%", s.overcommit_ratio));
  fmt::print("limits    RLIMIT_AS {}, RLIMIT_DATA {}, vm.max_map_count {}\n",
             rlimit_text(m.config().rlimit_as), rlimit_text(m.config().rlimit_data),
             sysctl_max_map_count(m));
  fmt::print(
      "glibc     M_MMAP_THRESHOLD {}, M_TOP_PAD {}, MMAP_AS_MORECORE_SIZE {}, M_MMAP_MAX {}\n",
      human_bytes(gp.mmap_threshold), human_bytes(gp.top_pad),
      human_bytes(gp.mmap_as_morecore_size), gp.n_mmaps_max);
  fmt::print(
      "schedule  the largest single malloc by binary search (each probe freed), then that\n"
      "          size until malloc fails, halving it at each failure down to 1 byte\n");
  for (const ModeResult& r : results) {
    fmt::print("\nmode {}\n", kModeNames[r.mode]);
    if (!r.spawn_error.empty()) {
      fmt::print("  {}\n", r.spawn_error);
      continue;
    }
    fmt::print("  total       {} in {} allocation{} ({} mmapped, {} from the heap)\n",
               bytes_and_human(r.total), r.allocations, r.allocations == 1 ? "" : "s", r.mmapped,
               r.from_heap);
    if (r.largest_failure.text == r.rule_text) {
      fmt::print("  largest     {}: one byte more is refused by the rule that stopped it\n",
                 bytes_and_human(r.largest));
    } else {
      fmt::print("  largest     {}: one byte more is refused by\n", bytes_and_human(r.largest));
      fmt::print("                {}\n", r.largest_failure.text);
    }
    fmt::print("  stopped by  {}\n", r.rule_text);
    if (r.rule == r.last_failure.rule) print_failure(r.last_failure, r.rule_text);
    fmt::print("  at the end  VmSize {} kB, VmPTE {} kB\n", r.vm_size >> 10, r.vm_pte >> 10);
    if (!opt.touch) continue;
    fmt::print("  touched     {}", bytes_and_human(r.touched));
    if (!r.fault.ok())
      fmt::print(", then a write fault at {:#x} failed: {}", r.fault.addr, r.fault.reason);
    fmt::print("\n  swapped     pswpout {:+} pages (vmstat); SwapFree {} kB of {} kB\n", r.pswpout,
               r.swap_free_kb, r.swap_total_kb);
    fmt::print("  kernel log  {} lines\n", r.kernel_log.size());
    for (const std::string& line : r.kernel_log) fmt::print("    {}\n", line);
  }
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\')
      out += std::string("\\") + ch;
    else if (static_cast<unsigned char>(ch) < 0x20)
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(ch));
    else
      out += ch;
  }
  return out + "\"";
}

std::string json_limit(uint64_t v) {
  return v == kRlimInfinity ? "null" : std::to_string(v);
}

void print_json(Machine& m, const std::vector<ModeResult>& results, const MallocLimitOptions& opt) {
  const MmLayout l = mm_layout(m);
  const GlibcParams gp = GlibcParams::for_mode(l.mode);
  const unsigned levels = l.mode == PagingMode::kI386            ? 2
                          : l.mode == PagingMode::kX86_64_5Level ? 5
                                                                 : 4;
  fmt::print(
      "{{\"machine\": {{\"arch\": {}, \"paging_levels\": {}, \"task_size\": {}, \"mmap_base\": {}, "
      "\"totalram_bytes\": {}, \"swap_bytes\": {}, \"commit_limit_bytes\": {}, "
      "\"rlimit_as\": {}, \"rlimit_data\": {}, \"max_map_count\": {}}},\n",
      json_string(m.arch() == Arch::i386 ? "i386" : "x86_64"), levels, l.task_size, l.mmap_base,
      m.totalram_pages() << PAGE_SHIFT, total_swap_pages(m) << PAGE_SHIFT,
      vm_commit_limit(m) << PAGE_SHIFT, json_limit(m.config().rlimit_as),
      json_limit(m.config().rlimit_data), sysctl_max_map_count(m));
  fmt::print(
      " \"glibc\": {{\"mmap_threshold\": {}, \"top_pad\": {}, \"mmap_as_morecore_size\": {}, "
      "\"mmap_max\": {}}},\n \"modes\": [",
      gp.mmap_threshold, gp.top_pad, gp.mmap_as_morecore_size, gp.n_mmaps_max);
  for (size_t i = 0; i < results.size(); ++i) {
    const ModeResult& r = results[i];
    fmt::print(
        "{}\n  {{\"mode\": {}, \"total_bytes\": {}, \"largest_bytes\": {}, \"allocations\": {}, "
        "\"mmapped_allocations\": {}, \"heap_allocations\": {}, \"rule\": {}, \"rule_text\": {}, "
        "\"largest_rule\": {}, \"largest_rule_text\": {}, \"vm_size_bytes\": {}, "
        "\"vm_pte_bytes\": {}",
        i ? "," : "", r.mode, r.total, r.largest, r.allocations, r.mmapped, r.from_heap,
        json_string(r.spawn_error.empty() ? limit_rule_id(r.rule) : "spawn"),
        json_string(r.spawn_error.empty() ? r.rule_text : r.spawn_error),
        json_string(limit_rule_id(r.largest_failure.rule)), json_string(r.largest_failure.text),
        r.vm_size, r.vm_pte);
    if (opt.touch)
      fmt::print(", \"touched_bytes\": {}, \"pswpout\": {}, \"kernel_log_lines\": {}", r.touched,
                 r.pswpout, r.kernel_log.size());
    fmt::print("}}");
  }
  fmt::print("\n]}}\n");
}

}  // namespace

int run_malloc_limit(Machine& m, const MallocLimitOptions& opt) {
  const uint64_t ram = configured_ram(m), swap = total_swap_pages(m) << PAGE_SHIFT;
  if (opt.touch && ram + swap > kTouchLimit) {
    std::fprintf(stderr,
                 "mmsim: malloc-limit --touch: the machine has %s of RAM + swap; --touch writes "
                 "every page for real, so at most 8 GiB (use a smaller --config)\n",
                 human_bytes(ram + swap).c_str());
    return kExitBadInput;
  }
  // The faults of --touch run on CPU 0 (its per-CPU lists and TLB).
  Result<CpuScope> cpu = CpuScope::bind(m, 0);
  if (!cpu) {
    std::fprintf(stderr, "mmsim: malloc-limit: %s\n", cpu.error().message.c_str());
    return kExitBadInput;
  }
  const unsigned configured = overcommit_sysctls(m).overcommit_memory;
  std::vector<ModeResult> results;
  for (unsigned mode = 0; mode < 3; ++mode) results.push_back(run_mode(m, mode, opt));
  overcommit_sysctls(m).overcommit_memory = configured;
  if (opt.json)
    print_json(m, results, opt);
  else
    print_text(m, results, opt);
  return 0;
}

}  // namespace mmsim
