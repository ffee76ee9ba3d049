// Files and the page cache (src/filemap): the system calls' results and
// errors (open flags, lseek, holes, EOF, "..", bad descriptors); the host
// file equals what was written once fsynced, through ftruncate down and up;
// NR_FILE_PAGES / NR_FILE_DIRTY and meminfo follow the cache; a seeded
// random model of several files under a small memory cgroup (reclaim evicts
// and writes back file pages) with filemap_check() after every step; a dirty
// file four times a cgroup's limit reads back intact; drop_caches; the
// readahead window worked by hand from mm/readahead.c; teardown with dirty
// data; two writers and a reader on one file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/boot.h"
#include "filemap/filemap.h"
#include "memcg/memcontrol.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"

namespace mmkit {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t P = PAGE_SIZE;

std::unique_ptr<Machine> boot_fs(uint64_t ram_mib, uint64_t swap_mib, std::string root = "") {
  MachineConfig c = test::one_node(ram_mib);
  c.swap = swap_mib << 20;
  c.fs_root = std::move(root);
  auto r = boot_with_reclaim(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

Bytes random_bytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// "" when equal, else where they first differ (vectors too long to print).
std::string diff(const Bytes& got, const Bytes& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream s;
  s << "sizes " << got.size() << " vs " << want.size() << ", first difference at byte " << i;
  return s.str();
}

// The host file, read with plain POSIX calls.
Bytes host_bytes(const std::string& path) {
  Bytes out;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << path << ": " << std::strerror(errno);
    return out;
  }
  uint8_t buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.insert(out.end(), buf, buf + n);
  ::close(fd);
  return out;
}

// The whole file through pread.
Bytes read_all(Machine& m, FileTable& ft, int fd, uint64_t size) {
  Bytes b(size + 100);
  const int64_t n = sys_pread(m, ft, fd, b.data(), b.size(), 0);
  EXPECT_EQ(n, static_cast<int64_t>(size));
  b.resize(n < 0 ? 0 : n);
  return b;
}

int64_t stat(Machine& m, NodeStat s) {
  return m.node_stat_sum(s);
}

uint64_t meminfo_kb(Machine& m, const std::string& field) {
  std::istringstream in(render_meminfo(m));
  for (std::string line; std::getline(in, line);)
    if (line.substr(0, line.find(':')) == field)
      return std::stoull(line.substr(line.find(':') + 1));
  ADD_FAILURE() << "no " << field << " in meminfo";
  return 0;
}

uint64_t cg_bytes(const MemCgroup* cg, const char* file) {
  std::string s;
  EXPECT_TRUE(mem_cgroup_read(cg, file, &s));
  return s.empty() ? 0 : std::stoull(s);
}

TEST(FilemapTest, BasicCallsAndErrors) {
  auto m = boot_fs(64, 0);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  FileTable ft;
  std::mt19937_64 rng(7);
  const int fd = sys_open(*m, ft, "a", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  Bytes model = random_bytes(rng, 10000);
  EXPECT_EQ(sys_write(*m, ft, fd, model.data(), model.size()), 10000);
  EXPECT_EQ(sys_lseek(*m, ft, fd, 0, SEEK_CUR), 10000);
  EXPECT_EQ(sys_lseek(*m, ft, fd, 0, SEEK_SET), 0);
  Bytes got(10000);
  EXPECT_EQ(sys_read(*m, ft, fd, got.data(), got.size()), 10000);
  EXPECT_EQ(diff(got, model), "");
  EXPECT_EQ(sys_read(*m, ft, fd, got.data(), got.size()), 0);  // at EOF
  // pwrite across the boundary of pages 0 and 1, and of pages 1 and 2.
  for (uint64_t off : {P - 10, 2 * P - 3000}) {
    Bytes w = random_bytes(rng, 3500);
    EXPECT_EQ(sys_pwrite(*m, ft, fd, w.data(), w.size(), off), 3500);
    std::copy(w.begin(), w.end(), model.begin() + off);
  }
  EXPECT_EQ(sys_lseek(*m, ft, fd, 0, SEEK_CUR), 10000);  // pwrite leaves f_pos alone
  Bytes part(5000);
  EXPECT_EQ(sys_pread(*m, ft, fd, part.data(), part.size(), P - 700), 5000);
  EXPECT_EQ(diff(part, Bytes(model.begin() + P - 700, model.begin() + P - 700 + 5000)), "");
  EXPECT_EQ(diff(read_all(*m, ft, fd, 10000), model), "");
  EXPECT_EQ(sys_pread(*m, ft, fd, part.data(), 100, 10000), 0);  // at EOF
  EXPECT_EQ(sys_pread(*m, ft, fd, part.data(), 100, 50000), 0);  // past it
  EXPECT_EQ(sys_pread(*m, ft, fd, part.data(), 100, 9990), 10);  // short read up to it
  EXPECT_EQ(diff(Bytes(part.begin(), part.begin() + 10), Bytes(model.end() - 10, model.end())), "");
  // A hole: 3 pages in, then page 0 reads as zeros and the size is past the write.
  const int h = sys_open(*m, ft, "hole", O_CREAT | O_RDWR);
  ASSERT_GE(h, 0);
  EXPECT_EQ(sys_pwrite(*m, ft, h, "xyz", 3, 3 * P + 5), 3);
  Bytes page(P, 0xff);
  EXPECT_EQ(sys_pread(*m, ft, h, page.data(), P, 0), static_cast<int64_t>(P));
  EXPECT_EQ(diff(page, Bytes(P, 0)), "");
  EXPECT_EQ(sys_pread(*m, ft, h, page.data(), P, 3 * P), 8);
  EXPECT_EQ(diff(Bytes(page.begin(), page.begin() + 8), Bytes{0, 0, 0, 0, 0, 'x', 'y', 'z'}), "");
  EXPECT_EQ(sys_lseek(*m, ft, h, 0, SEEK_END), static_cast<int64_t>(3 * P + 8));
  // lseek: SEEK_END with a negative offset, SEEK_CUR, results below 0, a bad whence.
  EXPECT_EQ(sys_lseek(*m, ft, fd, -1, SEEK_END), 9999);
  EXPECT_EQ(sys_lseek(*m, ft, fd, -9, SEEK_CUR), 9990);
  EXPECT_EQ(sys_lseek(*m, ft, fd, 20000, SEEK_SET), 20000);  // past EOF is allowed
  EXPECT_EQ(sys_lseek(*m, ft, fd, -20001, SEEK_CUR), -EINVAL);
  EXPECT_EQ(sys_lseek(*m, ft, fd, -1, SEEK_SET), -EINVAL);
  EXPECT_EQ(sys_lseek(*m, ft, fd, -10001, SEEK_END), -EINVAL);
  EXPECT_EQ(sys_lseek(*m, ft, fd, 0, 12345), -EINVAL);
  EXPECT_EQ(sys_lseek(*m, ft, fd, 0, SEEK_CUR), 20000);  // failures moved nothing
  // O_APPEND: every write goes to the end, whatever f_pos says.
  const int ap = sys_open(*m, ft, "a", O_WRONLY | O_APPEND);
  ASSERT_GE(ap, 0);
  EXPECT_EQ(sys_lseek(*m, ft, ap, 0, SEEK_SET), 0);
  EXPECT_EQ(sys_write(*m, ft, ap, "tail!", 5), 5);
  EXPECT_EQ(sys_lseek(*m, ft, ap, 0, SEEK_CUR), 10005);
  model.insert(model.end(), {'t', 'a', 'i', 'l', '!'});
  EXPECT_EQ(diff(read_all(*m, ft, fd, 10005), model), "");
  // Access modes and descriptors.
  EXPECT_EQ(sys_read(*m, ft, ap, got.data(), 10), -EBADF);  // O_WRONLY
  const int ro = sys_open(*m, ft, "a", O_RDONLY);
  ASSERT_GE(ro, 0);
  EXPECT_EQ(sys_write(*m, ft, ro, "x", 1), -EBADF);
  EXPECT_EQ(sys_pwrite(*m, ft, ro, "x", 1, 0), -EBADF);
  const int tr = sys_ftruncate(*m, ft, ro, 0);  // Linux: -EINVAL (do_sys_ftruncate)
  EXPECT_TRUE(tr == -EINVAL || tr == -EBADF) << tr;
  EXPECT_EQ(sys_read(*m, ft, ro, got.data(), 5), 5);
  EXPECT_EQ(sys_read(*m, ft, 999, got.data(), 1), -EBADF);
  EXPECT_EQ(sys_read(*m, ft, -1, got.data(), 1), -EBADF);
  EXPECT_EQ(sys_close(*m, ft, ro), 0);
  EXPECT_EQ(sys_close(*m, ft, ro), -EBADF);
  EXPECT_EQ(sys_read(*m, ft, ro, got.data(), 1), -EBADF);
  EXPECT_EQ(sys_fsync(*m, ft, ro), -EBADF);
  // Names.
  EXPECT_EQ(sys_open(*m, ft, "a", O_CREAT | O_EXCL | O_RDWR), -EEXIST);
  EXPECT_EQ(sys_open(*m, ft, "missing", O_RDONLY), -ENOENT);
  EXPECT_EQ(sys_unlink(*m, "missing"), -ENOENT);
  const std::filesystem::path root = fs_root(*m);
  ASSERT_FALSE(root.empty());
  for (const char* bad : {"..", "../escape", "x/../../escape", "./../escape"}) {
    const int r = sys_open(*m, ft, bad, O_CREAT | O_RDWR);
    EXPECT_TRUE(r == -EINVAL || r == -EACCES) << bad << ": " << r;
    EXPECT_LT(sys_unlink(*m, bad), 0) << bad;
  }
  EXPECT_FALSE(std::filesystem::exists(root.parent_path() / "escape"));
  // O_TRUNC empties the file.
  const int t = sys_open(*m, ft, "a", O_RDWR | O_TRUNC);
  ASSERT_GE(t, 0);
  EXPECT_EQ(sys_lseek(*m, ft, t, 0, SEEK_END), 0);
  EXPECT_EQ(sys_pread(*m, ft, fd, got.data(), 10, 0), 0);
  files_close_all(*m, ft);
  EXPECT_EQ(filemap_check(*m), "");
}

// An active swap area is no file to write: a swap area on a file of the
// machine's root takes no write open (ETXTBSY, Linux's IS_SWAPFILE), a
// second swapon of it under another name is EBUSY, and after swapoff the
// file opens for writing again.
TEST(FilemapTest, AnActiveSwapFileTakesNoWrites) {
  auto mp = boot_fs(32, 0);
  ASSERT_TRUE(mp);
  Machine& m = *mp;
  const std::string path = fs_host_path(m, "swapfile");
  std::string err;
  ASSERT_EQ(
      swapon(m, SwapOptions{.path = path, .size = 4ull << 20, .priority = std::nullopt}, &err), 0)
      << err;
  const std::string other = fs_root(m) + "/./swapfile";
  EXPECT_EQ(swapon(m, SwapOptions{.path = other, .size = 0, .priority = std::nullopt}, &err),
            -EBUSY);
  EXPECT_NE(err.find("already a swap area"), std::string::npos) << err;
  FileTable ft;
  EXPECT_EQ(sys_open(m, ft, "swapfile", O_RDWR), -ETXTBSY);
  EXPECT_EQ(sys_open(m, ft, "swapfile", O_WRONLY | O_TRUNC), -ETXTBSY);
  const int ro = sys_open(m, ft, "swapfile", O_RDONLY);
  ASSERT_GE(ro, 0);
  EXPECT_EQ(sys_close(m, ft, ro), 0);
  ASSERT_EQ(swapoff(m, path), 0);
  const int rw = sys_open(m, ft, "swapfile", O_RDWR);
  ASSERT_GE(rw, 0);
  EXPECT_EQ(sys_close(m, ft, rw), 0);
}

TEST(FilemapTest, HostFileAfterFsyncAndFileStats) {
  auto m = boot_fs(64, 0);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  FileTable ft;
  std::mt19937_64 rng(11);
  const int64_t pages0 = stat(*m, NodeStat::NR_FILE_PAGES);
  const int fd = sys_open(*m, ft, "f", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  const std::string host = fs_host_path(*m, "f");
  Bytes model = random_bytes(rng, 5 * P + 100);  // 6 pages
  ASSERT_EQ(sys_write(*m, ft, fd, model.data(), model.size()), static_cast<int64_t>(model.size()));
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_PAGES) - pages0, 6);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_DIRTY), 6);
  EXPECT_EQ(meminfo_kb(*m, "Dirty"), 6 * P / 1024);
  EXPECT_EQ(meminfo_kb(*m, "Cached"),
            (stat(*m, NodeStat::NR_FILE_PAGES) - stat(*m, NodeStat::NR_SWAPCACHE)) * P / 1024);
  EXPECT_EQ(filemap_check(*m), "");
  ASSERT_EQ(sys_fsync(*m, ft, fd), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_DIRTY), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_WRITEBACK), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_PAGES) - pages0, 6);  // clean pages stay cached
  EXPECT_EQ(meminfo_kb(*m, "Dirty"), 0u);
  EXPECT_EQ(meminfo_kb(*m, "Writeback"), 0u);
  EXPECT_EQ(diff(host_bytes(host), model), "");
  // ftruncate down into page 2: pages 3..5 leave the cache, page 2's tail is
  // zeros when the file grows back over it.
  ASSERT_EQ(sys_ftruncate(*m, ft, fd, 2 * P + 10), 0);
  model.resize(2 * P + 10);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_PAGES) - pages0, 3);
  EXPECT_EQ(filemap_check(*m), "");
  ASSERT_EQ(sys_fsync(*m, ft, fd), 0);
  EXPECT_EQ(diff(host_bytes(host), model), "");
  ASSERT_EQ(sys_ftruncate(*m, ft, fd, 5 * P + 7), 0);
  model.resize(5 * P + 7, 0);
  EXPECT_EQ(diff(read_all(*m, ft, fd, model.size()), model), "");
  ASSERT_EQ(sys_fsync(*m, ft, fd), 0);
  EXPECT_EQ(diff(host_bytes(host), model), "");
  // fdatasync and sync() write back too.
  Bytes w = random_bytes(rng, 2 * P);
  ASSERT_EQ(sys_pwrite(*m, ft, fd, w.data(), w.size(), P / 2), static_cast<int64_t>(w.size()));
  std::copy(w.begin(), w.end(), model.begin() + P / 2);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_DIRTY), 3);  // pages 0, 1, 2
  ASSERT_EQ(sys_fdatasync(*m, ft, fd), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_DIRTY), 0);
  EXPECT_EQ(diff(host_bytes(host), model), "");
  ASSERT_EQ(sys_pwrite(*m, ft, fd, "end", 3, model.size()), 3);
  model.insert(model.end(), {'e', 'n', 'd'});
  ASSERT_EQ(sys_sync(*m), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_DIRTY), 0);
  EXPECT_EQ(diff(host_bytes(host), model), "");
  EXPECT_EQ(sys_close(*m, ft, fd), 0);
  EXPECT_EQ(filemap_check(*m), "");
}

