// mm_struct and the system calls that shape a user address space
// (include/linux/mm_types.h; mm/mmap.c, mm/mprotect.c, mm/mremap.c,
// mm/memory.c, kernel/fork.c).
//
//   mm_alloc / mmput            a fresh address space / the last reference
//   do_mmap / do_munmap / do_mprotect / do_brk / do_mremap
//   handle_mm_fault             the page-fault handler
//   access_read / access_write / access_touch / user_page   byte access
//   check                       proves the address space's invariants
//
// Errors are Linux's: a negative errno returned as the value (IS_ERR_VALUE),
// never thrown. A fault that cannot be resolved comes back as a FaultResult
// saying SIGSEGV (SEGV_MAPERR: no VMA; SEGV_ACCERR: the VMA forbids the
// access) or out of memory, with the address; it never touches memory.
//
// Locking: mm->mmap_lock is taken by every entry point here (as a writer;
// faults take it too, so one mm's faults are serialised), and with it
// mm->page_table_lock by every one but the fault handler, which takes that
// only around its PTE changes (vm/mmap_lock.h). Lock order: mmap_lock, then
// page_table_lock, then the process table's lock, then the page tables'
// own locks.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "phys/machine.h"
#include "vm/mmap_lock.h"
#include "vm/mmu.h"
#include "vm/pgtable.h"
#include "vm/vma.h"

namespace mmkit {

// mmap's prot and flags (include/uapi/asm-generic/mman-common.h, mman.h).
inline constexpr int PROT_NONE = 0x0;
inline constexpr int PROT_READ = 0x1;
inline constexpr int PROT_WRITE = 0x2;
inline constexpr int PROT_EXEC = 0x4;
inline constexpr int PROT_SEM = 0x8;
inline constexpr int PROT_GROWSDOWN = 0x01000000;
inline constexpr int PROT_GROWSUP = 0x02000000;
inline constexpr int MAP_SHARED = 0x01;
inline constexpr int MAP_PRIVATE = 0x02;
inline constexpr int MAP_SHARED_VALIDATE = 0x03;
inline constexpr int MAP_TYPE = 0x0f;
inline constexpr int MAP_FIXED = 0x10;
inline constexpr int MAP_ANONYMOUS = 0x20;
inline constexpr int MAP_GROWSDOWN = 0x0100;
inline constexpr int MAP_NORESERVE = 0x4000;
inline constexpr int MAP_POPULATE = 0x8000;
inline constexpr int MAP_FIXED_NOREPLACE = 0x100000;
inline constexpr int MREMAP_MAYMOVE = 1;
inline constexpr int MREMAP_FIXED = 2;

// enum mm_counter (include/linux/mm_types_task.h).
enum MmCounter : unsigned {
  MM_FILEPAGES,
  MM_ANONPAGES,
  MM_SWAPENTS,
  MM_SHMEMPAGES,
  NR_MM_COUNTERS
};

// The layout constants of the machine's arch (arch/x86/include/asm/
// page_64_types.h, page_32_types.h, processor.h; mm/util.c mmap_base()).
struct MmLayout {
  PagingMode mode;
  uint64_t task_size;           // TASK_SIZE: 0x7ffffffff000 (4-level), 0xC0000000 (i386)
  uint64_t map_window;          // DEFAULT_MAP_WINDOW: the top for hintless mmap and the stack
  uint64_t mmap_base;           // top-down allocations start below it
  uint64_t task_unmapped_base;  // bottom-up fallback: PAGE_ALIGN(TASK_SIZE / 3)
  uint64_t stack_top;           // STACK_TOP without randomisation: TASK_SIZE
  uint64_t start_brk;           // where a small non-randomised program's heap starts
};
MmLayout mm_layout(const Machine& m);
inline constexpr uint64_t mmap_min_addr = 65536;         // CONFIG_DEFAULT_MMAP_MIN_ADDR
inline constexpr uint64_t stack_guard_gap = 256 * 4096;  // 256 pages (mm/mmap.c)
inline constexpr uint64_t kStackRlimit = 8ull << 20;     // RLIMIT_STACK default, _STK_LIM
inline constexpr uint64_t kInitialStack = 132ull << 10;  // setup_arg_pages' stack_expand + a page

struct ProcessState;
struct MemCgroup;

struct MmStruct {
  Machine* machine = nullptr;
  ProcessState* state = nullptr;  // the machine's vm state (VMA cache, mm list, commit)
  PageTable pgd;
  MmLock mmap_lock;
  MmLock page_table_lock;             // reclaim's way in (vm/mmap_lock.h)
  std::map<uint64_t, VmArea*> mm_mt;  // keyed by vm_end
  int map_count = 0;
  // Where the top-down search may start (Linux 2.6-3.7's free_area_cache
  // and cached_hole_size, mm/mmap.c): no gap lying wholly at or above
  // free_area_cache is longer, within [mmap_min_addr, mmap_base), than
  // cached_hole_size. A request longer than that starts at free_area_cache,
  // so a run of mmaps costs O(log n) each instead of a walk over every VMA.
  // A gap that grows (unmap, shrink) raises free_area_cache to its top.
  uint64_t free_area_cache = kNoFreeAreaCache;
  uint64_t cached_hole_size = 0;
  static constexpr uint64_t kNoFreeAreaCache = ~uint64_t{0};  // search from the top
  MmLayout layout{};
  uint64_t mmap_base = 0;
  uint64_t start_brk = 0, brk = 0;
  uint64_t start_stack = 0;
  // Pages of VMAs (vm_stat_account): all, writable private (data), stack.
  uint64_t total_vm = 0, data_vm = 0, exec_vm = 0, stack_vm = 0;
  uint64_t hiwater_vm = 0;  // VmPeak
  std::atomic<int64_t> rss_stat[NR_MM_COUNTERS] = {};
  std::atomic<uint64_t> hiwater_rss{0};  // VmHWM
  std::atomic<uint64_t> min_flt{0}, maj_flt{0};
  bool cap_sys_admin = false;  // __vm_enough_memory's admin reserve applies when false
  // The owner's RLIMIT_AS and RLIMIT_DATA in bytes (current->signal->rlim,
  // soft = hard; kRlimInfinity: none): the machine config's at mm_alloc,
  // the parent's at fork. may_expand_vm and brk check them (rlimit.h).
  uint64_t rlimit_as = kRlimInfinity, rlimit_data = kRlimInfinity;
  std::atomic<int> mm_users{1};
  // The memory cgroup its pages are charged to (mm->owner's); null: the root.
  MemCgroup* memcg = nullptr;
  // The owner was OOM-killed: faults return kKilled.
  std::atomic<bool> oom_killed{false};
  // MMF_OOM_SKIP: the OOM reaper has freed what it could of the victim's
  // memory (not its shared mappings); the OOM killer no longer waits for it.
  std::atomic<bool> oom_skip{false};

