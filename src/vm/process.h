// Processes: an address space with a pid, bound to one machine
// (kernel/fork.c, kernel/exit.c, kernel/pid.c, reduced to what memory
// management needs).
//
//   spawn(m, comm)        a process with a fresh mm (execve's layout: an
//                         empty heap at start_brk and a [stack] VMA below
//                         STACK_TOP)
//   fork_process(parent)  dup_mmap(): the child's VMAs copy the parent's;
//                         private writable ranges become copy-on-write;
//                         the open files are shared (dup_fd)
//   exit_process(p)       exit_files(), exit_mmap() and the pid given back
//
// Pids come from a per-machine allocator as alloc_pid's: counting up from
// the last one, wrapping at pid_max (32768) to RESERVED_PIDS (300), skipping
// pids in use. An exited process is reaped at once (there are no zombies):
// its children are reparented to pid 1 if it exists, else to 0.
//
// Locking: the machine's process table has its own mutex, taken after a
// caller's mmap_lock. A Process pointer is valid until exit_process.
#pragma once

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "filemap/filemap.h"
#include "phys/machine.h"
#include "vm/mm.h"

namespace mmkit {

inline constexpr int PID_MAX_DEFAULT = 0x8000;
inline constexpr int RESERVED_PIDS = 300;

struct Process {
  int pid = 0;
  int ppid = 0;
  std::string comm;  // task->comm, at most 15 characters
  Machine* machine = nullptr;
  MmStruct* mm = nullptr;
  // /proc/<pid>/oom_score_adj: -1000 (never an OOM victim) .. 1000.
  int oom_score_adj = 0;
  // Set by the OOM killer (SIGKILL): the process's memory is reaped and
  // every later fault returns FaultStatus::kKilled; its owner exits it.
  std::atomic<bool> oom_killed{false};
  // Open files (filemap/filemap.h); a child shares its parent's open file
  // descriptions, and exit closes them. files.memcg is the group its page
  // cache is charged to, set by whoever sets mm->memcg.
  FileTable files;
};

// 0 and *out set, or -ENOMEM (no memory for the mm or its stack) or -EAGAIN
// (no free pid).
int spawn(Machine& m, std::string_view comm, Process** out);
int fork_process(Process* parent, Process** out);
// Tears the address space down and frees the pid; `p` is gone afterwards.
void exit_process(Process* p);

Process* find_process(Machine& m, int pid);
// The OOM kill of `p`, if it is still alive: marks it and its mm killed and
// takes a reference on the mm (mmput drops it) under the process table's
// lock, so a victim that exits meanwhile cannot free the mm under the
// reaper. Null when `p` has exited already.
MmStruct* oom_mark_victim(Machine& m, Process* p);
// Live processes in pid order.
std::vector<Process*> processes(Machine& m);
// Every live address space of the machine (mapcount checks walk them all).
std::vector<MmStruct*> machine_mms(Machine& m);

// dup_mmap() for callers that manage mms themselves: a copy of `oldmm` with
// copy-on-write private memory, or null (-ENOMEM) with nothing leaked.
MmStruct* dup_mm(MmStruct* oldmm);

}  // namespace mmkit
