// The timed loops shared by the slab benchmarks and their malloc peers, so
// that mmkit and every peer run exactly the same code around their calls;
// only the callables differ (mmkit's inline a direct call into the static
// library, a peer's call through a function pointer from dlsym).
//
//   run_pairs(state, alloc, free_fn)   one alloc + free per iteration
//   run_batch(state, alloc, free_fn)   kBatchObjects allocations, then all of
//       them freed in allocation order; one iteration is one object (its
//       allocation, and its free when the batch completes), so the time per
//       iteration is the time per object. The objects of a batch still open
//       when the timed loop ends are freed after it, untimed.
//   run_remote_free(state, alloc, free_fn, enter)
//       objects allocated on the benchmark thread, freed on a second thread.
//       The benchmark thread hands them in batches of 64 through a bounded
//       single-producer single-consumer ring (PtrRing, the design of
//       page_alloc/two_cpu_remote_free's PageRing) to a consumer thread,
//       which frees them. One iteration is one object; the reported (real)
//       time is the time per object, allocation to free. Up to
//       PtrRing::kRingSize objects still in flight when the timed loop ends
//       are freed after it, untimed. `enter(body)` runs on the consumer
//       thread and must call `body()` once it is ready (mmkit: with CPU 1
//       bound around it) or return an error string without calling it.
//       The two threads are pinned to two different host CPUs (the first
//       two the process may use; the benchmark thread's affinity is restored
//       afterwards), so every free really is remote, with the cache-line
//       transfers that implies; unpinned, the scheduler sometimes runs both
//       on one core, which is cheaper and made runs differ by 2x. Counter
//       host_cpus_pinned says whether that worked (0 with a single CPU).
//       Both threads need a core of their own: on a busy 2-core host the
//       real time also measures how long one waits for the other to be
//       scheduled. So the counter consumer_cpu_ns gives the freeing thread's
//       CPU time per object (CLOCK_THREAD_CPUTIME_ID); with the benchmark's
//       own CPU time (the allocating thread's) it is the CPU spent per
//       object, whatever the load (spinning on a full or empty ring
//       included).
//
// `alloc()` returns null on failure, which ends the benchmark with an error.
// None of the loops touches the objects beyond what the allocator does.
#pragma once

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "spsc_ring.h"

namespace mmkit_bench {

inline double thread_cpu_ns_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// The first two host CPUs the process may run on; false if there are fewer.
inline bool two_host_cpus(int* a, int* b) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return false;
  int found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; ++c)
    if (CPU_ISSET(c, &set)) (found++ == 0 ? *a : *b) = c;
  return found == 2;
}

inline bool pin_to_host_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

using PtrRing = SpscBatchRing<void*>;

inline constexpr size_t kBatchObjects = 10000;

template <class Alloc, class Free>
void run_pairs(benchmark::State& state, Alloc alloc, Free free_fn) {
  for (auto _ : state) {
    void* p = alloc();
    if (p == nullptr) [[unlikely]] {
      state.SkipWithError("allocation failed");
      break;
    }
    benchmark::DoNotOptimize(p);
    free_fn(p);
  }
}

template <class Alloc, class Free>
void run_batch(benchmark::State& state, Alloc alloc, Free free_fn) {
  std::vector<void*> objs(kBatchObjects);
  size_t n = 0;
  for (auto _ : state) {
    void* p = alloc();
    if (p == nullptr) [[unlikely]] {
      state.SkipWithError("allocation failed");
      break;
    }
    objs[n++] = p;
    if (n == kBatchObjects) {
      for (void* q : objs) free_fn(q);
      n = 0;
    }
  }
  for (size_t i = 0; i < n; ++i) free_fn(objs[i]);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

template <class Alloc, class Free, class Enter>
void run_remote_free(benchmark::State& state, Alloc alloc, Free free_fn, Enter enter) {
  constexpr size_t kBatch = 64;
  int host_a = -1, host_b = -1;
  cpu_set_t saved;
  const bool pin = two_host_cpus(&host_a, &host_b) &&
                   pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
  bool pinned = pin && pin_to_host_cpu(host_a);
  PtrRing ring;
  std::atomic<bool> done{false};
  std::atomic<int> consumer_state{0};  // 0 starting, 1 running, -1 failed
  std::string consumer_err;
  double consumer_cpu = 0;  // ns, written by the consumer before it exits
  std::atomic<bool> consumer_pinned{false};
  std::thread consumer([&] {
    if (pinned) consumer_pinned.store(pin_to_host_cpu(host_b), std::memory_order_relaxed);
    std::string err = enter([&] {
      consumer_state.store(1, std::memory_order_release);
      const double cpu0 = thread_cpu_ns_now();
      void* objs[kBatch];
      for (unsigned idle = 0;;) {
        // Read `done` before popping: once it is set, every object has been
        // pushed, so a pop that then comes back empty means the ring is done.
        const bool last = done.load(std::memory_order_acquire);
        const size_t n = ring.pop(objs, kBatch);
        for (size_t i = 0; i < n; ++i) free_fn(objs[i]);
        if (n != 0) {
          idle = 0;
        } else if (last) {
          break;
        } else if (++idle > 64) {
          std::this_thread::yield();
        }
      }
      consumer_cpu = thread_cpu_ns_now() - cpu0;
    });
    if (!err.empty()) {
      consumer_err = std::move(err);
      consumer_state.store(-1, std::memory_order_release);
    }
  });
  int cs;
  while ((cs = consumer_state.load(std::memory_order_acquire)) == 0) std::this_thread::yield();
  auto unpin = [&] {
    if (pin) pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  };
  if (cs < 0) {
    consumer.join();
    unpin();
    return state.SkipWithError(consumer_err.c_str());
  }

  void* batch[kBatch];
  size_t n = 0;
  for (auto _ : state) {
    void* p = alloc();
    if (p == nullptr) [[unlikely]] {
      state.SkipWithError("allocation failed");
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
  unpin();
  pinned = pinned && consumer_pinned.load(std::memory_order_relaxed);
  state.counters["host_cpus_pinned"] = pinned ? 1 : 0;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  if (state.iterations() > 0)
    state.counters["consumer_cpu_ns"] = consumer_cpu / static_cast<double>(state.iterations());
}

}  // namespace mmkit_bench
