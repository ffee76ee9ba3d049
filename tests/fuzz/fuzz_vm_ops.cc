// libFuzzer target for address spaces: bytes become a sequence of mmap,
// munmap, mprotect, mremap, brk, fork, exit, read, write and fault
// operations over up to three processes of one small machine (x86_64 or
// i386, picked by the first byte). Addresses are drawn from a small window
// (plus the stack and heap) so operations collide; lengths and flags come
// straight from the bytes, bad ones included, and must be refused with an
// errno, never crash. check() must hold for every address space after
// every operation and no report other than an allocation failure (out
// of memory is allowed) may appear; at the end every process exits and the free page count, the
// page-table pages and Committed_AS must be back to their starting values.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "page_alloc/page_alloc.h"
#include "slab/slab.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"

namespace {

using namespace mmkit;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_vm_ops: %s\n", why.c_str());
  std::abort();
}

struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t u8() { return n ? (--n, *p++) : 0; }
  uint32_t u16() { return u8() | uint32_t{u8()} << 8; }
};

constexpr uint64_t kWindow = 0x10000000;

uint64_t pick_addr(Bytes& b, MmStruct* mm) {
  const uint8_t k = b.u8();
  switch (k & 3) {
    case 0:
      return mm->start_brk + (b.u8() << 12);
    case 1:
      return mm->layout.stack_top - (uint64_t{b.u8()} << 12);
    default:
      return kWindow + (uint64_t{b.u8()} << 12) + ((k & 4) ? b.u8() : 0);
  }
}

// vm_committed_as = the VM_ACCOUNT pages of every VMA + the charges of the
// shmem files of the shared anonymous mappings.
uint64_t expected_committed(const std::vector<Process*>& procs) {
  uint64_t pages = 0;
  std::set<const Inode*> objs;
  for (Process* p : procs) {
    std::lock_guard g(p->mm->mmap_lock);
    for (auto& [end, vma] : p->mm->mm_mt) {
      if (vma->vm_flags & VM_ACCOUNT) pages += vma->pages();
      if (vma->vm_file && vma->vm_file->shmem) objs.insert(vma->vm_file);
    }
  }
  for (const Inode* o : objs) pages += o->shmem_charged;
  return pages;
}

void clean_up(Machine& m) {
  for (KmemCache* s : slab_caches(m)) kmem_cache_shrink(s);
  drain_all_pages(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes b{data, size};
  MachineConfig c;
  c.cpus = 2;
  c.arch = (b.u8() & 1) ? Arch::i386 : Arch::x86_64;
  c.nodes = {NodeConfig{.memory = 32ull << 20}};
  c.overcommit_memory = b.u8() % 3;
  auto booted = boot(c);
  if (!booted) fail("boot: " + booted.error().message);
  Machine& m = **booted;
  // Out of memory is a legitimate outcome (allocation-failure reports are
  // expected then); a bad page or a page-table complaint is not.
  std::string reports;
  m.warn_sink = [&](const std::string& s) {
    if (s.find("page allocation failure") == std::string::npos) reports += s;
  };
  {
    Process* warm = nullptr;
    if (spawn(m, "warm", &warm) != 0) fail("cannot spawn");
    exit_process(warm);
  }
  clean_up(m);
  const uint64_t free0 = nr_free_pages(m);
  const int64_t tables0 = m.node_stat_sum(NodeStat::NR_PAGETABLE);

  std::vector<Process*> procs;
  Process* first = nullptr;
  if (spawn(m, "fuzz", &first) != 0) fail("cannot spawn");
  procs.push_back(first);
  char buf[3 * 4096];
  for (int op = 0; op < 200 && b.n; ++op) {
    Process* p = procs[b.u8() % procs.size()];
    MmStruct* mm = p->mm;
    const uint8_t kind = b.u8();
    const uint64_t addr = pick_addr(b, mm);
    const uint64_t len = b.u16() * ((kind & 0x80) ? 4096 : 1);
    switch (kind % 10) {
      case 0:
        do_mmap(mm, addr, len, b.u8(),
                (b.u8() << 4 & 0x1f0) | b.u8() % 4 | MAP_ANONYMOUS |
                    ((kind & 0x40) ? MAP_POPULATE : 0));
        break;
      case 1:
        do_munmap(mm, addr, len);
        break;
      case 2:
        do_mprotect(mm, addr, len, b.u8() | ((kind & 0x40) ? PROT_GROWSDOWN : 0));
        break;
      case 3:
        do_mremap(mm, addr, len, b.u16() * 4096 + b.u8(), b.u8() & 7, pick_addr(b, mm));
        break;
      case 4:
        do_brk(mm, mm->start_brk + len);
        break;
      case 5:
        if (procs.size() < 3) {
          Process* child = nullptr;
          if (fork_process(p, &child) == 0) procs.push_back(child);
        }
        break;
      case 6:
        if (procs.size() > 1) {
          exit_process(p);
          std::erase(procs, p);
        }
        break;
      case 7:
        access_read(mm, addr, buf, len % sizeof buf);
        break;
      case 8:
        access_write(mm, addr, buf, len % sizeof buf);
        break;
      default:
        handle_mm_fault(mm, addr, static_cast<Access>(b.u8() % 3));
        break;
    }
    for (Process* q : procs)
      if (std::string e = check(q->mm); !e.empty()) fail("op " + std::to_string(op) + ": " + e);
    if (!reports.empty()) fail("report: " + reports);
    if (vm_memory_committed(m) != expected_committed(procs))
      fail("op " + std::to_string(op) + " (kind " + std::to_string(kind % 10) + "): Committed_AS " +
           std::to_string(vm_memory_committed(m)) + " but the VMAs hold " +
           std::to_string(expected_committed(procs)));
  }
  for (Process* q : procs) exit_process(q);
  clean_up(m);
  if (std::string e = check(m); !e.empty()) fail("page allocator: " + e);
  if (nr_free_pages(m) != free0) fail("free pages not back to the start");
  if (m.node_stat_sum(NodeStat::NR_PAGETABLE) != tables0) fail("page tables leaked");
  if (vm_memory_committed(m) != 0) fail("Committed_AS not back to 0");
  if (m.node_stat_sum(NodeStat::NR_ANON_PAGES) != 0) fail("NR_ANON_PAGES not back to 0");
  return 0;
}
