// The host kernel doing what the vm benchmarks do, from user space:
//
//   peer/host_fault_anon  a write to a fresh page of a private anonymous
//                         mapping (64 MiB at a time, MADV_NOHUGEPAGE so
//                         every page faults on its own, as mmkit's do)
//   peer/host_fault_anon_1MiB  the same, 1 MiB at a time
//   peer/host_fork_1GiB   fork of this process with 1 GiB written; the child
//                         _exit()s at once and the parent waits for it
//   peer/host_munmap_1GiB munmap of 1 GiB written just before (untimed)
//   peer/host_mmap_munmap_10k_vmas  a one-page mmap and munmap among 10,000
//                         one-page mappings that cannot merge
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace mmkit_bench {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kPage = 4096;

char* map_anon(uint64_t len, bool populate) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, len, MADV_NOHUGEPAGE);
  if (populate)
    for (uint64_t off = 0; off < len; off += kPage) static_cast<volatile char*>(p)[off] = 1;
  return static_cast<char*>(p);
}

}  // namespace

void BM_peer_host_fault_anon(benchmark::State& state, uint64_t window_pages) {
  char* a = map_anon(window_pages * kPage, false);
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == window_pages) {
      state.PauseTiming();
      munmap(a, window_pages * kPage);
      a = map_anon(window_pages * kPage, false);
      i = 0;
      state.ResumeTiming();
    }
    static_cast<volatile char*>(a)[i++ * kPage] = 1;
  }
  state.SetItemsProcessed(state.iterations());
  munmap(a, window_pages * kPage);
}

void BM_peer_host_fork_1GiB(benchmark::State& state) {
  char* a = map_anon(kGiB, true);
  if (!a) {
    state.SkipWithError("mmap failed");
    return;
  }
  for (auto _ : state) {
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
      state.SkipWithError("fork failed");
      break;
    }
    int status;
    waitpid(pid, &status, 0);
  }
  munmap(a, kGiB);
}

void BM_peer_host_munmap_1GiB(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    char* a = map_anon(kGiB, true);
    state.ResumeTiming();
    if (!a) {
      state.SkipWithError("mmap failed");
      break;
    }
    munmap(a, kGiB);
  }
}

void BM_peer_host_mmap_munmap_many_vmas(benchmark::State& state, int nr_vmas) {
  std::vector<void*> maps;
  for (int i = 0; i < nr_vmas; ++i) {
    void* p = mmap(nullptr, kPage, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    maps.push_back(p);
  }
  // Skipped, the timed loop below does not run.
  if (maps.size() != static_cast<size_t>(nr_vmas)) state.SkipWithError("cannot build the mappings");
  for (auto _ : state) {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || munmap(p, kPage) != 0) {
      state.SkipWithError("mmap/munmap failed");
      break;
    }
  }
  for (void* p : maps) munmap(p, kPage);
}

}  // namespace mmkit_bench
