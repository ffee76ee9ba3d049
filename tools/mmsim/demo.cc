// `mmsim demo`: boots the default machine (2 CPUs, 2 nodes, 4 GiB) and runs a
// short workload on both CPUs at once: each CPU thread allocates blocks of
// mixed orders with mixed GFP flags (kernel, atomic, user movable, DMA32,
// reclaimable, zeroed, compound), keeps up to a few thousand live, and frees
// them in random order. Alongside the pages each CPU allocates slab objects
// from two caches the demo creates ("demo_inode", 600 bytes, SLAB_RECLAIM_ACCOUNT |
// SLAB_HWCACHE_ALIGN, and "demo_dentry", 192 bytes, SLAB_RECLAIM_ACCOUNT, as
// Linux's inode and dentry caches are reclaimable) and kmalloc()s of mixed
// sizes (a few above KMALLOC_MAX_CACHE_SIZE, which go to the page
// allocator), and frees them in random order; a share of each CPU's objects
// is handed to the other CPU through a mutex-protected inbox and freed
// there (remote frees, as when one CPU frees what another allocated).
//
// It prints buddyinfo before, at the peak and after, the /proc/slabinfo rows
// (mm/slab_common.c format) of the demo caches and of the kmalloc caches in
// use at the peak and after, then the counters. After the workload every
// cache is shrunk (so all slab pages go back to the buddy lists) and the
// demo caches are destroyed. The seed makes a run repeatable.
//
// Then a process: it is spawned, maps 1 MiB of anonymous memory, writes all
// of it and grows its heap, forks, and the child writes half the mapping
// (copy-on-write breaks those pages away from the parent). The child's
// /proc/<pid>/maps and status are printed, and both processes exit.
//
// Last, reclaim on a small machine of its own (demo_reclaim.cc), and the
// page cache growing and shrinking on another (demo_cache.cc).
#include "demo.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "slab/slab.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmsim {

