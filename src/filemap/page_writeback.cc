// Dirty limits, writer throttling and the flusher (mm/page-writeback.c,
// fs/fs-writeback.c). See filemap.h.
//
// The flusher is one real thread per machine. It wakes every
// dirty_writeback_centisecs (never when that is 0) and writes back the
// inodes whose first dirty page is older than dirty_expire_centisecs
// (wb_check_old_data_flush); it runs at once when dirty pages pass the
// background threshold (wb_check_background_flush: until they are below
// it) or when reclaim asks for everything (WB_REASON_VMSCAN). Inodes are
// written oldest-dirtied first, at most MAX_WRITEBACK_PAGES per inode in a
// row, with the file system's lock dropped between inodes.
//
// Each memory cgroup is also a dirty domain of its own (cgroup writeback's
// mdtc): a writer is throttled when either the machine or its group is over
// its limit, and the background flusher runs while either is over its
// background threshold. mmkit has one flusher for all groups, which writes
// the oldest inodes whoever dirtied them (Linux's cgroup wb writes its own).
//
// Not modelled: per-device (bdi) limits, the dirty rate estimates behind
// Linux's proportional pauses (a writer over thresh simply waits for the
// flusher's next pass), and strictlimit.
#include <algorithm>
#include <chrono>

#include "filemap/filemap_internal.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

constexpr uint64_t MAX_WRITEBACK_PAGES = 1024;
constexpr auto kMaxPause = std::chrono::milliseconds(200);  // MAX_PAUSE (HZ / 5)

uint64_t node_pages(const Machine& m, NodeStat item) {
  return static_cast<uint64_t>(std::max<int64_t>(m.node_stat_sum(item), 0));
}

uint64_t nr_dirty(const Machine& m) {
  return node_pages(m, NodeStat::NR_FILE_DIRTY);
}

// domain_dirty_limits(): `ratio` and `bg_ratio` are per PAGE_SIZE of
// `avail`; the _bytes forms apply as they are to the global domain, and as
// ratios of the global dirtyable memory to a memcg's (`global_avail` != 0).
DirtyLimits domain_dirty_limits(const Machine& m, uint64_t avail, uint64_t global_avail) {
  uint64_t ratio = uint64_t{m.dirty_ratio} * PAGE_SIZE / 100;
  uint64_t bg_ratio = uint64_t{m.dirty_background_ratio} * PAGE_SIZE / 100;
  uint64_t bytes = m.dirty_bytes, bg_bytes = m.dirty_background_bytes;
  if (global_avail) {
    if (bytes) ratio = std::min((bytes + global_avail - 1) / global_avail, PAGE_SIZE);
    if (bg_bytes) bg_ratio = std::min((bg_bytes + global_avail - 1) / global_avail, PAGE_SIZE);
    bytes = bg_bytes = 0;
  }
  DirtyLimits d;
  d.thresh = bytes ? (bytes + PAGE_SIZE - 1) / PAGE_SIZE : ratio * avail / PAGE_SIZE;
  d.background = bg_bytes ? (bg_bytes + PAGE_SIZE - 1) / PAGE_SIZE : bg_ratio * avail / PAGE_SIZE;
  if (d.background >= d.thresh) d.background = d.thresh / 2;
  return d;
}

// dirty_freerun_ceiling(): the midpoint of the two thresholds.
uint64_t freerun_ceiling(const DirtyLimits& l) {
  return (l.thresh + l.background) / 2;
}

// wb_over_bg_thresh() for every domain: the machine's, or a group's own.
bool over_background(Machine& m) {
  if (nr_dirty(m) > global_dirty_limits(m).background) return true;
  for (const MemCgroup* cg : mem_cgroups(m)) {
    if (cg == root_mem_cgroup(m)) continue;
    // Dirty pages only, here and in the domain's sizes: writeback is
    // already under way (wb_over_bg_thresh).
    const MemcgDirtyDomain d = memcg_dirty_domain(m, cg, false);
    if (d.dirty > d.limits.background) return true;
  }
  return false;
}

