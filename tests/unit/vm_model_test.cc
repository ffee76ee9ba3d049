// Model-based randomised test of address spaces: seeded sequences of
// mmap / munmap / mprotect / mremap / brk / fork / exit / read / write over
// up to four processes, alternating the thread between CPU 0 and CPU 1.
// The reference model keeps, per process, each mapped page's protection
// and bytes (a page never written reads as zeros); every read must equal
// the model, so copy-on-write isolation after fork is checked byte for
// byte. check() runs on every address space after every step; at the end
// every process exits and the page allocator's check(), NR_PAGETABLE,
// NR_ANON_PAGES, Committed_AS and the free-page count must be back where
// they started. MMKIT_SEED=<n> replays a run; MMKIT_STEPS=<n> sets its length.
//
// The swap variant runs the same sequences with the processes in a memory
// cgroup whose memory.max follows a quarter of the working set (the pages
// holding data, over all processes), so most of it lives in two swap areas;
// every 150 steps one area is switched off (its pages come home or it stays
// on, as swapoff decides) and on again. The LRU and swap checks run after
// every step too, and at the end no slot is left in use.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "../support/swap_settle.h"
#include "memcg/lru.h"
#include "memcg/memcontrol.h"
#include "page_alloc/page_alloc.h"
#include "reclaim/reclaim.h"
#include "slab/slab.h"
#include "swap/swap.h"
#include "vm/mm.h"
#include "vm/overcommit.h"
#include "vm/process.h"

namespace mmkit {
namespace {

constexpr uint64_t kPage = PAGE_SIZE;
constexpr uint64_t kWindow = 0x10000000;  // MAP_FIXED targets: 256 pages from here
constexpr uint64_t kWindowPages = 256;

uint64_t env_or(const char* name, uint64_t dflt) {
  const char* s = std::getenv(name);
  return s ? std::strtoull(s, nullptr, 0) : dflt;
}

using Bytes = std::shared_ptr<std::vector<uint8_t>>;  // null: all zeros
struct PageModel {
  int prot = PROT_NONE;
  Bytes data;
};
using Space = std::map<uint64_t, PageModel>;  // page address -> model

struct ModelProc {
  Process* p;
  Space space;
};

bool readable(int prot) {
  return prot & (PROT_READ | PROT_WRITE);
}

// The swap variant's pressure: a memory cgroup and the swap areas.
struct SwapPressure {
  MemCgroup* cg = nullptr;
  std::vector<std::string> areas;  // host files, switched off and on in turn
};

class ModelRun {
 public:
  ModelRun(Machine& m, uint64_t seed, SwapPressure* swap = nullptr)
      : m_(m), rng_(seed), swap_(swap) {}

  void run(int steps) {
    Process* first = nullptr;
    ASSERT_EQ(spawn(m_, "model", &first), 0);
    if (swap_) first->mm->memcg = swap_->cg;
    procs_.push_back({first, stack_model(first)});
    for (step_ = 0; step_ < steps; ++step_) {
      cpu_.reset();
      cpu_.emplace(CpuScope::bind(m_, step_ & 1));
      ASSERT_TRUE(cpu_->ok());
      if (swap_) follow_working_set();
      if (swap_ && step_ % 150 == 149) swap_off_and_on();
      one_step();
      if (testing::Test::HasFatalFailure() || testing::Test::HasNonfatalFailure()) return;
      for (auto& mp : procs_)
        ASSERT_EQ(check(mp.p->mm), "") << "step " << step_ << " pid " << mp.p->pid;
      if (swap_) {
        lru_add_drain_all(m_);
        ASSERT_EQ(lru_check(m_), "") << "step " << step_;
        ASSERT_EQ(swap_check(m_), "") << "step " << step_;
        ASSERT_EQ(m_.sum_event(VmEvent::OOM_KILL), 0u) << "step " << step_;
      }
    }
    cpu_.reset();
    for (auto& mp : procs_) exit_process(mp.p);
    procs_.clear();
  }

 private:
  uint64_t rnd(uint64_t n) { return n ? rng_() % n : 0; }

