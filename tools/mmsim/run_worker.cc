// A `mmsim run` worker: one host thread per simulated process, walking the
// job's pattern and verifying every page it reads (see run_worker.h).
#include "run_worker.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "access_pattern.h"
#include "page_access.h"
#include "run_file.h"

namespace mmsim {

PageVersions::PageVersions(uint64_t pages) : n_(pages) {
  v_ = static_cast<uint32_t*>(std::calloc(pages ? pages : 1, sizeof(uint32_t)));
}

PageVersions::PageVersions(const PageVersions& o) : n_(o.n_) {
  v_ = static_cast<uint32_t*>(std::malloc((n_ ? n_ : 1) * sizeof(uint32_t)));
  if (v_ && n_) std::memcpy(v_, o.v_, n_ * sizeof(uint32_t));
}

PageVersions::~PageVersions() {
  std::free(v_);
}

void VerifyLog::report(const std::string& line) {
  std::lock_guard<std::mutex> g(lock_);
  if (printed_ < kPrinted) {
    ++printed_;
    std::fprintf(stderr, "%s\n", line.c_str());
  } else {
    ++unprinted_;
  }
}

void finish_process(ProcSlot& slot) {
  if (!slot.proc) return;
  mmkit::MmStruct* mm = slot.proc->mm;
  slot.min_flt = mm->min_flt.load();
  slot.maj_flt = mm->maj_flt.load();
  if (slot.proc->oom_killed.load()) slot.oom_killed = true;
  mmkit::exit_process(slot.proc);
  slot.proc = nullptr;
}

namespace {

// Accesses between CPU hand-overs when workers share CPUs: about half a
// millisecond of work, long enough that the hand-over costs little.
constexpr uint64_t kBatch = 256;
// How often a worker publishes its count and looks at the clock.
constexpr uint64_t kTick = 64;

using Clock = std::chrono::steady_clock;

class Worker {
 public:
  Worker(RunShared& sh, JobRun& job, ProcSlot& slot)
      : sh_(sh),
        job_(job),
        slot_(slot),
        spec_(*job.spec),
        file_(is_file_job(spec_)),
        mapped_(is_mmap_job(spec_)),
        stream_(spec_, job.pages, sh.seed, job.stream_id(), slot.index, spec_.processes),
        rw_(sh.seed * 0x9e3779b97f4a7c15ull ^ (job.stream_id() << 32) ^ slot.index) {}

  void run() {
    const uint64_t total =
        spec_.passes ? spec_.passes * job_.pages : std::numeric_limits<uint64_t>::max();
    const auto t0 = Clock::now();
    // A verifying read job opens its file now: a write job of the same
    // name may have written it up to a moment ago.
    if (spec_.kind == JobKind::kRead && spec_.verify)
      slot_.error = open_file_to_verify(sh_, job_, slot_);
    const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(spec_.seconds));
    std::optional<mmkit::CpuScope> cpu;
    uint64_t unpublished = 0;
    bool stop = !slot_.error.empty();
    while (!stop && slot_.accesses < total) {
      if (!cpu && !sh_.pool.acquire(&cpu)) {
        slot_.error = "no CPU of the machine could be bound";
        break;
      }
      const uint64_t batch = sh_.exclusive ? total : kBatch;
      for (uint64_t b = 0; b < batch && slot_.accesses < total; ++b) {
        if (!access_one()) {
          stop = true;
          break;
        }
        ++slot_.accesses;
        if (++unpublished == kTick) {
          sh_.accesses.fetch_add(unpublished, std::memory_order_relaxed);
          unpublished = 0;
          if (!spec_.passes && Clock::now() >= deadline) {
            stop = true;
            break;
          }
        }
      }
      if (!sh_.exclusive && !stop) sh_.pool.release(cpu);
    }
    sh_.accesses.fetch_add(unpublished, std::memory_order_relaxed);
    // fio's end_fsync: a write job's file is whole on the host at the end.
    if (file_ && spec_.kind == JobKind::kWrite && !slot_.oom_killed && slot_.error.empty()) {
      if (!cpu) sh_.pool.acquire(&cpu);
      end_fsync(sh_, slot_);
    }
    // An mmap-shared job's last msync; an mmap-private job's file checked.
    if (mapped_ && !slot_.oom_killed && slot_.error.empty()) {
      if (!cpu) sh_.pool.acquire(&cpu);
      end_map(sh_, job_, slot_);
    }
    slot_.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    // A killed process is exited at once, on a CPU; the others stay until
    // the run's end views are taken.
    if (slot_.oom_killed || !slot_.error.empty()) {
      if (!cpu) sh_.pool.acquire(&cpu);
      finish_process(slot_);
    }
    sh_.pool.release(cpu);
  }

 private:
  // One access; false when the process must stop.
  bool access_one() {
    const uint64_t page = stream_.next();
    const bool write = rw_.uniform() < spec_.write_ratio;
    if (mapped_) return map_access(sh_, job_, slot_, page, write);
    if (file_) return file_access(sh_, job_, slot_, page, write, buf_);
    const uint64_t vaddr = slot_.base + page * kPageBytes;
    mmkit::MmStruct* mm = slot_.proc->mm;
    uint32_t& version = slot_.versions[page];
    PageAccess a;
    if (write) {
      a = write_page(mm, vaddr, version_key(sh_, job_, slot_, page, version + 1));
      if (a.fault.ok()) ++version, ++slot_.writes;
    } else {
      a = read_page(mm, vaddr, version_key(sh_, job_, slot_, page, version));
      if (a.fault.ok()) ++slot_.reads;
    }
    if (!a.fault.ok()) {
      if (a.fault.status == mmkit::FaultStatus::kKilled ||
          a.fault.status == mmkit::FaultStatus::kOom)
        slot_.oom_killed = true;
      else
        slot_.error = describe_fault(a.fault);
      return false;
    }
    if (a.bad_offset >= 0) {
      ++slot_.verify_errors;
      sh_.log.report(fmt::format(
          "mmsim: run: verify: job \"{}\" process {} (pid {}): page {:#x} (version {}): byte {} "
          "is {:#04x}, expected {:#04x}",
          spec_.name, slot_.index, slot_.pid, vaddr, version, a.bad_offset, a.actual, a.expected));
    }
    return true;
  }

  RunShared& sh_;
  JobRun& job_;
  ProcSlot& slot_;
  const JobSpec& spec_;
  const bool file_;
  const bool mapped_;  // an mmap job: its accesses go through the mapping
  AccessStream stream_;
  Rng rw_;
  alignas(64) char buf_[kPageBytes];  // a file job's read and write buffer
};

}  // namespace

void run_worker(RunShared& sh, JobRun& job, ProcSlot& slot) {
  if (!slot.proc) return;  // the fork parent that did not survive its first pass
  Worker(sh, job, slot).run();
}

}  // namespace mmsim
