// `mmsim run`'s set-up of a job: its memory cgroup, its processes and
// their regions (or files, run_file.h), and under fork the parent's first
// pass and the forks (see run_worker.h). Runs on the main thread, bound to
// a CPU, before any worker starts. On a failure the processes made so far
// stay in the job, for the caller to exit.
#include <fmt/format.h>

#include <system_error>

#include "page_access.h"
#include "run_file.h"
#include "run_worker.h"

namespace mmsim {
namespace {

std::string errno_text(int64_t err) {
  return std::generic_category().message(static_cast<int>(-err));
}

// A process of the job: in the cgroup, with oom_score_adj, as the job says.
void adopt(JobRun& job, mmkit::Process* p) {
  p->oom_score_adj = job.spec->oom_score_adj;
  if (job.memcg) p->mm->memcg = p->files.memcg = job.memcg;
}

// Writes version 1 of every page of the fork parent's region; false when
// the parent is killed (or out of memory) on the way.
bool populate(RunShared& sh, JobRun& job, ProcSlot& slot) {
  for (uint64_t page = 0; page < job.pages; ++page) {
    const uint64_t key = version_key(sh, job, slot, page, 1);
    const PageAccess a = write_page(slot.proc->mm, slot.base + page * kPageBytes, key);
    if (!a.fault.ok()) {
      if (a.fault.status == mmkit::FaultStatus::kSigsegv) slot.error = describe_fault(a.fault);
      return false;
    }
    slot.versions[page] = 1;
  }
  return true;
}

}  // namespace

std::string setup_job(RunShared& sh, JobRun& job) {
  const JobSpec& spec = *job.spec;
  const std::string who = fmt::format("job[{}] \"{}\"", job.job_index, spec.name);
  job.pages = spec.size / kPageBytes;
  job.name_hash = fnv1a64(spec.name);
  if (spec.memory_max || spec.memory_high || spec.memory_swap_max || spec.memory_zswap_max ||
      spec.memory_zswap_writeback) {
    job.memcg = mmkit::mem_cgroup_create(sh.m, spec.name, spec.memory_max.value_or(mmkit::kMemMax));
    if (!job.memcg) return who + ": cannot create its memory cgroup";
    if (spec.memory_high) mmkit::mem_cgroup_set_high(job.memcg, *spec.memory_high);
    if (spec.memory_swap_max) mmkit::mem_cgroup_set_swap_max(job.memcg, *spec.memory_swap_max);
    if (spec.memory_zswap_max) mmkit::mem_cgroup_set_zswap_max(job.memcg, *spec.memory_zswap_max);
    if (spec.memory_zswap_writeback)
      mmkit::mem_cgroup_set_zswap_writeback(job.memcg, *spec.memory_zswap_writeback);
  }
  const std::string comm = spec.name.substr(0, 15);
  for (unsigned i = 0; i < spec.processes; ++i) {
    auto slot = std::make_unique<ProcSlot>();
    slot->index = i;
    mmkit::Process* p = nullptr;
    if (spec.fork && i > 0) {
      ProcSlot& parent = *job.procs[0];
      if (!parent.proc) break;  // killed while populating: nothing to fork
      if (int err = mmkit::fork_process(parent.proc, &p); err)
        return fmt::format("{}: process {}: fork failed: {}", who, i, errno_text(err));
      slot->base = parent.base;
      slot->versions = PageVersions(parent.versions);
    } else {
      if (int err = mmkit::spawn(sh.m, comm, &p); err)
        return fmt::format("{}: process {}: spawn failed: {}", who, i, errno_text(err));
    }
    slot->proc = p;
    slot->pid = p->pid;
    adopt(job, p);
    ProcSlot& placed = *job.procs.emplace_back(std::move(slot));  // exited by the caller
    if (is_file_job(spec)) {
      if (std::string err = setup_file(sh, job, placed); !err.empty())
        return fmt::format("{}: process {}: {}", who, i, err);
      if (!placed.versions.ok())
        return fmt::format("{}: process {}: no host memory for {} page versions", who, i,
                           job.pages);
      continue;
    }
    if (!(spec.fork && i > 0)) {
      const int64_t a = mmkit::do_mmap(p->mm, 0, spec.size, mmkit::PROT_READ | mmkit::PROT_WRITE,
                                       mmkit::MAP_PRIVATE | mmkit::MAP_ANONYMOUS);
      if (a < 0)
        return fmt::format("{}: process {}: mmap of {} bytes failed: {}", who, i, spec.size,
                           errno_text(a));
      placed.base = static_cast<uint64_t>(a);
      placed.versions = PageVersions(job.pages);
    }
    if (!placed.versions.ok())
      return fmt::format("{}: process {}: no host memory for {} page versions", who, i, job.pages);
    if (spec.fork && i == 0 && !populate(sh, job, *job.procs[0])) {
      ProcSlot& parent = *job.procs[0];
      if (!parent.error.empty()) return fmt::format("{}: process 0: {}", who, parent.error);
      parent.oom_killed = true;
      finish_process(parent);
    }
  }
  return "";
}

}  // namespace mmsim
