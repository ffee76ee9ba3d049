// VmapSpace: lowest-fit search, trim/split, merge (see vmap_area.h).
#include "vmalloc/vmap_area.h"

#include <fmt/format.h>

#include <algorithm>

namespace mmkit {

void VmapSpace::init(uint64_t start, uint64_t end) {
  start_ = start;
  end_ = end;
  free_.clear();
  if (start < end) free_.emplace(start, end);
}

uint64_t VmapSpace::alloc(uint64_t size, uint64_t align) {
  if (size == 0 || align == 0 || (align & (align - 1))) return 0;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    const uint64_t va_start = it->first, va_end = it->second;
    const uint64_t nva_start = (va_start + align - 1) & ~(align - 1);  // ALIGN(va_start, align)
    if (nva_start < va_start || nva_start > va_end || va_end - nva_start < size) continue;
    const uint64_t nva_end = nva_start + size;
    free_.erase(it);
    if (va_start < nva_start) free_.emplace(va_start, nva_start);  // RE or NE fit: left part
    if (nva_end < va_end) free_.emplace(nva_end, va_end);          // LE or NE fit: right part
    return nva_start;
  }
  return 0;
}

void VmapSpace::free(uint64_t addr, uint64_t size) {
  uint64_t s = addr, e = addr + size;
  auto next = free_.lower_bound(s);
  if (next != free_.end() && next->first == e) {  // merge with the next block
    e = next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->second == s) {  // and with the previous one
      s = prev->first;
      free_.erase(prev);
    }
  }
  free_.emplace(s, e);
}

uint64_t VmapSpace::free_bytes() const {
  uint64_t n = 0;
  for (const auto& [s, e] : free_) n += e - s;
  return n;
}

uint64_t VmapSpace::largest_free() const {
  uint64_t n = 0;
  for (const auto& [s, e] : free_) n = std::max(n, e - s);
  return n;
}

void VmapSpace::for_each_free(const std::function<void(uint64_t, uint64_t)>& fn) const {
  for (const auto& [s, e] : free_) fn(s, e);
}

std::string VmapSpace::check() const {
  uint64_t prev_end = 0;
  bool first = true;
  for (const auto& [s, e] : free_) {
    if (s >= e) return fmt::format("free vmap block {:#x}-{:#x} is empty", s, e);
    if (s < start_ || e > end_)
      return fmt::format("free vmap block {:#x}-{:#x} outside the area", s, e);
    if (!first && s <= prev_end)
      return fmt::format("free vmap block {:#x}-{:#x} overlaps or touches the previous one", s, e);
    prev_end = e;
    first = false;
  }
  return "";
}

}  // namespace mmkit
