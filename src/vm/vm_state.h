// The vm layer's per-machine state (Machine::layer_state(Layer::kVm)) and the
// table-frame helpers the layer's own files share.
//
// VmState is created on first use (pgd_alloc, kernel_page_table, zero_page):
// the kernel's tree (init_mm.pgd) with the x86-64 vmalloc area's top-level
// entries populated, the zero page, the asid allocator, the list of user
// trees whose kernel half mirrors the kernel's top level (pgd_list), and one
// TLB per CPU. It is destroyed with the machine; user trees must be freed
// (pgd_free) before that.
//
// Lock order: pgd_lock, then asid_lock (never both held today).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "phys/machine.h"
#include "vm/pgtable.h"
#include "vm/tlb.h"

namespace mmkit {

struct VmState final : LayerState {
  explicit VmState(Machine& m);
  ~VmState() override;

  Machine& machine;
  // One per CPU, indexed by CpuState::id; CpuState::tlb points at its own.
  std::unique_ptr<Tlb[]> tlbs;
  PageTable kernel;  // swapper_pg_dir
  Page* zero_page = nullptr;

  // Trees that share the kernel half (pgd_list): a top-level kernel entry
  // made after they were created is copied into them (sync_global_pgds).
  std::mutex pgd_lock;
  std::vector<PageTable*> pgd_list;

  std::mutex asid_lock;
  std::vector<uint32_t> free_asids;
  uint32_t next_asid = 1;  // 0 marks an empty TLB entry

  uint32_t alloc_asid();
  void free_asid(uint32_t asid);
};

// The machine's vm state, created on first use.
VmState& vm_state(Machine& m);
// The same without creating it (null before first use).
inline VmState* vm_state_if(const Machine& m) {
  return static_cast<VmState*>(m.layer_state(Layer::kVm));
}

// --- Table frames ------------------------------------------------------------

// One entry of a table frame, 64 or 32 bits wide; atomic accesses, since the
// MMU walks while entries change. 32-bit entries are widened on load and
// narrowed on store (NX and bits above 31 dropped).
class EntryRef {
 public:
  EntryRef(char* p, bool wide) : p_(p), wide_(wide) {}
  pteval_t load() const {
    return wide_ ? std::atomic_ref<uint64_t>(*u64()).load(std::memory_order_seq_cst)
                 : std::atomic_ref<uint32_t>(*u32()).load(std::memory_order_seq_cst);
  }
  void store(pteval_t v) const {
    if (wide_)
      std::atomic_ref<uint64_t>(*u64()).store(v, std::memory_order_seq_cst);
    else
      std::atomic_ref<uint32_t>(*u32()).store(static_cast<uint32_t>(v), std::memory_order_seq_cst);
  }
  // Makes a not-present entry present: no CPU can have cached the empty
  // entry, so no flush follows and a release store is enough (a walker's
  // load that sees the entry also sees the page's contents written before,
  // such as its zeroing). Changing a present entry needs store() or the
  // read-modify-writes, which the shootdown's ordering argument relies on.
  void publish(pteval_t v) const {
    if (wide_)
      std::atomic_ref<uint64_t>(*u64()).store(v, std::memory_order_release);
    else
      std::atomic_ref<uint32_t>(*u32()).store(static_cast<uint32_t>(v), std::memory_order_release);
  }
  pteval_t exchange(pteval_t v) const {
    return wide_ ? std::atomic_ref<uint64_t>(*u64()).exchange(v, std::memory_order_seq_cst)
                 : std::atomic_ref<uint32_t>(*u32()).exchange(static_cast<uint32_t>(v),
                                                              std::memory_order_seq_cst);
  }
  // On failure `expected` is the current value.
  bool cas(pteval_t& expected, pteval_t desired) const {
    if (wide_)
      return std::atomic_ref<uint64_t>(*u64()).compare_exchange_strong(expected, desired,
                                                                       std::memory_order_seq_cst);
    uint32_t e = static_cast<uint32_t>(expected);
    const bool ok = std::atomic_ref<uint32_t>(*u32()).compare_exchange_strong(
        e, static_cast<uint32_t>(desired), std::memory_order_seq_cst);
    expected = e;
    return ok;
  }
  char* ptr() const { return p_; }

 private:
  uint64_t* u64() const { return reinterpret_cast<uint64_t*>(p_); }
  uint32_t* u32() const { return reinterpret_cast<uint32_t*>(p_); }
  char* p_;
  bool wide_;
};

inline EntryRef table_entry(const Machine& m, const PagingFormat& f, uint64_t table_pfn,
                            uint64_t idx) {
  return EntryRef(m.phys_window(table_pfn) + (idx << f.entry_shift), f.entry_shift == 3);
}
inline uint64_t table_index(const PagingFormat& f, unsigned level, uint64_t lin) {
  return (lin >> f.shift[level]) & ((uint64_t{1} << f.index_bits) - 1);
}
// The span of the address space: 2^va_bits. Linear addresses (`lin`) are
// virtual addresses with the sign extension stripped, so both halves of
// x86-64 are one range [0, span).
inline uint64_t va_span(const PagingFormat& f) {
  return uint64_t{1} << f.va_bits;
}
inline uint64_t to_linear(const PagingFormat& f, uint64_t addr) {
  return addr & (va_span(f) - 1);
}
inline uint64_t to_canonical(const PagingFormat& f, uint64_t lin) {
  if (f.va_bits == 32) return lin;
  const unsigned s = 64 - f.va_bits;
  return static_cast<uint64_t>(static_cast<int64_t>(lin << s) >> s);
}
// The kernel's tree, when `pt` is it.
inline bool is_kernel_tree(const PageTable& pt) {
  const VmState* vs = vm_state_if(*pt.machine);
  return vs && &vs->kernel == &pt;
}

// A zeroed table frame from low memory, counted in NR_PAGETABLE and
// pt.nr_tables; null when the allocator fails.
Page* alloc_table(PageTable& pt, gfp_t gfp);
// Gives a table frame back and uncounts it. The caller has flushed.
void free_table(PageTable& pt, Page* table);

// The last-level entry of `lin`, allocating missing tables with `gfp`
// (installing each with a compare-and-swap, so concurrent callers agree).
// A top-level kernel entry made in the kernel's tree is copied into every
// tree on pgd_list. Returns false when a table cannot be allocated.
bool get_or_alloc_entry(PageTable& pt, uint64_t lin, gfp_t gfp, char** entry);
// The last-level entry of `lin` when its tables exist, else null.
char* find_entry(const PageTable& pt, uint64_t lin);

// Reports misuse through the machine's warning sink ("WARNING: what: why").
void vm_warn(const Machine& m, const char* what, const std::string& why);

}  // namespace mmkit
