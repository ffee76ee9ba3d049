// A seeded model test of files, mappings and shmem under memory pressure:
// random pread/pwrite, writes and reads through shared and private
// mappings, msync, ftruncate, fsync and drop_caches on two host files and
// two memfds, in a memory cgroup far smaller than the data, with swap. Every
// read (by fd or through a mapping) must equal the model, an access past
// the end of a file must be SIGBUS, and check(mm), filemap_check(),
// swap_check() and lru_check() hold along the way. At the end every host
// file equals its model byte for byte, and when everything is closed,
// unmapped and dropped no page-cache page and no swap slot is left.
//
// The machine configurations it runs on are the parameters: each policy or
// pool that changes where pages go is one more row (page_cluster 0, zswap
// with lz4 and zstd, the multi-generational LRU with and without zswap).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "memcg/memcontrol.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmkit {
namespace {

struct ModelParam {
  const char* name;
  void (*configure)(MachineConfig& c);
};

constexpr uint64_t kMapPages = 48;  // each mapping covers this many pages of its file
constexpr int kFiles = 4;           // two host files, then two memfds
constexpr int kHostFiles = 2;

struct FileModel {
  std::vector<uint8_t> data;
  int fd = -1;
  uint64_t shared = 0;  // the shared mapping's address
  uint64_t priv = 0;    // the private mapping's address
  // The private mapping's copied pages: index -> contents.
  std::map<uint64_t, std::vector<uint8_t>> cow;
};

class FilemapModel : public ::testing::TestWithParam<ModelParam> {};

TEST_P(FilemapModel, RandomOperationsMatchTheModel) {
  MachineConfig c;
  c.cpus = 1;
  c.nodes = {NodeConfig{.memory = 48ull << 20}};
  c.swap = 64ull << 20;
  c.dirty_writeback_centisecs = 1;
  GetParam().configure(c);
  auto booted = boot_with_reclaim(c);
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  Process* p = nullptr;
  ASSERT_EQ(spawn(m, "model", &p), 0);
  MemCgroup* cg = mem_cgroup_create(m, "model", 96 * PAGE_SIZE);
  ASSERT_NE(cg, nullptr);
  p->mm->memcg = p->files.memcg = cg;
  FileTable& ft = p->files;
  std::mt19937_64 rng(20261205);
  auto pick = [&](uint64_t n) { return n ? rng() % n : 0; };

  FileModel f[kFiles];
  for (int i = 0; i < kFiles; ++i) {
    f[i].fd = i < kHostFiles
                  ? sys_open(m, ft, "file" + std::to_string(i), O_CREAT | O_RDWR | O_TRUNC)
                  : sys_memfd_create(m, ft, "model", 0);
    ASSERT_GE(f[i].fd, 0);
    const int64_t sh = do_mmap_fd(p->mm, ft, 0, kMapPages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                                  MAP_SHARED, f[i].fd, 0);
    const int64_t pr = do_mmap_fd(p->mm, ft, 0, kMapPages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE, f[i].fd, 0);
    ASSERT_GT(sh, 0);
    ASSERT_GT(pr, 0);
    f[i].shared = static_cast<uint64_t>(sh);
    f[i].priv = static_cast<uint64_t>(pr);
  }
  // What the private mapping shows at byte `off`: its copy, else the file.
  auto private_byte = [](const FileModel& fm, uint64_t off) -> uint8_t {
    auto it = fm.cow.find(off >> PAGE_SHIFT);
    if (it != fm.cow.end()) return it->second[off & (PAGE_SIZE - 1)];
    return off < fm.data.size() ? fm.data[off] : 0;
  };
  auto checks = [&](int step) {
    lru_add_drain_all(m);
    ASSERT_EQ(check(p->mm), "") << "step " << step;
    ASSERT_EQ(filemap_check(m), "") << "step " << step;
    ASSERT_EQ(swap_check(m), "") << "step " << step;
  };

  std::vector<uint8_t> buf, got;
  constexpr int kSteps = 2500;
  for (int step = 0; step < kSteps; ++step) {
    FileModel& fm = f[pick(kFiles)];
    const uint64_t size = fm.data.size();
    const uint64_t off = pick(kMapPages * PAGE_SIZE);
    const uint64_t len = 1 + pick(2 * PAGE_SIZE);
    const uint8_t fill = static_cast<uint8_t>(step * 7 + 1);
    switch (pick(10)) {
      case 0: {  // pwrite
        buf.assign(len, fill);
        for (uint64_t i = 0; i < len; i += 97) buf[i] = static_cast<uint8_t>(i ^ step);
        const uint64_t n = std::min(len, kMapPages * PAGE_SIZE - off);
        ASSERT_EQ(sys_pwrite(m, ft, fm.fd, buf.data(), n, off), static_cast<int64_t>(n)) << step;
        if (off + n > size) fm.data.resize(off + n, 0);
        std::memcpy(fm.data.data() + off, buf.data(), n);
        break;
      }
      case 1: {  // pread
        got.assign(len, 0xee);
        const uint64_t want = off >= size ? 0 : std::min(len, size - off);
        ASSERT_EQ(sys_pread(m, ft, fm.fd, got.data(), len, off), static_cast<int64_t>(want))
            << step;
        ASSERT_EQ(std::memcmp(got.data(), fm.data.data() + off, want), 0) << step;
        break;
      }
      case 2:
      case 3: {  // a byte through the shared mapping: written (inside the file) or read
        const bool past = off >= ((size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
        uint8_t b = fill;
        const bool write = off < size && pick(2);
        const auto r = write ? access_write(p->mm, fm.shared + off, &b, 1)
                             : access_read(p->mm, fm.shared + off, &b, 1);
        if (past) {
          ASSERT_EQ(r.status, FaultStatus::kSigbus) << step;
          break;
        }
        ASSERT_TRUE(r.ok()) << step;
        if (write)
          fm.data[off] = fill;
        else
          ASSERT_EQ(b, off < size ? fm.data[off] : 0) << step;
        break;
      }
      case 4:
      case 5: {  // a byte through the private mapping
        const bool past = off >= ((size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
        uint8_t b = fill;
        const bool write = pick(2);
        const auto r = write ? access_write(p->mm, fm.priv + off, &b, 1)
                             : access_read(p->mm, fm.priv + off, &b, 1);
        if (past && !fm.cow.count(off >> PAGE_SHIFT)) {
          ASSERT_EQ(r.status, FaultStatus::kSigbus) << step;
          break;
        }
        ASSERT_TRUE(r.ok()) << step;
        if (write) {
          auto [it, fresh] = fm.cow.try_emplace(off >> PAGE_SHIFT);
          if (fresh) {
            it->second.assign(PAGE_SIZE, 0);
            const uint64_t base = off & ~(PAGE_SIZE - 1);
            for (uint64_t i = 0; i < PAGE_SIZE && base + i < size; ++i)
              it->second[i] = fm.data[base + i];
          }
          it->second[off & (PAGE_SIZE - 1)] = fill;
        } else {
          ASSERT_EQ(b, private_byte(fm, off)) << step;
        }
        break;
      }
      case 6: {  // ftruncate: smaller or larger
        const uint64_t to = pick(kMapPages * PAGE_SIZE + 1);
        ASSERT_EQ(sys_ftruncate(m, ft, fm.fd, to), 0) << step;
        fm.data.resize(to, 0);
        // Truncate unmaps private copies past the end too (even_cows).
        const uint64_t first = (to + PAGE_SIZE - 1) >> PAGE_SHIFT;
        fm.cow.erase(fm.cow.lower_bound(first), fm.cow.end());
        break;
      }
      case 7:
        ASSERT_EQ(do_msync(p->mm, fm.shared, kMapPages * PAGE_SIZE, MS_SYNC), 0) << step;
        break;
      case 8:
        ASSERT_EQ(pick(2) ? sys_fsync(m, ft, fm.fd) : sys_fdatasync(m, ft, fm.fd), 0) << step;
        break;
      case 9:
        ASSERT_EQ(drop_caches(m, 1 + static_cast<int>(pick(3))), 0);
        break;
    }
    if (step % 25 == 0) checks(step);
  }
  checks(kSteps);
  // Squeeze the group to a quarter: with the clean cache dropped, what it
  // gives up now is mostly shmem and private copies, which go to swap (or
  // zswap) and must read back below.
  ASSERT_EQ(drop_caches(m, 1), 0);
  mem_cgroup_set_max(cg, 24 * PAGE_SIZE);
  checks(kSteps + 1);
  // A full read of every file by fd equals the model.
  for (FileModel& fm : f) {
    got.assign(fm.data.size() + 1, 0xee);
    ASSERT_EQ(sys_pread(m, ft, fm.fd, got.data(), got.size(), 0),
              static_cast<int64_t>(fm.data.size()));
    ASSERT_EQ(std::memcmp(got.data(), fm.data.data(), fm.data.size()), 0);
  }
  // What was fsynced is in the host files, byte for byte.
  for (int i = 0; i < kHostFiles; ++i) {
    ASSERT_EQ(sys_fsync(m, ft, f[i].fd), 0);
    const int hfd = ::open(fs_host_path(m, "file" + std::to_string(i)).c_str(), O_RDONLY);
    ASSERT_GE(hfd, 0);
    std::vector<uint8_t> host(f[i].data.size() + 1);
    ASSERT_EQ(pread(hfd, host.data(), host.size(), 0), static_cast<ssize_t>(f[i].data.size()));
    close(hfd);
    EXPECT_EQ(std::memcmp(host.data(), f[i].data.data(), f[i].data.size()), 0) << "file" << i;
  }
  // Reclaim dropped file pages and swapped shmem or private copies.
  EXPECT_GT(m.sum_event(VmEvent::PGSTEAL_FILE), 0);
  EXPECT_GT(m.sum_event(VmEvent::PSWPOUT) + m.sum_event(VmEvent::ZSWPOUT), 0);
  // Nothing leaked: with every mapping, descriptor and cached page gone,
  // no page-cache page and no swap slot remains.
  exit_process(p);
  for (int i = 0; i < kHostFiles; ++i) sys_unlink(m, "file" + std::to_string(i));
  drop_caches(m, 1);
  lru_add_drain_all(m);
  try_to_reclaim_swap_cache(m);
  EXPECT_EQ(m.node_stat_sum(NodeStat::NR_FILE_PAGES), m.node_stat_sum(NodeStat::NR_SWAPCACHE));
  EXPECT_EQ(m.node_stat_sum(NodeStat::NR_SHMEM), 0);
  EXPECT_EQ(swap_free_pages(m), swap_total_pages(m));
  EXPECT_EQ(filemap_check(m), "");
  EXPECT_EQ(swap_check(m), "");
}

INSTANTIATE_TEST_SUITE_P(
    Machines, FilemapModel,
    ::testing::Values(ModelParam{"classic", [](MachineConfig&) {}},
                      ModelParam{"page_cluster_0", [](MachineConfig& c) { c.page_cluster = 0; }},
                      ModelParam{"zswap", [](MachineConfig& c) { c.zswap.enabled = true; }},
                      ModelParam{"zswap_zstd",
                                 [](MachineConfig& c) {
                                   c.zswap.enabled = true;
                                   c.zswap.compressor = "zstd";
                                 }},
                      ModelParam{"lru_gen", [](MachineConfig& c) { c.lru_gen = true; }},
                      ModelParam{"lru_gen_zswap",
                                 [](MachineConfig& c) {
                                   c.lru_gen = true;
                                   c.zswap.enabled = true;
                                 }}),
    [](const ::testing::TestParamInfo<ModelParam>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mmkit
