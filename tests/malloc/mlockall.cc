// mlockall: a program that locks its memory (mlockall(MCL_CURRENT |
// MCL_FUTURE), as cryptsetup and real-time programs do) locks what its heap
// uses, not what the heap has reserved.
//
// Why: libmmkit-malloc reserves address space far beyond its use: the RAM
// span of its machine (the host's RAM and swap), that RAM's descriptors,
// the boot allocator's region and the big-block area (four times RAM and
// swap). mlockall() faults in and locks every accessible page, so each of
// those reservations must be inaccessible (PROT_NONE) until used; one
// writable terabyte would have the kernel try to lock it all. The test
// sums the writable private anonymous mappings first and calls mlockall()
// only when they are within bounds (a regression must fail here, not push
// the host into its OOM killer), then keeps allocating under MCL_FUTURE
// and checks the data and the resident memory.
//
// Usage: malloc_mlockall   (exit 0: passed). mlockall() needs CAP_IPC_LOCK
// or a large enough RLIMIT_MEMLOCK; without them that half prints why it
// did not run, and the mapping bound is still checked.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "malloc_test_util.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;
// What the heap may leave writable: its first memory block (128 MiB), the
// descriptors and boot allocations of a few megabytes, the live blocks and
// the freed big blocks it keeps mapped for reuse (about 100 MiB here).
constexpr size_t kWritableBound = 512 * kMiB;

// Bytes in writable private mappings with no file (the heap's kind).
size_t writable_anon_bytes() {
  std::ifstream maps("/proc/self/maps");
  size_t total = 0;
  for (std::string line; std::getline(maps, line);) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode >> path;
    if (perms.size() < 4 || perms[1] != 'w' || perms[3] != 'p' || !path.empty()) continue;
    const size_t dash = range.find('-');
    total += std::stoull(range.substr(dash + 1), nullptr, 16) -
             std::stoull(range.substr(0, dash), nullptr, 16);
  }
  return total;
}

// A field of /proc/self/status in kB. VmLck counts every locked mapping
// whole, PROT_NONE ones included (mlock_fixup() charges locked_vm before it
// populates anything); VmRSS shows what mlockall() actually brought in.
size_t status_kb(const char* field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(std::strlen(field)));
  return 0;
}

void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 512) p[i] = static_cast<unsigned char>(seed + i / 512);
}
bool filled(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 512)
    if (p[i] != static_cast<unsigned char>(seed + i / 512)) return false;
  return true;
}

}  // namespace

int main() {
  mtest::require_preload_if_expected("mlockall");
  // Small blocks, page runs and big blocks, some freed: every kind of
  // reservation the heap makes now exists.
  std::vector<void*> keep;
  for (size_t size : {size_t{24}, size_t{200}, size_t{3000}, size_t{40000}, 9 * kMiB}) {
    for (int i = 0; i < (size > kMiB ? 4 : 64); ++i) keep.push_back(std::malloc(size));
  }
  void* big = std::malloc(64 * kMiB);
  CHECK(big != nullptr);
  std::free(big);
  for (size_t i = 0; i < keep.size(); i += 2) std::free(keep[i]);

  const size_t writable = writable_anon_bytes();
  std::printf("mlockall: %zu MiB of writable anonymous mappings (bound %zu MiB)\n", writable / kMiB,
              kWritableBound / kMiB);
  CHECK_MSG(writable <= kWritableBound,
            "%zu MiB of writable anonymous mappings: mlockall() would fault in and lock them",
            writable / kMiB);
  if (writable > kWritableBound) return mtest::exit_status();

  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    std::printf("mlockall: not run (%s: needs CAP_IPC_LOCK or RLIMIT_MEMLOCK)\n",
                std::strerror(errno));
    for (void* p : keep) std::free(p);
    return mtest::exit_status();
  }
  const size_t locked_kb = status_kb("VmRSS:");
  // Under MCL_FUTURE every new writable page is locked as it is mapped:
  // the heap keeps serving, small and big, and the data stays.
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  unsigned seed = 0;
  for (size_t size : {size_t{100}, size_t{5000}, size_t{100000}, 6 * kMiB}) {
    for (int i = 0; i < 16; ++i) {
      auto* p = static_cast<unsigned char*>(std::malloc(size));
      CHECK_MSG(p != nullptr, "malloc(%zu) failed under mlockall", size);
      if (!p) continue;
      fill(p, size, ++seed);
      blocks.emplace_back(p, size);
    }
  }
  seed = 0;
  for (auto [p, size] : blocks)
    CHECK_MSG(filled(p, size, ++seed), "a %zu-byte block changed", size);
  const size_t after_kb = status_kb("VmRSS:");
  std::printf("mlockall: VmRSS %zu MiB after the lock, %zu MiB after %zu more blocks\n",
              locked_kb >> 10, after_kb >> 10, blocks.size());
  // The writable mappings, and the libraries' files brought in whole.
  CHECK_MSG(locked_kb * 1024 <= kWritableBound + 64 * kMiB, "VmRSS %zu kB after mlockall",
            locked_kb);
  munlockall();
  for (auto [p, size] : blocks) std::free(p);
  for (size_t i = 1; i < keep.size(); i += 2) std::free(keep[i]);
  std::printf("mlockall: %s\n", mtest::exit_status() ? "FAIL" : "PASS");
  return mtest::exit_status();
}
