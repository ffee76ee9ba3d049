// Swap I/O throughput: mmkit's swap-out and swap-in of 4 KiB pages against
// raw pwrite/pread of the same size on a file like the swap area's, in the
// same run. The target (bench/ratios.py) is a throughput of at least 0.8 of
// raw for each.
//
//   swap/raw_pwrite      pwrite of one page at the next offset of a host file
//                        of the swap area's size, created where and opened
//                        as swapon opens its temporary files (TMPDIR or
//                        /tmp; O_RDWR | O_CREAT | O_CLOEXEC), from a frame
//                        of the machine's RAM
//   swap/out             one page through the swap layer as reclaim's
//                        shrink_one sends it out, page locked: add_to_swap
//                        (slot, swap-cache insertion, PG_dirty), the
//                        unmap's swap_duplicate (the PTE's reference to the
//                        slot), swap_writepage (PG_writeback, the pwrite,
//                        the vmstat events), delete_from_swap_cache (what
//                        __remove_mapping does once the page is clean)
//   swap/raw_pread       pread of one page at the next offset into a frame
//   swap/in              swapin_readahead of the next entry without
//                        readahead: cache lookup, a new frame, the slot's
//                        SWAP_HAS_CACHE, the memcg charge do_swap_page's
//                        callback makes, swap-cache insertion, the pread,
//                        the LRU batch
//   swap/in_readahead    the same with page_cluster 3: the entry's aligned
//                        window of 8 slots is read on its first entry, and
//                        the next seven entries find their pages cached
//
// Not included: the LRU scan, rmap and TLB work of reclaim, the page-table
// update of a swap-in fault (vm/fault_* measure faults), and freeing the
// pages or slots, which is done with the timer stopped when a pass over the
// area is complete. Each iteration is one page; a pass covers every slot of
// clusters 1..31 of a 32 MiB area (7936 pages, sequential offsets: slots are
// handed out cluster by cluster, and the pass's slots are freed highest
// first so the next pass fills them in ascending order again), and the raw
// side uses the same offsets of its own file. Both sides go through the
// host's page cache (swap areas are not opened O_DIRECT), so the ratio is
// the CPU cost of mmkit's path around the same syscall and copy, not disk
// speed. The benchmarks share one machine, whose free frames are all written
// once when the first of them starts, and each makes an untimed pass first,
// so neither side pays for the host's first touch of a frame or of a file
// page.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"

namespace mmkit_bench {
namespace {

using namespace mmkit;

constexpr uint64_t kAreaBytes = 32ull << 20;
constexpr uint64_t kAreaSlots = kAreaBytes >> PAGE_SHIFT;
constexpr uint64_t kFirst = SWAPFILE_CLUSTER;     // cluster 0 holds the header
constexpr uint64_t kPages = kAreaSlots - kFirst;  // 7936: clusters 1..31

// The raw side's file: created as swapon creates a temporary area (mkstemp
// in TMPDIR or /tmp), reopened with swapon's flags and sized as the area.
class RawFile {
 public:
  RawFile() {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/mmkit-raw-XXXXXX";
    const int tmp = mkstemp(path_.data());
    if (tmp < 0) {
      path_.clear();
      return;
    }
    close(tmp);
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0 && ftruncate(fd_, static_cast<off_t>(kAreaBytes)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawFile() {
    if (fd_ >= 0) close(fd_);
    if (!path_.empty()) unlink(path_.c_str());
  }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;

  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// What every swap benchmark shares, made once: a 128 MiB machine with one
// 32 MiB temporary swap area, booted with reclaim; kPages frames of its RAM
// filled with distinct data (what is written out, and where raw reads go);
// the raw file. Every free frame of the machine is written once first, so
// no benchmark pays for the host's first touch of its memory (tens of
// microseconds a page on a virtual machine).
struct Shared {
  std::unique_ptr<Machine> m;
  std::vector<Page*> frames;
  RawFile raw;

  ~Shared() {
    if (!m) return;
    for (Page* p : frames) put_page(*m, p);
  }
  char* window(uint64_t i) const { return m->phys_window(m->page_to_pfn(frames[i])); }
};

const char* make_shared(Shared& s) {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = 128ull << 20}};
  c.swap = kAreaBytes;
  auto r = boot_with_reclaim(c);
  if (!r.ok()) return "cannot boot the machine";
  s.m = std::move(r.value());
  Machine& m = *s.m;
  if (s.raw.fd() < 0) return "cannot create the raw file";
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu.ok()) return "cannot bind CPU 0";
  std::vector<Page*> all;
  while (Page* p = alloc_page(m, (GFP_HIGHUSER_MOVABLE & ~__GFP_RECLAIM) | __GFP_NOWARN)) {
    std::memset(m.phys_window(m.page_to_pfn(p)), 0xa5, PAGE_SIZE);
    all.push_back(p);
  }
  for (Page* p : all) put_page(m, p);
  for (uint64_t i = 0; i < kPages; ++i) {
    Page* p = alloc_page(m, GFP_HIGHUSER_MOVABLE);
    if (!p) return "no frames";
    s.frames.push_back(p);
    char* w = s.window(i);
    for (uint64_t off = 0; off < PAGE_SIZE; off += 8) {
      const uint64_t v = (i * PAGE_SIZE + off) * 0x9e3779b97f4a7c15ull;
      std::memcpy(w + off, &v, 8);
    }
  }
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

// One benchmark run on CPU 0 of the shared machine. It starts and must end
// with every slot free, swap_check() clean and no bad page.
class SwapRun {
 public:
  explicit SwapRun(benchmark::State& state) : state_(state), s_(shared(state)) {
    if (!s_) return;
    auto cpu = CpuScope::bind(*s_->m, 0);
    if (!cpu.ok()) {
      state.SkipWithError("cannot bind CPU 0");
      s_ = nullptr;
      return;
    }
    cpu_.emplace(std::move(cpu.value()));
    if (swap_free_pages(m()) != swap_total_pages(m())) {
      state.SkipWithError("the swap area is not empty");
      s_ = nullptr;
    }
  }
  ~SwapRun() {
    if (!s_) return;
    if (swap_free_pages(m()) != swap_total_pages(m()))
      state_.SkipWithError("slots left in use");
    else if (const std::string err = swap_check(m()); !err.empty())
      state_.SkipWithError(("swap_check: " + err).c_str());
    else if (m().bad_pages.get() != 0)
      state_.SkipWithError("bad page state");
  }
  SwapRun(const SwapRun&) = delete;
  SwapRun& operator=(const SwapRun&) = delete;
  bool ok() const { return s_ != nullptr; }
  Machine& m() const { return *s_->m; }
  Page* frame(uint64_t i) const { return s_->frames[i]; }
  char* window(uint64_t i) const { return s_->window(i); }
  int raw_fd() const { return s_->raw.fd(); }