namespace {

using namespace mmkit;

struct Block {
  Page* page;
  unsigned order;
};

constexpr gfp_t kGfpMix[] = {GFP_KERNEL,
                             GFP_DMA,
                             GFP_KERNEL | __GFP_ZERO,
                             GFP_ATOMIC,
                             GFP_HIGHUSER_MOVABLE,
                             GFP_HIGHUSER_MOVABLE,
                             GFP_USER,
                             GFP_DMA32,
                             GFP_KERNEL | __GFP_RECLAIMABLE,
                             GFP_KERNEL | __GFP_COMP,
                             GFP_NOWAIT};

unsigned pick_order(std::mt19937_64& rng) {
  const unsigned r = rng() % 100;
  if (r < 70) return 0;
  if (r < 85) return 1 + rng() % 3;  // pcp orders
  if (r < 97) return 4 + rng() % 4;
  return 8 + rng() % 3;  // up to MAX_PAGE_ORDER
}

// A slab object: from a cache, or from kmalloc when `cache` is null.
struct SlabObj {
  KmemCache* cache;
  void* p;
};

// What the CPU threads share: the demo caches, the inboxes of objects one
// CPU hands to the other to free, and the two rendezvous points.
struct Shared {
  Shared(Machine& machine, const DemoOptions& options, int cpus)
      : m(machine), opt(options), ncpu(cpus) {}
  Machine& m;
  const DemoOptions& opt;
  const int ncpu;
  KmemCache* inode = nullptr;
  KmemCache* dentry = nullptr;
  std::mutex inbox_mutex;
  std::vector<SlabObj> inbox[2];  // inbox[c]: objects for CPU c to free
  std::atomic<int> at_peak{0};    // CPUs holding their peak; 3: main has looked
  std::atomic<int> freed{0};      // CPUs done freeing their own objects
};

// What one CPU thread leaves behind.
struct CpuResult {
  std::vector<Block> live;
  std::vector<SlabObj> objs;
  uint64_t failures = 0;       // failed (NOWARN) page allocations
  uint64_t slab_failures = 0;  // failed (NOWARN) object allocations
  uint64_t slab_allocs = 0;
  uint64_t remote_frees = 0;  // objects this CPU freed for the other
};

// kmalloc sizes: mostly small, some up to a page or two, a few above
// KMALLOC_MAX_CACHE_SIZE (compound pages from the page allocator).
size_t pick_kmalloc_size(std::mt19937_64& rng) {
  const unsigned r = rng() % 100;
  if (r < 60) return 1 + rng() % 256;
  if (r < 85) return 257 + rng() % (2048 - 256);
  if (r < 98) return 2049 + rng() % (KMALLOC_MAX_CACHE_SIZE - 2048);
  return KMALLOC_MAX_CACHE_SIZE + 1 + rng() % (3 * KMALLOC_MAX_CACHE_SIZE);
}

void free_obj(Machine& m, const SlabObj& o) {
  if (o.cache)
    kmem_cache_free(o.cache, o.p);
  else
    kfree(m, o.p);
}

// Frees what the other CPU handed to this one.
uint64_t drain_inbox(Shared& sh, int cpu) {
  std::vector<SlabObj> objs;
  {
    std::lock_guard<std::mutex> g(sh.inbox_mutex);
    objs.swap(sh.inbox[cpu]);
  }
  for (const SlabObj& o : objs) free_obj(sh.m, o);
  return objs.size();
}

// One slab operation: allocate an object (inode, dentry or kmalloc) or free
// a random live one, here or (one time in four) on the other CPU.
void slab_op(Shared& sh, int cpu, std::mt19937_64& rng, CpuResult* r) {
  constexpr size_t kMaxObjs = 6000;
  if (r->objs.size() < kMaxObjs && (r->objs.empty() || rng() % 3 != 0)) {
    const unsigned kind = rng() % 10;
    SlabObj o{nullptr, nullptr};
    if (kind < 3) {
      o = {sh.inode, kmem_cache_alloc(sh.inode, GFP_KERNEL | __GFP_NOWARN)};
    } else if (kind < 6) {
      o = {sh.dentry, kmem_cache_alloc(sh.dentry, GFP_KERNEL | __GFP_NOWARN)};
    } else {
      const gfp_t gfp = (kind == 9 ? GFP_KERNEL | __GFP_ZERO : GFP_KERNEL) | __GFP_NOWARN;
      o = {nullptr, kmalloc(sh.m, pick_kmalloc_size(rng), gfp)};
    }
    if (o.p) {
      r->objs.push_back(o);
      ++r->slab_allocs;
    } else {
      ++r->slab_failures;
    }
    return;
  }
  const size_t k = rng() % r->objs.size();
  std::swap(r->objs[k], r->objs.back());
  const SlabObj o = r->objs.back();
  r->objs.pop_back();
  if (sh.ncpu == 2 && rng() % 4 == 0) {
    std::lock_guard<std::mutex> g(sh.inbox_mutex);
    sh.inbox[1 - cpu].push_back(o);
  } else {
    free_obj(sh.m, o);
  }
}

void cpu_workload(Shared& sh, int cpu, CpuResult* r) {
  Machine& m = sh.m;
  auto scope = CpuScope::bind(m, cpu);
  if (!scope) return;
  std::mt19937_64 rng(sh.opt.seed * 1000003 + cpu);
  std::mt19937_64 slab_rng(sh.opt.seed * 7919 + cpu);  // the page stream stays as it was
  std::vector<Block>* live = &r->live;
  const size_t max_live = 4000;
  for (unsigned i = 0; i < sh.opt.ops_per_cpu; ++i) {
    if (live->size() < max_live && (live->empty() || rng() % 3 != 0)) {
      const unsigned order = pick_order(rng);
      const gfp_t gfp = kGfpMix[rng() % std::size(kGfpMix)] | __GFP_NOWARN;
      if (Page* p = alloc_pages(m, gfp, order))
        live->push_back({p, order});
      else
        ++r->failures;
    } else {
      const size_t k = rng() % live->size();
      std::swap((*live)[k], live->back());
      free_pages(m, live->back().page, live->back().order);
      live->pop_back();
    }
    slab_op(sh, cpu, slab_rng, r);
    if (i % 64 == 63) r->remote_frees += drain_inbox(sh, cpu);
  }
  // Hold the live set until both CPUs are done, so the peak view shows it.
  sh.at_peak.fetch_add(1);
  while (sh.at_peak.load() < 3) std::this_thread::yield();
  std::shuffle(live->begin(), live->end(), rng);
  for (const Block& b : *live) free_pages(m, b.page, b.order);
  live->clear();
  std::shuffle(r->objs.begin(), r->objs.end(), slab_rng);
  for (const SlabObj& o : r->objs) free_obj(m, o);
  r->objs.clear();
  // Once neither CPU hands anything over any more, free what is left in the inbox.
  sh.freed.fetch_add(1);
  while (sh.freed.load() < sh.ncpu) std::this_thread::yield();
  r->remote_frees += drain_inbox(sh, cpu);
  drain_local_pages(m);
}

// The slabinfo header and the rows of the caches named in `names`.
std::string slabinfo_rows_of(Machine& m, const std::set<std::string>& names) {
  const std::string text = render_slabinfo(m);
  std::string out;
  size_t start = 0;
  for (unsigned line = 0;; ++line) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;
    const std::string_view l(text.data() + start, nl + 1 - start);
    if (line < 2 || names.count(std::string(l.substr(0, l.find(' '))))) out += l;
    start = nl + 1;
  }
  return out;
}

