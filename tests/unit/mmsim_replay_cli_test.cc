// `mmsim replay` as a user runs it: a generated lackey trace and a pages
// trace replay with every promised key and no verify error, in and out of
// a memory cgroup; a lackey trace's code is mapped from the stand-in
// executable, as file pages that compete with the data under a cgroup's
// limit; a malformed line or a bad option gets one line and exit status 2
// and no report.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <regex>
#include <string>

#include "../support/mmsim_cli.h"

namespace mmkit::test {
namespace {

std::string small_machine() {
  return write_temp("replay_machine.toml", "cpus = 2\n[[node]]\nmemory = \"64MiB\"\n");
}

double json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + R"(\":(-?[0-9.eE+-]+))"))) return -1;
  return std::stod(m[1]);
}

// A lackey trace as valgrind prints it: its header, instruction fetches in
// low memory (below mmap_min_addr's region: remapped), loads and stores on
// a heap and a stack, modifies, and an access straddling two pages.
std::string lackey_trace(unsigned accesses) {
  std::string t = "==42== Lackey, an example Valgrind tool\n==42== Command: ./a.out\n==42== \n";
  for (unsigned i = 0; i < accesses; ++i) {
    char line[64];
    switch (i % 4) {
      case 0:
        std::snprintf(line, sizeof line, "I  %08x,%u\n", 0x108000 + (i * 7) % 8192, 1 + i % 7);
        break;
      case 1:
        std::snprintf(line, sizeof line, " L %x,8\n", 0x4a00000 + (i * 4099) % (1 << 20));
        break;
      case 2:
        std::snprintf(line, sizeof line, " S 1ffefff%03x,8\n", (i * 8) % 0x1000);
        break;
      default:
        std::snprintf(line, sizeof line, " M %x,4\n", 0x4a00000 + (i * 4099) % (1 << 20));
    }
    t += line;
  }
  return t + " S 4a00ffc,8\n==42== \n";  // straddles 0x4a00000 and 0x4a01000
}

TEST(MmsimReplay, LackeyTraceJson) {
  const std::string trace = write_temp("replay.lackey", lackey_trace(4000));
  CliRun r = run_mmsim("replay " + trace + " --json --config " + small_machine());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  for (const char* key :
       {"accesses", "pgfault", "pgmajfault", "pswpin", "pswpout", "vm_hwm_kb", "verify_errors"})
    EXPECT_GE(json_number(r.out, key), 0) << key;
  EXPECT_EQ(json_number(r.out, "accesses"), 4001);
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_GT(json_number(r.out, "pgfault"), 0);
  EXPECT_GT(json_number(r.out, "vm_hwm_kb"), 0);
  EXPECT_EQ(json_number(r.out, "remapped_regions"), 1);  // [0, 2 MiB)
  EXPECT_EQ(json_number(r.out, "code_regions"), 1);
  EXPECT_NE(r.out.find("\"format\":\"lackey\""), std::string::npos);
  EXPECT_NE(r.out.find("\"vmstat\":{"), std::string::npos);
  EXPECT_NE(r.out.find("\"meminfo\":{"), std::string::npos);
}