  // memory.max = a quarter of the pages that hold data (a page shared by
  // fork counts once), at least 16 pages.
  void follow_working_set() {
    std::set<const std::vector<uint8_t>*> pages;
    for (auto& mp : procs_)
      for (auto& [addr, pm] : mp.space)
        if (pm.data) pages.insert(pm.data.get());
    mem_cgroup_set_max(swap_->cg, std::max<uint64_t>(pages.size() / 4, 16) * kPage);
  }

  // swapoff of one area (every page comes home, or -ENOMEM and nothing
  // changed), then swapon of it again.
  void swap_off_and_on() {
    const std::string& path = swap_->areas[(step_ / 150) % swap_->areas.size()];
    const int rc = swapoff(m_, path);
    ASSERT_TRUE(rc == 0 || rc == -ENOMEM) << "step " << step_ << " swapoff: " << rc;
    ASSERT_EQ(swap_check(m_), "") << "step " << step_;
    if (rc != 0) return;
    ++swapoffs_;
    std::string err;
    ASSERT_EQ(swapon(m_, SwapOptions{.path = path, .size = 0, .priority = std::nullopt}, &err), 0)
        << err;
  }

  Space stack_model(Process* p) {
    Space s;
    const uint64_t top = p->mm->layout.stack_top;
    for (uint64_t a = top - kInitialStack; a < top; a += kPage)
      s[a] = {PROT_READ | PROT_WRITE, nullptr};
    return s;
  }

  int random_prot() {
    static constexpr int kProts[] = {PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ,
                                     PROT_NONE};
    return kProts[rnd(4)];
  }

  // An address to operate on: mostly inside something mapped, sometimes in
  // the MAP_FIXED window.
  uint64_t pick_addr(ModelProc& mp) {
    if (mp.space.empty() || rnd(4) == 0) return kWindow + rnd(kWindowPages) * kPage;
    auto it = mp.space.begin();
    std::advance(it, rnd(mp.space.size()));
    return it->first;
  }

  void one_step() {
    ModelProc& mp = procs_[rnd(procs_.size())];
    switch (rnd(20)) {
      case 0:
      case 1:
        return do_mmap_op(mp);
      case 2:
        return do_munmap_op(mp);
      case 3:
        return do_mprotect_op(mp);
      case 4:
        return do_mremap_op(mp);
      case 5:
        return do_brk_op(mp);
      case 6:
        if (procs_.size() < 4) return do_fork(mp);
        return;
      case 7:
        if (procs_.size() > 1 && rnd(2) == 0) return do_exit(mp);
        return;
      case 8:
      case 9:
      case 10:
      case 11:
      case 12:
        return do_write(mp);
      default:
        return do_read(mp);
    }
  }

  void do_mmap_op(ModelProc& mp) {
    const uint64_t pages = 1 + rnd(16);
    const int prot = random_prot();
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    uint64_t addr = 0;
    if (rnd(2)) {
      flags |= MAP_FIXED;
      addr = kWindow + rnd(kWindowPages) * kPage;
    }
    if (rnd(8) == 0) flags |= MAP_POPULATE;
    const int64_t r = do_mmap(mp.p->mm, addr, pages * kPage, prot, flags);
    ASSERT_GT(r, 0) << "step " << step_ << " mmap";
    if (flags & MAP_FIXED) {
      ASSERT_EQ(static_cast<uint64_t>(r), addr);
    }
    for (uint64_t i = 0; i < pages; ++i) mp.space[r + i * kPage] = {prot, nullptr};
  }

  // The stack (and the room it may grow into) is left alone by munmap and
  // mremap: a hole below a GROWSDOWN VMA would be refilled by the next
  // fault there, which the model does not follow.
  bool near_stack(ModelProc& mp, uint64_t start, uint64_t end) {
    const uint64_t top = mp.p->mm->layout.stack_top;
    return end > top - kStackRlimit - stack_guard_gap && start < top;
  }

  void do_munmap_op(ModelProc& mp) {
    const uint64_t start = pick_addr(mp) - rnd(3) * kPage;
    const uint64_t pages = 1 + rnd(8);
    if (near_stack(mp, start, start + pages * kPage)) return;
    ASSERT_EQ(do_munmap(mp.p->mm, start, pages * kPage), 0);
    mp.space.erase(mp.space.lower_bound(start), mp.space.lower_bound(start + pages * kPage));
  }

