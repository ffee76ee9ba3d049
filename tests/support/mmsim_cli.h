// Running the mmsim binary from a test: its exit status, stdout and stderr,
// and config files written to the test's temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace mmkit::test {

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

// `mmsim ARGS`, with MMSIM_PATH the binary CMake built.
inline CliRun run_mmsim(const std::string& args) {
  // One file per call and process: ctest runs tests in parallel processes.
  static int calls = 0;
  const std::string err_file = ::testing::TempDir() + "mmsim_err_" + std::to_string(getpid()) +
                               "_" + std::to_string(++calls) + ".txt";
  const std::string cmd = std::string(MMSIM_PATH) + " " + args + " 2>" + err_file;
  CliRun r{};
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  return r;
}

// Writes `text` to a file of the test's temporary directory; its path.
inline std::string write_temp_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + std::to_string(getpid()) + "_" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace mmkit::test
