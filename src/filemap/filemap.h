// Files and the page cache (mm/filemap.c, mm/readahead.c, mm/truncate.c,
// fs/read_write.c, fs/open.c, fs/sync.c).
//
// A machine has one file system rooted in a host directory (the config's
// `[fs] root`, or a private temporary directory). A file's data lives in its
// host file, and every access goes through the page cache: each inode has an
// address_space, an index from page offset to the page that caches it (or to
// the shadow entry an evicted page left behind, memcg/workingset.h).
//
//   sys_open / sys_close / sys_unlink       open file descriptions in a
//                                           process's FileTable
//   sys_read / sys_write / sys_pread /      copy between a caller's buffer
//   sys_pwrite / sys_lseek                  and page-cache pages
//   sys_fsync / sys_fdatasync / sys_sync    write dirty pages to the host file
//   sys_ftruncate                           i_size, the cached pages past it
//   sys_fadvise                             posix_fadvise: DONTNEED drops a
//                                           range's clean cache, WILLNEED reads it
//   drop_caches(m, 1|2|3)                   /proc/sys/vm/drop_caches
//
// Page-cache pages are file pages as Linux's: not PG_swapbacked, mapping the
// inode's AddressSpace, index the page offset, PG_uptodate once they hold
// the file's data, PG_dirty until written back (PG_writeback while the host
// write runs). They are charged to the opener's memory cgroup and sit on its
// file LRU lists, where reclaim finds them: a clean page is dropped (leaving
// a shadow entry), a dirty one written back first.
//
// The buffers of read and write are the caller's host memory (the kernel's
// kernel_read/kernel_write): a simulated process's copy_to_user into its own
// address space is the caller's business.
//
// Locking: the file system's lock (names, inode table) is taken before an
// inode's rwsem (i_rwsem, writers and truncate; reads take none), which is
// taken before a page's PG_locked, which is taken before the i_pages lock
// (a spinlock guarding the index). Host I/O runs under PG_locked (reads) or
// with PG_writeback (writes) of the page concerned only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/spinlock.h"
#include "base/xarray.h"
#include "phys/machine.h"

