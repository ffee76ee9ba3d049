// /proc/<pid>/status, maps and smaps_rollup in Linux's format, the pid
// views through render_view, and the meminfo lines the vm layer feeds
// (AnonPages, PageTables, CommitLimit, Committed_AS, SwapTotal).
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include <fcntl.h>

#include "filemap/filemap.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"

#include "../support/boot.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
constexpr int kRW = PROT_READ | PROT_WRITE;

std::unique_ptr<Machine> small(Arch arch = Arch::x86_64, uint64_t swap = 0) {
  MachineConfig c = test::one_node(64, 2, arch);
  c.swap = swap;
  return test::boot_or_fail(c);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The value of "Label:\t   1234 kB" in a status text, or -1.
int64_t status_kb(const std::string& text, const std::string& label) {
  const std::regex re("(^|\n)" + label + ":\t +([0-9]+) kB\n");
  std::smatch mt;
  if (!std::regex_search(text, mt, re)) return -1;
  return std::stoll(mt[2]);
}

TEST(VmProcfs, MapsLinesAreLinuxs) {
  auto m = small();
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "cat", &p), 0);
  do_brk(p->mm, p->mm->start_brk + 2 * kPage);
  ASSERT_EQ(do_mmap(p->mm, 0x40000000, 4 * kPage, PROT_READ | PROT_EXEC, kAnon | MAP_FIXED),
            0x40000000);
  ASSERT_GT(do_mmap(p->mm, 0, 2 * kPage, kRW, MAP_SHARED | MAP_ANONYMOUS), 0);
  const std::string maps = render_pid_maps(*m, p->pid);
  const auto ls = lines(maps);
  ASSERT_EQ(ls.size(), 4u) << maps;
  // "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " then the name at column 73.
  const std::regex line(
      "^([0-9a-f]{8,})-([0-9a-f]{8,}) ([r-][w-][x-][ps]) ([0-9a-f]{8}) ([0-9a-f]{2}):([0-9a-f]{2}) "
      "([0-9]+) ?( +(.*))?$");
  for (const std::string& l : ls) EXPECT_TRUE(std::regex_match(l, line)) << l;
  EXPECT_EQ(ls[0], "40000000-40004000 r-xp 00000000 00:00 0 ");
  EXPECT_EQ(ls[1].substr(0, 31), "555555559000-55555555b000 rw-p ");
  EXPECT_EQ(ls[1].substr(73), "[heap]");
  EXPECT_EQ(ls[1].substr(47, 26), std::string(26, ' '));
  EXPECT_TRUE(std::regex_match(ls[2], std::regex("^7ffff7ff[0-9a-f]{4}-7ffff7fff000 rw-s 00000000 "
                                                 "00:01 [0-9]+ +/dev/zero \\(deleted\\)$")))
      << ls[2];
  EXPECT_EQ(ls[3],
            "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]");
  EXPECT_EQ(render_view(*m, std::to_string(p->pid) + "/maps"), maps);
  EXPECT_EQ(render_pid_maps(*m, 999), "");
  EXPECT_EQ(render_view(*m, "999/maps"), "");
  EXPECT_EQ(render_view(*m, "1/nosuchfile"), "");
  EXPECT_EQ(render_view(*m, "x1/maps"), "");
  exit_process(p);
}

TEST(VmProcfs, MapsOnI386UseEightDigitsAndColumn49) {
  auto m = small(Arch::i386);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "sh", &p), 0);
  const auto ls = lines(render_pid_maps(*m, p->pid));
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_EQ(ls[0], "bffdf000-c0000000 rw-p 00000000 00:00 0          [stack]");
  exit_process(p);
}

