// The filemap layer's per-machine state (Layer::kFilemap) and the helpers
// its files share: the page-cache index operations (page_cache.cc), page
// locking, dirty accounting, writeback of a range and reading a page in
// (read_write.cc).
#pragma once

#include <time.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "filemap/filemap.h"

namespace mmkit {

struct FsState final : LayerState {
  explicit FsState(Machine& m);
  ~FsState() override;

  Machine& m;
  std::string root;        // the host directory, no trailing '/'
  bool temporary = false;  // made by us: removed at teardown
  std::mutex lock;         // names, inode lifetimes, Inode::opens / unlinked
  std::map<std::string, std::unique_ptr<Inode>, std::less<>> names;
  std::vector<std::unique_ptr<Inode>> orphans;  // unlinked, still open
  // shmem inodes (memfds, shared anonymous mappings): nameless, live while
  // opened or pinned; not written back, synced or dropped by drop_caches.
  std::vector<std::unique_ptr<Inode>> shmem_inodes;
  // Held shared while a shmem index entry and its slot's count change
  // together (swap-out, swap-in, truncate), and exclusively by check() for
  // a still picture of them (shmem_swap_snapshot).
  std::shared_mutex shmem_swap_lock;
  std::set<File*> files;   // every open file description (freed at teardown if left open)
  uint64_t next_ino = 12;  // a fresh ext4's first free inode number

  // The flusher (one per machine: the bdi_writeback of its one device).
  std::thread flusher;
  std::mutex wb_lock;
  std::condition_variable wb_wake;      // the flusher waits here
  std::condition_variable wb_progress;  // throttled writers wait here
  bool wb_stop = false;
  bool wb_all = false;  // write everything (a wakeup_flusher_threads)
  bool wb_background = false;
  uint64_t wb_rounds = 0;  // passes done (a throttled writer waits for one)
  // The last balance_dirty_pages found a domain over its threshold
  // (wb->dirty_exceeded): ratelimited callers look more often.
  std::atomic<bool> dirty_exceeded{false};
  std::mutex wb_pass_lock;  // held by the flusher through a pass (check() waits it out)

  std::atomic<UnmapMappingFn> unmap_mapping{nullptr};  // set by the vm layer
  std::atomic<PageMkcleanFn> page_mkclean{nullptr};

