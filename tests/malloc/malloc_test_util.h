// Shared helpers of the malloc test programs (api_surface, mt_stress, rss_return):
// a CHECK macro that reports file:line and the failed expression and turns the
// exit status to 1, the detection of which allocator serves malloc (glibc,
// libmmkit-malloc.so or some other preloaded one), the MMKIT_EXPECT_PRELOAD
// convention and the optional heap check mmkit_malloc_check().
//
// The programs are deliberately not linked to libmmkit-malloc: it comes in
// through LD_PRELOAD, so the same binaries run against glibc or mimalloc too
// (that is how they were validated before the library existed). Its extra
// symbols are therefore looked up with dlsym(RTLD_DEFAULT, ...).
#pragma once

#include <dlfcn.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace mtest {

// --- failures -------------------------------------------------------------------------------
inline std::atomic<int> g_failures{0};
inline constexpr int kMaxPrintedPerSite = 5;  // per file:line; the rest are only counted
inline constexpr int kMaxPrinted = 100;

// Records one failure and prints it, unless the same check already printed
// kMaxPrintedPerSite (or all checks kMaxPrinted) messages.
inline void fail(const char* file, int line, const char* expr, const char* fmt = nullptr, ...) {
  static std::mutex m;
  static std::map<std::pair<const char*, int>, int> per_site;
  static int printed = 0;
  g_failures.fetch_add(1, std::memory_order_relaxed);
  char extra[512] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
  }
  std::lock_guard<std::mutex> g(m);
  const int n = ++per_site[{file, line}];
  if (n > kMaxPrintedPerSite || printed >= kMaxPrinted) return;
  ++printed;
  std::fprintf(stderr, "%s:%d: CHECK failed: %s%s%s%s\n", file, line, expr, fmt ? " -- " : "",
               extra, n == kMaxPrintedPerSite ? " (further failures here only counted)" : "");
}

