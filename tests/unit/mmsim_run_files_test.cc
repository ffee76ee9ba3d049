// `mmsim run`'s read and write jobs as a user runs them, on a machine whose
// files live in a directory the test makes ([fs] root): what a write job
// wrote and fsynced is in the host file, page for page as page_data.h
// computes it; a verifying read job checks it in the same run and in a
// later machine's; a byte changed by hand, a page moved or a missing file
// is reported; a file larger than the machine goes through the page cache
// with fsyncs; a job of several processes has a file per process. The mmap
// jobs: an mmap-shared job's writes reach the host file (msync) and a
// verifying read job checks them; an mmap-private job's writes leave the
// file as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "../support/mmsim_cli.h"
#include "page_data.h"

namespace mmkit::test {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kPage = mmsim::kPageBytes;

// A fresh, empty directory for a machine's files.
std::string fresh_root(const std::string& name) {
  const std::string dir = temp_path("fsroot_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A 2-CPU machine of `memory` on the file system `root`, with a swap area
// of `swap` when one is given.
std::string machine_on(const std::string& root, const std::string& memory = "64MiB",
                       const std::string& swap = "") {
  return write_temp("files_machine_" + fs::path(root).filename().string() + ".toml",
                    "cpus = 2\n" + (swap.empty() ? "" : "swap = \"" + swap + "\"\n") +
                        "[[node]]\nmemory = \"" + memory + "\"\n[fs]\nroot = \"" + root + "\"\n");
}

double json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + R"(\":(-?[0-9.eE+-]+))"))) return -1;
  return std::stod(m[1]);
}

// A key of the job object that starts with "name":NAME,"kind":KIND.
double job_number(const std::string& json, const std::string& name, const std::string& kind,
                  const std::string& key) {
  const size_t at = json.find("{\"name\":\"" + name + "\",\"kind\":\"" + kind + "\"");
  if (at == std::string::npos) return -1;
  return json_number(json.substr(at, json.find('}', at) - at), key);
}

std::string read_host(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// What a file holds: page p of `versions` pages at versions[p] (0: zeros).
std::string expected_file(uint64_t seed, const std::string& name, unsigned process,
                          const std::vector<uint32_t>& versions) {
  std::string out(versions.size() * kPage, '\0');
  for (uint64_t p = 0; p < versions.size(); ++p)
    mmsim::fill_file_page(out.data() + p * kPage,
                          mmsim::FilePageId{seed, mmsim::fnv1a64(name), process, p}, versions[p]);
  return out;
}

// The first page where two files differ, or -1.
int64_t first_bad_page(const std::string& got, const std::string& want) {
  if (got.size() != want.size()) return -2;
  for (uint64_t p = 0; p * kPage < got.size(); ++p)
    if (got.compare(p * kPage, kPage, want, p * kPage, kPage) != 0) return static_cast<int64_t>(p);
  return -1;
}

const char kWriteData[] = R"([[job]]
name = "data"
kind = "write"
size = "1MiB"
pattern = "random"
passes = 2
fsync_every = "256KiB"
)";
// Verifies the file "data" (listed first: it still waits for the writer).
const char kVerifyData[] = R"([[job]]
name = "data"
kind = "read"
size = "1MiB"
pattern = "seq"
passes = 1
verify = true
)";

