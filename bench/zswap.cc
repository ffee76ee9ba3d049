// zswap's store and load rates against its compressors' raw rates, in the
// same run. The target (bench/ratios.py) is zswap's rate at least 0.8 of the
// raw one, for lz4 and for zstd, on compressible and incompressible pages.
//
//   zswap/raw_compress/C/K    C's compression of one page (LZ4_compress_default,
//                             or ZSTD_compressCCtx at level 3) into a
//                             two-page buffer, as zswap calls it
//   zswap/store/C/K           zswap_store() of one page in the swap cache
//                             (locked, its slot in private_): the limit
//                             check, the same-filled test, compression,
//                             the entry from the zswap_entry slab cache,
//                             the pool object, the copy, the tree and LRU;
//                             an incompressible page is compressed and
//                             refused as poor (the store's whole cost then)
//   zswap/raw_decompress/C    C's decompression of one page of compressible
//                             data
//   zswap/load/C              zswap_load() of one slot into a locked page:
//                             the tree, decompression, the entry's free
//                             (the exclusive load), PG_dirty, the event
//
// K is "text" (pages of words from a small vocabulary: lz4 ~2.5:1, zstd
// ~4:1) or "random" (incompressible). Each iteration is one page; a pass
// covers 4096 pages, the same pages in the same order on both sides. Between
// passes, with the timer stopped, a store pass's entries are loaded back
// (freeing them) and a load pass's pages stored again; the raw sides do the
// same untimed work between their passes (decompress everything after a
// compression pass, compress everything after a decompression pass), so
// each pair meets the same cache state. Counters:
// "ratio" is the pages stored per page of pool (stored_pages * PAGE_SIZE /
// pool_total_size, what Linux users compute from debugfs), "raw_ratio"
// PAGE_SIZE over the mean compressed length.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "swap/zswap.h"

