// `mmsim run`'s job-file parser: a good file gives the jobs it describes,
// and every bad input gets exactly the one-line "FILE:LINE: job[I].field:
// what" message a user would see.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "../support/mmsim_cli.h"
#include "memcg/memcontrol.h"
#include "run_jobs.h"

namespace mmsim {
namespace {

std::string error_of(const std::string& text) {
  auto r = parse_job_file(text, "jobs.toml");
  if (r.ok()) return "(parsed)";
  return r.error().message;
}

TEST(MmsimJobs, ParsesEveryKey) {
  auto r = parse_job_file(R"(
[[job]]
name = "hot"
kind = "anon"
processes = 3
size = "1GiB"
pattern = "zipf:0.9"
passes = 3
write_ratio = 0.25
fork = true
oom_score_adj = -500
memory_max = "256MiB"
memory_high = "192MiB"
memory_swap_max = "64MiB"
memory_zswap_max = "16MiB"
memory_zswap_writeback = false

[[job]]
name = "cold.2"
size = 8192
pattern = "loop"
seconds = 1.5
memory_max = "max"
memory_swap_max = 0
memory_zswap_max = 0
)",
                          "jobs.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  const JobSpec& a = (*r)[0];
  EXPECT_EQ(a.name, "hot");
  EXPECT_EQ(a.processes, 3u);
  EXPECT_EQ(a.size, 1ull << 30);
  EXPECT_EQ(a.pattern, Pattern::kZipf);
  EXPECT_DOUBLE_EQ(a.zipf_theta, 0.9);
  EXPECT_EQ(pattern_name(a), "zipf:0.9");
  EXPECT_EQ(a.passes, 3u);
  EXPECT_DOUBLE_EQ(a.write_ratio, 0.25);
  EXPECT_TRUE(a.fork);
  EXPECT_EQ(a.oom_score_adj, -500);
  EXPECT_EQ(a.memory_max, 256ull << 20);
  EXPECT_EQ(a.memory_high, 192ull << 20);
  EXPECT_EQ(a.memory_swap_max, 64ull << 20);
  EXPECT_EQ(a.memory_zswap_max, 16ull << 20);
  EXPECT_EQ(a.memory_zswap_writeback, false);
  const JobSpec& b = (*r)[1];
  EXPECT_EQ(b.processes, 1u);
  EXPECT_EQ(b.size, 8192u);
  EXPECT_EQ(b.pattern, Pattern::kLoop);
  EXPECT_EQ(b.passes, 0u);
  EXPECT_DOUBLE_EQ(b.seconds, 1.5);
  EXPECT_DOUBLE_EQ(b.write_ratio, 0.5);  // the default
  EXPECT_FALSE(b.fork);
  EXPECT_EQ(b.memory_max, mmkit::kMemMax);
  EXPECT_EQ(b.memory_swap_max, 0u);
  EXPECT_EQ(b.memory_zswap_max, 0u);
  EXPECT_FALSE(b.memory_zswap_writeback);
  EXPECT_FALSE(b.memory_high);
}

TEST(MmsimJobs, PatternsAndSizeUnits) {
  for (const char* p : {"seq", "random", "loop", "zipf:1", "zipf:1.2", "zipf:10"}) {
    auto r = parse_job_file(
        std::string("[[job]]\nname=\"a\"\nsize=\"4K\"\npasses=1\npattern=\"") + p + "\"\n",
        "j.toml");
    ASSERT_TRUE(r.ok()) << p << ": " << r.error().message;
    EXPECT_EQ(pattern_name((*r)[0]), p);
  }
  for (auto [text, bytes] : {std::pair{"\"2M\"", 2ull << 20},
                             {"\"3GiB\"", 3ull << 30},
                             {"\"1TiB\"", 1ull << 40},
                             {"\"64 KiB\"", 64ull << 10}}) {
    auto r =
        parse_job_file(std::string("[[job]]\nname=\"a\"\npasses=1\nsize=") + text + "\n", "j.toml");
    ASSERT_TRUE(r.ok()) << text << ": " << r.error().message;
    EXPECT_EQ((*r)[0].size, bytes) << text;
  }
}

struct Bad {
  const char* what;
  std::string text;
  std::string message;
};

TEST(MmsimJobs, EveryBadInputHasItsMessage) {
  const std::string head = "[[job]]\nname = \"a\"\nsize = \"4MiB\"\n";  // lines 1-3
  const Bad cases[] = {
      {"unknown key", head + "passes = 1\nsizes = 3\n",
       "jobs.toml:5: job[0].sizes: unknown key \"sizes\" in [[job]]; did you mean \"size\"?"},
      {"unknown key, no suggestion", head + "passes = 1\nbananas = 3\n",
       "jobs.toml:5: job[0].bananas: unknown key \"bananas\" in [[job]] (expected one of name, "
       "kind, processes, size, pattern, passes, seconds, write_ratio, fork, oom_score_adj, "
       "memory_max, memory_high, memory_swap_max, memory_zswap_max, memory_zswap_writeback, "
       "fsync_every, verify)"},
      {"unknown top-level key", "threads = 2\n" + head + "passes = 1\n",
       "jobs.toml:1: threads: unknown key \"threads\" at the top level (a job file holds [[job]] "
       "tables)"},
      {"bad pattern", head + "passes = 1\npattern = \"sequential\"\n",
       "jobs.toml:5: job[0].pattern: unknown pattern \"sequential\" (expected seq, random, "
       "zipf:THETA or loop)"},
      {"zipf theta not a number", head + "passes = 1\npattern = \"zipf:x\"\n",
       "jobs.toml:5: job[0].pattern: \"zipf:x\": zipf's theta must be a decimal number, e.g. "
       "\"zipf:0.9\""},
      {"zipf theta zero", head + "passes = 1\npattern = \"zipf:0\"\n",
       "jobs.toml:5: job[0].pattern: zipf theta 0 is out of range (must be > 0 and at most 10)"},
      {"zipf theta too large", head + "passes = 1\npattern = \"zipf:10.5\"\n",
       "jobs.toml:5: job[0].pattern: zipf theta 10.5 is out of range (must be > 0 and at most "
       "10)"},
      {"both passes and seconds", head + "passes = 1\nseconds = 2\n",
       "jobs.toml:5: job[0].seconds: give passes or seconds, not both"},
      {"neither passes nor seconds", head,
       "jobs.toml:1: job[0].passes: missing: give passes = N or seconds = S (exactly one)"},
      {"passes zero", head + "passes = 0\n",
       "jobs.toml:4: job[0].passes: 0 is out of range (1..1000000)"},
      {"seconds negative", head + "seconds = -1.5\n",
       "jobs.toml:4: job[0].seconds: -1.5 is out of range (more than 0, at most 86400)"},
      {"seconds a string", head + "seconds = \"10\"\n",
       "jobs.toml:4: job[0].seconds: expected a number, got a string"},
      {"bad size", "[[job]]\nname = \"a\"\nsize = \"12XB\"\npasses = 1\n",
       "jobs.toml:3: job[0].size: \"12XB\" is not a size (use e.g. \"512MiB\")"},
      {"size not page aligned", "[[job]]\nname = \"a\"\nsize = 5000\npasses = 1\n",
       "jobs.toml:3: job[0].size: 5000 is not a multiple of 4KiB"},
      {"size zero", "[[job]]\nname = \"a\"\nsize = \"0\"\npasses = 1\n",
       "jobs.toml:3: job[0].size: must be at least 4KiB"},
      {"size too large", "[[job]]\nname = \"a\"\nsize = \"2TiB\"\npasses = 1\n",
       "jobs.toml:3: job[0].size: is larger than 1TiB"},
      {"size missing", "[[job]]\nname = \"a\"\npasses = 1\n",
       "jobs.toml:1: job[0].size: missing (required), e.g. size = \"64MiB\""},
      {"size a float", "[[job]]\nname = \"a\"\nsize = 1.5\npasses = 1\n",
       "jobs.toml:3: job[0].size: expected a size (bytes as an integer, or a string like "
       "\"64MiB\"), got a float"},
      {"write_ratio out of range", head + "passes = 1\nwrite_ratio = 1.5\n",
       "jobs.toml:5: job[0].write_ratio: 1.5 is out of range (0..1)"},
      {"write_ratio negative", head + "passes = 1\nwrite_ratio = -1\n",
       "jobs.toml:5: job[0].write_ratio: -1 is out of range (0..1)"},
      {"write_ratio nan", head + "passes = 1\nwrite_ratio = nan\n",
       "jobs.toml:5: job[0].write_ratio: must be a finite number"},
      {"unknown kind", head + "passes = 1\nkind = \"heap\"\n",
       "jobs.toml:5: job[0].kind: unknown kind \"heap\" (expected \"anon\", \"read\", \"write\", "
       "\"mmap-shared\", \"mmap-private\" or \"shmem\")"},
      {"fsync_every on shmem", head + "passes = 1\nkind = \"shmem\"\nfsync_every = \"1MiB\"\n",
       "jobs.toml:6: job[0].fsync_every: only write and mmap-shared jobs fsync (this is a shmem "
       "job, whose memory is a memfd's)"},
      {"kind mmap with an underscore", head + "passes = 1\nkind = \"mmap_shared\"\n",
       "jobs.toml:5: job[0].kind: unknown kind \"mmap_shared\" (expected \"anon\", \"read\", "
       "\"write\", \"mmap-shared\", \"mmap-private\" or \"shmem\")"},
      {"processes zero", head + "passes = 1\nprocesses = 0\n",
       "jobs.toml:5: job[0].processes: 0 is out of range (1..256)"},
      {"processes a string", head + "passes = 1\nprocesses = \"2\"\n",
       "jobs.toml:5: job[0].processes: expected an integer, got a string"},
      {"fork not a boolean", head + "passes = 1\nfork = 1\n",
       "jobs.toml:5: job[0].fork: expected true or false, got an integer"},
      {"oom_score_adj out of range", head + "passes = 1\noom_score_adj = 1001\n",
       "jobs.toml:5: job[0].oom_score_adj: 1001 is out of range (-1000..1000)"},
      {"memory_max bad", head + "passes = 1\nmemory_max = \"lots\"\n",
       "jobs.toml:5: job[0].memory_max: \"lots\" is not a size (use e.g. \"512MiB\")"},
      {"memory_max too small", head + "passes = 1\nmemory_max = 100\n",
       "jobs.toml:5: job[0].memory_max: must be at least 4KiB (or \"max\")"},
      {"memory_high too small", head + "passes = 1\nmemory_high = 10\n",
       "jobs.toml:5: job[0].memory_high: must be at least 4KiB (or \"max\")"},
      {"memory_swap_max bad", head + "passes = 1\nmemory_swap_max = \"none\"\n",
       "jobs.toml:5: job[0].memory_swap_max: \"none\" is not a size (use e.g. \"512MiB\")"},
      {"memory_swap_max negative", head + "passes = 1\nmemory_swap_max = -1\n",
       "jobs.toml:5: job[0].memory_swap_max: -1 is negative"},
      {"memory_zswap_writeback not a boolean", head + "passes = 1\nmemory_zswap_writeback = 1\n",
       "jobs.toml:5: job[0].memory_zswap_writeback: expected true or false, got an integer"},
      {"memory_zswap_max bad", head + "passes = 1\nmemory_zswap_max = \"lots\"\n",
       "jobs.toml:5: job[0].memory_zswap_max: \"lots\" is not a size (use e.g. \"512MiB\")"},
      {"name missing", "[[job]]\nsize = \"4MiB\"\npasses = 1\n",
       "jobs.toml:1: job[0].name: missing (required), e.g. name = \"hot\""},
      {"name with a slash", "[[job]]\nname = \"a/b\"\nsize = \"4MiB\"\npasses = 1\n",
       "jobs.toml:2: job[0].name: \"a/b\" has a character other than letters, digits, '_', '-' "
       "and '.'"},
      {"name taken", head + "passes = 1\n" + head + "passes = 1\n",
       "jobs.toml:6: job[1].name: \"a\" is already the name of another job (names must be "
       "unique)"},
      {"second job's error", head + "passes = 1\n[[job]]\nname = \"b\"\nsize = 3\npasses = 1\n",
       "jobs.toml:7: job[1].size: 3 is not a multiple of 4KiB"},
      {"empty file", "", "jobs.toml:1: job: no [[job]] table (a job file needs at least one)"},
      {"only comments", "# nothing\n\n",
       "jobs.toml:1: job: no [[job]] table (a job file needs at least one)"},
      {"job as a table", "[job]\nname = \"a\"\n",
       "jobs.toml:1: job: expected an array of tables ([[job]]), got a table"},
      {"job element not a table", "job = [1]\n",
       "jobs.toml:1: job[0]: expected a table, got an integer"},
      {"not TOML", "this is not toml\n",
       "jobs.toml:1: syntax: Error while parsing key-value pair: expected '=', saw 'i'"},
      {"control byte", "[[job]]\nname = \"a\x01\"\n",
       "jobs.toml:2: syntax: control character 0x01 is not allowed in TOML (use an escape in a "
       "string)"},
      {"non-ASCII outside a string", "[[job]]\nnäme = 1\n",
       "jobs.toml:2: syntax: non-ASCII character outside a comment or a one-line string"},
  };
  for (const Bad& c : cases) EXPECT_EQ(error_of(c.text), c.message) << c.what;
}

// Read and write jobs: their keys, their defaults, the files they name and
// the one shared name they may have (a verifying read job and its writer).
TEST(MmsimJobs, ParsesFileJobs) {
  auto r = parse_job_file(R"([[job]]
name = "w"
kind = "write"
processes = 2
size = "8MiB"
pattern = "random"
passes = 2
fsync_every = "1MiB"
memory_max = "64MiB"
oom_score_adj = 10
fork = false

[[job]]
name = "w"
kind = "read"
processes = 2
size = "8MiB"
seconds = 1
verify = true

[[job]]
name = "r"
kind = "read"
size = 8192
passes = 1

[[job]]
name = "w2"
kind = "write"
size = 8192
passes = 1
write_ratio = 0.25
)",
                          "jobs.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  const JobSpec& w = (*r)[0];
  EXPECT_EQ(w.kind, JobKind::kWrite);
  EXPECT_STREQ(kind_name(w.kind), "write");
  EXPECT_TRUE(is_file_job(w));
  EXPECT_DOUBLE_EQ(w.write_ratio, 1);  // a write job's default
  EXPECT_EQ(w.fsync_every, 1u << 20);
  EXPECT_FALSE(w.fork);
  EXPECT_EQ(job_file_name(w, 0), "w.0");
  EXPECT_EQ(job_file_name(w, 1), "w.1");
  const JobSpec& v = (*r)[1];
  EXPECT_EQ(v.kind, JobKind::kRead);
  EXPECT_TRUE(v.verify);
  EXPECT_DOUBLE_EQ(v.write_ratio, 0);
  EXPECT_EQ(v.fsync_every, 0u);
  const JobSpec& plain = (*r)[2];
  EXPECT_FALSE(plain.verify);
  EXPECT_EQ(job_file_name(plain, 0), "r");  // one process: the job's name
  EXPECT_DOUBLE_EQ((*r)[3].write_ratio, 0.25);
  EXPECT_FALSE(is_file_job(JobSpec{}));
  EXPECT_STREQ(kind_name(JobKind::kAnon), "anon");
}

TEST(MmsimJobs, MmapJobsParse) {
  auto r = parse_job_file(R"([[job]]
name = "m"
kind = "mmap-shared"
processes = 2
size = "1MiB"
pattern = "random"
passes = 2
fsync_every = "64KiB"

[[job]]
name = "m"
kind = "read"
processes = 2
size = "1MiB"
passes = 1
verify = true

[[job]]
name = "p"
kind = "mmap-private"
size = "256KiB"
seconds = 1
write_ratio = 0.9
)",
                          "jobs.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  const JobSpec& ms = (*r)[0];
  EXPECT_EQ(ms.kind, JobKind::kMmapShared);
  EXPECT_TRUE(is_file_job(ms) && is_mmap_job(ms) && writes_file(ms));
  EXPECT_DOUBLE_EQ(ms.write_ratio, 0.5);  // as an anon job's
  EXPECT_EQ(ms.fsync_every, 64u << 10);
  EXPECT_EQ(job_file_name(ms, 1), "m.1");
  EXPECT_TRUE((*r)[1].verify);
  const JobSpec& mp = (*r)[2];
  EXPECT_EQ(mp.kind, JobKind::kMmapPrivate);
  EXPECT_TRUE(is_mmap_job(mp) && !writes_file(mp));
  EXPECT_DOUBLE_EQ(mp.write_ratio, 0.9);
  EXPECT_STREQ(kind_name(JobKind::kMmapShared), "mmap-shared");
  EXPECT_STREQ(kind_name(JobKind::kMmapPrivate), "mmap-private");
}

TEST(MmsimJobs, EveryBadFileJobInputHasItsMessage) {
  // Lines 1-5.
  auto job = [](const std::string& name, const std::string& kind) {
    return "[[job]]\nname = \"" + name + "\"\nkind = \"" + kind +
           "\"\nsize = \"4MiB\"\npasses = 1\n";
  };
  const std::string w = job("w", "write"), r = job("w", "read");
  const std::string ms = job("w", "mmap-shared"), mp = job("w", "mmap-private");
  const std::string anon = "[[job]]\nname = \"w\"\nsize = \"4MiB\"\npasses = 1\n";  // lines 1-4
  const std::string pair_tail =
      ", the write job whose files this read job verifies, has 2 (the two must have the same "
      "processes and size)";
  const Bad cases[] = {
      {"write_ratio on a read job", r + "write_ratio = 0.5\n",
       "jobs.toml:6: job[0].write_ratio: a read job only reads (write_ratio is for anon, write and "
       "mmap jobs)"},
      {"fsync_every on a read job", r + "fsync_every = \"1MiB\"\n",
       "jobs.toml:6: job[0].fsync_every: only write and mmap-shared jobs fsync (this is a read "
       "job)"},
      {"fsync_every on an anon job", anon + "fsync_every = 4096\n",
       "jobs.toml:5: job[0].fsync_every: only write and mmap-shared jobs fsync (this is an anon "
       "job)"},
      {"fsync_every on an mmap-private job", mp + "fsync_every = \"1MiB\"\n",
       "jobs.toml:6: job[0].fsync_every: only write and mmap-shared jobs fsync (this is an "
       "mmap-private job, whose writes never reach its file)"},
      {"fsync_every not page aligned on an mmap-shared job", ms + "fsync_every = 6000\n",
       "jobs.toml:6: job[0].fsync_every: 6000 is not a multiple of 4KiB"},
      {"verify on an mmap-shared job", ms + "verify = true\n",
       "jobs.toml:6: job[0].verify: only read jobs verify a file (this is an mmap-shared job, "
       "whose reads always check its writes)"},
      {"verify on an mmap-private job", mp + "verify = false\n",
       "jobs.toml:6: job[0].verify: only read jobs verify a file (this is an mmap-private job, "
       "whose reads always check its writes)"},
      {"fork on an mmap-shared job", ms + "fork = true\n",
       "jobs.toml:6: job[0].fork: fork applies to anon jobs (this is an mmap-shared job)"},
      {"fork on an mmap-private job", mp + "fork = true\n",
       "jobs.toml:6: job[0].fork: fork applies to anon jobs (this is an mmap-private job)"},
      {"an mmap-private job named ..", job("..", "mmap-private"),
       "jobs.toml:2: job[0].name: \"..\" cannot name a file (an mmap-private job's files are "
       "named after it)"},
      {"a read job without verify shares an mmap-shared job's name", ms + r,
       "jobs.toml:7: job[1].name: \"w\" is already the name of another job (names must be "
       "unique, except that a read job with verify = true may share its write job's name)"},
      {"a verifying read job shares an mmap-private job's name", mp + r + "verify = true\n",
       "jobs.toml:7: job[1].name: \"w\" is already the name of another job (names must be "
       "unique, except that a read job with verify = true may share its write job's name)"},
      {"the mmap-shared pair's sizes differ",
       ms + "[[job]]\nname = \"w\"\nkind = \"read\"\nsize = \"8MiB\"\npasses = 1\nverify = true\n",
       "jobs.toml:9: job[1].size: 8388608, but job[0] \"w\", the mmap-shared job whose files this "
       "read job verifies, has 4194304 (the two must have the same processes and size)"},
      {"an mmap job's file another job's process uses",
       ms + "processes = 2\n" + job("w.0", "mmap-private"),
       "jobs.toml:8: job[1].name: \"w.0\" would use the file \"w.0\", which is already process "
       "0's file of job[0] \"w\""},
      {"fsync_every not page aligned", w + "fsync_every = 5000\n",
       "jobs.toml:6: job[0].fsync_every: 5000 is not a multiple of 4KiB"},
      {"fsync_every zero", w + "fsync_every = 0\n",
       "jobs.toml:6: job[0].fsync_every: must be at least 4KiB"},
      {"fsync_every not a size", w + "fsync_every = \"often\"\n",
       "jobs.toml:6: job[0].fsync_every: \"often\" is not a size (use e.g. \"512MiB\")"},
      {"fsync_every a boolean", w + "fsync_every = true\n",
       "jobs.toml:6: job[0].fsync_every: expected a size (bytes as an integer, or a string like "
       "\"64MiB\"), got a boolean"},
      {"verify on a write job", w + "verify = true\n",
       "jobs.toml:6: job[0].verify: only read jobs verify a file (this is a write job, whose reads "
       "always check its writes)"},
      {"verify on an anon job", anon + "verify = false\n",
       "jobs.toml:5: job[0].verify: only read jobs verify a file (this is an anon job)"},
      {"verify not a boolean", r + "verify = \"yes\"\n",
       "jobs.toml:6: job[0].verify: expected true or false, got a string"},
      {"fork on a write job", w + "fork = true\n",
       "jobs.toml:6: job[0].fork: fork applies to anon jobs (this is a write job)"},
      {"fork on a read job", r + "fork = true\n",
       "jobs.toml:6: job[0].fork: fork applies to anon jobs (this is a read job)"},
      {"a file job named .", job(".", "write"),
       "jobs.toml:2: job[0].name: \".\" cannot name a file (a read or write job's files are named "
       "after it)"},
      {"a file job named ..", job("..", "read"),
       "jobs.toml:2: job[0].name: \"..\" cannot name a file (a read or write job's files are "
       "named after it)"},
      {"a read job without verify shares a write job's name", w + r,
       "jobs.toml:7: job[1].name: \"w\" is already the name of another job (names must be "
       "unique, except that a read job with verify = true may share its write job's name)"},
      {"two write jobs of one name", w + w,
       "jobs.toml:7: job[1].name: \"w\" is already the name of another job (names must be "
       "unique, except that a read job with verify = true may share its write job's name)"},
      {"two verifying read jobs of one writer", w + r + "verify = true\n" + r + "verify = true\n",
       "jobs.toml:13: job[2].name: \"w\" is already the name of another job (names must be "
       "unique, except that a read job with verify = true may share its write job's name)"},
      {"an anon job and a write job of one name", anon + w,
       "jobs.toml:6: job[1].name: \"w\" is already the name of another job (names must be "
       "unique)"},
      {"the pair's processes differ", w + "processes = 2\n" + r + "verify = true\n",
       "jobs.toml:7: job[1].processes: 1, but job[0] \"w\"" + pair_tail},
      {"the pair's processes differ, the read job first",
       r + "verify = true\nprocesses = 1\n" + w + "processes = 2\n",
       "jobs.toml:7: job[0].processes: 1, but job[1] \"w\"" + pair_tail},
      {"the pair's sizes differ",
       w + "[[job]]\nname = \"w\"\nkind = \"read\"\nsize = \"8MiB\"\n"
           "passes = 1\nverify = true\n",
       "jobs.toml:9: job[1].size: 8388608, but job[0] \"w\", the write job whose files this read "
       "job verifies, has 4194304 (the two must have the same processes and size)"},
      {"a file another job's process uses", w + "processes = 2\n" + job("w.1", "read"),
       "jobs.toml:8: job[1].name: \"w.1\" would use the file \"w.1\", which is already process "
       "1's file of job[0] \"w\""},
      {"a process's file another job uses",
       job("x.0", "write") + job("x", "read") + "processes = 3\n",
       "jobs.toml:7: job[1].name: \"x\" would use the file \"x.0\", which is already the file of "
       "job[0] \"x.0\""},
  };
  for (const Bad& c : cases) EXPECT_EQ(error_of(c.text), c.message) << c.what;
  // An anon job may have the name of another job's file: it has none.
  EXPECT_EQ(error_of(w + "processes = 2\n" + "[[job]]\nname = \"w.0\"\nsize = 4096\npasses = 1\n"),
            "(parsed)");
}

// Mutated job files (bytes flipped, inserted, cut) never crash the parser
// and always give either jobs or one line naming the file.
TEST(MmsimJobs, MutatedFilesGiveJobsOrOneLine) {
  const std::string base = R"([[job]]
name = "hot"
size = "1GiB"
pattern = "zipf:0.9"
passes = 3
write_ratio = 0.5
memory_max = "256MiB"
fork = true
)";
  std::mt19937_64 rng(5);
  const char alphabet[] = "[]{}=\"'#.,:0123456789abcdefgijkmnoprstuwxz_-\n \t\x01\xc3\xa9\x80";
  for (int i = 0; i < 3000; ++i) {
    std::string text = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = rng() % text.size();
      const char c = alphabet[rng() % (sizeof alphabet - 1)];
      switch (rng() % 3) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(text.begin() + static_cast<long>(at), c);
          break;
        default:
          text.resize(at);
      }
    }
    auto r = parse_job_file(text, "jobs.toml");
    if (r.ok()) continue;
    const std::string& msg = r.error().message;
    ASSERT_EQ(msg.rfind("jobs.toml:", 0), 0u) << msg;
    ASSERT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(MmsimJobs, UnreadableFile) {
  auto r = load_job_file("/nonexistent/jobs.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "/nonexistent/jobs.toml: cannot read: No such file or directory");
  const std::string huge = mmkit::test::write_temp("huge.toml", std::string(2 << 20, '#'));
  r = load_job_file(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, huge + ": larger than 1 MiB, too large for a job file");
}

}  // namespace
}  // namespace mmsim
