// `mmsim run`'s report: per job (accesses, accesses/s, minor and major
// faults, OOM kills, verify errors; for read and write jobs also the bytes
// read and written and the fsyncs) and for the machine (the event totals,
// kswapd's CPU time, the vmstat deltas and, in JSON, meminfo at the end),
// as aligned text or as one JSON object (docs/mmsim_run.md lists the keys).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "machine_stats.h"
#include "run_worker.h"

namespace mmsim {

struct RunTotals {
  MachineSnapshot start, end;
  double seconds = 0;          // the workers' wall time
  uint64_t kswapd_cpu_ns = 0;  // over the run
  uint64_t verify_errors = 0;  // all jobs
  uint64_t errors = 0;         // unexpected faults, unbindable CPUs
};

std::string run_report_text(const std::vector<JobRun>& jobs, const RunTotals& t);
std::string run_report_json(const std::vector<JobRun>& jobs, const RunTotals& t);

}  // namespace mmsim
