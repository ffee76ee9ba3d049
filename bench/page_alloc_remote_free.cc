// page_alloc/two_cpu_remote_free: pages allocated on one CPU, freed on another.
//
// The benchmark thread binds CPU 0 and allocates order-0 pages; it hands
// them in batches of kBatch through a single-producer single-consumer ring
// to a second thread bound to CPU 1, which frees them. CPU 0's per-CPU list
// therefore only ever empties (refilled from the buddy lists under
// zone->lock) and CPU 1's only ever fills (flushed back under the same
// lock): the cost measured is the batched pcp refill/flush and the
// contention on zone->lock, not the hot pcp pair. One iteration is one page,
// so the reported (real) time is the time per page, allocation to free.
// Up to kRingSize pages still in flight when the timed loop ends are freed
// after it, untimed (a negligible share of the iterations run).
//
// Both threads need a core of their own: on a busy 2-core host the real
// time mostly measures how long one waits for the other to be scheduled.
// So the counter consumer_cpu_ns gives the freeing thread's CPU time per
// page (CLOCK_THREAD_CPUTIME_ID); with the benchmark's own CPU time (the
// allocating thread's) it is the work per page, whatever the load.
#include <benchmark/benchmark.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "page_alloc/gfp.h"
#include "page_alloc/page_alloc.h"
#include "phys/cpu.h"
#include "phys/machine.h"
#include "spsc_ring.h"

namespace mmkit_bench {

mmkit::Machine* bench_machine(uint64_t gib, int instance, std::string* err);

namespace {

double thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

constexpr size_t kBatch = 64;
using PageRing = SpscBatchRing<mmkit::Page*>;
constexpr size_t kRingSize = PageRing::kRingSize;

}  // namespace

void BM_two_cpu_remote_free(benchmark::State& state) {
  std::string err;
  mmkit::Machine* m = bench_machine(4, 0, &err);
  if (m == nullptr) return state.SkipWithError(err.c_str());
  auto scope = mmkit::CpuScope::bind(*m, 0);
  if (!scope.ok()) return state.SkipWithError(("bind CPU 0: " + scope.error().message).c_str());

  PageRing ring;
  std::atomic<bool> done{false};
  std::atomic<int> consumer_state{0};  // 0 starting, 1 bound, -1 bind failed
  std::string consumer_err;
  double consumer_cpu = 0;  // ns, written by the consumer before it exits
  std::thread consumer([&] {
    auto cpu1 = mmkit::CpuScope::bind(*m, 1);
    if (!cpu1.ok()) {
      consumer_err = "bind CPU 1: " + cpu1.error().message;
      consumer_state.store(-1, std::memory_order_release);
      return;
    }
    consumer_state.store(1, std::memory_order_release);
    const double cpu0 = thread_cpu_ns();
    mmkit::Page* pages[kBatch];
    for (unsigned idle = 0;;) {
      // Read `done` before popping: once it is set, every page has been
      // pushed, so a pop that then comes back empty means the ring is done.
      const bool last = done.load(std::memory_order_acquire);
      const size_t n = ring.pop(pages, kBatch);
      for (size_t i = 0; i < n; ++i) mmkit::free_pages(*m, pages[i], 0);
      if (n != 0) {
        idle = 0;
      } else if (last) {
        break;
      } else if (++idle > 64) {
        std::this_thread::yield();
      }
    }
    consumer_cpu = thread_cpu_ns() - cpu0;
  });
  int cs;
  while ((cs = consumer_state.load(std::memory_order_acquire)) == 0) std::this_thread::yield();

  if (cs < 0) {
    consumer.join();
    return state.SkipWithError(consumer_err.c_str());
  }
  mmkit::Page* batch[kBatch];
  size_t n = 0;
  for (auto _ : state) {
    mmkit::Page* p = mmkit::alloc_pages(*m, mmkit::GFP_KERNEL, 0);
    if (p == nullptr) {
      state.SkipWithError("alloc_pages(GFP_KERNEL, 0) failed");
      break;
    }
    batch[n++] = p;
    if (n == kBatch) {
      ring.push(batch, n);
      n = 0;
    }
  }
  ring.push(batch, n);
  done.store(true, std::memory_order_release);
  consumer.join();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  if (state.iterations() > 0)
    state.counters["consumer_cpu_ns"] = consumer_cpu / static_cast<double>(state.iterations());
}

}  // namespace mmkit_bench