namespace mmkit {

struct MemCgroup;
struct Inode;

// VM_READAHEAD_PAGES (include/linux/mm.h): 128 KiB.
inline constexpr unsigned VM_READAHEAD_PAGES = (128 * 1024) / PAGE_SIZE;
// mm/filemap.c: misses beyond hits after which mmap read-around stops.
inline constexpr unsigned MMAP_LOTSAMISS = 100;

// struct address_space: the page cache of one inode.
struct AddressSpace {
  Inode* host = nullptr;
  SpinLock i_pages_lock;
  // index -> Page* (a reference held) or a shadow entry (bit 0 set).
  XArray i_pages;
  std::atomic<uint64_t> nrpages{0};
  std::atomic<uint64_t> nrdirty{0};  // pages with PG_dirty (check())
  // i_mmap: the VMAs mapping this file (the vm layer's VmArea pointers),
  // for the reverse map of file pages and truncate's unmapping.
  std::mutex i_mmap_lock;
  std::set<void*> i_mmap;
};

struct Inode {
  uint64_t ino = 0;
  std::string name;  // path below the root, no leading '/'
  int host_fd = -1;
  std::atomic<uint64_t> i_size{0};
  std::shared_mutex i_rwsem;  // inode_lock: writes, truncate, fsync's size
  AddressSpace i_data;
  // When the inode's first dirty page since it was last clean was dirtied
  // (CLOCK_MONOTONIC ns; 0: clean): what dirty_expire_centisecs ages.
  std::atomic<uint64_t> dirtied_when{0};
  // file_ra_state.mmap_miss: page faults that missed the cache less those
  // that found it (and pages fault-around mapped), at most 10 x
  // MMAP_LOTSAMISS; above MMAP_LOTSAMISS a miss reads only its own page.
  // Linux keeps it per open file; mmkit's VMAs map inodes, so per inode.
  std::atomic<unsigned> mmap_miss{0};
  // A shmem (tmpfs) inode (shmem.cc): no host file; its pages are
  // swap-backed, and a value entry in its index is the swap entry of a
  // page that went to swap (never a shadow: those stay in the swap cache).
  bool shmem = false;
  std::atomic<uint64_t> nrswapped{0};  // shmem_inode_info.swapped
  // shmem_acct_size(): pages charged to vm_committed_as for the inode's
  // size, given back through `unacct` when the inode goes.
  uint64_t shmem_charged = 0;
  void (*shmem_unacct)(Machine& m, int64_t pages) = nullptr;
  // Guarded by the file system's lock.
  unsigned opens = 0;     // open file descriptions
  unsigned pins = 0;      // the flusher's and sync's holds (__iget)
  bool unlinked = false;  // gone from the namespace; freed at the last close
};

// struct file_ra_state (include/linux/fs.h): the readahead window.
struct FileRaState {
  uint64_t start = 0;       // first page of the current window
  unsigned size = 0;        // pages in it
  unsigned async_size = 0;  // start the next window when this many remain
  unsigned ra_pages = VM_READAHEAD_PAGES;
  uint64_t prev_pos = ~uint64_t{0};  // byte after the last read (-1: none)
};

// An open file description (struct file).
struct File {
  Inode* inode = nullptr;
  int flags = 0;  // O_ACCMODE bits and O_APPEND
  std::mutex f_pos_lock;
  uint64_t pos = 0;
  FileRaState ra;
  std::atomic<unsigned> refs{1};  // fds pointing here (dup across fork)
};

// A process's descriptor table (struct files_struct).
struct FileTable {
  MemCgroup* memcg = nullptr;  // whom page-cache pages are charged to (null: root)
  std::mutex lock;
  std::vector<File*> fds;  // null: a free descriptor
  FileTable() = default;
  FileTable(const FileTable&) = delete;
  FileTable& operator=(const FileTable&) = delete;
};

// --- the system calls (negative errno on failure, as the kernel returns) -------
// flags: O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND.
int sys_open(Machine& m, FileTable& ft, std::string_view path, int flags);
int sys_close(Machine& m, FileTable& ft, int fd);
int sys_unlink(Machine& m, std::string_view path);
int64_t sys_read(Machine& m, FileTable& ft, int fd, void* buf, uint64_t count);
int64_t sys_write(Machine& m, FileTable& ft, int fd, const void* buf, uint64_t count);
int64_t sys_pread(Machine& m, FileTable& ft, int fd, void* buf, uint64_t count, uint64_t pos);
int64_t sys_pwrite(Machine& m, FileTable& ft, int fd, const void* buf, uint64_t count,
                   uint64_t pos);
int64_t sys_lseek(Machine& m, FileTable& ft, int fd, int64_t offset, int whence);
int sys_fsync(Machine& m, FileTable& ft, int fd);
int sys_fdatasync(Machine& m, FileTable& ft, int fd);
int sys_ftruncate(Machine& m, FileTable& ft, int fd, uint64_t length);
// posix_fadvise() (mm/fadvise.c), advice as <fcntl.h>'s POSIX_FADV_*: on
// [offset, offset + len) (len 0: to the end of the file), DONTNEED writes
// the dirty pages back and drops the clean, unmapped ones wholly inside the
// range; WILLNEED reads the range into the cache; NORMAL, SEQUENTIAL,
// RANDOM and NOREUSE set the file's readahead window as Linux does (twice
// the default, none, the default). A shmem file takes every advice and
// does nothing, as tmpfs. -EBADF, -EINVAL (negative offset or length, or
// unknown advice).
int sys_fadvise(Machine& m, FileTable& ft, int fd, int64_t offset, int64_t len, int advice);
// sync(): every dirty page of every inode written back. 0 or -EIO.
int sys_sync(Machine& m);
// /proc/sys/vm/drop_caches: 1 drops the clean, unmapped page cache, 2 the
// reclaimable slab (shrinkers), 3 both. -EINVAL for another value.
int drop_caches(Machine& m, int mode);

// memfd_create(): an fd (O_RDWR) on a new shmem inode of size 0, named
// "memfd:NAME" as /proc/<pid>/maps shows it. flags: MFD_CLOEXEC and
// MFD_ALLOW_SEALING are taken (and mean nothing here); -EINVAL for other
// flags or a name longer than 249 bytes.
inline constexpr unsigned MFD_CLOEXEC = 0x1;
inline constexpr unsigned MFD_ALLOW_SEALING = 0x2;
int sys_memfd_create(Machine& m, FileTable& ft, std::string_view name, unsigned flags);

// fork's dup of a table (the children share each File) and exit's close.
void files_dup(Machine& m, const FileTable& from, FileTable& to);
void files_close_all(Machine& m, FileTable& ft);

// The file system's root on the host, "" before the first use.
std::string fs_root(const Machine& m);
// The host path of a file of the machine (for tests and reports).
std::string fs_host_path(Machine& m, std::string_view path);

// --- writeback (mm/page-writeback.c, fs/fs-writeback.c) ---------------------------
// The dirty thresholds in pages: background (the flusher starts) and thresh
// (writers are throttled).
struct DirtyLimits {
  uint64_t background = 0;
  uint64_t thresh = 0;
};
// global_dirtyable_memory(): free pages less totalreserve_pages, plus the
// file LRU pages, less high memory's (vm_highmem_is_dirtyable is 0), plus 1.
uint64_t global_dirtyable_memory(const Machine& m);
// global_dirty_limits() / domain_dirty_limits(): from vm.dirty_bytes or
// vm.dirty_ratio of the dirtyable memory, and the same for background;
// background at most half of thresh when it would reach it.
DirtyLimits global_dirty_limits(const Machine& m);
// A memory cgroup's own dirty domain (cgroup writeback's mdtc,
// mm/page-writeback.c): its dirtyable memory is its file pages plus the
// smaller of its headroom below memory.max and the clean file pages of
// everyone else (mdtc_calc_avail); its limits are the global ratios of that
// (domain_dirty_limits; the _bytes forms turned into ratios of the global
// dirtyable memory, per PAGE_SIZE, rounded up); `dirty` counts its dirty
// pages and, with `writeback` (the throttling view; the flusher's leaves
// them out, on both sides), its writeback pages.
struct MemcgDirtyDomain {
  uint64_t avail = 0;
  uint64_t dirty = 0;
  DirtyLimits limits;
};
MemcgDirtyDomain memcg_dirty_domain(Machine& m, const MemCgroup* cg, bool writeback = true);
// wakeup_flusher_threads(): the machine's flusher writes every dirty page
// back now (reclaim's WB_REASON_VMSCAN).
void wakeup_flusher_threads(Machine& m);
// balance_dirty_pages_ratelimited(): after `cg` (null: the root) dirtied
// pages. While the machine's dirty pages, and the group's in its own
// domain, are under the midpoint of their two thresholds, the writer runs
// free; past it the flusher starts background writeback; over thresh in
// either domain the writer waits for it (a pause of at most 200 ms, then
// it goes on even if the flusher made no progress, so an I/O error cannot
// hang it).
void balance_dirty_pages(Machine& m, const MemCgroup* cg = nullptr);
// balance_dirty_pages_ratelimited() for one page written by write() or
// dirtied through a shared mapping: the calling thread looks at the limits
// once per 32 pages it dirtied (a task's first nr_dirtied_pause), once per
// 8 while the last look found a domain over its threshold (dirty_exceeded).
void balance_dirty_pages_ratelimited(Machine& m, const MemCgroup* cg);

// --- what file mappings use (vm/file_map.cc) ----------------------------------------
// PG_locked, as a sleeping lock (lock_page waits, yielding).
void lock_page(Page* page);
void unlock_page(Page* page);
bool trylock_page(Page* page);
// The inode of an open `fd`, pinned (it outlives an unlink while a VMA maps
// it), and the file's O_ACCMODE flags in *f_flags; null for a bad fd.
Inode* fget_inode(Machine& m, FileTable& ft, int fd, int* f_flags);
void inode_get(Machine& m, Inode* inode);  // another pin (a VMA's copy)
void inode_put(Machine& m, Inode* inode);  // drops a pin
// filemap_fault(): the uptodate page at `pgoff`, locked, with a reference;
// a miss reads around it (ra_pages centred on the fault, as
// do_sync_mmap_readahead does, unless mmap_miss says misses outnumber hits
// by MMAP_LOTSAMISS) and sets *major. Null with *err: -EFAULT
// past the end of the file (SIGBUS), -ENOMEM, -EIO.
Page* filemap_fault(Machine& m, Inode& inode, uint64_t pgoff, MemCgroup* cg, bool* major, int* err);
// folio_mark_dirty() of a page a PTE had dirty (zap, unmap, write fault):
// no page lock needed; a page truncated meanwhile is left alone.
bool filemap_dirty_mapped(Machine& m, Page* page);
// What the page cache needs of the page tables, registered by the vm layer
// when a file is first mapped: truncate unmaps pages from index `first` on
// in every VMA of `as` (unmap_mapping_range); writeback write-protects and
// cleans every PTE of a mapped page before it writes it (folio_mkclean),
// false when a page table was busy (the page stays dirty for later).
using UnmapMappingFn = void (*)(Machine& m, AddressSpace& as, uint64_t first);
using PageMkcleanFn = bool (*)(Machine& m, Page* page);
void set_mapping_ops(Machine& m, UnmapMappingFn unmap, PageMkcleanFn mkclean);
// msync(MS_SYNC)'s writeback of pages [first, last], then fdatasync of the
// host file (vfs_fsync_range); nothing for shmem. 0 or -EIO.
int filemap_write_range(Machine& m, Inode& inode, uint64_t first, uint64_t last);

// --- shmem (shmem.cc) ------------------------------------------------------------
// shmem_file_setup(): a new shmem inode of `size` bytes, pinned once (the
// caller's pin, dropped with inode_put). `charged` pages are given back
// through `unacct` when it goes (0 and null: nothing was charged).
Inode* shmem_file_setup(Machine& m, std::string_view name, uint64_t size, uint64_t charged,
                        void (*unacct)(Machine&, int64_t));
// shmem_fault(): the page at `pgoff`, locked, with a reference: the cached
// one, one read back from swap (*major), or a new zeroed one. Null with
// *err: -EFAULT past i_size (SIGBUS), -ENOMEM.
Page* shmem_fault(Machine& m, Inode& inode, uint64_t pgoff, MemCgroup* cg, bool* major, int* err);
// shmem_unuse(): every page of swap area `type` that a shmem inode holds
// comes back into its page cache (swapoff). 0 or -ENOMEM.
int shmem_unuse(Machine& m, unsigned type);
// shmem_partial_swap_usage(): how many of a shmem inode's indexes in
// [start, end) hold a swap entry (mm/shmem.c).
uint64_t shmem_partial_swap_usage(Inode& inode, uint64_t start, uint64_t end);
// shmem_swap_usage(): the pages in swap that a mapping of `pages` pages from
// `pgoff` covers; the inode's count when the mapping covers all of it.
uint64_t shmem_swap_usage(Inode& inode, uint64_t pgoff, uint64_t pages);
// For check(): the swap entries every shmem index holds (each one swap_map
// reference), with the file system's lock and shmem's swap changes held
// off while the snapshot lives, so the counts it is compared with stay.
struct ShmemSwapSnapshot {
  std::unique_lock<std::mutex> fs_lock;
  std::unique_lock<std::shared_mutex> swap_lock;
  std::vector<uint64_t> entries;  // swp_entry_t values
};
ShmemSwapSnapshot shmem_swap_snapshot(Machine& m);
// A shmem page in the page cache (swap-backed, unlike a file's).
inline bool page_is_shmem(const Page* page) {
  return page->test(PG_filecache) && page->test(PG_swapbacked) && page->mapping_once();
}

// --- what reclaim calls ----------------------------------------------------------
// A page-cache page (its mapping is an AddressSpace).
inline bool page_is_file_cache(const Page* page) {
  return page->test(PG_filecache) && page->mapping_once();
}
// pageout() of a locked, dirty page-cache page: written to the host file
// (PG_writeback while the write runs). 0, -EIO with the page dirty again,
// or -EAGAIN (still dirty, nothing written) when a page table mapping it
// was busy.
int filemap_writepage(Machine& m, Page* page);
// shmem_writepage() of a locked, dirty, unmapped shmem page: it gets a
// swap slot, its index entry becomes the swap entry, and it moves to the
// swap cache (dirty), where reclaim writes and frees it as an anonymous
// page. False when swap is full (the page stays).
bool shmem_writepage(Machine& m, Page* page);
// __remove_mapping() for a locked, clean, unmapped page-cache page whose only
// references are the cache's and the caller's: it leaves the cache, its
// slot keeping a shadow entry (workingset_eviction), and the caller's put
// frees it. False when someone else holds it or it is dirty.
bool filemap_remove_mapping(Machine& m, Page* page);

// The readahead window for a read of `req` pages at `index` (page_cache_sync_ra
// and page_cache_async_ra's arithmetic, mm/readahead.c): updates `ra` and
// returns the pages to read, [*start, *start + n), with the async marker at
// *start + n - ra.async_size. `marker` is true when `index` is a page that
// carried PG_readahead (the asynchronous case). Exposed for tests.
// With `as`, a random miss looks at the pages cached just before `index`
// (try_context_readahead): a run longer than the request is a sequential
// stream whose state was lost, and gets a window.
unsigned ondemand_readahead(FileRaState& ra, uint64_t index, unsigned req, bool marker,
                            uint64_t* start, AddressSpace* as = nullptr);

// page_cache_prev_miss() (mm/filemap.c): the highest index in
// [index - max_scan + 1, index] with no page (empty, or a value entry);
// index - max_scan when there is none, and ~0 when the range reaches below
// index 0 without a gap.
uint64_t page_cache_prev_miss(AddressSpace& as, uint64_t index, uint64_t max_scan);

// Proves the page cache's invariants: every cached page maps its
// AddressSpace at its index, is not swap-backed and has a reference; nrpages
// and nrdirty equal the pages and the PG_dirty pages; NR_FILE_PAGES,
// NR_FILE_DIRTY and NR_WRITEBACK equal the sums; no page past i_size.
// Other threads must be quiet. "" or the first violation.
std::string filemap_check(Machine& m);

}  // namespace mmkit
