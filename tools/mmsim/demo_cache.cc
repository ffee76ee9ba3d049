// `mmsim demo`'s page-cache part: on a 64 MiB machine of its own, a process
// writes a 40 MiB file (buff/cache and Dirty grow), fsyncs it (Dirty goes
// to 0), reads it back from the cache, then a second process fills 56 MiB of
// anonymous memory: reclaim takes the clean file pages first, so buff/cache
// shrinks, and drop_caches empties what is left. Then a 16 MiB memfd (shmem:
// `shared`, within buff/cache) goes to swap under anonymous memory, which
// drop_caches cannot do, and leaves with its last close. After each step a
// line in the columns of `free` shows where the memory is.
#include <fcntl.h>
#include <fmt/format.h>

#include <vector>

#include "demo.h"
#include "filemap/filemap.h"
#include "memcg/lru.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmsim {

using namespace mmkit;

namespace {

uint64_t meminfo_kb(const Machine& m, std::string_view name) {
  for (const MeminfoField& f : meminfo_fields(m))
    if (f.name() == name) return f.value;
  return 0;
}

// One line as procps 4's `free -k` would show the machine: used is
// MemTotal - MemAvailable, buff/cache is Buffers + Cached + SReclaimable.
void print_free(const Machine& m, std::string_view step) {
  const uint64_t total = meminfo_kb(m, "MemTotal"), free = meminfo_kb(m, "MemFree");
  const uint64_t cache =
      meminfo_kb(m, "Buffers") + meminfo_kb(m, "Cached") + meminfo_kb(m, "SReclaimable");
  const uint64_t avail = meminfo_kb(m, "MemAvailable");
  const uint64_t used = total > avail ? total - avail : 0;
  fmt::print("{:<40} {:>8} {:>8} {:>8} {:>10} {:>8} {:>9}\n", step, used, free,
             meminfo_kb(m, "Shmem"), cache, meminfo_kb(m, "Dirty"), avail);
}

}  // namespace