// Writes up to `budget` dirty pages of an inode; the pages written.
uint64_t write_inode_pages(Machine& m, Inode& inode, uint64_t budget) {
  uint64_t written = 0;
  for (uint64_t index : dirty_indices(inode.i_data, 0, ~uint64_t{0})) {
    if (written >= budget) break;
    Page* page = find_get_page(inode.i_data, index);
    if (!page) continue;
    if (trylock_page(page)) {  // a locked page is someone's: the next pass
      if (page_mapping(page) == &inode.i_data && page->test(PG_dirty) &&
          filemap_writepage(m, page) == 0)
        ++written;
      unlock_page(page);
    }
    put_page(m, page);
  }
  // Still dirty (redirtied, or an error): it ages from now.
  if (inode.i_data.nrdirty.load(std::memory_order_relaxed))
    inode.dirtied_when.store(monotonic_ns(), std::memory_order_relaxed);
  else
    inode.dirtied_when.store(0, std::memory_order_relaxed);
  return written;
}

// One pass of wb_do_writeback(): `all` writes everything; `background`
// writes until dirty pages are below the background threshold; otherwise
// only the expired inodes are written.
void wb_do_writeback(FsState& st, bool all, bool background) {
  Machine& m = st.m;
  const uint64_t expire = uint64_t{m.dirty_expire_centisecs} * 10000000u;
  const uint64_t now = monotonic_ns();
  std::vector<std::pair<uint64_t, Inode*>> queue;  // (dirtied_when, inode), pinned
  {
    std::lock_guard<std::mutex> g(st.lock);
    st.for_each_inode([&](Inode& inode) {
      const uint64_t when = inode.dirtied_when.load(std::memory_order_relaxed);
      if (!inode.i_data.nrdirty.load(std::memory_order_relaxed)) return;
      if (!all && !background && (when == 0 || now - when < expire)) return;
      iget(&inode);
      queue.emplace_back(when, &inode);
    });
  }
  std::sort(queue.begin(), queue.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [when, inode] : queue) {
    const bool over = over_background(m);
    if (all || !background) {
      // Everything this inode had dirty when the pass began (pages dirtied
      // meanwhile wait for the next pass, so a busy writer cannot hold the
      // flusher here).
      uint64_t rounds = inode->i_data.nrdirty.load() / MAX_WRITEBACK_PAGES + 1;
      while (rounds-- && write_inode_pages(m, *inode, MAX_WRITEBACK_PAGES) == MAX_WRITEBACK_PAGES) {
      }
    } else if (over) {
      write_inode_pages(m, *inode, MAX_WRITEBACK_PAGES);
    }
    std::lock_guard<std::mutex> g(st.lock);
    iput(st, inode);
  }
}

FsState* live_fs(Machine& m) {
  return fs_state_if(m);
}

}  // namespace

uint64_t global_dirtyable_memory(const Machine& m) {
  uint64_t x = nr_free_pages(m);
  x -= std::min(x, totalreserve_pages(m));
  x += node_pages(m, NodeStat::NR_INACTIVE_FILE) + node_pages(m, NodeStat::NR_ACTIVE_FILE);
  // highmem_dirtyable_memory(): high memory's free pages above its high
  // watermark are not dirtyable (a dirty page must be in lowmem to be
  // written by a 32-bit kernel without a kmap).
  uint64_t high = 0;
  m.for_each_zone([&](const Zone& z) {
    if (z.kind != ZoneKind::HIGHMEM || !z.populated()) return;
    uint64_t n = static_cast<uint64_t>(std::max<int64_t>(z.nr_free(), 0));
    n -= std::min(n, z.high_wmark());
    high += n;
  });
  x -= std::min(high, x);
  return x + 1;
}

DirtyLimits global_dirty_limits(const Machine& m) {
  // Ratios are scaled by PAGE_SIZE first, as Linux does; the _bytes forms
  // are rounded up to pages.
  return domain_dirty_limits(m, global_dirtyable_memory(m), 0);
}

