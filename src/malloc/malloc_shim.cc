// libmmkit-malloc: the heap (heap.h) under the names a program calls.
//
// glibc's malloc family and every C++ operator new and delete, with
// glibc's promises: 16-byte alignment, errno ENOMEM on failure (EINVAL for
// a bad alignment), realloc(p, 0) frees, posix_memalign returns its error
// (leaving errno alone for EINVAL), memalign rounds an alignment that is
// not a power of two up. This file and malloc_info.cc (mallinfo,
// malloc_stats, malloc_info) are the shared and static library's only
// additions to the core: the core itself never defines malloc (its tests
// link it beside the host's).
//
// Environment, read once at exit: MMKIT_SHOW_STATS=1 prints the heap's
// summary, slabinfo and buddyinfo to stderr; MMKIT_PROC=DIR writes the
// machine's /proc views into DIR. MMKIT_DEBUG (read at boot) is slub_debug;
// MMKIT_HARDENED=0 turns off encoded free pointers and MMKIT_BACKGROUND=0
// the reporting worker (heap_reporter.cc).
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "malloc/heap.h"
#include "malloc/heap_internal.h"
#include "page_alloc/page_alloc.h"
#include "phys/machine.h"
#include "procfs/procfs.h"

#define MMKIT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace mmkit;