// A random mix of operations on a few files, each checked against a byte
// model, in a cgroup far smaller than the files so that reclaim drops and
// writes back their pages all along.
void run_model(uint64_t seed) {
  auto m = boot_fs(32, 32);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  MemCgroup* cg = mem_cgroup_create(*m, "fs", 160 * P);
  ASSERT_TRUE(cg);
  FileTable ft;
  ft.memcg = cg;
  std::mt19937_64 rng(seed);
  constexpr uint64_t kMaxSize = 64 * P;
  struct F {
    std::string name;
    int fd = -1;
    Bytes model;
  };
  std::vector<F> files(6);
  for (size_t i = 0; i < files.size(); ++i) {
    files[i].name = "file" + std::to_string(i);
    files[i].fd = sys_open(*m, ft, files[i].name, O_CREAT | O_EXCL | O_RDWR);
    ASSERT_GE(files[i].fd, 0);
  }
  for (int op = 0; op < 3000; ++op) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " op " + std::to_string(op));
    F& f = files[rng() % files.size()];
    const unsigned what = rng() % 100;
    if (what < 35) {  // pwrite, or lseek + write
      const uint64_t off = rng() % kMaxSize, len = 1 + rng() % (3 * P);
      const Bytes w = random_bytes(rng, len);
      if (what < 25) {
        ASSERT_EQ(sys_pwrite(*m, ft, f.fd, w.data(), len, off), static_cast<int64_t>(len));
      } else {
        ASSERT_EQ(sys_lseek(*m, ft, f.fd, off, SEEK_SET), static_cast<int64_t>(off));
        ASSERT_EQ(sys_write(*m, ft, f.fd, w.data(), len), static_cast<int64_t>(len));
        ASSERT_EQ(sys_lseek(*m, ft, f.fd, 0, SEEK_CUR), static_cast<int64_t>(off + len));
      }
      if (off + len > f.model.size()) f.model.resize(off + len, 0);
      std::copy(w.begin(), w.end(), f.model.begin() + off);
    } else if (what < 60) {  // pread, possibly past EOF
      const uint64_t off = rng() % (f.model.size() + 2 * P), len = 1 + rng() % (3 * P);
      Bytes got(len);
      const uint64_t want = off >= f.model.size() ? 0 : std::min(len, f.model.size() - off);
      ASSERT_EQ(sys_pread(*m, ft, f.fd, got.data(), len, off), static_cast<int64_t>(want));
      got.resize(want);
      if (want) {
        ASSERT_EQ(diff(got, Bytes(f.model.begin() + off, f.model.begin() + off + want)), "");
      }
    } else if (what < 65) {  // the whole file with read(), in sequential chunks (readahead)
      ASSERT_EQ(sys_lseek(*m, ft, f.fd, 0, SEEK_SET), 0);
      Bytes all, chunk(3000);
      for (int64_t n; (n = sys_read(*m, ft, f.fd, chunk.data(), chunk.size())) > 0;)
        all.insert(all.end(), chunk.begin(), chunk.begin() + n);
      ASSERT_EQ(diff(all, f.model), "");
    } else if (what < 73) {  // ftruncate down or up
      const uint64_t len = rng() % (kMaxSize + 1);
      ASSERT_EQ(sys_ftruncate(*m, ft, f.fd, len), 0);
      f.model.resize(len, 0);
    } else if (what < 78) {
      ASSERT_EQ(what & 1 ? sys_fsync(*m, ft, f.fd) : sys_fdatasync(*m, ft, f.fd), 0);
    } else if (what < 86) {  // close and reopen (sometimes with O_TRUNC)
      ASSERT_EQ(sys_close(*m, ft, f.fd), 0);
      const bool trunc = what == 85;
      f.fd = sys_open(*m, ft, f.name, O_RDWR | (trunc ? O_TRUNC : 0));
      ASSERT_GE(f.fd, 0);
      if (trunc) f.model.clear();
      ASSERT_EQ(sys_lseek(*m, ft, f.fd, 0, SEEK_CUR), 0);
    } else if (what < 90) {  // unlink while open: still readable; then recreate
      ASSERT_EQ(sys_unlink(*m, f.name), 0);
      ASSERT_EQ(sys_open(*m, ft, f.name, O_RDWR), -ENOENT);
      ASSERT_EQ(diff(read_all(*m, ft, f.fd, f.model.size()), f.model), "");
      ASSERT_EQ(sys_close(*m, ft, f.fd), 0);
      f.fd = sys_open(*m, ft, f.name, O_CREAT | O_EXCL | O_RDWR);
      ASSERT_GE(f.fd, 0);
      f.model.clear();
    } else if (what < 95) {
      ASSERT_EQ(drop_caches(*m, what == 94 ? 3 : 1), 0);
    } else {
      ASSERT_EQ(sys_sync(*m), 0);
    }
    ASSERT_EQ(filemap_check(*m), "");
  }
  EXPECT_LE(cg_bytes(cg, "memory.peak"), 160 * P);
  EXPECT_GT(m->sum_event(VmEvent::PGSTEAL_FILE), 0);
  for (F& f : files) {
    ASSERT_EQ(sys_fsync(*m, ft, f.fd), 0);
    EXPECT_EQ(diff(host_bytes(fs_host_path(*m, f.name)), f.model), "") << f.name;
  }
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_DIRTY), 0);
  for (F& f : files) {
    EXPECT_EQ(sys_close(*m, ft, f.fd), 0);
    EXPECT_EQ(sys_unlink(*m, f.name), 0);
    EXPECT_FALSE(std::filesystem::exists(fs_host_path(*m, f.name))) << f.name;
  }
  EXPECT_EQ(drop_caches(*m, 3), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_PAGES), 0);
  EXPECT_EQ(filemap_check(*m), "");
}

