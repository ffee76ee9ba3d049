// Swap areas and slots: swapon with mkswap's header, slot clusters, the
// swap_map counts, swapoff (mm/swapfile.c). See swap.h.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "memcg/lru.h"
#include "memcg/memcg_state.h"
#include "memcg/workingset.h"
#include "page_alloc/page_alloc.h"
#include "swap/swap_state.h"

namespace mmkit {

SwapInfo::~SwapInfo() {
  if (fd >= 0) close(fd);
  if (temporary && !path.empty()) unlink(path.c_str());
}

SwapState::SwapState(Machine& machine) : m(machine), zswap(zswap_create(machine)) {}
SwapState::~SwapState() {
  delete avail.load();
}

SwapState& swap_state(Machine& m) {
  return *static_cast<SwapState*>(
      m.ensure_layer_state(Layer::kSwap, [&m] { return std::make_unique<SwapState>(m); }));
}

SwapInfo* swap_info(const Machine& m, SwpEntry e) {
  const SwapState* st = swap_state_if(m);
  const unsigned type = swp_type(e);
  if (!st || type >= MAX_SWAPFILES) return nullptr;
  SwapInfo* si = st->info[type].load(std::memory_order_acquire);
  return si && swp_offset(e) > 0 && swp_offset(e) < si->max ? si : nullptr;
}

namespace {

// union swap_header (include/linux/swap.h): bootbits, then info at 1024.
struct SwapHeaderInfo {
  uint32_t version;
  uint32_t last_page;
  uint32_t nr_badpages;
  unsigned char sws_uuid[16];
  char sws_volume[16];
  uint32_t padding[117];
};
static_assert(sizeof(SwapHeaderInfo) == 4 * 3 + 32 + 117 * 4);

// mkswap: page 0 holds the header and, in its last ten bytes, the magic.
bool write_swap_header(int fd, uint64_t max, unsigned salt) {
  char page[PAGE_SIZE] = {};
  SwapHeaderInfo info{};
  info.version = 1;
  info.last_page = static_cast<uint32_t>(max - 1);
  for (unsigned i = 0; i < 16; ++i)  // a version-4 UUID from the salt
    info.sws_uuid[i] = static_cast<unsigned char>((salt * 2654435761u) >> (i % 4 * 8) ^ i * 37);
  info.sws_uuid[6] = (info.sws_uuid[6] & 0x0f) | 0x40;
  info.sws_uuid[8] = (info.sws_uuid[8] & 0x3f) | 0x80;
  std::memcpy(page + 1024, &info, sizeof(info));
  std::memcpy(page + PAGE_SIZE - 10, "SWAPSPACE2", 10);
  return pwrite(fd, page, PAGE_SIZE, 0) == static_cast<ssize_t>(PAGE_SIZE);
}

void publish_avail(SwapState& st) {
  auto v = std::make_unique<std::vector<SwapInfo*>>(st.by_prio);
  std::vector<SwapInfo*>* old = st.avail.exchange(v.release(), std::memory_order_acq_rel);
  if (old) st.old_avail.emplace_back(old);  // readers may still hold it
}

constexpr uint8_t kOnFreeList = 1, kOnNonfullList = 2;

// The stack cluster c belongs on by its count: kOnFreeList when wholly
// free, kOnNonfullList when partly used, 0 when full.
uint8_t cluster_belongs(const SwapInfo& si, uint64_t c) {
  const uint16_t used = si.cluster_count[c];
  if (used == 0) return kOnFreeList;
  return used < si.cluster_slots(c) ? kOnNonfullList : 0;
}

// Puts cluster c on the stack it belongs on, unless it is there already.
void list_cluster(SwapInfo& si, uint64_t c) {
  const uint8_t bit = cluster_belongs(si, c);
  if (!bit || (si.cluster_listed[c] & bit)) return;
  si.cluster_listed[c] |= bit;
  (bit == kOnFreeList ? si.free_clusters : si.nonfull_clusters).push_back(static_cast<uint32_t>(c));
}

// A slot's count went to zero with no cache: it is free again.
void slot_freed(SwapState& st, SwapInfo& si, uint64_t off) {
  mem_cgroup_swap_charge(st.m, si.memcg_id[off].exchange(0, std::memory_order_relaxed), -1);
  const uint64_t c = off / SWAPFILE_CLUSTER;
  si.cache[off].store(0, std::memory_order_relaxed);  // its shadow, if any, goes with it
  zswap_invalidate(st, si, off);                      // and its zswap entry
  --si.cluster_count[c];
  list_cluster(si, c);
  si.inuse_pages.fetch_sub(1, std::memory_order_relaxed);
  // swap_range_free(): an area being switched off is not counted in
  // nr_swap_pages (swapoff took its free slots out under this lock).
  if (si.writeok.load(std::memory_order_relaxed))
    st.nr_free.fetch_add(1, std::memory_order_relaxed);
}

unsigned map_count(const SwapInfo& si, uint64_t off) {
  const uint8_t v = si.swap_map[off];
  unsigned n = v & ~(SWAP_HAS_CACHE | COUNT_CONTINUED);
  if (v & COUNT_CONTINUED) n += si.continued.at(off);
  return n;
}

// The first free slot in [from, end) of the map, or 0.
uint64_t free_slot_in(const SwapInfo& si, uint64_t from, uint64_t end) {
  if (from >= end) return 0;
  const void* p = std::memchr(&si.swap_map[from], 0, end - from);
  return p ? static_cast<uint64_t>(static_cast<const uint8_t*>(p) - &si.swap_map[0]) : 0;
}

// Pops entries that no longer belong on a stack (lazy deletion) and
// returns the first free slot of the cluster on top that does, or 0.
uint64_t free_slot_from(SwapInfo& si, std::vector<uint32_t>& stack, uint8_t bit) {
  while (!stack.empty()) {
    const uint32_t c = stack.back();
    if (cluster_belongs(si, c) == bit)
      return free_slot_in(si, uint64_t{c} * SWAPFILE_CLUSTER,
                          uint64_t{c} * SWAPFILE_CLUSTER + si.cluster_slots(c));
    stack.pop_back();
    si.cluster_listed[c] &= static_cast<uint8_t>(~bit);
    list_cluster(si, c);  // onto the other stack if it belongs there now
  }
  return 0;
}

// scan_swap_map_slots(), one slot: the rest of the CPU's cluster first,
// then a wholly free cluster (which becomes the CPU's), then a partly used
// one. Each step is a bounded scan of one cluster's map.
uint64_t alloc_slot(SwapState& st, SwapInfo& si) {
  CpuState* cpu = this_cpu(st.m);
  uint64_t& next = si.percpu_next[cpu ? cpu->id : st.m.nr_cpus()];
  uint64_t off = 0;
  if (next) {
    const uint64_t c = next / SWAPFILE_CLUSTER;
    off = free_slot_in(si, next, c * SWAPFILE_CLUSTER + si.cluster_slots(c));
  }
  if (!off) off = free_slot_from(si, si.free_clusters, kOnFreeList);
  if (!off) off = free_slot_from(si, si.nonfull_clusters, kOnNonfullList);
  if (!off) return 0;
  next = (off + 1) % SWAPFILE_CLUSTER ? off + 1 : 0;
  if (next >= si.max) next = 0;
  const uint64_t c = off / SWAPFILE_CLUSTER;
  ++si.cluster_count[c];
  list_cluster(si, c);  // now partly used, unless full
  si.inuse_pages.fetch_add(1, std::memory_order_relaxed);
  st.nr_free.fetch_sub(1, std::memory_order_relaxed);
  return off;
}

std::string make_temp_swap(std::string* err) {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/mmkit-swap-XXXXXX";
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) {
    *err = fmt::format("cannot create a temporary swap file: {}", std::strerror(errno));
    return "";
  }
  close(fd);
  return tmpl;
}

}  // namespace

