// `mmsim malloc-limit` as a user runs it: on each machine, each overcommit
// mode ends with the Linux rule that machine makes the binding one (the
// address space, the mode 0 heuristic, CommitLimit, RLIMIT_AS, RLIMIT_DATA,
// vm.max_map_count, PTRDIFF_MAX on i386, memory itself with --touch), and
// bad input gets one line on stderr and exit status 2.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "../support/mmsim_cli.h"

namespace mmkit::test {
namespace {

constexpr uint64_t kKiB = 1ull << 10, kMiB = 1ull << 20, kGiB = 1ull << 30, kTiB = 1ull << 40;

// One mode's object of the --json output (one line each).
struct Mode {
  uint64_t total = 0, largest = 0, allocations = 0, touched = 0;
  std::string rule, rule_text, largest_rule;
};

uint64_t number(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"" + key + "\": (\\d+)"))) return ~0ull;
  return std::stoull(m[1]);
}

std::string string_field(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"" + key + "\": \"([^\"]*)\""))) return "?";
  return m[1];
}

std::map<unsigned, Mode> modes(const std::string& json) {
  std::map<unsigned, Mode> out;
  std::istringstream in(json);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  {\"mode\": ", 0) != 0) continue;
    Mode& m = out[static_cast<unsigned>(number(line, "mode"))];
    m.total = number(line, "total_bytes");
    m.largest = number(line, "largest_bytes");
    m.allocations = number(line, "allocations");
    m.touched = number(line, "touched_bytes");
    m.rule = string_field(line, "rule");
    m.rule_text = string_field(line, "rule_text");
    m.largest_rule = string_field(line, "largest_rule");
  }
  return out;
}

// Runs `malloc-limit --json` on the config text (empty: the default machine).
std::map<unsigned, Mode> run_json(const std::string& name, const std::string& config,
                                  std::string* json = nullptr, const std::string& extra = "") {
  const std::string args =
      config.empty() ? "" : " --config " + write_temp_file(name + ".toml", config);
  CliRun r = run_mmsim("malloc-limit --json" + extra + args);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  if (json) *json = r.out;
  auto m = modes(r.out);
  EXPECT_EQ(m.size(), 3u) << r.out;
  return m;
}

TEST(MmsimMallocLimit, DefaultMachineEachModeAndItsRule) {
  std::string json;
  auto m = run_json("", "", &json);
  const uint64_t ram = number(json, "totalram_bytes"), swap = number(json, "swap_bytes");
  const uint64_t commit_limit = number(json, "commit_limit_bytes");
  // Mode 0: one request may not exceed totalram + swap. The largest fills
  // exactly that many pages: glibc's request2size adds SIZE_SZ and rounds
  // to 16, and an mmapped chunk costs SIZE_SZ more, so 24 bytes go.
  EXPECT_EQ(m[0].largest_rule, "overcommit_heuristic");
  EXPECT_EQ(m[0].largest + 24, ram + swap);
  // ... but many such requests are fine: the address space ends it.
  EXPECT_EQ(m[0].rule, "address_space");
  EXPECT_GT(m[0].total, 127 * kTiB);
  EXPECT_GT(m[0].allocations, 30000u);
  // Mode 1: one mapping nearly as large as the address space, and the rest.
  EXPECT_EQ(m[1].largest_rule, "address_space");
  EXPECT_EQ(m[1].rule, "address_space");
  EXPECT_GT(m[1].largest, 127 * kTiB);
  EXPECT_GT(m[1].total, 128 * kTiB - 256 * kMiB);
  EXPECT_LT(m[1].total, 128 * kTiB);
  EXPECT_LT(m[1].allocations, 100u);
  // Untouched, 128 TiB of mappings cost no page table beyond the stack's.
  EXPECT_GT(number(json, "vm_size_bytes"), 127 * kTiB);
  std::smatch pte;
  ASSERT_TRUE(std::regex_search(json, pte, std::regex(R"("mode": 1, .*"vm_pte_bytes": (\d+))")));
  EXPECT_LE(std::stoull(pte[1]), 16 * kKiB);
  // Mode 2: CommitLimit less the admin reserve (8 MiB), the stack and a page.
  EXPECT_EQ(m[2].rule, "commit_limit");
  EXPECT_EQ(m[2].largest_rule, "commit_limit");
  EXPECT_LE(m[2].total, commit_limit);
  EXPECT_GT(m[2].total, commit_limit - 9 * kMiB);

  // The text names each rule with its Linux source, and the last malloc's calls.
  CliRun t = run_mmsim("malloc-limit");
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("TASK_SIZE 0x7ffffffff000 (128 TiB less a page)"), std::string::npos);
  EXPECT_TRUE(std::regex_search(
      t.out,
      std::regex(R"(mode 0 \(heuristic\)\n  total .*\n  largest .*\n +overcommit heuristic )"
                 R"(\(mode 0\): a single request larger than totalram \+ swap = 3\.\d\d GiB )"
                 R"(\(mm/util\.c __vm_enough_memory\)\n  stopped by  address space: no free )"
                 R"(gap that large below mmap_base 0x7ffff7fff000)")))
      << t.out;
  EXPECT_TRUE(
      std::regex_search(t.out, std::regex(R"(mode 2 \(never\)\n(.*\n){2}  stopped by  )"
                                          R"(CommitLimit \(mode 2\): .*__vm_enough_memory)")))
      << t.out;
  // malloc(1): glibc asks brk for 32 + M_TOP_PAD + MINSIZE rounded to pages
  // (0x21000), then mmaps a 1 MiB heap.
  EXPECT_NE(t.out.find("  last call   malloc(1) = NULL\n                brk(0x55555557a000) "
                       "refused: address space: the heap would run into the mapping above it "
                       "(mm/mmap.c brk)\n                mmap(1 MiB) refused: the rule that "
                       "stopped it\n"),
            std::string::npos)
      << t.out;
}

