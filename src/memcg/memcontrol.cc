// Memory cgroups: creation, control files, the page-to-group map
// (mm/memcontrol.c). Charging and the lruvecs are in charge.cc and lru.cc.
#include "memcg/memcontrol.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include "memcg/lru.h"
#include "memcg/lru_gen.h"
#include "memcg/memcg_state.h"

namespace mmkit {

namespace {

// A limit file's bytes in pages (slots), rounded down; kMemMax stays "max".
uint64_t limit_pages(uint64_t bytes) {
  return bytes == kMemMax ? kMemMax : bytes >> PAGE_SHIFT;
}

// A limit file's text: "max" or the bytes.
std::string limit_text(uint64_t pages) {
  return pages == kMemMax ? "max\n" : fmt::format("{}\n", pages << PAGE_SHIFT);
}

// memory_max_write() / memory_high_write(): reclaim the group down to
// `limit` pages, giving up after MAX_RECLAIM_RETRIES rounds that free
// nothing; then, with `oom`, the group's OOM killer until it has no victim
// left.
void reclaim_down_to(MemCgroup* cg, uint64_t limit, bool oom) {
  Machine& m = *cg->machine;
  const MemcgReclaimOps& ops = *memcg_state(m).reclaim_ops;
  int retries = MAX_RECLAIM_RETRIES;
  for (;;) {
    const int64_t usage = cg->usage.load(std::memory_order_relaxed);
    if (usage <= 0 || static_cast<uint64_t>(usage) <= limit || !ops.reclaim) break;
    if (retries > 0) {
      if (!ops.reclaim(m, cg, static_cast<uint64_t>(usage) - limit)) --retries;
      continue;
    }
    if (!oom) break;
    cg->ev_oom.fetch_add(1, std::memory_order_relaxed);
    if (!ops.oom || !ops.oom(m, cg)) break;
  }
}

}  // namespace

MemCgroup::MemCgroup() = default;
MemCgroup::~MemCgroup() = default;

void MemcgState::init_lruvecs(MemCgroup* cg) {
  for (unsigned nid = 0; nid < machine.nr_nodes(); ++nid) {
    auto lv = std::make_unique<Lruvec>();
    lv->memcg = cg;
    lv->nid = static_cast<int>(nid);
    for (ListHead& l : lv->lists) l.init();
    lru_gen_init_lruvec(*lv);
    cg->lruvec.push_back(std::move(lv));
  }
}

MemcgState::MemcgState(Machine& m) : machine(m) {
  batches = std::make_unique<LruBatch[]>(m.nr_cpus() + 1);
  reclaim_ops = std::make_unique<MemcgReclaimOps>();
  page_memcg_len = m.mem_map_pages();
  void* p = mmap(nullptr, page_memcg_len * sizeof(uint16_t), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED) page_memcg = static_cast<std::atomic<uint16_t>*>(p);
  auto root = std::make_unique<MemCgroup>();
  root->machine = &m;
  root->id = 1;
  init_lruvecs(root.get());
  by_id[1].store(root.get(), std::memory_order_release);
  groups.push_back(std::move(root));
  m.page_release = &memcg_page_release;
}

MemcgState::~MemcgState() {
  machine.page_release = nullptr;
  if (page_memcg) munmap(page_memcg, page_memcg_len * sizeof(uint16_t));
}

MemcgState& memcg_state(Machine& m) {
  return *static_cast<MemcgState*>(
      m.ensure_layer_state(Layer::kMemcg, [&m] { return std::make_unique<MemcgState>(m); }));
}

MemCgroup* root_mem_cgroup(Machine& m) {
  return memcg_state(m).root();
}

MemCgroup* mem_cgroup_create(Machine& m, std::string_view name, uint64_t max_bytes) {
  MemcgState& st = memcg_state(m);
  if (name.empty() || name.find('/') != std::string_view::npos) return nullptr;
  std::lock_guard<std::mutex> g(st.lock);
  for (auto& cg : st.groups)
    if (cg->name == name) return nullptr;
  if (st.groups.size() + 1 >= kMaxMemCgroups) return nullptr;
  auto cg = std::make_unique<MemCgroup>();
  cg->machine = &m;
  cg->name = std::string(name);
  cg->id = static_cast<uint16_t>(st.groups.size() + 1);
  cg->max.store(limit_pages(max_bytes));
  st.init_lruvecs(cg.get());
  MemCgroup* raw = cg.get();
  st.groups.push_back(std::move(cg));
  st.by_id[raw->id].store(raw, std::memory_order_release);
  return raw;
}

void mem_cgroup_set_max(MemCgroup* cg, uint64_t max_bytes) {
  const uint64_t max = limit_pages(max_bytes);
  cg->max.store(max);
  reclaim_down_to(cg, max, true);
}

std::string mem_cgroup_name(const MemCgroup* cg) {
  return cg->is_root() ? "/" : "/" + cg->name;
}

std::vector<MemCgroup*> mem_cgroups(Machine& m) {
  MemcgState& st = memcg_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  std::vector<MemCgroup*> out;
  for (auto& cg : st.groups) out.push_back(cg.get());
  return out;
}

MemcgWbStats mem_cgroup_wb_stats(const MemCgroup* cg) {
  MemcgWbStats s;
  auto pages = [](int64_t v) { return static_cast<uint64_t>(std::max<int64_t>(v, 0)); };
  s.dirty = pages(cg->nr_file_dirty.load(std::memory_order_relaxed));
  s.writeback = pages(cg->nr_writeback.load(std::memory_order_relaxed));
  for (const auto& lv : cg->lruvec)
    s.filepages += lv->size(LRU_INACTIVE_FILE) + lv->size(LRU_ACTIVE_FILE);
  // Groups are flat under the root: the walk up to the root is this group
  // alone, whose ceiling is the lower of memory.max and memory.high.
  s.headroom = ~uint64_t{0};
  const uint64_t ceiling =
      std::min(cg->max.load(std::memory_order_relaxed), cg->high.load(std::memory_order_relaxed));
  if (!cg->is_root() && ceiling != kMemMax)
    s.headroom = ceiling - std::min(ceiling, pages(cg->usage.load(std::memory_order_relaxed)));
  return s;
}

void mem_cgroup_set_high(MemCgroup* cg, uint64_t high_bytes) {
  const uint64_t high = limit_pages(high_bytes);
  cg->high.store(high);
  reclaim_down_to(cg, high, false);
}

void mem_cgroup_set_swap_max(MemCgroup* cg, uint64_t max_bytes) {
  cg->swap_max.store(limit_pages(max_bytes));
}

bool mem_cgroup_try_charge_swap(Machine& m, uint16_t id) {
  MemCgroup* cg = mem_cgroup_from_id(m, id);
  if (!cg) return true;
  // page_counter_try_charge(): charge, and take it back if that went over.
  const uint64_t max = cg->swap_max.load(std::memory_order_relaxed);
  const int64_t now = cg->swap_usage.fetch_add(1, std::memory_order_relaxed) + 1;
  if (max == kMemMax || static_cast<uint64_t>(now) <= max) return true;
  cg->swap_usage.fetch_sub(1, std::memory_order_relaxed);
  cg->ev_swap_max.fetch_add(1, std::memory_order_relaxed);
  cg->ev_swap_fail.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void mem_cgroup_swap_charge(Machine& m, uint16_t id, int64_t n) {
  if (MemCgroup* cg = mem_cgroup_from_id(m, id))
    cg->swap_usage.fetch_add(n, std::memory_order_relaxed);
}

void mem_cgroup_swap_fail(Machine& m, uint16_t id) {
  if (MemCgroup* cg = mem_cgroup_from_id(m, id))
    cg->ev_swap_fail.fetch_add(1, std::memory_order_relaxed);
}

uint64_t mem_cgroup_swap_headroom(const MemCgroup* cg) {
  const uint64_t max = cg->swap_max.load(std::memory_order_relaxed);
  if (cg->is_root() || max == kMemMax) return ~uint64_t{0};
  const int64_t used = cg->swap_usage.load(std::memory_order_relaxed);
  return max - std::min<uint64_t>(max, static_cast<uint64_t>(std::max<int64_t>(used, 0)));
}

MemCgroup* mem_cgroup_from_id(Machine& m, uint16_t id) {
  MemcgState* ms = id ? memcg_state_if(m) : nullptr;
  return ms ? ms->group(id) : nullptr;
}

void mem_cgroup_set_zswap_max(MemCgroup* cg, uint64_t max_bytes) {
  cg->zswap_max.store(limit_pages(max_bytes));
}

void mem_cgroup_set_zswap_writeback(MemCgroup* cg, bool on) {
  cg->zswap_writeback.store(on);
}

bool mem_cgroup_zswap_writeback_enabled(Machine& m, uint16_t id) {
  const MemCgroup* cg = mem_cgroup_from_id(m, id);
  return !cg || cg->zswap_writeback.load(std::memory_order_relaxed);
}

bool mem_cgroup_may_zswap(Machine& m, uint16_t id) {
  const MemCgroup* cg = mem_cgroup_from_id(m, id);
  if (!cg || cg->is_root()) return true;
  const uint64_t max = cg->zswap_max.load(std::memory_order_relaxed);
  const int64_t bytes = cg->zswap_bytes.load(std::memory_order_relaxed);
  return max == kMemMax || static_cast<uint64_t>(std::max<int64_t>(bytes, 0)) / PAGE_SIZE < max;
}

void mem_cgroup_zswap_charge(Machine& m, uint16_t id, int64_t bytes, int64_t entries) {
  MemCgroup* cg = mem_cgroup_from_id(m, id);
  if (!cg) return;
  int64_t delta;
  {
    SpinGuard g(cg->zswap_lock);
    const int64_t now = cg->zswap_bytes.load(std::memory_order_relaxed) + bytes;
    cg->zswap_bytes.store(now, std::memory_order_relaxed);
    cg->nr_zswapped.fetch_add(entries, std::memory_order_relaxed);
    const int64_t pages = (now + static_cast<int64_t>(PAGE_SIZE) - 1) >> PAGE_SHIFT;
    delta = pages - cg->zswap_charged;
    cg->zswap_charged = pages;
  }
  if (delta == 0) return;
  const int64_t usage = cg->usage.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta > 0) mem_cgroup_note_peak(cg, usage);
}

void mem_cgroup_count_zswap(Machine& m, uint16_t id, MemcgZswapEvent ev) {
  MemCgroup* cg = mem_cgroup_from_id(m, id);
  if (!cg) return;
  std::atomic<uint64_t>& c = ev == MemcgZswapEvent::kIn    ? cg->ev_zswpin
                             : ev == MemcgZswapEvent::kOut ? cg->ev_zswpout
                                                           : cg->ev_zswpwb;
  c.fetch_add(1, std::memory_order_relaxed);
}

bool mem_cgroup_read(const MemCgroup* cg, std::string_view file, std::string* out) {
  auto pages = [](int64_t v) { return static_cast<uint64_t>(v < 0 ? 0 : v) << PAGE_SHIFT; };
  if (file == "memory.current") {
    *out = fmt::format("{}\n", pages(cg->usage.load()));
  } else if (file == "memory.peak") {
    *out = fmt::format("{}\n", pages(cg->peak.load()));
  } else if (file == "memory.swap.current") {
    *out = fmt::format("{}\n", pages(cg->swap_usage.load()));
  } else if (file == "memory.swap.max") {
    *out = limit_text(cg->swap_max.load());
  } else if (file == "memory.swap.events") {
    *out =
        fmt::format("high 0\nmax {}\nfail {}\n", cg->ev_swap_max.load(), cg->ev_swap_fail.load());
  } else if (file == "memory.zswap.current") {
    *out = fmt::format("{}\n", std::max<int64_t>(cg->zswap_bytes.load(), 0));
  } else if (file == "memory.zswap.max") {
    *out = limit_text(cg->zswap_max.load());
  } else if (file == "memory.zswap.writeback") {
    *out = cg->zswap_writeback.load() ? "1\n" : "0\n";
  } else if (file == "memory.high") {
    *out = limit_text(cg->high.load());
  } else if (file == "memory.max") {
    *out = limit_text(cg->max.load());
  } else if (file == "memory.events") {
    *out = fmt::format("low 0\nhigh {}\nmax {}\noom {}\noom_kill {}\noom_group_kill 0\n",
                       cg->ev_high.load(), cg->ev_max.load(), cg->ev_oom.load(),
                       cg->ev_oom_kill.load());
  } else if (file == "memory.stat") {
    // The LRU sizes and reclaim events summed over the group's lruvecs.
    uint64_t nr[NR_LRU_LISTS] = {}, scan = 0, steal = 0, act = 0, deact = 0, refill = 0;
    uint64_t ws_refault[2] = {}, ws_activate[2] = {}, ws_restore[2] = {};
    for (const auto& lv : cg->lruvec) {
      for (unsigned l = 0; l < NR_LRU_LISTS; ++l) nr[l] += lv->size(l);
      scan += lv->pgscan.load();
      steal += lv->pgsteal.load();
      act += lv->pgactivate.load();
      deact += lv->pgdeactivate.load();
      refill += lv->pgrefill.load();
      for (unsigned t = 0; t < 2; ++t) {
        ws_refault[t] += lv->workingset_refault[t].load();
        ws_activate[t] += lv->workingset_activate[t].load();
        ws_restore[t] += lv->workingset_restore[t].load();
      }
    }
    const uint64_t anon = nr[LRU_INACTIVE_ANON] + nr[LRU_ACTIVE_ANON];
    // memory_stat_format()'s order (mm/memcontrol.c), the items mmkit keeps.
    *out = fmt::format(
        "anon {}\nfile {}\nshmem {}\nzswap {}\nzswapped {}\nfile_mapped {}\nfile_dirty {}\n"
        "file_writeback {}\n"
        "swapcached {}\ninactive_anon {}\n"
        "active_anon {}\ninactive_file {}\nactive_file {}\nunevictable {}\n"
        "workingset_refault_anon {}\nworkingset_refault_file {}\nworkingset_activate_anon {}\n"
        "workingset_activate_file {}\nworkingset_restore_anon {}\nworkingset_restore_file {}\n"
        "workingset_nodereclaim 0\npgscan {}\npgsteal {}\npgrefill {}\npgactivate {}\n"
        "pgdeactivate {}\nzswpin {}\nzswpout {}\nzswpwb {}\n",
        anon << PAGE_SHIFT, (nr[LRU_INACTIVE_FILE] + nr[LRU_ACTIVE_FILE]) << PAGE_SHIFT,
        pages(cg->nr_shmem.load()), std::max<int64_t>(cg->zswap_bytes.load(), 0),
        pages(cg->nr_zswapped.load()), pages(cg->nr_file_mapped.load()),
        pages(cg->nr_file_dirty.load()), pages(cg->nr_writeback.load()),
        pages(cg->nr_swapcached.load()), nr[LRU_INACTIVE_ANON] << PAGE_SHIFT,
        nr[LRU_ACTIVE_ANON] << PAGE_SHIFT, nr[LRU_INACTIVE_FILE] << PAGE_SHIFT,
        nr[LRU_ACTIVE_FILE] << PAGE_SHIFT, nr[LRU_UNEVICTABLE] << PAGE_SHIFT, ws_refault[0],
        ws_refault[1], ws_activate[0], ws_activate[1], ws_restore[0], ws_restore[1], scan, steal,
        refill, act, deact, cg->ev_zswpin.load(), cg->ev_zswpout.load(), cg->ev_zswpwb.load());
  } else {
    out->clear();
    return false;
  }
  return true;
}

}  // namespace mmkit
