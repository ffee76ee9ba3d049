// One verified page access through a process's MMU, for `mmsim run` and
// `mmsim replay`: user_page_begin() faults the page in as the access needs
// (demand-zero, copy-on-write, swap-in) and returns its host address inside
// an MMU access; a write fills the whole page with a key's pattern, a read
// checks every byte against the key the caller expects (page_data.h).
#pragma once

#include <cstdint>

#include "vm/mm.h"

namespace mmsim {

struct PageAccess {
  mmkit::FaultResult fault;  // !fault.ok(): the page could not be reached
  int bad_offset = -1;       // a read: the first byte that differs, or -1
  uint8_t expected = 0, actual = 0;
  bool ok() const { return fault.ok() && bad_offset < 0; }
};

// Reads the page at `vaddr` (page aligned) and checks it against `key`.
PageAccess read_page(mmkit::MmStruct* mm, uint64_t vaddr, uint64_t key);
// Writes key's pattern over the page at `vaddr`.
PageAccess write_page(mmkit::MmStruct* mm, uint64_t vaddr, uint64_t key);

// "SIGSEGV (SEGV_MAPERR) at 0x...: reason", "out of memory at 0x...", ...
std::string describe_fault(const mmkit::FaultResult& f);

}  // namespace mmsim
