// api_surface: checks the malloc API of whatever allocator serves this process
// (glibc, or libmmkit-malloc.so / another allocator through LD_PRELOAD)
// against what glibc promises, then runs seeded random operations against a
// model of the live blocks.
//
// Why: libmmkit-malloc.so is a drop-in replacement; programs rely on glibc's
// alignment, zeroing, errno and realloc semantics, not only on "returns
// memory". Three levels of expectation (see malloc_test_util.h):
//   - ISO C / POSIX promises (alignment for the requested size, content kept
//     by realloc, calloc zeroes, no overlap, ...) are checked for every allocator;
//   - glibc's exact behaviour (16-byte alignment even for malloc(1), errno
//     values, realloc(p, 0) frees, mallopt results, ...) for glibc and mmkit;
//     another allocator only gets a "note:" line per deviation;
//   - edge cases whose outcome depends on the glibc version (aligned_alloc
//     with a bad alignment changed in 2.38) are "probes": a preloaded mmkit is
//     compared with this same program run without LD_PRELOAD (`--probe`), i.e.
//     with the installed glibc, except where mmkit's contract fixes the answer.
//
// Usage: malloc_api_surface [--ops N] [--seed S]   (exit 0: all checks passed)
//        malloc_api_surface --probe                 (prints the probe outcomes)
// MMKIT_EXPECT_PRELOAD=1 makes it fail unless libmmkit-malloc.so is loaded.
#include <gnu/libc-version.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "malloc_test_util.h"

extern char** environ;

namespace {

using namespace mtest;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr size_t kSizeMax = std::numeric_limits<size_t>::max();
constexpr size_t kAbsurd = kSizeMax / 2;  // no allocator can satisfy it
constexpr size_t kMallocAlign = 16;       // glibc's MALLOC_ALIGNMENT on x86-64
constexpr int kErrnoUntouched = 4242;     // stored in errno before a call that must keep it

Allocator g_alloc = Allocator::kGlibc;
int g_notes = 0;  // deviations from glibc tolerated for another allocator

// A glibc-exact expectation: a failure for glibc and mmkit, a note otherwise.
void glibc_exact(bool ok, const char* file, int line, const char* expr, const std::string& what) {
  if (ok) return;
  if (g_alloc != Allocator::kOther) {
    fail(file, line, expr, "%s", what.c_str());
  } else if (++g_notes <= 25) {
    std::printf("note: not glibc's behaviour (tolerated for this allocator): %s -- %s\n", expr,
                what.c_str());
  }
}
#define CHECK_GLIBC(cond, what) glibc_exact((cond), __FILE__, __LINE__, #cond, (what))

bool is_aligned(const void* p, size_t a) {
  return reinterpret_cast<uintptr_t>(p) % a == 0;
}

size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

// The alignment malloc(size) must have: glibc gives 16 for any size; ISO C
// (since DR 445) only asks for what an object that fits in `size` needs.
size_t required_align(size_t size) {
  if (g_alloc != Allocator::kOther) return kMallocAlign;
  size_t a = 1;
  while (a * 2 <= size && a < kMallocAlign) a *= 2;
  return a;
}

// Writes every usable byte (the first and last 64 KiB and one byte per 64 KiB
// in between for big blocks, to keep the run short).
void touch_usable(void* p, size_t usable) {
  auto* b = static_cast<unsigned char*>(p);
  constexpr size_t kFull = 1 * kMiB, kEdge = 64 * kKiB;
  if (usable <= kFull) {
    std::memset(b, 0x5a, usable);
    return;
  }
  std::memset(b, 0x5a, kEdge);
  std::memset(b + usable - kEdge, 0x5a, kEdge);
  for (size_t i = kEdge; i < usable - kEdge; i += kEdge) b[i] = 0x5a;
}

// Blocks [p, p + len) of one batch must not overlap.
bool disjoint(const std::vector<std::pair<void*, size_t>>& blocks) {
  std::vector<std::pair<uintptr_t, uintptr_t>> r;
  for (auto [p, n] : blocks)
    if (p) r.emplace_back(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + n);
  std::sort(r.begin(), r.end());
  for (size_t i = 1; i < r.size(); ++i)
    if (r[i].first < r[i - 1].second) return false;
  return true;
}

// Checks one fresh block of `size` bytes that must be aligned to `align`.
void check_block(void* p, size_t size, size_t align, const char* what) {
  if (!p) {
    if (size == 0 && g_alloc == Allocator::kOther) return;  // ISO C allows NULL for 0 bytes
    CHECK_MSG(p != nullptr, "%s(size %zu, align %zu) returned NULL", what, size, align);
    return;
  }
  CHECK_MSG(is_aligned(p, align), "%s(size %zu) = %p is not %zu-aligned", what, size, p, align);
  const size_t usable = malloc_usable_size(p);
  CHECK_MSG(usable >= size, "%s(%zu): malloc_usable_size %zu < size", what, size, usable);
  touch_usable(p, std::max(usable, size));
}

// --- 1. malloc alignment and usable size over every size class ---------------------------------
std::vector<size_t> sweep_sizes() {
  std::vector<size_t> s;
  for (size_t n = 0; n <= 4096; ++n) s.push_back(n);  // every byte: all small classes
  for (size_t n = 4096; n <= 64 * kKiB; n += 16) s.push_back(n);
  for (size_t p = 8; p <= 64 * kMiB; p *= 2) {
    for (size_t n : {p - 1, p, p + 1, p - 8, p + 8, p + p / 4, p + p / 2, p - 4096, p + 4096})
      if (n <= 64 * kMiB) s.push_back(n);  // (p - 4096 wraps around for small p)
  }
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

void test_malloc_sizes() {
  int n = 0;
  for (size_t size : sweep_sizes()) {
    // Three live blocks per small size: the second and third come from the
    // same slab/bin as the first and must be aligned and disjoint as well.
    const int count = size <= 4096 ? 3 : 1;
    std::vector<std::pair<void*, size_t>> live;
    for (int i = 0; i < count; ++i) {
      void* p = std::malloc(opaque(size));
      escape(p);
      check_block(p, size, required_align(size), "malloc");
      live.emplace_back(p, p ? std::max<size_t>(malloc_usable_size(p), 1) : 0);
      ++n;
    }
    CHECK_MSG(disjoint(live), "malloc(%zu) blocks overlap", size);
    for (auto [p, len] : live) std::free(p);
  }
  std::printf("malloc: %d blocks of sizes 0 B .. 64 MiB aligned, usable size written\n", n);
}

// --- 2. memalign / posix_memalign / aligned_alloc ---------------------------------------------
void test_aligned() {
  int n = 0;
  for (size_t align = 8; align <= 1 * kMiB; align *= 2) {
    for (size_t size : {size_t{1}, size_t{8}, size_t{24}, size_t{100}, align - 1, align, align + 1,
                        3 * align + 5, size_t{100000}}) {
      std::vector<std::pair<void*, size_t>> live;
      for (int i = 0; i < (size <= 4096 ? 4 : 1); ++i) {
        void* a = memalign(opaque(align), size);
        check_block(a, size, std::max(align, required_align(size)), "memalign");
        void* b = nullptr;
        const int rc = posix_memalign(&b, opaque(align), size);
        CHECK_MSG(rc == 0, "posix_memalign(align %zu, size %zu) = %d", align, size, rc);
        check_block(b, size, std::max(align, required_align(size)), "posix_memalign");
        void* c = aligned_alloc(opaque(align), size);  // size need not be a multiple (C17)
        check_block(c, size, std::max(align, required_align(size)), "aligned_alloc");
        for (void* p : {a, b, c}) live.emplace_back(p, p ? malloc_usable_size(p) : 0);
        n += 3;
      }
      CHECK_MSG(disjoint(live), "aligned blocks (align %zu size %zu) overlap", align, size);
      for (auto [p, len] : live) std::free(p);
    }
  }
  // posix_memalign's alignment must be a power-of-two multiple of
  // sizeof(void*): EINVAL otherwise, errno untouched, *memptr not set.
  for (size_t align : {size_t{0}, size_t{1}, size_t{2}, size_t{4}, size_t{12}, size_t{24},
                       size_t{40}, size_t{48}, size_t{96}, size_t{3 * 4096}, kSizeMax}) {
    void* const marker = &n;
    void* p = marker;
    set_errno(kErrnoUntouched);
    const int rc = posix_memalign(&p, opaque(align), 64);
    const int e = get_errno();
    CHECK_MSG(rc == EINVAL, "posix_memalign(align %zu) = %d, want EINVAL", align, rc);
    CHECK_MSG(p == marker || p == nullptr, "posix_memalign(align %zu) failed but set *memptr",
              align);
    CHECK_GLIBC(e == kErrnoUntouched, "posix_memalign(align " + std::to_string(align) +
                                          ") changed errno to " + std::to_string(e));
    if (rc == 0 && p != marker) std::free(p);
  }
  std::printf("aligned: %d blocks with alignments 8 B .. 1 MiB, posix_memalign EINVAL cases\n", n);
}

// --- 3. valloc / pvalloc ----------------------------------------------------------------------
void test_page_aligned() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t size :
       {size_t{1}, size_t{100}, page - 1, page, page + 1, 3 * page + 7, 1 * kMiB + 1, 5 * kMiB}) {
    void* v = valloc(opaque(size));
    check_block(v, size, page, "valloc");
    void* pv = pvalloc(opaque(size));
    // pvalloc rounds the size up to a whole number of pages.
    check_block(pv, round_up(size, page), page, "pvalloc");
    std::free(v);
    std::free(pv);
  }
  std::printf("valloc/pvalloc: page-aligned, pvalloc rounds up to pages\n");
}

