// libFuzzer target for files and the page cache: bytes become a sequence of
// open, close, pread, pwrite, read, write, lseek, ftruncate, fsync, unlink,
// sync, drop_caches and fadvise operations on four names and one memfd of one small
// machine whose page cache is charged to a memory cgroup of a few dozen
// pages, so reclaim writes back and drops file pages, and swaps shmem's,
// under the operations. Offsets, lengths, flags
// and whence come from the bytes, bad ones included: the calls must answer
// with an errno, never crash. Every read is compared with a model of the
// files; filemap_check() must hold after every operation; at the end every
// file is fsynced and its host file must equal the model, and after unlink
// and drop_caches no page-cache page may remain.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"

namespace {

using namespace mmkit;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_file_ops: %s\n", why.c_str());
  std::abort();
}

struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t u8() { return n ? (--n, *p++) : 0; }
  uint32_t u16() { return u8() | uint32_t{u8()} << 8; }
};

constexpr int kNames = 4;
constexpr uint64_t kMaxFile = 64 * 4096;  // offsets stay within 64 pages (a few past)

struct Model {
  bool exists = false;
  std::vector<uint8_t> data;
};

// An open descriptor of the test and what it refers to.
struct Open {
  int fd = -1;
  int name = 0;
  int acc = O_RDWR;
  bool append = false;
  uint64_t pos = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes b{data, size};
  MachineConfig c;
  c.cpus = 1;
  c.nodes = {NodeConfig{.memory = 16ull << 20}};
  c.swap = 8ull << 20;                               // where the memfd's pages go
  c.dirty_writeback_centisecs = b.u8() & 1 ? 1 : 0;  // sometimes a busy flusher
  auto booted = boot_with_reclaim(c);
  if (!booted) fail("boot: " + booted.error().message);
  Machine& m = **booted;
  m.warn_sink = [](const std::string& w) {
    if (w.find("page allocation failure") == std::string::npos) fail("report: " + w);
  };
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu) fail("cannot bind CPU 0");
  FileTable ft;
  ft.memcg = mem_cgroup_create(m, "fuzz", (32 + (b.u8() & 31)) * PAGE_SIZE);
  Model model[kNames + 1];  // the last is the memfd's
  std::vector<Open> open;
  {
    const int mfd = sys_memfd_create(m, ft, "mem", 0);
    if (mfd < 0) fail("memfd_create failed: " + std::to_string(mfd));
    model[kNames].exists = true;
    open.push_back({mfd, kNames, O_RDWR, false, 0});
  }
  std::vector<uint8_t> buf, got;
  auto name = [](int i) { return "f" + std::to_string(i); };
  auto check = [&](const char* op) {
    const std::string err = filemap_check(m);
    if (!err.empty()) fail(std::string("after ") + op + ": " + err);
  };
  while (b.n) {
    const uint8_t op = b.u8() % 13;
    Open* o = open.empty() ? nullptr : &open[b.u8() % open.size()];
    switch (op) {
      case 0: {  // open
        const int i = b.u8() % kNames;
        const uint8_t f = b.u8();
        const int acc = (f & 3) == 3 ? O_RDWR : f & 3;
        const int flags = acc | (f & 4 ? O_CREAT : 0) | (f & 8 ? O_TRUNC : 0) |
                          (f & 16 ? O_APPEND : 0) | (f & 32 ? O_EXCL : 0);
        const int fd = sys_open(m, ft, name(i), flags);
        const bool create = flags & O_CREAT;
        if (model[i].exists && create && (flags & O_EXCL)) {
          if (fd != -EEXIST) fail("O_EXCL on an existing file gave " + std::to_string(fd));
        } else if (!model[i].exists && !create) {
          if (fd != -ENOENT) fail("open of a missing file gave " + std::to_string(fd));
        } else if (fd < 0) {
          if (fd != -ENOMEM) fail("open failed: " + std::to_string(fd));
        } else {
          model[i].exists = true;
          if ((flags & O_TRUNC) && acc != O_RDONLY) model[i].data.clear();
          open.push_back({fd, i, acc, (flags & O_APPEND) != 0, 0});
        }
        break;
      }
      case 1:  // close
        if (o) {
          if (sys_close(m, ft, o->fd) != 0) fail("close failed");
          *o = open.back();
          open.pop_back();
        } else if (sys_close(m, ft, static_cast<int>(b.u8()) - 2) != -EBADF) {
          fail("close of a bad fd did not say EBADF");
        }
        break;
      case 2:    // pwrite
      case 3: {  // write
        const uint64_t off = op == 2 ? b.u16() % (kMaxFile + 1) : 0;
        const uint64_t len = b.u16() % (3 * 4096 + 1);
        buf.resize(len);
        for (auto& x : buf) x = b.u8() | 1;
        if (!o) break;
        const int64_t n = op == 2 ? sys_pwrite(m, ft, o->fd, buf.data(), len, off)
                                  : sys_write(m, ft, o->fd, buf.data(), len);
        if (o->acc == O_RDONLY) {
          if (n != -EBADF) fail("write to a read-only fd did not say EBADF");
          break;
        }
        if (n == -ENOMEM) break;  // the group could not hold the pages
        std::vector<uint8_t>& d = model[o->name].data;
        uint64_t at = op == 3 ? o->pos : off;
        if (o->append) at = d.size();
        if (n < 0 || static_cast<uint64_t>(n) > len) fail("write returned " + std::to_string(n));
        if (n > 0) {  // nothing to copy (and d may have no storage yet) for 0
          if (at + n > d.size()) d.resize(at + n, 0);
          std::memcpy(d.data() + at, buf.data(), n);
        }
        if (op == 3) o->pos = at + n;
        break;
      }
      case 4:    // pread
      case 5: {  // read
        const uint64_t off = op == 4 ? b.u16() % (kMaxFile + 8192) : 0;
        const uint64_t len = b.u16() % (3 * 4096 + 1);
        if (!o) break;
        got.assign(len, 0xee);
        const int64_t n = op == 4 ? sys_pread(m, ft, o->fd, got.data(), len, off)
                                  : sys_read(m, ft, o->fd, got.data(), len);
        if (o->acc == O_WRONLY) {
          if (n != -EBADF) fail("read of a write-only fd did not say EBADF");
          break;
        }
        if (n == -ENOMEM) break;
        const std::vector<uint8_t>& d = model[o->name].data;
        const uint64_t at = op == 5 ? o->pos : off;
        const uint64_t want = at >= d.size() ? 0 : std::min<uint64_t>(len, d.size() - at);
        if (n != static_cast<int64_t>(want))
          fail("read returned " + std::to_string(n) + ", expected " + std::to_string(want));
        if (want && std::memcmp(got.data(), d.data() + at, want) != 0) fail("read: wrong data");
        if (op == 5) o->pos = at + want;
        break;
      }
      case 6: {                         // lseek
        const int whence = b.u8() % 4;  // 3 is not a whence
        const int64_t off = static_cast<int64_t>(b.u16()) - 4096;
        if (!o) break;
        const int64_t r = sys_lseek(m, ft, o->fd, off, whence);
        const int64_t base = whence == SEEK_SET ? 0
                             : whence == SEEK_CUR
                                 ? static_cast<int64_t>(o->pos)
                                 : static_cast<int64_t>(model[o->name].data.size());
        if (whence > SEEK_END || base + off < 0) {
          if (r != -EINVAL) fail("a bad lseek did not say EINVAL");
        } else {
          if (r != base + off) fail("lseek returned " + std::to_string(r));
          o->pos = static_cast<uint64_t>(r);
        }
        break;
      }
      case 7: {  // ftruncate
        const uint64_t len = b.u16() % (kMaxFile + 1);
        if (!o) break;
        const int r = sys_ftruncate(m, ft, o->fd, len);
        if (o->acc == O_RDONLY) {
          if (r != -EINVAL) fail("ftruncate of a read-only fd did not say EINVAL");
          break;
        }
        if (r != 0) fail("ftruncate failed: " + std::to_string(r));
        model[o->name].data.resize(len, 0);
        break;
      }
      case 8:  // fsync / fdatasync
        if (o && (b.u8() & 1 ? sys_fsync(m, ft, o->fd) : sys_fdatasync(m, ft, o->fd)) != 0)
          fail("fsync failed");
        break;
      case 9: {  // unlink
        const int i = b.u8() % kNames;
        const int r = sys_unlink(m, name(i));
        if (model[i].exists ? r != 0 : r != -ENOENT) fail("unlink returned " + std::to_string(r));
        // Open descriptors keep the old inode; the model forgets them.
        for (size_t k = open.size(); k-- > 0;) {
          if (open[k].name != i) continue;
          sys_close(m, ft, open[k].fd);
          open[k] = open.back();
          open.pop_back();
        }
        model[i] = Model{};
        break;
      }
      case 10:
        if (sys_sync(m) != 0) fail("sync failed");
        break;
      case 11: {
        const int mode = b.u8() % 5;  // 0 and 4 are not modes
        const int r = drop_caches(m, mode);
        if ((mode >= 1 && mode <= 3) ? r != 0 : r != -EINVAL) fail("drop_caches misanswered");
        break;
      }
      case 12: {  // posix_fadvise: never changes what the file holds
        const auto off = static_cast<int64_t>(static_cast<int16_t>(b.u16())) * 64;
        const auto len = static_cast<int64_t>(static_cast<int16_t>(b.u16())) * 16;
        const int advice = b.u8() % 8;  // 6 and 7 are not advice
        const int fd = o ? o->fd : 99;
        const int r = sys_fadvise(m, ft, fd, off, len, advice);
        const int want = !o ? -EBADF : off < 0 || len < 0 || advice > 5 ? -EINVAL : 0;
        if (r != want) fail("fadvise returned " + std::to_string(r));
        break;
      }
    }
    check("an operation");
  }
  // Every file fsynced equals its model in the host file.
  for (int i = 0; i < kNames; ++i) {
    if (!model[i].exists) continue;
    const int fd = sys_open(m, ft, name(i), O_RDWR);
    if (fd < 0 || sys_fsync(m, ft, fd) != 0) fail("final fsync failed");
    sys_close(m, ft, fd);
    const int hfd = ::open(fs_host_path(m, name(i)).c_str(), O_RDONLY);
    if (hfd < 0) fail("host file missing");
    std::vector<uint8_t> host(model[i].data.size() + 1);
    const ssize_t n = pread(hfd, host.data(), host.size(), 0);
    close(hfd);
    if (n != static_cast<ssize_t>(model[i].data.size()) ||
        (n > 0 && std::memcmp(host.data(), model[i].data.data(), n) != 0))
      fail("host file differs from the model");
  }
  files_close_all(m, ft);
  for (int i = 0; i < kNames; ++i)
    if (model[i].exists) sys_unlink(m, name(i));
  drop_caches(m, 1);
  check("the end");
  if (m.node_stat_sum(NodeStat::NR_FILE_PAGES) != m.node_stat_sum(NodeStat::NR_SWAPCACHE))
    fail("page-cache pages left after every file was unlinked");
  return 0;
}
