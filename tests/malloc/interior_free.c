/* interior_free: frees a pointer 8 bytes into a malloc'd block. Without any
 * debugging option the allocator must refuse it and abort, as glibc does
 * ("free(): invalid pointer"): accepted, the pointer would reach a freelist
 * and a later malloc would hand out memory overlapping a live block. */
#include "debug_victim.h" /* first: it defines _GNU_SOURCE */

int main(void) {
  victim_require_preload("interior_free");
  char* p = opaque_ptr(malloc(24));
  if (!p) return 1;
  memset(p, 'x', 24);
  free(opaque_ptr(p + 8));
  return victim_survived("interior_free");
}