TEST(VmProcfs, StatusCountsMemory) {
  auto m = small();
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "worker", &p), 0);
  const int64_t a = do_mmap(p->mm, 0, 64 * kPage, kRW, kAnon);
  ASSERT_TRUE(access_touch(p->mm, a, 64 * kPage, Access::kWrite).ok());
  ASSERT_EQ(do_munmap(p->mm, a, 32 * kPage), 0);
  Process* c = nullptr;
  ASSERT_EQ(fork_process(p, &c), 0);
  const std::string st = render_pid_status(*m, c->pid);
  EXPECT_NE(st.find("Name:\tworker\n"), std::string::npos) << st;
  EXPECT_NE(st.find("\nPid:\t" + std::to_string(c->pid) + "\n"), std::string::npos);
  EXPECT_NE(st.find("\nPPid:\t" + std::to_string(p->pid) + "\n"), std::string::npos);
  EXPECT_NE(st.find("VmRSS:\t     128 kB\n"), std::string::npos) << st;  // width 8
  EXPECT_EQ(status_kb(st, "VmSize"), 32 * 4 + 132);
  EXPECT_EQ(status_kb(st, "VmRSS"), 32 * 4);
  EXPECT_EQ(status_kb(st, "RssAnon"), 32 * 4);
  EXPECT_EQ(status_kb(st, "RssShmem"), 0);
  EXPECT_EQ(status_kb(st, "VmData"), 32 * 4);
  EXPECT_EQ(status_kb(st, "VmStk"), 132);
  EXPECT_GE(status_kb(st, "VmPTE"), 4);
  const std::string ps = render_pid_status(*m, p->pid);
  EXPECT_EQ(status_kb(ps, "VmPeak"), 64 * 4 + 132);  // before the munmap
  EXPECT_EQ(status_kb(ps, "VmHWM"), 64 * 4);
  EXPECT_EQ(status_kb(ps, "VmRSS"), 32 * 4);
  // The order of Linux's task_mem().
  const std::vector<std::string> order = {"VmPeak", "VmSize",  "VmLck",   "VmPin",    "VmHWM",
                                          "VmRSS",  "RssAnon", "RssFile", "RssShmem", "VmData",
                                          "VmStk",  "VmExe",   "VmLib",   "VmPTE",    "VmSwap"};
  size_t pos = 0;
  for (const std::string& f : order) {
    const size_t at = st.find("\n" + f + ":\t", pos);
    ASSERT_NE(at, std::string::npos) << f;
    pos = at + 1;
  }
  EXPECT_EQ(render_view(*m, std::to_string(c->pid) + "/status"), st);
  EXPECT_EQ(render_pid_status(*m, 12345), "");
  exit_process(c);
  exit_process(p);
}

TEST(VmProcfs, SmapsRollupSplitsSharedAndPrivate) {
  auto m = small();
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const int64_t a = do_mmap(p->mm, 0, 4 * kPage, kRW, kAnon);
  ASSERT_TRUE(access_touch(p->mm, a, 4 * kPage, Access::kWrite).ok());
  Process* c = nullptr;
  ASSERT_EQ(fork_process(p, &c), 0);
  ASSERT_TRUE(access_touch(c->mm, a, kPage, Access::kWrite).ok());  // one page private again
  const std::string r = render_pid_smaps_rollup(*m, c->pid);
  const auto ls = lines(r);
  ASSERT_GE(ls.size(), 2u);
  EXPECT_TRUE(std::regex_match(ls[0], std::regex("^[0-9a-f]{8,}-[0-9a-f]{8,} ---p 00000000 00:00 0 "
                                                 "+\\[rollup\\]$")))
      << ls[0];
  EXPECT_EQ(ls[1], "Rss:                  16 kB");
  EXPECT_EQ(ls[2], "Pss:                  10 kB");  // 4 + 3 * 4 / 2
  EXPECT_NE(r.find("\nShared_Dirty:         12 kB\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\nPrivate_Dirty:         4 kB\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\nAnonymous:            16 kB\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\nPrivate_Hugetlb:       0 kB\n"), std::string::npos) << r;
  EXPECT_EQ(render_view(*m, std::to_string(c->pid) + "/smaps_rollup"), r);
  exit_process(c);
  exit_process(p);
}

