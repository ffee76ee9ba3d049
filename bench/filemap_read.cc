// Page-cache read throughput: mmkit's read and pread of a file against raw
// pread of the very host file that backs it, in the same run. The target
// (bench/ratios.py) is a cold sequential read at least 0.8 of raw; the
// other pairs are for information.
//
//   filemap/raw_pread/4KiB     host pread of 4 KiB at the next offset of the
//   filemap/raw_pread/1MiB     64 MiB file (sequential, wrapping at its
//                              end), the file in the host's page cache
//   filemap/pread_cached/4KiB  sys_pread of the same sizes at the same
//   filemap/pread_cached/1MiB  offsets, every page of the file in mmkit's
//                              page cache: fget, the index lookup and
//                              reference of each page, the copy,
//                              mark_page_accessed, the put
//   filemap/raw_pread_seq      one pass over the file per iteration, host
//                              pread of 128 KiB at a time (the size of
//                              mmkit's readahead window, VM_READAHEAD_PAGES)
//   filemap/read_cold_seq      one pass per iteration, sys_read of 128 KiB at
//                              a time from offset 0, right after
//                              drop_caches(m, 1): every page is allocated,
//                              charged, inserted in the index and on the LRU
//                              and filled by readahead's preadv of its
//                              window from the host file, then copied out
//   filemap/raw_preadv_frames  diagnostic: one pass per iteration of the
//                              host syscall readahead issues and nothing
//                              else, a preadv of 128 KiB into 32 frames of
//                              the machine's RAM, over 16,384 frames held
//                              for the run (the file's footprint in mmkit's
//                              page cache): read_cold_seq's floor. Unlike
//                              raw_pread_seq's one 128 KiB buffer, its
//                              destination is 64 MiB of memory mapped in
//                              4 KiB host pages, as the page cache's is
//   filemap/raw_pread_random   host pread of 4 KiB at the next page of a
//                              fixed random permutation of the file's pages
//   filemap/pread_cold_random  sys_pread of 4 KiB at the same offsets; the
//                              cache is dropped before the permutation
//                              starts, so every read misses (a random miss
//                              reads just its page)
//
// Both sides read into the same host buffer (1 MiB, resident) and both go
// through the host's page cache: the host file is read once before any
// benchmark, and the raw side's "cold" peer is hot in the host as mmkit's
// host reads are. So no side measures disk speed; what differs besides
// mmkit's own work is where the bytes land: mmkit's host reads fill frames
// of the machine's RAM (a memfd mapped in 4 KiB host pages, 64 MiB of them
// for the file) and its cached reads copy out of them, where the raw side
// copies from the host's page cache into one small hot buffer.
// raw_preadv_frames measures that part alone. drop_caches, the lseek back
// to offset 0 and the untimed pass that fills the cache for the cached
// pairs (after a drop, so the frames are in file order) run with the timer
// stopped. One machine (1 GiB, 2 CPUs, no swap, booted with reclaim) serves
// every benchmark, on CPU 0; its free frames are all written once, from user
// space and by a host read, when the first benchmark starts, so no side
// pays for the host's first touch of a frame. The file's 16,384 pages are a sixteenth of its RAM:
// nothing is reclaimed.
//
// Counter of the cold pairs: pgpgin_pages, the pages mmkit read from the
// host file per iteration (16384 a pass; 1 a random read).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "filemap/filemap.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"