// --- 4. realloc -------------------------------------------------------------------------------
// Checks that [p, p + kept) still holds the pattern of `id`.
void check_kept(const void* p, size_t kept, uint64_t id, const char* what, size_t from, size_t to) {
  const size_t bad = find_pattern_mismatch(p, kept, id);
  CHECK_MSG(bad == kept, "%s %zu -> %zu: content lost at offset %zu of %zu", what, from, to, bad,
            kept);
}

void test_realloc() {
  // Grow from 1 byte to 8 MiB and shrink back, through every size class
  // boundary region and the mmap threshold, keeping the content.
  std::vector<size_t> steps;
  for (size_t s = 1; s <= 8 * kMiB; s = s + s / 3 + 1) steps.push_back(s);
  uint64_t id = 1;
  void* p = std::malloc(1);
  size_t cur = 1;
  fill_pattern(p, cur, id);
  int in_place = 0, calls = 0;
  auto step = [&](size_t to, const char* what) {
    void* q = std::realloc(p, opaque(to));
    ++calls;
    if (!q) {
      CHECK_MSG(q != nullptr, "realloc %zu -> %zu returned NULL", cur, to);
      return false;
    }
    CHECK_MSG(is_aligned(q, required_align(to)), "realloc -> %zu: %p misaligned", to, q);
    CHECK_MSG(malloc_usable_size(q) >= to, "realloc -> %zu: usable %zu", to, malloc_usable_size(q));
    check_kept(q, std::min(cur, to), id, what, cur, to);
    in_place += q == p;
    p = q;
    cur = to;
    fill_pattern(p, cur, ++id);
    return true;
  };
  for (size_t s : steps)
    if (!step(s, "realloc grow")) return;
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (!step(*it, "realloc shrink")) return;
  // To the same size and to the usable size: the block may stay where it is.
  if (!step(cur, "realloc same size")) return;
  if (!step(malloc_usable_size(p), "realloc to usable size")) return;
  // A failing realloc leaves the block alone (ENOMEM for glibc).
  set_errno(0);
  void* q = seen(std::realloc(p, opaque(kAbsurd)));
  const int e = get_errno();
  CHECK(q == nullptr);
  CHECK_GLIBC(e == ENOMEM, "realloc(p, SIZE_MAX/2) errno " + std::to_string(e));
  if (q) {
    std::free(q);
  } else {
    check_kept(p, cur, id, "failed realloc", cur, kAbsurd);
    std::free(p);
  }
  // realloc(NULL, n) is malloc(n).
  for (size_t n : {size_t{1}, size_t{17}, size_t{4000}, size_t{300000}}) {
    void* r = std::realloc(nullptr, opaque(n));
    check_block(r, n, required_align(n), "realloc(NULL)");
    std::free(r);
  }
  // realloc of a memalign'ed block keeps the content (the new block needs
  // only malloc's alignment).
  for (size_t align : {size_t{64}, size_t{4096}, size_t{65536}}) {
    void* a = memalign(align, 1000);
    CHECK(a != nullptr);
    if (!a) continue;
    fill_pattern(a, 1000, 99);
    void* b = std::realloc(a, opaque(size_t{50000}));
    CHECK(b != nullptr);
    if (!b) {
      std::free(a);
      continue;
    }
    check_kept(b, 1000, 99, "realloc of memalign block", 1000, 50000);
    void* c = std::realloc(b, opaque(size_t{10}));
    CHECK(c != nullptr);
    if (c) check_kept(c, 10, 99, "realloc of memalign block", 50000, 10);
    std::free(c ? c : b);
  }
  std::printf("realloc: %d resizes 1 B .. 8 MiB and back kept content (%d in place)\n", calls,
              in_place);
}

