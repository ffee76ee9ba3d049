// kswapd (one thread per node, mm/vmscan.c kswapd and balance_pgdat),
// direct reclaim (try_to_free_pages), the ReclaimOps the page allocator
// calls, and boot_with_reclaim.
#include <fmt/format.h>
#include <pthread.h>
#include <time.h>

#include <chrono>

#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/lru_gen.h"
#include "reclaim/reclaim.h"
#include "reclaim/reclaim_state.h"
#include "reclaim/vmscan.h"
#include "swap/swap.h"
#include "vm/rmap.h"

namespace mmkit {

class MachineReclaimOps final : public ReclaimOps {
 public:
  explicit MachineReclaimOps(ReclaimState& st) : st_(st) {}
  void wakeup_kswapd(Machine& m, Zone& zone, gfp_t gfp, unsigned order,
                     unsigned highest_zoneidx) override {
    ReclaimOps::wakeup_kswapd(m, zone, gfp, order, highest_zoneidx);
    wakeup_kswapd_node(st_, zone.node);
  }
  uint64_t try_to_free_pages(Machine& m, gfp_t gfp, unsigned order, int nid) override {
    return direct_reclaim(m, gfp, order, nid);
  }
  bool out_of_memory(Machine& m, gfp_t gfp, unsigned order) override {
    return oom_kill_global(m, gfp, order);
  }
  bool current_is_oom_victim(Machine&) override { return current_oom_victim(); }
  bool retries_without_progress() const override { return true; }