namespace mmkit_bench {
namespace {

using namespace mmkit;

constexpr uint64_t kPages = 4096;

enum class Kind { kText, kRandom };

void fill(char* w, uint64_t i, Kind kind) {
  std::mt19937_64 rng(i * 0x9e3779b97f4a7c15ull + 1);
  if (kind == Kind::kRandom) {
    for (size_t off = 0; off < PAGE_SIZE; off += 8) {
      const uint64_t v = rng();
      std::memcpy(w + off, &v, 8);
    }
    return;
  }
  static const char* const kWords[] = {
      "the ",   "page ",  "of ",    "memory ", "swap ",    "zone ",  "free ",   "list ",
      "node ",  "to ",    "a ",     "is ",     "reclaim ", "lru ",   "kswapd ", "slab ",
      "cache ", "order ", "buddy ", "and ",    "in ",      "for ",   "anon ",   "file ",
      "dirty ", "write ", "back ",  "fault ",  "table ",   "entry ", "count ",  "high ",
      "low ",   "min ",   "mark ",  "with ",   "when ",    "that ",  "it ",     "on "};
  size_t off = 0;
  while (off < PAGE_SIZE) {
    const char* word = kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
    const size_t n = std::min(std::strlen(word), PAGE_SIZE - off);
    std::memcpy(w + off, word, n);
    off += n;
  }
}

// One machine per (compressor, kind): 256 MiB, zswap on with a pool that
// never fills, one 64 MiB swap area; kPages frames filled with the kind's
// data, each in the swap cache with a slot of its own (add_to_swap), kept
// locked as reclaim holds a page it writes; one spare frame loads land in.
struct Shared {
  std::unique_ptr<Machine> m;
  std::vector<Page*> frames;
  Page* scratch = nullptr;
  char* window(uint64_t i) const { return m->phys_window(m->page_to_pfn(frames[i])); }
  ~Shared() {
    if (!m) return;
    for (Page* p : frames) {
      delete_from_swap_cache(*m, p);
      p->clear_atomic(PG_locked);
      put_page(*m, p);
    }
    if (scratch) put_page(*m, scratch);
  }
};

const char* make_shared(Shared& s, ZswapCompressor c, Kind kind) {
  MachineConfig cfg;
  cfg.cpus = 2;
  cfg.nodes = {NodeConfig{.memory = 256ull << 20}};
  cfg.swap = 64ull << 20;
  cfg.zswap.enabled = true;
  cfg.zswap.compressor = std::string(zswap_compressor_name(c));
  cfg.zswap.max_pool_percent = 50;
  auto r = boot_with_reclaim(cfg);
  if (!r.ok()) return "cannot boot the machine";
  s.m = std::move(r.value());
  Machine& m = *s.m;
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu.ok()) return "cannot bind CPU 0";
  for (uint64_t i = 0; i < kPages; ++i) {
    Page* p = alloc_page(m, GFP_HIGHUSER_MOVABLE);
    if (!p) return "no frames";
    s.frames.push_back(p);
    fill(s.window(i), i, kind);
    p->set_atomic(PG_locked);
    if (!add_to_swap(m, p, 0)) return "no swap slot";
  }
  s.scratch = alloc_page(m, GFP_HIGHUSER_MOVABLE);
  if (!s.scratch) return "no frames";
  return nullptr;
}

Shared* shared(benchmark::State& state, ZswapCompressor c, Kind kind) {
  static std::mutex mu;
  static std::unique_ptr<Shared> s[2][2];
  static const char* error[2][2] = {};
  const int ci = c == ZswapCompressor::kZstd, ki = kind == Kind::kRandom;
  std::lock_guard<std::mutex> g(mu);
  if (!s[ci][ki] && !error[ci][ki]) {
    s[ci][ki] = std::make_unique<Shared>();
    error[ci][ki] = make_shared(*s[ci][ki], c, kind);
  }
  if (error[ci][ki]) {
    state.SkipWithError(error[ci][ki]);
    return nullptr;
  }
  return s[ci][ki].get();
}

SwpEntry slot_of(const Shared& s, uint64_t i) {
  return SwpEntry{s.frames[i]->private_once()};
}

// Loads every stored page back (freeing the entries); false if one fails.
bool load_all(Shared& s) {
  for (uint64_t i = 0; i < kPages; ++i)
    if (zswap_load(*s.m, slot_of(s, i), s.scratch) < 0) return false;
  return true;
}

void set_ratio_counters(benchmark::State& state, const ZswapStats& st, uint64_t bytes, uint64_t n) {
  if (st.pool_total_size)
    state.counters["ratio"] =
        static_cast<double>(st.stored_pages * PAGE_SIZE) / static_cast<double>(st.pool_total_size);
  if (bytes)
    state.counters["raw_ratio"] = static_cast<double>(n * PAGE_SIZE) / static_cast<double>(bytes);
}

}  // namespace

void BM_zswap_raw_compress(benchmark::State& state, ZswapCompressor c, bool random) {
  Shared* s = shared(state, c, random ? Kind::kRandom : Kind::kText);
  if (!s) return;
  std::vector<char> buf(2 * PAGE_SIZE);
  uint64_t bytes = 0;
  for (uint64_t i = 0; i < kPages; ++i)  // warm: the frames and the contexts
    bytes += zswap_compress(c, s->window(i), buf.data(), buf.size());
  set_ratio_counters(state, {}, bytes, kPages);
  // Between passes, untimed, what the store benchmark does between its
  // passes (a decompression of every page), so both meet the same caches.
  std::vector<std::vector<char>> packed(kPages);
  std::vector<char> out(PAGE_SIZE);
  for (uint64_t k = 0; k < kPages; ++k) {
    const size_t n = zswap_compress(c, s->window(k), buf.data(), buf.size());
    packed[k].assign(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
  }
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kPages) {
      state.PauseTiming();
      for (uint64_t k = 0; k < kPages; ++k)
        if (packed[k].size() < PAGE_SIZE)
          zswap_decompress(c, packed[k].data(), packed[k].size(), out.data());
      i = 0;
      state.ResumeTiming();
    }
    const size_t n = zswap_compress(c, s->window(i), buf.data(), buf.size());
    benchmark::DoNotOptimize(n);
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
}