// A buffer grown 1000 bytes at a time to 2 MiB moves a logarithmic number
// of times (glibc: 6; a page run that moved at every new frame: 505, and
// the program ran 37 times slower), and keeps its bytes.
void test_realloc_small_steps() {
  char* p = nullptr;
  unsigned moves = 0;
  for (size_t n = 1000; n <= (size_t{2} << 20); n += 1000) {
    char* q = static_cast<char*>(std::realloc(p, opaque(n)));
    CHECK_MSG(q != nullptr, "realloc -> %zu returned NULL", n);
    if (!q) break;
    moves += q != p;
    q[n - 1000] = static_cast<char>(n / 1000);
    p = q;
  }
  for (size_t n = 1000; p && n <= (size_t{2} << 20); n += 37000)
    CHECK_MSG(p[n - 1000] == static_cast<char>(n / 1000), "byte %zu lost", n - 1000);
  CHECK_MSG(moves < 120, "growing by 1000 bytes to 2 MiB moved the block %u times", moves);
  std::printf("realloc: grown by 1000 B to 2 MiB with %u moves\n", moves);
  std::free(p);
}

// --- 5. calloc --------------------------------------------------------------------------------
bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i]) return false;
  return true;
}

void test_calloc() {
  std::vector<size_t> sizes;
  for (size_t s = 1; s <= 64 * kMiB; s = s * 3 / 2 + 1) sizes.push_back(s);
  for (size_t s :
       {size_t{24}, size_t{4096}, size_t{128 * kKiB}, size_t{128 * kKiB + 1}, size_t{32 * kMiB}})
    sizes.push_back(s);
  int n = 0;
  for (size_t size : sizes) {
    // Dirty a batch of blocks of this size, free them, calloc the same sizes:
    // the reused memory must come back zeroed.
    const int batch = size <= 64 * kKiB ? 32 : 2;
    std::vector<void*> dirty;
    for (int i = 0; i < batch; ++i) {
      void* p = std::malloc(opaque(size));
      CHECK(p != nullptr);
      if (p) std::memset(p, 0xff, malloc_usable_size(p));
      dirty.push_back(p);
    }
    for (void* p : dirty) std::free(p);
    for (int i = 0; i < batch; ++i) {
      const size_t nmemb = size % 3 == 0 ? 3 : 1;  // also nmemb > 1
      void* p = std::calloc(nmemb, opaque(size / nmemb));
      const size_t bytes = size / nmemb * nmemb;
      CHECK_MSG(p != nullptr, "calloc(%zu, %zu) returned NULL", nmemb, size / nmemb);
      if (!p) continue;
      CHECK_MSG(is_aligned(p, required_align(bytes)), "calloc(%zu) misaligned", bytes);
      CHECK_MSG(all_zero(p, bytes), "calloc(%zu, %zu) after reuse is not zeroed", nmemb,
                size / nmemb);
      dirty[i] = p;
      ++n;
    }
    for (void* p : dirty) std::free(p);
  }
  // Overflowing products fail cleanly.
  const std::pair<size_t, size_t> overflow[] = {
      {kSizeMax / 2 + 1, 2}, {2, kSizeMax / 2 + 1}, {size_t{1} << 32, size_t{1} << 32},
      {kSizeMax, kSizeMax},  {kSizeMax / 3 + 1, 3}, {kSizeMax, 1}};
  for (auto [a, b] : overflow) {
    set_errno(0);
    void* p = seen(std::calloc(opaque(a), opaque(b)));
    const int e = get_errno();
    CHECK_MSG(p == nullptr, "calloc(%zu, %zu) did not fail", a, b);
    CHECK_GLIBC(e == ENOMEM, "calloc(" + std::to_string(a) + ", " + std::to_string(b) + ") errno " +
                                 std::to_string(e));
    std::free(p);
  }
  std::printf("calloc: %d blocks 1 B .. 64 MiB zeroed after reuse; overflow fails\n", n);
}

// --- 6. reallocarray, malloc(0), malloc_usable_size, malloc_trim, mallinfo2 --------------------
void test_misc() {
  void* p = reallocarray(nullptr, opaque(size_t{10}), 10);
  check_block(p, 100, required_align(100), "reallocarray");
  fill_pattern(p, 100, 5);
  void* q = reallocarray(p, opaque(size_t{100}), 100);
  CHECK(q != nullptr);
  if (q) {
    check_kept(q, 100, 5, "reallocarray", 100, 10000);
    p = q;
  }
  for (auto [a, b] :
       {std::pair{kSizeMax / 2 + 1, size_t{2}}, std::pair{size_t{1} << 33, size_t{1} << 33}}) {
    set_errno(0);
    q = seen(reallocarray(opaque(p), opaque(a), opaque(b)));  // opaque: p is still ours if it fails
    const int e = get_errno();
    CHECK_MSG(q == nullptr, "reallocarray(p, %zu, %zu) did not fail", a, b);
    if (q) {
      p = q;
      continue;
    }
    CHECK_GLIBC(e == ENOMEM, "reallocarray overflow errno " + std::to_string(e));
    check_kept(p, 100, 5, "failed reallocarray", 100, 0);
  }
  std::free(p);

  // malloc(0): a unique pointer that can be freed (glibc never returns NULL).
  std::vector<std::pair<void*, size_t>> zeros;
  for (int i = 0; i < 200; ++i) {
    void* z = seen(std::malloc(opaque(size_t{0})));
    CHECK_GLIBC(z != nullptr, "malloc(0) returned NULL");
    CHECK(is_aligned(z, required_align(0)));
    zeros.emplace_back(z, 1);
  }
  CHECK_MSG(disjoint(zeros), "malloc(0) returned the same pointer twice");
  for (auto [z, len] : zeros) std::free(z);
  std::free(nullptr);  // a no-op

  CHECK(malloc_usable_size(nullptr) == 0);
  const int t0 = malloc_trim(0);
  const int t1 = malloc_trim(1 * kMiB);
  CHECK_MSG((t0 == 0 || t0 == 1) && (t1 == 0 || t1 == 1), "malloc_trim returned %d, %d", t0, t1);
  struct mallinfo2 mi = mallinfo2();
  escape(&mi);
  std::printf("misc: reallocarray, malloc(0) x200 unique, malloc_trim = %d/%d, mallinfo2 ok\n", t0,
              t1);
}

// --- 6b. glibc's __libc_ names, cfree, mallinfo, malloc_stats, malloc_info -----------------------
// libc.so.6 exports its allocator under __libc_ names too; a block must be
// freeable whichever of the two names allocated it. The introspection calls
// print glibc's formats: the lines malloc_stats writes to stderr, and
// malloc_info's XML with the mmapped chunks in its "mmap" total.
extern "C" void* __libc_malloc(size_t);
extern "C" void __libc_free(void*);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void* __libc_memalign(size_t, size_t);

// What f() writes to stderr (fd 2), through a temporary file.
template <class F>
std::string capture_stderr(F f) {
  std::fflush(stderr);
  FILE* tmp = std::tmpfile();
  if (!tmp) return "";
  const int saved = dup(2);
  dup2(fileno(tmp), 2);
  f();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  std::rewind(tmp);
  for (int c; (c = std::fgetc(tmp)) != EOF;) out += static_cast<char>(c);
  std::fclose(tmp);
  return out;
}

