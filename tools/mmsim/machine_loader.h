// Loading the machine mmsim runs: from --config or the default demo machine.
// A bad config prints one line "FILE:LINE: field: what is wrong" to stderr
// and gives exit status 2.
#pragma once

#include <memory>
#include <string>

#include "phys/machine.h"

namespace mmsim {

inline constexpr int kExitBadInput = 2;

// Boots the machine; on failure prints the error and returns null.
std::unique_ptr<mmkit::Machine> load_machine(const std::string& config_path);

}  // namespace mmsim