  // Every live inode, named or orphaned (lock held).
  template <class F>
  void for_each_inode(F&& f) {
    for (auto& [name, ino] : names) f(*ino);
    for (auto& ino : orphans) f(*ino);
  }
};

FsState& fs_state(Machine& m);
// The flusher's body and the pins that keep an inode alive without an open.
void flusher_run(FsState& st);
void iget(Inode* inode);               // st.lock held
void iput(FsState& st, Inode* inode);  // st.lock held; may evict an unlinked inode
inline FsState* fs_state_if(const Machine& m) {
  return static_cast<FsState*>(m.layer_state(Layer::kFilemap));
}

inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// --- pages ---------------------------------------------------------------------------
void wait_on_page_writeback(Page* page);
inline AddressSpace* page_mapping(const Page* page) {
  return static_cast<AddressSpace*>(page->mapping_once());
}

// --- the index (page_cache.cc) ------------------------------------------------------
// The page at `index` with a reference, or null (a hole or a shadow).
Page* find_get_page(AddressSpace& as, uint64_t index);
// filemap_add_folio(): a new page (locked, referenced by the caller) enters
// the cache at `index`, charged to `cg` and queued for the file LRU; a
// refault of the shadow it replaces is noted. -EEXIST when a page is there,
// -ENOMEM when the charge failed (the caller frees the page).
// With `readahead`, the charge is __GFP_NORETRY's (readahead_gfp_mask): one
// round of the group's reclaim, then -ENOMEM, never its OOM killer.
int add_to_page_cache(Machine& m, AddressSpace& as, Page* page, uint64_t index, MemCgroup* cg,
                      bool readahead = false);
// The cached page at `index`, or a new one that is locked and not uptodate
// (*fresh set), with a reference; null when memory is short.
Page* find_or_create_page(Machine& m, AddressSpace& as, uint64_t index, MemCgroup* cg, bool* fresh);
// Removes a locked page from the cache (no shadow) and drops the cache's
// reference; the dirty count goes with it.
void delete_from_page_cache(Machine& m, Page* page);
// truncate_inode_pages_range(): every page from index `first` on leaves the
// cache (waiting for locks and writeback), and so does every shadow.
void truncate_inode_pages(Machine& m, AddressSpace& as, uint64_t first);
// invalidate_mapping_pages(): the clean, unmapped, unlocked pages with an
// index in [first, last] go. Returns how many.
uint64_t invalidate_mapping_pages(Machine& m, AddressSpace& as, uint64_t first = 0,
                                  uint64_t last = ~uint64_t{0});
// The indices of the dirty pages in [first, last].
std::vector<uint64_t> dirty_indices(AddressSpace& as, uint64_t first, uint64_t last);

// --- files (fs.cc) --------------------------------------------------------------------
// fget(): the File of `fd` with a reference, or null; fput_file() drops it.
File* fget(FileTable& ft, int fd);
void fput_file(Machine& m, File* f);

// unmap_mapping_range() through the vm layer's hook: every PTE of `as`'s
// VMAs mapping index `first` or above goes (filemap_mmap.cc).
void unmap_mapping_pages(Machine& m, AddressSpace& as, uint64_t first);

// --- readahead (readahead.cc) ----------------------------------------------------------
// Reads the missing pages of [start, start + nr) into the cache, clipped to
// i_size; PG_readahead on the page `lookahead` from the window's end.
void do_page_cache_ra(Machine& m, Inode& inode, uint64_t start, uint64_t nr, uint64_t lookahead,
                      MemCgroup* cg);

// A new nameless shmem inode of `size` bytes on st.shmem_inodes (st.lock
// held), with neither an open nor a pin yet (fs.cc).
Inode* shmem_inode_new(FsState& st, std::string_view name, uint64_t size);

// --- shmem (shmem.cc) -----------------------------------------------------------------
// A value entry of a shmem index and the swap entry it holds.
inline uintptr_t swp_to_radix_entry(uint64_t swp) {
  return static_cast<uintptr_t>(swp << 1 | 1);
}
inline uint64_t radix_to_swp_entry(uintptr_t v) {
  return v >> 1;
}
// read and write of a shmem file (shmem_file_read_iter, shmem_write_begin):
// holes read as zeros without a page; a written page is dirty for good.
int64_t shmem_read(Machine& m, FileTable& ft, File* f, char* buf, uint64_t count, uint64_t pos);
int64_t shmem_write(Machine& m, FileTable& ft, File* f, const char* buf, uint64_t count,
                    uint64_t pos);
// shmem_undo_range() from page `first` on: the pages and the swap entries
// go (after the caller unmapped them).
void shmem_truncate(Machine& m, Inode& inode, uint64_t first);
// shmem_setattr() of a smaller size (i_size already set, i_rwsem held):
// unmaps and drops what lies past it, and zeroes the cut page past it
// (read back from swap first if it is there).
void shmem_truncate_size(Machine& m, Inode& inode, uint64_t length);
// mapping_can_writeback(): a host file's cache (dirty accounting, the
// flusher), not shmem's.
inline bool mapping_can_writeback(const AddressSpace& as) {
  return !as.host->shmem;
}

// --- data (read_write.cc) -------------------------------------------------------------
// do_truncate() of an open file; 0 or a negative errno.
int sys_ftruncate_file(Machine& m, File* f, uint64_t length);
// Writes every dirty page of the inode back and brings the host file to
// i_size; with `datasync` false the host file's metadata is synced too.
// 0 or the first error.
int fsync_inode(Machine& m, Inode& inode, bool datasync);
// Sets PG_dirty on a locked, uptodate page, counting it (folio_mark_dirty).
void set_page_dirty(Machine& m, Page* page);
// Reads a locked page from the host file (zeros past its end); 0 or -EIO.
int read_page_from_host(Machine& m, Page* page);
// Writes the dirty pages of [first, last] back; 0 or the first error.
int writeback_range(Machine& m, Inode& inode, uint64_t first, uint64_t last);

}  // namespace mmkit