// The process part of the demo; returns "" or what went wrong.
std::string process_demo(Machine& m, bool print) {
  constexpr uint64_t kLen = 1 << 20;
  Process* parent = nullptr;
  if (const int err = spawn(m, "demo", &parent); err != 0)
    return "cannot spawn the demo process: " + std::generic_category().message(-err) +
           (err == -ENOMEM ? " (its stack and page tables: the machine's overcommit policy and "
                             "CommitLimit, RLIMIT_AS and RLIMIT_DATA)"
                           : "");
  MmStruct* mm = parent->mm;
  const int64_t a = do_mmap(mm, 0, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) return "mmap failed";
  const uint64_t addr = static_cast<uint64_t>(a);
  std::vector<char> buf(kLen, 'p');
  if (!access_write(mm, addr, buf.data(), kLen).ok()) return "parent write failed";
  do_brk(mm, mm->start_brk + 64 * 1024);
  if (!access_touch(mm, mm->start_brk, 64 * 1024, Access::kWrite).ok()) return "heap write failed";
  Process* child = nullptr;
  if (fork_process(parent, &child) != 0) return "fork failed";
  std::fill(buf.begin(), buf.end(), 'c');
  if (!access_write(child->mm, addr, buf.data(), kLen / 2).ok()) return "child write failed";
  char p = 0, c = 0;
  if (!access_read(mm, addr, &p, 1).ok() || !access_read(child->mm, addr, &c, 1).ok() || p != 'p' ||
      c != 'c')
    return "copy-on-write did not separate parent and child";
  for (MmStruct* x : {mm, child->mm})
    if (std::string err = check(x); !err.empty()) return err;
  if (print) {
    fmt::print("== process {} forked {}; the child wrote half of {:#x}-{:#x} ==\n", parent->pid,
               child->pid, addr, addr + kLen);
    fmt::print("== /proc/{}/maps ==\n{}\n", child->pid, render_pid_maps(m, child->pid));
    fmt::print("== /proc/{}/status ==\n{}\n", child->pid, render_pid_status(m, child->pid));
  }
  exit_process(child);
  exit_process(parent);
  return "";
}

}  // namespace

