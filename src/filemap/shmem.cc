// shmem: swap-backed files in the page cache (mm/shmem.c). The memory of
// memfd_create() files and of shared anonymous mappings (shmem_zero_setup's
// "/dev/zero" file) lives here.
//
// A shmem inode has no host file. Its index holds, per page offset, the page
// (PG_swapbacked as well as PG_filecache, so it sits on the anonymous LRU
// lists and reclaim swaps it) or, once reclaim has sent the page to swap,
// the page's swap entry as a value entry. That entry holds one swap_map
// reference, as a swap PTE does.
//
//   reclaim:  shmem_writepage() swaps the index entry for a swap entry and
//             moves the page to the swap cache; reclaim writes and frees it
//             there as it does an anonymous page.
//   a fault, read or write on a swap entry: the page is read back (or found
//             in the swap cache), leaves the swap cache, takes its slot in
//             the index again and is dirty (its only copy); the slot goes.
//   a hole:   a read returns zeros without a page; a fault or a write
//             brings in a zeroed page. Such a page stays clean until
//             written, and reclaim drops a clean one (the hole reads as
//             zeros again).
//
// shmem pages are dirty without NR_FILE_DIRTY (no writeback to a file), and
// count in NR_SHMEM and NR_FILE_PAGES (meminfo's Shmem, within Cached).
#include <fcntl.h>

#include <shared_mutex>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "filemap/filemap_internal.h"
#include "memcg/lru.h"
#include "memcg/memcg_state.h"
#include "memcg/workingset.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap.h"

