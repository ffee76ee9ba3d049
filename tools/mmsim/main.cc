// mmsim: the command-line front end. Boot a configured machine, print its
// boot log or one /proc view, or run the built-in demo workload.
//
//   mmsim boot  [--config F]
//   mmsim dmesg [--config F]
//   mmsim proc  NAME [--config F] [--json]
//   mmsim demo  [--config F] [--seed N] [--ops N] [--json]
//   mmsim layout [--config F]
//   mmsim overcommit [--config F]
//   mmsim run JOBS.toml [--config F] [--json] [--timeline OUT.csv] [--proc DIR] [--seed N]
//   mmsim replay TRACE [--format lackey|pages] [--config F] [--memory SIZE] [--json] [--proc DIR]
//   mmsim malloc-limit [--config F] [--touch] [--json]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>

#include "demo.h"
#include "layout.h"
#include "machine_loader.h"
#include "malloc_limit.h"
#include "overcommit.h"
#include "procfs/procfs.h"
#include "replay.h"
#include "run.h"

namespace {

// --seed N: a decimal from 0 to 2^64 - 1, nothing else. CLI11 would take
// "-1" and numbers past 2^64 as 2^64 - 1 without a word.
void add_seed_option(CLI::App* cmd, uint64_t* seed, const std::string& help) {
  cmd->add_option_function<std::string>(
         "--seed",
         [seed](const std::string& text) {
           const char* end = text.data() + text.size();
           const auto [p, ec] = std::from_chars(text.data(), end, *seed);
           if (text.empty() || ec != std::errc{} || p != end)
             throw CLI::ValidationError("--seed", "\"" + text +
                                                      "\" is not a whole number from 0 to "
                                                      "18446744073709551615");
         },
         help)
      ->type_name("UINT");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mmsim: boot a simulated Linux memory-management machine and look inside"};
  app.require_subcommand(1);
  std::string config;

  auto* boot = app.add_subcommand("boot", "boot a machine and print its boot log");
  boot->add_option("--config", config, "machine config (TOML)");

  auto* dmesg = app.add_subcommand(
      "dmesg", "boot a machine and print its kernel log as dmesg does (time-stamped)");
  dmesg->add_option("--config", config, "machine config (TOML)");

  std::string view;
  bool json = false;
  auto* proc = app.add_subcommand("proc", "print one /proc view of a freshly booted machine");
  std::string names;
  for (auto n : mmkit::view_names()) names += (names.empty() ? "" : ", ") + std::string(n);
  proc->add_option("name", view, "view: " + names)->required();
  proc->add_option("--config", config, "machine config (TOML)");
  proc->add_flag("--json", json, "all views as JSON instead");

  mmsim::DemoOptions demo_opt;
  auto* demo = app.add_subcommand("demo", "run the built-in two-CPU workload");
  demo->add_option("--config", config, "machine config (TOML); default: 2 CPUs, 2 nodes, 4 GiB");
  add_seed_option(demo, &demo_opt.seed, "random seed");
  demo->add_option("--ops", demo_opt.ops_per_cpu, "operations per CPU")
      ->check(CLI::Range(1u, 10000000u));
  demo->add_flag("--json", demo_opt.json, "JSON output");

  auto* layout = app.add_subcommand("layout", "print the kernel's virtual address layout");
  layout->add_option("--config", config, "machine config (TOML)");
  auto* overcommit = app.add_subcommand(
      "overcommit",
      "largest anonymous mmap under each vm.overcommit_memory mode, and what stops it");
  overcommit->add_option("--config", config, "machine config (TOML)");
  mmsim::MallocLimitOptions malloc_limit_opt;
  auto* malloc_limit = app.add_subcommand(
      "malloc-limit",
      "how much a glibc-like malloc gets under each vm.overcommit_memory mode, and why it stops");
  malloc_limit->add_option("--config", config, "machine config (TOML)");
  malloc_limit->add_flag("--touch", malloc_limit_opt.touch,
                         "write every page obtained (at most 8 GiB of RAM + swap)");
  malloc_limit->add_flag("--json", malloc_limit_opt.json, "JSON output");

  mmsim::RunOptions run_opt;
  auto* run = app.add_subcommand("run", "run the workloads of a job file, verifying every page");
  run->add_option("jobs", run_opt.jobs_path, "job file (TOML, [[job]] tables)")->required();
  run->add_option("--config", run_opt.config, "machine config (TOML)");
  run->add_flag("--json", run_opt.json, "one JSON object instead of text");
  run->add_option("--timeline", run_opt.timeline, "CSV of meminfo and vmstat every ~10 ms");
  run->add_option("--proc", run_opt.proc_dir, "write every /proc view to DIR at the end");
  add_seed_option(run, &run_opt.seed, "random seed (default 1)");

  mmsim::ReplayOptions replay_opt;
  std::string format;
  auto* replay =
      app.add_subcommand("replay", "replay a page-access trace through one process's MMU");
  replay->add_option("trace", replay_opt.trace, "trace file (plain or .gz; - for stdin)")
      ->required();
  replay->add_option("--format", format, "lackey or pages (default: from the first access)")
      ->check(CLI::IsMember({"lackey", "pages"}));
  replay->add_option("--config", replay_opt.config, "machine config (TOML)");
  replay->add_option("--memory", replay_opt.memory, "memory cgroup limit for the process");
  replay->add_flag("--json", replay_opt.json, "one JSON object instead of text");
  replay->add_option("--proc", replay_opt.proc_dir, "write every /proc view to DIR at the end");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : mmsim::kExitBadInput;
  }

  if (*run) return mmsim::run_command(run_opt);
  if (*replay) {
    replay_opt.format = format == "lackey"  ? mmsim::TraceFormat::kLackey
                        : format == "pages" ? mmsim::TraceFormat::kPages
                                            : mmsim::TraceFormat::kAuto;
    return mmsim::replay_command(replay_opt);
  }

  auto m = mmsim::load_machine(config);
  if (!m) return mmsim::kExitBadInput;

  if (*boot) {
    for (const auto& line : m->boot_log()) fmt::print("{}\n", line);
    return 0;
  }
  if (*dmesg) {
    fmt::print("{}", mmkit::render_dmesg(*m));
    return 0;
  }
  if (*layout) {
    fmt::print("{}", mmsim::render_layout(*m));
    return 0;
  }
  if (*proc) {
    if (json) {
      fmt::print("{}\n", mmkit::render_json(*m));
      return 0;
    }
    const auto known = mmkit::view_names();
    if (std::find(known.begin(), known.end(), view) == known.end()) {
      fmt::print(stderr, "mmsim: proc: unknown view \"{}\" (views: {})\n", view, names);
      return mmsim::kExitBadInput;
    }
    fmt::print("{}", mmkit::render_view(*m, view));
    return 0;
  }
  if (*overcommit) return mmsim::run_overcommit(*m);
  if (*malloc_limit) return mmsim::run_malloc_limit(*m, malloc_limit_opt);
  return mmsim::run_demo(*m, demo_opt);
}
