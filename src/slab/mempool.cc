// Memory pools (mm/mempool.c: Linux 6.1, plus the min_nr == 0 case of later kernels).
//
// Why a pool: code on the reclaim and writeback paths must make progress
// when the allocators are out of memory, or the memory it would free never
// gets freed. A pool keeps min_nr elements in reserve; an allocation tries
// the underlying allocator first (cheaply: no emergency reserves, no retry
// loop, no warning, no direct reclaim on the first round) and falls back to
// the reserve, and a blocking caller that finds the reserve empty sleeps
// until some element comes back through mempool_free(), which refills the
// reserve before it frees anything. Because every element eventually comes
// back, a blocking mempool_alloc() never fails.
//
// Linux sleeps on a wait queue with io_schedule_timeout(5*HZ) ("a
// workaround for some DM problems"); here it is a condition variable waited
// on in 5-second chunks, each followed by another try of the allocator. The
// pool lock is a std::mutex because the condition variable needs one; it is
// held only around the reserve array, never across the callbacks.
// curr_nr and min_nr are read without it by mempool_free's first test
// (Linux's READ_ONCE), so they are atomics written under the lock.
#include "slab/mempool.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "page_alloc/page_alloc.h"

namespace mmkit {

struct Mempool {
  Machine* machine = nullptr;
  std::mutex lock;
  std::condition_variable wait;  // waiters for an element (pool->wait)
  std::atomic<int> min_nr{0};    // written under lock
  std::atomic<int> curr_nr{0};   // written under lock
  void** elements = nullptr;     // kmalloc'ed on the machine, max(1, min_nr) slots; under lock
  mempool_alloc_t alloc = nullptr;
  mempool_free_t free = nullptr;
  void* pool_data = nullptr;
  // The pool_data of the kmalloc and page pools, owned by the pool.
  std::unique_ptr<MempoolKmallocData> kmalloc_data;
  std::unique_ptr<MempoolPageData> page_data;
  std::atomic<bool> warned_zero{false};
};

namespace {

// io_schedule_timeout(5*HZ): how long a blocked mempool_alloc() sleeps
// before it asks the allocator again.
constexpr auto kWaitChunk = std::chrono::seconds(5);

// add_element() / remove_element(): the reserve is a stack.
void add_element(Mempool* pool, void* element) {
  const int curr = pool->curr_nr.load(std::memory_order_relaxed);
  pool->elements[curr] = element;
  pool->curr_nr.store(curr + 1, std::memory_order_relaxed);
}

void* remove_element(Mempool* pool) {
  const int curr = pool->curr_nr.load(std::memory_order_relaxed) - 1;
  pool->curr_nr.store(curr, std::memory_order_relaxed);
  return pool->elements[curr];
}

// kmalloc_array_node() for the reserve array; never 0 bytes (min_nr 0
// pools still park one element for a waiter).
void** alloc_elements(Machine& m, int nr, gfp_t gfp, int node) {
  const size_t n = static_cast<size_t>(std::max(nr, 1));
  return static_cast<void**>(kmalloc_node(m, n * sizeof(void*), gfp, node));
}

// mempool_exit(): the reserve back to the allocator, then the array.
void mempool_exit(Mempool* pool) {
  while (pool->curr_nr.load(std::memory_order_relaxed) > 0)
    pool->free(remove_element(pool), pool->pool_data);
  kfree(*pool->machine, pool->elements);
  pool->elements = nullptr;
}

// mempool_init_node(): the reserve array and min_nr elements, or false.
bool mempool_init_node(Mempool* pool, Machine& m, int min_nr, mempool_alloc_t alloc_fn,
                       mempool_free_t free_fn, void* pool_data, gfp_t gfp_mask, int node_id) {
  pool->machine = &m;
  pool->min_nr.store(min_nr, std::memory_order_relaxed);
  pool->alloc = alloc_fn;
  pool->free = free_fn;
  pool->pool_data = pool_data;
  pool->elements = alloc_elements(m, min_nr, gfp_mask, node_id);
  if (!pool->elements) return false;
  // First pre-allocate the guaranteed number of buffers.
  while (pool->curr_nr.load(std::memory_order_relaxed) < min_nr) {
    void* element = pool->alloc(gfp_mask, pool->pool_data);
    if (!element) {
      mempool_exit(pool);
      return false;
    }
    add_element(pool, element);
  }
  return true;
}

// mempool_create_node() with the pool object given (the kmalloc and page
// pools own their pool_data inside it).
Mempool* create_pool(Machine& m, int min_nr, mempool_alloc_t alloc_fn, mempool_free_t free_fn,
                     void* pool_data, gfp_t gfp_mask, int node_id, std::unique_ptr<Mempool> pool) {
  if (min_nr < 0 || !alloc_fn || !free_fn) {
    m.warn(fmt::format("WARNING: mempool_create: {}\n",
                       min_nr < 0 ? "negative min_nr" : "null alloc or free function"));
    return nullptr;
  }
  if (!mempool_init_node(pool.get(), m, min_nr, alloc_fn, free_fn, pool_data, gfp_mask, node_id))
    return nullptr;
  return pool.release();
}

}  // namespace

Mempool* mempool_create_node(Machine& m, int min_nr, mempool_alloc_t alloc_fn,
                             mempool_free_t free_fn, void* pool_data, gfp_t gfp_mask, int node_id) {
  return create_pool(m, min_nr, alloc_fn, free_fn, pool_data, gfp_mask, node_id,
                     std::make_unique<Mempool>());
}

Mempool* mempool_create(Machine& m, int min_nr, mempool_alloc_t alloc_fn, mempool_free_t free_fn,
                        void* pool_data) {
  return mempool_create_node(m, min_nr, alloc_fn, free_fn, pool_data, GFP_KERNEL, NUMA_NO_NODE);
}

Mempool* mempool_create_slab_pool(Machine& m, int min_nr, KmemCache* cache) {
  return mempool_create(m, min_nr, mempool_alloc_slab, mempool_free_slab, cache);
}

Mempool* mempool_create_kmalloc_pool(Machine& m, int min_nr, size_t size) {
  auto pool = std::make_unique<Mempool>();
  pool->kmalloc_data = std::make_unique<MempoolKmallocData>(MempoolKmallocData{&m, size});
  void* data = pool->kmalloc_data.get();
  return create_pool(m, min_nr, mempool_kmalloc, mempool_kfree, data, GFP_KERNEL, NUMA_NO_NODE,
                     std::move(pool));
}

Mempool* mempool_create_page_pool(Machine& m, int min_nr, unsigned order) {
  auto pool = std::make_unique<Mempool>();
  pool->page_data = std::make_unique<MempoolPageData>(MempoolPageData{&m, order});
  void* data = pool->page_data.get();
  return create_pool(m, min_nr, mempool_alloc_pages, mempool_free_pages, data, GFP_KERNEL,
                     NUMA_NO_NODE, std::move(pool));
}

void mempool_destroy(Mempool* pool) {
  if (!pool) return;
  mempool_exit(pool);  // nobody else may use the pool any more: no lock
  delete pool;
}

void* mempool_alloc(Mempool* pool, gfp_t gfp_mask) {
  if ((gfp_mask & __GFP_ZERO) && !pool->warned_zero.exchange(true, std::memory_order_relaxed))
    pool->machine->warn(
        "WARNING: mempool_alloc: __GFP_ZERO is not honoured for reserved elements\n");
  gfp_mask |= __GFP_NOMEMALLOC;  // don't allocate emergency reserves
  gfp_mask |= __GFP_NORETRY;     // don't loop in __alloc_pages
  gfp_mask |= __GFP_NOWARN;      // failures are OK
  gfp_t gfp_temp = gfp_mask & ~(__GFP_DIRECT_RECLAIM | __GFP_IO);

  for (;;) {
    if (void* element = pool->alloc(gfp_temp, pool->pool_data)) [[likely]]
      return element;
    std::unique_lock<std::mutex> lk(pool->lock);
    if (pool->curr_nr.load(std::memory_order_relaxed) > 0) [[likely]]
      return remove_element(pool);
    // The first round went without direct reclaim or I/O: with the pool
    // empty, try again at once with the caller's full mask.
    if (gfp_temp != gfp_mask) {
      gfp_temp = gfp_mask;
      continue;
    }
    // We must not sleep without __GFP_DIRECT_RECLAIM.
    if (!(gfp_mask & __GFP_DIRECT_RECLAIM)) return nullptr;
    // Wait for someone to return an element. The check above and this wait
    // hold the lock in between, so a mempool_free()'s wake-up is not lost.
    pool->wait.wait_for(lk, kWaitChunk);
  }
}

void mempool_free(void* element, Mempool* pool) {
  if (!element) [[unlikely]]
    return;
  // Refill the reserve first. The unlocked test may miss a concurrent
  // mempool_alloc() taking the last element; that caller then waits until
  // the next free, which is correct (Linux's comment in mempool_free()).
  if (pool->curr_nr.load(std::memory_order_relaxed) < pool->min_nr.load(std::memory_order_relaxed))
      [[unlikely]] {
    std::unique_lock<std::mutex> lk(pool->lock);
    if (pool->curr_nr.load(std::memory_order_relaxed) <
        pool->min_nr.load(std::memory_order_relaxed)) {
      add_element(pool, element);
      lk.unlock();
      pool->wait.notify_all();
      return;
    }
  }
  // A min_nr == 0 pool never satisfies curr_nr < min_nr, so a waiter would
  // never be woken: park the element for it instead.
  if (pool->min_nr.load(std::memory_order_relaxed) == 0 &&
      pool->curr_nr.load(std::memory_order_relaxed) == 0) [[unlikely]] {
    std::unique_lock<std::mutex> lk(pool->lock);
    if (pool->min_nr.load(std::memory_order_relaxed) == 0 &&
        pool->curr_nr.load(std::memory_order_relaxed) == 0) {
      add_element(pool, element);
      lk.unlock();
      pool->wait.notify_all();
      return;
    }
  }
  pool->free(element, pool->pool_data);
}

int mempool_resize(Mempool* pool, int new_min_nr) {
  Machine& m = *pool->machine;
  if (new_min_nr <= 0) {
    m.warn(fmt::format("WARNING: mempool_resize: new_min_nr {} <= 0\n", new_min_nr));
    return -EINVAL;
  }
  std::unique_lock<std::mutex> lk(pool->lock);
  if (new_min_nr <= pool->min_nr.load(std::memory_order_relaxed)) {
    while (new_min_nr < pool->curr_nr.load(std::memory_order_relaxed)) {
      void* element = remove_element(pool);
      lk.unlock();
      pool->free(element, pool->pool_data);
      lk.lock();
    }
    pool->min_nr.store(new_min_nr, std::memory_order_relaxed);
    return 0;
  }
  lk.unlock();

  // Grow the pool.
  void** new_elements = alloc_elements(m, new_min_nr, GFP_KERNEL, NUMA_NO_NODE);
  if (!new_elements) return -ENOMEM;
  lk.lock();
  if (new_min_nr <= pool->min_nr.load(std::memory_order_relaxed)) {
    // Raced: another resize did our work.
    lk.unlock();
    kfree(m, new_elements);
    return 0;
  }
  std::memcpy(new_elements, pool->elements,
              static_cast<size_t>(pool->curr_nr.load(std::memory_order_relaxed)) * sizeof(void*));
  void** old = pool->elements;
  pool->elements = new_elements;
  pool->min_nr.store(new_min_nr, std::memory_order_relaxed);
  lk.unlock();
  kfree(m, old);

  lk.lock();
  while (pool->curr_nr.load(std::memory_order_relaxed) <
         pool->min_nr.load(std::memory_order_relaxed)) {
    lk.unlock();
    void* element = pool->alloc(GFP_KERNEL, pool->pool_data);
    if (!element) return 0;  // as Linux: mempool_free() tops the reserve up later
    lk.lock();
    if (pool->curr_nr.load(std::memory_order_relaxed) >=
        pool->min_nr.load(std::memory_order_relaxed)) {
      lk.unlock();
      pool->free(element, pool->pool_data);  // raced
      return 0;
    }
    add_element(pool, element);
    pool->wait.notify_all();
  }
  return 0;
}

int mempool_min_nr(const Mempool* pool) {
  return pool->min_nr.load(std::memory_order_relaxed);
}
int mempool_curr_nr(const Mempool* pool) {
  return pool->curr_nr.load(std::memory_order_relaxed);
}

// --- the stock allocator callbacks -------------------------------------------------------

void* mempool_alloc_slab(gfp_t gfp_mask, void* pool_data) {
  return kmem_cache_alloc(static_cast<KmemCache*>(pool_data), gfp_mask);
}
void mempool_free_slab(void* element, void* pool_data) {
  kmem_cache_free(static_cast<KmemCache*>(pool_data), element);
}

void* mempool_kmalloc(gfp_t gfp_mask, void* pool_data) {
  auto* d = static_cast<MempoolKmallocData*>(pool_data);
  return kmalloc(*d->machine, d->size, gfp_mask);
}
void mempool_kfree(void* element, void* pool_data) {
  kfree(*static_cast<MempoolKmallocData*>(pool_data)->machine, element);
}

void* mempool_alloc_pages(gfp_t gfp_mask, void* pool_data) {
  auto* d = static_cast<MempoolPageData*>(pool_data);
  return alloc_pages(*d->machine, gfp_mask, d->order);
}
void mempool_free_pages(void* element, void* pool_data) {
  auto* d = static_cast<MempoolPageData*>(pool_data);
  free_pages(*d->machine, static_cast<Page*>(element), d->order);
}

}  // namespace mmkit
