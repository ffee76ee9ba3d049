// Fault-around (mm/memory.c do_fault_around, mm/filemap.c
// filemap_map_pages): a read fault on a file mapping maps, besides its own
// page, the page-cache pages around it that are already there, so a
// program walking a cached file takes one fault per window instead of one
// per page. See fault_around.cc.
#pragma once

#include <cstdint>

namespace mmkit {

struct MmStruct;
struct VmArea;

namespace mm_internal {
// Maps the cached, uptodate, unlocked pages of `vma`'s file in the
// fault-around window of `addr` (m.fault_around_bytes, aligned down to
// its size, clipped to the VMA and to addr's page table) whose entries are
// empty, read-only. True when the page at `addr` itself was mapped: the
// fault is done. The caller holds the mmap lock, and addr's page table
// exists.
bool do_fault_around(MmStruct* mm, VmArea* vma, uint64_t addr);
}  // namespace mm_internal

}  // namespace mmkit