TEST(MmsimMallocLimit, I386AddressSpaceStopsMode1) {
  std::string json;
  auto m = run_json("i386", "arch = \"i386\"\n[[node]]\nmemory = \"1GiB\"\n", &json);
  EXPECT_EQ(number(json, "task_size"), 3 * kGiB);
  // The 3 GiB user space, less the stack, the gap above mmap_base's search
  // and the holes too small for a 1 MiB heap, is what malloc gets.
  EXPECT_EQ(m[1].rule, "address_space");
  EXPECT_GT(m[1].total, 3 * kGiB - 64 * kMiB);
  EXPECT_LT(m[1].total, 3 * kGiB);
  // glibc refuses a single request above PTRDIFF_MAX (2 GiB - 1) itself.
  EXPECT_EQ(m[1].largest, (1ull << 31) - 1);
  EXPECT_EQ(m[1].largest_rule, "ptrdiff_max");
  EXPECT_EQ(m[0].rule, "address_space");
  EXPECT_EQ(m[0].largest_rule, "overcommit_heuristic");
  EXPECT_LE(m[0].largest, 1 * kGiB);
  EXPECT_EQ(m[2].rule, "commit_limit");
  EXPECT_NE(m[1].rule_text.find("TASK_SIZE 3 GiB"), std::string::npos) << m[1].rule_text;
}

TEST(MmsimMallocLimit, FiveLevelPagingStillStopsAt128TiB) {
  auto m = run_json("la57", "paging_levels = 5\n[[node]]\nmemory = \"1GiB\"\n");
  EXPECT_EQ(m[1].rule, "address_space");
  EXPECT_LT(m[1].total, 128 * kTiB);
  EXPECT_NE(m[1].rule_text.find("needs an mmap hint"), std::string::npos) << m[1].rule_text;
}

TEST(MmsimMallocLimit, RlimitAsStopsEveryMode) {
  auto m = run_json("ras", "rlimit_as = \"256MiB\"\n[[node]]\nmemory = \"1GiB\"\n");
  for (unsigned mode = 0; mode < 3; ++mode) {
    EXPECT_EQ(m[mode].rule, "rlimit_as") << mode;
    EXPECT_EQ(m[mode].largest_rule, "rlimit_as") << mode;
    EXPECT_LE(m[mode].total, 256 * kMiB) << mode;
    EXPECT_GT(m[mode].total, 255 * kMiB) << mode;  // all but the stack and glibc's overheads
    EXPECT_NE(m[mode].rule_text.find("RLIMIT_AS 256 MiB (mm/mmap.c may_expand_vm)"),
              std::string::npos);
  }
}

TEST(MmsimMallocLimit, RlimitDataStopsMmapAndBrk) {
  auto m = run_json("rdata", "rlimit_data = \"64MiB\"\n[[node]]\nmemory = \"1GiB\"\n");
  for (unsigned mode = 0; mode < 3; ++mode) {
    EXPECT_EQ(m[mode].rule, "rlimit_data") << mode;
    EXPECT_LE(m[mode].total, 64 * kMiB) << mode;
    EXPECT_GT(m[mode].total, 63 * kMiB) << mode;
  }
  // Below one brk step (132 KiB) and one 1 MiB mmapped heap, malloc gets
  // nothing at all: brk's check_data_rlimit refuses the heap's bytes,
  // may_expand_vm the mapping.
  const std::string tiny =
      write_temp_file("rdata_tiny.toml", "rlimit_data = \"64KiB\"\n[[node]]\nmemory = \"1GiB\"\n");
  CliRun r = run_mmsim("malloc-limit --config " + tiny);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("  total       0 bytes (0 B) in 0 allocations"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("brk(0x55555557a000) refused: RLIMIT_DATA: brk - start_brk > RLIMIT_DATA "
                       "64 KiB (mm/mmap.c brk, check_data_rlimit)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  stopped by  RLIMIT_DATA: data_vm + the request > RLIMIT_DATA 64 KiB "
                       "(mm/mmap.c may_expand_vm)"),
            std::string::npos)
      << r.out;
}

