// `mmsim replay` (see replay.h): one bound thread streams the trace, maps
// regions as addresses first appear (code from the stand-in executable,
// data anonymous), and verifies every page access.
// Host-side state is one small record per 2 MiB region touched (where it
// is mapped and each page's version), found through a hash map with the
// last region cached, since traces touch the same region for long runs.
#include "replay.h"

#include <fmt/format.h>

#include <fcntl.h>

#include <bitset>
#include <chrono>
#include <memory>
#include <system_error>
#include <unordered_map>

#include "cpu_pool.h"
#include "filemap/filemap.h"
#include "machine_loader.h"
#include "machine_stats.h"
#include "memcg/memcontrol.h"
#include "page_access.h"
#include "page_data.h"
#include "phys/toml_util.h"
#include "proc_dump.h"
#include "vm/process.h"

namespace mmsim {

using mmkit::parse_size;
using mmkit::quoted;
namespace {

constexpr int kExitFailed = 1;
constexpr uint64_t kRegionShift = 21;  // 2 MiB
constexpr uint64_t kRegionBytes = uint64_t{1} << kRegionShift;
constexpr uint64_t kPagesPerRegion = kRegionBytes / kPageBytes;
constexpr uint64_t kSeed = 1;
constexpr uint64_t kPrinted = 20;  // mismatches shown; the rest are counted

std::string errno_text(int64_t err) {
  return std::generic_category().message(static_cast<int>(-err));
}

// The stand-in executable, below the machine's fs root: each code region
// is 2 MiB of it, laid out when the region first appears.
constexpr char kTextFile[] = "mmsim-replay.text";

struct Region {
  uint64_t base = 0;  // where the process has it
  // A code region maps the stand-in executable from page `text_page`:
  // version 0 of its pages is the file's (version 1 of the file page).
  bool code = false;
  uint64_t text_page = 0;
  uint32_t versions[kPagesPerRegion] = {};
  std::bitset<kPagesPerRegion> touched;  // a code page the trace has accessed
};

struct ReplayStats {
  uint64_t accesses = 0, page_accesses = 0, reads = 0, writes = 0;
  uint64_t regions = 0, remapped = 0, code_regions = 0, verify_errors = 0;
  // Major faults on a code region's pages read from the stand-in
  // executable, and those on a page the trace had accessed before (a
  // refault: reclaim dropped it and the file had to give it back).
  uint64_t code_majfault = 0, code_refaults = 0;
  uint64_t code_pages = 0;  // distinct code pages the trace fetched or read
  uint64_t peak_rss = 0;    // pages
  bool oom_killed = false;
  std::string error;  // a mapping or fault that should not have failed
};

class Replayer {
 public:
  Replayer(mmkit::Machine& m, mmkit::Process* p, ReplayStats* st)
      : m_(m), p_(p), mm_(p->mm), st_(*st) {}

  // Creates the stand-in executable (empty); "" or what went wrong.
  std::string open_text() {
    text_fd_ = mmkit::sys_open(m_, p_->files, kTextFile, O_CREAT | O_RDWR | O_TRUNC);
    if (text_fd_ < 0)
      return fmt::format("cannot create the stand-in executable {}: {}",
                         mmkit::fs_host_path(m_, kTextFile), errno_text(text_fd_));
    return "";
  }

  // Replays one record; false when the replay must stop.
  bool replay(const TraceRecord& r) {
    ++st_.accesses;
    const uint64_t last = r.addr + (r.size - 1);
    for (uint64_t page = r.addr >> 12; page <= last >> 12; ++page) {
      if (r.op != TraceOp::kWrite && !access(page << 12, false, r.fetch)) return false;
      if (r.op != TraceOp::kRead && !access(page << 12, true, false)) return false;
    }
    return true;
  }

 private:
  // Lays out the next 2 MiB of the stand-in executable (version 1 of each
  // page), written back and dropped from the page cache
  // (POSIX_FADV_DONTNEED), so the program's text comes from the file as if
  // read from disk and the writing charges no memory; false with st_.error
  // set.
  bool grow_text(uint64_t first) {
    mmkit::FileTable& ft = p_->files;
    alignas(64) char buf[kPageBytes];
    for (uint64_t i = 0; i < kPagesPerRegion; ++i) {
      fill_file_page(buf, text_id(first + i), 1);
      const int64_t n =
          mmkit::sys_pwrite(m_, ft, text_fd_, buf, kPageBytes, (first + i) * kPageBytes);
      if (n != kPageBytes) {
        if (n == -ENOMEM || p_->oom_killed.load()) {
          st_.oom_killed = true;
        } else {
          st_.error = fmt::format("cannot write the stand-in executable: {}",
                                  n < 0 ? errno_text(n) : std::string("short write"));
        }
        return false;
      }
    }
    if (const int err = mmkit::sys_fsync(m_, ft, text_fd_); err) {
      st_.error = fmt::format("cannot fsync the stand-in executable: {}", errno_text(err));
      return false;
    }
    if (const int err = mmkit::sys_fadvise(m_, ft, text_fd_, first * kPageBytes, kRegionBytes,
                                           POSIX_FADV_DONTNEED);
        err) {
      st_.error = fmt::format("cannot drop the stand-in executable's pages: {}", errno_text(err));
      return false;
    }
    return true;
  }

