// RamBacking: memfd_create + ftruncate + one shared, unreserved mapping.
#include "phys/ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace mmkit {

Result<bool> RamBacking::map(uint64_t bytes) {
  fd_ = memfd_create("mmkit-ram", MFD_CLOEXEC);
  if (fd_ < 0) return Error{std::string("memfd_create: ") + std::strerror(errno)};
  if (ftruncate(fd_, static_cast<off_t>(bytes)) != 0)
    return Error{std::string("ftruncate RAM: ") + std::strerror(errno)};
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
  if (p == MAP_FAILED) return Error{std::string("mmap RAM: ") + std::strerror(errno)};
  base_ = static_cast<char*>(p);
  size_ = bytes;
  return true;
}

void RamBacking::discard(uint64_t offset, uint64_t bytes) {
  fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
            static_cast<off_t>(bytes));
}

RamBacking::~RamBacking() {
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
}

}  // namespace mmkit
