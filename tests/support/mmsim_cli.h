// Test support for running the mmsim binary as a user would: its exit
// status, stdout and stderr, and files the test writes for it (configs,
// job files, traces) under gtest's temp directory, one name per process
// (ctest runs tests in parallel processes).
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

inline std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + std::to_string(getpid()) + "_" + name;
}

inline std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline CliRun run_mmsim(const std::string& args) {
  static int calls = 0;
  const std::string err_file = temp_path("mmsim_err_" + std::to_string(++calls) + ".txt");
  const std::string cmd = std::string(MMSIM_PATH) + " " + args + " 2>" + err_file;
  CliRun r{};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "", "popen failed"};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.err = read_file(err_file);
  std::remove(err_file.c_str());
  return r;
}

// The same as write_temp (the name some tests use).
inline std::string write_temp_file(const std::string& name, const std::string& text) {
  return write_temp(name, text);
}

}  // namespace mmkit::test