  void do_mprotect_op(ModelProc& mp) {
    const uint64_t start = pick_addr(mp);
    const uint64_t pages = 1 + rnd(8);
    const int prot = random_prot();
    bool hole = false;
    for (uint64_t a = start; a < start + pages * kPage; a += kPage) {
      auto it = mp.space.find(a);
      if (it == mp.space.end()) {
        hole = true;
        break;
      }
      it->second.prot = prot;  // applied up to the first hole, as Linux does
    }
    ASSERT_EQ(do_mprotect(mp.p->mm, start, pages * kPage, prot), hole ? -ENOMEM : 0)
        << "step " << step_;
  }

  void do_mremap_op(ModelProc& mp) {
    MmStruct* mm = mp.p->mm;
    // A range inside one real VMA (the model does not know VMA boundaries).
    const uint64_t at = pick_addr(mp);
    VmArea* vma;
    {
      std::lock_guard g(mm->mmap_lock);
      vma = find_vma(mm, at);
      if (!vma || vma->vm_start > at || (vma->vm_flags & VM_GROWSDOWN)) return;
    }
    const uint64_t vstart = vma->vm_start, vpages = vma->pages();
    const uint64_t off = rnd(vpages);
    const uint64_t addr = vstart + off * kPage;
    const uint64_t old_pages = 1 + rnd(vpages - off);
    const uint64_t new_pages = 1 + rnd(12);
    if (near_stack(mp, addr, addr + old_pages * kPage)) return;
    const int prot = mp.space.at(addr).prot;
    int flags = MREMAP_MAYMOVE;
    uint64_t target = 0;
    if (rnd(3) == 0) {
      flags |= MREMAP_FIXED;
      target = kWindow + rnd(kWindowPages) * kPage;
      if (addr + old_pages * kPage > target && target + new_pages * kPage > addr) return;
    }
    const int64_t r = do_mremap(mm, addr, old_pages * kPage, new_pages * kPage, flags, target);
    ASSERT_GT(r, 0) << "step " << step_ << " mremap";
    if (flags & MREMAP_FIXED) {
      ASSERT_EQ(static_cast<uint64_t>(r), target);
      mp.space.erase(mp.space.lower_bound(target),
                     mp.space.lower_bound(target + new_pages * kPage));
    }
    std::vector<std::pair<uint64_t, PageModel>> moved;
    for (uint64_t i = 0; i < std::min(old_pages, new_pages); ++i)
      moved.emplace_back(i, mp.space.at(addr + i * kPage));
    mp.space.erase(mp.space.lower_bound(addr), mp.space.lower_bound(addr + old_pages * kPage));
    for (auto& [i, pm] : moved) mp.space[r + i * kPage] = pm;
    for (uint64_t i = old_pages; i < new_pages; ++i) mp.space[r + i * kPage] = {prot, nullptr};
  }

  void do_brk_op(ModelProc& mp) {
    MmStruct* mm = mp.p->mm;
    const uint64_t old = mm->brk;
    const uint64_t want = mm->start_brk + rnd(16 * kPage);
    const uint64_t oldp = (old + kPage - 1) & ~(kPage - 1),
                   newp = (want + kPage - 1) & ~(kPage - 1);
    // Growth stops at a mapping within a page of the new break (mremap may
    // have grown one into the heap's way).
    auto in_way = mp.space.lower_bound(oldp);
    if (newp > oldp && in_way != mp.space.end() && in_way->first < newp + kPage) {
      ASSERT_EQ(do_brk(mm, want), old) << "step " << step_;
      return;
    }
    ASSERT_EQ(do_brk(mm, want), want) << "step " << step_;
    if (newp < oldp) mp.space.erase(mp.space.lower_bound(newp), mp.space.lower_bound(oldp));
    for (uint64_t a = oldp; a < newp; a += kPage) mp.space[a] = {PROT_READ | PROT_WRITE, nullptr};
  }

