// What vmscan.cc shares with the multi-generational LRU's scanner
// (lru_gen_vmscan.cc): the per-page reclaim work both policies do
// (shrink_folio_list's body) and the event counter. Internal to src/reclaim.
#pragma once

#include <cstdint>

#include "reclaim/vmscan.h"

namespace mmkit::vmscan_internal {

enum class Verdict { kReclaimed, kKeep, kActivate };
// One isolated, locked page: unmapped, written (swap, file writeback or
// shmem_writepage) and freed when it can be; kKeep or kActivate when not.
Verdict shrink_one(Machine& m, Page* page, ScanControl& sc);
void count(Machine& m, VmEvent e, uint64_t n);

}  // namespace mmkit::vmscan_internal
