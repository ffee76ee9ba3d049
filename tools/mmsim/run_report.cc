// Formatting `mmsim run`'s report (see run_report.h). A job's rate is its
// accesses over its wall time: from its workers' start to the last one's
// end, killed processes included.
#include "run_report.h"

#include <fmt/format.h>

#include <algorithm>

namespace mmsim {
namespace {

struct JobFigures {
  uint64_t accesses = 0, reads = 0, writes = 0, min_flt = 0, maj_flt = 0;
  uint64_t oom_kills = 0, verify_errors = 0, errors = 0;
  uint64_t bytes_read = 0, bytes_written = 0, fsyncs = 0;
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(accesses) / seconds : 0; }
};

JobFigures figures(const JobRun& job) {
  JobFigures f;
  for (const auto& s : job.procs) {
    f.accesses += s->accesses;
    f.reads += s->reads;
    f.writes += s->writes;
    f.min_flt += s->min_flt;
    f.maj_flt += s->maj_flt;
    f.oom_kills += s->oom_killed;
    f.verify_errors += s->verify_errors;
    f.errors += !s->error.empty();
    f.bytes_read += s->bytes_read;
    f.bytes_written += s->bytes_written;
    f.fsyncs += s->fsyncs;
    f.seconds = std::max(f.seconds, s->seconds);
  }
  return f;
}

}  // namespace

std::string run_report_text(const std::vector<JobRun>& jobs, const RunTotals& t) {
  std::string out =
      fmt::format("{:<16} {:>5} {:<12} {:>12} {:>12} {:>10} {:>10} {:>5} {:>7}\n", "job", "procs",
                  "pattern", "accesses", "accesses/s", "min_flt", "maj_flt", "oom", "verify");
  for (const JobRun& j : jobs) {
    const JobFigures f = figures(j);
    out += fmt::format("{:<16} {:>5} {:<12} {:>12} {:>12.0f} {:>10} {:>10} {:>5} {:>7}\n",
                       j.spec->name, j.spec->processes, pattern_name(*j.spec), f.accesses, f.rate(),
                       f.min_flt, f.maj_flt, f.oom_kills, f.verify_errors);
  }
  // File jobs' I/O, in a table of its own (the one above keeps its columns).
  bool files = false;
  for (const JobRun& j : jobs) files |= is_file_job(*j.spec);
  if (files) {
    out += fmt::format("\n{:<16} {:<12} {:>12} {:>12} {:>10} {:>12}\n", "file job", "kind",
                       "read_MiB", "written_MiB", "fsyncs", "MiB/s");
    for (const JobRun& j : jobs) {
      if (!is_file_job(*j.spec)) continue;
      const JobFigures f = figures(j);
      const double mib = static_cast<double>(f.bytes_read + f.bytes_written) / (1 << 20);
      out += fmt::format("{:<16} {:<12} {:>12.1f} {:>12.1f} {:>10} {:>12.1f}\n", j.spec->name,
                         kind_name(j.spec->kind), static_cast<double>(f.bytes_read) / (1 << 20),
                         static_cast<double>(f.bytes_written) / (1 << 20), f.fsyncs,
                         f.seconds > 0 ? mib / f.seconds : 0.0);
    }
  }
  const EventTotals e = event_totals(t.start, t.end);
  out += fmt::format("\nmachine, over {:.3f} s:\n", t.seconds);
  auto row = [&](std::string_view name, auto v) {
    out += fmt::format("  {:<32} {:>14}\n", name, v);
  };
  row("pgfault", e.pgfault);
  row("pgmajfault", e.pgmajfault);
  row("pswpin", e.pswpin);
  row("pswpout", e.pswpout);
  row("pgscan_kswapd", e.pgscan_kswapd);
  row("pgsteal_kswapd", e.pgsteal_kswapd);
  row("pgscan_direct", e.pgscan_direct);
  row("pgsteal_direct", e.pgsteal_direct);
  row("allocstall", e.allocstall);
  row("oom_kill", e.oom_kill);
  out += fmt::format("  {:<32} {:>14.1f}\n", "kswapd CPU (ms)", t.kswapd_cpu_ns / 1e6);
  row("verify errors", t.verify_errors);
  out += "\nvmstat deltas (lines that changed):\n" + vmstat_delta_text(t.start, t.end);
  return out;
}

std::string run_report_json(const std::vector<JobRun>& jobs, const RunTotals& t) {
  const EventTotals e = event_totals(t.start, t.end);
  JsonWriter w;
  w.begin_object();
  w.field("seconds", t.seconds);
  w.field("verify_errors", t.verify_errors);
  w.field("errors", t.errors);
  w.field("pgfault", e.pgfault).field("pgmajfault", e.pgmajfault);
  w.field("pswpin", e.pswpin).field("pswpout", e.pswpout);
  w.field("pgscan_kswapd", e.pgscan_kswapd).field("pgsteal_kswapd", e.pgsteal_kswapd);
  w.field("pgscan_direct", e.pgscan_direct).field("pgsteal_direct", e.pgsteal_direct);
  w.field("allocstall", e.allocstall).field("oom_kill", e.oom_kill);
  w.field("kswapd_cpu_ms", t.kswapd_cpu_ns / 1e6);
  w.key("jobs").begin_array();
  for (const JobRun& j : jobs) {
    const JobFigures f = figures(j);
    const JobSpec& s = *j.spec;
    w.begin_object();
    w.field("name", s.name).field("kind", kind_name(s.kind)).field("processes", s.processes);
    w.field("size", s.size).field("pattern", pattern_name(s)).field("fork", s.fork);
    // A cgroup limit: its bytes, or null when not set or "max".
    auto limit = [&w](const char* key, const std::optional<uint64_t>& v) {
      w.key(key);
      if (v && *v != mmkit::kMemMax)
        w.value(*v);
      else
        w.null();
    };
    limit("memory_max", s.memory_max);
    limit("memory_high", s.memory_high);
    limit("memory_swap_max", s.memory_swap_max);
    limit("memory_zswap_max", s.memory_zswap_max);
    w.field("memory_zswap_writeback", s.memory_zswap_writeback.value_or(true));
    w.field("seconds", f.seconds).field("accesses", f.accesses);
    w.field("accesses_per_sec", f.rate());
    w.field("reads", f.reads).field("writes", f.writes);
    w.field("min_flt", f.min_flt).field("maj_flt", f.maj_flt);
    w.field("oom_kills", f.oom_kills).field("verify_errors", f.verify_errors);
    w.field("errors", f.errors);
    w.field("bytes_read", f.bytes_read).field("bytes_written", f.bytes_written);
    w.field("fsyncs", f.fsyncs);
    w.end_object();
  }
  w.end_array();
  write_vmstat_delta(w, t.start, t.end);
  write_meminfo(w, t.end);
  w.end_object();
  return w.str() + "\n";
}

}  // namespace mmsim
