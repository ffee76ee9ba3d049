// The process table: spawn, fork and exit of processes bound to a machine,
// and the pid allocator (kernel/fork.c, kernel/exit.c, kernel/pid.c
// alloc_pid). See process.h for the rules.
#include "vm/process.h"

#include <algorithm>

#include "page_alloc/page_alloc.h"
#include "vm/process_state.h"

namespace mmkit {

ProcessState::ProcessState(Machine& machine) : m(machine) {
  const MachineConfig& c = m.config();
  sysctls.overcommit_memory = c.overcommit_memory;
  sysctls.overcommit_ratio = c.overcommit_ratio.value_or(50);
  sysctls.overcommit_kbytes = c.overcommit_kbytes;
  // init_user_reserve() / init_admin_reserve() (mm/mmap.c): 3% of the free
  // memory at boot, capped at 128 MiB and 8 MiB.
  const uint64_t free_kbytes = nr_free_pages(m) << (PAGE_SHIFT - 10);
  sysctls.user_reserve_kbytes =
      c.user_reserve_kbytes.value_or(std::min<uint64_t>(free_kbytes / 32, 128 << 10));
  sysctls.admin_reserve_kbytes =
      c.admin_reserve_kbytes.value_or(std::min<uint64_t>(free_kbytes / 32, 8 << 10));
  total_swap_pages = c.swap >> PAGE_SHIFT;
  max_map_count = static_cast<int>(c.max_map_count);
  // mm/mmap.c's vm_area_cachep (SLAB_PANIC|SLAB_ACCOUNT in Linux).
  vm_area_cachep =
      kmem_cache_create(m, "vm_area_struct", sizeof(VmArea), alignof(VmArea), SLAB_HWCACHE_ALIGN);
}

ProcessState::~ProcessState() {
  // The machine is going away: every address space still alive is torn
  // down through its own state pointer (the machine's slot is empty now).
  tasks.clear();
  std::vector<MmStruct*> rest(mms.begin(), mms.end());
  for (MmStruct* mm : rest) mmput(mm);
  if (vm_area_cachep) kmem_cache_destroy(vm_area_cachep);
}

ProcessState& process_state(Machine& m) {
  return *static_cast<ProcessState*>(
      m.ensure_layer_state(Layer::kProcess, [&m] { return std::make_unique<ProcessState>(m); }));
}

const ProcessState* process_state_if(const Machine& m) {
  return static_cast<const ProcessState*>(m.layer_state(Layer::kProcess));
}

namespace {

// alloc_pid(): the next free pid after the last one, wrapping to
// RESERVED_PIDS; 0 when every pid is taken. Caller holds st.lock.
int alloc_pid(ProcessState& st) {
  int pid = st.last_pid;
  for (int tries = 0; tries < PID_MAX_DEFAULT; ++tries) {
    ++pid;
    if (pid >= PID_MAX_DEFAULT) pid = RESERVED_PIDS;
    if (!st.tasks.count(pid)) {
      st.last_pid = pid;
      return pid;
    }
  }
  return 0;
}

int add_process(ProcessState& st, MmStruct* mm, int ppid, std::string_view comm, Process** out) {
  std::lock_guard<std::mutex> g(st.lock);
  const int pid = alloc_pid(st);
  if (pid == 0) return -EAGAIN;
  auto p = std::make_unique<Process>();
  p->pid = pid;
  p->ppid = ppid;
  p->comm = std::string(comm.substr(0, 15));  // TASK_COMM_LEN 16
  p->machine = &st.m;
  p->mm = mm;
  *out = p.get();
  st.tasks[pid] = std::move(p);
  return 0;
}

}  // namespace

int spawn(Machine& m, std::string_view comm, Process** out) {
  ProcessState& st = process_state(m);
  MmStruct* mm = mm_alloc(m);
  if (!mm) return -ENOMEM;
  // execve's layout (fs/exec.c setup_arg_pages): a [stack] VMA ending at
  // STACK_TOP, and the heap's start.
  const uint64_t top = mm->layout.stack_top;
  const int64_t stack = do_mmap(mm, top - kInitialStack, kInitialStack, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN);
  if (stack < 0) {
    mmput(mm);
    return static_cast<int>(stack);
  }
  mm->start_stack = top - PAGE_SIZE;
  if (int err = add_process(st, mm, 0, comm, out); err) {
    mmput(mm);
    return err;
  }
  return 0;
}

int fork_process(Process* parent, Process** out) {
  ProcessState& st = process_state(*parent->machine);
  MmStruct* mm = dup_mm(parent->mm);
  if (!mm) return -ENOMEM;
  if (int err = add_process(st, mm, parent->pid, parent->comm, out); err) {
    mmput(mm);
    return err;
  }
  (*out)->files.memcg = parent->files.memcg;
  files_dup(*parent->machine, parent->files, (*out)->files);
  return 0;
}

void exit_process(Process* p) {
  ProcessState& st = process_state(*p->machine);
  MmStruct* mm = p->mm;
  std::unique_ptr<Process> gone;
  {
    std::lock_guard<std::mutex> g(st.lock);
    auto it = st.tasks.find(p->pid);
    if (it == st.tasks.end()) return;
    gone = std::move(it->second);
    st.tasks.erase(it);
    // forget_original_parent(): orphans go to init.
    const int reaper = st.tasks.count(1) ? 1 : 0;
    for (auto& [pid, t] : st.tasks)
      if (t->ppid == gone->pid) t->ppid = reaper;
  }
  files_close_all(*gone->machine, gone->files);
  mmput(mm);
}

MmStruct* oom_mark_victim(Machine& m, Process* p) {
  ProcessState& st = process_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  for (auto& [pid, t] : st.tasks) {
    if (t.get() != p) continue;
    p->oom_killed.store(true);
    p->mm->oom_killed.store(true);
    p->mm->mm_users.fetch_add(1, std::memory_order_relaxed);
    return p->mm;
  }
  return nullptr;
}

Process* find_process(Machine& m, int pid) {
  ProcessState& st = process_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  auto it = st.tasks.find(pid);
  return it == st.tasks.end() ? nullptr : it->second.get();
}

std::vector<Process*> processes(Machine& m) {
  ProcessState& st = process_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  std::vector<Process*> out;
  for (auto& [pid, p] : st.tasks) out.push_back(p.get());
  return out;
}

std::vector<MmStruct*> machine_mms(Machine& m) {
  ProcessState& st = process_state(m);
  std::lock_guard<std::mutex> g(st.lock);
  return {st.mms.begin(), st.mms.end()};
}

}  // namespace mmkit
