// posix_fadvise (src/filemap/fadvise.cc): DONTNEED writes a range back and
// drops its whole, clean, unmapped pages (the partial-page rules of
// mm/fadvise.c worked by hand), WILLNEED reads a range in, the readahead
// advice, a shmem file that ignores it all, and the errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "../support/boot.h"
#include "filemap/filemap.h"
#include "reclaim/reclaim.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

constexpr uint64_t P = PAGE_SIZE;

std::unique_ptr<Machine> boot_fs() {
  auto r = boot_with_reclaim(test::one_node(64));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

int64_t file_pages(Machine& m) {
  return m.node_stat_sum(NodeStat::NR_FILE_PAGES);
}

// A file of `bytes` bytes of `fill`, all of it cached and dirty.
int make_file(Machine& m, FileTable& ft, const char* name, uint64_t bytes, char fill) {
  const int fd = sys_open(m, ft, name, O_CREAT | O_RDWR);
  EXPECT_GE(fd, 0);
  std::vector<char> buf(bytes, fill);
  EXPECT_EQ(sys_pwrite(m, ft, fd, buf.data(), buf.size(), 0), static_cast<int64_t>(bytes));
  return fd;
}

std::vector<char> host_file(Machine& m, const char* name) {
  std::vector<char> out;
  const int fd = ::open(fs_host_path(m, name).c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.insert(out.end(), buf, buf + n);
  ::close(fd);
  return out;
}

TEST(Fadvise, DontneedWritesBackAndDropsTheWholePagesOfTheRange) {
  auto m = boot_fs();
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  FileTable ft;
  const int fd = make_file(*m, ft, "f", 5 * P + 100, 'a');  // 6 pages, the last partial
  const int64_t cached = file_pages(*m);
  // [100, 3P + 10): page 0 and page 3 are partial and stay; 1 and 2 go,
  // written back first (they were dirty).
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 100, 3 * P - 90, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(file_pages(*m), cached - 2);
  // The host file holds them (it ends with them: the rest is still only
  // in the cache, dirty).
  const std::vector<char> host = host_file(*m, "f");
  ASSERT_EQ(host.size(), 3 * P);
  EXPECT_EQ(host[P], 'a');
  EXPECT_EQ(host[3 * P - 1], 'a');
  // A range ending on a page's last byte takes that page: [3P, 4P).
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 3 * P, P, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(file_pages(*m), cached - 3);
  // len 0 runs to the end: page 4 and the partial page at EOF go; page 0's
  // range starts at 1, partial, so it stays.
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 1, 0, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(file_pages(*m), cached - 5);
  // Everything reads back from the host file.
  std::vector<char> got(5 * P + 100);
  EXPECT_EQ(sys_pread(*m, ft, fd, got.data(), got.size(), 0), static_cast<int64_t>(got.size()));
  EXPECT_EQ(got, std::vector<char>(5 * P + 100, 'a'));
  EXPECT_EQ(sys_close(*m, ft, fd), 0);
}

TEST(Fadvise, DontneedLeavesMappedPagesAndWillneedReadsAhead) {
  auto m = boot_fs();
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "reader", &p), 0);
  FileTable& ft = p->files;
  constexpr uint64_t kPages = 64;  // more than fault-around maps
  const int fd = make_file(*m, ft, "g", kPages * P, 'b');
  ASSERT_EQ(sys_fsync(*m, ft, fd), 0);
  const int64_t a = do_mmap_fd(p->mm, ft, 0, kPages * P, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_GT(a, 0);
  char c = 0;
  ASSERT_TRUE(access_read(p->mm, static_cast<uint64_t>(a) + 2 * P, &c, 1).ok());
  EXPECT_EQ(c, 'b');
  const int64_t cached = file_pages(*m);
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  // Fault-around maps neighbours of page 2 as well: those stay cached,
  // the rest go.
  const int64_t kept = file_pages(*m);
  EXPECT_LT(kept, cached);
  EXPECT_GE(kept, 1);
  ASSERT_TRUE(access_read(p->mm, static_cast<uint64_t>(a) + 2 * P, &c, 1).ok());
  ASSERT_EQ(do_munmap(p->mm, static_cast<uint64_t>(a), kPages * P), 0);
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  const int64_t none = file_pages(*m);
  EXPECT_EQ(none, cached - static_cast<int64_t>(kPages));
  // WILLNEED reads [P, 5P) in; past the end it does nothing.
  EXPECT_EQ(sys_fadvise(*m, ft, fd, P, 4 * P, POSIX_FADV_WILLNEED), 0);
  EXPECT_EQ(file_pages(*m), none + 4);
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 100 * P, P, POSIX_FADV_WILLNEED), 0);
  EXPECT_EQ(file_pages(*m), none + 4);
  exit_process(p);
}

TEST(Fadvise, ReadaheadAdviceShmemAndErrors) {
  auto m = boot_fs();
  ASSERT_TRUE(m);
  auto cpu = CpuScope::bind(*m, 0);
  FileTable ft;
  const int fd = make_file(*m, ft, "h", 4 * P, 'c');
  for (int advice :
       {POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM, POSIX_FADV_NOREUSE, POSIX_FADV_NORMAL})
    EXPECT_EQ(sys_fadvise(*m, ft, fd, 0, 0, advice), 0) << advice;
  EXPECT_EQ(sys_fadvise(*m, ft, 99, 0, 0, POSIX_FADV_NORMAL), -EBADF);
  EXPECT_EQ(sys_fadvise(*m, ft, fd, -1, 0, POSIX_FADV_DONTNEED), -EINVAL);
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 0, -1, POSIX_FADV_DONTNEED), -EINVAL);
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 0, 0, 42), -EINVAL);
  // A range past LLONG_MAX runs to the end of the file.
  const int64_t cached = file_pages(*m);
  EXPECT_EQ(sys_fadvise(*m, ft, fd, 0, LLONG_MAX, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(file_pages(*m), cached - 4);
  // tmpfs: accepted, nothing dropped (its pages are its only copy).
  const int mfd = sys_memfd_create(*m, ft, "mem", 0);
  ASSERT_GE(mfd, 0);
  std::vector<char> buf(4 * P, 'd');
  ASSERT_EQ(sys_pwrite(*m, ft, mfd, buf.data(), buf.size(), 0), static_cast<int64_t>(4 * P));
  const int64_t shmem = file_pages(*m);
  EXPECT_EQ(sys_fadvise(*m, ft, mfd, 0, 0, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(file_pages(*m), shmem);
  EXPECT_EQ(sys_fadvise(*m, ft, mfd, 0, 0, 42), -EINVAL);
  std::vector<char> got(4 * P);
  EXPECT_EQ(sys_pread(*m, ft, mfd, got.data(), got.size(), 0), static_cast<int64_t>(4 * P));
  EXPECT_EQ(got, buf);
}

}  // namespace
}  // namespace mmkit