  uint64_t get_mm_counter(MmCounter c) const {
    const int64_t v = rss_stat[c].load(std::memory_order_relaxed);
    return v < 0 ? 0 : static_cast<uint64_t>(v);
  }
  uint64_t get_mm_rss() const {
    return get_mm_counter(MM_FILEPAGES) + get_mm_counter(MM_ANONPAGES) +
           get_mm_counter(MM_SHMEMPAGES);
  }
};

// Both locks of an address space, in their order: what every entry point
// but the fault handler holds while it changes VMAs and page tables.
class MmWriteGuard {
 public:
  explicit MmWriteGuard(MmStruct* mm) : mm_(mm) {
    mm_->mmap_lock.lock();
    mm_->page_table_lock.lock();
  }
  ~MmWriteGuard() {
    mm_->page_table_lock.unlock();
    mm_->mmap_lock.unlock();
  }
  MmWriteGuard(const MmWriteGuard&) = delete;
  MmWriteGuard& operator=(const MmWriteGuard&) = delete;

 private:
  MmStruct* mm_;
};

// A fresh, empty address space of the machine's paging mode, or null when
// its top-level table cannot be allocated. The layout is the arch's.
MmStruct* mm_alloc(Machine& m);
// Drops a reference (mm_users); the last one does exit_mmap() + free:
// unmaps every VMA, frees the page tables and the top level, flushes the
// TLB and uncharges the commit.
void mmput(MmStruct* mm);

// ---- system calls (negative errno on failure) ------------------------------
// mmap(addr, len, prot, flags, -1, 0) for anonymous mappings; a mapping
// without MAP_ANONYMOUS is -EBADF (use do_mmap_fd). Returns the address.
int64_t do_mmap(MmStruct* mm, uint64_t addr, uint64_t len, int prot, int flags);
// mmap(addr, len, prot, flags, fd, offset) of an open file of `ft`:
// -EBADF for a bad fd, -EACCES when the file's access forbids the mapping
// (not readable; MAP_SHARED with PROT_WRITE on a file not open for
// writing), -EINVAL for an unaligned offset. MAP_ANONYMOUS ignores fd.
int64_t do_mmap_fd(MmStruct* mm, FileTable& ft, uint64_t addr, uint64_t len, int prot, int flags,
                   int fd, uint64_t offset);
// msync(): MS_SYNC writes the dirty pages of the file mappings in
// [start, start + len) back; MS_ASYNC does nothing (Linux 2.6.19+).
// -ENOMEM for a range not wholly mapped, -EINVAL for bad flags.
inline constexpr int MS_ASYNC = 1;
inline constexpr int MS_INVALIDATE = 2;
inline constexpr int MS_SYNC = 4;
int do_msync(MmStruct* mm, uint64_t start, uint64_t len, int flags);
int do_munmap(MmStruct* mm, uint64_t start, uint64_t len);
int do_mprotect(MmStruct* mm, uint64_t start, uint64_t len, int prot);
// brk(addr): the new break, or the old one when the request fails (Linux's
// brk never returns an errno).
uint64_t do_brk(MmStruct* mm, uint64_t brk);
int64_t do_mremap(MmStruct* mm, uint64_t addr, uint64_t old_len, uint64_t new_len, int flags,
                  uint64_t new_addr = 0);

// ---- page faults --------------------------------------------------------
// kKilled: the address space's owner was killed by the OOM killer (its
// memory reaped); the caller stops and exits the process.
// kSigbus: a file mapping's page past the end of its file (VM_FAULT_SIGBUS).
enum class FaultStatus : uint8_t { kOk, kSigsegv, kOom, kKilled, kSigbus };
inline constexpr int SEGV_MAPERR = 1;  // address not mapped to object
inline constexpr int SEGV_ACCERR = 2;  // invalid permissions for mapped object
inline constexpr int BUS_ADRERR = 2;   // nonexistent physical address (past a file's end)
struct FaultResult {
  FaultStatus status = FaultStatus::kOk;
  int si_code = 0;  // SEGV_MAPERR or SEGV_ACCERR for kSigsegv
  uint64_t addr = 0;
  const char* reason = "";
  bool major = false;  // the page was read from swap (VM_FAULT_MAJOR)
  // A clean page of a shared file mapping turned dirty: the writer owes
  // balance_dirty_pages a look (fault_dirty_shared_page).
  bool dirtied = false;
  bool ok() const { return status == FaultStatus::kOk; }
};
FaultResult handle_mm_fault(MmStruct* mm, uint64_t addr, Access access);

// ---- user memory access -------------------------------------------------
// A thread that copies while another changes the same address space must
// have bound a CPU (CpuScope): only a bound CPU's MMU accesses hold off a
// TLB shootdown (and so the freeing of the page) until the copy is done.
// Copy between a user range and `buf`, page by page, faulting pages in as
// needed (as copy_from_user/copy_to_user with the fault handler behind
// them). On a fault that cannot be resolved nothing more is copied and the
// fault is returned (its addr is the first byte that could not be reached).
FaultResult access_read(MmStruct* mm, uint64_t vaddr, void* buf, size_t len);
FaultResult access_write(MmStruct* mm, uint64_t vaddr, const void* buf, size_t len);
// Faults every page of the range in for `access` without copying.
FaultResult access_touch(MmStruct* mm, uint64_t vaddr, size_t len, Access access);
// The page-granular fast path: the host address of the byte at vaddr for
// `access`, faulting the page in when needed, returned inside an MMU access
// (mmu_access_begin) that the caller ends with user_page_end(mm) once done
// with the pointer; in between it must not fault, sleep, take the mmap lock
// or change mappings (mmu.h's rules). Null, with no access open and *fault
// (if given) filled, when the page cannot be reached; else *fault (if
// given) is a success, `major` when a fault on the way read the page in.
char* user_page_begin(MmStruct* mm, uint64_t vaddr, Access access, FaultResult* fault = nullptr);
void user_page_end(MmStruct* mm);

// ---- invariants ------------------------------------------------------------
// VMAs sorted, disjoint, page aligned, map_count right; every present entry
// inside a VMA and no more permissive than it; RSS counters equal the
// present entries by kind; the page tables' own check; and every page this
// mm maps has a mapcount equal to the entries mapping it in all address
// spaces of the machine. "" or the first violation. Other CPUs must be quiet.
std::string check(MmStruct* mm);

// Internal to the vm layer's address-space files (mmap.c's helpers).
namespace mm_internal {
// Unmaps [start, end) (VMAs split at the ends): zaps entries, frees tables,
// uncharges VM_ACCOUNT pages unless !uncharge. Caller holds mmap_lock.
int munmap_locked(MmStruct* mm, uint64_t start, uint64_t end, bool uncharge = true);
// Zaps the entries of [start, end) inside `vma` and fixes RSS and NR_ANON_PAGES.
void zap_vma_range(MmStruct* mm, VmArea* vma, uint64_t start, uint64_t end);
// get_unmapped_area() for len bytes: the hint when free, else top-down below
// mmap_base, else bottom-up. -ENOMEM when nothing fits.
int64_t get_unmapped_area(MmStruct* mm, uint64_t hint, uint64_t len);
// USER_PGTABLES_CEILING: the end of the user half (TASK_SIZE rounded up to
// a GiB), the ceiling free_pgtables uses above the last VMA.
uint64_t pgtables_ceiling(const MmStruct* mm);
// vm_stat_account(): total_vm, data_vm, stack_vm for a VMA's flags.
void vm_stat_account(MmStruct* mm, vm_flags_t flags, int64_t npages);
void update_hiwater_rss(MmStruct* mm);
void add_mm_counter(MmStruct* mm, MmCounter c, int64_t n);
// vm_start_gap / vm_end_gap (include/linux/mm.h): a GROWSDOWN VMA keeps
// stack_guard_gap free below it.
uint64_t vm_start_gap(const VmArea* vma);
// The top-down search's window: [mmap_search_low(), mm->mmap_base).
inline uint64_t mmap_search_low() {
  return PAGE_SIZE > mmap_min_addr ? PAGE_SIZE : mmap_min_addr;
}
// The length of the gap [lo, hi) inside [low, high).
inline uint64_t gap_within(uint64_t lo, uint64_t hi, uint64_t low, uint64_t high) {
  if (lo < low) lo = low;
  if (hi > high) hi = high;
  return hi > lo ? hi - lo : 0;
}
FaultResult handle_fault_locked(MmStruct* mm, uint64_t addr, Access access);
// do_mmap()'s body for anonymous memory and files (`file` pinned by the
// caller, f_flags its open flags, pgoff the offset in pages).
int64_t mmap_region(MmStruct* mm, uint64_t addr, uint64_t len, int prot, int flags, Inode* file,
                    int f_flags, uint64_t pgoff);
// File mappings (file_map.cc): the faults, and the counts of a file page.
FaultResult do_file_fault(MmStruct* mm, VmArea* vma, uint64_t addr, Access access);
FaultResult do_file_wp_page(MmStruct* mm, VmArea* vma, uint64_t addr, pteval_t pte);
void page_add_file_rmap(Machine& m, Page* page);
// mm_counter_file(): the RSS counter of a page-cache page a PTE maps
// (MM_SHMEMPAGES for shmem's swap-backed pages, MM_FILEPAGES otherwise).
inline MmCounter mm_counter_file(const Page* page) {
  return page->test(PG_swapbacked) ? MM_SHMEMPAGES : MM_FILEPAGES;
}
// The page-cache pages the entries of [start, end) map, by RSS counter
// (file, shmem); anonymous copies and the zero page are not counted.
struct FileRss {
  int64_t file = 0, shmem = 0;
};
FileRss count_file_rss(MmStruct* mm, uint64_t start, uint64_t end);
}  // namespace mm_internal

}  // namespace mmkit
