// idle_return: a program that frees a big block and then sleeps gets its
// memory back without calling the allocator again, and is left with its own
// threads only.
//
// Why: libmmkit-malloc keeps freed big blocks for reuse and hands them back
// two seconds later; a program that is idle makes no call to run that
// decay, so the heap's reporting worker (heap_reporter.cc) does. The worker
// is a thread the program did not ask for: it must appear only while there
// is memory to hand back and go away after. Under glibc (no worker) the
// block is unmapped at its free, and the same checks hold.
//
// Usage: malloc_idle_return   (exit 0: passed; about 10 s, mostly asleep)
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "malloc_test_util.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kBlock = 64 * kMiB;
constexpr int kWaitTenths = 150;  // how long the worker gets to hand back and exit

// The helpers below read /proc with open and read into stack buffers, and
// list threads with getdents64: nothing in the sleeping loop calls the
// allocator, so nothing but the worker can run the heap's decay.
size_t read_file(const char* path, char* buf, size_t len) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, buf, len - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  return n > 0 ? static_cast<size_t>(n) : 0;
}

double rss_mib() {
  char buf[128];
  if (!read_file("/proc/self/statm", buf, sizeof buf)) return -1;
  long pages = 0, resident = 0;
  if (std::sscanf(buf, "%ld %ld", &pages, &resident) != 2) return -1;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / kMiB;
}

// The process's threads, and whether one of them is the heap's worker.
int threads(bool* worker) {
  *worker = false;
  const int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int n = 0;
  alignas(8) char buf[4096];
  for (long got; (got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;) {
    for (long off = 0; off < got;) {
      struct Entry {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      const auto* e = reinterpret_cast<const Entry*>(buf + off);
      off += e->reclen;
      if (e->name[0] == '.') continue;
      ++n;
      char path[64], comm[32];
      std::snprintf(path, sizeof path, "/proc/self/task/%.16s/comm", e->name);
      if (read_file(path, comm, sizeof comm) && std::strncmp(comm, "mmkit-report", 12) == 0)
        *worker = true;
    }
  }
  close(fd);
  return n;
}

}  // namespace

int main() {
  mtest::require_preload_if_expected("idle_return");
  const bool mmkit = mtest::detect_allocator() == mtest::Allocator::kMmkit;
  bool worker = false;
  const int own_threads = threads(&worker);
  const double start = rss_mib();
  auto* p = static_cast<unsigned char*>(std::malloc(kBlock));
  CHECK(p != nullptr);
  if (!p) return mtest::exit_status();
  for (size_t off = 0; off < kBlock; off += 4096) p[off] = static_cast<unsigned char>(off >> 12);
  mtest::escape(p);
  const double peak = rss_mib();
  std::free(p);

  // Asleep from here on, but for the reads of /proc.
  bool saw_worker = false, returned = false, alone = false;
  int tenths = 0;
  double rss = peak;
  for (; tenths < kWaitTenths && !(returned && alone); ++tenths) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rss = rss_mib();
    returned = rss <= start + 8;
    alone = threads(&worker) == own_threads;
    saw_worker |= worker;
  }
  std::printf(
      "idle_return: start %.1f MiB, peak %.1f MiB, %.1f MiB after %.1f s asleep; "
      "worker %s, %s\n",
      start, peak, rss, tenths / 10.0, saw_worker ? "seen" : "not seen",
      alone ? "gone" : "still running");
  CHECK_MSG(returned, "%.1f MiB resident %.1f s after a %zu MiB block's free (start %.1f MiB)", rss,
            tenths / 10.0, kBlock / kMiB, start);
  CHECK_MSG(alone, "the program has %d threads more than its own after %.1f s",
            threads(&worker) - own_threads, tenths / 10.0);
  // The block is kept for reuse at its free, so only the worker can have
  // handed it back while the program slept.
  if (mmkit) CHECK_MSG(saw_worker, "no mmkit-report thread was seen");
  return mtest::exit_status();
}