void test_glibc_names() {
  void* a = seen(__libc_malloc(opaque(size_t{300})));
  check_block(a, 300, kMallocAlign, "__libc_malloc");
  std::free(a);
  a = seen(std::malloc(opaque(size_t{50})));
  CHECK(a != nullptr);
  __libc_free(a);
  auto* z = static_cast<unsigned char*>(seen(__libc_calloc(opaque(size_t{100}), 10)));
  CHECK(z != nullptr);
  if (z) {
    CHECK(std::all_of(z, z + 1000, [](unsigned char c) { return c == 0; }));
    fill_pattern(z, 1000, 9);
    void* r = seen(__libc_realloc(z, opaque(size_t{5000})));
    CHECK(r != nullptr);
    if (r) {
      check_kept(r, 1000, 9, "__libc_realloc", 1000, 5000);
      z = static_cast<unsigned char*>(r);
    }
    std::free(z);
  }
  void* al = seen(__libc_memalign(opaque(size_t{4096}), 100));
  CHECK(al != nullptr && is_aligned(al, 4096));
  std::free(al);
  // cfree: a compat symbol in glibc (binaries linked before 2.26 bind it),
  // so only reachable by name.
  using FreeFn = void (*)(void*);
  if (auto cf = reinterpret_cast<FreeFn>(dlsym(RTLD_DEFAULT, "cfree"))) cf(std::malloc(77));
  CHECK_GLIBC(g_alloc != Allocator::kMmkit || dlsym(RTLD_DEFAULT, "cfree") != nullptr,
              "cfree is not exported");
}

void test_introspection() {
  constexpr size_t kBig = 64 * kMiB;  // mmapped by glibc, a big block for mmkit
  void* big = seen(std::malloc(opaque(kBig)));
  CHECK(big != nullptr);
  const struct mallinfo2 mi = mallinfo2();
  CHECK_MSG(mi.hblks >= 1 && mi.hblkhd >= kBig,
            "mallinfo2 with a live %zu-byte block: hblks %zu, hblkhd %zu", kBig, mi.hblks,
            mi.hblkhd);
  CHECK_MSG(mi.uordblks <= mi.arena && mi.fordblks <= mi.arena,
            "mallinfo2: uordblks %zu and fordblks %zu beyond arena %zu", mi.uordblks, mi.fordblks,
            mi.arena);
  CHECK_GLIBC(g_alloc != Allocator::kMmkit || mi.uordblks + mi.fordblks == mi.arena,
              "mallinfo2: uordblks + fordblks != arena");

  const std::string stats = capture_stderr([] { malloc_stats(); });
  for (const char* line : {"Arena 0:\nsystem bytes     = ", "\nin use bytes     = ",
                           "\nTotal (incl. mmap):\nsystem bytes     = ", "\nmax mmap regions = ",
                           "\nmax mmap bytes   = "})
    CHECK_MSG(stats.find(line) != std::string::npos, "malloc_stats: no \"%s\" in:\n%s", line,
              stats.c_str());

  CHECK_MSG(malloc_info(1, stdout) == EINVAL, "malloc_info(1, ...) is not EINVAL");
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  CHECK(f != nullptr);
  if (f) {
    const int rc = malloc_info(0, f);
    std::fclose(f);
    const std::string xml(buf ? buf : "", len);
    std::free(buf);
    CHECK_MSG(rc == 0, "malloc_info(0, ...) = %d", rc);
    CHECK_MSG(xml.rfind("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", 0) == 0,
              "malloc_info starts with:\n%.80s", xml.c_str());
    CHECK_MSG(xml.size() > 10 && xml.compare(xml.size() - 10, 10, "</malloc>\n") == 0,
              "malloc_info does not end with </malloc>");
    const size_t mm = xml.find("<total type=\"mmap\" count=\"");
    CHECK_MSG(mm != std::string::npos && std::strtoul(xml.c_str() + mm + 26, nullptr, 10) >= 1,
              "malloc_info: no mmapped chunk counted with one live:\n%s", xml.c_str());
  }
  std::free(big);
  std::printf(
      "glibc names: __libc_malloc/free/calloc/realloc/memalign, cfree; mallinfo2, "
      "malloc_stats, malloc_info ok\n");
}

void test_glibc_names_and_stats() {
  // Another allocator that leaves the __libc_ names to glibc would be handed
  // glibc's blocks: a note, and the interchange is not tried.
  const bool same_heap = defining_object("__libc_malloc") == defining_object("malloc");
  CHECK_GLIBC(same_heap || g_alloc == Allocator::kGlibc,
              "__libc_malloc is not the allocator's own: " + defining_object("__libc_malloc"));
  if (same_heap || g_alloc != Allocator::kOther) test_glibc_names();
  test_introspection();
}

// Runs f() (returning an exit code) in a child process; its exit status, or
// 128 + the signal that killed it.
template <class F>
int in_child(F f) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) _exit(f());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// --- 7. the C++ allocation functions ----------------------------------------------------------
struct Tracked {
  static inline int alive = 0;
  uint64_t v[3];
  Tracked() : v{1, 2, 3} { ++alive; }
  ~Tracked() { --alive; }
};
struct alignas(256) Over256 {
  char c[300];
};