TEST(FilemapTest, RandomOpsMatchModelUnderCgroupPressure) {
  for (uint64_t seed : {1, 2, 3, 4}) {
    run_model(seed);
    if (HasFatalFailure()) return;
  }
}

// Page i of the 1024-page file: its number in every word.
Bytes page_pattern(uint64_t i) {
  Bytes b(P);
  for (uint64_t w = 0; w < P / 8; ++w) {
    const uint64_t v = (i * 0x9e3779b97f4a7c15ull) ^ w;
    std::memcpy(b.data() + w * 8, &v, 8);
  }
  return b;
}

TEST(FilemapTest, ReclaimWritesBackDirtyPagesBeforeDroppingThem) {
  auto m = boot_fs(64, 64);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  constexpr uint64_t kLimit = 64, kPages = 1024;
  MemCgroup* cg = mem_cgroup_create(*m, "small", kLimit * P);
  ASSERT_TRUE(cg);
  FileTable ft;
  ft.memcg = cg;
  const int fd = sys_open(*m, ft, "big", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  for (uint64_t i = 0; i < kPages; ++i) {
    const Bytes b = page_pattern(i);
    ASSERT_EQ(sys_write(*m, ft, fd, b.data(), P), static_cast<int64_t>(P)) << "page " << i;
    ASSERT_LE(cg_bytes(cg, "memory.current"), kLimit * P) << "page " << i;
  }
  EXPECT_GT(m->sum_event(VmEvent::PGSTEAL_FILE), 0);
  EXPECT_LE(stat(*m, NodeStat::NR_FILE_PAGES), static_cast<int64_t>(kLimit));
  EXPECT_EQ(filemap_check(*m), "");
  ASSERT_EQ(sys_lseek(*m, ft, fd, 0, SEEK_SET), 0);
  uint64_t bad = 0;
  for (uint64_t i = 0; i < kPages; ++i) {
    Bytes b(P);
    ASSERT_EQ(sys_read(*m, ft, fd, b.data(), P), static_cast<int64_t>(P)) << "page " << i;
    if (b != page_pattern(i) && !bad++) ADD_FAILURE() << "page " << i << " lost its data";
    ASSERT_LE(cg_bytes(cg, "memory.current"), kLimit * P) << "page " << i;
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_LE(cg_bytes(cg, "memory.peak"), kLimit * P);
  EXPECT_EQ(filemap_check(*m), "");
  EXPECT_EQ(sys_close(*m, ft, fd), 0);
}

TEST(FilemapTest, DropCachesDropsCleanPagesKeepsDirtyOnes) {
  auto m = boot_fs(64, 0);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  FileTable ft;
  std::mt19937_64 rng(5);
  const int c = sys_open(*m, ft, "clean", O_CREAT | O_RDWR);
  const int d = sys_open(*m, ft, "dirty", O_CREAT | O_RDWR);
  ASSERT_GE(c, 0);
  ASSERT_GE(d, 0);
  const Bytes cm = random_bytes(rng, 8 * P), dm = random_bytes(rng, 5 * P);
  ASSERT_EQ(sys_write(*m, ft, c, cm.data(), cm.size()), static_cast<int64_t>(cm.size()));
  ASSERT_EQ(sys_fsync(*m, ft, c), 0);
  ASSERT_EQ(sys_write(*m, ft, d, dm.data(), dm.size()), static_cast<int64_t>(dm.size()));
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_PAGES), 13);
  EXPECT_EQ(drop_caches(*m, 1), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_PAGES), 5);  // only the dirty file's pages
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_DIRTY), 5);
  EXPECT_EQ(filemap_check(*m), "");
  EXPECT_EQ(diff(read_all(*m, ft, c, cm.size()), cm), "");  // read back from the host
  EXPECT_EQ(diff(read_all(*m, ft, d, dm.size()), dm), "");
  EXPECT_EQ(drop_caches(*m, 4), -EINVAL);
  EXPECT_EQ(drop_caches(*m, 0), -EINVAL);
  EXPECT_EQ(drop_caches(*m, -1), -EINVAL);
  EXPECT_EQ(drop_caches(*m, 2), 0);
  ASSERT_EQ(sys_fsync(*m, ft, d), 0);
  EXPECT_EQ(drop_caches(*m, 3), 0);
  EXPECT_EQ(stat(*m, NodeStat::NR_FILE_PAGES), 0);
  EXPECT_EQ(filemap_check(*m), "");
  files_close_all(*m, ft);
}

