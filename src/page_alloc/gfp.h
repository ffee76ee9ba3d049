// GFP flags and their meaning for zones and migrate types
// (include/linux/gfp_types.h, include/linux/gfp.h).
//
// Values are Linux's, bit for bit, so a gfp mask printed by mmkit reads like
// one from the kernel. __GFP_COLD is the flag Linux removed in 4.15; mmkit
// keeps it (at a bit Linux does not use) because the seed's hot/cold page
// lists are part of what mmkit shows.
#pragma once

#include <cstdint>
#include <string>

#include "phys/mmzone.h"
#include "phys/reclaim_ops.h"

namespace mmkit {

inline constexpr gfp_t __GFP_DMA = 0x1;
inline constexpr gfp_t __GFP_HIGHMEM = 0x2;
inline constexpr gfp_t __GFP_DMA32 = 0x4;
inline constexpr gfp_t __GFP_MOVABLE = 0x8;
inline constexpr gfp_t __GFP_RECLAIMABLE = 0x10;
inline constexpr gfp_t __GFP_HIGH = 0x20;
inline constexpr gfp_t __GFP_IO = 0x40;
inline constexpr gfp_t __GFP_FS = 0x80;
inline constexpr gfp_t __GFP_ZERO = 0x100;
inline constexpr gfp_t __GFP_DIRECT_RECLAIM = 0x400;
inline constexpr gfp_t __GFP_KSWAPD_RECLAIM = 0x800;
inline constexpr gfp_t __GFP_NOWARN = 0x2000;
inline constexpr gfp_t __GFP_RETRY_MAYFAIL = 0x4000;
inline constexpr gfp_t __GFP_NOFAIL = 0x8000;
inline constexpr gfp_t __GFP_NORETRY = 0x10000;
inline constexpr gfp_t __GFP_MEMALLOC = 0x20000;
inline constexpr gfp_t __GFP_COMP = 0x40000;
inline constexpr gfp_t __GFP_NOMEMALLOC = 0x80000;
inline constexpr gfp_t __GFP_HARDWALL = 0x100000;
inline constexpr gfp_t __GFP_THISNODE = 0x200000;
inline constexpr gfp_t __GFP_ACCOUNT = 0x400000;
inline constexpr gfp_t __GFP_COLD = 0x40000000;  // mmkit: Linux's pre-4.15 cold-page hint

inline constexpr gfp_t __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
inline constexpr gfp_t GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE;
inline constexpr gfp_t GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE;
inline constexpr unsigned GFP_MOVABLE_SHIFT = 3;

inline constexpr gfp_t GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM;
inline constexpr gfp_t GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
inline constexpr gfp_t GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN;
inline constexpr gfp_t GFP_NOIO = __GFP_RECLAIM;
inline constexpr gfp_t GFP_NOFS = __GFP_RECLAIM | __GFP_IO;
inline constexpr gfp_t GFP_USER = GFP_KERNEL | __GFP_HARDWALL;
inline constexpr gfp_t GFP_DMA = __GFP_DMA;
inline constexpr gfp_t GFP_DMA32 = __GFP_DMA32;
inline constexpr gfp_t GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;
inline constexpr gfp_t GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE;

// gfp_zone(): the highest zone kind an allocation may use, or nullopt-like
// `kBadZone` for the combinations Linux's GFP_ZONE_TABLE marks GFP_ZONE_BAD
// (DMA with HIGHMEM or DMA32, HIGHMEM with DMA32, ...).
inline constexpr int kBadZone = -1;
constexpr int gfp_zone_kind(gfp_t gfp) {
  switch (gfp & GFP_ZONEMASK) {
    case 0:
      return static_cast<int>(ZoneKind::NORMAL);
    case __GFP_DMA:
      return static_cast<int>(ZoneKind::DMA);
    case __GFP_HIGHMEM:
      return static_cast<int>(ZoneKind::HIGHMEM);
    case __GFP_DMA32:
      return static_cast<int>(ZoneKind::DMA32);
    case __GFP_MOVABLE:
      return static_cast<int>(ZoneKind::NORMAL);
    case __GFP_MOVABLE | __GFP_DMA:
      return static_cast<int>(ZoneKind::DMA);
    case __GFP_MOVABLE | __GFP_HIGHMEM:
      return static_cast<int>(ZoneKind::MOVABLE);
    case __GFP_MOVABLE | __GFP_DMA32:
      return static_cast<int>(ZoneKind::DMA32);
    default:
      return kBadZone;
  }
}

// gfp_migratetype(): MOVABLE and RECLAIMABLE bits shifted down onto the
// migrate type numbers (UNMOVABLE 0, MOVABLE 1, RECLAIMABLE 2). Both bits
// at once is a caller bug (Linux warns); alloc_pages refuses it. With
// mobility grouping off the machine passes a zero mask: all unmovable.
constexpr unsigned gfp_migratetype(gfp_t gfp, gfp_t mask = GFP_MOVABLE_MASK) {
  return (gfp & mask) >> GFP_MOVABLE_SHIFT;
}

// Internal allocation flags (mm/internal.h ALLOC_*). The low bits pick the
// watermark; __GFP_HIGH and __GFP_KSWAPD_RECLAIM double as ALLOC_MIN_RESERVE
// and ALLOC_KSWAPD, as in Linux.
enum : unsigned {
  ALLOC_WMARK_MIN = WMARK_MIN,
  ALLOC_WMARK_LOW = WMARK_LOW,
  ALLOC_WMARK_HIGH = WMARK_HIGH,
  ALLOC_NO_WATERMARKS = 0x04,
  ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1,
  ALLOC_OOM = 0x08,
  ALLOC_NON_BLOCK = 0x10,
  ALLOC_MIN_RESERVE = 0x20,  // == __GFP_HIGH
  ALLOC_CPUSET = 0x40,
  ALLOC_HIGHATOMIC = 0x200,
  ALLOC_KSWAPD = 0x800,  // == __GFP_KSWAPD_RECLAIM
  ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM,
};
static_assert(ALLOC_MIN_RESERVE == __GFP_HIGH && ALLOC_KSWAPD == __GFP_KSWAPD_RECLAIM);

// "GFP_KERNEL|__GFP_ZERO" style rendering, as %pGg prints it.
std::string format_gfp(gfp_t gfp);

}  // namespace mmkit