void test_cxx() {
  // Scalar and array new-expressions, with a destructor (array cookie).
  auto* i = new int(42);
  escape(i);
  CHECK(*i == 42 && is_aligned(i, alignof(int)));
  delete i;
  auto* arr = new Tracked[1000];
  escape(arr);
  CHECK(Tracked::alive == 1000 && is_aligned(arr, alignof(Tracked)));
  delete[] arr;
  CHECK(Tracked::alive == 0);

  // Direct calls of each replaceable form, sized deletes included.
  void* a = ::operator new(opaque(size_t{100}));
  check_block(a, 100, kMallocAlign, "operator new");
  ::operator delete(a, 100);
  void* b = ::operator new[](opaque(size_t{5000}));
  check_block(b, 5000, kMallocAlign, "operator new[]");
  ::operator delete[](b, 5000);
  void* z1 = ::operator new(opaque(size_t{0}));  // never null, unique
  void* z2 = ::operator new(opaque(size_t{0}));
  CHECK(z1 && z2 && z1 != z2);
  ::operator delete(z1);
  ::operator delete(z2);
  void* c = ::operator new(64, std::nothrow);
  CHECK(c != nullptr);
  ::operator delete(c, std::nothrow);
  void* d = ::operator new[](64, std::nothrow);
  CHECK(d != nullptr);
  ::operator delete[](d, std::nothrow);

  // Aligned new honours std::align_val_t (32 .. 4096), all delete forms.
  int aligned_count = 0;
  for (size_t al = 32; al <= 4096; al *= 2) {
    const auto av = std::align_val_t{al};
    for (size_t size : {size_t{1}, al / 2, al, al + 1, 3 * al + 5}) {
      void* p1 = ::operator new(opaque(size), av);
      check_block(p1, size, al, "operator new(align_val_t)");
      void* p2 = ::operator new[](opaque(size), av);
      check_block(p2, size, al, "operator new[](align_val_t)");
      void* p3 = ::operator new(opaque(size), av, std::nothrow);
      check_block(p3, size, al, "operator new(align_val_t, nothrow)");
      void* p4 = ::operator new[](opaque(size), av, std::nothrow);
      check_block(p4, size, al, "operator new[](align_val_t, nothrow)");
      ::operator delete(p1, size, av);
      ::operator delete[](p2, av);
      ::operator delete(p3, av, std::nothrow);
      ::operator delete[](p4, size, av);
      aligned_count += 4;
    }
  }
  auto* o = new Over256;  // over-aligned new-expressions
  escape(o);
  CHECK(is_aligned(o, 256));
  delete o;
  auto* oa = new Over256[7];
  escape(oa);
  CHECK(is_aligned(oa, 256));
  delete[] oa;

  // An absurd size: nullptr from the nothrow forms, std::bad_alloc otherwise.
  const size_t huge = opaque(kAbsurd);
  CHECK(seen(::operator new(huge, std::nothrow)) == nullptr);
  CHECK(seen(::operator new[](huge, std::nothrow)) == nullptr);
  CHECK(seen(::operator new (huge, std::align_val_t{64}, std::nothrow)) == nullptr);
  CHECK(seen(::operator new[](huge, std::align_val_t{64}, std::nothrow)) == nullptr);
  // The throwing forms run in a child process: an allocator that aborts
  // instead of throwing (a C build of a C++ allocator may) is then reported
  // as a failed check instead of ending this program.
  struct ThrowCase {
    const char* what;
    void* (*call)(size_t);
  };
  const ThrowCase throwing[] = {
      {"operator new", [](size_t n) { return ::operator new(n); }},
      {"operator new[]", [](size_t n) { return ::operator new[](n); }},
      {"operator new(align_val_t{4096})",
       [](size_t n) { return ::operator new (n, std::align_val_t{4096}); }},
  };
  for (const ThrowCase& t : throwing) {
    const int rc = in_child([&] {
      try {
        escape(t.call(huge));
      } catch (const std::bad_alloc&) {
        return 0;
      } catch (...) {
        return 2;
      }
      return 1;
    });
    CHECK_MSG(rc == 0, "%s(SIZE_MAX/2) %s (child status %d)", t.what,
              rc == 1   ? "returned instead of throwing std::bad_alloc"
              : rc == 2 ? "threw something else than std::bad_alloc"
                        : "killed the process instead of throwing std::bad_alloc",
              rc);
  }
  std::printf("c++: new/delete, arrays, sized, nothrow, %d aligned (32 .. 4096), bad_alloc\n",
              aligned_count);
}

// --- 8. mmkit exports the whole surface -------------------------------------------------------
void test_exports() {
  if (g_alloc != Allocator::kMmkit) return;
  const std::string lib = defining_object("mmkit_malloc_version");
  const char* const symbols[] = {
      "malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "aligned_alloc",
      "posix_memalign", "valloc", "pvalloc", "malloc_usable_size", "malloc_trim", "mallopt",
      "mallinfo", "mallinfo2", "malloc_stats", "malloc_info", "mmkit_malloc_check",
      // glibc's other names of the same calls
      "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
      "__libc_valloc", "__libc_pvalloc", "__libc_mallopt", "__libc_mallinfo", "cfree",
      // operator new / delete: plain, array, nothrow, sized, aligned, ...
      "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
      "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
      "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
      "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t",
      "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
      "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t"};
  int n = 0;
  for (const char* s : symbols) {
    const std::string obj = defining_object(s);
    CHECK_MSG(obj == lib, "%s resolves to '%s', not to %s", s, obj.c_str(), lib.c_str());
    ++n;
  }
  std::printf("exports: %d symbols resolve into %s\n", n, lib.c_str());
}

// --- 9. probes: edge cases whose outcome is compared with glibc's -------------------------------
std::string err_name(int e) {
  if (e == kErrnoUntouched) return "unchanged";
  if (e == ENOMEM) return "ENOMEM";
  if (e == EINVAL) return "EINVAL";
  return std::to_string(e);
}

// "ptr" (freed here; " misaligned" if not aligned to `align`) or "null errno=...".
template <class F>
std::string ptr_probe(F f, size_t align = 1) {
  set_errno(kErrnoUntouched);
  void* p = seen(f());
  const int e = get_errno();
  if (!p) return "null errno=" + err_name(e);
  std::string s = is_aligned(p, align) ? "ptr" : "ptr misaligned";
  std::free(p);
  return s;
}

// A failing resize of a live block must leave it intact.
template <class F>
std::string resize_probe(F f) {
  void* p = std::malloc(64);
  fill_pattern(p, 64, 77);
  set_errno(kErrnoUntouched);
  void* q = seen(f(p));
  const int e = get_errno();
  if (q) {
    std::free(q);
    return "ptr";
  }
  std::string s = "null errno=" + err_name(e);
  if (find_pattern_mismatch(p, 64, 77) != 64) s += " block-damaged";
  std::free(p);
  return s;
}

std::string pm_probe(size_t align, size_t size) {
  static int marker_obj;
  void* const marker = &marker_obj;
  void* p = marker;
  set_errno(kErrnoUntouched);
  const int rc = posix_memalign(&p, opaque(align), opaque(size));
  const int e = get_errno();
  escape(p);
  if (rc == 0) {
    std::string s = p && is_aligned(p, align) ? "ret=0" : "ret=0 misaligned";
    std::free(p);
    return s;
  }
  // errno is part of the outcome for EINVAL only: glibc leaves it alone
  // there, but its ENOMEM path sets it (inside malloc), promised or not.
  return "ret=" + err_name(rc) + (rc == EINVAL ? " errno=" + err_name(e) : "") +
         (p == marker ? " memptr=unchanged"
          : p         ? " memptr=set"
                      : " memptr=null");
}

std::string ret_probe(int r) {
  return "ret=" + std::to_string(r);
}

using Outcomes = std::vector<std::pair<std::string, std::string>>;  // probe name, outcome

