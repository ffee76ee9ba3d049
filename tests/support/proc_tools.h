// Test support for running Linux's own tools (free, vmstat, slabtop) over
// mmkit's /proc views: a temporary file that holds a rendered view, and a
// shell runner that captures a command's output and exit status.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace mmkit::test {

// A file under $TMPDIR, removed when the object goes.
class TempFile {
 public:
  TempFile(const std::string& stem, const std::string& contents) {
    const char* dir = getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/" + stem + "_XXXXXX";
    const int fd = mkstemp(path_.data());
    if (fd < 0) {
      path_.clear();
      return;
    }
    close(fd);
    std::ofstream(path_) << contents;
  }
  ~TempFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct CommandResult {
  int status = -1;  // exit status, or -1 when the command did not run
  std::string output;
};

// Runs `command` with sh, stdin from /dev/null, stdout and stderr captured.
inline CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " </dev/null 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Why Linux's tools cannot be run over our views here ("" when they can):
// `programs` (e.g. "free vmstat") missing, or no private mount namespace.
inline std::string tools_unavailable(const std::string& programs) {
  if (run("for p in " + programs + " unshare; do command -v $p || exit 1; done").status != 0)
    return "one of " + programs + ", unshare is not installed (procps, util-linux)";
  const CommandResult ns = run("unshare -m true");
  if (ns.status != 0)
    return "cannot create a mount namespace (unshare -m needs root or CAP_SYS_ADMIN): " + ns.output;
  return "";
}

}  // namespace mmkit::test
