// The processes of `mmsim run` and the host threads that drive them.
//
// setup_job() spawns a job's processes (mmkit::spawn), puts them in the
// job's memory cgroup, sets oom_score_adj and maps `size` of private
// anonymous memory in each. With fork = true it spawns one process, maps
// and writes every page of it once (version 1), then forks the others from
// it, so all of them start out sharing those pages copy-on-write.
//
// run_worker() is one process's thread: it takes a CPU from the pool (for
// the whole run, or per batch of accesses when workers outnumber CPUs),
// walks the job's pattern, and writes or reads-and-checks one page per
// access (page_access.h). Each process keeps, host-side, the version of
// every page of its region; the expected contents of a page are the
// pattern of (seed, job, writer, page, version), the writer being the
// process itself, or the first process for version 1 under fork. A
// process the OOM killer takes (or whose fault fails for lack of memory)
// stops there and is exited; that is counted, not an error.
//
// A read or write job's process does the same through its file instead of
// a mapping (run_file.h): one whole page by sys_pread or sys_pwrite per
// access, the pages self-describing (page_data.h). An mmap-shared or
// mmap-private job's process maps its file and accesses it as an anon
// job does its region, with the file's self-describing pages.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cpu_pool.h"
#include "memcg/memcontrol.h"
#include "page_data.h"
#include "run_jobs.h"
#include "vm/process.h"

namespace mmsim {

// The host-side page versions of one region: zero-filled lazily (calloc),
// so an untouched terabyte costs no host memory.
class PageVersions {
 public:
  PageVersions() = default;
  explicit PageVersions(uint64_t pages);
  PageVersions(const PageVersions& o);
  PageVersions& operator=(const PageVersions&) = delete;
  PageVersions(PageVersions&& o) noexcept : v_(o.v_), n_(o.n_) { o.v_ = nullptr, o.n_ = 0; }
  PageVersions& operator=(PageVersions&& o) noexcept {
    std::swap(v_, o.v_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~PageVersions();
  bool ok() const { return n_ == 0 || v_; }
  uint32_t& operator[](uint64_t page) { return v_[page]; }

 private:
  uint32_t* v_ = nullptr;
  uint64_t n_ = 0;
};

struct ProcSlot {
  mmkit::Process* proc = nullptr;  // null once exited
  unsigned index = 0;              // within the job
  int pid = 0;
  uint64_t base = 0;  // the region's start
  PageVersions versions;
  // File jobs: the file's name below the fs root and its descriptor in the
  // process's FileTable (-1: not open).
  std::string file;
  int fd = -1;
  uint64_t unsynced = 0;  // bytes written since the last fsync
  // Results, written by the slot's worker.
  uint64_t accesses = 0, reads = 0, writes = 0, verify_errors = 0;
  uint64_t bytes_read = 0, bytes_written = 0, fsyncs = 0;
  uint64_t min_flt = 0, maj_flt = 0;  // taken before the process exits
  bool oom_killed = false;            // a fault said kKilled or kOom
  std::string error;                  // an unexpected fault or no CPU
  double seconds = 0;                 // of accesses
};

struct JobRun {
  const JobSpec* spec = nullptr;
  unsigned job_index = 0;
  uint64_t name_hash = 0;  // fnv1a64 of the name: file pages' key
  uint64_t pages = 0;      // per process
  mmkit::MemCgroup* memcg = nullptr;
  std::vector<std::unique_ptr<ProcSlot>> procs;
  // What seeds the job's page sequences and read/write choices: its index
  // for anon jobs, its name's hash for file jobs (so that a file's contents
  // do not depend on where the job stands in the job file).
  uint64_t stream_id() const { return is_file_job(*spec) ? name_hash : job_index; }
};

// Mismatch reports, shared by the workers: the first few go to stderr.
class VerifyLog {
 public:
  void report(const std::string& line);
  uint64_t unprinted() const { return unprinted_; }

 private:
  static constexpr unsigned kPrinted = 20;
  std::mutex lock_;
  unsigned printed_ = 0;
  uint64_t unprinted_ = 0;
};

struct RunShared {
  RunShared(mmkit::Machine& machine, CpuPool& cpu_pool, uint64_t s, bool excl)
      : m(machine), pool(cpu_pool), seed(s), exclusive(excl) {}
  mmkit::Machine& m;
  CpuPool& pool;
  const uint64_t seed;
  const bool exclusive;  // no more workers than CPUs: a worker keeps its CPU
  VerifyLog log;
  std::atomic<uint64_t> accesses{0};  // all workers', for progress and the timeline
};

// The key of `version` of `page` in the slot's region (page_data.h): the
// fork parent (index 0) wrote version 1 of every page under fork.
inline uint64_t version_key(const RunShared& sh, const JobRun& job, const ProcSlot& slot,
                            uint64_t page, uint32_t version) {
  const unsigned writer = job.spec->fork && version == 1 ? 0 : slot.index;
  return page_key(sh.seed, job.job_index, writer, page, version);
}

// Creates the job's cgroup and processes; "" or what went wrong. The
// calling thread must have bound a CPU.
std::string setup_job(RunShared& sh, JobRun& job);
// One process's run (see above); the thread binds CPUs itself.
void run_worker(RunShared& sh, JobRun& job, ProcSlot& slot);
// Takes the fault counts and exits a process still alive (bound caller).
void finish_process(ProcSlot& slot);

}  // namespace mmsim
