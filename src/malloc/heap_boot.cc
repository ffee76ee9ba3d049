// Booting the heap's machine, binding threads to its CPUs, thread exit and
// fork, and the statistics report.
//
// Boot runs inside the core (MallocCoreScope), so everything the machine
// allocates while it is built comes from the early allocator, and no
// allocation reaches a heap that does not exist yet. Other threads that
// allocate while one boots are served by the early allocator too.
//
// The machine: one x86-64 node spanning the host's RAM and swap (what a
// process could ever get), its first memory block online, the rest onlined
// a block at a time by the page allocator's way to reclaim (HeapHotplug: a
// heap has nothing to reclaim, it grows instead, as a guest whose host
// plugs memory in when asked). Free-page reporting hands free pageblocks back.
//
// Fork: the prepare handler takes every lock of the heap, outermost first
// (the per-CPU partial budgets' lock, hotplug, slab_mutex, the caches'
// node list_locks, the zone locks, the kernel log, the early allocator), so
// the child starts with none held.
// CPUs bound by threads that do not exist in the child stay bound forever:
// their per-CPU state may have been mid-update, so nothing touches it again
// (their cached objects are lost to the child, nothing else is).
#include <fmt/format.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/bitops.h"
#include "malloc/big_block.h"
#include "malloc/early_alloc.h"
#include "malloc/heap.h"
#include "malloc/heap_internal.h"
#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"