// Runs every probe once, in a fixed order (the --probe mode prints them).
Outcomes run_probes() {
  Outcomes out;
  auto add = [&](std::string name, std::string outcome) {
    out.emplace_back(std::move(name), std::move(outcome));
  };
  const size_t zero = opaque(size_t{0}), max = opaque(kSizeMax);
  const size_t two63 = opaque(kSizeMax / 2 + 1);  // 2^63 = PTRDIFF_MAX + 1
  add("malloc(0)", ptr_probe([&] { return std::malloc(zero); }));
  add("calloc(0, 8)", ptr_probe([&] { return std::calloc(zero, 8); }));
  add("calloc(8, 0)", ptr_probe([&] { return std::calloc(8, zero); }));
  add("realloc(NULL, 0)", ptr_probe([&] { return std::realloc(nullptr, zero); }));
  add("realloc(p, 0)", ptr_probe([&] { return std::realloc(std::malloc(32), zero); }));
  add("reallocarray(p, 0, 8)", ptr_probe([&] { return reallocarray(std::malloc(32), zero, 8); }));
  add("malloc(SIZE_MAX)", ptr_probe([&] { return std::malloc(max); }));
  add("malloc(2^63)", ptr_probe([&] { return std::malloc(two63); }));
  add("malloc(2^63 - 1)", ptr_probe([&] { return std::malloc(two63 - 1); }));
  add("calloc(2^63, 2)", ptr_probe([&] { return std::calloc(two63, 2); }));
  add("calloc(2^32, 2^32)", ptr_probe([&] { return std::calloc(two63 >> 31, two63 >> 31); }));
  add("realloc(p, 2^63 - 1)", resize_probe([&](void* p) { return std::realloc(p, two63 - 1); }));
  add("reallocarray(NULL, 2^63, 2)", ptr_probe([&] { return reallocarray(nullptr, two63, 2); }));
  add("reallocarray(p, 2^63, 2)", resize_probe([&](void* p) { return reallocarray(p, two63, 2); }));
  // aligned_alloc / memalign with odd alignments: a pointer must be aligned
  // to the next power of two (glibc rounds up).
  for (size_t a : {size_t{24}, size_t{3}, size_t{0}, size_t{1}}) {
    const size_t pow2 = a <= 1 ? 1 : size_t{1} << (64 - __builtin_clzll(a - 1));
    add("aligned_alloc(" + std::to_string(a) + ", 48)",
        ptr_probe([&] { return aligned_alloc(opaque(a), 48); }, pow2));
    add("memalign(" + std::to_string(a) + ", 48)",
        ptr_probe([&] { return memalign(opaque(a), 48); }, pow2));
  }
  add("aligned_alloc(64, 50)",
      ptr_probe([&] { return aligned_alloc(opaque(size_t{64}), 50); }, 64));
  add("aligned_alloc(2^63, 48)", ptr_probe([&] { return aligned_alloc(two63, 48); }));
  add("memalign(2^63 + 2, 48)", ptr_probe([&] { return memalign(two63 + 2, 48); }));
  add("memalign(4096, SIZE_MAX - 8192)", ptr_probe([&] { return memalign(4096, max - 8192); }));
  for (auto [label, a] : {std::pair{"0", size_t{0}}, std::pair{"4", size_t{4}},
                          std::pair{"24", size_t{24}}, std::pair{"SIZE_MAX", kSizeMax}})
    add(std::string("posix_memalign(") + label + ", 48)", pm_probe(a, 48));
  add("posix_memalign(8, 0)", pm_probe(8, 0));
  add("posix_memalign(8, SIZE_MAX - 100)", pm_probe(8, kSizeMax - 100));
  add("posix_memalign(2^63, 16)", pm_probe(two63, 16));
  add("valloc(0)", ptr_probe([&] { return valloc(zero); }, 4096));
  add("pvalloc(0)", ptr_probe([&] { return pvalloc(zero); }, 4096));
  add("valloc(SIZE_MAX)", ptr_probe([&] { return valloc(max); }));
  add("pvalloc(SIZE_MAX)", ptr_probe([&] { return pvalloc(max); }));
  add("malloc_usable_size(NULL)", std::to_string(malloc_usable_size(opaque<void*>(nullptr))));
  const std::pair<const char*, std::pair<int, int>> opts[] = {
      {"mallopt(M_MXFAST, -1)", {M_MXFAST, -1}},
      {"mallopt(M_MXFAST, 128)", {M_MXFAST, 128}},
      {"mallopt(M_TRIM_THRESHOLD, 128 KiB)", {M_TRIM_THRESHOLD, 128 * 1024}},
      {"mallopt(M_TOP_PAD, 128 KiB)", {M_TOP_PAD, 128 * 1024}},
      {"mallopt(M_MMAP_THRESHOLD, 128 KiB)", {M_MMAP_THRESHOLD, 128 * 1024}},
      {"mallopt(M_MMAP_MAX, 65536)", {M_MMAP_MAX, 65536}},
      {"mallopt(M_ARENA_MAX, 8)", {M_ARENA_MAX, 8}},
      {"mallopt(M_PERTURB, 0)", {M_PERTURB, 0}},
      {"mallopt(12345, 0)", {12345, 0}},
  };
  for (const auto& [name, arg] : opts) add(name, ret_probe(mallopt(arg.first, arg.second)));
  return out;
}

const char* const kPtr = "ptr";
const char* const kNoMem = "null errno=ENOMEM";
const char* const kInval = "null errno=EINVAL";
const char* const kUntouched = "null errno=unchanged";  // realloc(p, 0) frees p
const char* const kPmInval = "ret=EINVAL errno=unchanged memptr=unchanged";
const char* const kPmNoMem = "ret=ENOMEM memptr=unchanged";

struct Expected {
  const char* name;
  const char* glibc;               // glibc's outcome (before 2.38 where glibc238 is set)
  const char* glibc238 = nullptr;  // glibc >= 2.38 where it differs
  const char* contract = nullptr;  // libmmkit-malloc's own promise, whatever glibc does
};

const Expected kExpected[] = {
    {"malloc(0)", kPtr},
    {"calloc(0, 8)", kPtr},
    {"calloc(8, 0)", kPtr},
    {"realloc(NULL, 0)", kPtr},
    {"realloc(p, 0)", kUntouched},
    {"reallocarray(p, 0, 8)", kUntouched},
    {"malloc(SIZE_MAX)", kNoMem},
    {"malloc(2^63)", kNoMem},
    {"malloc(2^63 - 1)", kNoMem},
    {"calloc(2^63, 2)", kNoMem},
    {"calloc(2^32, 2^32)", kNoMem},
    {"realloc(p, 2^63 - 1)", kNoMem},
    {"reallocarray(NULL, 2^63, 2)", kNoMem},
    {"reallocarray(p, 2^63, 2)", kNoMem},
    // Before 2.38 glibc's aligned_alloc is memalign (any alignment, rounded
    // up to a power of two); 2.38 refuses a non-power-of-two, as mmkit does.
    {"aligned_alloc(24, 48)", kPtr, kInval, kInval},
    {"aligned_alloc(3, 48)", kPtr, kInval, kInval},
    {"aligned_alloc(0, 48)", kPtr, kInval, kInval},
    {"aligned_alloc(1, 48)", kPtr},
    {"aligned_alloc(64, 50)", kPtr},  // the size need not be a multiple (C17)
    {"aligned_alloc(2^63, 48)", kNoMem},
    {"memalign(24, 48)", kPtr},
    {"memalign(3, 48)", kPtr},
    {"memalign(0, 48)", kPtr},
    {"memalign(1, 48)", kPtr},
    {"memalign(2^63 + 2, 48)", kInval},
    {"memalign(4096, SIZE_MAX - 8192)", kNoMem},
    {"posix_memalign(0, 48)", kPmInval},
    {"posix_memalign(4, 48)", kPmInval},
    {"posix_memalign(24, 48)", kPmInval},
    {"posix_memalign(SIZE_MAX, 48)", kPmInval},
    {"posix_memalign(8, 0)", "ret=0"},
    {"posix_memalign(8, SIZE_MAX - 100)", kPmNoMem},
    {"posix_memalign(2^63, 16)", kPmNoMem},
    {"valloc(0)", kPtr},
    {"pvalloc(0)", kPtr},
    {"valloc(SIZE_MAX)", kNoMem},
    {"pvalloc(SIZE_MAX)", kNoMem},
    {"malloc_usable_size(NULL)", "0"},
    // mallopt: 1 on success, 0 for a bad value; an unknown parameter is not
    // an error (mallopt(3), BUGS).
    {"mallopt(M_MXFAST, -1)", "ret=0"},
    {"mallopt(M_MXFAST, 128)", "ret=1"},
    {"mallopt(M_TRIM_THRESHOLD, 128 KiB)", "ret=1"},
    {"mallopt(M_TOP_PAD, 128 KiB)", "ret=1"},
    {"mallopt(M_MMAP_THRESHOLD, 128 KiB)", "ret=1"},
    {"mallopt(M_MMAP_MAX, 65536)", "ret=1"},
    {"mallopt(M_ARENA_MAX, 8)", "ret=1"},
    {"mallopt(M_PERTURB, 0)", "ret=1"},
    {"mallopt(12345, 0)", "ret=1"},
};

