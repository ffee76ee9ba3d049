// posix_fadvise() (mm/fadvise.c generic_fadvise): what a program tells the
// kernel about its use of a file range. DONTNEED is the one that changes
// the cache: the range's dirty pages are written back and its clean,
// unmapped pages dropped, so a stream that will not come back does not push
// other memory out. See filemap.h.
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <mutex>

#include "filemap/filemap_internal.h"

namespace mmkit {

int sys_fadvise(Machine& m, FileTable& ft, int fd, int64_t offset, int64_t len, int advice) {
  File* f = fget(ft, fd);
  if (!f) return -EBADF;
  int err = 0;
  Inode& inode = *f->inode;
  // The last byte of the range: len 0, or a range past LLONG_MAX, runs to
  // the end of any file.
  const auto off = static_cast<uint64_t>(offset);
  uint64_t endbyte = off + static_cast<uint64_t>(len);
  if (!len || endbyte > static_cast<uint64_t>(LLONG_MAX))
    endbyte = static_cast<uint64_t>(LLONG_MAX);
  else
    --endbyte;
  if (offset < 0 || len < 0) {
    err = -EINVAL;
  } else if (inode.shmem) {
    // tmpfs has no backing device to read ahead from or write back to:
    // every valid advice is accepted and changes nothing.
    if (advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE) err = -EINVAL;
  } else {
    switch (advice) {
      case POSIX_FADV_NORMAL:
      case POSIX_FADV_RANDOM:  // FMODE_RANDOM: no readahead
      case POSIX_FADV_SEQUENTIAL: {
        std::lock_guard<std::mutex> g(f->f_pos_lock);  // the readahead state's lock
        f->ra.ra_pages = advice == POSIX_FADV_NORMAL   ? VM_READAHEAD_PAGES
                         : advice == POSIX_FADV_RANDOM ? 0
                                                       : 2 * VM_READAHEAD_PAGES;
        break;
      }
      case POSIX_FADV_NOREUSE:
        break;
      case POSIX_FADV_WILLNEED: {
        // force_page_cache_readahead() over the range, clipped to i_size.
        const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
        if (!isize || off >= isize) break;
        const uint64_t first = off >> PAGE_SHIFT;
        const uint64_t last = std::min(endbyte, isize - 1) >> PAGE_SHIFT;
        do_page_cache_ra(m, inode, first, last - first + 1, 0, ft.memcg);
        break;
      }
      case POSIX_FADV_DONTNEED: {
        // Whole pages only: a partial first page is skipped, and a partial
        // last one unless the range ends at the end of the file.
        const uint64_t first = (off + PAGE_SIZE - 1) >> PAGE_SHIFT;
        uint64_t last = endbyte >> PAGE_SHIFT;
        const uint64_t isize = inode.i_size.load(std::memory_order_acquire);
        if ((endbyte & (PAGE_SIZE - 1)) != PAGE_SIZE - 1 && endbyte + 1 != isize) {
          if (last == 0) break;
          --last;
        }
        if (last < first) break;
        // __filemap_fdatawrite_range(): the dirty pages go to the host
        // file first (mmkit writes them now), so they can be dropped too;
        // a write error leaves them dirty and cached.
        if (mapping_can_writeback(inode.i_data)) writeback_range(m, inode, first, last);
        invalidate_mapping_pages(m, inode.i_data, first, last);
        break;
      }
      default:
        err = -EINVAL;
    }
  }
  fput_file(m, f);
  return err;
}

}  // namespace mmkit