 private:
  benchmark::State& state_;
  Shared* s_;
  std::optional<CpuScope> cpu_;
};

off_t slot_pos(uint64_t i) {
  return static_cast<off_t>((kFirst + i) << PAGE_SHIFT);
}

// One page out, as shrink_one() and __remove_mapping() do it; the entry, or
// {0} when swap is full or the write failed.
SwpEntry swap_out_one(Machine& m, Page* page) {
  while (page->test_and_set(PG_locked)) {
  }
  SwpEntry e{};
  if (add_to_swap(m, page, page_memcg(m, page)->id)) {
    e = SwpEntry{page->private_once()};
    swap_duplicate(m, e);  // try_to_unmap: the PTE now refers to the slot
    if (swap_writepage(m, page) != 0) {
      swap_free(m, e);
      e = {};
    }
    delete_from_swap_cache(m, page);
  }
  page->clear_atomic(PG_locked);
  return e;
}

// Swap entries held as page tables hold them. They go as zap_pte_range
// drops them (with a page readahead left in the swap cache), highest slot
// first, so the clusters return to the free stack in the order the next pass
// takes them: ascending.
class Entries {
 public:
  explicit Entries(Machine& m) : m_(m) { v_.reserve(kPages); }
  ~Entries() { clear(); }
  Entries(const Entries&) = delete;
  Entries& operator=(const Entries&) = delete;

  // Pages from..kPages-1 of the shared frames swapped out; false on failure.
  // A pass that reaches the area's end leaves the CPU's cluster hint empty,
  // so the next pass starts at cluster 1 again.
  bool fill(const SwapRun& b, uint64_t from) {
    for (uint64_t i = from; i < kPages; ++i) {
      const SwpEntry e = swap_out_one(m_, b.frame(i));
      if (!e.val) return false;
      v_.push_back(e);
    }
    return true;
  }
  void push(SwpEntry e) { v_.push_back(e); }
  SwpEntry operator[](uint64_t i) const { return v_[i]; }
  // A whole pass, with slot kFirst + i for page i.
  bool in_order() const {
    if (v_.size() != kPages) return false;
    for (uint64_t i = 0; i < kPages; ++i)
      if (swp_offset(v_[i]) != kFirst + i) return false;
    return true;
  }
  void clear() {
    for (auto it = v_.rbegin(); it != v_.rend(); ++it) free_swap_and_cache(m_, *it);
    v_.clear();
  }

 private:
  Machine& m_;
  std::vector<SwpEntry> v_;
};

// Pages a swap-in pass brought in, each with the reference swapin_readahead
// gave; drop() takes them out of the swap cache and frees them.
class SwappedIn {
 public:
  explicit SwappedIn(Machine& m) : m_(m) { v_.reserve(kPages); }
  ~SwappedIn() { drop(); }
  SwappedIn(const SwappedIn&) = delete;
  SwappedIn& operator=(const SwappedIn&) = delete;