// Swap entries count in smaps_rollup's Swap (as VmSwap counts them) and in
// SwapPss split between the address spaces whose entries share a slot.
TEST(VmProcfs, SmapsRollupCountsSwapEntries) {
  MachineConfig c = test::one_node(64, 2);
  c.swap = 32ull << 20;
  auto r = boot_with_reclaim(c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Machine& m = *r.value();
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "p", &p), 0);
  p->mm->memcg = mem_cgroup_create(m, "small", 64 * kPage);
  ASSERT_NE(p->mm->memcg, nullptr);
  const int64_t a = do_mmap(p->mm, 0, 256 * kPage, kRW, kAnon);
  ASSERT_TRUE(access_touch(p->mm, a, 256 * kPage, Access::kWrite).ok());
  const int64_t vmswap = status_kb(render_view(m, std::to_string(p->pid) + "/status"), "VmSwap");
  ASSERT_GT(vmswap, 0);
  auto field = [](const std::string& text, const std::string& label) -> int64_t {
    const std::regex re("\n" + label + ": +([0-9]+) kB\n");
    std::smatch mt;
    return std::regex_search(text, mt, re) ? std::stoll(mt[1]) : -1;
  };
  std::string rollup = render_pid_smaps_rollup(m, p->pid);
  EXPECT_EQ(field(rollup, "Swap"), vmswap) << rollup;
  EXPECT_EQ(field(rollup, "SwapPss"), vmswap) << rollup;
  // A child shares every entry: each address space's SwapPss is half.
  Process* child = nullptr;
  ASSERT_EQ(fork_process(p, &child), 0);
  rollup = render_pid_smaps_rollup(m, p->pid);
  EXPECT_EQ(field(rollup, "Swap"), vmswap) << rollup;
  EXPECT_EQ(field(rollup, "SwapPss"), vmswap / 2) << rollup;
  exit_process(child);
  exit_process(p);
}

// A machine with files (in a private root) and no flusher, and a file of
// `pages` pages written and fsynced (clean in the page cache).
std::unique_ptr<Machine> with_files(uint64_t fault_around_bytes = 65536) {
  MachineConfig c = test::one_node(64, 2);
  c.dirty_writeback_centisecs = 0;
  c.fault_around_bytes = fault_around_bytes;
  auto r = boot_with_reclaim(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

int clean_file(Machine& m, Process* p, const char* name, uint64_t pages) {
  const int fd = sys_open(m, p->files, name, O_CREAT | O_RDWR | O_TRUNC);
  std::vector<char> buf(pages * kPage, 'f');
  EXPECT_EQ(sys_write(m, p->files, fd, buf.data(), buf.size()), static_cast<int64_t>(buf.size()));
  EXPECT_EQ(sys_fsync(m, p->files, fd), 0);
  return fd;
}

// "START-END PERMS OFFSET 08:01 INO" padded to column 73, then the name.
std::string file_line(const std::string& head, uint64_t ino, const std::string& name) {
  std::string l = head + " 08:01 " + std::to_string(ino) + " ";
  l.resize(73, ' ');
  return l + name;
}

TEST(VmProcfs, MapsShowFileNamesOffsetsAndInodes) {
  auto m = with_files();
  ASSERT_NE(m, nullptr);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "ld.so", &p), 0);
  const int fd = clean_file(*m, p, "libc.so.6", 8);
  ASSERT_EQ(do_mmap_fd(p->mm, p->files, 0x40000000, 4 * kPage, PROT_READ | PROT_EXEC,
                       MAP_PRIVATE | MAP_FIXED, fd, 2 * kPage),
            0x40000000);
  ASSERT_EQ(do_mmap_fd(p->mm, p->files, 0x40010000, 2 * kPage, kRW, MAP_SHARED | MAP_FIXED, fd,
                       7 * kPage),
            0x40010000);
  uint64_t ino = 0;
  {
    std::lock_guard g(p->mm->mmap_lock);
    ino = find_vma(p->mm, 0x40000000)->vm_file->ino;
  }
  EXPECT_GT(ino, 0u);
  auto ls = lines(render_pid_maps(*m, p->pid));
  ASSERT_EQ(ls.size(), 3u);
  EXPECT_EQ(ls[0], file_line("40000000-40004000 r-xp 00002000", ino, "/libc.so.6"));
  // The mapping runs past the end of the file; the offset is vm_pgoff's.
  EXPECT_EQ(ls[1], file_line("40010000-40012000 rw-s 00007000", ino, "/libc.so.6"));
  // Split by mprotect, the upper part's offset moves with it.
  ASSERT_EQ(do_mprotect(p->mm, 0x40001000, kPage, PROT_READ), 0);
  ls = lines(render_pid_maps(*m, p->pid));
  ASSERT_EQ(ls.size(), 5u);
  EXPECT_EQ(ls[1], file_line("40001000-40002000 r--p 00003000", ino, "/libc.so.6"));
  EXPECT_EQ(ls[2], file_line("40002000-40004000 r-xp 00004000", ino, "/libc.so.6"));
  // Unlinked while mapped: d_path's " (deleted)".
  ASSERT_EQ(sys_unlink(*m, "libc.so.6"), 0);
  ls = lines(render_pid_maps(*m, p->pid));
  EXPECT_EQ(ls[0], file_line("40000000-40001000 r-xp 00002000", ino, "/libc.so.6 (deleted)"));
  exit_process(p);
}