  void do_fork(ModelProc& mp) {  // the child inherits the memory cgroup
    Process* child = nullptr;
    ASSERT_EQ(fork_process(mp.p, &child), 0);
    procs_.push_back({child, mp.space});  // shares Bytes: the model copies on write too
  }

  void do_exit(ModelProc& mp) {
    exit_process(mp.p);
    procs_.erase(procs_.begin() + (&mp - procs_.data()));
  }

  // A range that may cross a page boundary and run into unmapped pages.
  std::pair<uint64_t, uint64_t> pick_range(ModelProc& mp) {
    const uint64_t start = pick_addr(mp) + rnd(kPage);
    return {start, 1 + rnd(2 * kPage)};
  }

  void do_write(ModelProc& mp) {
    auto [start, len] = pick_range(mp);
    std::vector<uint8_t> buf(len);
    for (auto& b : buf) b = static_cast<uint8_t>(rng_());
    // Expected: written page by page up to the first page that refuses.
    uint64_t done = 0;
    uint64_t fault_at = 0;
    while (done < len) {
      const uint64_t a = start + done;
      const uint64_t page = a & ~(kPage - 1);
      const uint64_t n = std::min(len - done, page + kPage - a);
      auto it = mp.space.find(page);
      if (it == mp.space.end() || !(it->second.prot & PROT_WRITE)) {
        fault_at = a;
        break;
      }
      PageModel& pm = it->second;
      if (!pm.data)
        pm.data = std::make_shared<std::vector<uint8_t>>(kPage, 0);
      else if (pm.data.use_count() > 1)
        pm.data = std::make_shared<std::vector<uint8_t>>(*pm.data);
      std::copy(buf.begin() + done, buf.begin() + done + n, pm.data->begin() + (a - page));
      done += n;
    }
    const FaultResult f = access_write(mp.p->mm, start, buf.data(), len);
    if (done == len) {
      ASSERT_TRUE(f.ok()) << "step " << step_ << " write at " << std::hex << start << ": "
                          << f.reason;
    } else {
      ASSERT_FALSE(f.ok()) << "step " << step_ << " write at " << std::hex << start;
      ASSERT_EQ(f.addr, fault_at) << "step " << step_;
      ASSERT_EQ(f.status, FaultStatus::kSigsegv);
      ASSERT_EQ(f.si_code, mp.space.count(fault_at & ~(kPage - 1)) ? SEGV_ACCERR : SEGV_MAPERR);
    }
  }

  void do_read(ModelProc& mp) {
    auto [start, len] = pick_range(mp);
    std::vector<uint8_t> got(len, 0xee);
    const FaultResult f = access_read(mp.p->mm, start, got.data(), len);
    uint64_t done = 0;
    while (done < len) {
      const uint64_t a = start + done;
      const uint64_t page = a & ~(kPage - 1);
      const uint64_t n = std::min(len - done, page + kPage - a);
      auto it = mp.space.find(page);
      if (it == mp.space.end() || !readable(it->second.prot)) {
        ASSERT_FALSE(f.ok()) << "step " << step_ << " read at " << std::hex << a;
        ASSERT_EQ(f.addr, a) << "step " << step_;
        return;
      }
      for (uint64_t i = 0; i < n; ++i) {
        const uint8_t want = it->second.data ? (*it->second.data)[a - page + i] : 0;
        ASSERT_EQ(got[done + i], want)
            << "step " << step_ << " pid " << mp.p->pid << " byte at " << std::hex << a + i;
      }
      done += n;
    }
    ASSERT_TRUE(f.ok()) << "step " << step_ << " read at " << std::hex << start << ": " << f.reason;
  }

  Machine& m_;
  std::mt19937_64 rng_;
  SwapPressure* swap_;
  std::vector<ModelProc> procs_;
  std::optional<Result<CpuScope>> cpu_;
  int step_ = 0;