// mm/readahead.c (6.1), max = ra_pages = 32:
//   get_init_ra_size(size, max): s = roundup_pow_of_two(size);
//     s <= max/32 (1) ? 4s : s <= max/4 (8) ? 2s : max
//   get_next_ra_size(cur, max): cur < max/16 (2) ? 4cur : cur <= max/2 (16) ? 2cur : max
//   initial_readahead: start = index, size = init(req), async = size > req ? size - req : size
//   sequential (index == start + size - async, or start + size): start += size,
//     size = next(size), async = size
//   readit: if index == start && size == async, the window's own marker is hit
//     now: add = next(size); size + add <= max ? (async = add, size += add)
//     : (size = max, async = max / 2)
// "start+n async a": the pages to read and the window's async_size after the call.
std::string ra(FileRaState& st, uint64_t index, unsigned req, bool marker) {
  uint64_t start = ~uint64_t{0};
  const unsigned n = ondemand_readahead(st, index, req, marker, &start);
  return std::to_string(start) + "+" + std::to_string(n) + " async " +
         std::to_string(st.async_size);
}

TEST(FilemapReadahead, SequentialWindowRampsAsMmReadaheadC) {
  FileRaState st;
  ASSERT_EQ(st.ra_pages, 32u);
  // Index 0, 1 page: start of file. init(1) = 1 <= 1 -> 4; async = 4 - 1 = 3;
  // no merge (4 != 3). Window [0, 4), marker at 0 + 4 - 3 = 1.
  EXPECT_EQ(ra(st, 0, 1, false), "0+4 async 3");
  EXPECT_EQ(st.start, 0u);
  EXPECT_EQ(st.size, 4u);
  // Marker hit at 1: expected = 0 + 4 - 3 = 1. start = 0 + 4 = 4,
  // size = next(4): 4 < 2 no, 4 <= 16 -> 8 (not 16: x4 needs cur < max/16 = 2);
  // async = 8. Window [4, 12), marker at 4.
  EXPECT_EQ(ra(st, 1, 1, true), "4+8 async 8");
  // Marker at 4: expected = 4 + 8 - 8 = 4. start = 12, size = next(8) = 16, async 16.
  EXPECT_EQ(ra(st, 4, 1, true), "12+16 async 16");
  // Marker at 12: start = 28, size = next(16) = 32 (16 <= 16), async 32.
  EXPECT_EQ(ra(st, 12, 1, true), "28+32 async 32");
  // Marker at 28: start = 60, size = next(32) = max = 32: the window stops growing.
  EXPECT_EQ(ra(st, 28, 1, true), "60+32 async 32");
  EXPECT_EQ(st.start, 60u);
  EXPECT_EQ(st.size, 32u);
}