namespace mmkit {

constinit HeapGlobals g_heap;
constinit thread_local ThreadCtx tls_heap __attribute__((tls_model("initial-exec")));

namespace {

constexpr uint64_t kBootOnline = kMemoryBlockBytes;
constexpr uint64_t kMinSpan = uint64_t{4} << 20;  // one MAX_ORDER block
constexpr uint64_t kReportingThreshold = uint64_t{16} << 20;
// Free blocks that no allocation took for this long go back to the host
// (page_reporting_decay), whatever the threshold. 10 ms (and reporting
// from 16 KiB blocks): peak RSS of cxx_objects 50.0 -> 41.7 MiB, churn
// 26.0 -> 23.2, realloc_grow 155.6 -> 135.4, with no time lost on the
// suite; 20 ms kept 0.7-1.4 MiB more of them.
constexpr uint64_t kReportDecayMs = 10;
// Bound CPUs at once from which the per-CPU partial budgets are SLUB's
// (lower_cpu_partial).
constexpr unsigned kManyBound = 8;

// The page allocator asks reclaim for memory; the heap onlines some.
class HeapHotplug final : public ReclaimOps {
 public:
  void wakeup_kswapd(Machine& m, Zone&, gfp_t, unsigned, unsigned) override {
    online_memory_block(m, 0);
  }
  uint64_t try_to_free_pages(Machine& m, gfp_t, unsigned, int) override {
    return online_memory_block(m, 0);
  }
};
alignas(HeapHotplug) unsigned char hotplug_storage[sizeof(HeapHotplug)];

// Messages the heap's machine prints: misuse reports abort, as glibc's do.
void heap_warn(const std::string& text) {
  const std::string line = "mmkit-malloc: " + text;
  if (write(STDERR_FILENO, line.data(), line.size()) < 0) {
  }
  std::abort();
}

void thread_exit_hook(void*) {
  tls_heap.exited = true;
  heap_thread_exit();
}

// Whether fork_prepare took the machine's locks: the heap may finish
// booting on another thread between the two handlers.
bool fork_holds_machine = false;

void fork_prepare() NO_THREAD_SAFETY_ANALYSIS {
  // The reporting worker's pass takes the machine's locks inside this one:
  // first, so that the child never inherits it held.
  g_heap.reporter_pass.lock();
  g_heap.cpu_partial_lock.lock();  // held while the budgets change, outside the machine's
  fork_holds_machine = heap_ready();
  if (fork_holds_machine) {
    Machine& m = *g_heap.m;
    m.node(0).hotplug_lock.lock();
    SlabState& st = slab_state(m);
    st.slab_mutex.lock();
    for (KmemCache* s : st.caches)
      for (auto& n : s->node) n->list_lock.lock();
    m.for_each_zone([](Zone& z) { z.lock.lock(); });
    m.log_mutex().lock();
  }
  early_lock();
  big_lock();
}

void fork_release() NO_THREAD_SAFETY_ANALYSIS {
  big_unlock();
  early_unlock();
  if (fork_holds_machine) {
    Machine& m = *g_heap.m;
    m.log_mutex().unlock();
    m.for_each_zone([](Zone& z) { z.lock.unlock(); });
    SlabState& st = slab_state(m);
    for (KmemCache* s : st.caches)
      for (auto& n : s->node) n->list_lock.unlock();
    st.slab_mutex.unlock();
    m.node(0).hotplug_lock.unlock();
  }
  g_heap.cpu_partial_lock.unlock();
  g_heap.reporter_pass.unlock();
}

// The child: CPUs that other threads had bound stay bound, and their state
// may be mid-update (a free between its compare-and-swap and the list it
// puts the slab on): check() is told so.
void fork_child() {
  heap_reporter_fork_child();
  fork_release();
  if (!fork_holds_machine) return;
  Machine& m = *g_heap.m;
  const uint64_t me = thread_token();
  for (unsigned c = 0; c < m.nr_cpus(); ++c) {
    CpuState& cpu = m.cpu(static_cast<int>(c));
    const uint64_t owner = cpu.owner.load(std::memory_order_relaxed);
    if (owner != 0 && owner != me) cpu.torn = true;
  }
}

void set_boot_error(const char* what) {
  snprintf(g_heap.boot_error, sizeof g_heap.boot_error, "%s", what);
}

// The heap's span: the host's RAM and swap (what a process could ever get,
// at least 1 GiB), in whole memory blocks. Under RLIMIT_AS the heap
// reserves its span and its mem_map (a 64th more) in the address space at
// boot: it takes at most half of what the limit leaves, the rest is the
// program's (its stacks, libraries and big blocks). Under RLIMIT_DATA,
// which counts the mem_map at once and the RAM as it is onlined, the span
// fits in what is left. Always a multiple of 4 MiB, at least 4 MiB.
uint64_t heap_span() {
  struct sysinfo si = {};
  uint64_t bytes = 0;
  if (sysinfo(&si) == 0) bytes = (uint64_t{si.totalram} + si.totalswap) * si.mem_unit;
  bytes = std::max<uint64_t>(bytes, uint64_t{1} << 30);
  bytes = (bytes + kMemoryBlockBytes - 1) / kMemoryBlockBytes * kMemoryBlockBytes;
  const AddressSpaceLeft left = address_space_left();
  bytes = std::min({bytes, left.as / 2 / 65 * 64, left.data / 65 * 64});
  return std::max(bytes / kMinSpan * kMinSpan, kMinSpan);
}

bool boot_machine(uint64_t span) {
  MachineConfig cfg;
  cfg.arch = Arch::x86_64;
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  // A CPU per thread that allocates (heap_bind_thread): a program with more
  // threads than CPUs runs the extra ones on the locked slow paths, several
  // times slower, so there are plenty. An unused CPU costs about 25 KiB of
  // per-CPU state (docs/malloc.md); its sheaves are never touched.
  cfg.cpus = static_cast<unsigned>(std::clamp<long>(4 * ncpu, 32, kMaxCpus));
  // Slab sizes as for 2 * ncpu CPUs (at least 8), not for all of them:
  // more CPUs would mean larger slabs and more memory held in them.
  const auto sized_for = static_cast<uint64_t>(std::clamp<long>(2 * ncpu, 8, kMaxCpus));
  cfg.slub_min_objects = 4 * static_cast<unsigned>(fls(sized_for) + 1);
  NodeConfig node;
  node.memory = span;
  node.online = std::min(node.memory, kBootOnline);
  cfg.nodes.push_back(node);
  cfg.ram_anonymous = true;
  // Slabs up to 64 KiB, so the classes above 8 KiB fit several objects (an
  // 18 KiB class wastes 16% of a 64 KiB slab, 44% of a 32 KiB one). 128 KiB
  // slabs waste less inside a slab but keep more memory in partly used ones:
  // realloc_grow's peak RSS is 10% lower with 64 KiB; 32 KiB raises churn's.
  cfg.slub_max_order = 4;
  // Encoded free pointers unless MMKIT_HARDENED=0 (docs/PERFORMANCE.md has
  // their cost on the whole-program suite).
  const char* hardened = getenv("MMKIT_HARDENED");
  cfg.slab_freelist_hardened = !(hardened && std::strcmp(hardened, "0") == 0);
  if (const char* d = getenv("MMKIT_DEBUG"); d && *d) {
    cfg.slub_debug = d;
    g_heap.debug = true;
  }
  const char* background = getenv("MMKIT_BACKGROUND");  // heap_reporter.cc
  g_heap.background.store(!(background && std::strcmp(background, "0") == 0),
                          std::memory_order_relaxed);
  auto booted = boot(cfg);
  if (!booted) {
    set_boot_error(booted.error().message.c_str());
    return false;
  }
  Machine* m = booted.value().release();
  m->warn_sink = heap_warn;
  m->set_reclaim(new (hotplug_storage) HeapHotplug);
  // Report free blocks from 16 KiB up (Linux's page_reporting_order
  // parameter; its default is a pageblock): a heap's free memory is in
  // smaller pieces than a guest's. A report waits for 16 MiB of such
  // blocks the host still holds and leaves the 8 MiB freed last, so a
  // program that frees and reallocates a few megabytes keeps them;
  // reporting keeps 32 blocks above the low watermark in any case. Blocks
  // no allocation took for kReportDecayMs go back in any case
  // (heap_maybe_report). 16 MiB rather than 32 took 1 MiB off
  // cxx_objects' peak RSS and 4 MiB off big_blocks' at no cost in time;
  // 12 MiB made big_blocks 30% slower (it frees runs of up to 4 MiB and
  // allocates them again at once).
  page_reporting_register(*m, 2, kReportingThreshold >> PAGE_SHIFT);
  for (unsigned c = 0; c < kMallocNrClasses; ++c) {
    const unsigned size = static_cast<unsigned>(malloc_class_size(c));
    // Free pointers at the start of the object, where the program's own
    // header is, not SLUB's middle: a free then writes no line (and for
    // blocks above 8 KiB no page) the program never touched. Peak RSS drops
    // about a tenth in churn, threads_private and producer_consumer.
    const KmemCacheArgs args{.align = 16,
                             .freeptr_offset = 0,
                             .use_freeptr_offset = true,
                             .sheaf_capacity = malloc_sheaf_capacity(size)};
    KmemCache* s = kmem_cache_create(*m, fmt::format("malloc-{}", size), size, args,
                                     SLAB_NO_MERGE | SLAB_KMALLOC);
    if (!s) return false;
    g_heap.caches[c] = s;
    g_heap.fast[c] = !s->debug();
    g_heap.cpu_partial_default[c] = kmem_cache_cpu_partial(s);
  }
  g_heap.m = m;
  g_heap.ram_base = reinterpret_cast<uintptr_t>(m->phys_window(0));
  g_heap.direct_bytes = m->direct_map_pfns() << PAGE_SHIFT;
  g_heap.mem_map = m->pfn_to_page(0);
  if (pthread_key_create(&g_heap.exit_key, thread_exit_hook) != 0) return false;
  pthread_atfork(fork_prepare, fork_release, fork_child);
  return true;
}

// When a second thread binds a CPU, every class's per-CPU partial budget
// grows to four times SLUB's. The slabs a thread's frees make partial then
// stay on its own CPU rather than overflow to the node list, where another
// thread's CPU would take them and put its objects beside this thread's:
// both threads' writes then share cache lines. threads_private (4 threads
// on 2 cores) runs in half the time. A single-threaded program has no
// other CPU to lose slabs to, and keeps SLUB's budget: a larger one holds
// more empty slabs, which pin free memory the host could have back. Once
// kManyBound CPUs are bound at the same time, the budgets go back to
// SLUB's for good: the slabs stocked grow with the CPUs, and with 8 to 128
// threads SLUB's budget kept 8-15% less peak RSS in threads_private
// (8 threads 43.9 -> 37.9 MiB, 64 threads 267 -> 235) at the same speed.
void set_cpu_partial_mul(unsigned mul) {
  if (g_heap.cpu_partial_mul == mul) return;
  g_heap.cpu_partial_mul = mul;
  MallocCoreScope core;
  for (unsigned c = 0; c < kMallocNrClasses; ++c) {
    KmemCache* s = g_heap.caches[c];
    if (s->has_cpu_partial()) kmem_cache_set_cpu_partial(s, mul * g_heap.cpu_partial_default[c]);
  }
}

void raise_cpu_partial() {
  std::lock_guard<std::mutex> g(g_heap.cpu_partial_lock);
  if (!g_heap.cpu_partial_lowered) set_cpu_partial_mul(4);
}

void lower_cpu_partial() {
  std::lock_guard<std::mutex> g(g_heap.cpu_partial_lock);
  g_heap.cpu_partial_lowered = true;
  set_cpu_partial_mul(1);
}

}  // namespace

bool heap_boot() {
  int s = g_heap.state.load(std::memory_order_acquire);
  if (s == kHeapReady) return true;
  if (s == kHeapCold && g_heap.state.compare_exchange_strong(s, kHeapBooting)) {
    bool ok = false;
    {
      MallocCoreScope core;
      // A smaller heap when the host will not reserve this one (a limit the
      // span did not foresee, an address space already crowded): half as
      // large each time, down to 4 MiB. Past that the early allocator and
      // big blocks serve every request (heap_stats_report() says why).
      for (uint64_t span = heap_span(); !ok && span >= kMinSpan; span /= 2) {
        span = span / kMinSpan * kMinSpan;
        try {
          ok = boot_machine(span);
        } catch (const std::exception& e) {  // the early allocator ran out
          set_boot_error(e.what());
        }
      }
    }
    g_heap.state.store(ok ? kHeapReady : kHeapFailed, std::memory_order_release);
    return ok;
  }
  return false;  // another thread is booting (or boot failed): the caller makes do
}

bool heap_bind_thread(ThreadCtx& t) {
  const uint64_t epoch = g_heap.unbind_epoch.load(std::memory_order_acquire);
  if (t.bind_failed_epoch == epoch) return false;
  Machine& m = *g_heap.m;
  const unsigned n = m.nr_cpus();
  const unsigned start = static_cast<unsigned>(thread_token() >> 12) % n;
  for (unsigned i = 0; i < n; ++i) {
    const int cpu = static_cast<int>((start + i) % n);
    if (m.cpu(cpu).owner.load(std::memory_order_relaxed) != 0) continue;
    MallocCoreScope core;
    auto r = CpuScope::bind(m, cpu);
    if (!r) continue;
    new (t.scope) CpuScope(std::move(r.value()));
    t.cpu = &m.cpu(cpu);
    for (unsigned c = 0; c < kMallocNrClasses; ++c)
      t.slab[c] = g_heap.fast[c] ? &g_heap.caches[c]->cpu_slab[cpu] : nullptr;
    if (g_heap.binds.fetch_add(1, std::memory_order_relaxed) == 1) raise_cpu_partial();
    if (g_heap.bound_now.fetch_add(1, std::memory_order_relaxed) + 1 == kManyBound)
      lower_cpu_partial();
    pthread_setspecific(g_heap.exit_key, reinterpret_cast<void*>(1));
    heap_magazine_release(t);  // kept while it had no CPU
    return true;
  }
  t.bind_failed_epoch = epoch;
  return false;
}

void heap_thread_exit() {
  ThreadCtx& t = tls_heap;
  heap_magazine_release(t);
  if (!t.cpu) return;
  Machine& m = *g_heap.m;
  {
    MallocCoreScope core;
    slub_cpu_dead(m, t.cpu);
    drain_local_pages(m);
  }
  for (KmemCacheCpu*& c : t.slab) c = nullptr;
  std::launder(reinterpret_cast<CpuScope*>(t.scope))->~CpuScope();
  t.cpu = nullptr;
  g_heap.bound_now.fetch_sub(1, std::memory_order_relaxed);
  g_heap.unbind_epoch.fetch_add(1, std::memory_order_release);
  heap_maybe_report();
}

void heap_maybe_report() {
  heap_reporter_kick();
  big_decay();
  Machine* m = g_heap.m;
  if (!m) return;
  if ((++tls_heap.report_calls & 63) == 0) {
    // Memory that stayed free through a whole decay period goes back
    // whatever the threshold (page_reporting_decay).
    const uint64_t now = coarse_now_ms();
    uint64_t last = g_heap.decay_ms.load(std::memory_order_relaxed);
    if (now - last >= kReportDecayMs &&
        g_heap.decay_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      MallocCoreScope core;
      g_heap.reported_pages.fetch_add(page_reporting_decay(*m), std::memory_order_relaxed);
    }
  }
  if (!m->page_reporting_requested.load(std::memory_order_relaxed)) return;
  MallocCoreScope core;
  g_heap.reported_pages.fetch_add(page_reporting_process(*m), std::memory_order_relaxed);
}

void heap_fatal(const char* what, const void* p) {
  char buf[160];
  const int n = snprintf(buf, sizeof buf, "mmkit-malloc: %s: %p\n", what, p);
  if (n > 0 && write(STDERR_FILENO, buf, static_cast<size_t>(n)) < 0) {
  }
  std::abort();
}

Machine* heap_machine() {
  return heap_ready() ? g_heap.m : nullptr;
}

int heap_trim() {
  const bool cached = big_trim();
  Machine* m = heap_machine();
  if (!m) return cached;
  MallocCoreScope core;
  // Every class gives back what it can, as writing 1 to
  // /sys/kernel/slab/<cache>/shrink does: this CPU's (and idle CPUs')
  // sheaves, deferred frees and slabs go back, and empty slabs to the
  // buddy allocator, whose free blocks are then all reported.
  for (KmemCache* s : g_heap.caches) kmem_cache_shrink(s);
  drain_local_pages(*m);
  const uint64_t n = page_reporting_process(*m, true);
  g_heap.reported_pages.fetch_add(n, std::memory_order_relaxed);
  return cached || n != 0;
}

// The views and checks below allocate while they hold the machine's locks
// (a check_zone() vector under zone.lock): inside the core, so those
// allocations come from the early allocator, not the locked heap.
std::string heap_check() {
  std::lock_guard<std::mutex> quiet(g_heap.reporter_pass);
  MallocCoreScope core;
  // Big blocks need no machine: a program may have only those.
  if (std::string e = big_check(); !e.empty()) return e;
  Machine* m = heap_machine();
  if (!m) return "";
  if (std::string e = check(*m); !e.empty()) return e;
  return slab_check(*m);
}

HeapStats heap_stats() {
  HeapStats st;
  st.big_blocks = big_blocks();
  st.big_bytes = big_bytes();
  st.big_cached_bytes = big_cached_bytes();
  Machine* m = heap_machine();
  if (!m) return st;
  st.cpus = m->nr_cpus();
  for (unsigned c = 0; c < m->nr_cpus(); ++c)
    st.bound_cpus += m->cpu(static_cast<int>(c)).owner.load(std::memory_order_relaxed) != 0;
  const Node& n = m->node(0);
  st.online_bytes = (n.online_end_pfn.load() - n.node_start_pfn) << PAGE_SHIFT;
  st.span_bytes = n.node_spanned_pages << PAGE_SHIFT;
  st.reported_bytes = g_heap.reported_pages.load(std::memory_order_relaxed) << PAGE_SHIFT;
  return st;
}

std::string heap_stats_report() {
  Machine* m = heap_machine();
  if (!m) {
    if (g_heap.state.load(std::memory_order_acquire) == kHeapFailed)
      return "mmkit-malloc: statistics: the heap could not boot (" +
             std::string(g_heap.boot_error) +
             "): the early allocator and big blocks served the program\n";
    return "mmkit-malloc: statistics: the heap was never used\n";
  }
  MallocCoreScope core;
  const HeapStats st = heap_stats();
  std::string s = fmt::format(
      "mmkit-malloc: statistics\n"
      "cpus {} (bound {}), memory online {} KiB of {} KiB, big blocks {} ({} KiB, {} KiB "
      "cached), reported to the host {} KiB since start\n",
      st.cpus, st.bound_cpus, st.online_bytes >> 10, st.span_bytes >> 10, st.big_blocks,
      st.big_bytes >> 10, st.big_cached_bytes >> 10, st.reported_bytes >> 10);
  s += render_slabinfo(*m);
  s += render_buddyinfo(*m);
  return s;
}

}  // namespace mmkit