TEST(MmsimRunFiles, WrittenFileIsOnTheHostAndVerifiesInALaterMachine) {
  const std::string root = fresh_root("data");
  const std::string machine = machine_on(root);
  const std::string both = write_temp("files_both.toml", std::string(kVerifyData) + kWriteData);
  CliRun r = run_mmsim("run " + both + " --json --seed 5 --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  // Two random passes of writes: 512 pages written, 8 fsyncs of 256 KiB and
  // the last one; the reader read each page once.
  EXPECT_EQ(job_number(r.out, "data", "write", "bytes_written"), 2 << 20) << r.out.substr(0, 3000);
  EXPECT_EQ(job_number(r.out, "data", "write", "bytes_read"), 0);
  EXPECT_EQ(job_number(r.out, "data", "write", "fsyncs"), 9);
  EXPECT_EQ(job_number(r.out, "data", "write", "writes"), 512);
  EXPECT_EQ(job_number(r.out, "data", "read", "bytes_read"), 1 << 20);
  EXPECT_EQ(job_number(r.out, "data", "read", "bytes_written"), 0);
  EXPECT_EQ(job_number(r.out, "data", "read", "fsyncs"), 0);
  EXPECT_EQ(job_number(r.out, "data", "read", "verify_errors"), 0);

  // Every page was written twice: version 2 of each, as computed afresh.
  const std::string path = root + "/data";
  const std::string host = read_host(path);
  const std::string want = expected_file(5, "data", 0, std::vector<uint32_t>(256, 2));
  EXPECT_EQ(first_bad_page(host, want), -1);

  // A later machine on the same root, the reader alone.
  const std::string alone = write_temp("files_alone.toml", kVerifyData);
  r = run_mmsim("run " + alone + " --json --seed 5 --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_EQ(job_number(r.out, "data", "read", "bytes_read"), 1 << 20);

  // Changed by hand: page 0x1f's first byte flipped, a byte of page 0x20's
  // pattern flipped, and page 3 copied over page 4 (a page of the right
  // file at the wrong place). Each fails at its first wrong byte.
  std::string bad = host;
  bad[0x1f * kPage] = static_cast<char>(bad[0x1f * kPage] ^ 0xff);
  bad[0x20 * kPage + 1000] = static_cast<char>(bad[0x20 * kPage + 1000] ^ 0x01);
  bad.replace(4 * kPage, kPage, host, 3 * kPage, kPage);
  std::ofstream(path, std::ios::binary) << bad;
  r = run_mmsim("run " + alone + " --json --seed 5 --config " + machine);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 3);
  const std::string line =
      R"(mmsim: run: verify: job "data" process 0 \(pid [0-9]+\): file data page )";
  EXPECT_TRUE(std::regex_search(r.err, std::regex(line + R"(0x1f \(version 2\): byte 0 is 0xa3, )"
                                                         R"(expected 0x5c\n)")))
      << r.err;
  const auto b = static_cast<uint8_t>(host[0x20 * kPage + 1000]);
  char bytes[64];
  std::snprintf(bytes, sizeof bytes, "byte 1000 is 0x%02x, expected 0x%02x\n", b ^ 1, b);
  EXPECT_NE(r.err.find("file data page 0x20 (version 2): " + std::string(bytes)), std::string::npos)
      << r.err;
  // Page 3's header names index 3 where 4 is expected: its byte 8.
  EXPECT_NE(r.err.find("file data page 0x4 (version 2): byte 8 is 0x03, expected 0x04\n"),
            std::string::npos)
      << r.err;

  // Another seed's pages are not this file's: every page fails.
  std::ofstream(path, std::ios::binary) << host;
  r = run_mmsim("run " + alone + " --json --seed 6 --config " + machine);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(json_number(r.out, "verify_errors"), 256);
  EXPECT_NE(r.err.find("mmsim: run: verify: 236 more mismatches not shown"), std::string::npos)
      << r.err;
  fs::remove_all(root);
}

TEST(MmsimRunFiles, VerifyingAMissingOrShortFileIsAnError) {
  const std::string root = fresh_root("missing");
  const std::string machine = machine_on(root);
  const std::string jobs = write_temp("files_missing.toml", kVerifyData);
  CliRun r = run_mmsim("run " + jobs + " --json --config " + machine);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(std::regex_search(
      r.err, std::regex(R"(^mmsim: run: job "data" process 0 \(pid [0-9]+\): cannot open )" + root +
                        R"(/data to verify it: No such file or directory\n)")))
      << r.err;
  EXPECT_EQ(json_number(r.out, "errors"), 1) << r.out.substr(0, 400);
  EXPECT_EQ(job_number(r.out, "data", "read", "errors"), 1);
  EXPECT_EQ(job_number(r.out, "data", "read", "accesses"), 0);

  std::ofstream(root + "/data", std::ios::binary) << std::string(4096, '\0');
  r = run_mmsim("run " + jobs + " --config " + machine);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(root + "/data holds 4096 bytes, fewer than the job's size (1048576)"),
            std::string::npos)
      << r.err;
  fs::remove_all(root);
}

