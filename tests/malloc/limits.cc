// limits: the allocator under an address-space limit (ulimit -v).
//
// A process whose RLIMIT_AS is a few tens of megabytes must start, allocate
// and free as it would under glibc: no abort at the first malloc, no
// message on stderr, and freed memory reused (a loop of malloc/free of the
// same size never runs out). The parent re-executes this program with
// RLIMIT_AS set before the exec, so the limit is in force before the first
// allocation anyone makes (the dynamic loader's and the C++ runtime's
// included), as it is under `ulimit -v`; LD_PRELOAD passes through.
//
// Usage: malloc_limits            (runs the children, checks each one)
//        malloc_limits --child    (the workload, under whatever limit is set)
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "malloc_test_util.h"

namespace {

using namespace mtest;

constexpr size_t kMiB = 1024 * 1024;

// Same-size malloc/free loops: each block is written, then freed; the loop
// must outlast any allocator that never reuses what was freed.
void same_size_loops() {
  for (size_t size : {size_t{1} << 20, size_t{100000}, size_t{5000}, size_t{64}}) {
    const int rounds = size >= kMiB ? 2000 : 20000;
    for (int i = 0; i < rounds; ++i) {
      char* p = seen(static_cast<char*>(std::malloc(size)));
      CHECK_MSG(p != nullptr, "malloc(%zu) failed at round %d", size, i);
      if (!p) return;
      std::memset(p, i & 0xff, std::min<size_t>(size, 4096));
      escape(p);
      std::free(p);
    }
  }
}

// Small objects live together, checked after a second pass.
void live_objects() {
  std::vector<std::string> strings;
  for (int i = 0; i < 20000; ++i) strings.push_back(std::string(40 + i % 200, 'a' + i % 26));
  for (int i = 0; i < 20000; ++i)
    CHECK(strings[i].size() == static_cast<size_t>(40 + i % 200) && strings[i][7] == 'a' + i % 26);
}

// Threads (each with its own 512 KiB stack under the limit) churn and exit.
void* churn(void* arg) {
  std::vector<void*> live(256, nullptr);
  unsigned s = 12345u + static_cast<unsigned>(reinterpret_cast<uintptr_t>(arg));
  for (int i = 0; i < 50000; ++i) {
    s = s * 1103515245u + 12345u;
    void*& slot = live[s >> 24];
    std::free(slot);
    slot = seen(std::malloc(((s >> 8) & 1023) + 1));
    CHECK(slot != nullptr);
  }
  for (void* p : live) std::free(p);
  return nullptr;
}
void threads() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 512 * 1024);
  pthread_t ts[4];
  for (uintptr_t t = 0; t < 4; ++t)
    CHECK(pthread_create(&ts[t], &attr, churn, reinterpret_cast<void*>(t)) == 0);
  for (pthread_t t : ts) pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
}

int child() {
  require_preload_if_expected("malloc_limits");
  same_size_loops();
  live_objects();
  threads();
  heap_check(__FILE__, __LINE__, "after the workload");
  return exit_status();
}

// Runs this program with --child under RLIMIT_AS = `limit` bytes; checks
// that it exits 0 with nothing on stderr.
void run_child(size_t limit) {
  int err[2];
  if (pipe(err) != 0) {
    CHECK(!"pipe");
    return;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], STDERR_FILENO);
    close(err[0]);
    close(err[1]);
    const struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(90);
    char self[] = "/proc/self/exe", arg[] = "--child";
    char* argv[] = {self, arg, nullptr};
    execv(self, argv);
    _exit(91);
  }
  close(err[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(err[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<size_t>(n));
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "under RLIMIT_AS %zu MiB: status %#x, stderr:\n%s", limit / kMiB, status, text.c_str());
  CHECK_MSG(text.empty(), "under RLIMIT_AS %zu MiB: stderr:\n%s", limit / kMiB, text.c_str());
  std::printf("RLIMIT_AS %5zu MiB: %s\n", limit / kMiB,
              WIFEXITED(status) && WEXITSTATUS(status) == 0 && text.empty() ? "ok" : "FAILED");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return child();
  require_preload_if_expected("malloc_limits");
  // 48 MiB: room for the libraries, four small thread stacks and a small
  // heap; 256 MiB: what the heap's own reservations used to need; 2 GiB: a
  // heap far smaller than the host's memory.
  for (size_t mib : {48, 256, 2048}) run_child(mib * kMiB);
  return exit_status();
}