// 6 MiB of code over three 2 MiB regions and 8 MiB of data in a 4 MiB
// group: the code's file pages and the data's anonymous pages are both
// reclaimed (the clean code dropped and read back, the data swapped), and
// every page reads back right. The stand-in executable shows in maps and
// goes with the replay.
TEST(MmsimReplay, CodeIsMappedFromTheStandInExecutable) {
  // The first fetch is in the last region of code: it takes the first
  // 2 MiB of the stand-in executable, the other two the next (and their
  // VMAs merge, the file offsets being contiguous).
  std::string t = "==7== Command: ./big\nI  900000,2\n";
  for (unsigned pass = 0; pass < 3; ++pass) {
    for (unsigned i = 0; i < 1536; ++i) {
      char line[64];
      std::snprintf(line, sizeof line, "I  %x,4\n", 0x400000 + ((i * 613) % 1536) * 4096 + 16);
      t += line;
      std::snprintf(line, sizeof line, " %c %x,8\n", i % 2 ? 'L' : 'S',
                    0x10000000 + ((i * 911 + pass) % 2048) * 4096);
      t += line;
    }
  }
  const std::string trace = write_temp("replay_code.lackey", t);
  const std::string root = temp_path("replay_code_root");
  const std::string dir = temp_path("replay_code_proc");
  std::filesystem::remove_all(root);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(root);
  CliRun r = run_mmsim("replay " + trace + " --json --memory 4MiB --proc " + dir + " --config " +
                       write_temp("replay_code.toml",
                                  "cpus = 2\nswap = \"64MiB\"\n[[node]]\nmemory = "
                                  "\"64MiB\"\n[fs]\nroot = \"" +
                                      root + "\"\n"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json_number(r.out, "verify_errors"), 0);
  EXPECT_EQ(json_number(r.out, "code_regions"), 3);
  EXPECT_EQ(json_number(r.out, "regions"), 7);  // 3 of code, 4 of data
  EXPECT_GT(json_number(r.out, "pswpout"), 0);
  EXPECT_GT(json_number(r.out, "pgsteal_file"), 0) << r.out;
  std::string maps;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (std::filesystem::exists(e.path() / "maps")) maps = read_file((e.path() / "maps").string());
  EXPECT_TRUE(
      std::regex_search(maps, std::regex("(^|\n)00400000-00800000 rwxp 00200000 08:01 [0-9]+ "
                                         "+/mmsim-replay\\.text\n")))
      << maps;
  EXPECT_TRUE(std::regex_search(maps, std::regex("\n00800000-00a00000 rwxp 00000000 08:01 [0-9]+ "
                                                 "+/mmsim-replay\\.text\n")))
      << maps;
  EXPECT_FALSE(std::filesystem::exists(root + "/mmsim-replay.text"));
  std::filesystem::remove_all(root);
  std::filesystem::remove_all(dir);
}

TEST(MmsimReplay, PagesTraceInAMemoryCgroupWithProcViews) {
  std::string text = "# a pages trace\n";
  for (unsigned i = 0; i < 3000; ++i)
    text += std::string(i % 3 ? "R " : "W ") + "0x" + std::to_string(7000 + (i * 37) % 400) + "\n";
  const std::string trace = write_temp("replay.pages", text);
  const std::string dir = temp_path("replay_proc");
  std::filesystem::remove_all(dir);
  // 400 distinct pages in a 1 MiB group: the rest goes to swap.
  CliRun r = run_mmsim(
      "replay " + trace + " --format pages --memory 1MiB --proc " + dir + " --config " +
      write_temp("replay_swap.toml", "cpus = 2\nswap = \"16MiB\"\n[[node]]\nmemory = \"64MiB\"\n"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("trace " + trace + " (pages)"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\n  accesses +3000\n"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\n  verify_errors +0\n"))) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir + "/meminfo"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/vmstat"));
  std::filesystem::remove_all(dir);
}

void expect_bad_input(const std::string& args, const std::string& err_regex) {
  CliRun r = run_mmsim(args);
  EXPECT_EQ(r.status, 2) << args << ": " << r.err;
  EXPECT_TRUE(std::regex_match(r.err, std::regex(err_regex))) << args << ": " << r.err;
  EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
}

TEST(MmsimReplay, BadTraceGetsOneLineAndStatusTwo) {
  const std::string bad_line = write_temp("replay_bad.pages", "R 10\nW 11\nR 1z\n");
  expect_bad_input("replay " + bad_line + " --config " + small_machine(),
                   "^.*replay_bad.pages:3: bad page number \"1z\" \\(expected hex digits\\)\n$");
  expect_bad_input("replay /nonexistent/trace",
                   "^/nonexistent/trace: cannot read: No such file or directory\n$");
}

// A file with no access line (another format, text, a file gzipped twice)
// and a gzip stream cut short are errors, not empty or shortened replays.
TEST(MmsimReplay, NoAccessLinesOrATruncatedGzipGetStatusTwo) {
  const std::string text = write_temp("replay_text.txt", "# nothing here\nhello world\n\n");
  expect_bad_input("replay " + text + " --config " + small_machine(),
                   "^.*replay_text.txt: no access lines .* in the trace\n$");
  std::string pages;
  for (unsigned i = 0; i < 20000; ++i)
    pages += (i % 3 ? "R " : "W ") + std::to_string(i % 777) + "\n";
  const std::string gz = std::filesystem::temp_directory_path() / "replay_truncated.pages.gz";
  gzFile f = gzopen(gz.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, pages.data(), static_cast<unsigned>(pages.size())),
            static_cast<int>(pages.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
  EXPECT_EQ(run_mmsim("replay " + gz + " --config " + small_machine()).status, 0);
  std::filesystem::resize_file(gz, std::filesystem::file_size(gz) / 2);
  expect_bad_input("replay " + gz + " --config " + small_machine(),
                   "^.*replay_truncated.pages.gz:[0-9]+: unexpected end of compressed data \\(the "
                   "file is truncated\\)\n$");
  std::filesystem::remove(gz);
}

// A region the machine will not map fails the replay (status 1) with the
// limit that refused it named.
TEST(MmsimReplay, ARefusedRegionNamesTheLimit) {
  const std::string machine = write_temp(
      "replay_rlimit.toml", "cpus = 2\nrlimit_as = \"3MiB\"\n[[node]]\nmemory = \"32MiB\"\n");
  const std::string trace = write_temp("replay_two_regions.pages", "R 10\nR 100000\n");
  const CliRun r = run_mmsim("replay " + trace + " --config " + machine);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot map the 2 MiB region at 0x100000000: Cannot allocate memory "
                       "(rlimit_as: "),
            std::string::npos)
      << r.err;
}

TEST(MmsimReplay, BadMemoryGetsOneLineAndStatusTwo) {
  const std::string good = write_temp("replay_good.pages", "R 10\n");
  expect_bad_input("replay " + good + " --memory lots",
                   "^mmsim: replay: --memory: \"lots\" is not a size \\(use e.g. \"512MiB\"\\)\n$");
  expect_bad_input("replay " + good + " --memory 100",
                   "^mmsim: replay: --memory: \"100\" is less than a page \\(4KiB\\)\n$");
  // Given but empty is not "no limit".
  expect_bad_input("replay " + good + " --memory ''",
                   "^mmsim: replay: --memory: \"\" is not a size .*\n$");
}

TEST(MmsimReplay, BadFormatOrNoTraceGetsStatusTwo) {
  const std::string good = write_temp("replay_good.pages", "R 10\n");
  EXPECT_EQ(run_mmsim("replay " + good + " --format valgrind").status, 2);
  EXPECT_EQ(run_mmsim("replay").status, 2);
}

}  // namespace
}  // namespace mmkit::test