  void push(Page* p) { v_.push_back(p); }
  void drop() {
    lru_add_drain(m_);
    for (Page* p : v_) {
      while (p->test_and_set(PG_locked)) {
      }
      delete_from_swap_cache(m_, p);
      p->clear_atomic(PG_locked);
      put_page(m_, p);
    }
    v_.clear();
  }

 private:
  Machine& m_;
  std::vector<Page*> v_;
};

}  // namespace

void BM_swap_raw_pwrite(benchmark::State& state) {
  SwapRun b(state);
  if (!b.ok()) return;
  for (uint64_t i = 0; i < kPages; ++i)  // the file's page cache, resident
    if (pwrite(b.raw_fd(), b.window(i), PAGE_SIZE, slot_pos(i)) != static_cast<ssize_t>(PAGE_SIZE))
      return state.SkipWithError("pwrite failed");
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kPages) i = 0;
    if (pwrite(b.raw_fd(), b.window(i), PAGE_SIZE, slot_pos(i)) !=
        static_cast<ssize_t>(PAGE_SIZE)) {
      state.SkipWithError("pwrite failed");
      break;
    }
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
}

void BM_swap_out(benchmark::State& state) {
  SwapRun b(state);
  if (!b.ok()) return;
  Machine& m = b.m();
  Entries entries(m);
  if (!entries.fill(b, 0)) return state.SkipWithError("swap-out failed");  // resident
  if (!entries.in_order()) return state.SkipWithError("slots not handed out in order");
  entries.clear();
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kPages) {
      state.PauseTiming();
      const bool in_order = entries.in_order();
      entries.clear();
      i = 0;
      state.ResumeTiming();
      if (!in_order) {
        state.SkipWithError("slots not handed out in order");
        break;
      }
    }
    const SwpEntry e = swap_out_one(m, b.frame(i));
    if (!e.val) {
      state.SkipWithError("swap-out failed");
      break;
    }
    entries.push(e);
    ++i;
  }
  if (!entries.fill(b, i)) state.SkipWithError("swap-out failed");  // the pass completed
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
}

void BM_swap_raw_pread(benchmark::State& state) {
  SwapRun b(state);
  if (!b.ok()) return;
  for (uint64_t i = 0; i < kPages; ++i)
    if (pwrite(b.raw_fd(), b.window(i), PAGE_SIZE, slot_pos(i)) != static_cast<ssize_t>(PAGE_SIZE))
      return state.SkipWithError("pwrite failed");
  for (uint64_t i = 0; i < kPages; ++i)  // one untimed pass, as the swap-in's
    if (pread(b.raw_fd(), b.window(i), PAGE_SIZE, slot_pos(i)) != static_cast<ssize_t>(PAGE_SIZE))
      return state.SkipWithError("pread failed");
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kPages) i = 0;
    if (pread(b.raw_fd(), b.window(i), PAGE_SIZE, slot_pos(i)) != static_cast<ssize_t>(PAGE_SIZE)) {
      state.SkipWithError("pread failed");
      break;
    }
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
}

void BM_swap_in(benchmark::State& state, bool readahead) {
  SwapRun b(state);
  if (!b.ok()) return;
  Machine& m = b.m();
  m.page_cluster = 3;
  Entries entries(m);
  if (!entries.fill(b, 0)) return state.SkipWithError("swap-out failed");
  if (!entries.in_order()) return state.SkipWithError("slots not handed out in order");
  // do_swap_page's charge: the slot's group, the faulting mm's otherwise.
  MemCgroup* const fallback = page_memcg(m, b.frame(0));
  const SwapChargeFn charge = [&m, fallback](Page* p, SwpEntry e, bool ra) {
    const uint16_t id = swap_cgroup_id(m, e);
    MemCgroup* cg = id ? memcg_state(m).group(id) : nullptr;
    return mem_cgroup_charge(m, p, cg ? cg : fallback, ra) == 0;
  };
  SwappedIn in(m);  // dropped before the entries go
  bool major = false;
  for (uint64_t i = 0; i < kPages; ++i) {  // the area's page cache, resident
    Page* p = swapin_readahead(m, entries[i], readahead, charge, &major);
    if (!p) return state.SkipWithError("swap-in failed");
    in.push(p);
  }
  in.drop();
  uint64_t i = 0, reads = 0;
  for (auto _ : state) {
    if (i == kPages) {
      state.PauseTiming();
      in.drop();
      i = 0;
      state.ResumeTiming();
    }
    Page* p = swapin_readahead(m, entries[i], readahead, charge, &major);
    if (!p) {
      state.SkipWithError("swap-in failed");
      break;
    }
    reads += major;
    in.push(p);
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
  // Entries whose own read was done (1 in 8 with readahead).
  state.counters["major"] =
      benchmark::Counter(static_cast<double>(reads) / static_cast<double>(state.iterations()));
}

}  // namespace mmkit_bench
