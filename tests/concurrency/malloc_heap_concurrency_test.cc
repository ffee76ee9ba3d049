// The malloc front end's heap under threads (TSan runs this): workers
// allocate and pass half their blocks to a neighbour to free (SLUB's remote
// free path), short-lived threads fill their CPUs' caches and exit (their
// CPUs and cached objects go back), and more threads than the heap has
// CPUs run unbound, on their magazines and the locked paths; big blocks go
// and come back beside the reporting worker. Content is checked at every
// free; the page and slab allocators' checks hold at the end.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "malloc/heap.h"
#include "phys/machine.h"

namespace mmkit {
namespace {

struct Mailbox {
  std::mutex lock;
  std::vector<std::pair<char*, size_t>> blocks;
};

bool intact(const char* p, size_t n) {
  for (size_t i = 0; i < n; i += 13)
    if (p[i] != static_cast<char>(n + i)) return false;
  return true;
}

TEST(MallocHeapConcurrency, CrossThreadFreesAndThreadExit) {
  heap_free(heap_malloc(1));  // boot on this thread
  const unsigned cpus = heap_machine()->nr_cpus();
  const unsigned nthreads = cpus + 4;  // some run unbound
  std::vector<Mailbox> box(nthreads);
  std::atomic<int> bad{0};
  auto worker = [&](unsigned id) {
    std::mt19937 rng(id);
    for (int round = 0; round < 300; ++round) {
      for (int i = 0; i < 40; ++i) {
        const size_t n = rng() % 3 == 0 ? rng() % 40000 + 1 : rng() % 300 + 1;
        char* p = static_cast<char*>(heap_malloc(n));
        if (!p) {
          ++bad;
          continue;
        }
        for (size_t k = 0; k < n; k += 13) p[k] = static_cast<char>(n + k);
        if (i % 2) {
          Mailbox& b = box[(id + 1) % nthreads];
          std::lock_guard<std::mutex> g(b.lock);
          b.blocks.emplace_back(p, n);
        } else {
          bad += !intact(p, n);
          heap_free(p);
        }
      }
      std::vector<std::pair<char*, size_t>> mine;
      {
        std::lock_guard<std::mutex> g(box[id].lock);
        mine.swap(box[id].blocks);
      }
      for (auto [p, n] : mine) {
        bad += !intact(p, n);
        heap_free(p);
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < nthreads; ++i) threads.emplace_back(worker, i);
  // Meanwhile, short-lived threads fill caches and exit.
  for (int wave = 0; wave < 20; ++wave) {
    std::thread t([&] {
      std::vector<void*> v;
      for (int i = 0; i < 500; ++i) v.push_back(heap_malloc(static_cast<size_t>(i % 700) + 1));
      for (void* p : v) heap_free(p);
      heap_thread_exit();
    });
    t.join();
  }
  for (auto& t : threads) t.join();
  for (Mailbox& b : box)
    for (auto [p, n] : b.blocks) {
      bad += !intact(p, n);
      heap_free(p);
    }
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(heap_check(), "");
}

// Big blocks freed and allocated again by two threads for longer than the
// reporting worker's period (heap_reporter.cc), so its passes (the purge
// of two-second-old big blocks, a decay pass of the buddy allocator) run
// beside the threads' frees, reuses and page runs. The blocks keep their
// contents; TSan sees the worker's locks and atomics.
TEST(MallocHeapConcurrency, BigBlocksBesideTheReportingWorker) {
  heap_free(heap_malloc(1));
  std::atomic<int> bad{0};
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2600);
  auto churn = [&](unsigned id) {
    std::mt19937 rng(id);
    while (std::chrono::steady_clock::now() < until) {
      const size_t n = (rng() % 2 ? (5u << 20) : (64u << 10)) + rng() % 100000;
      char* p = static_cast<char*>(heap_malloc(n));
      if (!p) {
        ++bad;
        continue;
      }
      for (size_t k = 0; k < n; k += 4096) p[k] = static_cast<char>(n + k);
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
      for (size_t k = 0; k < n; k += 4096) bad += p[k] != static_cast<char>(n + k);
      heap_free(p);
    }
  };
  std::thread a(churn, 1), b(churn, 2);
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
  // The worker ran beside them, and lives on a few seconds after the last
  // free that left blocks behind.
  bool worker = false;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    worker |= std::getline(comm, name) && name == "mmkit-report";
  }
  EXPECT_TRUE(worker) << "no mmkit-report thread";
}

}  // namespace
}  // namespace mmkit
