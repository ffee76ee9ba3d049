// Reading a MachineConfig from a TOML file (the `--machine FILE` of mmsim).
//
// The parser checks syntax, types and key names itself and leaves every rule
// about values to validate(); either way the caller gets exactly one line,
// "FILE:LINE: field: what is wrong", pointing at the offending key so that a
// user can fix a machine description without reading the source.
//
// The schema (keys are Linux's names; every key but node.memory is optional):
//
//   arch = "x86_64"                          # or "i386"
//   cpus = 2
//   min_free_kbytes = 8192                   # unset: computed as Linux does
//   watermark_scale_factor = 10
//   lowmem_reserve_ratio = [256, 256, 32, 0] # one per zone index
//   percpu_pagelist_high_fraction = 0
//   movablecore = "512MiB"
//   [[node]]                                 # one table per NUMA node
//   memory = "2GiB"
//   cpus = 1                                 # on every node or on none
//   distance = [10, 20]                      # SLIT row
//   holes = [{ start = "1GiB", size = "64MiB" }]
//   reserved = [{ start = "0", size = "1MiB" }]
//   overcommit_memory = 0                    # vm.overcommit_memory: 0, 1 or 2
//   overcommit_ratio = 50                    # or overcommit_kbytes, not both
//   user_reserve_kbytes = 131072             # unset: computed as Linux does
//   admin_reserve_kbytes = 8192
//   swap = "1GiB"                            # swap size for CommitLimit/SwapTotal
//   rlimit_as = "unlimited"                  # every process's RLIMIT_AS: a size or "unlimited"
//   rlimit_data = "unlimited"                # RLIMIT_DATA, likewise
//   max_map_count = 65530                    # vm.max_map_count, at least 1
//   fault_around_bytes = "64KiB"             # a power of two, 4KiB (off) .. a page table's span
//   [zswap]                                  # the compressed cache in front of swap
//   enabled = true                           # default false
//   compressor = "lz4"                       # or "zstd"
//   max_pool_percent = 20                    # 0..100, of RAM
//   accept_threshold_percent = 90            # 0..100, of the pool's maximum
//   [fail_page_alloc]
//   probability = 10                         # also interval, times, space,
//   min_order = 1                            # ignore_gfp_wait, ignore_gfp_highmem, seed
//
// Sizes are integers (bytes) or strings with an optional B, K/KiB, M/MiB,
// G/GiB or T/TiB suffix (1024-based, any case). Non-ASCII text is accepted
// only in comments and one-line strings (see screen() in config_toml.cc).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "phys/config.h"

namespace mmkit {

// Parses `text` (the contents of `file_name`, used only in messages) and
// validates the result. Never throws.
Result<MachineConfig> parse_machine_config(std::string_view text, std::string_view file_name);

// Reads `path` and parses it; an unreadable file gives "PATH: cannot read: <strerror>".
Result<MachineConfig> load_machine_config(const std::string& path);

}  // namespace mmkit
