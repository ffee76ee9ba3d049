// Byte access to a user address space (copy_from_user / copy_to_user with
// the fault handler behind them, and the page-granular accessor).
//
// Each page is translated through the software MMU (the calling CPU's TLB
// first) and copied inside one MMU access (mmu_access_begin/end), so a TLB
// shootdown for that page on another CPU waits until the copy is done and
// the frame cannot be freed under it. A translation fault ends the access
// and goes to handle_mm_fault(), which takes the mmap lock; the translation
// is then retried. A fault that keeps coming back after being handled is
// returned after kTries: another CPU changing the entry each time, or
// reclaim under a tight memory.max taking the page back before the copy
// (a write to a shared swapped page: swap-in, then the copy's charge
// reclaims the page just read; Linux retries such faults without bound).
#include <cstring>
#include <thread>

#include "vm/mm.h"

namespace mmkit {
namespace {

constexpr int kTries = 64;

// Translates vaddr for `access`, faulting as needed; on success returns the
// host address with an MMU access open (the caller ends it).
char* translate_or_fault(MmStruct* mm, uint64_t vaddr, Access access, FaultResult* fault) {
  Machine& m = *mm->machine;
  FaultResult r;
  bool major = false;
  for (int i = 0; i < kTries; ++i) {
    mmu_access_begin(m);
    const Translation t = translate(mm->pgd, vaddr, access, true);
    if (t.ok()) {
      if (fault) {
        *fault = FaultResult{};
        fault->major = major;  // a fault on the way read the page in
      }
      return t.host;
    }
    mmu_access_end(m);
    if (t.fault == TranslateFault::kNonCanonical) {
      r = {FaultStatus::kSigsegv, SEGV_MAPERR, vaddr, "non-canonical address"};
      break;
    }
    r = handle_mm_fault(mm, vaddr, access);
    if (!r.ok()) break;
    major |= r.major;
    if (i >= 4) std::this_thread::yield();  // let whoever changes the entry finish
  }
  if (r.ok()) r = {FaultStatus::kSigsegv, SEGV_ACCERR, vaddr, "the fault kept recurring"};
  if (fault) *fault = r;
  return nullptr;
}

// Walks [vaddr, vaddr + len) page by page, calling fn(host, offset, chunk)
// inside each page's MMU access.
template <class F>
FaultResult for_each_chunk(MmStruct* mm, uint64_t vaddr, size_t len, Access access, F&& fn) {
  size_t done = 0;
  while (done < len) {
    const uint64_t a = vaddr + done;
    if (a < vaddr) return {FaultStatus::kSigsegv, SEGV_MAPERR, a, "range wraps around"};
    const size_t chunk = std::min<size_t>(len - done, PAGE_SIZE - (a & (PAGE_SIZE - 1)));
    FaultResult f;
    char* host = translate_or_fault(mm, a, access, &f);
    if (!host) return f;
    fn(host, done, chunk);
    mmu_access_end(*mm->machine);
    done += chunk;
  }
  return {};
}

}  // namespace

char* user_page_begin(MmStruct* mm, uint64_t vaddr, Access access, FaultResult* fault) {
  return translate_or_fault(mm, vaddr, access, fault);
}

void user_page_end(MmStruct* mm) {
  mmu_access_end(*mm->machine);
}

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