namespace {

constexpr size_t kPage = 4096;

void write_all(int fd, const std::string& s) {
  for (size_t done = 0; done < s.size();) {
    const ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// The program's call site, for MMKIT_DEBUG's owner tracking: each entry
// point passes its return address down (one load from the stack; the heap
// reads it only on its debugging slow paths).
#define CALLER() __builtin_return_address(0)

void* aligned_or_null(size_t align, size_t size, const void* caller) {
  if (align > (SIZE_MAX >> 1) + 1) {
    errno = EINVAL;
    return nullptr;
  }
  return heap_memalign(std::bit_ceil(std::max<size_t>(align, 1)), size, caller);
}

// pvalloc: page-aligned, the size rounded up to whole pages.
void* whole_pages_or_null(size_t size, const void* caller) {
  size_t rounded;
  if (__builtin_add_overflow(size, kPage - 1, &rounded)) {
    errno = ENOMEM;
    return nullptr;
  }
  return heap_memalign(kPage, rounded & ~(kPage - 1), caller);
}

// operator new: retry through the new_handler, then throw.
void* new_or_throw(size_t size, size_t align, const void* caller) {
  for (;;) {
    void* p = align <= 16 ? heap_malloc(size, caller) : heap_memalign(align, size, caller);
    if (p) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}

void* new_nothrow(size_t size, size_t align, const void* caller) noexcept {
  try {
    return new_or_throw(size, align, caller);
  } catch (...) {
    return nullptr;
  }
}

// A copy of stderr taken at load time: programs such as coreutils close
// their standard descriptors before they exit, and the report comes later.
// Taken when MMKIT_SHOW_STATS or MMKIT_PROC asks for output at exit.
int stats_fd = -1;
bool show_stats = false;

__attribute__((constructor)) void at_load() {
  const char* s = getenv("MMKIT_SHOW_STATS");
  const char* proc = getenv("MMKIT_PROC");
  show_stats = s && *s && *s != '0';
  if (show_stats || (proc && *proc)) stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 10);
}

__attribute__((destructor)) void at_exit_report() {
  if (show_stats && stats_fd >= 0) write_all(stats_fd, heap_stats_report());
  if (const char* dir = getenv("MMKIT_PROC"); dir && *dir) {
    Machine* m = heap_machine();
    if (!m) return;
    MallocCoreScope core;  // the views allocate under the machine's locks
    for (std::string_view name : view_names()) {
      const std::string text = render_view(*m, name);
      if (text.empty()) continue;
      const std::string path = std::string(dir) + "/" + std::string(name);
      const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) {
        // One line naming what failed, then nothing more: the program's
        // exit status stays its own.
        const std::string msg =
            "mmkit-malloc: MMKIT_PROC: cannot write " + path + ": " + std::strerror(errno) + "\n";
        if (stats_fd >= 0) write_all(stats_fd, msg);
        return;
      }
      write_all(fd, text);
      close(fd);
    }
  }
}

}  // namespace

MMKIT_EXPORT void* malloc(size_t size) {
  return heap_malloc(size, CALLER());
}
MMKIT_EXPORT void free(void* p) {
  heap_free(p, CALLER());
}
MMKIT_EXPORT void* calloc(size_t n, size_t size) {
  return heap_calloc(n, size, CALLER());
}
MMKIT_EXPORT void* realloc(void* p, size_t size) {
  return heap_realloc(p, size, CALLER());
}
MMKIT_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return heap_realloc(p, bytes, CALLER());
}
MMKIT_EXPORT void* memalign(size_t align, size_t size) {
  return aligned_or_null(align, size, CALLER());
}
// C11 with glibc 2.38's reading: an alignment that is not a power of two
// fails with EINVAL (memalign rounds it up instead, as glibc always has).
MMKIT_EXPORT void* aligned_alloc(size_t align, size_t size) {
  return heap_memalign(align, size, CALLER());
}
MMKIT_EXPORT int posix_memalign(void** out, size_t align, size_t size) {
  if (align % sizeof(void*) || (align & (align - 1)) || align == 0) return EINVAL;
  void* p = heap_memalign(align, size, CALLER());
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
MMKIT_EXPORT void* valloc(size_t size) {
  return heap_memalign(kPage, size, CALLER());
}
MMKIT_EXPORT void* pvalloc(size_t size) {
  return whole_pages_or_null(size, CALLER());
}
MMKIT_EXPORT size_t malloc_usable_size(void* p) {
  return heap_usable_size(p);
}
MMKIT_EXPORT int malloc_trim(size_t) {
  return heap_trim();
}
// Accepted, as glibc accepts them, and ignored: the heap has no knobs of
// glibc's kind. glibc refuses an M_MXFAST beyond MAX_FAST_SIZE, so does this.
MMKIT_EXPORT int mallopt(int param, int value) {
  if (param == M_MXFAST) return value >= 0 && value <= static_cast<int>(80 * sizeof(size_t) / 4);
  return 1;
}
// glibc's internal names for the same calls, which libc.so.6 exports too:
// a program or a library that calls __libc_malloc and frees with free (or
// the other way round) meets one heap. cfree is glibc's old name of free,
// still bound by binaries linked before glibc 2.26.
MMKIT_EXPORT void* __libc_malloc(size_t size) {
  return heap_malloc(size, CALLER());
}
MMKIT_EXPORT void __libc_free(void* p) {
  heap_free(p, CALLER());
}
MMKIT_EXPORT void cfree(void* p) {
  heap_free(p, CALLER());
}
MMKIT_EXPORT void* __libc_calloc(size_t n, size_t size) {
  return heap_calloc(n, size, CALLER());
}
MMKIT_EXPORT void* __libc_realloc(void* p, size_t size) {
  return heap_realloc(p, size, CALLER());
}
MMKIT_EXPORT void* __libc_memalign(size_t align, size_t size) {
  return aligned_or_null(align, size, CALLER());
}
MMKIT_EXPORT void* __libc_valloc(size_t size) {
  return heap_memalign(kPage, size, CALLER());
}
MMKIT_EXPORT void* __libc_pvalloc(size_t size) {
  return whole_pages_or_null(size, CALLER());
}
MMKIT_EXPORT int __libc_mallopt(int param, int value) {
  return mallopt(param, value);
}

// Introspection for tests: the library's name, and the heap's check().
MMKIT_EXPORT const char* mmkit_malloc_version() {
  return "mmkit-malloc 0.1";
}
MMKIT_EXPORT int mmkit_malloc_check(char* msg, size_t len) {
  const std::string e = heap_check();
  if (msg && len) {
    const size_t n = std::min(len - 1, e.size());
    std::memcpy(msg, e.data(), n);
    msg[n] = '\0';
  }
  return e.empty() ? 0 : 1;
}

// --- C++ ---------------------------------------------------------------------------------
#define MMKIT_NEW __attribute__((visibility("default")))

MMKIT_NEW void* operator new(size_t n) {
  if (void* p = heap_malloc(n, CALLER())) [[likely]]
    return p;
  return new_or_throw(n, 0, CALLER());
}
MMKIT_NEW void* operator new[](size_t n) {
  if (void* p = heap_malloc(n, CALLER())) [[likely]]
    return p;
  return new_or_throw(n, 0, CALLER());
}
MMKIT_NEW void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, 0, CALLER());
}
MMKIT_NEW void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, 0, CALLER());
}
MMKIT_NEW void* operator new(size_t n, std::align_val_t a) {
  return new_or_throw(n, static_cast<size_t>(a), CALLER());
}
MMKIT_NEW void* operator new[](size_t n, std::align_val_t a) {
  return new_or_throw(n, static_cast<size_t>(a), CALLER());
}
MMKIT_NEW void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<size_t>(a), CALLER());
}
MMKIT_NEW void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<size_t>(a), CALLER());
}
MMKIT_NEW void operator delete(void* p) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete[](void* p) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete(void* p, const std::nothrow_t&) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete[](void* p, const std::nothrow_t&) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete(void* p, size_t n) noexcept {
  heap_free_sized(p, n, CALLER());
}
MMKIT_NEW void operator delete[](void* p, size_t n) noexcept {
  heap_free_sized(p, n, CALLER());
}
MMKIT_NEW void operator delete(void* p, std::align_val_t) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete[](void* p, std::align_val_t) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  heap_free(p, CALLER());
}
MMKIT_NEW void operator delete(void* p, size_t n, std::align_val_t) noexcept {
  heap_free_sized(p, n, CALLER());
}
MMKIT_NEW void operator delete[](void* p, size_t n, std::align_val_t) noexcept {
  heap_free_sized(p, n, CALLER());
}
