// The page-cache index (mm/filemap.c, mm/truncate.c): lookups, insertion
// with workingset refaults, deletion with shadow entries, truncation and
// invalidation, and the layer's check(). See filemap.h.
//
// The index is an XArray (base/xarray.h) under a spinlock, as Linux's
// i_pages: a lookup takes its page reference under the lock, so a remover
// that holds the lock and sees exactly the references it expects knows no
// lookup can find the page any more.
#include <fmt/format.h>

#include <cerrno>
#include <map>
#include <thread>

#include "filemap/filemap_internal.h"
#include "memcg/lru.h"
#include "memcg/memcg_state.h"
#include "memcg/memcontrol.h"
#include "memcg/workingset.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap.h"

namespace mmkit {

void lock_page(Page* page) {
  while (page->test_and_set(PG_locked)) std::this_thread::yield();
}
bool trylock_page(Page* page) {
  return !page->test_and_set(PG_locked);
}
void unlock_page(Page* page) {
  page->clear_atomic(PG_locked);
}
void wait_on_page_writeback(Page* page) {
  while (page->test(PG_writeback)) std::this_thread::yield();
}

Page* find_get_page(AddressSpace& as, uint64_t index) {
  SpinGuard g(as.i_pages_lock);
  const uintptr_t v = as.i_pages.load(index);
  if (!v || is_shadow(v)) return nullptr;
  Page* page = reinterpret_cast<Page*>(v);
  get_page(page);  // the cache's reference keeps it above zero
  return page;
}

uint64_t page_cache_prev_miss(AddressSpace& as, uint64_t index, uint64_t max_scan) {
  SpinGuard g(as.i_pages_lock);
  uint64_t i = index;
  for (uint64_t n = 0; n < max_scan; ++n, --i) {
    const uintptr_t v = as.i_pages.load(i);
    if (!v || is_shadow(v)) return i;
    if (i == 0) return ~uint64_t{0};
  }
  return i;  // index - max_scan: no gap in the range
}

int add_to_page_cache(Machine& m, AddressSpace& as, Page* page, uint64_t index, MemCgroup* cg,
                      bool readahead) {
  const ChargeMode mode = readahead ? ChargeMode::kNoRetry : ChargeMode::kNormal;
  if (mem_cgroup_charge(m, page, cg, mode) != 0) return -ENOMEM;
  page->index = index;
  page->set_mapping_once(&as);
  page->set_atomic(PG_filecache);
  uintptr_t shadow = 0;
  {
    SpinGuard g(as.i_pages_lock);
    const uintptr_t old = as.i_pages.load(index);
    // A shmem index's value entries are swap entries, never shadows.
    if (old && (as.host->shmem || !is_shadow(old))) {
      page->clear_atomic(PG_filecache);
      page->set_mapping_once(nullptr);
      return -EEXIST;  // the caller's put uncharges it
    }
    shadow = old;
    get_page(page);  // the cache's reference
    as.i_pages.store(index, reinterpret_cast<uintptr_t>(page));
    as.nrpages.fetch_add(1, std::memory_order_relaxed);
  }
  m.mod_node_page_state(page, NodeStat::NR_FILE_PAGES, 1);
  if (as.host->shmem) mod_lruvec_page_state(m, page, NodeStat::NR_SHMEM, 1);
  // A file page competes with the anon lists only while swap can free them.
  if (shadow) workingset_refault(m, page, shadow, swap_free_pages(m) > 0);
  lru_cache_add(m, page);
  return 0;
}

Page* find_or_create_page(Machine& m, AddressSpace& as, uint64_t index, MemCgroup* cg,
                          bool* fresh) {
  *fresh = false;
  for (;;) {
    if (Page* page = find_get_page(as, index)) return page;
    Page* page = alloc_page(m, GFP_HIGHUSER_MOVABLE);
    if (!page) return nullptr;
    page->set_atomic(PG_locked);
    const int err = add_to_page_cache(m, as, page, index, cg);
    if (err == 0) {
      *fresh = true;
      return page;
    }
    page->clear_atomic(PG_locked);
    put_page(m, page);
    if (err != -EEXIST) return nullptr;
  }
}

namespace {

// Takes a locked page out of the index, leaving `shadow` (0: nothing).
void unlink_page(Machine& m, AddressSpace& as, Page* page, uintptr_t shadow) {
  bool was_dirty = false;
  {
    // PG_dirty and the mapping change under the index lock, which is what
    // filemap_dirty_mapped() dirties a mapped page under.
    SpinGuard g(as.i_pages_lock);
    as.i_pages.store(page->index, shadow);
    as.nrpages.fetch_sub(1, std::memory_order_relaxed);
    // shmem pages are dirty without being counted (no writeback to a file).
    was_dirty = page->test_and_clear(PG_dirty) && mapping_can_writeback(as);
    if (was_dirty) as.nrdirty.fetch_sub(1, std::memory_order_relaxed);
    page->clear_atomic(PG_filecache);
    page->set_mapping_once(nullptr);
  }
  if (was_dirty) mod_lruvec_page_state(m, page, NodeStat::NR_FILE_DIRTY, -1);
  m.mod_node_page_state(page, NodeStat::NR_FILE_PAGES, -1);
  if (as.host->shmem) mod_lruvec_page_state(m, page, NodeStat::NR_SHMEM, -1);
}

}  // namespace

void delete_from_page_cache(Machine& m, Page* page) {
  unlink_page(m, *page_mapping(page), page, 0);
  put_page(m, page);  // the cache's reference
}

bool filemap_remove_mapping(Machine& m, Page* page) {
  AddressSpace* as = page_mapping(page);
  if (!as) return false;
  {
    // Under the index lock no lookup can take a reference: exactly the
    // cache's and the caller's means nobody else uses the page.
    SpinGuard g(as->i_pages_lock);
    if (page->ref_count() != 2 || page->mapcount.load(std::memory_order_acquire) != 0 ||
        page->test(PG_dirty) || page->test(PG_writeback))
      return false;
    // A clean shmem page was never written (writes, swap-ins and dirty
    // PTEs dirty it): its slot becomes a hole again, which reads as zeros.
    as->i_pages.store(page->index, as->host->shmem ? 0 : workingset_eviction(m, page));
    as->nrpages.fetch_sub(1, std::memory_order_relaxed);
    page->clear_atomic(PG_filecache);
    page->set_mapping_once(nullptr);
  }
  m.mod_node_page_state(page, NodeStat::NR_FILE_PAGES, -1);
  if (as->host->shmem) mod_lruvec_page_state(m, page, NodeStat::NR_SHMEM, -1);
  put_page(m, page);  // the cache's reference; the caller's is the last
  return true;
}

void truncate_inode_pages(Machine& m, AddressSpace& as, uint64_t first) {
  for (;;) {
    Page* page = nullptr;
    {
      SpinGuard g(as.i_pages_lock);
      uint64_t index = first;
      uintptr_t v;
      while ((v = as.i_pages.find(&index, ~uint64_t{0})) && is_shadow(v)) as.i_pages.erase(index);
      if (!v) return;
      page = reinterpret_cast<Page*>(v);
      get_page(page);
    }
    lock_page(page);
    wait_on_page_writeback(page);
    if (page_mapping(page) == &as) delete_from_page_cache(m, page);
    unlock_page(page);
    put_page(m, page);
  }
}

uint64_t invalidate_mapping_pages(Machine& m, AddressSpace& as, uint64_t first, uint64_t last) {
  std::vector<Page*> pages;
  {
    SpinGuard g(as.i_pages_lock);
    for (uint64_t index = first; const uintptr_t v = as.i_pages.find(&index, last); ++index) {
      if (!is_shadow(v)) {
        Page* page = reinterpret_cast<Page*>(v);
        get_page(page);
        pages.push_back(page);
      }
      if (index == last) break;
    }
  }
  uint64_t freed = 0;
  for (Page* page : pages) {
    // mapping_evict_folio(): clean, unmapped, not locked; no shadow is left
    // (an invalidation is not a reclaim). A page someone holds a reference
    // to may go: a writer re-checks the mapping once it has the page lock.
    if (trylock_page(page)) {
      if (page_mapping(page) == &as && !page->test(PG_dirty) && !page->test(PG_writeback) &&
          page->mapcount.load(std::memory_order_acquire) == 0) {
        unlink_page(m, as, page, 0);
        put_page(m, page);  // the cache's reference
        ++freed;
      }
      unlock_page(page);
    }
    put_page(m, page);
  }
  return freed;
}

std::vector<uint64_t> dirty_indices(AddressSpace& as, uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  SpinGuard g(as.i_pages_lock);
  for (uint64_t index = first; const uintptr_t v = as.i_pages.find(&index, last); ++index) {
    if (!is_shadow(v) && reinterpret_cast<Page*>(v)->test(PG_dirty)) out.push_back(index);
    if (index == last) break;
  }
  return out;
}

std::string filemap_check(Machine& m) {
  FsState* st = fs_state_if(m);
  int64_t file_pages = 0, shmem_pages = 0, dirty = 0, writeback = 0, mapped = 0;
  struct GroupPages {
    int64_t dirty = 0, writeback = 0, shmem = 0, mapped = 0;
  };
  std::map<const MemCgroup*, GroupPages> by_group;
  std::string err;
  auto fail = [&](std::string what) {
    if (err.empty()) err = std::move(what);
  };
  auto check_inode = [&](Inode& inode) {
    AddressSpace& as = inode.i_data;
    SpinGuard pg(as.i_pages_lock);
    uint64_t pages = 0, nrdirty = 0, swapped = 0;
    const uint64_t size = inode.i_size.load();
    if (std::string xa = as.i_pages.check(); !xa.empty())
      fail(fmt::format("inode {}: {}", inode.ino, xa));
    as.i_pages.for_each([&](uint64_t index, uintptr_t v) {
      if (is_shadow(v)) {
        if (inode.shmem) {
          const SwpEntry e{radix_to_swp_entry(v)};
          if (swap_count(m, e) == 0)
            fail(fmt::format("shmem inode {} index {}: swap entry {:#x} has no count", inode.ino,
                             index, e.val));
          ++swapped;
        }
        return;
      }
      const Page* page = reinterpret_cast<const Page*>(v);
      ++pages;
      GroupPages& group = by_group[page_memcg(m, page)];
      if (page->test(PG_dirty) && !inode.shmem) {
        ++nrdirty;
        ++group.dirty;
      }
      if (page->test(PG_writeback)) {
        ++writeback;
        ++group.writeback;
      }
      if (inode.shmem) ++group.shmem;
      if (page->mapcount.load(std::memory_order_relaxed) > 0) {
        ++mapped;
        ++group.mapped;
      }
      if (page->mapping_once() != &as || page->index != index)
        fail(fmt::format("inode {} index {}: the page says mapping {} index {}", inode.ino, index,
                         page->mapping_once(), page->index));
      if (!page->test(PG_filecache))
        fail(fmt::format("inode {} index {}: no PG_filecache", inode.ino, index));
      // A shmem page moving to or from swap (shmem_writepage, shmem_swapin)
      // is in the swap cache and the index at once, under its page lock.
      const bool moving = inode.shmem && page->test(PG_locked);
      if (page->test(PG_swapbacked) != inode.shmem || (page->test(PG_swapcache) && !moving))
        fail(fmt::format("inode {} index {}: PG_swapbacked {} PG_swapcache {} in {} page cache",
                         inode.ino, index, page->test(PG_swapbacked), page->test(PG_swapcache),
                         inode.shmem ? "a shmem" : "a file's"));
      if (page->ref_count() < 1)
        fail(fmt::format("inode {} index {}: refcount {}", inode.ino, index, page->ref_count()));
      if (page->test(PG_buddy)) fail(fmt::format("inode {} index {}: free", inode.ino, index));
      if (index << PAGE_SHIFT >= size && !page->test(PG_locked))
        fail(fmt::format("inode {} index {}: past i_size {}", inode.ino, index, size));
    });
    if (pages != as.nrpages.load())
      fail(fmt::format("inode {}: nrpages {} but {} pages", inode.ino, as.nrpages.load(), pages));
    if (nrdirty != as.nrdirty.load())
      fail(fmt::format("inode {}: nrdirty {} but {} dirty pages", inode.ino, as.nrdirty.load(),
                       nrdirty));
    if (swapped != inode.nrswapped.load())
      fail(fmt::format("shmem inode {}: nrswapped {} but {} swap entries", inode.ino,
                       inode.nrswapped.load(), swapped));
    file_pages += static_cast<int64_t>(pages);
    if (inode.shmem) shmem_pages += static_cast<int64_t>(pages);
    dirty += static_cast<int64_t>(nrdirty);
  };
  // The flusher is the machine's own thread: the check waits for its pass
  // to end and keeps the next one from starting.
  std::unique_lock<std::mutex> pass;
  if (st) pass = std::unique_lock<std::mutex>(st->wb_pass_lock);
  if (st) {
    std::lock_guard<std::mutex> g(st->lock);
    st->for_each_inode(check_inode);
    for (auto& inode : st->shmem_inodes) check_inode(*inode);
  }
  file_pages += m.node_stat_sum(NodeStat::NR_SWAPCACHE);
  if (m.node_stat_sum(NodeStat::NR_FILE_PAGES) != file_pages)
    fail(fmt::format("NR_FILE_PAGES {} but {} page-cache and swap-cache pages",
                     m.node_stat_sum(NodeStat::NR_FILE_PAGES), file_pages));
  if (m.node_stat_sum(NodeStat::NR_SHMEM) != shmem_pages)
    fail(fmt::format("NR_SHMEM {} but {} shmem pages", m.node_stat_sum(NodeStat::NR_SHMEM),
                     shmem_pages));
  if (m.node_stat_sum(NodeStat::NR_FILE_MAPPED) != mapped)
    fail(fmt::format("NR_FILE_MAPPED {} but {} mapped page-cache pages",
                     m.node_stat_sum(NodeStat::NR_FILE_MAPPED), mapped));
  if (m.node_stat_sum(NodeStat::NR_FILE_DIRTY) != dirty)
    fail(fmt::format("NR_FILE_DIRTY {} but {} dirty pages",
                     m.node_stat_sum(NodeStat::NR_FILE_DIRTY), dirty));
  if (m.node_stat_sum(NodeStat::NR_WRITEBACK) != writeback)
    fail(fmt::format("NR_WRITEBACK {} but {} pages under writeback",
                     m.node_stat_sum(NodeStat::NR_WRITEBACK), writeback));
  if (memcg_state_if(m)) {
    int64_t swapcached = 0;
    for (const MemCgroup* cg : mem_cgroups(m)) {
      swapcached += cg->nr_swapcached.load();
      const GroupPages g = by_group[cg];
      if (cg->nr_file_dirty.load() != g.dirty || cg->nr_writeback.load() != g.writeback)
        fail(fmt::format("memcg {}: file_dirty {} file_writeback {} but {} and {} pages",
                         mem_cgroup_name(cg), cg->nr_file_dirty.load(), cg->nr_writeback.load(),
                         g.dirty, g.writeback));
      if (cg->nr_shmem.load() != g.shmem || cg->nr_file_mapped.load() != g.mapped)
        fail(fmt::format("memcg {}: shmem {} file_mapped {} but {} and {} pages",
                         mem_cgroup_name(cg), cg->nr_shmem.load(), cg->nr_file_mapped.load(),
                         g.shmem, g.mapped));
    }
    if (swapcached != m.node_stat_sum(NodeStat::NR_SWAPCACHE))
      fail(fmt::format("the groups' swapcached sum to {} but NR_SWAPCACHE is {}", swapcached,
                       m.node_stat_sum(NodeStat::NR_SWAPCACHE)));
  }
  return err;
}

}  // namespace mmkit
