// `mmsim replay TRACE`: replays a page-access trace (trace_parse.h) through
// one process's MMU on a booted machine, verifying data as `mmsim run`
// does: each written page carries the pattern of its version, each read
// checks every byte (page_data.h).
//
// Addresses keep their place: the 2 MiB-aligned region around an address
// is mapped (private, anonymous, MAP_FIXED_NOREPLACE) at the same address
// the first time the trace touches it. A region that cannot be placed
// there (outside the process's user range, below mmap_min_addr, or over
// its stack) is mapped wherever mmap puts it instead, the offset inside
// the region kept; the report counts those regions. A region whose first
// access is an instruction fetch (a lackey "I" line) is code: it is mapped
// private and read-write-execute from the next 2 MiB of a stand-in
// executable under the machine's fs root (mmsim-replay.text, laid out with
// self-describing file pages and fsynced when the region appears, unlinked
// at the end), so code is page cache that competes with the anonymous data
// as a program's text does in Linux. With --memory SIZE the
// process runs in a memory cgroup of that limit ("replay"), so a small
// trace can be replayed under memory pressure on any machine.
//
// Exit status: 0; 1 when a page read back wrong or the replay could not
// map or fault as it had to; 2 for bad input (a malformed trace line,
// "FILE:LINE: what is wrong", an unreadable trace, a bad option or config).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "trace_parse.h"

namespace mmsim {

struct ReplayOptions {
  std::string trace;
  TraceFormat format = TraceFormat::kAuto;
  std::string config;
  std::optional<std::string> memory;  // --memory SIZE, as typed
  bool json = false;
  std::string proc_dir;
};

int replay_command(const ReplayOptions& opt);

}  // namespace mmsim
