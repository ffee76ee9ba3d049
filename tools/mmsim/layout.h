// `mmsim layout`: the booted machine's kernel virtual address layout, as a
// table of ranges with their sizes (see vmalloc/layout.h for the formulas).
#pragma once

#include <string>

#include "phys/machine.h"

namespace mmsim {

std::string render_layout(const mmkit::Machine& m);

}  // namespace mmsim
