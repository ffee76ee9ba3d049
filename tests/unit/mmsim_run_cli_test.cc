// `mmsim run` as a user runs it: a small job file on a small machine gives
// a JSON report with every promised key and no verify error; the text
// report, the timeline and the /proc directory are written; bad input gets
// one line and exit status 2; and Linux's `free` reads the written meminfo.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>

#include "../support/mmsim_cli.h"
#include "../support/proc_tools.h"

namespace mmkit::test {
namespace {

// A machine small enough to boot in a few milliseconds.
std::string small_machine() {
  return write_temp("run_machine.toml", "cpus = 2\n[[node]]\nmemory = \"64MiB\"\n");
}

// The number after "key": in a JSON text (its first occurrence), or -1.
double json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + R"(\":(-?[0-9.eE+-]+))"))) return -1;
  return std::stod(m[1]);
}

TEST(MmsimRun, JsonHasEveryKeyAndNoVerifyError) {
  // Four processes on two CPUs (the pool shares them), one job forking.
  const std::string jobs = write_temp("run_jobs.toml", R"([[job]]
name = "hot"
size = "1MiB"
pattern = "zipf:0.9"
passes = 2
write_ratio = 0.5

[[job]]
name = "shared"
processes = 3
size = "512KiB"
pattern = "random"
passes = 2
fork = true
oom_score_adj = 100
memory_max = "32MiB"
)");
  CliRun r = run_mmsim("run " + jobs + " --json --seed 7 --config " + small_machine());
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_EQ(r.out.substr(r.out.size() - 2), "}\n");
  for (const char* key :
       {"verify_errors", "pgfault", "pgmajfault", "pswpin", "pswpout", "pgscan_kswapd",
        "pgsteal_kswapd", "pgsteal_direct", "allocstall", "oom_kill", "kswapd_cpu_ms", "seconds"})
    EXPECT_GE(json_number(r.out, key), 0) << key << " in " << r.out.substr(0, 400);
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  // 256 + 3 * 128 pages, each touched at least once.
  EXPECT_GE(json_number(r.out, "pgfault"), 256 + 128);
  for (const char* object : {"\"vmstat\":{", "\"meminfo\":{", "\"jobs\":["})
    EXPECT_NE(r.out.find(object), std::string::npos) << object;
  EXPECT_NE(r.out.find("\"MemTotal\":"), std::string::npos);
  EXPECT_NE(r.out.find("\"pgalloc_dma32\":"), std::string::npos);
  EXPECT_NE(r.out.find("\"name\":\"shared\",\"kind\":\"anon\",\"processes\":3"), std::string::npos);
  // Two passes over each process's pages.
  EXPECT_NE(r.out.find("\"accesses\":512,"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("\"accesses\":768,"), std::string::npos);
}

TEST(MmsimRun, TextTimelineAndProcViews) {
  const std::string jobs = write_temp("run_seconds.toml", R"([[job]]
name = "loop"
size = "256KiB"
pattern = "loop"
seconds = 0.05
)");
  const std::string csv = temp_path("timeline.csv");
  const std::string dir = temp_path("procdir");
  std::filesystem::remove_all(dir);
  CliRun r = run_mmsim("run " + jobs + " --timeline " + csv + " --proc " + dir + " --config " +
                       small_machine());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\nloop "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  verify errors "), std::string::npos) << r.out;
  std::istringstream rows(read_file(csv));
  std::string header, row;
  ASSERT_TRUE(std::getline(rows, header));
  EXPECT_EQ(header.rfind("time_ms,MemFree_kB,MemAvailable_kB,AnonPages_kB,", 0), 0u) << header;
  EXPECT_NE(header.find(",pswpout,"), std::string::npos);
  const std::string tail = ",accesses,Cached_kB,Dirty_kB,Writeback_kB";  // the page cache's last
  EXPECT_EQ(header.substr(header.size() - tail.size()), tail) << header;
  unsigned n = 0;
  while (std::getline(rows, row)) ++n;
  EXPECT_GE(n, 2u);  // the first and the last sample at least
  for (const char* view : {"meminfo", "vmstat", "buddyinfo", "zoneinfo", "slabinfo"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + view)) << view;
  EXPECT_EQ(read_file(dir + "/meminfo").rfind("MemTotal:", 0), 0u);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(csv);
}

