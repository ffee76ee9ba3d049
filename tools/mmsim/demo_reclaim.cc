// `mmsim demo`'s reclaim part: a small machine of its own (64 MiB of RAM,
// a 128 MiB temporary swap file) where one process writes 160 MiB and reads
// every page back. kswapd wakes at the low watermark and reclaims to high,
// the process's own faults reclaim directly when it cannot keep up, pages
// go out to swap and come back on the read pass, and the counters and
// /proc/swaps say so in a few lines.
#include <fmt/format.h>

#include <vector>

#include "demo.h"
#include "memcg/lru.h"
#include "procfs/procfs.h"
#include "reclaim/reclaim.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/process.h"

namespace mmsim {

using namespace mmkit;

std::string reclaim_demo(bool print) {
  MachineConfig c;
  c.cpus = 2;
  c.nodes = {NodeConfig{.memory = 64ull << 20}};
  c.swap = 128ull << 20;
  auto booted = boot_with_reclaim(c);
  if (!booted) return "reclaim machine: " + booted.error().message;
  Machine& m = **booted;
  auto cpu = CpuScope::bind(m, 0);
  if (!cpu) return "cannot bind CPU 0";
  Process* p = nullptr;
  if (spawn(m, "demo-swap", &p) != 0) return "spawn failed";
  constexpr uint64_t kPages = (160ull << 20) / PAGE_SIZE;
  const int64_t a =
      do_mmap(p->mm, 0, kPages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) return "mmap failed";
  uint64_t bad = 0;
  for (uint64_t i = 0; i < kPages; ++i) {
    const uint64_t v = i * 2654435761u + 1;
    if (!access_write(p->mm, static_cast<uint64_t>(a) + i * PAGE_SIZE, &v, sizeof v).ok()) ++bad;
  }
  for (uint64_t i = 0; i < kPages; ++i) {
    uint64_t v = 0;
    if (!access_read(p->mm, static_cast<uint64_t>(a) + i * PAGE_SIZE, &v, sizeof v).ok() ||
        v != i * 2654435761u + 1)
      ++bad;
  }
  if (print) {
    auto ev = [&](VmEvent e) { return m.sum_event(e); };
    fmt::print(
        "\n== reclaim: a process wrote and read back 160 MiB on a 64 MiB machine with 128 MiB "
        "of swap ==\n");
    fmt::print("{:<24} {}\n", "kswapd wakeups", ev(VmEvent::KSWAPD_WAKEUP));
    fmt::print("{:<24} {} scanned, {} stolen\n", "kswapd", ev(VmEvent::PGSCAN_KSWAPD),
               ev(VmEvent::PGSTEAL_KSWAPD));
    fmt::print("{:<24} {} scanned, {} stolen\n", "direct reclaim", ev(VmEvent::PGSCAN_DIRECT),
               ev(VmEvent::PGSTEAL_DIRECT));
    fmt::print("{:<24} {} out, {} in ({} major faults)\n", "swap pages", ev(VmEvent::PSWPOUT),
               ev(VmEvent::PSWPIN), ev(VmEvent::PGMAJFAULT));
    fmt::print("{:<24} {}\n", "OOM kills", ev(VmEvent::OOM_KILL));
    fmt::print("{:<24} {}\n", "pages wrong on read", bad);
    fmt::print("{}", render_swaps(m));
  }
  exit_process(p);
  lru_add_drain_all(m);
  if (bad) return fmt::format("{} pages read back wrong after swap", bad);
  if (std::string err = lru_check(m); !err.empty()) return err;
  if (std::string err = swap_check(m); !err.empty()) return err;
  return "";
}

}  // namespace mmsim
