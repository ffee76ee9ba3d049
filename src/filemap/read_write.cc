// Reading and writing through the page cache (mm/filemap.c filemap_read,
// generic_perform_write; mm/page-writeback.c; fs/sync.c; mm/truncate.c):
// read, write, their positional forms, lseek, fsync, ftruncate, and the
// writeback of one page that fsync and reclaim share. See filemap.h.
//
// A page's bytes past i_size are always zero: pages are filled from the
// host file (zeros past its end), a truncate zeroes the tail of the page
// it cuts, and writeback writes only the bytes below i_size. So the host
// file is at most i_size long and equals the cache wherever a page is
// clean.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "filemap/filemap_internal.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"

namespace mmkit {
namespace {

char* page_data(Machine& m, const Page* page) {
  return m.phys_window(m.page_to_pfn(page));
}

bool readable(const File* f) {
  return (f->flags & O_ACCMODE) != O_WRONLY;
}
bool writable(const File* f) {
  return (f->flags & O_ACCMODE) != O_RDONLY;
}

// Host pread/pwrite of a whole range, retrying short transfers; the bytes
// done, or -errno.
int64_t host_io(int fd, char* buf, uint64_t len, uint64_t off, bool write) {
  uint64_t done = 0;
  while (done < len) {
    const ssize_t n = write ? pwrite(fd, buf + done, len - done, static_cast<off_t>(off + done))
                            : pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;  // end of file (reads)
    done += static_cast<uint64_t>(n);
  }
  return static_cast<int64_t>(done);
}

// A cached, uptodate page of the file for a read at `index`, with a
// reference; readahead as Linux's filemap_get_pages(). Null and *err when
// the page cannot be had.
Page* get_read_page(Machine& m, File* f, uint64_t index, uint64_t last_index, MemCgroup* cg,
                    int* err) {
  Inode& inode = *f->inode;
  AddressSpace& as = inode.i_data;
  for (;;) {
    Page* page = find_get_page(as, index);
    if (!page) {
      // page_cache_sync_ra(): a miss starts (or continues) a window.
      uint64_t start = 0;
      const auto req = static_cast<unsigned>(std::min<uint64_t>(last_index - index + 1, 1u << 20));
      if (f->ra.ra_pages) {
        const unsigned n = ondemand_readahead(f->ra, index, req, false, &start, &as);
        do_page_cache_ra(m, inode, start, n, f->ra.async_size, cg);
        page = find_get_page(as, index);
      }
      if (!page) {
        bool fresh = false;
        page = find_or_create_page(m, as, index, cg, &fresh);
        if (!page) {
          *err = -ENOMEM;
          return nullptr;
        }
        if (fresh) {
          const int e = read_page_from_host(m, page);
          unlock_page(page);
          if (e) {
            put_page(m, page);
            *err = e;
            return nullptr;
          }
          return page;
        }
      }
    } else if (page->test(PG_readahead) && page->test_and_clear(PG_readahead)) {
      // page_cache_async_ra(): the marker: read the next window now.
      uint64_t start = 0;
      const auto req = static_cast<unsigned>(std::min<uint64_t>(last_index - index + 1, 1u << 20));
      const unsigned n = ondemand_readahead(f->ra, index, req, true, &start);
      do_page_cache_ra(m, inode, start, n, f->ra.async_size, cg);
    }
    if (page->test(PG_uptodate)) return page;
    // Being read (readahead holds the lock), or a read that failed.
    lock_page(page);
    if (page_mapping(page) != &as) {  // truncated meanwhile: look again
      unlock_page(page);
      put_page(m, page);
      continue;
    }
    int e = 0;
    if (!page->test(PG_uptodate)) e = read_page_from_host(m, page);
    unlock_page(page);
    if (e) {
      put_page(m, page);
      *err = e;
      return nullptr;
    }
    return page;
  }
}

int64_t do_read(Machine& m, FileTable& ft, File* f, char* buf, uint64_t count, uint64_t pos) {
  if (f->inode->shmem) return shmem_read(m, ft, f, buf, count, pos);
  Inode& inode = *f->inode;
  int64_t done = 0;
  while (count) {
    const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
    if (pos >= isize) break;
    const uint64_t end = std::min(isize, pos + count);
    const uint64_t index = pos >> PAGE_SHIFT;
    int err = 0;
    Page* page = get_read_page(m, f, index, (end - 1) >> PAGE_SHIFT, ft.memcg, &err);
    if (!page) return done ? done : err;
    // i_size again, after the page: a truncate may have cut it meanwhile.
    const uint64_t isize2 = inode.i_size.load(std::memory_order_acquire);
    const uint64_t off = pos & (PAGE_SIZE - 1);
    uint64_t n = std::min({PAGE_SIZE - off, count, isize2 > pos ? isize2 - pos : 0});
    if (n) std::memcpy(buf + done, page_data(m, page) + off, n);
    // folio_mark_accessed() once per page a read moves through.
    if (f->ra.prev_pos == ~uint64_t{0} || (f->ra.prev_pos - 1) >> PAGE_SHIFT != index)
      mark_page_accessed(m, page);
    put_page(m, page);
    if (!n) break;
    done += static_cast<int64_t>(n);
    pos += n;
    count -= n;
    f->ra.prev_pos = pos;
  }
  return done;
}

int64_t do_write(Machine& m, FileTable& ft, File* f, const char* buf, uint64_t count,
                 uint64_t pos) {
  if (f->inode->shmem) return shmem_write(m, ft, f, buf, count, pos);
  Inode& inode = *f->inode;
  AddressSpace& as = inode.i_data;
  int64_t done = 0;
  while (count) {
    const uint64_t index = pos >> PAGE_SHIFT;
    const uint64_t off = pos & (PAGE_SIZE - 1);
    const uint64_t n = std::min(PAGE_SIZE - off, count);
    bool fresh = false;
    Page* page = find_or_create_page(m, as, index, ft.memcg, &fresh);
    if (!page) return done ? done : -ENOMEM;
    if (!fresh) {
      lock_page(page);
      if (page_mapping(page) != &as) {  // dropped meanwhile: look again
        unlock_page(page);
        put_page(m, page);
        continue;
      }
    }
    // Stable pages: the host write of the old contents finishes first.
    wait_on_page_writeback(page);
    if (!page->test(PG_uptodate) && n != PAGE_SIZE) {
      const int err = read_page_from_host(m, page);
      if (err) {
        unlock_page(page);
        put_page(m, page);
        return done ? done : err;
      }
    }
    std::memcpy(page_data(m, page) + off, buf + done, n);
    page->set_atomic(PG_uptodate);
    set_page_dirty(m, page);
    if (pos + n > inode.i_size.load(std::memory_order_relaxed))
      inode.i_size.store(pos + n, std::memory_order_release);
    unlock_page(page);
    mark_page_accessed(m, page);
    put_page(m, page);
    done += static_cast<int64_t>(n);
    pos += n;
    count -= n;
    // generic_perform_write(): a look at the dirty limits per page copied,
    // ratelimited, with i_rwsem held as Linux holds the inode lock (the
    // flusher never takes it), so one large write is throttled as it goes.
    balance_dirty_pages_ratelimited(m, ft.memcg);
  }
  return done;
}

// The cached page that a new i_size of `length` cuts is zeroed past it
// (after any write-back of it, so no old bytes reach the host later).
void zero_page_tail(Machine& m, Inode& inode, uint64_t length) {
  if (!(length & (PAGE_SIZE - 1))) return;
  Page* page = find_get_page(inode.i_data, length >> PAGE_SHIFT);
  if (!page) return;
  lock_page(page);
  wait_on_page_writeback(page);
  if (page_mapping(page) == &inode.i_data && page->test(PG_uptodate)) {
    const uint64_t off = length & (PAGE_SIZE - 1);
    std::memset(page_data(m, page) + off, 0, PAGE_SIZE - off);
  }
  unlock_page(page);
  put_page(m, page);
}

}  // namespace

void set_page_dirty(Machine& m, Page* page) {
  if (page->test_and_set(PG_dirty)) return;
  AddressSpace& as = *page_mapping(page);
  // __mark_inode_dirty(): the inode's age starts with its first dirty page.
  if (as.nrdirty.fetch_add(1, std::memory_order_relaxed) == 0) {
    uint64_t clean = 0;
    as.host->dirtied_when.compare_exchange_strong(clean, monotonic_ns(), std::memory_order_relaxed);
  }
  mod_lruvec_page_state(m, page, NodeStat::NR_FILE_DIRTY, 1);
  m.mod_node_page_state(page, NodeStat::NR_DIRTIED, 1);
}

int read_page_from_host(Machine& m, Page* page) {
  Inode& inode = *page_mapping(page)->host;
  char* data = page_data(m, page);
  const int64_t got = host_io(inode.host_fd, data, PAGE_SIZE, page->index << PAGE_SHIFT, false);
  if (got < 0) return -EIO;
  std::memset(data + got, 0, PAGE_SIZE - static_cast<uint64_t>(got));
  page->set_atomic(PG_uptodate);
  m.count_event(VmEvent::PGPGIN, PAGE_SIZE / 1024);
  return 0;
}

int filemap_writepage(Machine& m, Page* page) {
  AddressSpace& as = *page_mapping(page);
  Inode& inode = *as.host;
  if (!page->test(PG_dirty)) return 0;
  // folio_clear_dirty_for_io(): a mapped page's PTEs are write-protected
  // and cleaned first, so a write after this faults and dirties it again.
  if (page->mapcount.load(std::memory_order_acquire) > 0) {
    FsState* st = fs_state_if(m);
    PageMkcleanFn mkclean = st ? st->page_mkclean.load(std::memory_order_acquire) : nullptr;
    if (mkclean && !mkclean(m, page)) return -EAGAIN;
  }
  if (!page->test_and_clear(PG_dirty)) return 0;
  as.nrdirty.fetch_sub(1, std::memory_order_relaxed);
  mod_lruvec_page_state(m, page, NodeStat::NR_FILE_DIRTY, -1);
  page->set_atomic(PG_writeback);
  mod_lruvec_page_state(m, page, NodeStat::NR_WRITEBACK, 1);
  // Only the bytes below i_size reach the host file.
  const uint64_t off = page->index << PAGE_SHIFT;
  const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
  const uint64_t len = isize > off ? std::min(PAGE_SIZE, isize - off) : 0;
  const int64_t wrote = len ? host_io(inode.host_fd, page_data(m, page), len, off, true) : 0;
  page->clear_atomic(PG_writeback);
  mod_lruvec_page_state(m, page, NodeStat::NR_WRITEBACK, -1);
  if (wrote != static_cast<int64_t>(len)) {
    set_page_dirty(m, page);  // nothing is lost: it stays dirty in memory
    return -EIO;
  }
  m.count_event(VmEvent::PGPGOUT, PAGE_SIZE / 1024);
  m.mod_node_page_state(page, NodeStat::NR_WRITTEN, 1);
  // folio_end_writeback(): a page reclaim wanted goes to the tail of its
  // inactive list, where the next scan frees it.
  if (page->test(PG_reclaim) && page->test_and_clear(PG_reclaim)) folio_rotate_reclaimable(m, page);
  return 0;
}

int writeback_range(Machine& m, Inode& inode, uint64_t first, uint64_t last) {
  if (inode.shmem) return 0;  // shmem's pages go to swap, not to a file
  int err = 0;
  for (uint64_t index : dirty_indices(inode.i_data, first, last)) {
    Page* page = find_get_page(inode.i_data, index);
    if (!page) continue;
    for (;;) {
      lock_page(page);
      int e = 0;
      if (page_mapping(page) == &inode.i_data && page->test(PG_dirty))
        e = filemap_writepage(m, page);
      unlock_page(page);
      // A page table busy for a moment (a fault, an munmap): fsync waits.
      if (e == -EAGAIN) {
        std::this_thread::yield();
        continue;
      }
      if (e && !err) err = e;
      break;
    }
    put_page(m, page);
  }
  return err;
}

int fsync_inode(Machine& m, Inode& inode, bool datasync) {
  if (inode.shmem) return 0;  // shmem_file_operations' noop_fsync
  int err = writeback_range(m, inode, 0, ~uint64_t{0});
  {
    // The host file's length follows i_size (writes that extended the file
    // past its last written-back page, truncates that raced writeback).
    std::shared_lock<std::shared_mutex> g(inode.i_rwsem);
    struct stat sb;
    const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
    if (fstat(inode.host_fd, &sb) == 0 && static_cast<uint64_t>(sb.st_size) != isize &&
        ftruncate(inode.host_fd, static_cast<off_t>(isize)) != 0 && !err)
      err = -EIO;
  }
  if ((datasync ? fdatasync(inode.host_fd) : fsync(inode.host_fd)) != 0 && !err) err = -EIO;
  return err;
}

int sys_ftruncate_file(Machine& m, File* f, uint64_t length) {
  if (!writable(f)) return -EINVAL;
  if (length > (uint64_t{1} << 62)) return -EFBIG;
  Inode& inode = *f->inode;
  std::unique_lock<std::shared_mutex> g(inode.i_rwsem);
  const uint64_t old = inode.i_size.load(std::memory_order_relaxed);
  inode.i_size.store(length, std::memory_order_release);
  if (inode.shmem) {
    if (length < old) shmem_truncate_size(m, inode, length);
    return 0;
  }
  if (length < old) {
    // truncate_pagecache(): whole pages past the end go, the page the new
    // end cuts is zeroed past it (and any write-back of it finishes first,
    // so no old bytes reach the host after its ftruncate below).
    // truncate_pagecache(): unmap, drop the pages, and unmap again for
    // pages a racing fault mapped between the two.
    const uint64_t first = (length + PAGE_SIZE - 1) >> PAGE_SHIFT;
    unmap_mapping_pages(m, inode.i_data, first);
    truncate_inode_pages(m, inode.i_data, first);
    unmap_mapping_pages(m, inode.i_data, first);
    zero_page_tail(m, inode, length);
  }
  if (ftruncate(inode.host_fd, static_cast<off_t>(length)) != 0) return -errno;
  return 0;
}

// --- the system calls ---------------------------------------------------------------

namespace {

// Runs `op` on the File of `fd` with a reference held.
template <class Op>
auto with_file(Machine& m, FileTable& ft, int fd, Op&& op) -> decltype(op(nullptr)) {
  File* f = fget(ft, fd);
  if (!f) return -EBADF;
  auto r = op(f);
  fput_file(m, f);
  return r;
}

constexpr uint64_t kMaxRw = 0x7ffff000;  // MAX_RW_COUNT

// The way back to user space: a call whose page-cache charges took the
// group over memory.high pays its sleep here, with no lock held.
int64_t return_to_user(Machine& m, const FileTable& ft, int64_t r) {
  mem_cgroup_handle_over_high(m, ft.memcg);
  return r;
}

}  // namespace

int64_t sys_read(Machine& m, FileTable& ft, int fd, void* buf, uint64_t count) {
  const int64_t r = with_file(m, ft, fd, [&](File* f) -> int64_t {
    if (!readable(f)) return -EBADF;
    std::lock_guard<std::mutex> g(f->f_pos_lock);
    const int64_t n = do_read(m, ft, f, static_cast<char*>(buf), std::min(count, kMaxRw), f->pos);
    if (n > 0) f->pos += static_cast<uint64_t>(n);
    return n;
  });
  return return_to_user(m, ft, r);
}

int64_t sys_pread(Machine& m, FileTable& ft, int fd, void* buf, uint64_t count, uint64_t pos) {
  const int64_t r = with_file(m, ft, fd, [&](File* f) -> int64_t {
    if (!readable(f)) return -EBADF;
    if (pos > (uint64_t{1} << 62)) return -EINVAL;
    std::lock_guard<std::mutex> g(f->f_pos_lock);  // the readahead state
    return do_read(m, ft, f, static_cast<char*>(buf), std::min(count, kMaxRw), pos);
  });
  return return_to_user(m, ft, r);
}

int64_t sys_write(Machine& m, FileTable& ft, int fd, const void* buf, uint64_t count) {
  const int64_t r = with_file(m, ft, fd, [&](File* f) -> int64_t {
    if (!writable(f)) return -EBADF;
    std::lock_guard<std::mutex> g(f->f_pos_lock);
    std::unique_lock<std::shared_mutex> w(f->inode->i_rwsem);
    if (f->flags & O_APPEND) f->pos = f->inode->i_size.load(std::memory_order_relaxed);
    const int64_t n =
        do_write(m, ft, f, static_cast<const char*>(buf), std::min(count, kMaxRw), f->pos);
    if (n > 0) f->pos += static_cast<uint64_t>(n);
    return n;
  });
  return return_to_user(m, ft, r);
}

int64_t sys_pwrite(Machine& m, FileTable& ft, int fd, const void* buf, uint64_t count,
                   uint64_t pos) {
  const int64_t r = with_file(m, ft, fd, [&](File* f) -> int64_t {
    if (!writable(f)) return -EBADF;
    if (pos > (uint64_t{1} << 62)) return -EINVAL;
    std::unique_lock<std::shared_mutex> w(f->inode->i_rwsem);
    // Linux's pwrite on an O_APPEND file appends, whatever pos says.
    if (f->flags & O_APPEND) pos = f->inode->i_size.load(std::memory_order_relaxed);
    const int64_t n =
        do_write(m, ft, f, static_cast<const char*>(buf), std::min(count, kMaxRw), pos);
    return n;
  });
  return return_to_user(m, ft, r);
}

int64_t sys_lseek(Machine& m, FileTable& ft, int fd, int64_t offset, int whence) {
  return with_file(m, ft, fd, [&](File* f) -> int64_t {
    std::lock_guard<std::mutex> g(f->f_pos_lock);
    int64_t base = 0;
    switch (whence) {
      case SEEK_SET:
        break;
      case SEEK_CUR:
        base = static_cast<int64_t>(f->pos);
        break;
      case SEEK_END:
        base = static_cast<int64_t>(f->inode->i_size.load(std::memory_order_acquire));
        break;
      default:
        return -EINVAL;
    }
    const int64_t pos = base + offset;
    if (pos < 0 || (offset > 0 && pos < base)) return -EINVAL;
    f->pos = static_cast<uint64_t>(pos);
    return pos;
  });
}

int sys_fsync(Machine& m, FileTable& ft, int fd) {
  return with_file(m, ft, fd, [&](File* f) { return fsync_inode(m, *f->inode, false); });
}

int sys_fdatasync(Machine& m, FileTable& ft, int fd) {
  return with_file(m, ft, fd, [&](File* f) { return fsync_inode(m, *f->inode, true); });
}

int sys_ftruncate(Machine& m, FileTable& ft, int fd, uint64_t length) {
  return with_file(m, ft, fd, [&](File* f) { return sys_ftruncate_file(m, f, length); });
}

}  // namespace mmkit