TEST(FilemapReadahead, InitialRandomAndMergedWindows) {
  // A random read (index 100, the previous read ended in page 5): not at 0,
  // not the expected index, no marker, not oversize, 100 - 5 > 1: just the
  // request, and the state is left alone.
  FileRaState st;
  st.prev_pos = 5 * P + 10;
  EXPECT_EQ(ra(st, 100, 3, false), "100+3 async 0");
  EXPECT_EQ(st.start, 0u);
  EXPECT_EQ(st.size, 0u);
  FileRaState fresh;  // no previous read at all (prev_pos -1): random too
  EXPECT_EQ(ra(fresh, 50, 2, false), "50+2 async 0");
  // A sequential miss (previous read ended in page 10, this one at 11):
  // initial window. init(2): 2 <= 1 no, 2 <= 8 -> 4; async = 4 - 2 = 2.
  FileRaState seq;
  seq.prev_pos = 10 * P + 100;
  EXPECT_EQ(ra(seq, 11, 2, false), "11+4 async 2");
  // Index 0, 4 pages: init(4) = 8 (4 <= 8), async = 8 - 4 = 4.
  FileRaState four;
  EXPECT_EQ(ra(four, 0, 4, false), "0+8 async 4");
  // Index 0, 32 pages: init(32) = max = 32, async = 32 (size not > req), so
  // index == start and size == async: add = next(32) = 32, 32 + 32 > 32, so
  // size = 32 and async = 32 / 2 = 16.
  FileRaState big;
  EXPECT_EQ(ra(big, 0, 32, false), "0+32 async 16");
}