// A 128 MiB file on a 64 MiB machine without swap: the page cache holds
// what it can, dirty pages are written back (by fsync, the flusher and
// reclaim) and clean ones dropped, and the second pass reads back what the
// first wrote, from the host file where the cache let it go.
TEST(MmsimRunFiles, FileLargerThanTheMachine) {
  const std::string root = fresh_root("large");
  const std::string machine = machine_on(root);
  const std::string jobs = write_temp("files_large.toml", R"([[job]]
name = "large"
kind = "write"
size = "128MiB"
pattern = "random"
passes = 2
write_ratio = 0.5
fsync_every = "16MiB"
)");
  CliRun r = run_mmsim("run " + jobs + " --json --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_EQ(json_number(r.out, "oom_kills"), 0);
  const double written = job_number(r.out, "large", "write", "bytes_written");
  const double read = job_number(r.out, "large", "write", "bytes_read");
  EXPECT_EQ(written + read, 2 * (128 << 20));
  EXPECT_GT(read, 0);
  EXPECT_EQ(job_number(r.out, "large", "write", "fsyncs"),
            static_cast<double>(static_cast<uint64_t>(written) / (16 << 20) + 1));
  EXPECT_GT(json_number(r.out, "Cached"), 0) << r.out.substr(r.out.find("\"meminfo\""), 600);
  EXPECT_LT(json_number(r.out, "Cached"), 64 << 10);  // kB: less than the machine
  EXPECT_GT(json_number(r.out, "pgpgout"), 0);
  EXPECT_EQ(fs::file_size(root + "/large"), 128u << 20);
  fs::remove_all(root);
}

// Process I of a job of several uses NAME.I; a read job without verify lays
// its files out (version 1 of every page, not counted as accesses).
TEST(MmsimRunFiles, SeveralProcessesHaveAFileEach) {
  const std::string root = fresh_root("multi");
  const std::string machine = machine_on(root);
  const std::string jobs = write_temp("files_multi.toml", R"([[job]]
name = "multi"
kind = "write"
processes = 2
size = "256KiB"
passes = 1

[[job]]
name = "laid"
kind = "read"
processes = 3
size = "64KiB"
pattern = "zipf:1.1"
passes = 4
)");
  CliRun r = run_mmsim("run " + jobs + " --seed 3 --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  // The text report's file table.
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\nmulti +write +0\.0 +0\.5 +2 )"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\nlaid +read +0\.8 +0\.0 +0 )"))) << r.out;
  EXPECT_FALSE(fs::exists(root + "/multi"));
  for (unsigned i = 0; i < 2; ++i) {
    const std::string host = read_host(root + "/multi." + std::to_string(i));
    EXPECT_EQ(first_bad_page(host, expected_file(3, "multi", i, std::vector<uint32_t>(64, 1))), -1)
        << i;
  }
  for (unsigned i = 0; i < 3; ++i) {
    const std::string host = read_host(root + "/laid." + std::to_string(i));
    EXPECT_EQ(first_bad_page(host, expected_file(3, "laid", i, std::vector<uint32_t>(16, 1))), -1)
        << i;
  }
  fs::remove_all(root);
}

// The same seed writes the same bytes, whatever else the job file holds
// and wherever the job stands in it; the page cache is charged to the
// job's cgroup, and memory.max holds it there.
TEST(MmsimRunFiles, FilesAreDeterministicAndChargedToTheJobsCgroup) {
  const std::string job = R"([[job]]
name = "z"
kind = "write"
size = "8MiB"
pattern = "zipf:0.8"
passes = 2
write_ratio = 0.6
memory_max = "2MiB"
)";
  const std::string other = "[[job]]\nname = \"anon\"\nsize = \"1MiB\"\npasses = 1\n";
  std::string files[2];
  for (int run = 0; run < 2; ++run) {
    const std::string root = fresh_root("det" + std::to_string(run));
    const std::string jobs = write_temp("files_det.toml", run ? other + job : job);
    CliRun r = run_mmsim("run " + jobs + " --json --seed 11 --config " + machine_on(root));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
    EXPECT_EQ(job_number(r.out, "z", "write", "oom_kills"), 0);
    // At most memory.max of cache, and pages were written back and dropped.
    EXPECT_GT(json_number(r.out, "Cached"), 0);
    EXPECT_LE(json_number(r.out, "Cached"), 2048 + 64);
    files[run] = read_host(root + "/z");
    fs::remove_all(root);
  }
  EXPECT_EQ(files[0].size(), 8u << 20);
  EXPECT_TRUE(files[0] == files[1]);
}

