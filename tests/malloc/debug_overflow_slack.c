/* debug_overflow_slack: writes one byte past a block whose size does not
 * fill its size class (20 bytes in a 32-byte class), inside the class's
 * rounding, then frees the block. SLUB keeps the size asked for and red
 * zones the rest of the object ("kmalloc Redzone", Linux 6.1), so a
 * debugging malloc reports it at the free ("BUG <cache> (Not tainted):
 * kmalloc Redzone overwritten") and aborts, as it does for a write past the
 * class (debug_overflow). glibc does not notice. */
#include "debug_victim.h" /* first: it defines _GNU_SOURCE */

int main(void) {
  victim_require_preload("debug_overflow_slack");
  char* p = opaque_ptr(malloc(20));
  if (!p) return 1;
  memset(p, 'x', 20);
  /* malloc_usable_size under the debugging malloc is the size asked for. */
  if (malloc_usable_size(p) < 20) return 1;
  ((volatile char*)opaque_ptr(p))[20] = 'O'; /* the overflow, in the class's slack */
  free(opaque_ptr(p));
  for (int i = 0; i < 64; ++i) free(opaque_ptr(malloc(20)));
  return victim_survived("debug_overflow_slack");
}