// File pages in smaps_rollup (fault-around off, so each access maps one
// page): a shared mapping reads pages 0-2 and writes page 3; a private
// mapping of the same file reads pages 0-1 (now mapped twice) and writes
// page 2 (an anonymous copy). Seven pages mapped.
TEST(VmProcfs, SmapsRollupCountsFilePages) {
  auto m = with_files(kPage);
  ASSERT_NE(m, nullptr);
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const int fd = clean_file(*m, p, "data", 4);
  const int64_t sh = do_mmap_fd(p->mm, p->files, 0, 4 * kPage, kRW, MAP_SHARED, fd, 0);
  const int64_t pr = do_mmap_fd(p->mm, p->files, 0, 4 * kPage, kRW, MAP_PRIVATE, fd, 0);
  ASSERT_GT(sh, 0);
  ASSERT_GT(pr, 0);
  ASSERT_TRUE(access_touch(p->mm, sh, 3 * kPage, Access::kRead).ok());
  ASSERT_TRUE(access_touch(p->mm, sh + 3 * kPage, kPage, Access::kWrite).ok());
  ASSERT_TRUE(access_touch(p->mm, pr, 2 * kPage, Access::kRead).ok());
  ASSERT_TRUE(access_touch(p->mm, pr + 2 * kPage, kPage, Access::kWrite).ok());
  ASSERT_EQ(check(p->mm), "");
  const std::string r = render_pid_smaps_rollup(*m, p->pid);
  auto has = [&](const char* line) { EXPECT_NE(r.find(line), std::string::npos) << line << r; };
  has("\nRss:                  28 kB\n");
  has("\nPss:                  20 kB\n");  // 4 * 2 / 2 * 2 + 4 + 4 + 4
  has("\nPss_Dirty:             8 kB\n");  // the shared write, the copy
  has("\nPss_Anon:              4 kB\n");
  has("\nPss_File:             16 kB\n");
  has("\nPss_Shmem:             0 kB\n");
  has("\nShared_Clean:         16 kB\n");  // pages 0 and 1, twice
  has("\nShared_Dirty:          0 kB\n");
  has("\nPrivate_Clean:         4 kB\n");  // page 2 of the file
  has("\nPrivate_Dirty:         8 kB\n");  // page 3 of the file, the copy
  has("\nReferenced:           28 kB\n");
  has("\nAnonymous:             4 kB\n");
  exit_process(p);
}

uint64_t meminfo_kb(const Machine& m, std::string_view name) {
  for (const MeminfoField& f : meminfo_fields(m))
    if (f.name() == name) return f.value;
  ADD_FAILURE() << "no meminfo field " << name;
  return 0;
}

TEST(VmProcfs, MeminfoFollowsTheVmCounters) {
  auto m = small(Arch::x86_64, 32ull << 20);
  EXPECT_EQ(meminfo_kb(*m, "SwapTotal"), 32u << 10);
  EXPECT_EQ(meminfo_kb(*m, "SwapFree"), 32u << 10);
  EXPECT_EQ(meminfo_kb(*m, "CommitLimit"), m->totalram_pages() * 50 / 100 * 4 + (32u << 10));
  const uint64_t pt0 = meminfo_kb(*m, "PageTables");
  Process* p = nullptr;
  ASSERT_EQ(spawn(*m, "p", &p), 0);
  const int64_t a = do_mmap(p->mm, 0, 10 * kPage, kRW, kAnon);
  ASSERT_TRUE(access_touch(p->mm, a, 10 * kPage, Access::kWrite).ok());
  EXPECT_EQ(meminfo_kb(*m, "AnonPages"), 40u);
  EXPECT_EQ(meminfo_kb(*m, "Committed_AS"), 10 * 4 + 132u);
  EXPECT_GT(meminfo_kb(*m, "PageTables"), pt0);
  EXPECT_EQ(meminfo_kb(*m, "PageTables"),
            static_cast<uint64_t>(m->node_stat_sum(NodeStat::NR_PAGETABLE)) * 4);
  exit_process(p);
  EXPECT_EQ(meminfo_kb(*m, "AnonPages"), 0u);
  EXPECT_EQ(meminfo_kb(*m, "Committed_AS"), 0u);
}

}  // namespace
}  // namespace mmkit