namespace mmkit_bench {
namespace {

using namespace mmkit;

constexpr uint64_t kFileBytes = 64ull << 20;
constexpr uint64_t kFilePages = kFileBytes >> PAGE_SHIFT;                // 16384
constexpr uint64_t kChunk = uint64_t{VM_READAHEAD_PAGES} << PAGE_SHIFT;  // 128 KiB
constexpr uint64_t kBufBytes = 1ull << 20;
constexpr const char* kName = "filemap-read-64MiB";

// The file's contents: each 8-byte word its own offset, scrambled.
uint64_t word_at(uint64_t off) {
  return off * 0x9e3779b97f4a7c15ull;
}

// The host's pread of a whole range, retrying short reads; false on error
// or end of file.
bool host_pread(int fd, char* buf, uint64_t len, uint64_t off) {
  while (len) {
    const ssize_t n = pread(fd, buf, len, static_cast<off_t>(off));
    if (n <= 0) return false;
    buf += n;
    len -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return true;
}

// What every page-cache read benchmark shares, made once: the machine, the
// 64 MiB file written on the host below its file system's root, the raw
// side's descriptor of that host file, the buffer both sides read into,
// and the random pairs' permutation of page offsets.
struct Shared {
  std::unique_ptr<Machine> m;
  int raw_fd = -1;
  char* buf = nullptr;
  std::vector<uint64_t> random_pages;

  ~Shared() {
    if (raw_fd >= 0) close(raw_fd);
    std::free(buf);
  }
};

const char* make_shared(Shared& s) {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = 1ull << 30}};
  auto r = boot_with_reclaim(c);
  if (!r.ok()) return "cannot boot the machine";
  s.m = std::move(r.value());
  Machine& m = *s.m;
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu.ok()) return "cannot bind CPU 0";

  s.buf = static_cast<char*>(std::aligned_alloc(PAGE_SIZE, kBufBytes));
  if (!s.buf) return "no buffer";
  const std::string path = fs_host_path(m, kName);
  const int w = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w < 0) return "cannot create the file";
  for (uint64_t off = 0; off < kFileBytes; off += kBufBytes) {
    for (uint64_t i = 0; i < kBufBytes; i += 8) {
      const uint64_t v = word_at(off + i);
      std::memcpy(s.buf + i, &v, 8);
    }
    if (pwrite(w, s.buf, kBufBytes, static_cast<off_t>(off)) != static_cast<ssize_t>(kBufBytes)) {
      close(w);
      return "cannot write the file";
    }
  }
  close(w);
  s.raw_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (s.raw_fd < 0) return "cannot open the file";
  for (uint64_t off = 0; off < kFileBytes; off += kBufBytes)  // the host's cache, hot
    if (!host_pread(s.raw_fd, s.buf, kBufBytes, off)) return "cannot read the file";

  // Every free frame written from user space and by the host kernel (a
  // pread into it): on this kind of virtual machine the kernel's first
  // write to a user page costs about 8 us even when user space has written
  // it, and the first benchmark to read into a frame would pay it.
  std::vector<Page*> all;
  while (Page* p = alloc_page(m, (GFP_HIGHUSER_MOVABLE & ~__GFP_RECLAIM) | __GFP_NOWARN)) {
    char* frame = m.phys_window(m.page_to_pfn(p));
    std::memset(frame, 0xa5, PAGE_SIZE);
    const uint64_t off = (all.size() << PAGE_SHIFT) % kFileBytes;
    if (!host_pread(s.raw_fd, frame, PAGE_SIZE, off)) return "cannot read the file";
    all.push_back(p);
  }
  for (Page* p : all) put_page(m, p);

  s.random_pages.resize(kFilePages);
  std::iota(s.random_pages.begin(), s.random_pages.end(), uint64_t{0});
  std::shuffle(s.random_pages.begin(), s.random_pages.end(), std::mt19937_64(42));
  return nullptr;
}

// The shared state, or null with the benchmark skipped.
Shared* shared(benchmark::State& state) {
  static std::mutex mu;
  static std::unique_ptr<Shared> s;
  static const char* error = nullptr;
  std::lock_guard<std::mutex> g(mu);
  if (!s && !error) {
    s = std::make_unique<Shared>();
    error = make_shared(*s);
  }
  if (error) {
    state.SkipWithError(error);
    return nullptr;
  }
  return s.get();
}

