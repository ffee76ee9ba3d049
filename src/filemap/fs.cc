// The machine's file system (fs/namei.c, fs/open.c, fs/file.c, fs/inode.c,
// fs/drop_caches.c, reduced to one directory tree on the host): names to
// inodes, open file descriptions and descriptor tables, unlink with the
// inode kept until its last close, sync and drop_caches. See filemap.h.
//
// A name is a path below the root; "." components are dropped and ".."
// is refused, so nothing outside the root is reachable. Directories are the
// host's: a file in a directory that does not exist gets -ENOENT, as Linux.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "filemap/filemap_internal.h"
#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "slab/shrinker.h"
#include "swap/swap.h"

namespace mmkit {

FsState::FsState(Machine& mach) : m(mach) {
  root = m.config().fs_root;
  if (root.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/mmkit-fs-XXXXXX";
    if (mkdtemp(tmpl.data())) {
      root = tmpl;
      temporary = true;
    }
  }
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  flusher = std::thread([this] { flusher_run(*this); });
}

FsState::~FsState() {
  {
    std::lock_guard<std::mutex> g(wb_lock);
    wb_stop = true;
  }
  wb_wake.notify_all();
  if (flusher.joinable()) flusher.join();
  // Power off: what was not written back is lost, as in a crash (fsync is
  // what makes data durable); the cache's pages go back to the allocator.
  for_each_inode([&](Inode& inode) {
    truncate_inode_pages(m, inode.i_data, 0);
    if (inode.host_fd >= 0) close(inode.host_fd);
  });
  for (auto& inode : shmem_inodes) shmem_truncate(m, *inode, 0);
  // Descriptors a table still held when the machine went.
  for (File* f : files) delete f;
  if (temporary) {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
}

FsState& fs_state(Machine& m) {
  return *static_cast<FsState*>(
      m.ensure_layer_state(Layer::kFilemap, [&] { return std::make_unique<FsState>(m); }));
}

namespace {

// The name below the root, or "" for a path that is empty or leaves it.
std::string normalize(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const size_t j = path.find('/', i);
    const std::string_view part = path.substr(i, j == std::string_view::npos ? j : j - i);
    i = j == std::string_view::npos ? path.size() : j;
    if (part.empty() || part == ".") continue;
    if (part == "..") return "";
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

std::string host_path(const FsState& st, std::string_view name) {
  return st.root + "/" + std::string(name);
}

// iput() of an inode nobody can reach any more: its pages and host file go
// (a shmem inode's pages and swap entries, and its commit charge).
void evict_inode(FsState& st, Inode* inode) {
  if (inode->shmem) {
    shmem_truncate(st.m, *inode, 0);
    if (inode->shmem_unacct && inode->shmem_charged)
      inode->shmem_unacct(st.m, static_cast<int64_t>(inode->shmem_charged));
    for (auto it = st.shmem_inodes.begin(); it != st.shmem_inodes.end(); ++it) {
      if (it->get() == inode) {
        st.shmem_inodes.erase(it);
        return;
      }
    }
    return;
  }
  truncate_inode_pages(st.m, inode->i_data, 0);
  if (inode->host_fd >= 0) close(inode->host_fd);
  inode->host_fd = -1;
  for (auto it = st.orphans.begin(); it != st.orphans.end(); ++it) {
    if (it->get() == inode) {
      st.orphans.erase(it);
      return;
    }
  }
}

void fput(Machine& m, File* f) {
  if (f->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  FsState& st = fs_state(m);
  {
    std::lock_guard<std::mutex> g(st.lock);
    Inode* inode = f->inode;
    if (--inode->opens == 0 && !inode->pins && inode->unlinked) evict_inode(st, inode);
    st.files.erase(f);
  }
  delete f;
}

}  // namespace

void iget(Inode* inode) {
  ++inode->pins;
}

void iput(FsState& st, Inode* inode) {
  if (--inode->pins == 0 && !inode->opens && inode->unlinked) evict_inode(st, inode);
}

// fget(): the File of `fd` with a reference, or null.
File* fget(FileTable& ft, int fd) {
  std::lock_guard<std::mutex> g(ft.lock);
  if (fd < 0 || static_cast<size_t>(fd) >= ft.fds.size() || !ft.fds[fd]) return nullptr;
  File* f = ft.fds[fd];
  f->refs.fetch_add(1, std::memory_order_relaxed);
  return f;
}
void fput_file(Machine& m, File* f) {
  fput(m, f);
}

namespace {

// The lowest free descriptor of `ft` now refers to `f`.
int fd_install(FileTable& ft, File* f) {
  std::lock_guard<std::mutex> g(ft.lock);
  for (size_t fd = 0; fd < ft.fds.size(); ++fd) {
    if (!ft.fds[fd]) {
      ft.fds[fd] = f;
      return static_cast<int>(fd);
    }
  }
  ft.fds.push_back(f);
  return static_cast<int>(ft.fds.size() - 1);
}

}  // namespace

int sys_open(Machine& m, FileTable& ft, std::string_view path, int flags) {
  FsState& st = fs_state(m);
  if (st.root.empty()) return -EIO;  // no temporary directory could be made
  const int acc = flags & O_ACCMODE;
  if (acc == O_ACCMODE) return -EINVAL;
  const std::string name = normalize(path);
  if (name.empty()) return path.empty() ? -ENOENT : -EACCES;
  // An active swap area takes no writes but swap's own (Linux's IS_SWAPFILE
  // checks: ETXTBSY for a write or a truncate). Looked at before st.lock,
  // which swapoff may take under the swap lock.
  if (struct stat sb;
      acc != O_RDONLY && stat(host_path(st, name).c_str(), &sb) == 0 &&
      swap_file_active(m, static_cast<uint64_t>(sb.st_dev), static_cast<uint64_t>(sb.st_ino)))
    return -ETXTBSY;
  Inode* inode = nullptr;
  {
    std::lock_guard<std::mutex> g(st.lock);
    auto it = st.names.find(name);
    if (it != st.names.end()) {
      if ((flags & O_CREAT) && (flags & O_EXCL)) return -EEXIST;
      inode = it->second.get();
    } else {
      // A file of the root that this machine has not opened yet (an earlier
      // machine's, or put there by hand), or a new one.
      const std::string hp = host_path(st, name);
      int fd = open(hp.c_str(), O_RDWR | O_CLOEXEC | (flags & (O_CREAT | O_EXCL)), 0644);
      if (fd < 0 && errno == EACCES && acc == O_RDONLY) fd = open(hp.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return -errno;
      struct stat sb;
      if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        const int err = S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
        close(fd);
        return err;
      }
      auto owned = std::make_unique<Inode>();
      inode = owned.get();
      inode->ino = st.next_ino++;
      inode->name = name;
      inode->host_fd = fd;
      inode->i_size.store(static_cast<uint64_t>(sb.st_size));
      inode->i_data.host = inode;
      st.names.emplace(name, std::move(owned));
    }
    ++inode->opens;
  }
  auto* f = new File;
  {
    std::lock_guard<std::mutex> g(st.lock);
    st.files.insert(f);
  }
  f->inode = inode;
  f->flags = flags & (O_ACCMODE | O_APPEND);
  if ((flags & O_TRUNC) && acc != O_RDONLY) {
    const int err = sys_ftruncate_file(m, f, 0);
    if (err) {
      fput(m, f);
      return err;
    }
  }
  return fd_install(ft, f);
}

Inode* shmem_inode_new(FsState& st, std::string_view name, uint64_t size) {
  auto owned = std::make_unique<Inode>();
  Inode* inode = owned.get();
  inode->ino = st.next_ino++;
  inode->name = name;
  inode->shmem = true;
  inode->unlinked = true;  // nameless: it goes with its last close or pin
  inode->i_size.store(size);
  inode->i_data.host = inode;
  st.shmem_inodes.push_back(std::move(owned));
  return inode;
}

int sys_memfd_create(Machine& m, FileTable& ft, std::string_view name, unsigned flags) {
  if (flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING)) return -EINVAL;
  if (name.size() > 249) return -EINVAL;  // MFD_NAME_MAX_LEN
  FsState& st = fs_state(m);
  auto* f = new File;
  f->flags = O_RDWR;
  {
    std::lock_guard<std::mutex> g(st.lock);
    std::string full("memfd:");
    full.append(name);
    f->inode = shmem_inode_new(st, full, 0);
    ++f->inode->opens;
    st.files.insert(f);
  }
  return fd_install(ft, f);
}

int sys_close(Machine& m, FileTable& ft, int fd) {
  File* f;
  {
    std::lock_guard<std::mutex> g(ft.lock);
    if (fd < 0 || static_cast<size_t>(fd) >= ft.fds.size() || !ft.fds[fd]) return -EBADF;
    f = ft.fds[fd];
    ft.fds[fd] = nullptr;
  }
  fput(m, f);
  return 0;
}

int sys_unlink(Machine& m, std::string_view path) {
  FsState& st = fs_state(m);
  const std::string name = normalize(path);
  if (name.empty()) return path.empty() ? -ENOENT : -EACCES;
  std::lock_guard<std::mutex> g(st.lock);
  auto it = st.names.find(name);
  if (unlink(host_path(st, name).c_str()) != 0) return -errno;
  if (it == st.names.end()) return 0;
  std::unique_ptr<Inode> inode = std::move(it->second);
  st.names.erase(it);
  inode->unlinked = true;
  const bool busy = inode->opens || inode->pins;
  st.orphans.push_back(std::move(inode));
  if (!busy) evict_inode(st, st.orphans.back().get());
  return 0;
}

void files_dup(Machine&, const FileTable& from, FileTable& to) {
  std::lock_guard<std::mutex> g(const_cast<FileTable&>(from).lock);
  to.fds = from.fds;
  for (File* f : to.fds)
    if (f) f->refs.fetch_add(1, std::memory_order_relaxed);
}

void files_close_all(Machine& m, FileTable& ft) {
  std::vector<File*> fds;
  {
    std::lock_guard<std::mutex> g(ft.lock);
    fds.swap(ft.fds);
  }
  for (File* f : fds)
    if (f) fput(m, f);
}

int sys_sync(Machine& m) {
  FsState& st = fs_state(m);
  // The inodes are pinned and the lock dropped for the I/O: the file
  // system's lock is never held while an inode's rwsem is taken.
  std::vector<Inode*> inodes;
  {
    std::lock_guard<std::mutex> g(st.lock);
    st.for_each_inode([&](Inode& inode) {
      iget(&inode);
      inodes.push_back(&inode);
    });
  }
  int err = 0;
  for (Inode* inode : inodes) {
    const int e = fsync_inode(m, *inode, false);
    if (e && !err) err = e;
  }
  std::lock_guard<std::mutex> g(st.lock);
  for (Inode* inode : inodes) iput(st, inode);
  return err;
}

int drop_caches(Machine& m, int mode) {
  if (mode < 1 || mode > 3) return -EINVAL;
  if (mode & 1) {
    FsState& st = fs_state(m);
    lru_add_drain_all(m);
    std::lock_guard<std::mutex> g(st.lock);
    st.for_each_inode([&](Inode& inode) { invalidate_mapping_pages(m, inode.i_data); });
    m.count_event(VmEvent::DROP_PAGECACHE);
  }
  if (mode & 2) {
    // drop_slab(): every node's shrinkers until a round frees little.
    for (unsigned nid = 0; nid < m.nr_nodes(); ++nid) {
      for (int round = 0; round < 16; ++round)
        if (shrink_slab(m, GFP_KERNEL, static_cast<int>(nid), 0) <= 10) break;
    }
    m.count_event(VmEvent::DROP_SLAB);
  }
  return 0;
}

std::string fs_root(const Machine& m) {
  const FsState* st = fs_state_if(m);
  return st ? st->root : std::string();
}

std::string fs_host_path(Machine& m, std::string_view path) {
  return host_path(fs_state(m), normalize(path));
}

}  // namespace mmkit