void BM_zswap_store(benchmark::State& state, ZswapCompressor c, bool random) {
  Shared* s = shared(state, c, random ? Kind::kRandom : Kind::kText);
  if (!s) return;
  Machine& m = *s->m;
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu.ok()) return state.SkipWithError("cannot bind CPU 0");
  for (uint64_t i = 0; i < kPages; ++i) zswap_store(m, s->frames[i]);  // warm pass
  set_ratio_counters(state, zswap_stats(m), 0, 0);
  if (!load_all(*s)) return state.SkipWithError("load failed");
  uint64_t i = 0, stored = 0;
  for (auto _ : state) {
    if (i == kPages) {
      state.PauseTiming();
      if (!load_all(*s)) state.SkipWithError("load failed");
      i = 0;
      state.ResumeTiming();
    }
    stored += zswap_store(m, s->frames[i]);
    ++i;
  }
  if (!load_all(*s)) state.SkipWithError("load failed");
  if (const std::string err = zswap_check(m); !err.empty())
    state.SkipWithError(("zswap_check: " + err).c_str());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
  state.counters["stored"] =
      benchmark::Counter(static_cast<double>(stored) / static_cast<double>(state.iterations()));
}

void BM_zswap_raw_decompress(benchmark::State& state, ZswapCompressor c) {
  Shared* s = shared(state, c, Kind::kText);
  if (!s) return;
  std::vector<std::vector<char>> packed(kPages);
  std::vector<char> buf(2 * PAGE_SIZE), out(PAGE_SIZE);
  for (uint64_t i = 0; i < kPages; ++i) {
    const size_t n = zswap_compress(c, s->window(i), buf.data(), buf.size());
    packed[i].assign(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
    if (!zswap_decompress(c, packed[i].data(), n, out.data()))
      return state.SkipWithError("decompression failed");
  }
  // Between passes, untimed, what the load benchmark does between its
  // passes (a compression of every page, into fresh buffers as the pool's
  // objects are fresh), so both meet the same caches.
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kPages) {
      state.PauseTiming();
      for (uint64_t k = 0; k < kPages; ++k) {
        const size_t n = zswap_compress(c, s->window(k), buf.data(), buf.size());
        packed[k].assign(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
      }
      i = 0;
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(zswap_decompress(c, packed[i].data(), packed[i].size(), out.data()));
    ++i;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
}

void BM_zswap_load(benchmark::State& state, ZswapCompressor c) {
  Shared* s = shared(state, c, Kind::kText);
  if (!s) return;
  Machine& m = *s->m;
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu.ok()) return state.SkipWithError("cannot bind CPU 0");
  auto store_all = [&] {
    for (uint64_t i = 0; i < kPages; ++i)
      if (!zswap_store(m, s->frames[i])) return false;
    return true;
  };
  if (!store_all() || !load_all(*s)) return state.SkipWithError("warm pass failed");
  if (!store_all()) return state.SkipWithError("store failed");
  set_ratio_counters(state, zswap_stats(m), 0, 0);
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == kPages) {
      state.PauseTiming();
      if (!store_all()) state.SkipWithError("store failed");
      i = 0;
      state.ResumeTiming();
    }
    if (zswap_load(m, slot_of(*s, i), s->scratch) != 1) {
      state.SkipWithError("load failed");
      break;
    }
    ++i;
  }
  if (!load_all(*s)) state.SkipWithError("load failed");
  s->scratch->clear_atomic(PG_dirty);
  if (const std::string err = zswap_check(m); !err.empty())
    state.SkipWithError(("zswap_check: " + err).c_str());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * PAGE_SIZE));
}

}  // namespace mmkit_bench
