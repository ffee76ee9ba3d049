// mbench_spawn: runs one program and reports the program's own peak RSS.
//
//   mbench_spawn [--preload LIB] [--report-fd FD] -- PROGRAM [ARGS...]
//
// Why it exists: a child's ru_maxrss (wait4, getrusage) counts the RSS of
// the mm it had before exec, and a child of a Python runner is made by
// vfork or fork of the runner, so every workload would be charged at least
// the runner's own ~15 MiB. This helper is exec'd (its mm is then small),
// forks the program from there and waits for it, so the program's figure
// starts from this helper's ~1-2 MiB instead. LD_PRELOAD is set in the
// program only, never in the helper.
//
// On FD (default 2) it writes one line, "mbench_spawn maxrss_kb=N", and it
// exits with the program's status (128 + signal if it was killed).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: mbench_spawn [--preload LIB] [--report-fd FD] -- PROGRAM [ARGS...]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const char* preload = nullptr;
  int report_fd = 2;
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    if (i + 1 >= argc) Usage();
    if (std::strcmp(argv[i], "--preload") == 0) {
      preload = argv[++i];
    } else if (std::strcmp(argv[i], "--report-fd") == 0) {
      report_fd = std::atoi(argv[++i]);
    } else {
      Usage();
    }
  }
  if (i >= argc) Usage();

  pid_t pid = fork();
  if (pid < 0) {
    std::perror("mbench_spawn: fork");
    return 127;
  }
  if (pid == 0) {
    if (report_fd > 2) close(report_fd);
    if (preload && *preload) setenv("LD_PRELOAD", preload, 1);
    execvp(argv[i], argv + i);
    std::fprintf(stderr, "mbench_spawn: cannot run %s: %s\n", argv[i], std::strerror(errno));
    _exit(127);
  }

  int status = 0;
  rusage ru{};
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      std::perror("mbench_spawn: wait4");
      return 127;
    }
  }
  dprintf(report_fd, "mbench_spawn maxrss_kb=%ld\n", ru.ru_maxrss);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}
