// Big blocks: requests above a MAX_ORDER block (4 MiB), each its own host
// mapping, as vmalloc areas are their own mappings in the kernel.
//
// A block is page aligned (or aligned as asked) and preceded by one header
// page holding the mapping's base and length, so free() needs no lookup;
// realloc() moves it with mremap(), which copies nothing. Fresh mappings
// are zero, so calloc() of a big block writes nothing.
#pragma once

#include <cstddef>

namespace mmkit {

void* big_alloc(size_t size, size_t align);
void big_free(void* p);
// Whether `p` is a big block's address (a page-aligned pointer whose header
// carries the magic); reads the page before `p`, so `p` must come from the heap.
bool big_owns(const void* p);
size_t big_usable_size(const void* p);
// Resizes in place or moves; null (block untouched) when the host refuses.
void* big_realloc(void* p, size_t size);
// Blocks and their bytes now mapped.
size_t big_blocks();
size_t big_bytes();

}  // namespace mmkit
