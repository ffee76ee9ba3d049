// The run's sampler thread (see run_monitor.h). Rows are taken on a fixed
// 10 ms grid from the start; a late tick is skipped rather than bunched.
// The numbers come from meminfo_fields() and the event sums, both of which
// read counters and zone snapshots that are safe beside running workers.
#include "run_monitor.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <system_error>

namespace mmsim {
namespace {

using mmkit::VmEvent;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kMeminfoColumns[] = {"MemFree",      "MemAvailable",   "AnonPages",
                                                "Active(anon)", "Inactive(anon)", "SwapCached",
                                                "SwapFree",     "PageTables"};
// The page cache's, after the accesses column (so the older columns keep
// their places).
constexpr std::string_view kCacheColumns[] = {"Cached", "Dirty", "Writeback"};
constexpr struct {
  const char* name;
  VmEvent first, last;  // summed over [first, last]
} kEventColumns[] = {
    {"pgfault", VmEvent::PGFAULT, VmEvent::PGFAULT},
    {"pgmajfault", VmEvent::PGMAJFAULT, VmEvent::PGMAJFAULT},
    {"pswpin", VmEvent::PSWPIN, VmEvent::PSWPIN},
    {"pswpout", VmEvent::PSWPOUT, VmEvent::PSWPOUT},
    {"pgscan_kswapd", VmEvent::PGSCAN_KSWAPD, VmEvent::PGSCAN_KSWAPD},
    {"pgscan_direct", VmEvent::PGSCAN_DIRECT, VmEvent::PGSCAN_DIRECT},
    {"pgsteal_kswapd", VmEvent::PGSTEAL_KSWAPD, VmEvent::PGSTEAL_KSWAPD},
    {"pgsteal_direct", VmEvent::PGSTEAL_DIRECT, VmEvent::PGSTEAL_DIRECT},
    {"allocstall", VmEvent::ALLOCSTALL_DMA, VmEvent::ALLOCSTALL_MOVABLE},
    {"oom_kill", VmEvent::OOM_KILL, VmEvent::OOM_KILL},
};
constexpr auto kPeriod = std::chrono::milliseconds(10);
constexpr unsigned kProgressEvery = 25;  // ticks: 250 ms

}  // namespace

std::string RunMonitor::open_timeline(const std::string& path) {
  csv_ = std::fopen(path.c_str(), "w");
  if (!csv_)
    return fmt::format("mmsim: --timeline {}: {}", path, std::generic_category().message(errno));
  csv_path_ = path;
  std::string header = "time_ms";
  for (std::string_view c : kMeminfoColumns) header += fmt::format(",{}_kB", c);
  for (const auto& c : kEventColumns) header += fmt::format(",{}", c.name);
  header += ",accesses";
  for (std::string_view c : kCacheColumns) header += fmt::format(",{}_kB", c);
  header += "\n";
  std::fputs(header.c_str(), csv_);
  return "";
}

void RunMonitor::start(const mmkit::Machine& m, const MachineSnapshot& base,
                       std::function<uint64_t()> accesses, std::function<std::string()> progress,
                       bool show_progress) {
  m_ = &m;
  base_ = &base;
  accesses_ = std::move(accesses);
  progress_ = std::move(progress);
  show_progress_ = show_progress;
  if (!csv_ && !show_progress_) return;
  thread_ = std::thread([this] { loop(); });
}

void RunMonitor::sample(double ms) {
  std::string row = fmt::format("{:.1f}", ms);
  const std::vector<mmkit::MeminfoField> fields = mmkit::meminfo_fields(*m_);
  auto meminfo = [&](std::string_view c) {
    uint64_t v = 0;
    for (const mmkit::MeminfoField& f : fields)
      if (f.name() == c) v = f.value;
    row += fmt::format(",{}", v);
  };
  for (std::string_view c : kMeminfoColumns) meminfo(c);
  for (const auto& c : kEventColumns) {
    int64_t v = 0;
    for (unsigned e = static_cast<unsigned>(c.first); e <= static_cast<unsigned>(c.last); ++e)
      v += m_->sum_event(static_cast<VmEvent>(e)) - base_->events[e];
    row += fmt::format(",{}", v);
  }
  row += fmt::format(",{}", accesses_());
  for (std::string_view c : kCacheColumns) meminfo(c);
  row += "\n";
  std::fputs(row.c_str(), csv_);
}

void RunMonitor::loop() {
  const auto t0 = Clock::now();
  std::unique_lock<std::mutex> g(lock_);
  for (uint64_t tick = 0;; ++tick) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (csv_) sample(ms);
    if (show_progress_ && tick % kProgressEvery == 0)
      std::fprintf(stderr, "\r%s\x1b[K", progress_().c_str());
    // The next tick on the grid that is still ahead.
    auto next = t0 + kPeriod * (tick + 1);
    while (next <= Clock::now()) next += kPeriod, ++tick;
    if (wake_.wait_until(g, next, [this] { return stopping_; })) break;
  }
  if (csv_) sample(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  if (show_progress_) std::fprintf(stderr, "\r\x1b[K");
}

std::string RunMonitor::stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> g(lock_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  std::string err;
  if (csv_) {
    const bool failed = std::ferror(csv_) != 0;
    if (std::fclose(csv_) != 0 || failed)
      err = fmt::format("mmsim: --timeline {}: write failed", csv_path_);
    csv_ = nullptr;
  }
  return err;
}

}  // namespace mmsim