// Two sequential passes of writes through a shared mapping: version 2 of
// every page in the host file, msynced every 256 KiB and at the end; a
// mixed job's reads check its own writes through the mapping, and a
// verifying read job (listed first, so it waits) checks its file through
// the page cache.
TEST(MmsimRunFiles, MmapSharedWritesReachTheFile) {
  const std::string root = fresh_root("mmap_shared");
  const std::string machine = machine_on(root);
  const std::string jobs = write_temp("files_mmap_shared.toml", R"([[job]]
name = "mix"
kind = "read"
size = "512KiB"
passes = 1
verify = true

[[job]]
name = "ms"
kind = "mmap-shared"
size = "1MiB"
passes = 2
write_ratio = 1
fsync_every = "256KiB"

[[job]]
name = "mix"
kind = "mmap-shared"
size = "512KiB"
pattern = "random"
passes = 4
)");
  std::string mixed;
  for (int run = 0; run < 2; ++run) {
    CliRun r = run_mmsim("run " + jobs + " --json --seed 9 --config " + machine);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
    EXPECT_EQ(job_number(r.out, "ms", "mmap-shared", "bytes_written"), 2 << 20)
        << r.out.substr(0, 3000);
    EXPECT_EQ(job_number(r.out, "ms", "mmap-shared", "writes"), 512);
    EXPECT_EQ(job_number(r.out, "ms", "mmap-shared", "fsyncs"), 9);  // 8 msyncs and the last
    const double reads = job_number(r.out, "mix", "mmap-shared", "reads");
    EXPECT_GT(reads, 0);
    EXPECT_GT(job_number(r.out, "mix", "mmap-shared", "writes"), 0);
    EXPECT_EQ(reads + job_number(r.out, "mix", "mmap-shared", "writes"), 4 * 128);
    EXPECT_EQ(job_number(r.out, "mix", "mmap-shared", "fsyncs"), 1);
    EXPECT_EQ(job_number(r.out, "mix", "read", "bytes_read"), 512 << 10);
    EXPECT_EQ(job_number(r.out, "mix", "read", "verify_errors"), 0);
    const std::string host = read_host(root + "/ms");
    EXPECT_EQ(first_bad_page(host, expected_file(9, "ms", 0, std::vector<uint32_t>(256, 2))), -1);
    // The same seed writes the same bytes.
    const std::string now = read_host(root + "/mix");
    EXPECT_EQ(now.size(), 512u << 10);
    if (run == 1) EXPECT_TRUE(now == mixed);
    mixed = now;
  }
  // A later machine's verifying read job checks the file.
  const std::string alone = write_temp("files_mmap_verify.toml", R"([[job]]
name = "ms"
kind = "read"
size = "1MiB"
pattern = "random"
passes = 1
verify = true
)");
  CliRun r = run_mmsim("run " + alone + " --json --seed 9 --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_EQ(job_number(r.out, "ms", "read", "bytes_read"), 1 << 20);
  fs::remove_all(root);
}

// Writes through a private mapping are copies: every read checks the
// process's own last version, and the file keeps version 1 of every page,
// in the page cache (checked at the job's end) and on the host. Two
// processes, each with its own file, under a memory cgroup that makes
// reclaim swap the copies and drop the file pages (4 MiB for 4 MiB of
// files and up to 4 MiB of copies; at 1 or 2 MiB the cgroup's OOM killer
// takes a process in about one run of ten, with or without fault-around).
TEST(MmsimRunFiles, MmapPrivateLeavesTheFileUnchanged) {
  const std::string root = fresh_root("mmap_private");
  const std::string machine = machine_on(root, "64MiB", "64MiB");
  const std::string jobs = write_temp("files_mmap_private.toml", R"([[job]]
name = "mp"
kind = "mmap-private"
processes = 2
size = "2MiB"
pattern = "random"
passes = 3
write_ratio = 0.5
memory_max = "4MiB"
)");
  // 4 MiB for two processes' 2 MiB files and up to 2 MiB of copies each:
  // reclaim drops file pages and swaps copies. (The files start cold, as
  // fio's invalidate=1 leaves them; laid out and still cached, they made
  // the group's OOM killer fire now and then at this size.)
  CliRun r = run_mmsim("run " + jobs + " --json --seed 4 --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_EQ(job_number(r.out, "mp", "mmap-private", "oom_kills"), 0);
  EXPECT_GT(job_number(r.out, "mp", "mmap-private", "writes"), 0);
  EXPECT_GT(job_number(r.out, "mp", "mmap-private", "reads"), 0);
  EXPECT_EQ(job_number(r.out, "mp", "mmap-private", "fsyncs"), 0);
  EXPECT_GT(json_number(r.out, "pswpout"), 0);
  for (unsigned i = 0; i < 2; ++i) {
    const std::string host = read_host(root + "/mp." + std::to_string(i));
    EXPECT_EQ(first_bad_page(host, expected_file(4, "mp", i, std::vector<uint32_t>(512, 1))), -1)
        << i;
  }
  fs::remove_all(root);
}

// Groups smaller than the readahead window (128 KiB) and the mmap
// read-around: readahead's charges are __GFP_NORETRY's (one round of the
// group's reclaim, then readahead stops), so the pages it has locked for
// a read never drive the group into its OOM killer; the page a reader
// needs is charged as usual and reclaims the clean pages before it.
TEST(MmsimRunFiles, ReadaheadInAGroupSmallerThanItsWindowKillsNoOne) {
  const std::string root = fresh_root("small_groups");
  const std::string machine = machine_on(root, "64MiB", "64MiB");
  const std::string jobs = write_temp("files_small_groups.toml", R"([[job]]
name = "r"
kind = "read"
size = "2MiB"
passes = 2
pattern = "random"
memory_max = "64KiB"
[[job]]
name = "p"
kind = "mmap-private"
size = "2MiB"
passes = 2
pattern = "random"
write_ratio = 0
memory_max = "240KiB"
[[job]]
name = "s"
kind = "mmap-shared"
size = "2MiB"
passes = 2
pattern = "random"
write_ratio = 0
memory_max = "200KiB"
)");
  CliRun r = run_mmsim("run " + jobs + " --json --seed 3 --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_EQ(json_number(r.out, "oom_kill"), 0) << r.out.substr(0, 2000);
  EXPECT_EQ(job_number(r.out, "r", "read", "oom_kills"), 0);
  EXPECT_EQ(job_number(r.out, "p", "mmap-private", "oom_kills"), 0);
  EXPECT_EQ(job_number(r.out, "s", "mmap-shared", "oom_kills"), 0);
  fs::remove_all(root);
}

// A mapping the process may not have (RLIMIT_AS below the job's size)
// stops the run at set-up with one line naming the job, the file and the
// kind, and exit status 1; for each mmap kind.
TEST(MmsimRunFiles, AnMmapJobsMappingThatFailsIsReported) {
  const std::string root = fresh_root("mmap_rlimit");
  const std::string machine =
      write_temp("files_machine_mmap_rlimit.toml",
                 "cpus = 2\nrlimit_as = \"1MiB\"\n[[node]]\nmemory = \"64MiB\"\n[fs]\nroot = \"" +
                     root + "\"\n");
  for (const std::string kind : {"mmap-shared", "mmap-private"}) {
    const std::string jobs =
        write_temp("files_mmap_rlimit.toml", "[[job]]\nname = \"big\"\nkind = \"" + kind +
                                                 "\"\nsize = \"2MiB\"\npasses = 1\n");
    CliRun r = run_mmsim("run " + jobs + " --config " + machine);
    EXPECT_EQ(r.status, 1) << kind;
    EXPECT_EQ(r.err, "mmsim: run: job[0] \"big\": process 0: mmap of " + root +
                         "/big (2097152 bytes, " + kind + ") failed: Cannot allocate memory\n");
  }
  fs::remove_all(root);
}

// shmem jobs beside file and anonymous ones, four times RAM in all: each
// process's memfd is mapped shared, goes to swap under the others, and
// reads back whole through the mapping and, at the end, through its fd.
TEST(MmsimRunFiles, ShmemJobsSwapAndReadBackInAMixOverFourTimesRam) {
  const std::string root = fresh_root("shmem_mix");
  const std::string machine = machine_on(root, "32MiB", "192MiB");
  const std::string jobs = write_temp("files_shmem_mix.toml", R"([[job]]
name = "shm"
kind = "shmem"
processes = 2
size = "24MiB"
pattern = "random"
passes = 2
write_ratio = 0.5

[[job]]
name = "log"
kind = "write"
size = "32MiB"
pattern = "seq"
passes = 1
fsync_every = "8MiB"

[[job]]
name = "heap"
kind = "anon"
size = "32MiB"
pattern = "random"
passes = 2
)");
  CliRun r = run_mmsim("run " + jobs + " --json --config " + machine);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0) << r.err;
  EXPECT_EQ(json_number(r.out, "oom_kills"), 0);
  EXPECT_EQ(job_number(r.out, "shm", "shmem", "verify_errors"), 0);
  EXPECT_GT(job_number(r.out, "shm", "shmem", "bytes_written"), 0);
  EXPECT_GT(json_number(r.out, "pswpout"), 0);
  EXPECT_EQ(fs::file_size(root + "/log"), 32u << 20);
  EXPECT_FALSE(fs::exists(root + "/shm.0"));  // a memfd has no host file
  fs::remove_all(root);
}

}  // namespace
}  // namespace mmkit::test