// try_context_readahead (mm/readahead.c, 6.1), max = 32: a miss that is
// neither at 0, nor expected, nor sequential to prev_pos counts the pages
// cached just before it, history = index - 1 - page_cache_prev_miss(index -
// 1, max). history <= req: random, just the request. Otherwise start =
// index, size = min(history (x2 if history >= index) + req, max), async = 1.
TEST(FilemapReadahead, ContextReadaheadFollowsTheCachedHistory) {
  auto m = boot_fs(64, 0);
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  FileTable ft;
  const int fd = sys_open(*m, ft, "ctx", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  const Bytes data(64 * P, 7);
  ASSERT_EQ(sys_write(*m, ft, fd, data.data(), data.size()), static_cast<int64_t>(data.size()));
  ASSERT_EQ(sys_fsync(*m, ft, fd), 0);
  ASSERT_EQ(drop_caches(*m, 1), 0);
  AddressSpace& as = ft.fds[fd]->inode->i_data;
  auto ctx = [&](uint64_t index, unsigned req) {
    FileRaState st;
    st.prev_pos = 50 * P;  // far from index: not a sequential miss
    uint64_t start = ~uint64_t{0};
    const unsigned n = ondemand_readahead(st, index, req, false, &start, &as);
    return std::to_string(start) + "+" + std::to_string(n) + " async " +
           std::to_string(st.async_size);
  };
  // Nothing cached before index 30: prev_miss(29) = 29, history 0.
  EXPECT_EQ(page_cache_prev_miss(as, 29, 32), 29u);
  EXPECT_EQ(ctx(30, 2), "30+2 async 0");
  // Page 29 alone: history 1 <= req 2, still random.
  ASSERT_EQ(sys_fadvise(*m, ft, fd, 29 * P, P, POSIX_FADV_WILLNEED), 0);
  EXPECT_EQ(page_cache_prev_miss(as, 29, 32), 28u);
  EXPECT_EQ(ctx(30, 2), "30+2 async 0");
  // Pages 10..29: prev_miss(29) = 9, history 20 > 2, 20 < 30:
  // size = min(20 + 2, 32) = 22, async 1.
  ASSERT_EQ(sys_fadvise(*m, ft, fd, 10 * P, 19 * P, POSIX_FADV_WILLNEED), 0);
  EXPECT_EQ(page_cache_prev_miss(as, 29, 32), 9u);
  EXPECT_EQ(ctx(30, 2), "30+22 async 1");
  // A scan of 8 finds no gap: index - max_scan.
  EXPECT_EQ(page_cache_prev_miss(as, 29, 8), 21u);
  // Pages 0..29: no gap down to 0, prev_miss = ~0, history = 30 >= 30,
  // doubled: min(60 + 2, 32) = 32, async 1.
  ASSERT_EQ(sys_fadvise(*m, ft, fd, 0, 10 * P, POSIX_FADV_WILLNEED), 0);
  EXPECT_EQ(page_cache_prev_miss(as, 29, 32), ~uint64_t{0});
  EXPECT_EQ(ctx(30, 2), "30+32 async 1");
  // A read there takes that window: pages 30..61 come in at once.
  const int64_t before = m->node_stat_sum(NodeStat::NR_FILE_PAGES);
  FileRaState& ra = ft.fds[fd]->ra;
  ra.prev_pos = 50 * P;
  char buf[16];
  ASSERT_EQ(sys_pread(*m, ft, fd, buf, sizeof buf, 30 * P), 16);
  EXPECT_EQ(m->node_stat_sum(NodeStat::NR_FILE_PAGES) - before, 32);
  EXPECT_EQ(filemap_check(*m), "");
  EXPECT_EQ(sys_close(*m, ft, fd), 0);
}

TEST(FilemapTest, TeardownWithDirtyDataAndAPersistentRoot) {
  char tmpl[] = "/tmp/mmkit_filemap_XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  const std::filesystem::path dir = tmpl;
  std::mt19937_64 rng(9);
  const Bytes kept = random_bytes(rng, 3 * P + 17), dirty = random_bytes(rng, 20 * P);
  {
    auto m = boot_fs(32, 16, dir.string());
    ASSERT_TRUE(m);
    auto cpu = CpuScope::bind(*m, 0);
    FileTable ft;
    const int k = sys_open(*m, ft, "kept", O_CREAT | O_RDWR);
    const int d = sys_open(*m, ft, "dirty", O_CREAT | O_RDWR);
    ASSERT_GE(k, 0);
    ASSERT_GE(d, 0);
    EXPECT_TRUE(std::filesystem::equivalent(fs_root(*m), dir));
    EXPECT_TRUE(std::filesystem::equivalent(
        std::filesystem::path(fs_host_path(*m, "kept")).parent_path(), dir));
    ASSERT_EQ(sys_write(*m, ft, k, kept.data(), kept.size()), static_cast<int64_t>(kept.size()));
    ASSERT_EQ(sys_fsync(*m, ft, k), 0);
    ASSERT_EQ(sys_close(*m, ft, k), 0);
    ASSERT_EQ(sys_write(*m, ft, d, dirty.data(), dirty.size()), static_cast<int64_t>(dirty.size()));
    EXPECT_GT(stat(*m, NodeStat::NR_FILE_DIRTY), 0);
    // The machine goes with "dirty" open and its pages dirty.
  }
  EXPECT_EQ(diff(host_bytes((dir / "kept").string()), kept), "");
  {
    // A second machine on the same root finds the file.
    auto m = boot_fs(32, 16, dir.string());
    ASSERT_TRUE(m);
    FileTable ft;
    const int k = sys_open(*m, ft, "kept", O_RDONLY);
    ASSERT_GE(k, 0);
    EXPECT_EQ(diff(read_all(*m, ft, k, kept.size()), kept), "");
    files_close_all(*m, ft);
  }
  EXPECT_TRUE(std::filesystem::exists(dir));  // a configured root stays
  std::filesystem::remove_all(dir);
  // A private root ("") goes with its machine.
  std::filesystem::path priv;
  {
    auto m = boot_fs(32, 0);
    ASSERT_TRUE(m);
    FileTable ft;
    ASSERT_GE(sys_open(*m, ft, "x", O_CREAT | O_RDWR), 0);
    priv = fs_root(*m);
    ASSERT_FALSE(priv.empty());
    EXPECT_TRUE(std::filesystem::is_directory(priv));
  }
  EXPECT_FALSE(std::filesystem::exists(priv));
}

TEST(FilemapTest, TwoWritersAndAReaderOnOneFile) {
  auto m = boot_fs(64, 0);
  ASSERT_TRUE(m);
  FileTable ft;
  const int fd = sys_open(*m, ft, "shared", O_CREAT | O_RDWR);
  ASSERT_GE(fd, 0);
  constexpr uint64_t kSize = 200000, kHalf = 100001;  // the halves share page 24
  ASSERT_EQ(sys_ftruncate(*m, ft, fd, kSize), 0);
  Bytes model(kSize);
  std::mt19937_64 rng(3);
  for (auto& b : model) b = static_cast<uint8_t>(rng() | 1);  // never 0: unwritten reads 0
  std::atomic<int> errors{0}, writers{2};
  auto writer = [&](int cpu_id, uint64_t from, uint64_t to) {
    auto cpu = CpuScope::bind(*m, cpu_id);
    for (uint64_t off = from; off < to; off += 1000) {
      const uint64_t len = std::min<uint64_t>(1000, to - off);
      if (sys_pwrite(*m, ft, fd, model.data() + off, len, off) != static_cast<int64_t>(len))
        ++errors;
    }
    --writers;
  };
  // Every byte the reader sees is 0 (not yet written) or its final value.
  auto reader = [&] {
    std::mt19937_64 r(4);
    Bytes buf(3 * P);
    while (writers.load() > 0) {
      const uint64_t off = r() % kSize, len = 1 + r() % buf.size();
      const int64_t n = sys_pread(*m, ft, fd, buf.data(), len, off);
      if (n != static_cast<int64_t>(std::min(len, kSize - off))) ++errors;
      for (int64_t i = 0; i < n; ++i)
        if (buf[i] != 0 && buf[i] != model[off + i]) {
          ++errors;
          break;
        }
    }
  };
  std::thread a(writer, 0, 0, kHalf), b(writer, 1, kHalf, kSize), c(reader);
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(diff(read_all(*m, ft, fd, kSize), model), "");
  EXPECT_EQ(filemap_check(*m), "");
  ASSERT_EQ(sys_fsync(*m, ft, fd), 0);
  EXPECT_EQ(diff(host_bytes(fs_host_path(*m, "shared")), model), "");
  EXPECT_EQ(sys_close(*m, ft, fd), 0);
}

}  // namespace
}  // namespace mmkit
