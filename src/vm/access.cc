// Byte access to a user address space (copy_from_user / copy_to_user with
// the fault handler behind them, and the page-granular fast accessor).
//
// Each page is translated through the software MMU (the calling CPU's TLB
// first); a translation fault goes to handle_mm_fault() and the
// translation is retried. A second fault on the same page after a handled
// one retries again (another CPU may have changed the entry between), up
// to a few times, after which the last fault is returned.
#include <cstring>

#include "vm/mm.h"

namespace mmkit {

char* user_page(MmStruct* mm, uint64_t vaddr, Access access, FaultResult* fault) {
  constexpr int kTries = 4;
  FaultResult r;
  for (int i = 0; i < kTries; ++i) {
    const Translation t = translate(mm->pgd, vaddr, access, true);
    if (t.ok()) return t.host;
    if (t.fault == TranslateFault::kNonCanonical) {
      r = {FaultStatus::kSigsegv, SEGV_MAPERR, vaddr, "non-canonical address"};
      break;
    }
    r = handle_mm_fault(mm, vaddr, access);
    if (!r.ok()) break;
  }
  if (r.ok()) r = {FaultStatus::kSigsegv, SEGV_ACCERR, vaddr, "the fault kept recurring"};
  if (fault) *fault = r;
  return nullptr;
}

namespace {

// Walks [vaddr, vaddr + len) page by page, calling fn(host, offset, chunk).
template <class F>
FaultResult for_each_chunk(MmStruct* mm, uint64_t vaddr, size_t len, Access access, F&& fn) {
  size_t done = 0;
  while (done < len) {
    const uint64_t a = vaddr + done;
    if (a < vaddr) return {FaultStatus::kSigsegv, SEGV_MAPERR, a, "range wraps around"};
    const size_t chunk = std::min<size_t>(len - done, PAGE_SIZE - (a & (PAGE_SIZE - 1)));
    FaultResult f;
    char* host = user_page(mm, a, access, &f);
    if (!host) return f;
    fn(host, done, chunk);
    done += chunk;
  }
  return {};
}

}  // namespace

FaultResult access_read(MmStruct* mm, uint64_t vaddr, void* buf, size_t len) {
  auto* out = static_cast<char*>(buf);
  return for_each_chunk(mm, vaddr, len, Access::kRead,
                        [&](char* host, size_t off, size_t n) { std::memcpy(out + off, host, n); });
}

FaultResult access_write(MmStruct* mm, uint64_t vaddr, const void* buf, size_t len) {
  const auto* in = static_cast<const char*>(buf);
  return for_each_chunk(mm, vaddr, len, Access::kWrite,
                        [&](char* host, size_t off, size_t n) { std::memcpy(host, in + off, n); });
}

FaultResult access_touch(MmStruct* mm, uint64_t vaddr, size_t len, Access access) {
  return for_each_chunk(mm, vaddr, len, access, [](char*, size_t, size_t) {});
}

}  // namespace mmkit
