// mmkit_bench's main: registers every benchmark, in an order that
// interleaves mmkit with its peers, and runs them.
//
// Google Benchmark runs benchmarks in registration order, and static
// registration across files has no defined order; so nothing registers
// itself and this file lists them all. The order0 pcp pair runs before and
// after the peers (page_alloc/order0_pcp and page_alloc/order0_pcp/repeat),
// so drift over the run (another build, a frequency change) shows up as a
// gap between the two instead of silently favouring one side. For finer
// mixing, pass --benchmark_enable_random_interleaving=true.
//
// Before anything else main makes sure jemalloc can be dlopen'ed (see
// peers.cc): if the probe fails for lack of static TLS, the binary
// re-executes itself once with GLIBC_TUNABLES asking for a larger surplus.
// MMKIT_BENCH_NO_REEXEC=1 turns that off (peer/jemalloc is then skipped).
//
// The slab benchmarks (slab/...) follow the page allocator's, each size's
// mmkit runs next to the malloc peers of that size (peer/<lib>/...).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "swap/zswap.h"

namespace mmkit_bench {

void BM_order0_pcp(benchmark::State& state, uint64_t gib);
void BM_order0_nopcp(benchmark::State& state);
void BM_order0_nopcp_nomerge(benchmark::State& state);
void BM_zone_lock_pair(benchmark::State& state);
void BM_orderN(benchmark::State& state, unsigned order);
void BM_two_cpu_remote_free(benchmark::State& state);
void BM_peer_aligned_4k(benchmark::State& state, int peer);  // peers.cc's kPeers order
void BM_peer_mmap_4k(benchmark::State& state);
void BM_boot(benchmark::State& state, uint64_t gib);
void BM_slab_cache_pair(benchmark::State& state, unsigned size);
void BM_slab_kmalloc_pair(benchmark::State& state, unsigned size);
void BM_slab_batch(benchmark::State& state, unsigned size);
void BM_slab_remote_free(benchmark::State& state);
void BM_slab_colour(benchmark::State& state, bool colour, unsigned nr_slabs);
// peers_malloc.cc; `peer` indexes kMallocPeerNames.
void BM_peer_malloc_pair(benchmark::State& state, int peer, unsigned size);
void BM_peer_batch(benchmark::State& state, int peer, unsigned size);
void BM_peer_remote_free(benchmark::State& state, int peer);
// vmalloc.cc
void BM_vmalloc_vfree(benchmark::State& state, uint64_t size);
void BM_kmap_pair(benchmark::State& state);
void BM_kmap_atomic_pair(benchmark::State& state);
// vm_fault.cc, vm_fork.cc and their host peers (peers_vm.cc).
void BM_vm_fault_anon_zero(benchmark::State& state, uint64_t window_pages);
void BM_vm_clear_page_cold(benchmark::State& state);
void BM_vm_fault_cow(benchmark::State& state);
void BM_vm_fork_1GiB(benchmark::State& state);
void BM_vm_munmap_1GiB(benchmark::State& state);
void BM_peer_host_fault_anon(benchmark::State& state, uint64_t window_pages);
void BM_peer_host_fork_1GiB(benchmark::State& state);
void BM_peer_host_munmap_1GiB(benchmark::State& state);
void BM_vm_mmap_munmap_many_vmas(benchmark::State& state, int nr_vmas);  // vm_mmap.cc
void BM_peer_host_mmap_munmap_many_vmas(benchmark::State& state, int nr_vmas);
void BM_vm_translate_tlb_hit(benchmark::State& state);  // vm_translate.cc
void BM_vm_translate_walk(benchmark::State& state, unsigned levels);
// swap_io.cc: each mmkit side next to its raw peer on the same kind of file.
void BM_swap_raw_pwrite(benchmark::State& state);
void BM_swap_out(benchmark::State& state);
void BM_swap_raw_pread(benchmark::State& state);
void BM_swap_in(benchmark::State& state, bool readahead);
// zswap.cc: zswap's store and load next to its compressors' raw rates.
void BM_zswap_raw_compress(benchmark::State& state, mmkit::ZswapCompressor c, bool random);
void BM_zswap_store(benchmark::State& state, mmkit::ZswapCompressor c, bool random);
void BM_zswap_raw_decompress(benchmark::State& state, mmkit::ZswapCompressor c);
void BM_zswap_load(benchmark::State& state, mmkit::ZswapCompressor c);
// filemap_read.cc: each mmkit read next to raw pread of the same host file.
void BM_filemap_raw_pread(benchmark::State& state, uint64_t size);
void BM_filemap_pread_cached(benchmark::State& state, uint64_t size);
void BM_filemap_raw_pread_seq(benchmark::State& state);
void BM_filemap_read_cold_seq(benchmark::State& state);
void BM_filemap_raw_preadv_frames(benchmark::State& state);
void BM_filemap_raw_pread_random(benchmark::State& state);
void BM_filemap_pread_cold_random(benchmark::State& state);

namespace {

constexpr const char* kReexecMarker = "MMKIT_BENCH_REEXECED";
constexpr const char* kStaticTlsTunable = "glibc.rtld.optional_static_tls=65536";
constexpr const char* kMallocPeerNames[] = {"glibc", "jemalloc", "tcmalloc", "mimalloc"};

void ensure_jemalloc_loadable(char** argv) {
  if (std::getenv("MMKIT_BENCH_NO_REEXEC") != nullptr || std::getenv(kReexecMarker) != nullptr)
    return;
  if (dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) != nullptr) return;
  const char* why = dlerror();
  if (why == nullptr || std::strstr(why, "static TLS") == nullptr) return;  // absent: skipped later
  std::string tunables = kStaticTlsTunable;
  if (const char* old = std::getenv("GLIBC_TUNABLES"); old != nullptr && *old != '\0')
    tunables = std::string(old) + ":" + tunables;
  setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  setenv(kReexecMarker, "1", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "mmkit_bench: re-exec for jemalloc's static TLS failed: %s\n",
               std::strerror(errno));
}

// The slab benchmarks, each size's mmkit runs next to that size's peers.
void register_slab() {
  using benchmark::RegisterBenchmark;
  auto peer_name = [](int peer, const std::string& what) {
    return "peer/" + std::string(kMallocPeerNames[peer]) + "/" + what;
  };
  for (unsigned size : {8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192}) {
    const std::string sz = std::to_string(size);
    if (size == 16 || size == 64 || size == 256 || size == 1024)
      RegisterBenchmark(("slab/cache_pair/" + sz).c_str(), BM_slab_cache_pair, size);
    RegisterBenchmark(("slab/kmalloc_pair/" + sz).c_str(), BM_slab_kmalloc_pair, size);
    for (int peer = 0; peer < 4; ++peer)
      RegisterBenchmark(peer_name(peer, "malloc_pair/" + sz).c_str(), BM_peer_malloc_pair, peer,
                        size);
  }
  for (unsigned size : {16, 64, 256, 1024}) {
    const std::string sz = std::to_string(size);
    RegisterBenchmark(("slab/batch/" + sz).c_str(), BM_slab_batch, size);
    for (int peer = 0; peer < 4; ++peer)
      RegisterBenchmark(peer_name(peer, "batch/" + sz).c_str(), BM_peer_batch, peer, size);
  }
  RegisterBenchmark("slab/remote_free", BM_slab_remote_free)->UseRealTime();
  for (int peer = 0; peer < 4; ++peer)
    RegisterBenchmark(peer_name(peer, "remote_free").c_str(), BM_peer_remote_free, peer)
        ->UseRealTime();
  RegisterBenchmark("slab/colour/off", BM_slab_colour, false, 64u);
  RegisterBenchmark("slab/colour/on", BM_slab_colour, true, 64u);
  RegisterBenchmark("slab/colour/off/512", BM_slab_colour, false, 512u);
  RegisterBenchmark("slab/colour/on/512", BM_slab_colour, true, 512u);
}

void register_all() {
  using benchmark::kMillisecond;
  using benchmark::RegisterBenchmark;

  RegisterBenchmark("page_alloc/order0_pcp", BM_order0_pcp, uint64_t{4});
  RegisterBenchmark("peer/glibc_aligned_4k", BM_peer_aligned_4k, 0);
  RegisterBenchmark("peer/jemalloc_aligned_4k", BM_peer_aligned_4k, 1);
  RegisterBenchmark("peer/tcmalloc_aligned_4k", BM_peer_aligned_4k, 2);
  RegisterBenchmark("peer/mimalloc_aligned_4k", BM_peer_aligned_4k, 3);
  RegisterBenchmark("peer/mmap_4k", BM_peer_mmap_4k);
  RegisterBenchmark("page_alloc/order0_pcp/repeat", BM_order0_pcp, uint64_t{4});

  RegisterBenchmark("page_alloc/order0_nopcp", BM_order0_nopcp);
  RegisterBenchmark("page_alloc/order0_nopcp_nomerge", BM_order0_nopcp_nomerge);
  RegisterBenchmark("page_alloc/zone_lock_pair", BM_zone_lock_pair);
  for (unsigned order = 1; order <= 10; ++order)
    RegisterBenchmark(("page_alloc/order" + std::to_string(order)).c_str(), BM_orderN, order);
  RegisterBenchmark("page_alloc/two_cpu_remote_free", BM_two_cpu_remote_free)->UseRealTime();

  RegisterBenchmark("page_alloc/order0_pcp_1GiB", BM_order0_pcp, uint64_t{1});
  RegisterBenchmark("page_alloc/order0_pcp_64GiB", BM_order0_pcp, uint64_t{64});

  register_slab();

  RegisterBenchmark("vmalloc/vmalloc_vfree/4KiB", BM_vmalloc_vfree, uint64_t{4} << 10);
  RegisterBenchmark("vmalloc/vmalloc_vfree/64KiB", BM_vmalloc_vfree, uint64_t{64} << 10);
  RegisterBenchmark("vmalloc/vmalloc_vfree/1MiB", BM_vmalloc_vfree, uint64_t{1} << 20);
  RegisterBenchmark("vmalloc/kmap_pair", BM_kmap_pair);
  RegisterBenchmark("vmalloc/kmap_atomic_pair", BM_kmap_atomic_pair);
  RegisterBenchmark("vm/translate_tlb_hit", BM_vm_translate_tlb_hit);
  RegisterBenchmark("vm/translate_walk_4level", BM_vm_translate_walk, 4u);
  RegisterBenchmark("vm/translate_walk_5level", BM_vm_translate_walk, 5u);

  // Cold frames (64 MiB mapped at a time) and frames recycled hot (1 MiB).
  RegisterBenchmark("vm/fault_anon_zero", BM_vm_fault_anon_zero, uint64_t{16384});
  RegisterBenchmark("peer/host_fault_anon", BM_peer_host_fault_anon, uint64_t{16384});
  RegisterBenchmark("vm/fault_anon_zero_1MiB", BM_vm_fault_anon_zero, uint64_t{256});
  RegisterBenchmark("peer/host_fault_anon_1MiB", BM_peer_host_fault_anon, uint64_t{256});
  RegisterBenchmark("vm/clear_page_cold", BM_vm_clear_page_cold);
  RegisterBenchmark("vm/fault_cow", BM_vm_fault_cow);
  RegisterBenchmark("vm/fork_1GiB", BM_vm_fork_1GiB)->Unit(kMillisecond)->UseRealTime();
  RegisterBenchmark("peer/host_fork_1GiB", BM_peer_host_fork_1GiB)
      ->Unit(kMillisecond)
      ->UseRealTime();
  RegisterBenchmark("vm/munmap_1GiB", BM_vm_munmap_1GiB)->Unit(kMillisecond)->Iterations(10);
  RegisterBenchmark("peer/host_munmap_1GiB", BM_peer_host_munmap_1GiB)
      ->Unit(kMillisecond)
      ->Iterations(10);

  RegisterBenchmark("vm/mmap_munmap_10k_vmas", BM_vm_mmap_munmap_many_vmas, 10000);
  RegisterBenchmark("peer/host_mmap_munmap_10k_vmas", BM_peer_host_mmap_munmap_many_vmas, 10000);

  RegisterBenchmark("swap/raw_pwrite", BM_swap_raw_pwrite);
  RegisterBenchmark("swap/out", BM_swap_out);
  RegisterBenchmark("swap/raw_pread", BM_swap_raw_pread);
  RegisterBenchmark("swap/in", BM_swap_in, false);
  RegisterBenchmark("swap/in_readahead", BM_swap_in, true);

  for (const auto c : {mmkit::ZswapCompressor::kLz4, mmkit::ZswapCompressor::kZstd}) {
    const std::string name(mmkit::zswap_compressor_name(c));
    for (const bool random : {false, true}) {
      const std::string kind = random ? "/random" : "/text";
      RegisterBenchmark(("zswap/raw_compress/" + name + kind).c_str(), BM_zswap_raw_compress, c,
                        random);
      RegisterBenchmark(("zswap/store/" + name + kind).c_str(), BM_zswap_store, c, random);
    }
    RegisterBenchmark(("zswap/raw_decompress/" + name).c_str(), BM_zswap_raw_decompress, c);
    RegisterBenchmark(("zswap/load/" + name).c_str(), BM_zswap_load, c);
  }

  RegisterBenchmark("filemap/raw_pread/4KiB", BM_filemap_raw_pread, uint64_t{4} << 10);
  RegisterBenchmark("filemap/pread_cached/4KiB", BM_filemap_pread_cached, uint64_t{4} << 10);
  RegisterBenchmark("filemap/raw_pread/1MiB", BM_filemap_raw_pread, uint64_t{1} << 20);
  RegisterBenchmark("filemap/pread_cached/1MiB", BM_filemap_pread_cached, uint64_t{1} << 20);
  RegisterBenchmark("filemap/raw_pread_seq", BM_filemap_raw_pread_seq)->Unit(kMillisecond);
  RegisterBenchmark("filemap/read_cold_seq", BM_filemap_read_cold_seq)->Unit(kMillisecond);
  RegisterBenchmark("filemap/raw_preadv_frames", BM_filemap_raw_preadv_frames)->Unit(kMillisecond);
  RegisterBenchmark("filemap/raw_pread_random", BM_filemap_raw_pread_random);
  RegisterBenchmark("filemap/pread_cold_random", BM_filemap_pread_cold_random);

  for (uint64_t gib : {1, 16, 64})
    RegisterBenchmark(("boot/" + std::to_string(gib) + "GiB").c_str(), BM_boot, gib)
        ->Unit(kMillisecond);
}

}  // namespace
}  // namespace mmkit_bench

int main(int argc, char** argv) {
  mmkit_bench::ensure_jemalloc_loadable(argv);
  mmkit_bench::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