bool glibc_at_least(int major, int minor) {
  int ma = 0, mi = 0;
  std::sscanf(gnu_get_libc_version(), "%d.%d", &ma, &mi);
  return ma > major || (ma == major && mi >= minor);
}

const Expected* expectation(const std::string& name) {
  for (const Expected& e : kExpected)
    if (name == e.name) return &e;
  return nullptr;
}

// Runs this program again with --probe, without LD_PRELOAD (and MMKIT_*):
// the installed glibc's outcomes, by probe name. Empty if that failed or the
// reference run was not served by glibc.
std::map<std::string, std::string> reference_outcomes() {
  std::map<std::string, std::string> out;
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return out;
  exe[len] = '\0';
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0 && std::strncmp(*e, "MMKIT_", 6) != 0)
      env_store.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return out;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char arg[] = "--probe";
  char* argv[] = {exe, arg, nullptr};
  pid_t pid;
  const int rc = posix_spawn(&pid, exe, &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  std::string text;
  if (rc == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, n);
  }
  close(fds[0]);
  int status = 0;
  if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return out;
  // Lines "probe\t<name>\t<outcome>", and "allocator\t<kind>".
  size_t pos = 0;
  bool glibc = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    const size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    if (t1 == std::string::npos) continue;
    if (line.substr(0, t1) == "allocator") glibc = line.substr(t1 + 1) == "glibc";
    if (line.substr(0, t1) == "probe" && t2 != std::string::npos)
      out[line.substr(t1 + 1, t2 - t1 - 1)] = line.substr(t2 + 1);
  }
  if (!glibc) out.clear();
  return out;
}

void test_probes() {
  std::map<std::string, std::string> ref;
  if (g_alloc == Allocator::kMmkit) {
    ref = reference_outcomes();
    if (ref.empty())
      std::printf("probes: no reference run without LD_PRELOAD; using the built-in glibc table\n");
  }
  int compared = 0, with_ref = 0;
  for (const auto& [name, got] : run_probes()) {
    const Expected* e = expectation(name);
    if (!e) {
      CHECK_MSG(e != nullptr, "probe '%s' has no expectation in kExpected", name.c_str());
      continue;
    }
    const char* table = e->glibc238 && glibc_at_least(2, 38) ? e->glibc238 : e->glibc;
    std::string want = table, source = "glibc table";
    if (g_alloc == Allocator::kMmkit) {
      if (auto it = ref.find(name); it != ref.end()) {
        if (it->second != table)
          std::printf("note: %s: glibc %s here gives '%s' (table: '%s')\n", name.c_str(),
                      gnu_get_libc_version(), it->second.c_str(), table);
        want = it->second;
        source = "glibc without preload";
        ++with_ref;
      }
      if (e->contract) {
        if (want != e->contract)
          std::printf("note: %s: mmkit's contract '%s' differs from %s '%s'\n", name.c_str(),
                      e->contract, source.c_str(), want.c_str());
        want = e->contract;
        source = "mmkit contract";
      }
    }
    ++compared;
    CHECK_GLIBC(got == want, name + " gave '" + got + "', " + source + ": '" + want + "'");
  }
  std::printf("probes: %d edge cases compared (%d against glibc %s run without preload)\n",
              compared, with_ref, gnu_get_libc_version());
}

// --- 10. random operations against a model ----------------------------------------------------
struct LiveBlock {
  char* p;
  size_t size;
  size_t span;  // bytes owned: max(usable size, 1)
  uint64_t id;
};

