// libFuzzer target for the page allocator: bytes become a sequence of
// alloc_pages / free_pages / drain / bind-unbind / sysctl operations.
//
// Each input boots one small machine, picked by the first byte: x86_64 one
// node of 32 MiB, i386 32 MiB (pageblock order 10), or x86_64 two nodes of
// 16 MiB (node 0 all DMA, node 1 all DMA32); all with 2 CPUs. After every
// operation check() must return "", a returned block must be order-aligned,
// in a zone its GFP flags allow, on the requested node for __GFP_THISNODE,
// and overlap no live block; no "Bad page" report may appear. At the end
// everything is freed and drained and the free page count must equal the
// boot value. Any violation prints the reason and aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"

namespace {

using namespace mmkit;

constexpr uint64_t kMiB = 1ull << 20;
constexpr size_t kMaxOps = 256;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_page_ops: %s\n", why.c_str());
  std::abort();
}

MachineConfig config_for(uint8_t b) {
  MachineConfig c;
  c.cpus = 2;
  NodeConfig n;
  switch (b % 3) {
    case 0:
      n.memory = 32 * kMiB;
      c.nodes.push_back(n);
      break;
    case 1:
      c.arch = Arch::i386;
      n.memory = 32 * kMiB;
      c.nodes.push_back(n);
      break;
    default:
      n.memory = 16 * kMiB;
      c.nodes.push_back(n);
      c.nodes.push_back(n);
      break;
  }
  return c;
}

// The highest zone index the zone modifiers allow (GFP_ZONE_TABLE folded
// to the arch), or -1 for the combinations Linux marks GFP_ZONE_BAD.
int allowed_zone_idx(Arch a, gfp_t gfp) {
  switch (gfp & GFP_ZONEMASK) {
    case 0:
    case __GFP_MOVABLE:
      return a == Arch::x86_64 ? 2 : 1;
    case __GFP_DMA:
    case __GFP_DMA | __GFP_MOVABLE:
      return 0;
    case __GFP_DMA32:
    case __GFP_DMA32 | __GFP_MOVABLE:
      return 1;
    case __GFP_HIGHMEM:
      return 2;
    case __GFP_HIGHMEM | __GFP_MOVABLE:
      return 3;
    default:
      return -1;
  }
}

struct Block {
  Page* page;
  uint64_t pfn;
  unsigned order;
  gfp_t gfp;
};

