// The heap's reporting worker: Linux's page_reporting work item, which
// runs PAGE_REPORTING_DELAY (two seconds) after free memory builds up, as a
// thread of the program.
//
// The heap hands memory back to the host from its own calls: free-page
// reporting of the buddy allocator's cold blocks (heap_maybe_report) and
// the purge of freed big blocks two seconds old (big_decay). A program that
// frees a gigabyte and then sleeps makes no more calls, so without this
// worker the memory would stay resident until it next allocated. The
// worker starts when a free leaves such memory behind in a program that
// has used more than the heap's first memory block or has big blocks
// freed, runs a pass every two seconds while passes find something to
// hand back, and exits after two passes that find nothing; the next free
// that leaves memory behind starts it again. It never allocates from the
// heap, never binds a CPU, and blocks every signal, so the program's
// signals go to its own threads. MMKIT_BACKGROUND=0 keeps a program
// single-threaded (for unshare(CLONE_NEWUSER), seccomp filters that
// forbid clone, ...): memory then goes back only on the program's calls.
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <mutex>

#include "malloc/big_block.h"
#include "malloc/heap.h"
#include "malloc/heap_internal.h"
#include "page_alloc/page_alloc.h"
#include "phys/machine.h"

namespace mmkit {

namespace {

constexpr long kPeriodMs = 2000;     // PAGE_REPORTING_DELAY, and big_block.cc's decay
constexpr unsigned kIdlePasses = 2;  // an idle pass, then one that finds the rest cold
// A pass that hands back less than this is idle: a program that sleeps and
// wakes (a timer, a poll loop) frees a few pages between passes, and would
// keep the worker alive for them.
constexpr uint64_t kIdlePages = 256;  // 1 MiB

std::atomic<bool> running{false};

// One pass: freed big blocks older than the decay go back, then the free
// blocks no allocation took since the last pass. True when it gave back a
// megabyte or more, or big blocks are still waiting for their decay.
bool reporting_pass() {
  std::lock_guard<std::mutex> g(g_heap.reporter_pass);
  big_decay();
  uint64_t reported = 0;
  if (Machine* m = heap_machine()) {
    MallocCoreScope core;
    reported = page_reporting_decay(*m);
  }
  g_heap.reported_pages.fetch_add(reported, std::memory_order_relaxed);
  return reported >= kIdlePages || big_cached_bytes();
}

void* reporter_main(void*) {
  pthread_setname_np(pthread_self(), "mmkit-report");
  for (unsigned idle = 0; idle < kIdlePasses;) {
    timespec ts{kPeriodMs / 1000, (kPeriodMs % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    idle = reporting_pass() ? 0 : idle + 1;
  }
  running.store(false, std::memory_order_release);
  return nullptr;
}

// Memory a later pass could hand back: freed big blocks kept for reuse, or
// a heap grown past its first memory block (its free memory may sit below
// the reporting threshold).
bool idle_work_left() {
  if (big_has_cached()) return true;
  const Machine* m = g_heap.m;
  if (!m) return false;
  const Node& n = m->node(0);
  return n.online_end_pfn.load(std::memory_order_relaxed) - n.node_start_pfn >
         (kMemoryBlockBytes >> PAGE_SHIFT);
}

}  // namespace

void heap_reporter_kick() {
  if (!g_heap.background.load(std::memory_order_relaxed) ||
      running.load(std::memory_order_acquire) || tls_heap.in_core)
    return;
  if (!idle_work_left() || running.exchange(true, std::memory_order_acq_rel)) return;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 << 10);
  pthread_t t;
  const bool started = pthread_create(&t, &attr, reporter_main, nullptr) == 0;
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!started) {
    // No thread to be had (RLIMIT_NPROC, a seccomp filter): the program's
    // own calls hand memory back, and no later free tries again.
    g_heap.background.store(false, std::memory_order_relaxed);
    running.store(false, std::memory_order_release);
  }
}

void heap_reporter_fork_child() {
  running.store(false, std::memory_order_relaxed);  // the child has no worker
}

}  // namespace mmkit
