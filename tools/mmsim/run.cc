// `mmsim run` from start to end (see run.h): read the job file and check
// the output paths before booting, set every job's processes up on one
// bound thread, start one worker thread per process (a verifying read
// job's once its write job's have finished), sample while they run, take
// the end snapshot and the /proc views while the survivors are still alive
// (so the views show their memory), then exit them and report.
#include "run.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <latch>
#include <memory>
#include <thread>

#include "cpu_pool.h"
#include "machine_loader.h"
#include "proc_dump.h"
#include "reclaim/reclaim.h"
#include "run_monitor.h"
#include "run_report.h"
#include "run_worker.h"

namespace mmsim {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kExitFailed = 1;

// The progress line: elapsed time, accesses and their rate, and how far
// the planned work is (passes jobs) or the longest seconds job.
std::string progress_line(const std::vector<JobSpec>& specs, uint64_t accesses, double elapsed) {
  uint64_t planned = 0;
  double longest = 0;
  for (const JobSpec& s : specs) {
    planned += s.passes * (s.size / kPageBytes) * s.processes;
    longest = std::max(longest, s.seconds);
  }
  double done =
      longest > 0 ? elapsed / longest : (planned ? static_cast<double>(accesses) / planned : 0);
  done = std::min(done, 1.0);
  return fmt::format("mmsim run: {:6.1f} s  {:>12} accesses  {:>10.0f}/s  {:3.0f}%", elapsed,
                     accesses, elapsed > 0 ? accesses / elapsed : 0, done * 100);
}

// Exits every process still alive, on a CPU of the pool.
void teardown(CpuPool& pool, std::vector<JobRun>& runs) {
  std::optional<mmkit::CpuScope> cpu;
  pool.acquire(&cpu);
  for (JobRun& j : runs)
    for (auto& s : j.procs) finish_process(*s);
  pool.release(cpu);
}

int execute(mmkit::Machine& m, const std::vector<JobSpec>& specs, const RunOptions& opt,
            RunMonitor& monitor) {
  unsigned workers = 0;
  for (const JobSpec& s : specs) workers += s.processes;
  CpuPool pool(m);
  RunShared sh(m, pool, opt.seed, workers <= m.nr_cpus());
  std::vector<JobRun> runs(specs.size());
  RunTotals totals;
  totals.start = take_snapshot(m);
  const uint64_t kswapd_before = mmkit::kswapd_cpu_ns(m);

  {
    std::optional<mmkit::CpuScope> cpu;
    if (!pool.acquire(&cpu)) {
      fmt::print(stderr, "mmsim: run: no CPU of the machine could be bound\n");
      return kExitFailed;
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      runs[i].spec = &specs[i];
      runs[i].job_index = static_cast<unsigned>(i);
      if (std::string err = setup_job(sh, runs[i]); !err.empty()) {
        pool.release(cpu);
        teardown(pool, runs);
        fmt::print(stderr, "mmsim: run: {}\n", err);
        return kExitFailed;
      }
    }
    pool.release(cpu);
  }

  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  monitor.start(
      m, totals.start, [&] { return sh.accesses.load(std::memory_order_relaxed); },
      [&] { return progress_line(specs, sh.accesses.load(), elapsed()); }, isatty(2) == 1);
  // The stonewall: a read job with verify = true that shares its name with
  // a write or mmap-shared job starts only once every worker of that job
  // has finished.
  std::vector<std::unique_ptr<std::latch>> finished;
  std::vector<const std::latch*> waits_for(runs.size(), nullptr);
  for (const JobRun& j : runs)
    finished.push_back(std::make_unique<std::latch>(static_cast<ptrdiff_t>(j.procs.size())));
  for (size_t i = 0; i < runs.size(); ++i) {
    const JobSpec& r = *runs[i].spec;
    if (r.kind != JobKind::kRead || !r.verify) continue;
    for (size_t k = 0; k < runs.size(); ++k)
      if (writes_file(*runs[k].spec) && runs[k].spec->name == r.name)
        waits_for[i] = finished[k].get();
  }
  auto body = [&](size_t i, ProcSlot* s) {
    if (waits_for[i]) waits_for[i]->wait();
    run_worker(sh, runs[i], *s);
    finished[i]->count_down();
  };
  std::vector<std::thread> threads;
  std::string thread_error;
  size_t ji = 0, si = 0;
  try {
    for (ji = 0; ji < runs.size(); ++ji)
      for (si = 0; si < runs[ji].procs.size(); ++si)
        threads.emplace_back(body, ji, runs[ji].procs[si].get());
  } catch (const std::exception& e) {
    thread_error = e.what();  // the threads that started finish their work
    for (; ji < runs.size(); ++ji, si = 0)
      for (; si < runs[ji].procs.size(); ++si) finished[ji]->count_down();
  }
  for (std::thread& t : threads) t.join();
  totals.seconds = elapsed();
  const std::string timeline_error = monitor.stop();

  totals.end = take_snapshot(m);
  totals.kswapd_cpu_ns = mmkit::kswapd_cpu_ns(m) - kswapd_before;
  std::string proc_error;
  if (!opt.proc_dir.empty()) proc_error = write_proc_views(m, opt.proc_dir);
  teardown(pool, runs);

  for (const JobRun& j : runs) {
    for (const auto& s : j.procs) {
      totals.verify_errors += s->verify_errors;
      if (!s->error.empty()) {
        ++totals.errors;
        fmt::print(stderr, "mmsim: run: job \"{}\" process {} (pid {}): {}\n", j.spec->name,
                   s->index, s->pid, s->error);
      }
    }
  }
  if (sh.log.unprinted())
    fmt::print(stderr, "mmsim: run: verify: {} more mismatches not shown\n", sh.log.unprinted());
  fmt::print("{}", opt.json ? run_report_json(runs, totals) : run_report_text(runs, totals));
  bool failed = totals.verify_errors > 0 || totals.errors > 0;
  for (const std::string& err :
       {thread_error.empty() ? "" : "mmsim: run: cannot start a worker thread: " + thread_error,
        timeline_error, proc_error}) {
    if (err.empty()) continue;
    fmt::print(stderr, "{}\n", err);
    failed = true;
  }
  return failed ? kExitFailed : 0;
}

}  // namespace

int run_command(const RunOptions& opt) {
  auto jobs = load_job_file(opt.jobs_path);
  if (!jobs) {
    fmt::print(stderr, "{}\n", jobs.error().message);
    return kExitBadInput;
  }
  if (!opt.proc_dir.empty()) {
    if (std::string err = prepare_proc_dir(opt.proc_dir); !err.empty()) {
      fmt::print(stderr, "{}\n", err);
      return kExitBadInput;
    }
  }
  RunMonitor monitor;
  if (!opt.timeline.empty()) {
    if (std::string err = monitor.open_timeline(opt.timeline); !err.empty()) {
      fmt::print(stderr, "{}\n", err);
      return kExitBadInput;
    }
  }
  auto m = load_machine(opt.config);
  if (!m) return kExitBadInput;
  return execute(*m, *jobs, opt, monitor);
}

}  // namespace mmsim