int swapon(Machine& m, const SwapOptions& opt, std::string* err, unsigned* type_out) {
  SwapState& st = swap_state(m);
  std::lock_guard<std::mutex> g(st.swap_lock);
  unsigned type = 0;
  while (type < MAX_SWAPFILES && st.info[type].load()) ++type;
  if (type == MAX_SWAPFILES) {
    *err = "too many swap areas (MAX_SWAPFILES is 32)";
    return -EPERM;
  }
  auto si = std::make_unique<SwapInfo>();
  si->type = type;
  si->temporary = opt.path.empty();
  si->path = si->temporary ? make_temp_swap(err) : opt.path;
  if (si->path.empty()) return -EIO;
  for (SwapInfo* other : st.by_prio)
    if (other->path == si->path) {
      *err = fmt::format("{}: already a swap area", si->path);
      si->temporary = false;
      return -EBUSY;
    }
  struct stat sb;
  if (!si->temporary && stat(si->path.c_str(), &sb) != 0) {
    if (!opt.size) {
      *err = fmt::format("{}: no such file (give a size to create it)", si->path);
      return -ENOENT;
    }
    si->temporary = true;  // made here: removed again if the swapon fails
  }
  si->fd = open(si->path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (si->fd < 0) {
    *err = fmt::format("{}: {}", si->path, std::strerror(errno));
    return -errno;
  }
  // The same file under another name (a link, "./", a symlink) is the same
  // area twice: swapon's EBUSY (claim_swapfile()), not two areas that
  // overwrite each other's slots.
  if (fstat(si->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    *err = fmt::format("{}: not a regular file", si->path);
    return -EINVAL;
  }
  si->dev = static_cast<uint64_t>(sb.st_dev);
  si->ino = static_cast<uint64_t>(sb.st_ino);
  for (SwapInfo* other : st.by_prio)
    if (other->dev == si->dev && other->ino == si->ino) {
      *err = fmt::format("{}: already a swap area (as {})", si->path, other->path);
      si->temporary = false;
      return -EBUSY;
    }
  uint64_t bytes = opt.size;
  if (!bytes) {
    fstat(si->fd, &sb);
    bytes = static_cast<uint64_t>(sb.st_size);
  }
  si->max = bytes >> PAGE_SHIFT;
  const uint64_t limit = m.arch() == Arch::i386 ? kMaxSwapOffset32 : kMaxSwapOffset64;
  if (si->max < 2) {
    *err =
        fmt::format("{}: a swap area needs at least two pages (the header and a slot)", si->path);
    return -EINVAL;
  }
  if (si->max - 1 > limit) {
    *err = fmt::format("{}: {} pages is more than a swap entry of this arch can address ({})",
                       si->path, si->max - 1, limit);
    return -EINVAL;
  }
  if (ftruncate(si->fd, static_cast<off_t>(si->max << PAGE_SHIFT)) != 0 ||
      !write_swap_header(si->fd, si->max, type + 1)) {
    *err = fmt::format("{}: cannot write the swap header: {}", si->path, std::strerror(errno));
    return -EIO;
  }
  si->temporary = opt.path.empty();
  si->pages = si->max - 1;
  si->prio = opt.priority ? *opt.priority : --st.least_priority;  // -2, -3, ... (mm/swapfile.c)
  si->swap_map = std::make_unique<uint8_t[]>(si->max);
  si->swap_map[0] = SWAP_MAP_MAX;  // the header is never a slot (SWAP_MAP_BAD's role)
  si->cluster_count.assign(si->nr_clusters(), 0);
  si->cluster_count[0] = 1;
  si->cluster_listed.assign(si->nr_clusters(), 0);
  for (uint64_t c = si->nr_clusters(); c-- > 0;) list_cluster(*si, c);  // cluster 0 is nonfull
  si->percpu_next.assign(m.nr_cpus() + 1, 0);
  si->cache = std::make_unique<std::atomic<uintptr_t>[]>(si->max);
  si->memcg_id = std::make_unique<std::atomic<uint16_t>[]>(si->max);
  zswap_swapon(st, *si);
  SwapInfo* raw = si.get();
  st.owned.push_back(std::move(si));
  st.by_prio.push_back(raw);
  std::stable_sort(st.by_prio.begin(), st.by_prio.end(),
                   [](SwapInfo* a, SwapInfo* b) { return a->prio > b->prio; });
  st.info[type].store(raw, std::memory_order_release);
  st.total.fetch_add(static_cast<int64_t>(raw->pages));
  st.nr_free.fetch_add(static_cast<int64_t>(raw->pages));
  publish_avail(st);
  m.printk(fmt::format("Adding {}k swap on {}.  Priority:{} extents:1 across:{}k FS",
                       raw->pages * 4, raw->path, raw->prio, raw->pages * 4));
  if (type_out) *type_out = type;
  return 0;
}

int swapoff(Machine& m, std::string_view path) {
  SwapState& st = swap_state(m);
  std::lock_guard<std::mutex> g(st.swap_lock);
  auto it = std::find_if(st.by_prio.begin(), st.by_prio.end(),
                         [&](SwapInfo* si) { return si->path == path; });
  if (it == st.by_prio.end()) return -EINVAL;
  SwapInfo* si = *it;
  // security_vm_enough_memory_mm(): the area's pages must fit in what is
  // free, in memory or in the other areas, or nothing is tried.
  const uint64_t inuse = si->inuse_pages.load();
  const uint64_t room =
      nr_free_pages(m) + static_cast<uint64_t>(std::max<int64_t>(
                             st.nr_free.load() - static_cast<int64_t>(si->pages - inuse), 0));
  if (inuse > room) return -ENOMEM;
  // Stop new allocations from the area, then bring every page back.
  st.by_prio.erase(it);
  publish_avail(st);
  {
    std::lock_guard<std::mutex> ag(si->lock);  // against slot_freed's test of writeok
    si->writeok.store(false);
    st.nr_free.fetch_sub(static_cast<int64_t>(si->pages - si->inuse_pages.load()));
  }
  // try_to_unuse(): page tables first, then the pages left only in the
  // swap cache (readahead, clean copies). Reclaim that took a slot of the
  // area just before it was closed may unmap a page into an address space
  // already walked, so the walk is repeated while slots remain and the
  // last round freed some (Linux's "goto retry").
  int rc = 0;
  uint64_t before = si->inuse_pages.load() + 1;
  while (rc == 0 && si->inuse_pages.load() != 0 && si->inuse_pages.load() < before) {
    before = si->inuse_pages.load();
    tls_no_oom_kill = true;  // a failed swapoff gives up; it kills nobody
    rc = st.unuse ? st.unuse(m, si->type) : 0;
    tls_no_oom_kill = false;
    for (uint64_t off = 1; off < si->max && rc == 0; ++off) {
      Page* page = lookup_swap_cache(m, swp_entry(si->type, off));
      if (!page) continue;
      while (page->test_and_set(PG_locked)) std::this_thread::yield();
      if (page->test(PG_swapcache) && swap_count(m, swp_entry(si->type, off)) == 0)
        delete_from_swap_cache(m, page);
      page->clear_atomic(PG_locked);
      put_page(m, page);
    }
  }
  if (rc == 0 && si->inuse_pages.load() != 0) rc = -ENOMEM;
  if (rc != 0) {
    // try_to_unuse() failed: the area goes back on, as it was.
    {
      std::lock_guard<std::mutex> ag(si->lock);
      si->writeok.store(true);
      st.nr_free.fetch_add(static_cast<int64_t>(si->pages - si->inuse_pages.load()));
    }
    st.by_prio.push_back(si);
    std::stable_sort(st.by_prio.begin(), st.by_prio.end(),
                     [](SwapInfo* a, SwapInfo* b) { return a->prio > b->prio; });
    publish_avail(st);
    return rc;
  }
  st.total.fetch_sub(static_cast<int64_t>(si->pages));
  st.info[si->type].store(nullptr, std::memory_order_release);
  // The SwapInfo itself stays allocated (owned) until the machine goes:
  // a racing lookup may still hold the pointer.
  if (si->fd >= 0) close(si->fd);
  si->fd = -1;
  if (si->temporary) unlink(si->path.c_str());
  si->temporary = false;
  return 0;
}

std::vector<SwapAreaInfo> swap_areas(const Machine& m) {
  std::vector<SwapAreaInfo> out;
  const SwapState* st = swap_state_if(m);
  if (!st) return out;
  // In type order, as swap_show() walks swap_info[].
  for (const auto& slot : st->info)
    if (const SwapInfo* si = slot.load(std::memory_order_acquire))
      out.push_back({si->path, si->pages, si->inuse_pages.load(), si->prio, si->temporary});
  return out;
}

uint64_t swap_total_pages(const Machine& m) {
  const SwapState* st = swap_state_if(m);
  return st ? static_cast<uint64_t>(std::max<int64_t>(st->total.load(), 0)) : 0;
}
uint64_t swap_free_pages(const Machine& m) {
  const SwapState* st = swap_state_if(m);
  return st ? static_cast<uint64_t>(std::max<int64_t>(st->nr_free.load(), 0)) : 0;
}
bool swap_layer_active(const Machine& m) {
  return swap_state_if(m) != nullptr;
}

bool swap_file_active(const Machine& m, uint64_t dev, uint64_t ino) {
  SwapState* st = swap_state_if(m);
  if (!st) return false;
  std::lock_guard<std::mutex> g(st->swap_lock);
  for (const SwapInfo* si : st->by_prio)
    if (si->dev == dev && si->ino == ino) return true;
  return false;
}

bool mem_cgroup_swap_full(Machine& m, const Page* page) {
  if (vm_swap_full(m)) return true;
  const MemCgroup* cg = page_memcg(m, page);
  const uint64_t max = cg->swap_max.load(std::memory_order_relaxed);
  if (cg->is_root() || max == kMemMax) return false;
  return static_cast<uint64_t>(std::max<int64_t>(cg->swap_usage.load(), 0)) * 2 >= max;
}

uint64_t mem_cgroup_get_nr_swap_pages(const Machine& m, const MemCgroup* cg) {
  const uint64_t free = swap_free_pages(m);
  return cg ? std::min(free, mem_cgroup_swap_headroom(cg)) : free;
}

SwpEntry get_swap_page(Machine& m, uint16_t memcg_id) {
  SwapState& st = swap_state(m);
  const std::vector<SwapInfo*>* v = st.avail.load(std::memory_order_acquire);
  if (!v || st.nr_free.load(std::memory_order_relaxed) <= 0) {
    mem_cgroup_swap_fail(m, memcg_id);
    return {};
  }
  // folio_alloc_swap()'s mem_cgroup_try_charge_swap(), taken first here so
  // that a slot is never handed out and taken back.
  if (!mem_cgroup_try_charge_swap(m, memcg_id)) return {};
  // Highest priority first. Areas of one priority take turns, a cluster's
  // worth of slots each: Linux requeues an area behind its equals after
  // each allocation (plist_requeue), and its per-CPU clusters make that
  // about a cluster at a time, so swap-out keeps runs that readahead reads.
  const uint64_t turn = st.allocs.fetch_add(1, std::memory_order_relaxed) / SWAPFILE_CLUSTER;
  for (size_t i = 0; i < v->size();) {
    size_t end = i;
    while (end < v->size() && (*v)[end]->prio == (*v)[i]->prio) ++end;
    const size_t n = end - i;
    for (size_t k = 0; k < n; ++k) {
      SwapInfo* si = (*v)[i + (turn + k) % n];
      if (!si->writeok.load(std::memory_order_relaxed)) continue;
      std::lock_guard<std::mutex> g(si->lock);
      if (!si->writeok.load(std::memory_order_relaxed)) continue;  // swapoff began meanwhile
      if (si->inuse_pages.load(std::memory_order_relaxed) >= si->pages) continue;
      const uint64_t off = alloc_slot(st, *si);
      if (!off) continue;
      si->swap_map[off] = SWAP_HAS_CACHE;
      si->memcg_id[off].store(memcg_id, std::memory_order_relaxed);
      return swp_entry(si->type, off);
    }
    i = end;
  }
  mem_cgroup_swap_charge(m, memcg_id, -1);
  mem_cgroup_swap_fail(m, memcg_id);
  return {};
}

bool swap_duplicate(Machine& m, SwpEntry e) {
  SwapInfo* si = swap_info(m, e);
  if (!si) return false;
  const uint64_t off = swp_offset(e);
  std::lock_guard<std::mutex> g(si->lock);
  uint8_t& v = si->swap_map[off];
  if (!v) return false;
  if (v & COUNT_CONTINUED) {
    ++si->continued[off];
  } else if ((v & ~SWAP_HAS_CACHE) == SWAP_MAP_MAX) {
    v |= COUNT_CONTINUED;
    si->continued[off] = 1;
  } else {
    ++v;
  }
  return true;
}

void swap_free(Machine& m, SwpEntry e) {
  SwapInfo* si = swap_info(m, e);
  if (!si) {
    m.warn(fmt::format("swap_free: Bad swap file entry {:#x}\n", e.val));
    return;
  }
  const uint64_t off = swp_offset(e);
  std::lock_guard<std::mutex> g(si->lock);
  uint8_t& v = si->swap_map[off];
  if (!(v & ~SWAP_HAS_CACHE)) {
    m.warn(fmt::format("swap_free: Unused swap offset entry {:#x}\n", e.val));
    return;
  }
  if (v & COUNT_CONTINUED) {
    if (--si->continued[off] == 0) {
      si->continued.erase(off);
      v &= ~COUNT_CONTINUED;
    }
  } else {
    --v;
  }
  if (v == 0) slot_freed(swap_state(m), *si, off);
}

unsigned swap_count(const Machine& m, SwpEntry e) {
  SwapInfo* si = swap_info(m, e);
  if (!si) return 0;
  std::lock_guard<std::mutex> g(si->lock);
  return map_count(*si, swp_offset(e));
}

uint16_t swap_cgroup_id(const Machine& m, SwpEntry e) {
  SwapInfo* si = swap_info(m, e);
  return si ? si->memcg_id[swp_offset(e)].load(std::memory_order_relaxed) : 0;
}

// Sets or clears SWAP_HAS_CACHE of a slot (swapcache_prepare / the clear
// after delete_from_swap_cache). Prepare: 0, -EEXIST (a page is cached or
// on its way), -ENOENT (the slot is free).
int swap_set_cache_bit(Machine& m, SwpEntry e, bool set) {
  SwapInfo* si = swap_info(m, e);
  if (!si) return -ENOENT;
  const uint64_t off = swp_offset(e);
  std::lock_guard<std::mutex> g(si->lock);
  uint8_t& v = si->swap_map[off];
  if (set) {
    if (v & SWAP_HAS_CACHE) return -EEXIST;
    if (!v) return -ENOENT;
    v |= SWAP_HAS_CACHE;
    return 0;
  }
  v &= ~SWAP_HAS_CACHE;
  if (v == 0) slot_freed(swap_state(m), *si, off);
  return 0;
}

void set_swap_unuse(Machine& m, std::function<int(Machine&, unsigned type)> unuse) {
  swap_state(m).unuse = std::move(unuse);
}

FaultAttr& swap_write_fault(Machine& m) {
  return swap_state(m).write_fault;
}

std::string swap_check(Machine& m) {
  SwapState* st = swap_state_if(m);
  if (!st) return "";
  int64_t free_total = 0;
  std::lock_guard<std::mutex> g(st->swap_lock);
  // Every area locked at once: nr_swap_pages changes only under one of
  // them (or the swap lock), so the totals are a snapshot while kswapd runs.
  std::vector<std::unique_lock<std::mutex>> held;
  for (SwapInfo* si : st->by_prio) held.emplace_back(si->lock);
  for (SwapInfo* si : st->by_prio) {
    uint64_t inuse = 0;
    std::vector<uint16_t> per_cluster(si->nr_clusters(), 0);
    per_cluster[0] = 1;
    for (uint64_t off = 1; off < si->max; ++off) {
      const uint8_t v = si->swap_map[off];
      const uintptr_t entry = si->cache[off].load();
      Page* cached = is_shadow(entry) ? nullptr : reinterpret_cast<Page*>(entry);
      if (v) {
        ++inuse;
        ++per_cluster[off / SWAPFILE_CLUSTER];
      }
      if (is_shadow(entry) && !v)
        return fmt::format("{} slot {}: a shadow entry in a free slot", si->path, off);
      if (cached) {
        if (!(v & SWAP_HAS_CACHE))
          return fmt::format("{} slot {}: a page in the swap cache without SWAP_HAS_CACHE",
                             si->path, off);
        if (!cached->test(PG_swapcache) || cached->private_once() != swp_entry(si->type, off).val)
          return fmt::format("{} slot {}: the cached page does not name the slot", si->path, off);
      }
      if ((v & COUNT_CONTINUED) && !si->continued.count(off))
        return fmt::format("{} slot {}: COUNT_CONTINUED without a continuation", si->path, off);
    }
    if (inuse != si->inuse_pages.load())
      return fmt::format("{}: {} slots in use but inuse_pages is {}", si->path, inuse,
                         si->inuse_pages.load());
    for (uint64_t c = 0; c < si->nr_clusters(); ++c)
      if (per_cluster[c] != si->cluster_count[c])
        return fmt::format("{} cluster {}: {} slots in use, counted {}", si->path, c,
                           per_cluster[c], si->cluster_count[c]);
    // Every cluster with a free slot is on the stack its count names (an
    // entry may be stale, but its flag is set and it appears once).
    std::vector<uint8_t> listed(si->nr_clusters(), 0);
    for (auto [stack, bit] : {std::pair{&si->free_clusters, kOnFreeList},
                              std::pair{&si->nonfull_clusters, kOnNonfullList}})
      for (uint32_t c : *stack) {
        if (listed[c] & bit)
          return fmt::format("{} cluster {}: twice on a cluster list", si->path, c);
        listed[c] |= bit;
      }
    for (uint64_t c = 0; c < si->nr_clusters(); ++c) {
      if (listed[c] != si->cluster_listed[c])
        return fmt::format("{} cluster {}: listed {} but flagged {}", si->path, c, listed[c],
                           si->cluster_listed[c]);
      if (const uint8_t bit = cluster_belongs(*si, c); bit && !(listed[c] & bit))
        return fmt::format("{} cluster {}: has free slots but is not on the {} list", si->path, c,
                           bit == kOnFreeList ? "free" : "nonfull");
    }
    free_total += static_cast<int64_t>(si->pages - inuse);
  }
  if (free_total != st->nr_free.load())
    return fmt::format("swap: {} free slots in the areas, nr_swap_pages {}", free_total,
                       st->nr_free.load());
  return "";
}

std::string swap_check_counts(
    Machine& m, const std::function<void(const std::function<void(SwpEntry)>& visit)>& walk) {
  SwapState* st = swap_state_if(m);
  if (!st) return "";
  std::unordered_map<uint64_t, unsigned> seen;
  walk([&](SwpEntry e) { ++seen[e.val]; });
  // Only the areas' own locks: the caller (vm's check) holds every mmap
  // lock, which swapoff takes under the swap lock. An area being switched
  // off is still in info[] and still counted.
  for (const auto& slot : st->info) {
    SwapInfo* si = slot.load(std::memory_order_acquire);
    if (!si) continue;
    std::unique_lock<std::mutex> ag(si->lock);
    for (uint64_t off = 1; off < si->max; ++off) {
      const unsigned want =
          seen.count(swp_entry(si->type, off).val) ? seen[swp_entry(si->type, off).val] : 0;
      if (map_count(*si, off) != want)
        return fmt::format("{} slot {}: swap_map counts {} references, page tables hold {}",
                           si->path, off, map_count(*si, off), want);
      // add_to_swap() sets SWAP_HAS_CACHE under the lock and inserts the
      // page under it again; delete_from_swap_cache() empties the slot
      // before it clears the bit. A reclaimer (kswapd) between the two is
      // given a moment to finish: only a state that lasts is a violation.
      auto cache_missing = [&] {
        const uintptr_t entry = si->cache[off].load();
        return (si->swap_map[off] & SWAP_HAS_CACHE) && (!entry || is_shadow(entry));
      };
      for (int wait = 0; wait < 200 && cache_missing(); ++wait) {
        ag.unlock();
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        ag.lock();
      }
      if (cache_missing())
        return fmt::format("{} slot {}: SWAP_HAS_CACHE but no page in the swap cache", si->path,
                           off);
    }
  }
  return "";
}

}  // namespace mmkit
