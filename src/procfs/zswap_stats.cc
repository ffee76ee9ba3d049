// zswap's statistics as Linux's debugfs directory shows them
// (/sys/kernel/debug/zswap, mm/zswap.c zswap_debugfs_init): one file per
// statistic, listed here as "name value" lines in the directory's
// alphabetical order, the way `grep -r . /sys/kernel/debug/zswap` reads.
#include <fmt/format.h>

#include "procfs/procfs.h"
#include "swap/zswap.h"

namespace mmkit {

std::string render_zswap(const Machine& m) {
  std::string out;
  for (const auto& [name, value] : zswap_stat_fields(m)) out += fmt::format("{} {}\n", name, value);
  return out;
}

}  // namespace mmkit