// One benchmark run on CPU 0 of the shared machine, with the file open in
// its own descriptor table. It must end with filemap_check() clean and no
// bad page.
class ReadRun {
 public:
  explicit ReadRun(benchmark::State& state) : state_(state), s_(shared(state)) {
    if (!s_) return;
    auto cpu = CpuScope::bind(*s_->m, 0);
    if (!cpu.ok()) {
      state.SkipWithError("cannot bind CPU 0");
      s_ = nullptr;
      return;
    }
    cpu_.emplace(std::move(cpu.value()));
    fd_ = sys_open(m(), ft_, kName, O_RDONLY);
    if (fd_ < 0) fail("sys_open failed");
  }
  ~ReadRun() {
    if (!s_) return;
    if (fd_ >= 0) sys_close(m(), ft_, fd_);
    if (failed_) return;
    if (const std::string err = filemap_check(m()); !err.empty())
      state_.SkipWithError(("filemap_check: " + err).c_str());
    else if (m().bad_pages.get() != 0)
      state_.SkipWithError("bad page state");
  }
  ReadRun(const ReadRun&) = delete;
  ReadRun& operator=(const ReadRun&) = delete;

  bool ok() const { return s_ && !failed_; }
  Machine& m() const { return *s_->m; }
  FileTable& ft() { return ft_; }
  int fd() const { return fd_; }
  int raw_fd() const { return s_->raw_fd; }
  char* buf() const { return s_->buf; }
  uint64_t random_page(uint64_t i) const { return s_->random_pages[i]; }

  // Every page of the file in mmkit's page cache, brought in by one
  // sequential pass after a drop (so the figures do not depend on the
  // order an earlier benchmark left frames in), read back and checked
  // against what was written; false (the run skipped) otherwise.
  bool fill_cache() {
    if (!drop()) return false;
    for (uint64_t off = 0; off < kFileBytes; off += kBufBytes) {
      if (sys_pread(m(), ft_, fd_, buf(), kBufBytes, off) != static_cast<int64_t>(kBufBytes))
        return fail("sys_pread failed"), false;
      for (uint64_t i = 0; i < kBufBytes; i += PAGE_SIZE) {
        uint64_t v;
        std::memcpy(&v, buf() + i, 8);
        if (v != word_at(off + i)) return fail("the file reads back wrong"), false;
      }
    }
    return true;
  }
  // drop_caches(m, 1) with the file's pages all gone; false (skipped) if not.
  bool drop() {
    if (drop_caches(m(), 1) != 0) return fail("drop_caches failed"), false;
    if (m().node_stat_sum(NodeStat::NR_FILE_PAGES) != 0)
      return fail("drop_caches left file pages"), false;
    return true;
  }

 private:
  void fail(const char* why) {
    state_.SkipWithError(why);
    failed_ = true;
  }

  benchmark::State& state_;
  Shared* s_;
  std::optional<CpuScope> cpu_;
  FileTable ft_;
  int fd_ = -1;
  bool failed_ = false;
};

void set_pgpgin(benchmark::State& state, Machine& m, int64_t before_kib) {
  const int64_t pages = (m.sum_event(VmEvent::PGPGIN) - before_kib) / (PAGE_SIZE / 1024);
  state.counters["pgpgin_pages"] =
      benchmark::Counter(static_cast<double>(pages) / static_cast<double>(state.iterations()));
}

}  // namespace

