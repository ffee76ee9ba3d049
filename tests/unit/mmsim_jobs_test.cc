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

[[job]]
name = "cold.2"
size = 8192
pattern = "loop"
seconds = 1.5
memory_max = "max"
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
  const JobSpec& b = (*r)[1];
  EXPECT_EQ(b.processes, 1u);
  EXPECT_EQ(b.size, 8192u);
  EXPECT_EQ(b.pattern, Pattern::kLoop);
  EXPECT_EQ(b.passes, 0u);
  EXPECT_DOUBLE_EQ(b.seconds, 1.5);
  EXPECT_DOUBLE_EQ(b.write_ratio, 0.5);  // the default
  EXPECT_FALSE(b.fork);
  EXPECT_EQ(b.memory_max, mmkit::kMemMax);
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
       "memory_max)"},
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
       "jobs.toml:5: job[0].kind: unknown kind \"heap\" (expected \"anon\"; \"read\", \"write\", "
       "\"mmap-shared\", \"mmap-private\" and \"shmem\" come with the page cache)"},
      {"kind that needs the page cache", head + "passes = 1\nkind = \"mmap-shared\"\n",
       "jobs.toml:5: job[0].kind: \"mmap-shared\" needs the page cache, which mmkit does not "
       "have yet (only \"anon\" for now)"},
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
