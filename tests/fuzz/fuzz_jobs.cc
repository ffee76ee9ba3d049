// libFuzzer target for `mmsim run`'s job-file parser.
//
// Any bytes must give either jobs that keep every promise of run_jobs.h
// (names, sizes, counts and limits within their ranges, exactly one of
// passes and seconds, a verifying read job only beside the writer of its
// files) or exactly one error line that starts with the file name; a crash,
// an escaping exception, a multi-line message or a job out of range that
// slipped through aborts.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "memcg/memcontrol.h"
#include "run_jobs.h"

namespace {

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_jobs: %s\n", why.c_str());
  std::abort();
}

// A limit is a size in bytes or kMemMax ("max").
void check_limit(const std::optional<uint64_t>& v, const char* what) {
  if (v && *v != mmkit::kMemMax && *v > (uint64_t{1} << 62))
    fail(std::string(what) + " out of range");
}

void check_job(const mmsim::JobSpec& j) {
  if (j.name.empty() || j.name.size() > mmsim::kMaxJobName) fail("bad name length");
  if (j.processes < 1 || j.processes > mmsim::kMaxProcesses) fail("processes out of range");
  if (j.size == 0 || j.size % 4096 || j.size > mmsim::kMaxJobSize) fail("size out of range");
  if ((j.passes == 0) == (j.seconds == 0)) fail("not exactly one of passes and seconds");
  if (j.passes > mmsim::kMaxPasses) fail("passes out of range");
  if (!(j.seconds >= 0 && j.seconds <= mmsim::kMaxSeconds)) fail("seconds out of range");
  if (!(j.write_ratio >= 0 && j.write_ratio <= 1)) fail("write_ratio out of range");
  if (j.pattern == mmsim::Pattern::kZipf &&
      !(j.zipf_theta > 0 && j.zipf_theta <= mmsim::kMaxZipfTheta))
    fail("zipf theta out of range");
  if (j.oom_score_adj < -1000 || j.oom_score_adj > 1000) fail("oom_score_adj out of range");
  if (j.fork && mmsim::is_file_job(j)) fail("fork on a file job");
  if (j.fsync_every && !mmsim::writes_file(j)) fail("fsync_every on a job that writes no file");
  if (j.verify && j.kind != mmsim::JobKind::kRead) fail("verify on a job that is not a read");
  check_limit(j.memory_max, "memory_max");
  check_limit(j.memory_high, "memory_high");
  check_limit(j.memory_swap_max, "memory_swap_max");
  check_limit(j.memory_zswap_max, "memory_zswap_max");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = mmsim::parse_job_file(text, "jobs.toml");
  if (r.ok()) {
    if (r.value().empty()) fail("a job file with no job was accepted");
    for (size_t i = 0; i < r.value().size(); ++i) {
      const mmsim::JobSpec& j = r.value()[i];
      check_job(j);
      for (size_t k = 0; k < i; ++k) {
        const mmsim::JobSpec& o = r.value()[k];
        // Only a verifying read job may share a name, with its writer.
        if (o.name == j.name && !(j.verify || o.verify)) fail("two jobs named " + j.name);
      }
    }
    return 0;
  }
  const std::string& msg = r.error().message;
  if (msg.rfind("jobs.toml:", 0) != 0 || msg.find('\n') != std::string::npos)
    fail("malformed error message: " + msg);
  return 0;
}