  // Maps a region first touched by an instruction fetch from the next 2 MiB
  // of the stand-in executable, private and read-write-execute (a small
  // program's text and data share a 2 MiB region; a write to a page copies
  // it, as to a private file mapping's .data); any other region anonymous.
  int64_t map_region(uint64_t addr, bool code, Region* r) {
    const int prot = mmkit::PROT_READ | mmkit::PROT_WRITE | (code ? mmkit::PROT_EXEC : 0);
    if (!code)
      return mmkit::do_mmap(
          mm_, addr, kRegionBytes, prot,
          mmkit::MAP_PRIVATE | mmkit::MAP_ANONYMOUS | (addr ? mmkit::MAP_FIXED_NOREPLACE : 0));
    return mmkit::do_mmap_fd(mm_, p_->files, addr, kRegionBytes, prot,
                             mmkit::MAP_PRIVATE | (addr ? mmkit::MAP_FIXED_NOREPLACE : 0), text_fd_,
                             r->text_page * kPageBytes);
  }

  Region* region_of(uint64_t addr, bool fetch) {
    const uint64_t key = addr >> kRegionShift;
    if (last_ && key == last_key_) return last_;
    auto it = regions_.find(key);
    if (it == regions_.end()) {
      auto r = std::make_unique<Region>();
      const uint64_t want = key << kRegionShift;
      if (fetch && text_fd_ >= 0) {
        r->code = true;
        r->text_page = st_.code_regions * kPagesPerRegion;
        if (!grow_text(r->text_page)) return nullptr;
        ++st_.code_regions;
      }
      int64_t a = want ? map_region(want, r->code, r.get()) : -1;
      const bool remapped = a != static_cast<int64_t>(want);
      if (remapped) {
        if (a >= 0) mmkit::do_munmap(mm_, static_cast<uint64_t>(a), kRegionBytes);
        a = map_region(0, r->code, r.get());
      }
      if (a < 0) {
        st_.error = fmt::format("cannot map the 2 MiB region at {:#x}: {}{}", want,
                                std::generic_category().message(static_cast<int>(-a)),
                                a == -ENOMEM ? map_limit() : "");
        return nullptr;
      }
      r->base = static_cast<uint64_t>(a);
      ++st_.regions;
      if (remapped) ++st_.remapped;
      it = regions_.emplace(key, std::move(r)).first;
    }
    last_key_ = key;
    last_ = it->second.get();
    return last_;
  }

  mmsim::FilePageId text_id(uint64_t page) const {
    return FilePageId{kSeed, fnv1a64(kTextFile), 0, page};
  }

  // A read of a code page not written since it was mapped: the stand-in
  // executable's page, fetched as an instruction (Access::kExec) or loaded.
  PageAccess read_text(uint64_t vaddr, uint64_t text_page, bool fetch) {
    PageAccess a;
    const char* host = mmkit::user_page_begin(
        mm_, vaddr, fetch ? mmkit::Access::kExec : mmkit::Access::kRead, &a.fault);
    if (!host) return a;
    a.bad_offset = check_file_page(host, text_id(text_page), 1, &a.expected, &a.actual);
    mmkit::user_page_end(mm_);
    return a;
  }

  bool access(uint64_t addr, bool write, bool fetch) {
    Region* r = region_of(addr, fetch);
    if (!r) return false;
    const uint64_t index = (addr & (kRegionBytes - 1)) / kPageBytes;
    const uint64_t vaddr = r->base + index * kPageBytes;
    uint32_t& version = r->versions[index];
    const uint64_t page = vaddr / kPageBytes;
    ++st_.page_accesses;
    // The access reads the stand-in executable's page (a write copies it).
    const bool file_page = r->code && version == 0;
    const PageAccess a = write ? write_page(mm_, vaddr, page_key(kSeed, 0, 0, page, version + 1))
                         : r->code && version == 0
                             ? read_text(vaddr, r->text_page + index, fetch)
                             : read_page(mm_, vaddr, page_key(kSeed, 0, 0, page, version));
    if (!a.fault.ok()) {
      if (a.fault.status == mmkit::FaultStatus::kKilled ||
          a.fault.status == mmkit::FaultStatus::kOom)
        st_.oom_killed = true;
      else
        st_.error = describe_fault(a.fault);
      return false;
    }
    if (file_page) {
      if (a.fault.major) {
        ++st_.code_majfault;
        if (r->touched[index]) ++st_.code_refaults;
      }
      if (!r->touched[index]) ++st_.code_pages;
      r->touched[index] = true;
    }
    if (write) {
      ++version;
      ++st_.writes;
    } else {
      ++st_.reads;
    }
    st_.peak_rss = std::max(st_.peak_rss, mm_->get_mm_rss());
    if (a.bad_offset >= 0 && ++st_.verify_errors <= kPrinted) {
      fmt::print(stderr,
                 "mmsim: replay: verify: page {:#x} (trace address {:#x}, version {}): byte {} is "
                 "{:#04x}, expected {:#04x}\n",
                 vaddr, addr, version, a.bad_offset, a.actual, a.expected);
    }
    return true;
  }