// CHECK(cond) / CHECK_MSG(cond, printf-format, ...): report and go on; the
// program's exit status becomes 1 (see exit_status()).
#define CHECK(cond) ((cond) ? static_cast<void>(0) : ::mtest::fail(__FILE__, __LINE__, #cond))
#define CHECK_MSG(cond, ...) \
  ((cond) ? static_cast<void>(0) : ::mtest::fail(__FILE__, __LINE__, #cond, __VA_ARGS__))

inline int exit_status() {
  return g_failures.load() == 0 ? 0 : 1;
}

// --- which allocator serves malloc ----------------------------------------------------------
enum class Allocator {
  kGlibc,  // malloc resolves into libc.so.6: glibc's exact behaviour is expected
  kMmkit,  // libmmkit-malloc.so is preloaded: glibc's behaviour plus its own contract
  kOther,  // another preloaded allocator (mimalloc, ...): only ISO C / POSIX promises
};

inline const char* allocator_name(Allocator a) {
  switch (a) {
    case Allocator::kGlibc:
      return "glibc";
    case Allocator::kMmkit:
      return "mmkit";
    case Allocator::kOther:
      return "other";
  }
  return "?";
}

// The file of the object that defines `sym` as the program sees it ("" if none).
inline std::string defining_object(const char* sym) {
  void* addr = dlsym(RTLD_DEFAULT, sym);
  Dl_info info{};
  if (!addr || !dladdr(addr, &info) || !info.dli_fname) return "";
  return info.dli_fname;
}

using MmkitVersionFn = const char* (*)();
using MmkitCheckFn = int (*)(char* msg, size_t len);

inline MmkitVersionFn mmkit_version_fn() {
  return reinterpret_cast<MmkitVersionFn>(dlsym(RTLD_DEFAULT, "mmkit_malloc_version"));
}
inline MmkitCheckFn mmkit_check_fn() {
  return reinterpret_cast<MmkitCheckFn>(dlsym(RTLD_DEFAULT, "mmkit_malloc_check"));
}

inline Allocator detect_allocator() {
  if (mmkit_version_fn()) return Allocator::kMmkit;
  const std::string obj = defining_object("malloc");
  if (obj.find("/libc.so") != std::string::npos) return Allocator::kGlibc;
  return Allocator::kOther;
}

// MMKIT_EXPECT_PRELOAD=1: the test was meant to run under libmmkit-malloc.so;
// without it every other check would pass vacuously against glibc. Exits 1.
inline void require_preload_if_expected(const char* prog) {
  const char* want = std::getenv("MMKIT_EXPECT_PRELOAD");
  if (!want || std::strcmp(want, "1") != 0 || mmkit_version_fn()) return;
  const char* pre = std::getenv("LD_PRELOAD");
  std::fprintf(stderr,
               "%s: MMKIT_EXPECT_PRELOAD=1 but mmkit_malloc_version is not found "
               "(LD_PRELOAD=%s): the preload did not take effect\n",
               prog, pre ? pre : "(unset)");
  std::exit(1);
}

// Calls mmkit_malloc_check() when the library provides it; a non-zero result
// is a failure carrying the library's message. Returns false on failure.
inline bool heap_check(const char* file, int line, const char* where) {
  static const MmkitCheckFn check = mmkit_check_fn();
  if (!check) return true;
  char msg[1024] = "";
  const int rc = check(msg, sizeof msg);
  if (rc == 0) return true;
  msg[sizeof msg - 1] = '\0';
  fail(file, line, "mmkit_malloc_check() == 0", "%s: returned %d: %s", where, rc, msg);
  return false;
}
#define HEAP_CHECK(where) ::mtest::heap_check(__FILE__, __LINE__, (where))

// --- keeping the compiler honest ------------------------------------------------------------
// Compilers may fold malloc/free pairs, assume huge requests fail, or drop
// stores into memory that is freed next. escape() makes a pointer observable;
// opaque() hides a constant from constant propagation.
inline void escape(const void* p) {
  asm volatile("" : : "g"(p) : "memory");
}
template <class T>
inline T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}
// seen(allocation): the result is used, so the call can be neither elided
// nor assumed to succeed (clang folds a malloc/free pair to "non-null").
template <class T>
inline T* seen(T* p) {
  escape(p);
  return p;
}

// errno around a call under test: the barriers keep the compiler from moving
// the store past the call or reusing the stored value afterwards. GCC models
// some allocation functions (posix_memalign) as not touching errno, and a
// check of errno could otherwise read back the constant it just stored.
inline void set_errno(int v) {
  errno = v;
  asm volatile("" : : : "memory");
}
inline int get_errno() {
  asm volatile("" : : : "memory");
  return errno;
}

// --- content patterns -----------------------------------------------------------------------
// A block's bytes as a function of (id, offset): 8-byte words of a mixed
// counter, so any displaced, stale or foreign byte shows.
inline uint64_t pattern_word(uint64_t id, uint64_t word_index) {
  uint64_t x = id * 0x9E3779B97F4A7C15ull + word_index * 0xD1B54A32D192ED03ull + 1;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 32);
}

inline void fill_pattern(void* p, size_t n, uint64_t id) {
  auto* b = static_cast<unsigned char*>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t w = pattern_word(id, i / 8);
    std::memcpy(b + i, &w, 8);
  }
  if (i < n) {
    const uint64_t w = pattern_word(id, i / 8);
    std::memcpy(b + i, &w, n - i);
  }
}

// The offset of the first byte of [p, p+n) that differs from the pattern, or n.
inline size_t find_pattern_mismatch(const void* p, size_t n, uint64_t id) {
  const auto* b = static_cast<const unsigned char*>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t w = pattern_word(id, i / 8);
    if (std::memcmp(b + i, &w, 8) != 0) break;
  }
  for (; i < n; ++i) {
    const uint64_t w = pattern_word(id, i / 8);
    if (b[i] != reinterpret_cast<const unsigned char*>(&w)[i % 8]) return i;
  }
  return n;
}

}  // namespace mtest
