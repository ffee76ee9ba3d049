// What `mmsim run` shows while it runs: a sampler thread that writes a
// timeline row every ~10 ms (--timeline OUT.csv) and, when stderr is a
// terminal, redraws a one-line progress display on it every 250 ms.
//
// Timeline columns: time_ms (since the workers started), then meminfo
// fields in kB at that moment (MemFree, MemAvailable, AnonPages,
// Active(anon), Inactive(anon), SwapCached, SwapFree, PageTables), then
// events counted since the start (pgfault, pgmajfault, pswpin, pswpout,
// pgscan_kswapd, pgscan_direct, pgsteal_kswapd, pgsteal_direct,
// allocstall, oom_kill), the workers' page accesses so far, and last the
// page cache's meminfo fields in kB (Cached, Dirty, Writeback).
#pragma once

#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "machine_stats.h"
#include "phys/machine.h"

namespace mmsim {

class RunMonitor {
 public:
  ~RunMonitor() { stop(); }
  // Opens the timeline file; "" or "mmsim: --timeline PATH: why".
  std::string open_timeline(const std::string& path);
  // Starts sampling. `accesses` is the workers' running count; `progress`
  // the text of the progress line (called only when `show_progress`).
  void start(const mmkit::Machine& m, const MachineSnapshot& base,
             std::function<uint64_t()> accesses, std::function<std::string()> progress,
             bool show_progress);
  // Writes a last row, clears the progress line and joins the thread;
  // "" or the timeline's write error.
  std::string stop();

 private:
  void loop();
  void sample(double ms);

  const mmkit::Machine* m_ = nullptr;
  const MachineSnapshot* base_ = nullptr;
  std::function<uint64_t()> accesses_;
  std::function<std::string()> progress_;
  bool show_progress_ = false;
  std::FILE* csv_ = nullptr;
  std::string csv_path_;
  std::thread thread_;
  std::mutex lock_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace mmsim
