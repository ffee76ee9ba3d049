/* debug_use_after_free: frees a block, writes into it, then mallocs more
 * blocks of the same size so that the allocator hands the damaged object out
 * again. A debugging malloc with poisoning finds the free object's poison
 * changed when it allocates it ("BUG <cache> (Not tainted): Poison
 * overwritten", as SLUB) and aborts; glibc may not notice. */
#include "debug_victim.h"

int main(void) {
  victim_require_preload("debug_use_after_free");
  char* p = opaque_ptr(malloc(64));
  if (!p) return 1;
  memset(p, 'x', 64);
  volatile char* stale = (volatile char*)opaque_ptr(p); /* an alias the compiler cannot see */
  free(p);
  for (int i = 0; i < 8; ++i) stale[i] = 'U'; /* the write after free */
  void* again[256];
  for (int i = 0; i < 256; ++i) again[i] = opaque_ptr(malloc(64));
  for (int i = 0; i < 256; ++i) free(again[i]);
  return victim_survived("debug_use_after_free");
}