namespace mmkit {
namespace {

// shmem_get_folio()'s sgp_type: what a missing page means.
enum class Sgp {
  kRead,   // a hole stays a hole (null, *err 0)
  kCache,  // a hole gets a new zeroed page (faults, writes)
};

// shmem_swapin_folio(): the page of swap entry `v` at `index` back in the
// index, locked, with a reference. Null with *err: -EAGAIN when the entry
// changed meanwhile (look again), -ENOMEM or -EIO.
Page* shmem_swapin(Machine& m, Inode& inode, uint64_t index, uintptr_t v, MemCgroup* cg,
                   bool* major, int* err) {
  AddressSpace& as = inode.i_data;
  const SwpEntry e{radix_to_swp_entry(v)};
  auto still_there = [&] {
    SpinGuard g(as.i_pages_lock);
    return as.i_pages.load(index) == v;
  };
  // Charged to the group the slot was charged to, as an anonymous swap-in.
  const SwapChargeFn charge = [&](Page* p, SwpEntry se, bool readahead) {
    const uint16_t id = swap_cgroup_id(m, se);
    MemCgroup* owner = id ? memcg_state(m).group(id) : nullptr;
    return mem_cgroup_charge(m, p, owner ? owner : cg, readahead) == 0;
  };
  bool read = false;
  Page* page = swapin_readahead(m, e, false, charge, &read);
  if (!page) {
    *err = still_there() ? -ENOMEM : -EAGAIN;
    return nullptr;
  }
  lock_page(page);
  wait_on_page_writeback(page);
  bool moved = false;
  std::shared_lock<std::shared_mutex> held(fs_state(m).shmem_swap_lock);
  if (page->test(PG_swapcache) && page->private_once() == e.val) {
    SpinGuard g(as.i_pages_lock);
    if (as.i_pages.load(index) == v) {
      get_page(page);  // the page cache's reference
      page->index = index;
      page->set_mapping_once(&as);
      page->set_atomic(PG_filecache);
      as.i_pages.store(index, reinterpret_cast<uintptr_t>(page));
      as.nrpages.fetch_add(1, std::memory_order_relaxed);
      inode.nrswapped.fetch_sub(1, std::memory_order_relaxed);
      moved = true;
    }
  }
  if (!moved) {
    held.unlock();
    unlock_page(page);
    put_page(m, page);
    *err = -EAGAIN;
    return nullptr;
  }
  m.mod_node_page_state(page, NodeStat::NR_FILE_PAGES, 1);
  mod_lruvec_page_state(m, page, NodeStat::NR_SHMEM, 1);
  // The slot goes: the swap cache's hold, then the index's reference. The
  // page is now the only copy of its data.
  delete_from_swap_cache(m, page);
  swap_free(m, e);
  held.unlock();
  page->set_atomic(PG_dirty);
  *major = read;
  return page;
}

// shmem_get_folio(): the page at `index`, locked, with a reference.
Page* shmem_get_page(Machine& m, Inode& inode, uint64_t index, MemCgroup* cg, Sgp sgp, bool* major,
                     int* err) {
  AddressSpace& as = inode.i_data;
  *err = 0;
  for (;;) {
    uintptr_t v = 0;
    {
      SpinGuard g(as.i_pages_lock);
      v = as.i_pages.load(index);
      if (v && !is_shadow(v)) get_page(reinterpret_cast<Page*>(v));
    }
    if (v && !is_shadow(v)) {
      Page* page = reinterpret_cast<Page*>(v);
      lock_page(page);
      if (page_mapping(page) == &as && page->index == index) return page;
      unlock_page(page);  // swapped out or truncated meanwhile
      put_page(m, page);
      continue;
    }
    if (v) {
      Page* page = shmem_swapin(m, inode, index, v, cg, major, err);
      if (page || *err != -EAGAIN) return page;
      *err = 0;
      continue;
    }
    if (sgp == Sgp::kRead) return nullptr;
    Page* page = alloc_page(m, GFP_HIGHUSER_MOVABLE | __GFP_ZERO);
    if (!page) {
      *err = -ENOMEM;
      return nullptr;
    }
    page->set_atomic(PG_swapbacked);
    page->set_atomic(PG_uptodate);
    page->set_atomic(PG_locked);
    const int e = add_to_page_cache(m, as, page, index, cg);
    if (e == 0) return page;
    page->clear_atomic(PG_locked);
    put_page(m, page);
    if (e != -EEXIST) {
      *err = e;
      return nullptr;
    }
  }
}

char* page_data(Machine& m, const Page* page) {
  return m.phys_window(m.page_to_pfn(page));
}

}  // namespace

Inode* shmem_file_setup(Machine& m, std::string_view name, uint64_t size, uint64_t charged,
                        void (*unacct)(Machine&, int64_t)) {
  FsState& st = fs_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  Inode* inode = shmem_inode_new(st, name, size);
  inode->shmem_charged = charged;
  inode->shmem_unacct = unacct;
  iget(inode);
  return inode;
}

Page* shmem_fault(Machine& m, Inode& inode, uint64_t pgoff, MemCgroup* cg, bool* major, int* err) {
  *major = false;
  if (pgoff >= (inode.i_size.load(std::memory_order_acquire) + PAGE_SIZE - 1) >> PAGE_SHIFT) {
    *err = -EFAULT;  // VM_FAULT_SIGBUS
    return nullptr;
  }
  Page* page = shmem_get_page(m, inode, pgoff, cg, Sgp::kCache, major, err);
  if (page && page->index << PAGE_SHIFT >= inode.i_size.load(std::memory_order_acquire)) {
    // Truncated under us: the page came back past the new end.
    unlock_page(page);
    put_page(m, page);
    *err = -EFAULT;
    return nullptr;
  }
  return page;
}

int64_t shmem_read(Machine& m, FileTable& ft, File* f, char* buf, uint64_t count, uint64_t pos) {
  Inode& inode = *f->inode;
  int64_t done = 0;
  while (count) {
    const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
    if (pos >= isize) break;
    const uint64_t off = pos & (PAGE_SIZE - 1);
    const uint64_t n = std::min({PAGE_SIZE - off, count, isize - pos});
    bool major = false;
    int err = 0;
    Page* page = shmem_get_page(m, inode, pos >> PAGE_SHIFT, ft.memcg, Sgp::kRead, &major, &err);
    if (err) return done ? done : err;
    if (page) {
      std::memcpy(buf + done, page_data(m, page) + off, n);
      unlock_page(page);
      mark_page_accessed(m, page);
      put_page(m, page);
    } else {
      std::memset(buf + done, 0, n);  // a hole
    }
    done += static_cast<int64_t>(n);
    pos += n;
    count -= n;
  }
  return done;
}

int64_t shmem_write(Machine& m, FileTable& ft, File* f, const char* buf, uint64_t count,
                    uint64_t pos) {
  Inode& inode = *f->inode;
  int64_t done = 0;
  while (count) {
    const uint64_t off = pos & (PAGE_SIZE - 1);
    const uint64_t n = std::min(PAGE_SIZE - off, count);
    bool major = false;
    int err = 0;
    Page* page = shmem_get_page(m, inode, pos >> PAGE_SHIFT, ft.memcg, Sgp::kCache, &major, &err);
    if (!page) return done ? done : err;
    std::memcpy(page_data(m, page) + off, buf + done, n);
    page->set_atomic(PG_dirty);
    if (pos + n > inode.i_size.load(std::memory_order_relaxed))
      inode.i_size.store(pos + n, std::memory_order_release);
    unlock_page(page);
    mark_page_accessed(m, page);
    put_page(m, page);
    done += static_cast<int64_t>(n);
    pos += n;
    count -= n;
  }
  return done;
}

void shmem_truncate(Machine& m, Inode& inode, uint64_t first) {
  AddressSpace& as = inode.i_data;
  for (;;) {
    Page* page = nullptr;
    // Swap entries go at once: the index's reference is dropped, and the
    // swap-cache page with it when nothing else holds the slot.
    std::vector<SwpEntry> freed;
    // The layer's state is already gone when its teardown truncates.
    std::shared_lock<std::shared_mutex> held;
    if (FsState* st = fs_state_if(m))
      held = std::shared_lock<std::shared_mutex>(st->shmem_swap_lock);
    {
      SpinGuard g(as.i_pages_lock);
      uint64_t index = first;
      uintptr_t v;
      while ((v = as.i_pages.find(&index, ~uint64_t{0})) && is_shadow(v)) {
        freed.push_back(SwpEntry{radix_to_swp_entry(v)});
        as.i_pages.erase(index);
      }
      inode.nrswapped.fetch_sub(freed.size(), std::memory_order_relaxed);
      if (v) {
        page = reinterpret_cast<Page*>(v);
        get_page(page);
      }
    }
    for (SwpEntry e : freed) free_swap_and_cache(m, e);
    if (held) held.unlock();
    if (!page) return;
    lock_page(page);
    wait_on_page_writeback(page);
    if (page_mapping(page) == &as) delete_from_page_cache(m, page);
    unlock_page(page);
    put_page(m, page);
  }
}

void shmem_truncate_size(Machine& m, Inode& inode, uint64_t length) {
  const uint64_t first = (length + PAGE_SIZE - 1) >> PAGE_SHIFT;
  unmap_mapping_pages(m, inode.i_data, first);
  shmem_truncate(m, inode, first);
  unmap_mapping_pages(m, inode.i_data, first);
  if (!(length & (PAGE_SIZE - 1))) return;
  // The cut page, from swap if it is there (SGP_READ: a hole stays one).
  bool major = false;
  int err = 0;
  Page* page = shmem_get_page(m, inode, length >> PAGE_SHIFT, nullptr, Sgp::kRead, &major, &err);
  if (!page) return;
  const uint64_t off = length & (PAGE_SIZE - 1);
  std::memset(page_data(m, page) + off, 0, PAGE_SIZE - off);
  unlock_page(page);
  put_page(m, page);
}

bool shmem_writepage(Machine& m, Page* page) {
  AddressSpace* as = page_mapping(page);
  if (!as || !as->host->shmem) return false;
  Inode& inode = *as->host;
  // A slot (SWAP_HAS_CACHE) and the swap cache first, then the index's own
  // reference to the slot, then the index entry: a lookup that finds the
  // swap entry finds the page in the swap cache.
  if (!add_to_swap(m, page, page_memcg(m, page)->id)) return false;
  const SwpEntry e{page->private_once()};
  std::shared_lock<std::shared_mutex> held(fs_state(m).shmem_swap_lock);
  swap_duplicate(m, e);
  {
    SpinGuard g(as->i_pages_lock);
    as->i_pages.store(page->index, swp_to_radix_entry(e.val));
    as->nrpages.fetch_sub(1, std::memory_order_relaxed);
    inode.nrswapped.fetch_add(1, std::memory_order_relaxed);
    page->clear_atomic(PG_filecache);
    page->set_mapping_once(nullptr);
  }
  mod_lruvec_page_state(m, page, NodeStat::NR_SHMEM, -1);
  m.mod_node_page_state(page, NodeStat::NR_FILE_PAGES, -1);
  put_page(m, page);  // the page cache's reference (the swap cache has its own)
  return true;
}

uint64_t shmem_partial_swap_usage(Inode& inode, uint64_t start, uint64_t end) {
  uint64_t swapped = 0;
  SpinGuard g(inode.i_data.i_pages_lock);
  for (uint64_t i = start; i < end; ++i) {
    const uintptr_t v = inode.i_data.i_pages.find(&i, end - 1);
    if (!v) break;
    swapped += is_shadow(v);
  }
  return swapped;
}

uint64_t shmem_swap_usage(Inode& inode, uint64_t pgoff, uint64_t pages) {
  const uint64_t swapped = inode.nrswapped.load(std::memory_order_relaxed);
  if (!swapped) return 0;
  if (!pgoff && pages << PAGE_SHIFT >= inode.i_size.load(std::memory_order_relaxed)) return swapped;
  return shmem_partial_swap_usage(inode, pgoff, pgoff + pages);
}

ShmemSwapSnapshot shmem_swap_snapshot(Machine& m) {
  ShmemSwapSnapshot snap;
  FsState* st = fs_state_if(m);
  if (!st) return snap;
  snap.fs_lock = std::unique_lock<std::mutex>(st->lock);
  snap.swap_lock = std::unique_lock<std::shared_mutex>(st->shmem_swap_lock);
  for (auto& inode : st->shmem_inodes) {
    SpinGuard g(inode->i_data.i_pages_lock);
    inode->i_data.i_pages.for_each([&](uint64_t, uintptr_t v) {
      if (is_shadow(v)) snap.entries.push_back(radix_to_swp_entry(v));
    });
  }
  return snap;
}

int shmem_unuse(Machine& m, unsigned type) {
  FsState* st = fs_state_if(m);
  if (!st) return 0;
  std::vector<Inode*> inodes;
  {
    std::lock_guard<std::mutex> g(st->lock);
    for (auto& inode : st->shmem_inodes) {
      iget(inode.get());
      inodes.push_back(inode.get());
    }
  }
  int rc = 0;
  for (Inode* inode : inodes) {
    std::vector<uint64_t> indices;
    {
      SpinGuard g(inode->i_data.i_pages_lock);
      inode->i_data.i_pages.for_each([&](uint64_t index, uintptr_t v) {
        if (is_shadow(v) && swp_type(SwpEntry{radix_to_swp_entry(v)}) == type)
          indices.push_back(index);
      });
    }
    for (uint64_t index : indices) {
      if (rc) break;
      bool major = false;
      int err = 0;
      Page* page = shmem_get_page(m, *inode, index, nullptr, Sgp::kRead, &major, &err);
      if (page) {
        unlock_page(page);
        put_page(m, page);
      } else if (err) {
        rc = -ENOMEM;
      }
    }
  }
  std::lock_guard<std::mutex> g(st->lock);
  for (Inode* inode : inodes) iput(*st, inode);
  return rc;
}

}  // namespace mmkit
