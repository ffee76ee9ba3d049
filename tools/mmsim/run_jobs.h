// Job files for `mmsim run`, in the spirit of fio's: one or more [[job]]
// tables, each a group of simulated processes that map anonymous memory and
// access it page by page, read and write files through the page cache, or
// map files shared or private (docs/mmsim_run.md describes every key).
//
//   [[job]]
//   name = "hot"            # required: [A-Za-z0-9_.-], at most 32, unique
//   kind = "anon"           # anon | read | write | mmap-shared | mmap-private
//   processes = 1           # 1..256
//   size = "1GiB"           # required, per process, a multiple of 4KiB, at most 1TiB
//   pattern = "zipf:0.9"    # seq | random | zipf:THETA (0 < THETA <= 10) | loop
//   passes = 3              # or seconds = 10: exactly one of the two
//   write_ratio = 0.5       # 0..1
//   fork = false            # the processes share the first one's pages copy-on-write
//   oom_score_adj = 0       # -1000..1000
//   memory_max = "256MiB"   # the job's memory cgroup limit ("max": no limit)
//   memory_high = "192MiB"  # its throttle limit (memory.high; "max": none)
//   memory_swap_max = "64MiB"  # its swap limit (memory.swap.max; "max": none)
//   memory_zswap_max = "16MiB" # its zswap limit (memory.zswap.max; "max": none)
//   memory_zswap_writeback = true  # false: its pages never reach the swap file
//   fsync_every = "1MiB"    # write jobs: fsync after every this many bytes written;
//                           # mmap-shared jobs: msync(MS_SYNC) likewise
//   verify = false          # read jobs: check the file a write job wrote
//
// A file job's process I uses the file NAME below the machine's fs root, or
// NAME.I when the job has several processes. Names are unique, except that
// one read job with verify = true may share its name with one write or
// mmap-shared job (the one whose files it checks; they have the same
// processes and size).
//
// Every bad input gives one line "FILE:LINE: job[I].field: what is wrong"
// (or "FILE:LINE: syntax: ..." for text that is not TOML); nothing throws
// past parse_job_file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mmsim {

enum class Pattern : uint8_t { kSeq, kRandom, kZipf, kLoop };
enum class JobKind : uint8_t { kAnon, kRead, kWrite, kMmapShared, kMmapPrivate, kShmem };

struct JobSpec {
  std::string name;
  JobKind kind = JobKind::kAnon;
  unsigned processes = 1;
  uint64_t size = 0;  // bytes per process
  Pattern pattern = Pattern::kSeq;
  double zipf_theta = 0;
  uint64_t passes = 0;  // 0: run for `seconds` instead
  double seconds = 0;
  double write_ratio = 0.5;  // 1 for write jobs, 0 for read jobs unless given
  bool fork = false;
  int oom_score_adj = 0;
  std::optional<uint64_t> memory_max;          // bytes; mmkit::kMemMax for "max"
  std::optional<uint64_t> memory_high;         // bytes; mmkit::kMemMax for "max"
  std::optional<uint64_t> memory_swap_max;     // bytes; mmkit::kMemMax for "max"
  std::optional<uint64_t> memory_zswap_max;    // bytes; mmkit::kMemMax for "max"
  std::optional<bool> memory_zswap_writeback;  // memory.zswap.writeback
  uint64_t fsync_every = 0;                    // write and mmap-shared jobs: bytes between fsyncs
                                               // (msyncs); 0: only the last
  bool verify = false;                         // read jobs: the file exists already (a write job's)
};

inline bool is_file_job(const JobSpec& j) {
  return j.kind != JobKind::kAnon;
}
// A job whose processes map their files (mmap-shared, mmap-private, and
// shmem's memfds).
inline bool is_mmap_job(const JobSpec& j) {
  return j.kind == JobKind::kMmapShared || j.kind == JobKind::kMmapPrivate ||
         j.kind == JobKind::kShmem;
}
// A job whose writes reach its files (what a verifying read job checks).
inline bool writes_file(const JobSpec& j) {
  return j.kind == JobKind::kWrite || j.kind == JobKind::kMmapShared;
}

inline constexpr unsigned kMaxProcesses = 256;
inline constexpr uint64_t kMaxJobSize = 1ull << 40;
inline constexpr double kMaxZipfTheta = 10;
inline constexpr uint64_t kMaxPasses = 1000000;
inline constexpr double kMaxSeconds = 86400;
inline constexpr size_t kMaxJobName = 32;

// "seq", "random", "zipf:0.9", "loop".
std::string pattern_name(const JobSpec& j);
// "anon", "read", "write", "mmap-shared", "mmap-private".
const char* kind_name(JobKind k);
// The file of process `index` of a file job, below the machine's fs root:
// NAME when the job has one process, NAME.INDEX when it has several.
std::string job_file_name(const JobSpec& j, unsigned index);

// Parses the text of `file_name` (used only in messages). Never throws.
mmkit::Result<std::vector<JobSpec>> parse_job_file(std::string_view text,
                                                   std::string_view file_name);
// Reads `path` and parses it; an unreadable file gives "PATH: cannot read: <strerror>".
mmkit::Result<std::vector<JobSpec>> load_job_file(const std::string& path);

}  // namespace mmsim
