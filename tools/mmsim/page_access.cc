// Verified page accesses (see page_access.h). The fill and the check run
// inside the MMU access user_page_begin() opened, so a TLB shootdown (the
// page being reclaimed or its COW twin freed) waits for them.
#include "page_access.h"

#include <fmt/format.h>

#include "page_data.h"

namespace mmsim {

PageAccess read_page(mmkit::MmStruct* mm, uint64_t vaddr, uint64_t key) {
  PageAccess r;
  const char* host = mmkit::user_page_begin(mm, vaddr, mmkit::Access::kRead, &r.fault);
  if (!host) return r;
  r.bad_offset = check_page(host, key, &r.expected, &r.actual);
  mmkit::user_page_end(mm);
  return r;
}

PageAccess write_page(mmkit::MmStruct* mm, uint64_t vaddr, uint64_t key) {
  PageAccess r;
  char* host = mmkit::user_page_begin(mm, vaddr, mmkit::Access::kWrite, &r.fault);
  if (!host) return r;
  fill_page(host, key);
  mmkit::user_page_end(mm);
  return r;
}

std::string describe_fault(const mmkit::FaultResult& f) {
  switch (f.status) {
    case mmkit::FaultStatus::kOk:
      return "no fault";
    case mmkit::FaultStatus::kSigsegv:
      return fmt::format("SIGSEGV ({}) at {:#x}: {}",
                         f.si_code == mmkit::SEGV_ACCERR ? "SEGV_ACCERR" : "SEGV_MAPERR", f.addr,
                         f.reason);
    case mmkit::FaultStatus::kOom:
      return fmt::format("out of memory at {:#x}", f.addr);
    case mmkit::FaultStatus::kKilled:
      return fmt::format("OOM-killed (fault at {:#x})", f.addr);
    case mmkit::FaultStatus::kSigbus:
      return fmt::format("SIGBUS (BUS_ADRERR) at {:#x}: {}", f.addr, f.reason);
  }
  return "unknown fault";
}

}  // namespace mmsim
