// RamBacking: memfd_create + ftruncate + one shared, unreserved mapping, or
// one private anonymous mapping whose offline tail is PROT_NONE.
#include "phys/ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace mmkit {

namespace {

// RAM starts at an address aligned to a MAX_ORDER block (4 MiB), so a buddy
// block's host address is aligned as its pfn is (memalign relies on it).
constexpr uint64_t kRamAlign = uint64_t{4} << 20;

// An inaccessible, unreserved range of `bytes` at a kRamAlign-aligned address.
char* reserve_aligned(uint64_t bytes) {
  void* p = mmap(nullptr, bytes + kRamAlign, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  char* raw = static_cast<char*>(p);
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kRamAlign - 1) &
                                       ~(uintptr_t{kRamAlign} - 1));
  if (base > raw) munmap(raw, static_cast<size_t>(base - raw));
  munmap(base + bytes, static_cast<size_t>(raw + kRamAlign - base));
  return base;
}

}  // namespace

Result<bool> RamBacking::map(uint64_t bytes, bool anonymous, uint64_t accessible) {
  if (anonymous) {
    char* p = reserve_aligned(bytes);
    if (!p) return Error{std::string("mmap RAM: ") + std::strerror(errno)};
    base_ = p;
    size_ = bytes;
    anonymous_ = true;
    if (!online(0, std::min(bytes, accessible)))
      return Error{std::string("mprotect RAM: ") + std::strerror(errno)};
    return true;
  }
  fd_ = memfd_create("mmkit-ram", MFD_CLOEXEC);
  if (fd_ < 0) return Error{std::string("memfd_create: ") + std::strerror(errno)};
  if (ftruncate(fd_, static_cast<off_t>(bytes)) != 0)
    return Error{std::string("ftruncate RAM: ") + std::strerror(errno)};
  char* at = reserve_aligned(bytes);
  if (!at) return Error{std::string("mmap RAM: ") + std::strerror(errno)};
  void* p = mmap(at, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, fd_, 0);
  if (p == MAP_FAILED) return Error{std::string("mmap RAM: ") + std::strerror(errno)};
  base_ = static_cast<char*>(p);
  size_ = bytes;
  return true;
}

bool RamBacking::online(uint64_t offset, uint64_t bytes) {
  if (!anonymous_ || !bytes) return true;
  return mprotect(base_ + offset, bytes, PROT_READ | PROT_WRITE) == 0;
}

void RamBacking::discard(uint64_t offset, uint64_t bytes) {
  if (anonymous_) {
    madvise(base_ + offset, bytes, MADV_DONTNEED);
    return;
  }
  fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
            static_cast<off_t>(bytes));
}

RamBacking::~RamBacking() {
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
}

}  // namespace mmkit
