// mt_stress: multithreaded malloc stress for a drop-in allocator.
//   (a) 64 threads allocate, fill and free blocks; half of the blocks go to
//       another thread's inbox (a mutex-protected queue) and are verified,
//       sometimes realloc'ed, and freed there: remote frees;
//   (b) waves of short-lived threads fill their thread caches with small
//       objects of many sizes, free them and exit, and leave a few blocks for
//       the next wave to free after they are gone (hundreds of threads);
//   (c) fork() while other threads allocate: the child must find a usable
//       heap (malloc/free a lot, start a thread) and exit 0; a child that
//       hangs (a lock held across fork) is killed after a deadline.
// Why: per-thread caches, remote frees, thread exit and fork are where a
// slab-style allocator's locking and ownership go wrong; glibc supports all
// of them, so a drop-in replacement must too.
//
// Usage: malloc_mt_stress [--scale F]   (F scales the work; default 1)
// MMKIT_EXPECT_PRELOAD=1 makes it fail unless libmmkit-malloc.so is loaded;
// mmkit_malloc_check(), when present, runs after each part (threads joined)
// and in each forked child.
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <deque>
#include <latch>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "malloc_test_util.h"

namespace {

using namespace mtest;
using Clock = std::chrono::steady_clock;

double g_scale = 1.0;
int scaled(int n) {
  return std::max(1, static_cast<int>(n * g_scale));
}

// A block carries a header naming its content, so whoever frees it can
// verify it without knowing where it came from.
struct Header {
  uint64_t magic;
  uint64_t id;
  size_t size;  // whole block, header included
};
constexpr uint64_t kMagic = 0x6d6d6b69744d5453ull;

size_t random_size(std::mt19937_64& rng) {
  const unsigned r = rng() % 100;
  if (r < 70) return sizeof(Header) + rng() % 256;
  if (r < 95) return sizeof(Header) + rng() % 4096;
  if (r < 99) return sizeof(Header) + rng() % (64 * 1024);
  return sizeof(Header) + rng() % (512 * 1024);
}

Header* make_block(size_t size, uint64_t id) {
  auto* h = static_cast<Header*>(std::malloc(size));
  if (!h) return nullptr;
  *h = Header{kMagic, id, size};
  fill_pattern(h + 1, size - sizeof(Header), id);
  return h;
}

bool block_ok(const Header* h) {
  if (h->magic != kMagic) return false;
  const size_t n = h->size - sizeof(Header);
  return find_pattern_mismatch(h + 1, n, h->id) == n;
}

// --- (a) 64 threads, half of the frees remote ---------------------------------------------------
struct alignas(64) Inbox {
  std::mutex m;
  std::vector<Header*> items;
};

void part_remote_frees() {
  constexpr int kThreads = 64;
  const int iters = scaled(2000);
  std::vector<Inbox> inbox(kThreads);
  std::latch start(kThreads);
  std::barrier done_producing(kThreads);
  std::atomic<long> local_frees{0}, remote_frees{0}, reallocs{0};

  auto drain = [&](int self, std::mt19937_64& rng) {
    std::vector<Header*> got;
    {
      std::lock_guard<std::mutex> g(inbox[self].m);
      got.swap(inbox[self].items);
    }
    for (Header* h : got) {
      CHECK_MSG(block_ok(h), "thread %d: remote block %p (id %llu) damaged", self,
                static_cast<void*>(h), static_cast<unsigned long long>(h->id));
      if (rng() % 8 == 0) {  // realloc a block another thread allocated
        const size_t n = random_size(rng);
        const size_t keep = std::min(n, h->size) - sizeof(Header);
        const uint64_t id = h->id;
        auto* q = static_cast<Header*>(std::realloc(h, n));
        CHECK(q != nullptr);
        if (!q) continue;
        CHECK_MSG(q->magic == kMagic && find_pattern_mismatch(q + 1, keep, id) == keep,
                  "thread %d: realloc of a remote block lost its content", self);
        h = q;
        reallocs.fetch_add(1, std::memory_order_relaxed);
      }
      std::free(h);
      remote_frees.fetch_add(1, std::memory_order_relaxed);
    }
  };

  auto worker = [&](int self) {
    std::mt19937_64 rng(1000 + self);
    std::deque<Header*> mine;
    start.arrive_and_wait();
    for (int i = 0; i < iters; ++i) {
      const uint64_t id = (static_cast<uint64_t>(self) << 32) | static_cast<uint64_t>(i);
      Header* h = make_block(random_size(rng), id);
      CHECK(h != nullptr);
      if (!h) continue;
      if (rng() % 2 == 0) {  // another thread frees it
        const int to = static_cast<int>((self + 1 + rng() % (kThreads - 1)) % kThreads);
        std::lock_guard<std::mutex> g(inbox[to].m);
        inbox[to].items.push_back(h);
      } else {
        mine.push_back(h);
      }
      if (mine.size() > 32 || (!mine.empty() && rng() % 4 == 0)) {  // free some of our own
        Header* f = mine.front();
        mine.pop_front();
        CHECK_MSG(block_ok(f), "thread %d: own block damaged", self);
        std::free(f);
        local_frees.fetch_add(1, std::memory_order_relaxed);
      }
      if (i % 16 == 0) drain(self, rng);
    }
    for (Header* f : mine) {
      CHECK_MSG(block_ok(f), "thread %d: own block damaged", self);
      std::free(f);
      local_frees.fetch_add(1, std::memory_order_relaxed);
    }
    done_producing.arrive_and_wait();  // nobody sends any more
    drain(self, rng);
  };

  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  HEAP_CHECK("after the remote-free threads");
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::printf(
      "(a) %d threads x %d blocks: %ld local frees, %ld remote frees (%ld realloc'ed) in %.0f ms\n",
      kThreads, iters, local_frees.load(), remote_frees.load(), reallocs.load(), ms);
}

// --- (b) waves of short-lived threads -----------------------------------------------------------
void part_thread_waves() {
  const int waves = scaled(10), per_wave = 24, objects = scaled(1200);
  static const size_t kSizes[] = {8,    16,   24,    32,    48,    64,    80,     96,    128,  160,
                                  192,  256,  384,   512,   768,   1024,  1536,   2048,  3072, 4096,
                                  6000, 8192, 12000, 16384, 32768, 65536, 100000, 262144};
  std::vector<Header*> handoff;  // allocated by the previous wave, freed by the next
  std::mutex handoff_m;
  std::atomic<long> allocated{0}, handed{0};
  const auto t0 = Clock::now();
  for (int w = 0; w < waves; ++w) {
    std::vector<Header*> inherited;
    {
      std::lock_guard<std::mutex> g(handoff_m);
      inherited.swap(handoff);
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < per_wave; ++t) {
      // Each thread frees its share of what the (exited) previous wave left.
      std::vector<Header*> share;
      for (size_t i = t; i < inherited.size(); i += per_wave) share.push_back(inherited[i]);
      threads.emplace_back([&, w, t, share = std::move(share)] {
        for (Header* h : share) {
          CHECK_MSG(block_ok(h), "wave %d: block of an exited thread damaged", w);
          std::free(h);
        }
        std::mt19937_64 rng(w * 1000 + t);
        std::vector<Header*> objs;
        objs.reserve(objects);
        for (int i = 0; i < objects; ++i) {
          const size_t size =
              std::max(sizeof(Header), kSizes[rng() % (i % 7 == 0 ? std::size(kSizes) : 16)]);
          Header* h = make_block(size, (static_cast<uint64_t>(w) << 40) | (t << 20) | i);
          CHECK(h != nullptr);
          if (h) objs.push_back(h);
        }
        allocated.fetch_add(static_cast<long>(objs.size()), std::memory_order_relaxed);
        std::shuffle(objs.begin(), objs.end(), rng);
        const size_t keep = 8;  // for the next wave
        for (size_t i = keep; i < objs.size(); ++i) {
          CHECK_MSG(block_ok(objs[i]), "wave %d thread %d: block damaged", w, t);
          std::free(objs[i]);
        }
        std::lock_guard<std::mutex> g(handoff_m);
        for (size_t i = 0; i < keep && i < objs.size(); ++i) handoff.push_back(objs[i]);
        handed.fetch_add(static_cast<long>(std::min(keep, objs.size())), std::memory_order_relaxed);
      });
    }
    for (auto& t : threads) t.join();
  }
  for (Header* h : handoff) {
    CHECK_MSG(block_ok(h), "last wave's block damaged");
    std::free(h);
  }
  HEAP_CHECK("after the thread waves");
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::printf(
      "(b) %d waves x %d threads: %ld objects, %ld freed after their thread exited, %.0f ms\n",
      waves, per_wave, allocated.load(), handed.load(), ms);
}

// --- (c) fork while other threads allocate ------------------------------------------------------
// The child's work: many allocations, one more thread, the heap check.
[[noreturn]] void child_main(int round) {
  alarm(30);  // never outlive a hung parent
  std::mt19937_64 rng(round);
  auto churn = [](std::mt19937_64& r, int n) {
    std::vector<Header*> v;
    bool ok = true;
    for (int i = 0; i < n; ++i) {
      if (v.size() < 200 && r() % 3 != 0) {
        Header* h = make_block(random_size(r), i);
        if (!h) return false;
        v.push_back(h);
      } else if (!v.empty()) {
        const size_t k = r() % v.size();
        ok = ok && block_ok(v[k]);
        std::free(v[k]);
        v[k] = v.back();
        v.pop_back();
      }
    }
    for (Header* h : v) {
      ok = ok && block_ok(h);
      std::free(h);
    }
    return ok;
  };
  bool ok = churn(rng, 10000);
  bool thread_ok = false;
  std::thread t([&] {
    std::mt19937_64 r(round + 100);
    thread_ok = churn(r, 10000);
  });
  t.join();
  ok = ok && thread_ok && HEAP_CHECK("in a forked child");
  _exit(ok ? 0 : 3);
}

void part_fork() {
  const int rounds = scaled(5);
  std::atomic<bool> stop{false};
  std::atomic<long> bg_ops{0};
  std::vector<std::thread> bg;
  for (int t = 0; t < 3; ++t) {
    bg.emplace_back([&, t] {
      std::mt19937_64 rng(5000 + t);
      std::vector<Header*> v;
      while (!stop.load(std::memory_order_relaxed)) {
        Header* h = make_block(random_size(rng), t);
        if (h) v.push_back(h);
        if (v.size() > 64) {
          for (Header* f : v) std::free(f);
          v.clear();
        }
        bg_ops.fetch_add(1, std::memory_order_relaxed);
      }
      for (Header* f : v) std::free(f);
    });
  }
  int ok_children = 0;
  for (int r = 0; r < rounds; ++r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::fflush(nullptr);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid < 0) break;
    if (pid == 0) child_main(r);
    // Wait with a deadline: a child that deadlocks in malloc must not hang the test.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    int status = 0;
    pid_t got = 0;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (got == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      CHECK_MSG(false, "fork round %d: the child hung (killed after 20 s)", r);
      continue;
    }
    CHECK_MSG(got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fork round %d: child status %#x (exit %d, signal %d)", r, status,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ok_children += got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  stop = true;
  for (auto& t : bg) t.join();
  HEAP_CHECK("after the fork rounds");
  std::printf("(c) %d forks during allocation (%ld background allocations): %d children exited 0\n",
              rounds, bg_ops.load(), ok_children);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--scale" && i + 1 < argc) {
      g_scale = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--scale F]\n", argv[0]);
      return 2;
    }
  }
  require_preload_if_expected("mt_stress");
  const Allocator alloc = detect_allocator();
  const MmkitVersionFn version = mmkit_version_fn();
  std::printf("mt_stress: allocator %s (%s)\n", allocator_name(alloc),
              version ? version() : defining_object("malloc").c_str());
  std::fflush(stdout);
  const auto t0 = Clock::now();
  part_remote_frees();
  part_thread_waves();
  part_fork();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  const int failures = g_failures.load();
  std::printf("mt_stress: %s: %d failed checks in %.1f s\n", failures ? "FAIL" : "PASS", failures,
              s);
  return exit_status();
}
