// `mmsim run JOBS.toml`: boots the machine, runs the job file's workloads
// (run_jobs.h) with one host thread per simulated process, verifies every
// page read, and reports per job and for the machine (text, or one JSON
// object with --json). docs/mmsim_run.md is the user's description.
//
// Exit status: 0; 1 when a page read back wrong, a fault failed in a way
// an OOM kill does not explain, or the workload could not be set up; 2 for
// bad input (job file, machine config, --proc or --timeline path).
#pragma once

#include <cstdint>
#include <string>

namespace mmsim {

struct RunOptions {
  std::string jobs_path;
  std::string config;
  bool json = false;
  std::string timeline;  // --timeline OUT.csv
  std::string proc_dir;  // --proc DIR
  uint64_t seed = 1;
};

int run_command(const RunOptions& opt);

}  // namespace mmsim
