// Big blocks: carved from one reserved range of address space, the heap's
// vmalloc area (big_block.h).
#include "malloc/big_block.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>

#include "base/spinlock.h"
#include "phys/page.h"

namespace mmkit {

namespace {

constexpr uint64_t kBigMagic = 0x6d6d6b6974626967;  // "mmkitbig"

struct BigHeader {
  uint64_t magic;
  char* map_base;
  size_t map_len;
};

std::atomic<size_t> nr_blocks{0}, nr_bytes{0};
// High-water marks of the two, for malloc_stats()'s "max mmap" lines.
std::atomic<size_t> max_blocks{0}, max_bytes{0};

void raise_to(std::atomic<size_t>& mark, size_t v) {
  size_t now = mark.load(std::memory_order_relaxed);
  while (v > now && !mark.compare_exchange_weak(now, v, std::memory_order_relaxed)) {
  }
}

// A free range of the area. A dirty one may hold resident pages (it was a
// block); a clean one holds none and reads as zero. Ranges of one kind merge
// with their neighbours of the same kind; a block may span neighbours of
// both kinds.
struct Range {
  uintptr_t start;
  size_t len;
  uint64_t freed_ms;  // when it became dirty (CLOCK_MONOTONIC_COARSE)
  bool dirty;
};

constexpr unsigned kMaxRanges = 4096;
constexpr uint64_t kDecayMs = 2000;  // free-page reporting's delay

struct Area {
  SpinLock lock;
  uintptr_t base GUARDED_BY(lock) = 0, end GUARDED_BY(lock) = 0;
  bool tried GUARDED_BY(lock) = false;
  Range range[kMaxRanges] GUARDED_BY(lock) = {};  // sorted by address
  unsigned n GUARDED_BY(lock) = 0;
  size_t dirty GUARDED_BY(lock) = 0;
  std::atomic<size_t> dirty_ranges{0};  // for a lock-free look
  std::atomic<size_t> peak{0};          // live big bytes' high-water mark
};
constinit Area area;

size_t page_align(size_t n) {
  return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

BigHeader* header_of(const void* p) {
  return reinterpret_cast<BigHeader*>(const_cast<char*>(static_cast<const char*>(p)) - PAGE_SIZE);
}

// lazy_max_pages() (mm/vmalloc.c): 32 MiB for each power of two of CPUs.
size_t lazy_max() {
  static const size_t max = [] {
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return static_cast<size_t>(std::bit_width(static_cast<unsigned long>(cpus > 0 ? cpus : 1)))
           << 25;
  }();
  return max;
}

// Reserves the area on first use: four times the host's RAM and swap of
// address space, unaccounted (MAP_NORESERVE) and inaccessible, so a page
// costs nothing until it is touched. Clean free ranges stay PROT_NONE and a
// block's range becomes writable when it is carved (make_accessible), so
// only blocks and the dirty ranges they leave are writable: mlockall(),
// which faults in and locks every accessible page, locks those and not
// the area's terabytes. Without it (strict overcommit, an address space
// limit) every block is a mapping of its own.
bool area_ready() REQUIRES(area.lock) {
  if (area.tried) return area.base != 0;
  area.tried = true;
  struct sysinfo si = {};
  uint64_t bytes = uint64_t{64} << 30;
  if (sysinfo(&si) == 0)
    bytes = std::max(bytes, 4 * (uint64_t{si.totalram} + si.totalswap) * si.mem_unit);
  bytes = std::min(bytes, uint64_t{1} << 44) & ~(uint64_t{PAGE_SIZE} - 1);
  void* m = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return false;
  area.base = reinterpret_cast<uintptr_t>(m);
  area.end = area.base + bytes;
  area.range[0] = {area.base, bytes, 0, false};
  area.n = 1;
  return true;
}

void range_erase(unsigned i) REQUIRES(area.lock) {
  std::memmove(&area.range[i], &area.range[i + 1], (area.n - i - 1) * sizeof(Range));
  --area.n;
}

void count_dirty(const Range& r, bool add) REQUIRES(area.lock) {
  if (!r.dirty) return;
  if (add) {
    area.dirty += r.len;
    area.dirty_ranges.fetch_add(1, std::memory_order_relaxed);
  } else {
    area.dirty -= r.len;
    area.dirty_ranges.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Inserts a free range, merging it with neighbours of its kind. Returns
// false when the table is full (the caller keeps the range out of use).
bool range_insert(Range r) REQUIRES(area.lock) {
  unsigned i = 0;
  while (i < area.n && area.range[i].start < r.start) ++i;
  if (i > 0) {
    Range& prev = area.range[i - 1];
    if (prev.dirty == r.dirty && prev.start + prev.len == r.start) {
      count_dirty(prev, false);
      r.start = prev.start;
      r.len += prev.len;
      r.freed_ms = std::max(r.freed_ms, prev.freed_ms);
      range_erase(--i);
    }
  }
  if (i < area.n) {
    Range& next = area.range[i];
    if (next.dirty == r.dirty && r.start + r.len == next.start) {
      count_dirty(next, false);
      r.len += next.len;
      r.freed_ms = std::max(r.freed_ms, next.freed_ms);
      range_erase(i);
    }
  }
  if (area.n == kMaxRanges) return false;
  std::memmove(&area.range[i + 1], &area.range[i], (area.n - i) * sizeof(Range));
  area.range[i] = r;
  ++area.n;
  count_dirty(r, true);
  return true;
}

// Makes a range about to be carved writable (a no-op on dirty parts);
// false when the host refuses (too many mappings: vm.max_map_count).
bool make_accessible(uintptr_t start, size_t len) {
  return mprotect(reinterpret_cast<void*>(start), len, PROT_READ | PROT_WRITE) == 0;
}

// Maps a range afresh, inaccessible: its pages go back to the host and it
// reads as zero once carved again. Where the host refuses the new mapping,
// the pages still go and the range stays writable. False when the range
// is not mapped at all afterwards (a hole the host would not refill).
bool discard(uintptr_t start, size_t len) {
  void* at = reinterpret_cast<void*>(start);
  return mmap(at, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) !=
             MAP_FAILED ||
         madvise(at, len, MADV_DONTNEED) == 0;
}

// Hands a dirty range's pages back to the host; it becomes clean.
void purge(unsigned i) REQUIRES(area.lock) {
  Range r = area.range[i];
  count_dirty(r, false);
  range_erase(i);
  discard(r.start, r.len);
  r.dirty = false;
  range_insert(r);
}

// Purges dirty ranges older than kDecayMs, then the oldest ones until the
// dirty bytes fit under the cap: twice the peak of the live big blocks
// (first fit leaves holes between them that a later block may not fit),
// and at least vmalloc's lazy_max_pages().
void purge_lazy(uint64_t now) REQUIRES(area.lock) {
  const size_t cap = std::max(lazy_max(), 2 * area.peak.load(std::memory_order_relaxed));
  for (;;) {
    unsigned oldest = area.n;
    for (unsigned i = 0; i < area.n; ++i)
      if (area.range[i].dirty &&
          (oldest == area.n || area.range[i].freed_ms < area.range[oldest].freed_ms))
        oldest = i;
    if (oldest == area.n) return;
    if (area.dirty <= cap && now - area.range[oldest].freed_ms <= kDecayMs) return;
    purge(oldest);
  }
}

// Takes `len` bytes from the run of adjacent free ranges that starts at
// range i and holds them, clearing the dirty parts when `zero`.
void take_run(unsigned i, size_t len, bool zero) REQUIRES(area.lock) {
  while (len) {
    Range& r = area.range[i];
    const size_t take = std::min(r.len, len);
    if (r.dirty) {
      area.dirty -= take;
      if (zero) std::memset(reinterpret_cast<void*>(r.start), 0, take);
    }
    len -= take;
    if (take == r.len) {
      if (r.dirty) area.dirty_ranges.fetch_sub(1, std::memory_order_relaxed);
      range_erase(i);
    } else {
      r.start += take;
      r.len -= take;
    }
  }
}

// The bytes of the run of adjacent free ranges from range i, up to `want`.
size_t run_bytes(unsigned i, size_t want) REQUIRES(area.lock) {
  size_t total = area.range[i].len;
  for (unsigned j = i; total < want && j + 1 < area.n &&
                       area.range[j].start + area.range[j].len == area.range[j + 1].start;)
    total += area.range[++j].len;
  return total;
}

// Carves `len` bytes at the lowest address where a run of free ranges holds
// them (first fit: the low ranges are the ones freed and resident, the top
// of the area is untouched). Returns 0 when the area cannot.
uintptr_t area_alloc(size_t len, bool zero) REQUIRES(area.lock) {
  if (!area_ready()) return 0;
  for (unsigned i = 0; i < area.n; ++i) {
    if (run_bytes(i, len) < len) continue;
    const uintptr_t start = area.range[i].start;
    if (!make_accessible(start, len)) return 0;
    take_run(i, len, zero);
    return start;
  }
  return 0;
}

// Returns a block's range to the area, dirty.
void area_free(uintptr_t start, size_t len) REQUIRES(area.lock) {
  const uint64_t now = coarse_now_ms();
  if (!range_insert({start, len, now, true})) {
    // No room to remember it: its pages go back and its address space
    // stays out of use.
    madvise(reinterpret_cast<void*>(start), len, MADV_DONTNEED);
  }
  purge_lazy(now);
}

bool in_area(const void* p) NO_THREAD_SAFETY_ANALYSIS {
  // base and end are written once, under the lock, before any block exists.
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return a >= area.base && a < area.end;
}

void* finish(char* base, size_t len, char* user) {
  BigHeader* h = header_of(user);
  *h = {kBigMagic, base, len};
  raise_to(max_blocks, nr_blocks.fetch_add(1, std::memory_order_relaxed) + 1);
  const size_t live = nr_bytes.fetch_add(len, std::memory_order_relaxed) + len;
  raise_to(area.peak, live);
  raise_to(max_bytes, live);
  return user;
}

// A block of its own mapping, aligned as asked: the slack around it is
// unmapped.
void* map_alone(size_t body, size_t align) {
  const size_t len = PAGE_SIZE + body + (align - PAGE_SIZE);
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  char* base = static_cast<char*>(m);
  char* user = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + PAGE_SIZE + align - 1) &
                                       ~(uintptr_t{align} - 1));
  char* head = user - PAGE_SIZE;
  char* end = user + body;
  if (head > base) munmap(base, static_cast<size_t>(head - base));
  if (end < base + len) munmap(end, static_cast<size_t>(base + len - end));
  return finish(head, static_cast<size_t>(end - head), user);
}

}  // namespace

uint64_t coarse_now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void* big_alloc(size_t size, size_t align, bool zero) {
  if (align < PAGE_SIZE) align = PAGE_SIZE;
  if (size > (SIZE_MAX >> 2) || align > (SIZE_MAX >> 2)) return nullptr;
  const size_t body = page_align(size);
  if (align == PAGE_SIZE) {
    uintptr_t start;
    {
      SpinGuard g(area.lock);
      start = area_alloc(PAGE_SIZE + body, zero);
    }
    if (start) {
      char* base = reinterpret_cast<char*>(start);
      return finish(base, PAGE_SIZE + body, base + PAGE_SIZE);
    }
  }
  return map_alone(body, align);
}

void big_free(void* p) {
  BigHeader* h = header_of(p);
  char* base = h->map_base;
  const size_t len = h->map_len;
  nr_blocks.fetch_sub(1, std::memory_order_relaxed);
  nr_bytes.fetch_sub(len, std::memory_order_relaxed);
  h->magic = 0;
  if (!in_area(base)) {
    munmap(base, len);
    return;
  }
  SpinGuard g(area.lock);
  area_free(reinterpret_cast<uintptr_t>(base), len);
}

bool big_trim() {
  SpinGuard g(area.lock);
  bool any = false;
  for (unsigned i = 0; i < area.n;) {
    if (!area.range[i].dirty) {
      ++i;
      continue;
    }
    purge(i);  // may merge with the clean ranges around: start again
    any = true;
    i = 0;
  }
  area.peak.store(nr_bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
  return any;
}

void big_decay() {
  if (!area.dirty_ranges.load(std::memory_order_relaxed)) return;
  SpinGuard g(area.lock);
  purge_lazy(coarse_now_ms());
  if (!area.dirty) area.peak.store(nr_bytes.load(std::memory_order_relaxed));
}

void big_lock() NO_THREAD_SAFETY_ANALYSIS {
  area.lock.lock();
}
void big_unlock() NO_THREAD_SAFETY_ANALYSIS {
  area.lock.unlock();
}

bool big_owns(const void* p) {
  if (reinterpret_cast<uintptr_t>(p) & (PAGE_SIZE - 1)) return false;
  return header_of(p)->magic == kBigMagic;
}

size_t big_usable_size(const void* p) {
  const BigHeader* h = header_of(p);
  return h->map_len - static_cast<size_t>(static_cast<const char*>(p) - h->map_base);
}

void* big_realloc(void* p, size_t size) {
  BigHeader* h = header_of(p);
  if (size > (SIZE_MAX >> 2)) return nullptr;
  char* base = h->map_base;
  const size_t old_len = h->map_len, new_len = PAGE_SIZE + page_align(size);
  if (!in_area(base)) {
    // Its own mapping moves as a whole (mremap copies nothing).
    void* m = mremap(base, old_len, new_len, MREMAP_MAYMOVE);
    if (m == MAP_FAILED) return nullptr;
    nr_bytes.fetch_add(new_len - old_len, std::memory_order_relaxed);
    BigHeader* nh = static_cast<BigHeader*>(m);
    nh->map_base = static_cast<char*>(m);
    nh->map_len = new_len;
    return static_cast<char*>(m) + PAGE_SIZE;
  }
  const uintptr_t start = reinterpret_cast<uintptr_t>(base);
  SpinGuard g(area.lock);
  if (new_len <= old_len) {  // the tail goes back
    if (new_len < old_len) area_free(start + new_len, old_len - new_len);
    nr_bytes.fetch_sub(old_len - new_len, std::memory_order_relaxed);
    h->map_len = new_len;
    return p;
  }
  // In place, when the free ranges after the block hold the growth.
  const uintptr_t old_end = start + old_len;
  for (unsigned i = 0; i < area.n && area.range[i].start <= old_end; ++i) {
    if (area.range[i].start != old_end) continue;
    if (run_bytes(i, new_len - old_len) < new_len - old_len ||
        !make_accessible(old_end, new_len - old_len))
      break;
    take_run(i, new_len - old_len, false);
    nr_bytes.fetch_add(new_len - old_len, std::memory_order_relaxed);
    h->map_len = new_len;
    return p;
  }
  // Elsewhere in the area: the pages move with mremap(), and the hole they
  // leave is mapped again and freed clean.
  const uintptr_t to = area_alloc(new_len, false);
  if (!to) return nullptr;
  void* moved =
      mremap(base, old_len, old_len, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(to));
  if (moved == MAP_FAILED) {
    area_free(to, new_len);
    return nullptr;
  }
  if (discard(start, old_len)) range_insert({start, old_len, 0, false});
  BigHeader* nh = reinterpret_cast<BigHeader*>(to);
  nh->map_base = reinterpret_cast<char*>(to);
  nh->map_len = new_len;
  nr_bytes.fetch_add(new_len - old_len, std::memory_order_relaxed);
  return reinterpret_cast<char*>(to) + PAGE_SIZE;
}

std::string big_check() {
  SpinGuard g(area.lock);
  size_t dirty = 0, dirty_ranges = 0;
  for (unsigned i = 0; i < area.n; ++i) {
    const Range& r = area.range[i];
    if (!r.len || r.start < area.base || r.start + r.len > area.end ||
        (r.start | r.len) & (PAGE_SIZE - 1))
      return fmt::format(
          "big blocks: free range {} [{:#x}, +{:#x}) is not a page range of the area", i, r.start,
          r.len);
    if (i) {
      const Range& prev = area.range[i - 1];
      if (prev.start + prev.len > r.start)
        return fmt::format("big blocks: free range {} at {:#x} overlaps the one before", i,
                           r.start);
      if (prev.start + prev.len == r.start && prev.dirty == r.dirty)
        return fmt::format("big blocks: free ranges {} and {} at {:#x} touch and did not merge",
                           i - 1, i, r.start);
    }
    if (r.dirty) {
      dirty += r.len;
      ++dirty_ranges;
    }
  }
  if (dirty != area.dirty || dirty_ranges != area.dirty_ranges.load())
    return fmt::format("big blocks: {} dirty bytes in {} ranges, but the area counts {} in {}",
                       dirty, dirty_ranges, area.dirty, area.dirty_ranges.load());
  return "";
}

size_t big_blocks() {
  return nr_blocks.load(std::memory_order_relaxed);
}
size_t big_bytes() {
  return nr_bytes.load(std::memory_order_relaxed);
}
size_t big_max_blocks() {
  return max_blocks.load(std::memory_order_relaxed);
}
size_t big_max_bytes() {
  return max_bytes.load(std::memory_order_relaxed);
}
bool big_has_cached() {
  return area.dirty_ranges.load(std::memory_order_relaxed) != 0;
}
size_t big_cached_bytes() {
  SpinGuard g(area.lock);
  return area.dirty;
}

}  // namespace mmkit
