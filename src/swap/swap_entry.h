// Swap entries (include/linux/swapops.h) and their page-table encodings
// (arch/x86/include/asm/pgtable_64.h, pgtable-2level.h).
//
// A SwpEntry names one slot: the area's type (its index in swap_info) and
// the page offset in the area. In a page-table entry it is stored with the
// present bit clear:
//   x86-64: type in bits 59..63, the offset inverted in bits 9..58
//           (SWP_TYPE_BITS 5, SWP_OFFSET_SHIFT 14: entry = (~off << 14 >> 5)
//           | type << 59; the inversion keeps L1TF from pointing at memory);
//   i386:   type in bits 1..5, the offset from bit 9 (_SWP_TYPE_SHIFT 1,
//           SWP_OFFSET_SHIFT 9), so an area holds at most 2^23 slots.
// Offset 0 is the header page and never a slot, so no entry encodes as 0.
#pragma once

#include <cstdint>

namespace mmkit {

inline constexpr unsigned MAX_SWAPFILES = 32;  // 1 << SWP_TYPE_BITS
inline constexpr unsigned kSwpTypeShift = 58;  // swp_entry_t: type above the offset

struct SwpEntry {
  uint64_t val = 0;
  bool operator==(const SwpEntry&) const = default;
};
inline SwpEntry swp_entry(unsigned type, uint64_t offset) {
  return {uint64_t{type} << kSwpTypeShift | offset};
}
inline unsigned swp_type(SwpEntry e) {
  return static_cast<unsigned>(e.val >> kSwpTypeShift);
}
inline uint64_t swp_offset(SwpEntry e) {
  return e.val & ((uint64_t{1} << kSwpTypeShift) - 1);
}

// x86-64.
inline constexpr unsigned SWP_TYPE_BITS = 5;
inline constexpr unsigned SWP_OFFSET_SHIFT_64 = 14;
inline uint64_t swp_entry_to_pte_64(SwpEntry e) {
  return (~swp_offset(e) << SWP_OFFSET_SHIFT_64 >> SWP_TYPE_BITS) | uint64_t{swp_type(e)}
                                                                        << (64 - SWP_TYPE_BITS);
}
inline SwpEntry pte_to_swp_entry_64(uint64_t pte) {
  return swp_entry(static_cast<unsigned>(pte >> (64 - SWP_TYPE_BITS)),
                   ~pte << SWP_TYPE_BITS >> SWP_OFFSET_SHIFT_64);
}
inline constexpr uint64_t kMaxSwapOffset64 = (uint64_t{1} << 50) - 1;

// i386 (two-level, no PAE).
inline constexpr unsigned SWP_TYPE_SHIFT_32 = 1;
inline constexpr unsigned SWP_OFFSET_SHIFT_32 = 9;
inline uint64_t swp_entry_to_pte_32(SwpEntry e) {
  return (uint64_t{swp_type(e)} & 0x1f) << SWP_TYPE_SHIFT_32 | swp_offset(e) << SWP_OFFSET_SHIFT_32;
}
inline SwpEntry pte_to_swp_entry_32(uint64_t pte) {
  return swp_entry(static_cast<unsigned>(pte >> SWP_TYPE_SHIFT_32 & 0x1f),
                   (pte & 0xffffffffu) >> SWP_OFFSET_SHIFT_32);
}
inline constexpr uint64_t kMaxSwapOffset32 = (uint64_t{1} << 23) - 1;

}  // namespace mmkit
