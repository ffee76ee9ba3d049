/* debug_overflow: writes a few bytes past the end of a malloc'd block (past
 * malloc_usable_size(), so they land in the red zone a debugging allocator
 * puts behind the object, not in its rounding slack), then frees the block.
 * A debugging malloc reports it at the free as SLUB does ("BUG <cache> (Not
 * tainted): Right Redzone overwritten") and aborts. glibc notices only if the
 * bytes hit its own metadata (after a 64-byte block: the next chunk's size,
 * "malloc(): corrupted top size" on the next malloc). */
#include "debug_victim.h" /* first: it defines _GNU_SOURCE */

int main(void) {
  victim_require_preload("debug_overflow");
  char* p = opaque_ptr(malloc(64));
  if (!p) return 1;
  memset(p, 'x', 64);
  volatile char* end = (volatile char*)opaque_ptr(p) + malloc_usable_size(p);
  for (int i = 0; i < 4; ++i) end[i] = 'O'; /* the overflow */
  free(opaque_ptr(p));
  /* More traffic of the same size, in case the check runs on reuse. */
  for (int i = 0; i < 64; ++i) free(opaque_ptr(malloc(64)));
  return victim_survived("debug_overflow");
}
