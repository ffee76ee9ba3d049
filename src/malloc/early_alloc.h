// The heap's boot-time allocator: memblock for the malloc front end.
//
// Booting the heap's machine, and a few of the core's slow paths (a memory
// block onlined, a report), allocate with operator new, which the front end
// itself serves. While a thread is inside the core (MallocCoreScope), its
// allocations come from here instead: a bump allocator over one reserved
// host region with power-of-two free lists, thread-safe under a spinlock,
// never touching the heap being built. A pointer it handed out is known by
// its address, so free() and realloc() route it back.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mmkit {

// What RLIMIT_AS and RLIMIT_DATA leave the process now, in bytes (from
// /proc/self/statm's size and data, read without allocating); UINT64_MAX
// where there is no limit.
struct AddressSpaceLeft {
  uint64_t as = UINT64_MAX, data = UINT64_MAX;
};
AddressSpaceLeft address_space_left();

void* early_alloc(size_t size);  // 16-byte aligned; null when the region is full
// An `align`-aligned block (a power of two); freed by early_free.
void* early_memalign(size_t align, size_t size);
void early_free(void* p);
bool early_owns(const void* p);
size_t early_usable_size(const void* p);
// The allocator's lock, for the fork handlers.
void early_lock();
void early_unlock();

}  // namespace mmkit
