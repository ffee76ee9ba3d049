// The boot-time allocator: a reserved region, bump allocation in 16-byte
// units, and one free list per power-of-two size for reuse. Each block has a
// 16-byte header holding its size class, so the block size is a power of
// two from 16 bytes to 64 MiB (header included). The region is reserved
// once, unreserved (MAP_NORESERVE): only what is used is ever touched.
#include "malloc/early_alloc.h"

#include <sys/mman.h>

#include <atomic>
#include <bit>
#include <cstdint>

#include "base/spinlock.h"

namespace mmkit {

namespace {

constexpr size_t kRegionBytes = size_t{256} << 20;
constexpr unsigned kMinShift = 4, kMaxShift = 26;

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
  char* next = nullptr;
  void* free_list[kMaxShift + 1] = {};
};
constinit EarlyArena arena;

char* region() {
  char* b = arena.base.load(std::memory_order_acquire);
  if (b) return b;
  void* p = mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  char* expected = nullptr;
  if (!arena.base.compare_exchange_strong(expected, static_cast<char*>(p))) {
    munmap(p, kRegionBytes);
    return expected;
  }
  return static_cast<char*>(p);
}

}  // namespace

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
    if (!arena.next) arena.next = base;
    if (static_cast<size_t>(base + kRegionBytes - arena.next) < (size_t{1} << shift))
      return nullptr;
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
  SpinGuard g(arena.lock);
  *reinterpret_cast<void**>(h) = arena.free_list[h->shift];
  arena.free_list[h->shift] = h;
}

bool early_owns(const void* p) {
  const char* b = arena.base.load(std::memory_order_relaxed);
  return b && static_cast<const char*>(p) >= b && static_cast<const char*>(p) < b + kRegionBytes;
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
