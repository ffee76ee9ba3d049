// RamBacking: a machine's RAM as one host memory object.
//
// A memfd of the machine's size, mapped shared and without reservation: the
// host materialises a page only when it is first touched, so a 64 GiB
// machine boots on a much smaller host. A memfd (rather than anonymous
// memory) lets later layers map the same frames a second time (vmalloc,
// kmap, the i386 layout). The malloc front end's heap is private anonymous
// memory instead (a forked child must get a copy), whose offline part is
// PROT_NONE until memory hotplug onlines it.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace mmkit {

class RamBacking {
 public:
  RamBacking() = default;
  ~RamBacking();
  RamBacking(const RamBacking&) = delete;
  RamBacking& operator=(const RamBacking&) = delete;

  // Maps `bytes` of RAM; with `anonymous`, only the first `accessible`
  // bytes are readable and writable until online() opens more.
  Result<bool> map(uint64_t bytes, bool anonymous = false, uint64_t accessible = ~uint64_t{0});
  // Makes [offset, offset + bytes) accessible (anonymous RAM; a no-op for a memfd).
  bool online(uint64_t offset, uint64_t bytes);
  char* base() const { return base_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_; }
  // Hands a range back to the host (its contents become zero).
  void discard(uint64_t offset, uint64_t bytes);

 private:
  bool anonymous_ = false;
  int fd_ = -1;
  char* base_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace mmkit