  // Which of the kernel's limits refused a region (ENOMEM), for the error.
  std::string map_limit() const {
    const uint64_t mapped = mm_->total_vm * kPageBytes, data = mm_->data_vm * kPageBytes;
    if (mm_->rlimit_as != mmkit::kRlimInfinity && mapped + kRegionBytes > mm_->rlimit_as)
      return fmt::format(" (rlimit_as: {} bytes mapped, the limit is {})", mapped, mm_->rlimit_as);
    if (mm_->rlimit_data != mmkit::kRlimInfinity && data + kRegionBytes > mm_->rlimit_data)
      return fmt::format(" (rlimit_data: {} bytes of data mapped, the limit is {})", data,
                         mm_->rlimit_data);
    if (mm_->map_count >= static_cast<int>(m_.config().max_map_count))
      return fmt::format(" (max_map_count: {} mappings)", mm_->map_count);
    return " (the overcommit policy: overcommit_memory and CommitLimit)";
  }

  mmkit::Machine& m_;
  mmkit::Process* p_;
  mmkit::MmStruct* mm_;
  ReplayStats& st_;
  int text_fd_ = -1;  // the stand-in executable (-1: not open)
  std::unordered_map<uint64_t, std::unique_ptr<Region>> regions_;
  uint64_t last_key_ = 0;
  Region* last_ = nullptr;
};

struct Report {
  const ReplayOptions* opt;
  TraceFormat format;
  const ReplayStats* st;
  const MachineSnapshot *start, *end;
  uint64_t vm_hwm_kb, min_flt, maj_flt;
  double seconds;
};

std::string report_json(const Report& r) {
  const EventTotals e = event_totals(*r.start, *r.end);
  JsonWriter w;
  w.begin_object();
  w.field("trace", r.opt->trace).field("format", format_name(r.format));
  w.field("accesses", r.st->accesses).field("page_accesses", r.st->page_accesses);
  w.field("reads", r.st->reads).field("writes", r.st->writes);
  w.field("regions", r.st->regions).field("remapped_regions", r.st->remapped);
  w.field("code_regions", r.st->code_regions);
  w.field("code_majfault", r.st->code_majfault).field("code_refaults", r.st->code_refaults);
  w.field("code_pages", r.st->code_pages);
  w.field("seconds", r.seconds);
  w.field("pgfault", e.pgfault).field("pgmajfault", e.pgmajfault);
  w.field("pswpin", e.pswpin).field("pswpout", e.pswpout);
  w.field("min_flt", r.min_flt).field("maj_flt", r.maj_flt);
  w.field("vm_hwm_kb", r.vm_hwm_kb).field("verify_errors", r.st->verify_errors);
  w.field("oom_killed", r.st->oom_killed);
  write_vmstat_delta(w, *r.start, *r.end);
  write_meminfo(w, *r.end);
  w.end_object();
  return w.str() + "\n";
}

std::string report_text(const Report& r) {
  const EventTotals e = event_totals(*r.start, *r.end);
  std::string out =
      fmt::format("trace {} ({}), {:.3f} s\n", r.opt->trace, format_name(r.format), r.seconds);
  auto row = [&](std::string_view name, auto v) {
    out += fmt::format("  {:<20} {:>14}\n", name, v);
  };
  row("accesses", r.st->accesses);
  row("page_accesses", r.st->page_accesses);
  row("reads", r.st->reads);
  row("writes", r.st->writes);
  row("regions", r.st->regions);
  row("remapped_regions", r.st->remapped);
  row("code_regions", r.st->code_regions);
  row("code_majfault", r.st->code_majfault);
  row("code_refaults", r.st->code_refaults);
  row("code_pages", r.st->code_pages);
  row("pgfault", e.pgfault);
  row("pgmajfault", e.pgmajfault);
  row("pswpin", e.pswpin);
  row("pswpout", e.pswpout);
  row("vm_hwm_kb", r.vm_hwm_kb);
  row("verify_errors", r.st->verify_errors);
  if (r.st->oom_killed) out += "  the process was OOM-killed before the trace ended\n";
  out += "\nvmstat deltas (lines that changed):\n" + vmstat_delta_text(*r.start, *r.end);
  return out;
}

// --memory's value: bytes, or why not.
bool memory_limit(const std::string& text, uint64_t* bytes, std::string* why) {
  if (!parse_size(text, bytes, why)) return false;
  if (*bytes < kPageBytes) return *why = quoted(text) + " is less than a page (4KiB)", false;
  return true;
}

}  // namespace

int replay_command(const ReplayOptions& opt) {
  uint64_t limit = 0;
  if (opt.memory) {
    std::string why;
    if (!memory_limit(*opt.memory, &limit, &why)) {
      fmt::print(stderr, "mmsim: replay: --memory: {}\n", why);
      return kExitBadInput;
    }
  }
  TraceReader trace;
  if (std::string err = trace.open(opt.trace, opt.format); !err.empty()) {
    fmt::print(stderr, "{}\n", err);
    return kExitBadInput;
  }
  if (!opt.proc_dir.empty()) {
    if (std::string err = prepare_proc_dir(opt.proc_dir); !err.empty()) {
      fmt::print(stderr, "{}\n", err);
      return kExitBadInput;
    }
  }
  auto machine = load_machine(opt.config);
  if (!machine) return kExitBadInput;
  mmkit::Machine& m = *machine;

  CpuPool pool(m);
  std::optional<mmkit::CpuScope> cpu;
  if (!pool.acquire(&cpu)) {
    fmt::print(stderr, "mmsim: replay: no CPU of the machine could be bound\n");
    return kExitFailed;
  }
  const MachineSnapshot start = take_snapshot(m);
  mmkit::Process* p = nullptr;
  if (int err = mmkit::spawn(m, "replay", &p); err) {
    fmt::print(stderr, "mmsim: replay: spawn failed: {}\n", std::generic_category().message(-err));
    return kExitFailed;
  }
  if (opt.memory) {
    p->mm->memcg = p->files.memcg = mmkit::mem_cgroup_create(m, "replay", limit);
    if (!p->mm->memcg) {
      fmt::print(stderr, "mmsim: replay: cannot create the memory cgroup\n");
      mmkit::exit_process(p);
      return kExitFailed;
    }
  }

  ReplayStats st;
  const auto t0 = std::chrono::steady_clock::now();
  {
    Replayer replayer(m, p, &st);
    st.error = replayer.open_text();
    TraceRecord rec;
    while (st.error.empty() && trace.next(&rec))
      if (!replayer.replay(rec)) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!trace.error().empty() && st.error.empty() && !st.oom_killed) {
    fmt::print(stderr, "{}\n", trace.error());
    mmkit::exit_process(p);
    return kExitBadInput;
  }
  // A file with no access line at all is no trace (text in another format,
  // a file compressed twice, the wrong file): an empty replay would hide it.
  if (st.accesses == 0 && st.error.empty()) {
    fmt::print(stderr,
               "{}: no access lines (lackey's I, L, S, M or pages' R/W HEXPAGE) in the trace\n",
               opt.trace);
    mmkit::exit_process(p);
    return kExitBadInput;
  }

  const MachineSnapshot end = take_snapshot(m);
  // VmHWM as /proc/<pid>/status shows it (max of hiwater_rss and the RSS
  // now), and the peak this replay saw after each access, which reclaim
  // may have lowered since without touching hiwater_rss.
  const uint64_t hwm = std::max({p->mm->hiwater_rss.load(), p->mm->get_mm_rss(), st.peak_rss});
  const Report r{&opt,
                 trace.format(),
                 &st,
                 &start,
                 &end,
                 hwm * (kPageBytes / 1024),
                 p->mm->min_flt.load(),
                 p->mm->maj_flt.load(),
                 seconds};
  std::string proc_error;
  if (!opt.proc_dir.empty()) proc_error = write_proc_views(m, opt.proc_dir);
  mmkit::exit_process(p);
  mmkit::sys_unlink(m, kTextFile);  // the stand-in executable goes with the replay
  pool.release(cpu);

  fmt::print("{}", opt.json ? report_json(r) : report_text(r));
  bool failed = st.verify_errors > 0;
  if (st.verify_errors > kPrinted)
    fmt::print(stderr, "mmsim: replay: verify: {} more mismatches not shown\n",
               st.verify_errors - kPrinted);
  for (const std::string& err :
       {st.error.empty() ? "" : "mmsim: replay: " + st.error, proc_error}) {
    if (err.empty()) continue;
    fmt::print(stderr, "{}\n", err);
    failed = true;
  }
  return failed ? kExitFailed : 0;
}

}  // namespace mmsim