std::string cache_demo(bool print) {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = 64ull << 20}};
  c.swap = 64ull << 20;
  c.dirty_writeback_centisecs = 0;  // the steps, not the flusher's clock, move Dirty
  c.dirty_ratio = 90;
  c.dirty_background_ratio = 80;
  auto booted = boot_with_reclaim(c);
  if (!booted) return "page-cache machine: " + booted.error().message;
  Machine& m = **booted;
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu) return "cannot bind CPU 0";
  Process* writer = nullptr;
  if (spawn(m, "demo-cache", &writer) != 0) return "spawn failed";
  if (print) {
    fmt::print(
        "\n== page cache: a 40 MiB file on a 64 MiB machine, then 56 MiB of anonymous memory ==\n");
    fmt::print("{:<40} {:>8} {:>8} {:>8} {:>10} {:>8} {:>9}\n", "step (kB)", "used", "free",
               "shared", "buff/cache", "Dirty", "available");
    print_free(m, "boot");
  }
  constexpr uint64_t kFilePages = (40ull << 20) / PAGE_SIZE;
  const int fd = sys_open(m, writer->files, "demo.dat", O_CREAT | O_RDWR | O_TRUNC);
  if (fd < 0) return fmt::format("open: errno {}", -fd);
  std::vector<uint64_t> page(PAGE_SIZE / sizeof(uint64_t));
  for (uint64_t i = 0; i < kFilePages; ++i) {
    for (uint64_t w = 0; w < page.size(); ++w) page[w] = i * 1000003 + w;
    if (sys_write(m, writer->files, fd, page.data(), PAGE_SIZE) != static_cast<int64_t>(PAGE_SIZE))
      return "write failed";
  }
  if (print) print_free(m, "wrote 40 MiB (not yet synced)");
  if (sys_fsync(m, writer->files, fd) != 0) return "fsync failed";
  if (print) print_free(m, "fsync");
  uint64_t bad = 0;
  const int64_t pgpgin = m.sum_event(VmEvent::PGPGIN);
  sys_lseek(m, writer->files, fd, 0, 0);
  for (uint64_t i = 0; i < kFilePages; ++i) {
    if (sys_read(m, writer->files, fd, page.data(), PAGE_SIZE) != static_cast<int64_t>(PAGE_SIZE) ||
        page[7] != i * 1000003 + 7)
      ++bad;
  }
  if (print)
    print_free(
        m, fmt::format("read it back ({} kB from disk)", m.sum_event(VmEvent::PGPGIN) - pgpgin));
  Process* anon = nullptr;
  if (spawn(m, "demo-anon", &anon) != 0) return "spawn failed";
  constexpr uint64_t kAnonPages = (56ull << 20) / PAGE_SIZE;
  const int64_t a = do_mmap(anon->mm, 0, kAnonPages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) return "mmap failed";
  const int64_t steal_file = m.sum_event(VmEvent::PGSTEAL_FILE);
  for (uint64_t i = 0; i < kAnonPages; ++i) {
    const uint64_t v = i + 1;
    if (!access_write(anon->mm, static_cast<uint64_t>(a) + i * PAGE_SIZE, &v, sizeof v).ok()) ++bad;
  }
  if (print)
    print_free(m, fmt::format("56 MiB anon ({} file pages reclaimed)",
                              m.sum_event(VmEvent::PGSTEAL_FILE) - steal_file));
  exit_process(anon);
  drop_caches(m, 3);
  if (print) print_free(m, "exit, drop_caches 3");
  // The file still reads back right, from the host file now.
  sys_lseek(m, writer->files, fd, 0, 0);
  for (uint64_t i = 0; i < kFilePages; i += 61) {
    if (sys_pread(m, writer->files, fd, page.data(), PAGE_SIZE, i * PAGE_SIZE) !=
            static_cast<int64_t>(PAGE_SIZE) ||
        page[9] != i * 1000003 + 9)
      ++bad;
  }
  // shmem: a memfd's pages are page cache that only swap can free.
  constexpr uint64_t kShmemPages = (16ull << 20) / PAGE_SIZE;
  const int mfd = sys_memfd_create(m, writer->files, "demo", 0);
  if (mfd < 0) return fmt::format("memfd_create: errno {}", -mfd);
  for (uint64_t i = 0; i < kShmemPages; ++i) {
    for (uint64_t w = 0; w < page.size(); ++w) page[w] = i * 7919 + w;
    if (sys_write(m, writer->files, mfd, page.data(), PAGE_SIZE) != static_cast<int64_t>(PAGE_SIZE))
      return "memfd write failed";
  }
  drop_caches(m, 1);
  if (print) print_free(m, "16 MiB memfd, drop_caches 1");
  if (spawn(m, "demo-anon", &anon) != 0) return "spawn failed";
  const int64_t a2 = do_mmap(anon->mm, 0, kAnonPages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS);
  if (a2 < 0) return "mmap failed";
  for (uint64_t i = 0; i < kAnonPages; ++i) {
    const uint64_t v = i + 1;
    if (!access_write(anon->mm, static_cast<uint64_t>(a2) + i * PAGE_SIZE, &v, sizeof v).ok())
      ++bad;
  }
  if (print)
    print_free(m, fmt::format("56 MiB anon ({} kB shmem in swap)",
                              meminfo_kb(m, "SwapTotal") - meminfo_kb(m, "SwapFree")));
  exit_process(anon);
  for (uint64_t i = 0; i < kShmemPages; i += 37) {
    if (sys_pread(m, writer->files, mfd, page.data(), PAGE_SIZE, i * PAGE_SIZE) !=
            static_cast<int64_t>(PAGE_SIZE) ||
        page[5] != i * 7919 + 5)
      ++bad;
  }
  sys_close(m, writer->files, mfd);
  if (print) print_free(m, "exit, close the memfd");
  sys_close(m, writer->files, fd);
  exit_process(writer);
  lru_add_drain_all(m);
  if (bad) return fmt::format("{} file or anonymous pages read back wrong", bad);
  if (std::string err = filemap_check(m); !err.empty()) return err;
  if (std::string err = lru_check(m); !err.empty()) return err;
  return "";
}

}  // namespace mmsim