 public:
  int swapoffs_ = 0;
};

// The same run on each paging format: x86-64 4-level, LA57, i386.
struct ModelMachine {
  const char* name;
  Arch arch;
  unsigned paging_levels;  // 0: the arch's default
  bool swap = false;       // memory.max a quarter of the working set, two swap areas
};

class VmModel : public testing::TestWithParam<ModelMachine> {};

TEST_P(VmModel, RandomOperationsMatchTheModel) {
  const uint64_t seed = env_or("MMKIT_SEED", std::random_device{}());
  const int steps = static_cast<int>(env_or("MMKIT_STEPS", 3000));
  std::printf("vm_model: MMKIT_SEED=%llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("MMKIT_SEED=" + std::to_string(seed));
  RecordProperty("seed", std::to_string(seed));
  MachineConfig c;
  c.cpus = 2;
  c.arch = GetParam().arch;
  if (GetParam().paging_levels) c.paging_levels = GetParam().paging_levels;
  c.nodes = {NodeConfig{.memory = 128ull << 20}};
  SwapPressure swap;
  const std::string files = testing::TempDir() + "vm_model_swap_" + std::to_string(getpid());
  if (GetParam().swap) {
    for (int i = 0; i < 2; ++i) {
      swap.areas.push_back(files + "_" + std::to_string(i));
      c.swap_areas.push_back({.file = swap.areas.back(), .size = 16ull << 20, .priority = {}});
    }
  }
  auto booted = GetParam().swap ? boot_with_reclaim(c) : boot(c);
  ASSERT_TRUE(booted.ok()) << booted.error().message;
  Machine& m = **booted;
  struct Unlink {  // the area files go with the test; the open areas keep theirs
    const std::vector<std::string>& files;
    ~Unlink() {
      for (const auto& f : files) unlink(f.c_str());
    }
  } unlink_areas{swap.areas};
  if (GetParam().swap) {
    swap.cg = mem_cgroup_create(m, "model", kMemMax);
    ASSERT_TRUE(swap.cg);
  }
  {
    Process* warm = nullptr;  // the zero page and the VMA cache exist from here on
    ASSERT_EQ(spawn(m, "warm", &warm), 0);
    exit_process(warm);
  }
  for (KmemCache* s : slab_caches(m)) kmem_cache_shrink(s);
  drain_all_pages(m);
  const uint64_t free0 = nr_free_pages(m);
  const int64_t tables0 = m.node_stat_sum(NodeStat::NR_PAGETABLE);

  ModelRun model(m, seed, GetParam().swap ? &swap : nullptr);
  model.run(steps);
  if (HasFailure()) return;
  if (GetParam().swap) {
    // The pressure was real: pages went out and came back, areas went off.
    EXPECT_GT(m.sum_event(VmEvent::PSWPOUT), 0u);
    EXPECT_GT(m.sum_event(VmEvent::PSWPIN), 0u);
    EXPECT_GT(model.swapoffs_, 0);
    // Slots only the swap cache holds are dropped (reclaim would, at its
    // next scan); then none is in use.
    test::drop_swap_cache_only_slots(m);
    EXPECT_EQ(swap_free_pages(m), swap_total_pages(m));
    EXPECT_EQ(swap_check(m), "");
    EXPECT_EQ(lru_check(m), "");
  }

  for (KmemCache* s : slab_caches(m)) kmem_cache_shrink(s);
  lru_add_drain_all(m);  // the per-CPU LRU batches hold their pages, as pcp lists do
  drain_all_pages(m);
  EXPECT_EQ(check(m), "");
  EXPECT_EQ(m.node_stat_sum(NodeStat::NR_PAGETABLE), tables0);
  EXPECT_EQ(m.node_stat_sum(NodeStat::NR_ANON_PAGES), 0);
  EXPECT_EQ(vm_memory_committed(m), 0u);
  EXPECT_EQ(nr_free_pages(m), free0);
}

INSTANTIATE_TEST_SUITE_P(Vm, VmModel,
                         testing::Values(ModelMachine{"x86_64", Arch::x86_64, 0},
                                         ModelMachine{"la57", Arch::x86_64, 5},
                                         ModelMachine{"i386", Arch::i386, 0},
                                         ModelMachine{"x86_64_swap", Arch::x86_64, 0, true},
                                         ModelMachine{"i386_swap", Arch::i386, 0, true}),
                         [](const testing::TestParamInfo<ModelMachine>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace mmkit