void BM_filemap_raw_pread(benchmark::State& state, uint64_t size) {
  ReadRun b(state);
  if (!b.ok()) return;
  uint64_t off = 0;
  for (auto _ : state) {
    if (off == kFileBytes) off = 0;
    if (pread(b.raw_fd(), b.buf(), size, static_cast<off_t>(off)) != static_cast<ssize_t>(size)) {
      state.SkipWithError("pread failed");
      break;
    }
    off += size;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_filemap_pread_cached(benchmark::State& state, uint64_t size) {
  ReadRun b(state);
  if (!b.ok() || !b.fill_cache()) return;
  Machine& m = b.m();
  uint64_t off = 0;
  for (auto _ : state) {
    if (off == kFileBytes) off = 0;
    if (sys_pread(m, b.ft(), b.fd(), b.buf(), size, off) != static_cast<int64_t>(size)) {
      state.SkipWithError("sys_pread failed");
      break;
    }
    off += size;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_filemap_raw_pread_seq(benchmark::State& state) {
  ReadRun b(state);
  if (!b.ok()) return;
  for (auto _ : state) {
    state.PauseTiming();  // as the mmkit side's drop and lseek
    state.ResumeTiming();
    for (uint64_t off = 0; off < kFileBytes; off += kChunk) {
      if (pread(b.raw_fd(), b.buf(), kChunk, static_cast<off_t>(off)) !=
          static_cast<ssize_t>(kChunk)) {
        state.SkipWithError("pread failed");
        break;
      }
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFileBytes));
}

void BM_filemap_read_cold_seq(benchmark::State& state) {
  ReadRun b(state);
  if (!b.ok()) return;
  Machine& m = b.m();
  const int64_t before = m.sum_event(VmEvent::PGPGIN);
  for (auto _ : state) {
    state.PauseTiming();
    const bool dropped = b.drop();
    const bool rewound = dropped && sys_lseek(m, b.ft(), b.fd(), 0, SEEK_SET) == 0;
    state.ResumeTiming();
    if (!rewound) {
      if (dropped) state.SkipWithError("sys_lseek failed");
      break;
    }
    for (uint64_t done = 0; done < kFileBytes; done += kChunk) {
      if (sys_read(m, b.ft(), b.fd(), b.buf(), kChunk) != static_cast<int64_t>(kChunk)) {
        state.SkipWithError("sys_read failed");
        break;
      }
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFileBytes));
  set_pgpgin(state, m, before);
}

void BM_filemap_raw_preadv_frames(benchmark::State& state) {
  ReadRun b(state);
  if (!b.ok()) return;
  Machine& m = b.m();
  std::vector<Page*> frames;
  frames.reserve(kFilePages);
  for (uint64_t i = 0; i < kFilePages; ++i) {
    Page* p = alloc_page(m, GFP_HIGHUSER_MOVABLE | __GFP_NOWARN);
    if (!p) break;
    frames.push_back(p);
  }
  std::vector<iovec> iov(frames.size());
  for (uint64_t i = 0; i < frames.size(); ++i)
    iov[i] = {m.phys_window(m.page_to_pfn(frames[i])), PAGE_SIZE};
  if (frames.size() != kFilePages) state.SkipWithError("no frames");
  for (auto _ : state) {
    if (frames.size() != kFilePages) break;
    state.PauseTiming();  // as the mmkit side's drop and lseek
    state.ResumeTiming();
    for (uint64_t i = 0; i < kFilePages; i += VM_READAHEAD_PAGES) {
      if (preadv(b.raw_fd(), &iov[i], VM_READAHEAD_PAGES, static_cast<off_t>(i << PAGE_SHIFT)) !=
          static_cast<ssize_t>(kChunk)) {
        state.SkipWithError("preadv failed");
        break;
      }
    }
  }
  for (Page* p : frames) put_page(m, p);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFileBytes));
}

void BM_filemap_raw_pread_random(benchmark::State& state) {
  ReadRun b(state);
  if (!b.ok()) return;
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kFilePages) i = 0;
    const off_t off = static_cast<off_t>(b.random_page(i) << PAGE_SHIFT);
    if (pread(b.raw_fd(), b.buf(), PAGE_SIZE, off) != static_cast<ssize_t>(PAGE_SIZE)) {
      state.SkipWithError("pread failed");
      break;
    }
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
}

void BM_filemap_pread_cold_random(benchmark::State& state) {
  ReadRun b(state);
  if (!b.ok() || !b.drop()) return;
  Machine& m = b.m();
  const int64_t before = m.sum_event(VmEvent::PGPGIN);
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kFilePages) {
      state.PauseTiming();
      const bool dropped = b.drop();
      i = 0;
      state.ResumeTiming();
      if (!dropped) break;
    }
    const uint64_t off = b.random_page(i) << PAGE_SHIFT;
    if (sys_pread(m, b.ft(), b.fd(), b.buf(), PAGE_SIZE, off) != static_cast<int64_t>(PAGE_SIZE)) {
      state.SkipWithError("sys_pread failed");
      break;
    }
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
  set_pgpgin(state, m, before);
}

}  // namespace mmkit_bench