class Input {
 public:
  Input(const uint8_t* data, size_t size) : d_(data), n_(size) {}
  bool more() const { return i_ < n_; }
  uint8_t next() { return i_ < n_ ? d_[i_++] : 0; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

constexpr gfp_t kBases[] = {GFP_KERNEL,
                            GFP_ATOMIC,
                            GFP_HIGHUSER_MOVABLE,
                            GFP_KERNEL | GFP_DMA,
                            GFP_KERNEL | GFP_DMA32,
                            GFP_KERNEL | __GFP_RECLAIMABLE,
                            GFP_NOWAIT,
                            GFP_HIGHUSER,
                            GFP_ATOMIC | GFP_DMA,
                            GFP_NOIO | __GFP_NORETRY,
                            GFP_KERNEL | __GFP_RETRY_MAYFAIL,
                            __GFP_DIRECT_RECLAIM};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Input in(data, size);
  auto booted = boot(config_for(in.next()));
  if (!booted.ok()) fail("boot failed: " + booted.error().message);
  Machine& m = **booted;
  std::vector<std::string> bad;
  set_warn_sink(m, [&](const std::string& s) {
    if (s.find("Bad page") != std::string::npos) bad.push_back(s);
  });
  const uint64_t boot_free = nr_free_pages(m);
  std::vector<bool> owned(m.max_pfn(), false);
  std::vector<Block> live;
  std::optional<CpuScope> scope;

  for (size_t op = 0; op < kMaxOps && in.more(); ++op) {
    const uint8_t kind = in.next() % 10;
    std::string what;
    if (kind <= 3) {
      const uint8_t ob = in.next();
      const unsigned order = ob & 0x80 ? ob % 4 : ob % 12;  // 11 is invalid
      const uint8_t gb = in.next();
      const uint8_t fb = in.next();
      gfp_t gfp = kBases[gb % std::size(kBases)];
      if (gb & 0x80) gfp = (gfp & ~GFP_ZONEMASK) | (fb & GFP_ZONEMASK);  // any modifiers
      if (fb & 0x10) gfp |= __GFP_ZERO;
      if (fb & 0x20) gfp |= __GFP_COMP;
      if (fb & 0x40) gfp |= __GFP_NOWARN;
      if (fb & 0x80) gfp |= __GFP_COLD;
      int nid = NUMA_NO_NODE;
      const uint8_t nb = in.next();
      if (nb & 1) nid = static_cast<int>((nb >> 1) % m.nr_nodes());
      if ((nb & 3) == 3) gfp |= __GFP_THISNODE;
      what = "alloc order " + std::to_string(order) + " " + format_gfp(gfp);
      Page* p = alloc_pages(m, gfp, order, nid);
      const int allowed = allowed_zone_idx(m.arch(), gfp);
      if (p) {
        if (order > MAX_PAGE_ORDER || allowed < 0) fail(what + ": an invalid request succeeded");
        const uint64_t pfn = m.page_to_pfn(p);
        const uint64_t count = uint64_t{1} << order;
        if (pfn & (count - 1)) fail(what + ": block not aligned");
        if (pfn + count > m.max_pfn()) fail(what + ": block past the end of RAM");
        const Zone* z = m.pfn_zone(pfn);
        if (!z || m.pfn_zone(pfn + count - 1) != z) fail(what + ": block outside one zone");
        if (static_cast<int>(z->idx) > allowed) fail(what + ": got zone " + std::string(z->name));
        if ((gfp & __GFP_THISNODE) && nid != NUMA_NO_NODE && z->node != nid)
          fail(what + ": __GFP_THISNODE request left its node");
        for (uint64_t i = 0; i < count; ++i) {
          if (owned[pfn + i]) fail(what + ": pfn " + std::to_string(pfn + i) + " handed out twice");
          owned[pfn + i] = true;
        }
        // Allocated pages get their first and last byte dirtied (below), so
        // those are the bytes a __GFP_ZERO block must have cleared.
        for (uint64_t i = 0; (gfp & __GFP_ZERO) && i < count; ++i)
          if (m.phys_window(pfn + i)[0] || m.phys_window(pfn + i)[PAGE_SIZE - 1])
            fail(what + ": __GFP_ZERO block not zeroed");
        for (uint64_t i = 0; i < count; ++i) {
          m.phys_window(pfn + i)[0] = 0x5a;
          m.phys_window(pfn + i)[PAGE_SIZE - 1] = 0x5a;
        }
        live.push_back({p, pfn, order, gfp});
      }
    } else if (kind <= 5) {
      if (live.empty()) continue;
      const size_t k = in.next() % live.size();
      const Block b = live[k];
      live[k] = live.back();
      live.pop_back();
      for (uint64_t i = 0; i < (uint64_t{1} << b.order); ++i) owned[b.pfn + i] = false;
      what = "free order " + std::to_string(b.order);
      if ((b.gfp & __GFP_COMP) && b.order > 0 && (k & 1))
        put_page(m, b.page + ((uint64_t{1} << b.order) - 1));
      else
        free_pages(m, b.page, b.order);
    } else if (kind == 6) {
      drain_local_pages(m);
      what = "drain_local_pages";
    } else if (kind == 7) {
      drain_all_pages(m);
      what = "drain_all_pages";
    } else if (kind == 8) {
      const unsigned cpu = in.next() % (m.nr_cpus() + 1);
      scope.reset();
      if (cpu < m.nr_cpus()) {
        auto s = CpuScope::bind(m, static_cast<int>(cpu));
        if (!s.ok()) fail("bind: " + s.error().message);
        scope.emplace(std::move(s.value()));
      }
      what = "bind " + std::to_string(cpu);
    } else {
      // Sysctls: min_free_kbytes 1..8192, watermark_scale_factor 1..3000,
      // percpu_pagelist_high_fraction 0 or 8..
      const uint8_t a = in.next(), b = in.next();
      m.user_min_free_kbytes = m.min_free_kbytes = 1 + (a * 32u) % 8192;
      m.watermark_scale_factor = 1 + (b * 12u) % 3000;
      m.percpu_pagelist_high_fraction = b & 1 ? 8 + (a % 64) : 0;
      setup_per_zone_wmarks(m);
      setup_per_zone_lowmem_reserve(m);
      what = "sysctl";
    }
    if (!bad.empty()) fail("after " + what + ": " + bad.front());
    if (std::string err = check(m); !err.empty()) fail("after " + what + ": " + err);
  }

  scope.reset();
  for (const Block& b : live) free_pages(m, b.page, b.order);
  if (drain_all_pages(m) != m.nr_cpus()) fail("could not drain every CPU");
  if (std::string err = check(m); !err.empty()) fail("after freeing everything: " + err);
  if (!bad.empty()) fail(bad.front());
  if (nr_free_pages(m) != boot_free)
    fail("free pages " + std::to_string(nr_free_pages(m)) + " != boot " +
         std::to_string(boot_free));
  return 0;
}