// More memory than the machine has and no swap: processes die of it (a
// fault says kOom, or kKilled once the OOM killer chooses them); that is
// counted per job, is not a verify error, and the run still succeeds.
TEST(MmsimRun, OutOfMemoryIsCountedNotAFailure) {
  const std::string machine =
      write_temp("run_tiny.toml", "cpus = 2\n[[node]]\nmemory = \"32MiB\"\n");
  const std::string jobs = write_temp("run_oom.toml", R"([[job]]
name = "big"
processes = 2
size = "20MiB"
passes = 1
write_ratio = 1
)");
  CliRun r = run_mmsim("run " + jobs + " --json --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_GE(json_number(r.out, "oom_kills"), 1) << r.out.substr(0, 1500);
  EXPECT_EQ(json_number(r.out, "errors"), 0);
}

struct BadRun {
  std::string args, err;  // err: a regex for all of stderr
};

void expect_bad_input(const BadRun& c) {
  CliRun r = run_mmsim(c.args);
  EXPECT_EQ(r.status, 2) << c.args << ": " << r.err;
  EXPECT_TRUE(std::regex_match(r.err, std::regex(c.err))) << c.args << ": " << r.err;
  EXPECT_TRUE(r.out.empty()) << c.args;
}

TEST(MmsimRun, BadJobFileGetsOneLineAndStatusTwo) {
  const std::string bad_kind = write_temp(
      "run_bad_kind.toml", "[[job]]\nname = \"a\"\nkind = \"heap\"\nsize = \"1MiB\"\npasses = 1\n");
  expect_bad_input({"run " + bad_kind + " --config " + small_machine(),
                    "^.*run_bad_kind.toml:3: job\\[0\\]\\.kind: unknown kind \"heap\" .*\n$"});
  expect_bad_input({"run /nonexistent/jobs.toml", "^/nonexistent/jobs.toml: cannot read: .*\n$"});
}

std::string good_job() {
  return write_temp("run_good.toml", "[[job]]\nname = \"a\"\nsize = \"64KiB\"\npasses = 1\n");
}

TEST(MmsimRun, BadMachineOrOptionGetsStatusTwo) {
  const std::string bad_machine = write_temp("run_bad_machine.toml", "cpus = \"two\"\n");
  expect_bad_input(
      {"run " + good_job() + " --config " + bad_machine, "^.*run_bad_machine.toml:1: cpus: .*\n$"});
  EXPECT_EQ(run_mmsim("run " + good_job() + " --seed x").status, 2);
  // Out of range: not saturated to 2^64 - 1.
  for (const char* seed : {"-1", "18446744073709551616", "1e3"}) {
    const CliRun r = run_mmsim("run " + good_job() + " --seed " + seed);
    EXPECT_EQ(r.status, 2) << seed;
    EXPECT_NE(r.err.find("is not a whole number from 0 to 18446744073709551615"), std::string::npos)
        << r.err;
  }
  EXPECT_EQ(run_mmsim("run " + good_job() + " --seed 18446744073709551615").status, 0);
}

TEST(MmsimRun, BadOutputPathGetsOneLineAndStatusTwo) {
  const std::string not_a_dir = write_temp("run_file.txt", "x");
  expect_bad_input({"run " + good_job() + " --proc " + not_a_dir + "/sub",
                    "^mmsim: --proc .*run_file.txt/sub: .*\n$"});
  expect_bad_input({"run " + good_job() + " --timeline /nonexistent/t.csv",
                    "^mmsim: --timeline /nonexistent/t.csv: No such file or directory\n$"});
}

TEST(MmsimRun, FreeReadsTheProcDirectory) {
  if (const std::string why = tools_unavailable("free"); !why.empty()) GTEST_SKIP() << why;
  const std::string jobs =
      write_temp("run_free.toml", "[[job]]\nname = \"a\"\nsize = \"2MiB\"\npasses = 1\n");
  const std::string dir = temp_path("procdir_free");
  std::filesystem::remove_all(dir);
  CliRun r = run_mmsim("run " + jobs + " --proc " + dir + " --config " + small_machine());
  ASSERT_EQ(r.status, 0) << r.err;
  const CommandResult f =
      run("unshare -m sh -c 'mount --bind " + dir + "/meminfo /proc/meminfo && free -k'");
  if (f.status != 0) GTEST_SKIP() << "cannot bind-mount over /proc: " << f.output;
  const std::string meminfo = read_file(dir + "/meminfo");
  std::smatch total;
  ASSERT_TRUE(std::regex_search(meminfo, total, std::regex(R"(^MemTotal: +(\d+) kB)")));
  EXPECT_TRUE(std::regex_search(f.output, std::regex("\nMem: +" + total[1].str() + " ")))
      << f.output;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mmkit::test
