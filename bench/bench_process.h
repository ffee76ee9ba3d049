// A process of its own on CPU 0 of a benchmark machine, for one run of a
// vm benchmark: the CPU binding and the process live as long as the object,
// and the benchmark is skipped with the reason when either cannot be had.
#pragma once

#include <benchmark/benchmark.h>

#include <optional>

#include "vm/process.h"

namespace mmkit_bench {

class BenchProcess {
 public:
  BenchProcess(benchmark::State& state, mmkit::Machine* m) {
    if (!m) {
      state.SkipWithError("no machine");
      return;
    }
    auto cpu = mmkit::CpuScope::bind(*m, 0);
    if (!cpu.ok()) {
      state.SkipWithError("cannot bind CPU 0");
      return;
    }
    cpu_.emplace(std::move(cpu.value()));
    if (mmkit::spawn(*m, "bench", &p_) != 0) {
      p_ = nullptr;
      state.SkipWithError("cannot spawn a process");
    }
  }
  ~BenchProcess() {
    if (p_) mmkit::exit_process(p_);
  }
  BenchProcess(const BenchProcess&) = delete;
  BenchProcess& operator=(const BenchProcess&) = delete;

  bool ok() const { return p_ != nullptr; }
  mmkit::Process* get() const { return p_; }

 private:
  std::optional<mmkit::CpuScope> cpu_;  // destroyed after the process exits
  mmkit::Process* p_ = nullptr;
};

}  // namespace mmkit_bench