MemcgDirtyDomain memcg_dirty_domain(Machine& m, const MemCgroup* cg, bool writeback) {
  const MemcgWbStats s = mem_cgroup_wb_stats(cg);
  const uint64_t g_avail = global_dirtyable_memory(m);
  const uint64_t g_dirty = nr_dirty(m) + (writeback ? node_pages(m, NodeStat::NR_WRITEBACK) : 0);
  MemcgDirtyDomain d;
  d.dirty = s.dirty + (writeback ? s.writeback : 0);
  // mdtc_calc_avail(): the group may use its file pages and, of the room
  // below its limit, as much as other clean file pages could give it.
  const uint64_t clean = s.filepages - std::min(s.filepages, d.dirty);
  const uint64_t global_clean = g_avail - std::min(g_avail, g_dirty);
  const uint64_t other_clean = global_clean - std::min(global_clean, clean);
  d.avail = s.filepages + std::min(s.headroom, other_clean);
  d.limits = domain_dirty_limits(m, d.avail, g_avail);
  return d;
}

void flusher_run(FsState& st) {
  std::unique_lock<std::mutex> lk(st.wb_lock);
  while (!st.wb_stop) {
    const unsigned cs = st.m.dirty_writeback_centisecs;
    auto woken = [&] { return st.wb_stop || st.wb_all || st.wb_background; };
    if (cs)
      st.wb_wake.wait_for(lk, std::chrono::milliseconds(uint64_t{cs} * 10), woken);
    else
      st.wb_wake.wait(lk, woken);
    if (st.wb_stop) break;
    const bool all = std::exchange(st.wb_all, false);
    const bool background = std::exchange(st.wb_background, false);
    lk.unlock();
    {
      std::lock_guard<std::mutex> pass(st.wb_pass_lock);
      wb_do_writeback(st, all, background);
    }
    lk.lock();
    ++st.wb_rounds;
    st.wb_progress.notify_all();
  }
}

void wakeup_flusher_threads(Machine& m) {
  FsState* st = live_fs(m);
  if (!st) return;
  {
    std::lock_guard<std::mutex> g(st->wb_lock);
    st->wb_all = true;
  }
  st->wb_wake.notify_one();
}

void balance_dirty_pages(Machine& m, const MemCgroup* cg) {
  FsState* st = live_fs(m);
  if (!st) return;
  const DirtyLimits l = global_dirty_limits(m);
  const uint64_t dirty = nr_dirty(m) + node_pages(m, NodeStat::NR_WRITEBACK);
  // The group's own domain, for a group below the root (mdtc_valid()).
  const bool group = cg && cg != root_mem_cgroup(m);
  const MemcgDirtyDomain md = group ? memcg_dirty_domain(m, cg) : MemcgDirtyDomain{};
  if (dirty <= freerun_ceiling(l) && (!group || md.dirty <= freerun_ceiling(md.limits))) {
    st->dirty_exceeded.store(false, std::memory_order_relaxed);
    return;  // the freerun zone
  }
  std::unique_lock<std::mutex> lk(st->wb_lock);
  st->wb_background = true;
  st->wb_wake.notify_one();
  const bool exceeded = dirty > l.thresh || (group && md.dirty > md.limits.thresh);
  st->dirty_exceeded.store(exceeded, std::memory_order_relaxed);
  if (!exceeded) return;
  // Over the limit: wait for the flusher's pass (one pause at most).
  const uint64_t round = st->wb_rounds;
  st->wb_progress.wait_for(lk, kMaxPause, [&] { return st->wb_rounds > round || st->wb_stop; });
}

void balance_dirty_pages_ratelimited(Machine& m, const MemCgroup* cg) {
  // current->nr_dirtied: per thread, as Linux keeps it per task.
  static thread_local uint32_t nr_dirtied = 0;
  const FsState* st = live_fs(m);
  if (!st) return;
  const uint32_t ratelimit = st->dirty_exceeded.load(std::memory_order_relaxed) ? 8 : 32;
  if (++nr_dirtied < ratelimit) return;
  nr_dirtied = 0;
  balance_dirty_pages(m, cg);
}

}  // namespace mmkit
