// The boot-time allocator: a reserved region, bump allocation in 16-byte
// units, and one free list per power-of-two size for reuse. Each block has a
// 16-byte header holding its size class, so the block size is a power of
// two from 16 bytes to 64 MiB (header included). The region is reserved
// once, unreserved (MAP_NORESERVE) and inaccessible; the bump pointer opens
// it a megabyte at a time, so only what is used is ever touched, and
// mlockall() locks that much, not the whole region. It
// is 256 MiB, or less when the address space is limited (RLIMIT_AS): at
// most a quarter of what the limit leaves, the first reservation that
// succeeds of 256, 128, ... down to 1 MiB.
#include "malloc/early_alloc.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>

#include "base/spinlock.h"

namespace mmkit {

namespace {

constexpr size_t kMaxRegionBytes = size_t{256} << 20, kMinRegionBytes = size_t{1} << 20;
constexpr unsigned kMinShift = 4, kMaxShift = 26;
constexpr size_t kOpenStep = size_t{1} << 20;  // how much of the region opens at a time

// In front of every block. An aligned block carries a second header right
// before the aligned address: shift kAligned, `block` the address
// early_alloc returned.
struct Header {
  uint64_t shift;
  void* block;
};
constexpr uint64_t kAligned = ~uint64_t{0};

// The early_alloc block an address belongs to.
void* block_of(const void* p) {
  const Header* h = static_cast<const Header*>(p) - 1;
  return h->shift == kAligned ? h->block : const_cast<void*>(p);
}

struct EarlyArena {
  SpinLock lock;
  std::atomic<char*> base{nullptr};
  std::atomic<size_t> bytes{0};  // the region's size, set before base
  char* next = nullptr;
  char* open_end = nullptr;  // [base, open_end) is readable and writable
  void* free_list[kMaxShift + 1] = {};
};
constinit EarlyArena arena;

char* region() {
  char* b = arena.base.load(std::memory_order_acquire);
  if (b) return b;
  SpinGuard g(arena.lock);  // one reservation, even when threads race here
  if ((b = arena.base.load(std::memory_order_relaxed))) return b;
  const uint64_t as_left = address_space_left().as;
  for (size_t bytes = kMaxRegionBytes; bytes >= kMinRegionBytes; bytes /= 2) {
    if (bytes > as_left / 4 && bytes > kMinRegionBytes) continue;
    void* p = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) continue;
    arena.bytes.store(bytes, std::memory_order_relaxed);
    arena.base.store(static_cast<char*>(p), std::memory_order_release);
    return static_cast<char*>(p);
  }
  return nullptr;
}

}  // namespace

AddressSpaceLeft address_space_left() {
  AddressSpaceLeft left;
  struct rlimit as, data;
  const bool limit_as = getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY;
  const bool limit_data = getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY;
  if (!limit_as && !limit_data) return left;
  uint64_t field[6] = {};  // size resident shared text lib data, in pages
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[256];
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    const char* s = buf;
    for (uint64_t& f : field) {
      while (*s == ' ') ++s;
      while (*s >= '0' && *s <= '9') f = f * 10 + static_cast<uint64_t>(*s++ - '0');
    }
  }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  auto rest = [](uint64_t limit, uint64_t used) { return limit > used ? limit - used : 0; };
  if (limit_as) left.as = rest(as.rlim_cur, field[0] * page);
  if (limit_data) left.data = rest(data.rlim_cur, field[5] * page);
  return left;
}

void* early_alloc(size_t size) {
  if (size > (size_t{1} << kMaxShift) - sizeof(Header)) return nullptr;
  const unsigned shift = std::max<unsigned>(kMinShift, std::bit_width(size + sizeof(Header) - 1));
  char* base = region();
  if (!base) return nullptr;
  SpinGuard g(arena.lock);
  Header* h;
  if (void* f = arena.free_list[shift]) {
    arena.free_list[shift] = *static_cast<void**>(f);
    h = static_cast<Header*>(f);
  } else {
    if (!arena.next) arena.next = arena.open_end = base;
    char* const end = base + arena.bytes.load(std::memory_order_relaxed);
    if (static_cast<size_t>(end - arena.next) < (size_t{1} << shift)) return nullptr;
    if (char* const need = arena.next + (size_t{1} << shift); need > arena.open_end) {
      const size_t open =
          std::min(static_cast<size_t>(end - arena.open_end),
                   (static_cast<size_t>(need - arena.open_end) + kOpenStep - 1) & ~(kOpenStep - 1));
      if (mprotect(arena.open_end, open, PROT_READ | PROT_WRITE) != 0) return nullptr;
      arena.open_end += open;
    }
    h = reinterpret_cast<Header*>(arena.next);
    arena.next += size_t{1} << shift;
  }
  h->shift = shift;
  return h + 1;
}

void* early_memalign(size_t align, size_t size) {
  if (align <= sizeof(Header)) return early_alloc(size);
  if (size > (size_t{1} << kMaxShift)) return nullptr;
  void* block = early_alloc(size + align);
  if (!block) return nullptr;
  const uintptr_t user = (reinterpret_cast<uintptr_t>(block) + align - 1) & ~(uintptr_t{align} - 1);
  if (user == reinterpret_cast<uintptr_t>(block)) return block;
  Header* h = reinterpret_cast<Header*>(user) - 1;  // at or after block: align > 16
  *h = {kAligned, block};
  return reinterpret_cast<void*>(user);
}

void early_free(void* p) {
  Header* h = static_cast<Header*>(block_of(p)) - 1;
  // The link overwrites the header's shift: read it first.
  const uint64_t shift = h->shift;
  SpinGuard g(arena.lock);
  *reinterpret_cast<void**>(h) = arena.free_list[shift];
  arena.free_list[shift] = h;
}

bool early_owns(const void* p) {
  const char* b = arena.base.load(std::memory_order_acquire);
  return b && static_cast<const char*>(p) >= b &&
         static_cast<const char*>(p) < b + arena.bytes.load(std::memory_order_relaxed);
}

size_t early_usable_size(const void* p) {
  const void* b = block_of(p);
  const size_t size = (size_t{1} << (static_cast<const Header*>(b) - 1)->shift) - sizeof(Header);
  return size - static_cast<size_t>(static_cast<const char*>(p) - static_cast<const char*>(b));
}

void early_lock() {
  arena.lock.lock();
}
void early_unlock() {
  arena.lock.unlock();
}

}  // namespace mmkit
