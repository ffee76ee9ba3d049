// libFuzzer target for XArray, the page cache's index: bytes become stores,
// erases, loads and range scans at indices drawn from a few regions (the
// first pages, around node boundaries, near the top of the 64-bit space, and
// anywhere), compared with an ordered map after each operation, with
// XArray::check() after each one; at the end every entry is erased and the
// tree must be empty.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "base/xarray.h"

namespace {

using mmkit::XArray;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_xarray_ops: %s\n", why.c_str());
  std::abort();
}

struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t u8() { return n ? (--n, *p++) : 0; }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | u8();
    return v;
  }
};

uint64_t pick_index(Bytes& in) {
  const uint8_t kind = in.u8();
  const uint64_t low = in.u8();
  switch (kind % 4) {
    case 0:
      return low;  // a small file
    case 1: {      // either side of a node boundary at some height
      const unsigned shift = 6 * (1 + in.u8() % 10);
      return (uint64_t{1} << shift) - 4 + low % 8;
    }
    case 2:
      return ~uint64_t{0} - low;  // the top of the space
    default:
      return in.u64();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  XArray xa;
  std::map<uint64_t, uintptr_t> model;
  uintptr_t next = 1;
  while (in.n) {
    const uint8_t op = in.u8();
    const uint64_t index = pick_index(in);
    const auto at = model.find(index);
    const uintptr_t old = at == model.end() ? 0 : at->second;
    switch (op % 4) {
      case 0: {
        next += 2;  // odd and even entries alike, never 0
        if (xa.store(index, next) != old) fail("store returned the wrong old entry");
        model[index] = next;
        break;
      }
      case 1:
        if (xa.erase(index) != old) fail("erase returned the wrong entry");
        model.erase(index);
        break;
      case 2:
        if (xa.load(index) != old) fail("load disagrees with the model");
        break;
      default: {
        const uint64_t last = in.u8() % 2 ? ~uint64_t{0} : index + in.u64() % 100000;
        uint64_t got = index;
        const uintptr_t v = xa.find(&got, last < index ? ~uint64_t{0} : last);
        const auto it = model.lower_bound(index);
        const bool want = it != model.end() && it->first <= (last < index ? ~uint64_t{0} : last);
        if (want != (v != 0) || (want && (it->first != got || it->second != v)))
          fail("find disagrees with the model");
        if (!want && got != index) fail("a find that found nothing moved the index");
      }
    }
    if (xa.size() != model.size()) fail("size disagrees with the model");
    if (std::string err = xa.check(); !err.empty()) fail(err);
  }
  for (const auto& [index, v] : model)
    if (xa.erase(index) != v) fail("final erase returned the wrong entry");
  if (!xa.empty() || !xa.check().empty()) fail("not empty after erasing everything");
  return 0;
}
