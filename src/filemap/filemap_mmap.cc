// The page cache's side of file mappings (mm/filemap.c filemap_fault,
// do_sync_mmap_readahead; mm/page-writeback.c folio_mark_dirty): pinning
// a mapped inode, the fault's page, dirtying from a PTE, and the hook
// truncate unmaps through. The page tables are the vm layer's
// (vm/file_map.cc). See filemap.h.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "filemap/filemap_internal.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"

namespace mmkit {

Inode* fget_inode(Machine& m, FileTable& ft, int fd, int* f_flags) {
  File* f = fget(ft, fd);
  if (!f) return nullptr;
  Inode* inode = f->inode;
  *f_flags = f->flags;
  {
    FsState& st = fs_state(m);
    std::lock_guard<std::mutex> g(st.lock);
    iget(inode);
  }
  fput_file(m, f);
  return inode;
}

void inode_get(Machine& m, Inode* inode) {
  FsState& st = fs_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  iget(inode);
}

void inode_put(Machine& m, Inode* inode) {
  FsState& st = fs_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  iput(st, inode);
}

Page* filemap_fault(Machine& m, Inode& inode, uint64_t pgoff, MemCgroup* cg, bool* major,
                    int* err) {
  if (inode.shmem) return shmem_fault(m, inode, pgoff, cg, major, err);
  AddressSpace& as = inode.i_data;
  *major = false;
  for (;;) {
    const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
    if (pgoff >= (isize + PAGE_SIZE - 1) >> PAGE_SHIFT) {
      *err = -EFAULT;  // VM_FAULT_SIGBUS
      return nullptr;
    }
    Page* page = find_get_page(as, pgoff);
    if (!page) {
      // do_sync_mmap_readahead(): read around the fault, ra_pages centred
      // on it, the marker a quarter from the end; not when this file's
      // faults miss much more often than they hit (it would only hurt).
      unsigned miss = inode.mmap_miss.load(std::memory_order_relaxed);
      if (miss < MMAP_LOTSAMISS * 10) inode.mmap_miss.store(++miss, std::memory_order_relaxed);
      if (miss <= MMAP_LOTSAMISS) {
        const uint64_t ra = VM_READAHEAD_PAGES;
        const uint64_t start = pgoff > ra / 2 ? pgoff - ra / 2 : 0;
        do_page_cache_ra(m, inode, start, ra, ra / 4, cg);
      }
      *major = true;
      page = find_get_page(as, pgoff);
      if (!page) {
        bool fresh = false;
        page = find_or_create_page(m, as, pgoff, cg, &fresh);
        if (!page) {
          *err = -ENOMEM;
          return nullptr;
        }
        if (fresh) {
          if (read_page_from_host(m, page) != 0) {
            unlock_page(page);
            put_page(m, page);
            *err = -EIO;
            return nullptr;
          }
          return page;  // locked, uptodate
        }
      }
    }
    if (!*major) {
      // do_async_mmap_readahead(): a hit pays a miss back.
      const unsigned miss = inode.mmap_miss.load(std::memory_order_relaxed);
      if (miss) inode.mmap_miss.store(miss - 1, std::memory_order_relaxed);
    }
    lock_page(page);
    if (page_mapping(page) != &as) {  // truncated or reclaimed meanwhile
      unlock_page(page);
      put_page(m, page);
      continue;
    }
    if (!page->test(PG_uptodate) && read_page_from_host(m, page) != 0) {
      unlock_page(page);
      put_page(m, page);
      *err = -EIO;
      return nullptr;
    }
    page->clear_atomic(PG_readahead);
    return page;
  }
}

bool filemap_dirty_mapped(Machine& m, Page* page) {
  if (!page->test(PG_filecache)) return false;  // anonymous
  AddressSpace* as = page_mapping(page);
  if (!as || page->test(PG_dirty)) return false;
  if (!mapping_can_writeback(*as)) {  // shmem: dirty, uncounted
    page->set_atomic(PG_dirty);
    return false;
  }
  bool first = false;
  {
    // Under the index lock the page cannot leave the cache (unlink_page
    // clears PG_dirty and the mapping under it).
    SpinGuard g(as->i_pages_lock);
    if (page_mapping(page) != as || page->test_and_set(PG_dirty)) return false;
    first = as->nrdirty.fetch_add(1, std::memory_order_relaxed) == 0;
  }
  if (first) {
    uint64_t clean = 0;
    as->host->dirtied_when.compare_exchange_strong(clean, monotonic_ns(),
                                                   std::memory_order_relaxed);
  }
  mod_lruvec_page_state(m, page, NodeStat::NR_FILE_DIRTY, 1);
  m.mod_node_page_state(page, NodeStat::NR_DIRTIED, 1);
  return true;
}

void set_mapping_ops(Machine& m, UnmapMappingFn unmap, PageMkcleanFn mkclean) {
  FsState& st = fs_state(m);
  st.unmap_mapping.store(unmap, std::memory_order_release);
  st.page_mkclean.store(mkclean, std::memory_order_release);
}

int filemap_write_range(Machine& m, Inode& inode, uint64_t first, uint64_t last) {
  if (inode.shmem) return 0;  // tmpfs: nothing to write to
  // vfs_fsync_range(..., datasync): the range written back, then the host
  // file's data made durable (a mapping cannot change its size).
  int err = writeback_range(m, inode, first, last);
  if (fdatasync(inode.host_fd) != 0 && !err) err = -EIO;
  return err;
}

void unmap_mapping_pages(Machine& m, AddressSpace& as, uint64_t first) {
  FsState* st = fs_state_if(m);
  if (!st) return;
  if (UnmapMappingFn fn = st->unmap_mapping.load(std::memory_order_acquire)) fn(m, as, first);
}

}  // namespace mmkit