int run_demo(Machine& m, const DemoOptions& opt) {
  if (opt.json)
    fmt::print("{{\"before\":{},", render_json(m));
  else
    fmt::print("== buddyinfo before ==\n{}\n", render_buddyinfo(m));

  const int ncpu = std::min<int>(2, static_cast<int>(m.nr_cpus()));
  Shared sh(m, opt, ncpu);
  sh.inode = kmem_cache_create(m, "demo_inode", 600, 0, SLAB_RECLAIM_ACCOUNT | SLAB_HWCACHE_ALIGN);
  sh.dentry = kmem_cache_create(m, "demo_dentry", 192, 0, SLAB_RECLAIM_ACCOUNT);
  if (!sh.inode || !sh.dentry) {
    fmt::print(stderr, "mmsim: demo: cannot create the demo caches\n");
    return 1;
  }

  CpuResult result[2];
  std::vector<std::thread> cpus;
  for (int c = 0; c < ncpu; ++c) cpus.emplace_back(cpu_workload, std::ref(sh), c, &result[c]);
  while (sh.at_peak.load() < ncpu) std::this_thread::yield();
  // The caches worth showing: the demo's and the kmalloc caches in use.
  std::set<std::string> shown = {"demo_inode", "demo_dentry"};
  for (const SlabinfoRow& r : slabinfo_rows(m))
    if (r.info.active_objs) shown.insert(r.info.name);
  const std::string peak = opt.json ? render_json(m) : render_buddyinfo(m);
  const std::string slab_peak = opt.json ? "" : slabinfo_rows_of(m, shown);
  sh.at_peak.store(3);
  for (auto& t : cpus) t.join();
  // Empty slabs stay with the caches (CPU slabs, min_partial per node):
  // shrinking every cache gives their pages back to the buddy lists.
  for (KmemCache* s : slab_caches(m)) kmem_cache_shrink(s);
  drain_all_pages(m);
  const std::string after = opt.json ? render_json(m) : render_buddyinfo(m);
  const std::string slab_after = opt.json ? "" : slabinfo_rows_of(m, shown);
  const bool destroyed = kmem_cache_destroy(sh.dentry) == 0 && kmem_cache_destroy(sh.inode) == 0;

  if (opt.json) {
    fmt::print("\"peak\":{},\"after\":{}}}\n", peak, after);
  } else {
    fmt::print("== buddyinfo at the peak (live blocks held on both CPUs) ==\n{}\n", peak);
    fmt::print("== slabinfo at the peak (demo caches, kmalloc caches in use) ==\n{}\n", slab_peak);
    fmt::print("== buddyinfo after (all freed, per-CPU lists drained) ==\n{}\n", after);
    fmt::print("== slabinfo after (all objects freed, caches shrunk) ==\n{}\n", slab_after);
    fmt::print("== counters ==\n");
    for (VmEvent e : {VmEvent::PGALLOC_DMA, VmEvent::PGALLOC_DMA32, VmEvent::PGALLOC_NORMAL,
                      VmEvent::PGALLOC_MOVABLE, VmEvent::PGFREE, VmEvent::ALLOCSTALL_NORMAL,
                      VmEvent::ALLOC_SLOWPATH, VmEvent::ALLOC_FAIL, VmEvent::KSWAPD_WAKEUP})
      fmt::print("{:<24} {}\n", kVmEventNames[static_cast<unsigned>(e)], m.sum_event(e));
    fmt::print("{:<24} {}\n", "failed (NOWARN) allocs", result[0].failures + result[1].failures);
    fmt::print("{:<24} {}\n", "slab objects allocated",
               result[0].slab_allocs + result[1].slab_allocs);
    fmt::print("{:<24} {}\n", "slab remote frees", result[0].remote_frees + result[1].remote_frees);
    fmt::print("{:<24} {}\n", "failed (NOWARN) objects",
               result[0].slab_failures + result[1].slab_failures);
  }
  if (!destroyed) {
    fmt::print(stderr, "mmsim: demo: a demo cache still had objects after the demo\n");
    return 1;
  }
  if (std::string err = process_demo(m, !opt.json); !err.empty()) {
    fmt::print(stderr, "mmsim: demo: {}\n", err);
    return 1;
  }
  for (std::string err : {check(m), slab_check(m)}) {
    if (!err.empty()) {
      fmt::print(stderr, "mmsim: invariant violated after the demo: {}\n", err);
      return 1;
    }
  }
  if (std::string err = reclaim_demo(!opt.json); !err.empty()) {
    fmt::print(stderr, "mmsim: demo: {}\n", err);
    return 1;
  }
  if (std::string err = cache_demo(!opt.json); !err.empty()) {
    fmt::print(stderr, "mmsim: demo: {}\n", err);
    return 1;
  }
  return 0;
}

}  // namespace mmsim
