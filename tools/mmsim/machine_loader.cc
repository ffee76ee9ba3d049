// mmsim's machine loading: parse and validate the TOML config, then boot
// with reclaim (boot_with_reclaim: the swap areas, the page allocator's
// reclaim ops and kswapd, once the core provides them), as every subcommand
// wants the machine a workload would meet.
#include "machine_loader.h"

#include <cstdio>
#include <string>

#include "phys/config_toml.h"
#include "reclaim/reclaim.h"

namespace mmsim {

std::unique_ptr<mmkit::Machine> load_machine(const std::string& config_path) {
  mmkit::MachineConfig cfg = mmkit::default_demo_config();
  if (!config_path.empty()) {
    auto parsed = mmkit::load_machine_config(config_path);
    if (!parsed) {
      std::fprintf(stderr, "%s\n", parsed.error().message.c_str());
      return nullptr;
    }
    cfg = std::move(parsed.value());
  }
  auto m = mmkit::boot_with_reclaim(cfg);
  if (!m) {
    const std::string where = config_path.empty() ? "default machine"
                              : m.error().line ? config_path + ":" + std::to_string(m.error().line)
                                               : config_path;
    std::fprintf(stderr, "%s: %s\n", where.c_str(), m.error().message.c_str());
    return nullptr;
  }
  return std::move(m.value());
}

}  // namespace mmsim