class HeapModel {
 public:
  // False (after reporting) if the block overlaps a live one or is misplaced.
  bool add(const LiveBlock& b, size_t align, const char* op) {
    const auto lo = reinterpret_cast<uintptr_t>(b.p), hi = lo + b.span;
    CHECK_MSG(is_aligned(b.p, align), "%s(%zu) = %p not %zu-aligned", op, b.size, b.p, align);
    auto next = spans_.upper_bound(lo);
    if (next != spans_.end() && next->first < hi) {
      fail(__FILE__, __LINE__, "no overlap", "%s(%zu) = [%p, +%zu) overlaps live block at %#lx", op,
           b.size, b.p, b.span, static_cast<unsigned long>(next->first));
      return false;
    }
    if (next != spans_.begin() && std::prev(next)->second > lo) {
      fail(__FILE__, __LINE__, "no overlap", "%s(%zu) = [%p, +%zu) overlaps live block at %#lx", op,
           b.size, b.p, b.span, static_cast<unsigned long>(std::prev(next)->first));
      return false;
    }
    spans_.emplace(lo, hi);
    blocks_.push_back(b);
    bytes_ += b.size;
    return true;
  }
  LiveBlock take(size_t i) {
    LiveBlock b = blocks_[i];
    blocks_[i] = blocks_.back();
    blocks_.pop_back();
    spans_.erase(reinterpret_cast<uintptr_t>(b.p));
    bytes_ -= b.size;
    return b;
  }
  size_t count() const { return blocks_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  std::vector<LiveBlock> blocks_;
  std::map<uintptr_t, uintptr_t> spans_;
  size_t bytes_ = 0;
};

// Mostly small sizes, sometimes up to 4 MiB.
size_t random_size(std::mt19937_64& rng) {
  const unsigned r = rng() % 1000;
  auto in = [&](size_t lo, size_t hi) { return lo + rng() % (hi - lo + 1); };
  if (r < 600) return in(1, 128);
  if (r < 850) return in(129, 4096);
  if (r < 950) return in(4097, 256 * kKiB);
  if (r < 990) return in(256 * kKiB, 1 * kMiB);
  return in(1 * kMiB, 4 * kMiB);
}

bool verify(const LiveBlock& b, size_t len, int op, const char* what) {
  const size_t bad = find_pattern_mismatch(b.p, len, b.id);
  if (bad == len) return true;
  fail(__FILE__, __LINE__, "block content intact",
       "op %d (%s): block id %llu at %p, size %zu: byte %zu changed", op, what,
       static_cast<unsigned long long>(b.id), b.p, b.size, bad);
  return false;
}

void random_ops(int ops, uint64_t seed) {
  constexpr size_t kMaxLive = 1500;
  constexpr size_t kMaxLiveBytes = 96 * kMiB;
  std::mt19937_64 rng(seed);
  HeapModel model;
  uint64_t next_id = 1;
  int checks = 0, counts[5] = {};
  auto made = [&](char* p, size_t size, size_t align, const char* op) {
    if (!p) {
      fail(__FILE__, __LINE__, "allocation succeeded", "%s(%zu) returned NULL", op, size);
      return false;
    }
    const LiveBlock b{p, size, std::max<size_t>(malloc_usable_size(p), 1), next_id++};
    CHECK_MSG(malloc_usable_size(p) >= size, "%s(%zu): usable %zu", op, size,
              malloc_usable_size(p));
    if (!model.add(b, align, op)) return false;
    fill_pattern(p, size, b.id);
    return true;
  };
  bool ok = true;
  for (int op = 1; op <= ops && ok; ++op) {
    unsigned r = rng() % 100;
    if (model.count() >= kMaxLive || model.bytes() >= kMaxLiveBytes) r = 99;  // free
    if (model.count() == 0 && r >= 60) r = 0;
    if (r < 35) {  // malloc
      const size_t n = random_size(rng);
      ok = made(static_cast<char*>(std::malloc(n)), n, required_align(n), "malloc");
      counts[0]++;
    } else if (r < 45) {  // calloc, zeroed
      const size_t n = random_size(rng), nmemb = 1 + rng() % 4;
      const size_t each = std::max<size_t>(n / nmemb, 1);
      auto* p = static_cast<char*>(std::calloc(nmemb, each));
      if (p && !all_zero(p, nmemb * each)) {
        fail(__FILE__, __LINE__, "calloc zeroes", "op %d: calloc(%zu, %zu) not zeroed", op, nmemb,
             each);
        ok = false;
      }
      ok = ok && made(p, nmemb * each, required_align(nmemb * each), "calloc");
      counts[1]++;
    } else if (r < 50) {  // memalign / posix_memalign / aligned_alloc
      const size_t align = size_t{8} << (rng() % 14), n = random_size(rng);
      void* p = nullptr;
      const char* name = "memalign";
      switch (rng() % 3) {
        case 0:
          p = memalign(align, n);
          break;
        case 1:
          name = "posix_memalign";
          if (posix_memalign(&p, align, n) != 0) p = nullptr;
          break;
        default:
          name = "aligned_alloc";
          p = aligned_alloc(align, n);
          break;
      }
      ok = made(static_cast<char*>(p), n, std::max(align, required_align(n)), name);
      counts[2]++;
    } else if (r < 65 && model.count() > 0) {  // realloc: grow, shrink or random
      LiveBlock b = model.take(rng() % model.count());
      if (!(ok = verify(b, b.size, op, "before realloc"))) break;
      size_t n = random_size(rng);
      if (rng() % 3 == 0) n = b.size + 1 + rng() % (b.size / 2 + 16);        // grow a little
      if (rng() % 4 == 0) n = std::max<size_t>(1, b.size - rng() % b.size);  // shrink
      auto* q = static_cast<char*>(std::realloc(b.p, n));
      if (!q) {
        fail(__FILE__, __LINE__, "realloc succeeded", "realloc(%zu -> %zu) returned NULL", b.size,
             n);
        std::free(b.p);
        ok = false;
        break;
      }
      LiveBlock moved{q, std::min(b.size, n), 0, b.id};
      if (!(ok = verify(moved, moved.size, op, "after realloc"))) break;
      ok = made(q, n, required_align(n), "realloc");
      counts[3]++;
    } else if (model.count() > 0) {  // free
      LiveBlock b = model.take(rng() % model.count());
      ok = verify(b, b.size, op, "before free");
      std::free(b.p);
      counts[4]++;
    }
    if (op % 1000 == 0) {
      ok = ok && HEAP_CHECK("random operations");
      ++checks;
    }
  }
  const size_t left = model.count();
  while (model.count() > 0) {
    LiveBlock b = model.take(model.count() - 1);
    if (ok) ok = verify(b, b.size, ops, "final free");
    std::free(b.p);
  }
  HEAP_CHECK("after the random operations");
  std::printf(
      "random: %d ops (seed %llu): %d malloc, %d calloc, %d aligned, %d realloc, %d free, "
      "%zu left freed at the end, %d heap checks%s\n",
      ops, static_cast<unsigned long long>(seed), counts[0], counts[1], counts[2], counts[3],
      counts[4], left, checks, ok ? "" : " -- STOPPED at the first error");
}

}  // namespace

int main(int argc, char** argv) {
  int ops = 20000;
  uint64_t seed = 20240611;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--probe") {  // the outcomes of the probes, for a reference run
      g_alloc = detect_allocator();
      std::printf("allocator\t%s\n", allocator_name(g_alloc));
      for (const auto& [name, outcome] : run_probes())
        std::printf("probe\t%s\t%s\n", name.c_str(), outcome.c_str());
      return 0;
    } else if (a == "--ops" && i + 1 < argc) {
      ops = std::atoi(argv[++i]);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 0);
    } else {
      std::fprintf(stderr, "usage: %s [--ops N] [--seed S] | --probe\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // in order with the CHECK lines on stderr
  require_preload_if_expected("api_surface");
  g_alloc = detect_allocator();
  const MmkitVersionFn version = mmkit_version_fn();
  std::printf("api_surface: allocator %s (%s), glibc %s\n", allocator_name(g_alloc),
              version ? version() : defining_object("malloc").c_str(), gnu_get_libc_version());
  std::fflush(stdout);

  test_exports();
  test_malloc_sizes();
  test_aligned();
  test_page_aligned();
  test_realloc();
  test_realloc_small_steps();
  test_calloc();
  test_misc();
  test_glibc_names_and_stats();
  test_cxx();
  test_probes();
  HEAP_CHECK("after the API checks");
  random_ops(ops, seed);

  const int failures = g_failures.load();
  std::printf("api_surface: %s: %d failed checks, %d tolerated deviations from glibc (%s)\n",
              failures ? "FAIL" : "PASS", failures, g_notes, allocator_name(g_alloc));
  return exit_status();
}
