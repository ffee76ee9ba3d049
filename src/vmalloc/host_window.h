// HostWindow: the host address range behind a span of kernel virtual
// addresses, so a kernel mapping (vmalloc, kmap, kmap_atomic) is one the
// host CPU can use too.
//
// The span is reserved once (PROT_NONE, MAP_NORESERVE: address space only).
// Mapping a frame puts the RAM memfd's page (offset pfn * PAGE_SIZE) at the
// matching host address with MAP_SHARED | MAP_FIXED, so the same physical
// page is seen through the direct map and through this alias; unmapping puts
// a PROT_NONE reservation back, so a stale pointer faults as a stale kernel
// pointer would. The bijection is
//   kva = kva_start + (host - base),   host = base + (kva - kva_start).
#pragma once

#include <cstdint>
#include <string>

namespace mmkit {

class HostWindow {
 public:
  HostWindow() = default;
  ~HostWindow();
  HostWindow(const HostWindow&) = delete;
  HostWindow& operator=(const HostWindow&) = delete;

  // Reserves [kva_start, kva_end); "" or the host's error.
  std::string reserve(uint64_t kva_start, uint64_t kva_end);

  bool contains_kva(uint64_t kva) const { return kva >= kva_start_ && kva < kva_end_; }
  bool contains(const void* host) const {
    const char* p = static_cast<const char*>(host);
    return p >= base_ && p < base_ + (kva_end_ - kva_start_);
  }
  char* host(uint64_t kva) const { return base_ + (kva - kva_start_); }
  uint64_t kva(const void* host) const {
    return kva_start_ + static_cast<uint64_t>(static_cast<const char*>(host) - base_);
  }

  // Maps `nr` consecutive frames from `pfn` at `kva`; false if the host refuses.
  bool map(uint64_t kva, int fd, uint64_t pfn, uint64_t nr, bool writable);
  // Back to the PROT_NONE reservation.
  void unmap(uint64_t kva, uint64_t bytes);

 private:
  char* base_ = nullptr;
  uint64_t kva_start_ = 0;
  uint64_t kva_end_ = 0;
};

}  // namespace mmkit
