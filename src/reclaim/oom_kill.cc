// The OOM killer (mm/oom_kill.c): oom_badness, victim selection, the
// report in the kernel log, the kill and the reaping of the victim's
// anonymous memory (the oom_reaper's job, done at once when its address
// space can be locked).
#include <fmt/format.h>

#include <chrono>
#include <climits>
#include <thread>

#include "memcg/lru.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/oom.h"
#include "reclaim/reclaim_state.h"
#include "swap/swap.h"
#include "vm/process.h"
#include "vm/rmap.h"

namespace mmkit {
namespace {

uint64_t oom_totalpages(const Machine& m) {
  return m.totalram_pages() + swap_total_pages(m);
}

std::string mem_info(Machine& m) {
  auto node = [&](NodeStat s) { return std::max<int64_t>(m.node_stat_sum(s), 0); };
  std::string s = fmt::format(
      "Mem-Info:\nactive_anon:{} inactive_anon:{} isolated_anon:0\n active_file:{} "
      "inactive_file:{} isolated_file:0\n unevictable:{} dirty:{} writeback:{}\n "
      "slab_reclaimable:{} slab_unreclaimable:{}\n mapped:{} shmem:{} pagetables:{}\n free:{} "
      "free_pcp:0 free_cma:0\n",
      node(NodeStat::NR_ACTIVE_ANON), node(NodeStat::NR_INACTIVE_ANON),
      node(NodeStat::NR_ACTIVE_FILE), node(NodeStat::NR_INACTIVE_FILE),
      node(NodeStat::NR_UNEVICTABLE), node(NodeStat::NR_FILE_DIRTY), node(NodeStat::NR_WRITEBACK),
      node(NodeStat::NR_SLAB_RECLAIMABLE), node(NodeStat::NR_SLAB_UNRECLAIMABLE),
      node(NodeStat::NR_FILE_MAPPED), node(NodeStat::NR_SHMEM), node(NodeStat::NR_PAGETABLE),
      nr_free_pages(m));
  // __show_mem(): the page cache (swap cache included), then the swap.
  s += fmt::format("{} total pagecache pages\n", node(NodeStat::NR_FILE_PAGES));
  s += fmt::format("{} pages in swap cache\nFree swap  = {}kB\nTotal swap = {}kB\n{} pages RAM\n",
                   node(NodeStat::NR_SWAPCACHE), swap_free_pages(m) * 4, swap_total_pages(m) * 4,
                   m.totalram_pages());
  return s;
}

std::string task_line(Process* p) {
  MmStruct* mm = p->mm;
  return fmt::format("[{:>7}] {:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>14} {:>8} {:>13} {}",
                     p->pid, 0, p->pid, mm->total_vm, mm->get_mm_rss(),
                     mm->get_mm_counter(MM_ANONPAGES), mm->get_mm_counter(MM_FILEPAGES),
                     mm->get_mm_counter(MM_SHMEMPAGES), mm->pgd.nr_tables.load() * PAGE_SIZE,
                     mm->get_mm_counter(MM_SWAPENTS), p->oom_score_adj, p->comm);
}

// oom_reap_task_mm(): the victim's private memory goes now, when its address
// space can be had (shared mappings stay: others may use them), and the
// victim is MMF_OOM_SKIP: what is left (shmem, shared file pages) goes only
// when its own thread exits, and the OOM killer does not wait for that.
// When the address space cannot be had, its own thread frees it on exit.
void oom_reap(Machine& m, MmStruct* mm) {
  if (mm->mmap_lock.held_by_me()) return;
  if (!mm->mmap_lock.try_lock_for(std::chrono::milliseconds(20))) return;
  mm->page_table_lock.lock();
  for (auto& [end, vma] : mm->mm_mt)
    if (!(vma->vm_flags & VM_SHARED))
      mm_internal::zap_vma_range(mm, vma, vma->vm_start, vma->vm_end);
  mm->page_table_lock.unlock();
  mm->mmap_lock.unlock();
  mm->oom_skip.store(true);
}

Process* current_process(Machine& m) {
  MmStruct* mm = mm_internal::tls_fault_mm;
  if (!mm) return nullptr;
  for (Process* p : processes(m))
    if (p->mm == mm) return p;
  return nullptr;
}

// out_of_memory() for the machine (cg null) or one memory cgroup.
bool out_of_memory(Machine& m, MemCgroup* cg, gfp_t gfp, unsigned order) {
  ReclaimState* st = reclaim_state_if(m);
  if (!st) return false;
  std::lock_guard<std::mutex> g(st->oom_lock);
  const uint64_t totalpages =
      cg && cg->max.load() != kMemMax ? cg->max.load() + swap_total_pages(m) : oom_totalpages(m);
  std::vector<Process*> tasks = processes(m);
  // A victim that has not exited yet: wait for it rather than kill another
  // (oom_evaluate_task's tsk_is_oom_victim abort).
  // Not for long: a victim that cannot exit (its memory is held by the
  // caller) must not stall the machine; after a second another is chosen.
  thread_local unsigned waits = 0;
  for (Process* p : tasks)
    if (p->oom_killed.load() && (!cg || p->mm->memcg == cg) && p->mm->get_mm_rss() > 0 &&
        !p->mm->oom_skip.load() && !p->mm->mmap_lock.held_by_me() && waits < 1000) {
      ++waits;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return true;
    }
  waits = 0;
  if (m.panic_on_oom == 2 || (m.panic_on_oom == 1 && !cg)) {
    m.printk(mem_info(m));
    m.printk(fmt::format("Kernel panic - not syncing: Out of memory: {} panic_on_oom is enabled",
                         cg ? "compulsory" : "system-wide"));
    return false;
  }
  Process* current = current_process(m);
  Process* victim = nullptr;
  int64_t chosen = LONG_MIN;
  if (m.oom_kill_allocating_task && !cg && current && current->oom_score_adj != -1000 &&
      !current->oom_killed.load()) {
    victim = current;
    chosen = oom_badness(current, totalpages);
  } else {
    for (Process* p : tasks) {
      if (cg && p->mm->memcg != cg) continue;
      if (p->oom_killed.load()) continue;
      const int64_t points = oom_badness(p, totalpages);
      if (points == LONG_MIN || points < chosen) continue;
      victim = p;
      chosen = points;
    }
  }
  const std::string comm = current ? current->comm : "kswapd0";
  std::string report =
      fmt::format("{} invoked oom-killer: gfp_mask={:#x}, order={}, oom_score_adj={}\n", comm, gfp,
                  order, current ? current->oom_score_adj : 0);
  if (cg) {
    report += fmt::format("memory: usage {}kB, limit {}kB, failcnt {}\n", cg->usage.load() * 4,
                          cg->max.load() * 4, cg->ev_max.load());
    report += fmt::format("swap: usage {}kB, limit 9007199254740988kB, failcnt 0\n",
                          cg->swap_usage.load() * 4);
  }
  report += mem_info(m);
  report += "Tasks state (memory values in pages):\n";
  report +=
      "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes "
      "swapents oom_score_adj name\n";
  for (Process* p : tasks)
    if (!cg || p->mm->memcg == cg) report += task_line(p) + "\n";
  if (!victim) {
    report += cg ? "Memory cgroup out of memory: no killable process\n"
                 : "Out of memory and no killable processes...\n";
    m.printk(report);
    return false;
  }
  MmStruct* mm = victim->mm;
  report += fmt::format(
      "oom-kill:constraint={},nodemask=(null),cpuset=/,mems_allowed=0,{},task_memcg={},"
      "task={},pid={},uid=0\n",
      cg ? "CONSTRAINT_MEMCG" : "CONSTRAINT_NONE",
      cg ? "oom_memcg=" + mem_cgroup_name(cg) : std::string("global_oom"),
      mm->memcg ? mem_cgroup_name(mm->memcg) : "/", victim->comm, victim->pid);
  report += fmt::format(
      "{}Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, "
      "shmem-rss:{}kB, UID:0 pgtables:{}kB oom_score_adj:{}",
      cg ? "Memory cgroup " : "", victim->pid, victim->comm, mm->total_vm * 4,
      mm->get_mm_counter(MM_ANONPAGES) * 4, mm->get_mm_counter(MM_FILEPAGES) * 4,
      mm->get_mm_counter(MM_SHMEMPAGES) * 4, mm->pgd.nr_tables.load() * 4, victim->oom_score_adj);
  m.printk(report);
  // The victim may exit (and its owner free the mm) at any moment: the
  // reaper holds its own reference.
  MmStruct* held = oom_mark_victim(m, victim);
  m.count_event(VmEvent::OOM_KILL);
  if (cg) cg->ev_oom_kill.fetch_add(1);
  if (held) {
    oom_reap(m, held);
    mmput(held);
  }
  return true;
}

}  // namespace

int64_t oom_badness(Process* p, uint64_t totalpages) {
  if (p->oom_score_adj == -1000 || p->mm->oom_killed.load()) return LONG_MIN;
  MmStruct* mm = p->mm;
  int64_t points = static_cast<int64_t>(mm->get_mm_rss() + mm->get_mm_counter(MM_SWAPENTS) +
                                        mm->pgd.nr_tables.load());
  points += static_cast<int64_t>(p->oom_score_adj) * static_cast<int64_t>(totalpages / 1000);
  return points;
}

uint64_t oom_score(Process* p) {
  const uint64_t totalpages = oom_totalpages(*p->machine);
  const int64_t badness = oom_badness(p, totalpages);
  if (badness == LONG_MIN) return 0;
  const int64_t points = 1000 + badness * 1000 / static_cast<int64_t>(totalpages ? totalpages : 1);
  return static_cast<uint64_t>(std::max<int64_t>(points, 0) * 2 / 3);
}

bool oom_kill_global(Machine& m, gfp_t gfp, unsigned order) {
  if (tls_no_oom_kill) return false;
  return out_of_memory(m, nullptr, gfp, order);
}

bool oom_kill_memcg(Machine& m, MemCgroup* cg) {
  if (tls_no_oom_kill) return false;  // swapoff gives up instead
  return out_of_memory(m, cg, GFP_KERNEL, 0);
}

bool current_oom_victim() {
  MmStruct* mm = mm_internal::tls_fault_mm;
  return mm && mm->oom_killed.load(std::memory_order_relaxed);
}

}  // namespace mmkit