 private:
  ReclaimState& st_;
};

namespace {

thread_local bool tls_in_reclaim = false;  // PF_MEMALLOC

uint64_t clock_ns(clockid_t clock) {
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// pgdat_balanced(): some zone the allocation may use is above its high
// watermark for the order.
bool pgdat_balanced(Machine& m, int nid, unsigned order, unsigned highest) {
  Node& n = m.node(nid);
  for (unsigned i = 0; i <= highest && i < n.nr_zones; ++i) {
    const Zone& z = n.zones[i];
    if (z.populated() && zone_watermark_ok(z, order, z.high_wmark(), highest, 0)) return true;
  }
  return false;
}

// balance_pgdat(): reclaim from the node until it is balanced. Each round
// (kswapd_shrink_node) aims at the high watermark's worth of pages of every
// eligible zone, not just the deficit, so that kswapd gets ahead of the
// allocators instead of trailing them by a few pages; the priority rises
// (the scan widens) only when a round scanned less than that or freed
// nothing. A run that frees nothing counts as a failure.
void balance_pgdat(ReclaimState& st, Kswapd& k) {
  Machine& m = st.m;
  Node& n = m.node(k.nid);
  const unsigned order = static_cast<unsigned>(n.kswapd_order.exchange(0));
  const unsigned highest = static_cast<unsigned>(n.kswapd_highest_zoneidx.load());
  m.count_event(VmEvent::PAGEOUTRUN);
  ScanControl sc;
  sc.kswapd = true;
  sc.priority = DEF_PRIORITY;
  while (sc.priority >= 1 && !st.stopping.load()) {
    if (pgdat_balanced(m, k.nid, order, highest)) break;
    sc.nr_to_reclaim = 0;
    for (unsigned i = 0; i <= highest && i < n.nr_zones; ++i)
      if (n.zones[i].populated())
        sc.nr_to_reclaim += std::max<uint64_t>(n.zones[i].high_wmark(), SWAP_CLUSTER_MAX);
    // lru_gen_age_node(): once a round at DEF_PRIORITY has not balanced the
    // node, a working set younger than min_ttl everywhere is protected by
    // an OOM kill instead of thrashing.
    if (sc.priority < DEF_PRIORITY && order == 0 && lru_gen_min_ttl_exhausted(m, k.nid))
      oom_kill_global(m, GFP_KERNEL, 0);
    sc.nr_scanned = 0;
    const uint64_t before = sc.nr_reclaimed;
    shrink_node(m, k.nid, sc);
    const bool raise_priority = sc.nr_scanned < sc.nr_to_reclaim;
    if (raise_priority || sc.nr_reclaimed == before) --sc.priority;
  }
  if (sc.nr_reclaimed == 0 && !pgdat_balanced(m, k.nid, order, highest))
    k.failures.fetch_add(1);
  else
    k.failures.store(0);
}

}  // namespace

ReclaimState::ReclaimState(Machine& machine) : m(machine) {
  ops = std::make_unique<MachineReclaimOps>(*this);
  m.set_reclaim(ops.get());
  set_memcg_reclaim_ops(m, {&try_to_free_mem_cgroup_pages, &oom_kill_memcg});
  for (unsigned nid = 0; nid < m.nr_nodes(); ++nid) {
    auto k = std::make_unique<Kswapd>();
    k->nid = static_cast<int>(nid);
    Kswapd* raw = k.get();
    kswapd.push_back(std::move(k));
    raw->thread = std::thread([this, raw] { kswapd_run(*this, *raw); });
    // The thread's own CPU clock, read live: under steady pressure kswapd
    // may not sleep (or finish a round) for a whole run.
    // (glibc derives it from the thread id: it cannot fail for a live thread).
    pthread_getcpuclockid(raw->thread.native_handle(), &raw->clock);
  }
}

ReclaimState::~ReclaimState() {
  stopping.store(true);
  for (auto& k : kswapd) {
    {
      std::lock_guard<std::mutex> g(k->lock);
      k->wake = true;
    }
    k->wait.notify_one();
    if (k->thread.joinable()) k->thread.join();
  }
  m.set_reclaim(nullptr);
  if (memcg_state_if(m)) set_memcg_reclaim_ops(m, {});
}

ReclaimState* reclaim_state_if(const Machine& m) {
  return static_cast<ReclaimState*>(m.layer_state(Layer::kReclaim));
}

void wakeup_kswapd_node(ReclaimState& st, int nid) {
  Kswapd& k = *st.kswapd[nid];
  // A node kswapd gave up on stays asleep until reclaim succeeds elsewhere
  // (direct reclaim resets kswapd_failures).
  if (k.failures.load(std::memory_order_relaxed) >= MAX_RECLAIM_RETRIES) return;
  {
    std::lock_guard<std::mutex> g(k.lock);
    if (k.wake) return;
    k.wake = true;
  }
  k.wait.notify_one();
}

void kswapd_run(ReclaimState& st, Kswapd& k) {
  tls_in_reclaim = true;
  for (;;) {
    {
      std::unique_lock<std::mutex> g(k.lock);
      k.wait.wait(g, [&] { return k.wake || st.stopping.load(); });
      k.wake = false;
    }
    if (st.stopping.load()) return;
    while (!st.stopping.load() && k.failures.load() < MAX_RECLAIM_RETRIES &&
           !pgdat_balanced(st.m, k.nid, 0, st.m.node(k.nid).nr_zones - 1)) {
      balance_pgdat(st, k);
    }
  }
}

uint64_t direct_reclaim(Machine& m, gfp_t gfp, unsigned order, int nid) {
  if (tls_in_reclaim || !(gfp & __GFP_DIRECT_RECLAIM)) return 0;
  tls_in_reclaim = true;
  ScanControl sc;
  for (int prio = DEF_PRIORITY; prio >= 0 && sc.nr_reclaimed < sc.nr_to_reclaim; --prio) {
    sc.priority = static_cast<unsigned>(prio);
    for (unsigned i = 0; i < m.nr_nodes() && sc.nr_reclaimed < sc.nr_to_reclaim; ++i)
      shrink_node(m, static_cast<int>(i), sc);
  }
  tls_in_reclaim = false;
  if (sc.nr_reclaimed)
    if (ReclaimState* st = reclaim_state_if(m))
      for (auto& k : st->kswapd) k->failures.store(0);
  return sc.nr_reclaimed;
}

Result<std::unique_ptr<Machine>> boot_with_reclaim(const MachineConfig& cfg) {
  auto r = boot(cfg);
  if (!r) return r;
  Machine& m = **r;
  memcg_state(m);
  register_swap_unuse(m);
  if (cfg.swap) {
    std::string err;
    if (swapon(m, {"", cfg.swap, std::nullopt}, &err) != 0)
      return Error{"swap: " + err, cfg.swap_line};
  }
  for (size_t i = 0; i < cfg.swap_areas.size(); ++i) {
    const SwapAreaConfig& a = cfg.swap_areas[i];
    std::string err;
    if (swapon(m, {a.file, a.size, a.priority}, &err) != 0)
      return Error{fmt::format("swap[{}]: {}", i, err), a.line};
  }
  m.ensure_layer_state(Layer::kReclaim, [&m] { return std::make_unique<ReclaimState>(m); });
  return r;
}

uint64_t kswapd_cpu_ns(const Machine& m) {
  uint64_t ns = 0;
  if (const ReclaimState* st = reclaim_state_if(m))
    for (const auto& k : st->kswapd) ns += clock_ns(k->clock);
  return ns;
}

}  // namespace mmkit
