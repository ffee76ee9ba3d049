// The machine's counters at one moment, and what a workload changed between
// two moments: the vm events, every /proc/vmstat line and the /proc/meminfo
// fields, taken from the same structured forms the /proc views print
// (vmstat_fields, meminfo_fields), so a report's numbers are the views'.
// `mmsim run` and `mmsim replay` both report through here.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "phys/machine.h"
#include "procfs/json_writer.h"
#include "procfs/procfs.h"

namespace mmsim {

using mmkit::JsonWriter;

struct MachineSnapshot {
  std::array<int64_t, mmkit::kNrVmEvents> events{};
  std::vector<mmkit::VmstatField> vmstat;    // /proc/vmstat, Linux's lines only
  std::vector<mmkit::MeminfoField> meminfo;  // /proc/meminfo
};
MachineSnapshot take_snapshot(const mmkit::Machine& m);

// The event totals both reports name, as deltas between two snapshots.
struct EventTotals {
  int64_t pgfault = 0, pgmajfault = 0;
  int64_t pswpin = 0, pswpout = 0;
  int64_t pgscan_kswapd = 0, pgscan_direct = 0;
  int64_t pgsteal_kswapd = 0, pgsteal_direct = 0;
  int64_t allocstall = 0;  // allocstall_* summed over the zones
  int64_t oom_kill = 0;
};
EventTotals event_totals(const MachineSnapshot& start, const MachineSnapshot& end);

// "vmstat": {name: end - start, ...} over every /proc/vmstat line, and
// "meminfo": {name: value at the end (kB; HugePages_* are counts)}.
void write_vmstat_delta(JsonWriter& w, const MachineSnapshot& start, const MachineSnapshot& end);
void write_meminfo(JsonWriter& w, const MachineSnapshot& end);

// "  name  delta" lines for the vmstat lines that changed.
std::string vmstat_delta_text(const MachineSnapshot& start, const MachineSnapshot& end);

}  // namespace mmsim
