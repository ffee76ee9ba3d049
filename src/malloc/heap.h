// The malloc front end's heap: malloc's semantics over one machine.
//
// The heap is a machine booted on the first allocation (nothing before it
// allocates: boot runs on the early allocator) with the host's RAM and swap
// as its span, 128 MiB of it online and the rest hotplugged a memory block
// at a time when the page allocator runs short. Requests go to:
//   up to 32 KiB       a SLUB cache per size class (size_class.h)
//   up to 4 MiB        a page run: alloc_pages_exact(), whole frames
//   larger             a big block mapped in the host (big_block.h)
// Free blocks of pageblock order go back to the host by free-page reporting.
//
// Each thread binds a CPU of the machine on its first allocation and keeps
// it until it exits (then its cached objects and pages go back); a thread
// that finds every CPU bound runs unbound, on the locked paths. The heap is
// process-wide: malloc_shim.cc exports it as malloc, operator new and the
// rest, and tests call these functions directly.
#pragma once

#include <cstddef>
#include <string>

namespace mmkit {

class Machine;

// `caller`: the program's call site, which MMKIT_DEBUG's owner tracking
// records ("INFO: Allocated in ..."); read only on the debugging slow paths.
void* heap_malloc(size_t size, const void* caller = nullptr);  // null, errno ENOMEM: failed
void heap_free(void* p, const void* caller = nullptr);
void heap_free_sized(void* p, size_t size, const void* caller = nullptr);
void* heap_calloc(size_t n, size_t size, const void* caller = nullptr);
void* heap_realloc(void* p, size_t size, const void* caller = nullptr);
// An `align`-aligned block (a power of two); null and errno EINVAL for a bad
// alignment, ENOMEM when out of memory.
void* heap_memalign(size_t align, size_t size, const void* caller = nullptr);
size_t heap_usable_size(const void* p);
// Hands every free block the host still backs back to it; 1 if any was.
int heap_trim();
// The heap's machine, or null before the first allocation.
Machine* heap_machine();
// Proves the page allocator's and the slab allocator's invariants over the
// heap; "" when they hold. Other threads must not allocate meanwhile.
std::string heap_check();
// The calling thread is exiting: its CPU's slabs and pages go back and the
// CPU is released (the thread-exit hook calls this; so may a test).
void heap_thread_exit();

// Front-end statistics since boot.
struct HeapStats {
  size_t cpus = 0, bound_cpus = 0;
  size_t online_bytes = 0, span_bytes = 0;
  size_t big_blocks = 0, big_bytes = 0, big_cached_bytes = 0;
  size_t reported_bytes = 0;  // handed back to the host by free-page reporting
};
HeapStats heap_stats();
// The summary MMKIT_SHOW_STATS prints: heap_stats(), then /proc/slabinfo and
// /proc/buddyinfo of the heap's machine.
std::string heap_stats_report();

}  // namespace mmkit
