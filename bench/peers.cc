// Peers: what a user-space program pays for one 4 KiB page-aligned block.
//
//   peer/<lib>_aligned_4k  one aligned 4 KiB allocation + free per iteration
//                          through each allocator's own library:
//     glibc     libc.so.6               aligned_alloc(4096, 4096) / free
//     jemalloc  libjemalloc.so.2        aligned_alloc(4096, 4096) / free
//     tcmalloc  libtcmalloc.so.4        tc_memalign(4096, 4096)   / tc_free
//     mimalloc  libmimalloc.so.2        mi_malloc_aligned(4096, 4096) / mi_free
//   peer/mmap_4k           mmap of one anonymous page, a one-byte write
//                          (the page fault), munmap: what the kernel charges
//
// Each library is dlopen'ed RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND and its
// functions taken with dlsym on that handle, so each peer is really that
// allocator, none of them replaces the process's malloc (the benchmark
// harness and mmkit keep glibc's), and each resolves its own internal calls
// to itself. Handles are never closed: unloading an allocator is unsafe.
// Each peer's label is the file its allocation function came from (dladdr).
// Every peer is called through a function pointer; mmkit's pair is a direct
// call into a static library, which is worth ~1 ns per call at most.
//
// Debian's libjemalloc.so.2 uses initial-exec TLS, which dlopen can place
// only in glibc's static TLS surplus; main.cc re-executes the binary once
// with a larger surplus (GLIBC_TUNABLES=glibc.rtld.optional_static_tls) so
// that jemalloc loads in-process like the others.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace mmkit_bench {

namespace {

constexpr size_t kSize = 4096;
constexpr size_t kAlign = 4096;

struct PeerLib {
  const char* soname;
  const char* alloc_sym;
  const char* free_sym;
  bool size_first;  // alloc(size, align) rather than alloc(align, size)
};

// Indexed by the `peer` argument of BM_peer_aligned_4k.
constexpr PeerLib kPeers[] = {
    {"libc.so.6", "aligned_alloc", "free", false},
    {"libjemalloc.so.2", "aligned_alloc", "free", false},
    {"libtcmalloc.so.4", "tc_memalign", "tc_free", false},
    {"libmimalloc.so.2", "mi_malloc_aligned", "mi_free", true},
};
constexpr int kNrPeers = sizeof(kPeers) / sizeof(kPeers[0]);

using AllocFn = void* (*)(size_t, size_t);
using FreeFn = void (*)(void*);

struct LoadedPeer {
  bool tried = false;
  AllocFn alloc = nullptr;
  FreeFn free = nullptr;
  std::string from;  // the file the allocation function lives in (dladdr)
  std::string error;
};

const LoadedPeer& load_peer(int peer) {
  static std::mutex mu;
  static LoadedPeer loaded[kNrPeers];
  std::lock_guard<std::mutex> lock(mu);
  LoadedPeer& l = loaded[peer];
  if (l.tried) return l;
  l.tried = true;
  const PeerLib& lib = kPeers[peer];
  void* h = dlopen(lib.soname, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (h == nullptr) {
    l.error = std::string("dlopen: ") + dlerror();
    return l;
  }
  void* a = dlsym(h, lib.alloc_sym);
  void* f = dlsym(h, lib.free_sym);
  if (a == nullptr || f == nullptr) {
    l.error = std::string(lib.soname) + ": no " + (a ? lib.free_sym : lib.alloc_sym);
    return l;
  }
  l.alloc = reinterpret_cast<AllocFn>(a);
  l.free = reinterpret_cast<FreeFn>(f);
  Dl_info info;
  if (dladdr(a, &info) != 0 && info.dli_fname != nullptr) l.from = info.dli_fname;
  return l;
}

template <bool kSizeFirst>
void aligned_pairs(benchmark::State& state, AllocFn alloc, FreeFn free_fn) {
  // One checked call first: a peer that hands back misaligned memory would
  // be measuring something else.
  void* first = kSizeFirst ? alloc(kSize, kAlign) : alloc(kAlign, kSize);
  if (first == nullptr || reinterpret_cast<uintptr_t>(first) % kAlign != 0)
    return state.SkipWithError("peer returned null or misaligned memory");
  free_fn(first);
  for (auto _ : state) {
    void* p = kSizeFirst ? alloc(kSize, kAlign) : alloc(kAlign, kSize);
    benchmark::DoNotOptimize(p);
    free_fn(p);
  }
}

}  // namespace

void BM_peer_aligned_4k(benchmark::State& state, int peer) {
  const LoadedPeer& l = load_peer(peer);
  if (l.alloc == nullptr) return state.SkipWithError(l.error.c_str());
  state.SetLabel(l.from);  // proof of which library answered
  if (kPeers[peer].size_first)
    aligned_pairs<true>(state, l.alloc, l.free);
  else
    aligned_pairs<false>(state, l.alloc, l.free);
}

void BM_peer_mmap_4k(benchmark::State& state) {
  for (auto _ : state) {
    void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      state.SkipWithError("mmap failed");
      break;
    }
    *static_cast<volatile char*>(p) = 1;
    munmap(p, kSize);
  }
}

}  // namespace mmkit_bench
