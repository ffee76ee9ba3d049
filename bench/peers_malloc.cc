// Malloc peers of the slab benchmarks: what a user-space program pays for
// small objects, in the same run and through the same loops (alloc_loops.h).
//
//   peer/<lib>/malloc_pair/<SIZE>  one malloc(SIZE) + free per iteration
//   peer/<lib>/batch/<SIZE>        10,000 mallocs, then as many frees; time
//                                  per object
//   peer/<lib>/remote_free         malloc(64) on the benchmark thread, free
//                                  on a second thread, through the same SPSC
//                                  ring as slab/remote_free (real time)
//
// with, per <lib>:
//     glibc     libc.so.6          malloc    / free
//     jemalloc  libjemalloc.so.2   malloc    / free
//     tcmalloc  libtcmalloc_minimal.so.4  tc_malloc / tc_free
//     mimalloc  libmimalloc.so.2   mi_malloc / mi_free
//
// As in peers.cc, each library is dlopen'ed RTLD_NOW | RTLD_LOCAL |
// RTLD_DEEPBIND and its functions taken with dlsym on that handle, so each
// peer is really that allocator, none replaces the process's malloc, and
// each resolves its own internal calls to itself; handles are never closed.
// (jemalloc needs the static-TLS re-exec of main.cc.) Each peer's label is
// the file its malloc came from (dladdr). Peers are called through function
// pointers, mmkit directly: at most ~1 ns per call in mmkit's favour.
//
// tcmalloc is the minimal library, not libtcmalloc.so.4 as in peers.cc:
// the full one (with the heap profiler and checker), dlopen'ed with
// RTLD_DEEPBIND, crashes in CentralFreeList::ReleaseToSpans on the first
// thread-cache scavenge (10,000 tc_malloc(16) then tc_free reproduce it in
// a ten-line program; without RTLD_DEEPBIND, or with the minimal library,
// it runs). Late-loading gperftools is known to be fragile (gperftools
// issues 1066, 1148). The minimal library is the same allocator without
// the profiling hooks, so its fast paths are, if anything, slightly faster.
//
// The peers get the object size with each free no more than kfree does;
// kmem_cache_free knows its cache, as a sized delete would.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstddef>
#include <mutex>
#include <string>

#include "alloc_loops.h"

namespace mmkit_bench {

namespace {

constexpr size_t kRemoteSize = 64;

struct MallocLib {
  const char* soname;
  const char* malloc_sym;
  const char* free_sym;
};

// Indexed by the `peer` argument (main.cc's order: glibc, jemalloc,
// tcmalloc, mimalloc).
constexpr MallocLib kMallocPeers[] = {
    {"libc.so.6", "malloc", "free"},
    {"libjemalloc.so.2", "malloc", "free"},
    {"libtcmalloc_minimal.so.4", "tc_malloc", "tc_free"},
    {"libmimalloc.so.2", "mi_malloc", "mi_free"},
};
constexpr int kNrMallocPeers = sizeof(kMallocPeers) / sizeof(kMallocPeers[0]);

using MallocFn = void* (*)(size_t);
using FreeFn = void (*)(void*);

struct LoadedMalloc {
  bool tried = false;
  MallocFn malloc = nullptr;
  FreeFn free = nullptr;
  std::string from;  // the file malloc lives in (dladdr)
  std::string error;
};

const LoadedMalloc& load_malloc_peer(int peer) {
  static std::mutex mu;
  static LoadedMalloc loaded[kNrMallocPeers];
  std::lock_guard<std::mutex> lock(mu);
  LoadedMalloc& l = loaded[peer];
  if (l.tried) return l;
  l.tried = true;
  const MallocLib& lib = kMallocPeers[peer];
  void* h = dlopen(lib.soname, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (h == nullptr) {
    l.error = std::string("dlopen: ") + dlerror();
    return l;
  }
  void* a = dlsym(h, lib.malloc_sym);
  void* f = dlsym(h, lib.free_sym);
  if (a == nullptr || f == nullptr) {
    l.error = std::string(lib.soname) + ": no " + (a ? lib.free_sym : lib.malloc_sym);
    return l;
  }
  l.malloc = reinterpret_cast<MallocFn>(a);
  l.free = reinterpret_cast<FreeFn>(f);
  Dl_info info;
  if (dladdr(a, &info) != 0 && info.dli_fname != nullptr) l.from = info.dli_fname;
  return l;
}

// The peer's functions, or null after skipping the benchmark.
const LoadedMalloc* peer_or_skip(benchmark::State& state, int peer) {
  const LoadedMalloc& l = load_malloc_peer(peer);
  if (l.malloc == nullptr) {
    state.SkipWithError(l.error.c_str());
    return nullptr;
  }
  state.SetLabel(l.from);  // proof of which library answered
  return &l;
}

}  // namespace

void BM_peer_malloc_pair(benchmark::State& state, int peer, unsigned size) {
  const LoadedMalloc* l = peer_or_skip(state, peer);
  if (l == nullptr) return;
  run_pairs(
      state, [mf = l->malloc, size] { return mf(size); }, l->free);
}

void BM_peer_batch(benchmark::State& state, int peer, unsigned size) {
  const LoadedMalloc* l = peer_or_skip(state, peer);
  if (l == nullptr) return;
  run_batch(
      state, [mf = l->malloc, size] { return mf(size); }, l->free);
}

void BM_peer_remote_free(benchmark::State& state, int peer) {
  const LoadedMalloc* l = peer_or_skip(state, peer);
  if (l == nullptr) return;
  run_remote_free(
      state, [mf = l->malloc] { return mf(kRemoteSize); }, l->free,
      [](auto&& body) -> std::string {
        body();
        return "";
      });
}

}  // namespace mmkit_bench