TEST(MmsimMallocLimit, MaxMapCountStopsTheSecondMapping) {
  // The stack is the process's one mapping; do_mmap refuses once map_count
  // exceeds max_map_count, so one allocation gets through (neighbouring
  // mappings would merge, but the count is checked before).
  auto m = run_json("mmc", "max_map_count = 1\n[[node]]\nmemory = \"1GiB\"\n");
  for (unsigned mode = 0; mode < 3; ++mode) {
    EXPECT_EQ(m[mode].rule, "max_map_count") << mode;
    EXPECT_EQ(m[mode].allocations, 1u) << mode;
    EXPECT_NE(m[mode].rule_text.find("the process has 2 mappings, more than max_map_count 1"),
              std::string::npos);
  }
}

TEST(MmsimMallocLimit, TouchRunsIntoMemoryItself) {
  const std::string cfg = "[[node]]\nmemory = \"32MiB\"\n";
  std::string json;
  auto m = run_json("touch", cfg, &json, " --touch");
  const uint64_t ram = number(json, "totalram_bytes");
  for (unsigned mode : {0u, 1u}) {
    // Promised far more than there is, with no swap: the OOM killer ends it.
    EXPECT_EQ(m[mode].rule, "oom_killed") << mode;
    EXPECT_GT(m[mode].touched, ram / 2) << mode;
    EXPECT_LT(m[mode].touched, ram) << mode;
  }
  // Mode 2 promised only what exists: every byte it got is written.
  EXPECT_EQ(m[2].rule, "commit_limit");
  EXPECT_GE(m[2].touched, m[2].total);
  EXPECT_NE(json.find("\"pswpout\": 0"), std::string::npos);

  CliRun t = run_mmsim("malloc-limit --touch --config " + write_temp_file("touch2.toml", cfg));
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_TRUE(std::regex_search(
      t.out, std::regex(R"(  touched     \d+ bytes .*, then a write fault at 0x[0-9a-f]+ failed: )"
                        R"(killed by the OOM killer\n  swapped     pswpout \+0 pages \(vmstat\); )"
                        R"(SwapFree 0 kB of 0 kB\n  kernel log  \d+ lines\n)")))
      << t.out;
  EXPECT_NE(t.out.find("Out of memory: Killed process "), std::string::npos) << t.out;
  EXPECT_EQ(t.err, "");
}

TEST(MmsimOvercommit, NamesTheRlimitThatComesBeforeTheCharge) {
  const std::string cfg =
      write_temp_file("oc_ras.toml", "rlimit_as = \"1GiB\"\n[[node]]\nmemory = \"4GiB\"\n");
  CliRun r = run_mmsim("overcommit --config " + cfg);
  ASSERT_EQ(r.status, 0) << r.err;
  // 1 GiB less the 132 KiB stack, in every mode.
  EXPECT_NE(r.out.find("1 (always)     1048444 kB             RLIMIT_AS (may_expand_vm)\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("0 (heuristic)  1048444 kB             RLIMIT_AS"), std::string::npos);
}

TEST(MmsimMallocLimit, BadInputGetsOneLineAndStatusTwo) {
  const std::string big =
      write_temp_file("big.toml", "swap = \"1GiB\"\n[[node]]\nmemory = \"8GiB\"\n");
  const std::string bad_as =
      write_temp_file("bad_as.toml", "[[node]]\nmemory = \"64MiB\"\n\nrlimit_as = \"lots\"\n");
  const std::string bad_as_top =
      write_temp_file("bad_as_top.toml", "rlimit_as = \"lots\"\n[[node]]\nmemory = \"64MiB\"\n");
  const std::string bad_data = write_temp_file(
      "bad_data.toml", "cpus = 1\nrlimit_data = -1\n[[node]]\nmemory = \"64MiB\"\n");
  const std::string bad_count =
      write_temp_file("bad_count.toml", "max_map_count = 0\n[[node]]\nmemory = \"64MiB\"\n");
  const struct {
    std::string args, err;
  } cases[] = {
      {"malloc-limit --touch --config " + big,
       "^mmsim: malloc-limit --touch: the machine has 8\\.99 GiB of RAM \\+ swap; --touch writes "
       "every "
       "page for real, so at most 8 GiB \\(use a smaller --config\\)\n$"},
      {"malloc-limit --config " + bad_as,
       "^.*bad_as.toml:4: node\\[0\\]\\.rlimit_as: unknown key \"rlimit_as\" in "
       "\\[\\[node\\]\\].*\n$"},
      {"malloc-limit --config " + bad_as_top,
       "^.*bad_as_top.toml:1: rlimit_as: \"lots\" is not a size or \"unlimited\" .*\n$"},
      {"malloc-limit --json --config " + bad_data,
       "^.*bad_data.toml:2: rlimit_data: -1 is negative \\(use \"unlimited\" for no limit\\)\n$"},
      {"malloc-limit --config " + bad_count,
       "^.*bad_count.toml:1: max_map_count: 0 is out of range \\(must be 1..2147483647\\)\n$"},
      {"malloc-limit --frobnicate", "^.*--frobnicate.*\n"},
  };
  for (const auto& c : cases) {
    CliRun r = run_mmsim(c.args);
    EXPECT_EQ(r.status, 2) << c.args << ": " << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex(c.err))) << c.args << ": " << r.err;
    EXPECT_EQ(r.out, "") << c.args;
  }
}

}  // namespace
}  // namespace mmkit::test
