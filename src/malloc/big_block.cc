// Big blocks: one host mapping each, a header page in front (big_block.h).
#include "malloc/big_block.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>

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

BigHeader* header_of(const void* p) {
  return reinterpret_cast<BigHeader*>(const_cast<char*>(static_cast<const char*>(p)) - PAGE_SIZE);
}

size_t page_align(size_t n) {
  return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

void* finish(char* base, size_t len, char* user) {
  BigHeader* h = header_of(user);
  *h = {kBigMagic, base, len};
  nr_blocks.fetch_add(1, std::memory_order_relaxed);
  nr_bytes.fetch_add(len, std::memory_order_relaxed);
  return user;
}

}  // namespace

void* big_alloc(size_t size, size_t align) {
  if (align < PAGE_SIZE) align = PAGE_SIZE;
  if (size > (SIZE_MAX >> 2) || align > (SIZE_MAX >> 2)) return nullptr;
  const size_t body = page_align(size);
  // Room to slide the block up to its alignment, then trim the slack.
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

void big_free(void* p) {
  BigHeader* h = header_of(p);
  const size_t len = h->map_len;
  nr_blocks.fetch_sub(1, std::memory_order_relaxed);
  nr_bytes.fetch_sub(len, std::memory_order_relaxed);
  h->magic = 0;
  munmap(h->map_base, len);
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
  // The header starts the mapping (big_alloc trims the slack in front), so
  // the mapping moves as a whole. A move may drop a memalign alignment,
  // which realloc does not promise to keep.
  if (size > (SIZE_MAX >> 2)) return nullptr;
  const size_t old_len = h->map_len, new_len = PAGE_SIZE + page_align(size);
  void* m = mremap(h, old_len, new_len, MREMAP_MAYMOVE);
  if (m == MAP_FAILED) return nullptr;
  nr_bytes.fetch_add(new_len - old_len, std::memory_order_relaxed);
  BigHeader* nh = static_cast<BigHeader*>(m);
  nh->map_base = static_cast<char*>(m);
  nh->map_len = new_len;
  return static_cast<char*>(m) + PAGE_SIZE;
}

size_t big_blocks() {
  return nr_blocks.load(std::memory_order_relaxed);
}
size_t big_bytes() {
  return nr_bytes.load(std::memory_order_relaxed);
}

}  // namespace mmkit
