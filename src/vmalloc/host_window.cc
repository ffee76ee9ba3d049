// HostWindow: mmap of the reservation, of memfd pages over it, and of
// PROT_NONE back over them (see host_window.h).
#include "vmalloc/host_window.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "phys/page.h"

namespace mmkit {

std::string HostWindow::reserve(uint64_t kva_start, uint64_t kva_end) {
  void* p = mmap(nullptr, kva_end - kva_start, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return std::string("mmap: ") + std::strerror(errno);
  base_ = static_cast<char*>(p);
  kva_start_ = kva_start;
  kva_end_ = kva_end;
  return "";
}

HostWindow::~HostWindow() {
  if (base_) munmap(base_, kva_end_ - kva_start_);
}

bool HostWindow::map(uint64_t kva, int fd, uint64_t pfn, uint64_t nr, bool writable) {
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = mmap(host(kva), nr << PAGE_SHIFT, prot, MAP_SHARED | MAP_FIXED, fd,
                 static_cast<off_t>(pfn << PAGE_SHIFT));
  return p != MAP_FAILED;
}

void HostWindow::unmap(uint64_t kva, uint64_t bytes) {
  mmap(host(kva), bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

}  // namespace mmkit
